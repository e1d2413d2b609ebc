"""Keep whether a factor was enrolled from a vouched-for session (``FactorRecord.enrolled_vouched``).

At a lock a stranger's failures made, only a factor enrolled vouched for may end it after cooling off since
(red team, round forty-four); inferring it from the dates read today's ``AUTHGUARD_UNVOUCHED_FACTOR_DAYS``,
which a later change of the setting reinterprets (review). Rows written before: vouched when their own
cooling-off was shorter than the default fourteen days, the best knowledge there is.
"""

from datetime import timedelta

from django.db import migrations, models

UNVOUCHED_DAYS = 14


def fill_enrolled_vouched(apps, schema_editor):
    FactorRecord = apps.get_model("authguard", "FactorRecord")
    for pk, enrolled, until in FactorRecord.objects.values_list("pk", "enrolled_at", "cooling_off_until"):
        if enrolled is not None and (until is None or until < enrolled + timedelta(days=UNVOUCHED_DAYS)):
            FactorRecord.objects.filter(pk=pk).update(enrolled_vouched=True)


class Migration(migrations.Migration):
    dependencies = [
        ("authguard", "0029_account_lock_by_desk"),
    ]

    operations = [
        migrations.AddField(
            model_name="factorrecord",
            name="enrolled_vouched",
            field=models.BooleanField(default=False, verbose_name="enrolled from a vouched-for session"),
        ),
        migrations.RunPython(fill_enrolled_vouched, migrations.RunPython.noop),
    ]
