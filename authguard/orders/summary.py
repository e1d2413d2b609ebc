"""The plain summary of a held order ("Sell 100 of 7203 Toyota Motor (¥285,000). With it you would sell 27
of your 30 holdings within 24 hours..."): its numbers are kept with the held order (:func:`summary_data`) and
rendered in the reader's language when shown (:func:`render_summary`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

from django.utils import translation
from django.utils.translation import gettext as _

from authguard.models import GuardedOrder, GuardStatus
from authguard.orders.rule_base import OrderFacts, RuleFinding

if TYPE_CHECKING:
    from authguard.orders.guard import OrderIntent


def _summary_hours(facts: OrderFacts) -> int:
    """The window the summary speaks of by default: the shortest the guard summed (24 hours by
    default); :func:`summary_data` prefers the one the most severe finding names."""
    return min(facts.windows)


def summary_data(
    user: Any,
    intent: OrderIntent,
    facts: OrderFacts | None,
    *,
    ledger: GuardedOrder,
    now: datetime,
    findings: Sequence[RuleFinding] = (),
) -> dict[str, Any]:
    """The numbers of the plain summary, kept so the page renders it in the reader's language.

    Sells already placed and sells waiting for confirmation are kept apart (``placed_amount``,
    ``held_amount``, this order included in the held ones), so the customer is never told "you sold 99 %"
    when most of it is held.
    """
    data: dict[str, Any] = {
        "side": intent.side,
        "symbol": intent.symbol,
        "name": facts.instrument.name if facts else "",
        "quantity": intent.quantity,
        "amount": str(ledger.amount),
        "currency": ledger.currency,
    }
    if facts is None:
        return data
    hours = _summary_hours(facts)
    for finding in sorted(findings, key=lambda f: -f.severity):
        named = finding.evidence.get("hours")
        if isinstance(named, int) and named in facts.windows:
            hours = named
            break
    share, sold, base = facts.sold_share(hours)
    window = facts.window(hours)
    held = window.sells_held + (facts.amount if facts.is_sell else Decimal(0))
    placed_share = window.sells_placed / base if base > 0 else Decimal(0)
    data.update(
        hours=hours,
        sold_share=round(float(share), 4),
        sold_amount=str(sold.quantize(Decimal(1))),
        placed_amount=str(window.sells_placed.quantize(Decimal(1))),
        placed_share=round(float(placed_share), 4),
        held_amount=str(held.quantize(Decimal(1))),
    )
    sold_symbols = set(
        GuardedOrder.objects.filter(
            user_id=user.pk,
            side="sell",
            status__in=[GuardStatus.PLACED, GuardStatus.HELD],
            created_at__gte=now - timedelta(hours=hours),
        ).values_list("symbol", flat=True)
    )
    held_now = {h.symbol for h in facts.portfolio.holdings}
    data.update(sold_holdings=len(sold_symbols), holdings=len(held_now | sold_symbols))
    return data


def _period(hours: int) -> str:
    """``24 hours`` / ``7 days`` in the active language."""
    if hours % 24 == 0 and hours > 24:
        return _("%(days)s days") % {"days": hours // 24}
    return _("%(hours)s hours") % {"hours": hours}


def format_amount(amount: Decimal | str, currency: str) -> str:
    """``¥9.7 million`` / ``970万円`` for yen, ``12,345.00 USD`` otherwise, in the active language."""
    value = Decimal(amount)
    japanese = (translation.get_language() or "").startswith("ja")
    if currency != "JPY":
        return f"{value:,.2f} {currency}"
    if japanese:
        if value >= 100_000_000:
            return f"{(value / 100_000_000).quantize(Decimal('0.1'), ROUND_HALF_UP)}億円"
        if value >= 10_000:
            return f"{(value / 10_000).quantize(Decimal(1), ROUND_HALF_UP):,}万円"
        return f"{value.quantize(Decimal(1), ROUND_HALF_UP):,}円"
    if value >= 1_000_000:
        return _("¥%(millions)s million") % {
            "millions": (value / 1_000_000).quantize(Decimal("0.1"), ROUND_HALF_UP)
        }
    return f"¥{value.quantize(Decimal(1), ROUND_HALF_UP):,}"


def render_summary(data: dict[str, Any]) -> str:
    """The plain summary, e.g. "Sell 100 of 7203 Toyota Motor (¥285,000). With it you would sell 27 of
    your 30 holdings within 24 hours: 92 % of your portfolio, ¥9.7 million." in the active language."""
    params = {
        "quantity": f"{int(data['quantity']):,}",
        "symbol": data["symbol"],
        "name": data.get("name") or "",
        "amount": format_amount(data["amount"], data["currency"]),
    }
    if data["side"] == "sell":
        text = _("Sell %(quantity)s of %(symbol)s %(name)s (%(amount)s).") % params
    else:
        text = _("Buy %(quantity)s of %(symbol)s %(name)s (%(amount)s).") % params
    share = data.get("sold_share")
    if share and data.get("holdings") and "placed_amount" in data:
        split = {
            "period": _period(int(data["hours"])),
            "sold": data["sold_holdings"],
            "holdings": data["holdings"],
            "share": round(share * 100),
            "amount": format_amount(data["sold_amount"], data["currency"]),
            "placed": format_amount(data["placed_amount"], data["currency"]),
            "placed_share": round(float(data.get("placed_share") or 0) * 100),
            "held": format_amount(data["held_amount"], data["currency"]),
        }
        if data["side"] == "sell":
            text += " " + (
                _(
                    "With it you would sell %(sold)s of your %(holdings)s holdings within %(period)s: "
                    "%(share)s %% of your portfolio, %(amount)s. Of that, %(placed)s is sold already and "
                    "%(held)s, this order included, is waiting for your confirmation."
                )
                % split
            )
        elif float(data.get("placed_share") or 0) >= 0.3:
            text += " " + (
                _("Within %(period)s you have sold %(placed)s: %(placed_share)s %% of your portfolio.")
                % split
            )
        return " ".join(text.split())
    if share and data.get("holdings"):
        window = {
            "sold": data["sold_holdings"],
            "holdings": data["holdings"],
            "hours": data["hours"],
            "share": round(share * 100),
            "amount": format_amount(data["sold_amount"], data["currency"]),
        }
        if data["side"] == "sell":
            text += (
                " "
                + _(
                    "With it you would sell %(sold)s of your %(holdings)s holdings within %(hours)s hours: "
                    "%(share)s %% of your portfolio, %(amount)s."
                )
                % window
            )
        elif share >= 0.3:
            text += (
                " "
                + _(
                    "Within %(hours)s hours you sold %(sold)s of your %(holdings)s holdings: %(share)s %% of "
                    "your portfolio, %(amount)s."
                )
                % window
            )
    return " ".join(text.split())


__all__ = ["format_amount", "render_summary", "summary_data"]
