"""Remember whether an e-mail change was confirmed with a passkey (``PreviousEmail.by_passkey``).

The password reset mails its link, during the cooling-off of an e-mail change, to the addresses replaced
without a passkey since the customer's last passkey-confirmed change, or to the address she chose with it
(``authguard.factors.inventory.reset_addresses``; red team, round thirty-nine). Rows written before are
changes of unknown confirmation and count as changes without a passkey, as every change did until now.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("authguard", "0026_login_event_rescore"),
    ]

    operations = [
        migrations.AddField(
            model_name="previousemail",
            name="by_passkey",
            field=models.BooleanField(default=False, verbose_name="replaced with a passkey"),
        ),
    ]
