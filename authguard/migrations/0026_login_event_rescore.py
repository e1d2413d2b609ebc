"""Mark the login events of re-scored sessions and API tokens (``LoginEvent.rescore``).

A re-score writes its event with ``password_ok`` false, like a wrong password's, so the order guard's "account
context changed" check (which read only events with the right password) never saw a hijacked session that was
re-scored and stepped up with a relayed code (red team, round nineteen). It now reads events with the right
password *or* this mark; a stranger's wrong passwords and attempts on a locked account never carry it.

Events of the last 31 days (the campaign's 30-day look-back and a day more) that can only be a re-score's are
marked: without a password a step-up outcome (``rescored``, ``step_up_passed``, ``step_up_failed``) is a
re-scored session's (``authguard.risk.event_categories``), and ``signed_in`` a report-only re-score's. A
refused re-score cannot be told from an attempt on a locked account: those are left unmarked.
"""

from datetime import timedelta

from django.db import migrations, models
from django.utils import timezone

#: The longest look-back of the trust subqueries (the campaign's ``changed_days``, 30) and a day more.
MARK_DAYS = 31
#: The outcomes only a re-score's event has without a password, as of this migration.
RESCORE_OUTCOMES = ("rescored", "step_up_passed", "step_up_failed", "signed_in")


def mark_rescores(apps, schema_editor):
    LoginEvent = apps.get_model("authguard", "LoginEvent")
    LoginEvent.objects.filter(
        created_at__gte=timezone.now() - timedelta(days=MARK_DAYS),
        password_ok=False,
        outcome__in=RESCORE_OUTCOMES,
    ).update(rescore=True)


class Migration(migrations.Migration):

    dependencies = [
        ("authguard", "0025_factor_changes_counted"),
    ]

    operations = [
        migrations.AddField(
            model_name="loginevent",
            name="rescore",
            field=models.BooleanField(default=False, verbose_name="re-score of a signed-in session"),
        ),
        migrations.RunPython(mark_rescores, migrations.RunPython.noop),
    ]
