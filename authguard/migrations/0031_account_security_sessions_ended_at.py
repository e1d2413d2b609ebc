"""Remember when each account's sessions were last ended (``AccountSecurity.sessions_ended_at``).

A session whose key is renewed (authguard's step-up, a portal's ``cycle_key()``) moves its record to the
new key; a record gone missing meant "ended", which also signed out a customer whose old key's record the
retention prune had deleted between a portal's renewal above authguard and her next request (red team,
round forty-seven). Only an ending made after the session signed in ends it now. Empty for every account at
the upgrade: a missing record then ends no renewal until the account's next ending (nodes still on the old
code during a rolling deploy write no time either).
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("authguard", "0030_factor_record_enrolled_vouched"),
    ]

    operations = [
        migrations.AddField(
            model_name="accountsecurity",
            name="sessions_ended_at",
            field=models.DateTimeField(blank=True, null=True, verbose_name="sessions last ended"),
        ),
    ]
