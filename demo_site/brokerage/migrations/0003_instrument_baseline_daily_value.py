"""The instruments' long-run daily traded value (in yen), seeded from the demo's own levels.

The order guard reads the lower of it and the current daily value, so a pump, which lifts the price and the
volume of the day, does not make a stock that no customer traded in the month before look liquid (red team,
round nineteen). The demo's prices and volumes are its long-run levels (``instruments.py``): every existing
row is seeded with price x volume at the demo's fixed rate.
"""

from decimal import ROUND_HALF_UP, Decimal

from django.db import migrations, models

#: Yen per unit of each instrument currency (``services.JPY_PER_UNIT``, written out: a migration does not
#: import the app's code).
JPY_PER_UNIT = {"JPY": Decimal(1), "USD": Decimal(150)}


def seed_baselines(apps, schema_editor):
    Instrument = apps.get_model("brokerage", "Instrument")
    for instrument in Instrument.objects.filter(baseline_daily_value__isnull=True):
        rate = JPY_PER_UNIT.get(instrument.currency)
        if rate is None:
            continue
        value = instrument.price * instrument.avg_daily_volume * rate
        instrument.baseline_daily_value = value.quantize(Decimal(1), rounding=ROUND_HALF_UP)
        instrument.save(update_fields=["baseline_daily_value"])


class Migration(migrations.Migration):

    dependencies = [
        ("brokerage", "0002_bankaccount_withdrawal"),
    ]

    operations = [
        migrations.AddField(
            model_name="instrument",
            name="baseline_daily_value",
            field=models.DecimalField(
                blank=True,
                decimal_places=2,
                help_text="Yen traded on an average day over the long run (for example the median of the last "
                "250 trading days, from market data). The order guard reads the lower of this and the current "
                "daily value.",
                max_digits=20,
                null=True,
                verbose_name="long-run daily traded value",
            ),
        ),
        migrations.RunPython(seed_baselines, migrations.RunPython.noop),
    ]
