"""The instruments' long-run price (in their own currency), seeded from the demo's own levels.

The order guard holds an order of a thinly traded stock checked at a price far from it: in such a stock a
gang's wash trades set the day's price, and the victim's shares were sold into its crash at a tenth of their
price (red team, round twenty-three). The demo's prices are its long-run levels (``instruments.py``): every
existing row is seeded with its price.
"""

from django.db import migrations, models
from django.db.models import F


def seed_reference_prices(apps, schema_editor):
    Instrument = apps.get_model("brokerage", "Instrument")
    Instrument.objects.filter(reference_price__isnull=True).update(reference_price=F("price"))


class Migration(migrations.Migration):

    dependencies = [
        ("brokerage", "0003_instrument_baseline_daily_value"),
    ]

    operations = [
        migrations.AddField(
            model_name="instrument",
            name="reference_price",
            field=models.DecimalField(
                blank=True,
                decimal_places=2,
                help_text="The usual price per share over the long run, in the instrument's currency (for example "
                "the median close of the last 20 trading days, from market data). The order guard holds an order "
                "of a thinly traded stock whose price is far from it.",
                max_digits=14,
                null=True,
                verbose_name="long-run price",
            ),
        ),
        migrations.RunPython(seed_reference_prices, migrations.RunPython.noop),
    ]
