"""Remember which locks are the security desk's containment (``AccountLock.locked_by_desk``).

"A factor that was cooling off when the account was locked never unlocks that lock" is the desk's
containment rule: a lock anyone with her username makes with wrong passwords, read the same way, kept her own
passkey, added a day before, out of her account for as long as that lock stood (red team, round forty-three).

Locks standing now keep the rule they were made under (all of them are marked): a desk lock made on an
account that was locked already kept the failures' reason and cannot be told apart from one, and containment
must not end with an upgrade. Such a lock still ends as before: by a factor that was not cooling off when
it was made, or by the desk.
"""

from django.db import migrations, models


def mark_desk_locks(apps, schema_editor):
    AccountLock = apps.get_model("authguard", "AccountLock")
    AccountLock.objects.filter(locked_at__isnull=False).update(locked_by_desk=True)


class Migration(migrations.Migration):
    dependencies = [
        ("authguard", "0028_dbsc_registered_device"),
    ]

    operations = [
        migrations.AddField(
            model_name="accountlock",
            name="locked_by_desk",
            field=models.BooleanField(default=False, verbose_name="locked by the security desk"),
        ),
        migrations.RunPython(mark_desk_locks, migrations.RunPython.noop),
    ]
