"""The first trading day of each instrument's long-run data (``Instrument.history_since``).

The order guard weighs an instrument whose long-run figures cover fewer than 20 trading days as illiquid
(``InstrumentInfo.history_days``): a new listing's or a new code's "long run" is its first day, which a gang's
wash trades printed (red team, round fifty-seven). The instruments the demo already has are long listed, which
an empty date says; a new one gets the day it first arrives (``services.sync_instruments``).
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("brokerage", "0004_instrument_reference_price"),
    ]

    operations = [
        migrations.AddField(
            model_name="instrument",
            name="history_since",
            field=models.DateField(
                blank=True,
                help_text="The first trading day of the long-run figures (its listing, or the first day of "
                "market data under this or a former code). Empty: long listed. Until they cover 20 trading "
                "days the order guard treats the stock as thinly traded.",
                null=True,
                verbose_name="long-run data since",
            ),
        ),
    ]
