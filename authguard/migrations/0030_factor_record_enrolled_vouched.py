"""Keep whether a factor was enrolled from a vouched-for session (``FactorRecord.enrolled_vouched``).

At a lock a stranger's failures made, only a factor enrolled vouched for may end it after cooling off since
(red team, round forty-four); inferring it from the dates read today's ``AUTHGUARD_UNVOUCHED_FACTOR_DAYS``,
which a later change of the setting reinterprets (review). Rows written before: vouched when their own
cooling-off, over by now, was shorter than the portal's ``AUTHGUARD_UNVOUCHED_FACTOR_DAYS`` (none when it is
0); a factor still cooling off stays unvouched (it may be a thief's: red team, round forty-five).
"""

from datetime import timedelta

from django.conf import settings
from django.db import migrations, models
from django.utils import timezone


def fill_enrolled_vouched(apps, schema_editor):
    days = getattr(settings, "AUTHGUARD_UNVOUCHED_FACTOR_DAYS", 14)
    if not isinstance(days, int) or isinstance(days, bool) or days <= 0:
        return
    FactorRecord = apps.get_model("authguard", "FactorRecord")
    now = timezone.now()
    rows = FactorRecord.objects.values_list("pk", "enrolled_at", "cooling_off_until")
    for pk, enrolled, until in rows:
        if enrolled is None or (until is not None and until > now):
            continue
        if until is None or until < enrolled + timedelta(days=days):
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
