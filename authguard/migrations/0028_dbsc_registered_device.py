"""Remember the device cookie each DBSC binding was registered on (``DbscSession.registered_device_hash``).

A key's refresh may move its binding onto a device cookie new to the account; "forget this browser" ended
only the bindings now on the forgotten cookie, and a thief's key moved onto a fresh cookie first outlived it
(red team, round forty-one). It now ends those registered on it too. Rows written before record where the
binding is now: the best knowledge there is of the browser it was registered on.
"""

from django.db import migrations, models
from django.db.models import F


def fill_registered_device(apps, schema_editor):
    DbscSession = apps.get_model("authguard", "DbscSession")
    DbscSession.objects.filter(registered_device_hash="").update(registered_device_hash=F("device_hash"))


class Migration(migrations.Migration):
    dependencies = [
        ("authguard", "0027_previous_email_by_passkey"),
    ]

    operations = [
        migrations.AddField(
            model_name="dbscsession",
            name="registered_device_hash",
            field=models.CharField(blank=True, db_index=True, default="", max_length=64, verbose_name="browser"),
        ),
        migrations.RunPython(fill_registered_device, migrations.RunPython.noop),
    ]
