"""Recount the last month's buys as the order guard counts them since 2026-12-05.

The month's illiquid exposure used to count each buy at its instrument's illiquidity (0.5 for a small cap at
home, 0.86 just above the liquidity floor); it now counts a buy of an illiquid instrument in full and any other
by its illiquidity over 0.5 (``OrderFacts.exposure_weight``). Rows written before would let the first month
after the upgrade take up to twice the limit (red team, 2026-12-05), so the ledger rows within the slow horizon
(and a day more) and the days rolled up from them are recounted. Older rows are outside every window.
"""

from collections import defaultdict
from datetime import timedelta
from datetime import timezone as dt_timezone
from decimal import Decimal

from django.db import migrations
from django.utils import timezone

#: The slow horizon (30 days) and a day more: the rolled-up days a window can still reach.
RECOUNT_DAYS = 32
#: authguard.orders.rule_base.ILLIQUID_WEIGHT, as of this migration.
ILLIQUID_WEIGHT = Decimal("0.5")
CENT = Decimal("0.01")


def _counted(amount, illiquid, illiquidity):
    if illiquid:
        return amount
    weight = min(Decimal(1), max(Decimal(str(illiquidity or 0)), Decimal(0)) / ILLIQUID_WEIGHT)
    return (amount * weight).quantize(CENT)


def recount(apps, schema_editor):
    GuardedOrder = apps.get_model("authguard", "GuardedOrder")
    OrderDayTotal = apps.get_model("authguard", "OrderDayTotal")
    start = (timezone.now() - timedelta(days=RECOUNT_DAYS)).astimezone(dt_timezone.utc)
    since = start.replace(hour=0, minute=0, second=0, microsecond=0)  # whole UTC days, as rolled up
    rolled = defaultdict(Decimal)
    rows = GuardedOrder.objects.filter(side="buy", created_at__gte=since).only(
        "pk", "user_id", "created_at", "amount", "illiquid", "illiquidity", "illiquid_amount", "rolled", "status"
    )
    for row in rows.iterator(chunk_size=2000):
        counted = _counted(row.amount, row.illiquid, row.illiquidity)
        if counted != row.illiquid_amount:
            GuardedOrder.objects.filter(pk=row.pk).update(illiquid_amount=counted)
        if row.rolled and row.status == "placed":
            rolled[(row.user_id, row.created_at.astimezone(dt_timezone.utc).date())] += counted
    for (user_id, day), total in rolled.items():
        # A day's account row ("" symbol) holds the day's counted illiquid amount (rollup._day_sums).
        OrderDayTotal.objects.filter(user_id=user_id, day=day, symbol="").update(illiquid_amount=total)


class Migration(migrations.Migration):
    dependencies = [("authguard", "0016_device_cookie_generation")]

    operations = [migrations.RunPython(recount, migrations.RunPython.noop, elidable=True)]
