"""Gathering the facts the order rules read: the portal's hooks, the session's sign-in state and the
ledger's rolling windows, in a few queries (:func:`gather_facts`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.http import HttpRequest

from authguard import clock
from authguard.checks.codes import Codes
from authguard.conf import app_settings
from authguard.orders.campaign import illiquid_buy_facts
from authguard.orders.exposure import ledger_totals
from authguard.orders.exposure_rules import Campaign as CampaignRule
from authguard.orders.exposure_rules import Exposure as ExposureRule
from authguard.orders.hooks import _hook
from authguard.orders.long_sells import sells_since_confirmation, vouched_sell
from authguard.orders.rule_base import (
    DEFAULT_ILLIQUID_VALUE,
    DEFAULT_LIQUID_VALUE,
    DEFAULT_LIQUIDITY_FLOOR,
    DEFAULT_RISKY_SESSION_HOURS,
    DEFAULT_TRUST_DAYS,
    ILLIQUID_WEIGHT,
    InstrumentInfo,
    OrderFacts,
    OrderRule,
    PortfolioSnapshot,
    SessionFacts,
    base_weight,
    daily_value_of_weight,
    exposure_weight,
    illiquidity,
)
from authguard.orders.rules import (
    DEFAULT_HISTORY_FADE_DAYS,
    DEFAULT_MIN_HISTORY_DAYS,
    IlliquidBuy,
    RiskySession,
    rule_option,
)
from authguard.orders.vouching import placing_device, session_vouched, thin_since_confirmation, vouched_buy
from authguard.sessions.state import session_state

if TYPE_CHECKING:
    from authguard.orders.guard import OrderIntent

logger = logging.getLogger(__name__)

#: What this process has warned about once (``authguard.W121``, ``authguard.W123``, ``authguard.W124``).
_warned: set[str] = set()


def _warn_once(code: str, message: str, *args: Any) -> None:
    """Log ``message`` under ``code`` the first time (per process); silenced by ``SILENCED_SYSTEM_CHECKS``."""
    if code in _warned:
        return
    _warned.add(code)
    if code in getattr(settings, "SILENCED_SYSTEM_CHECKS", ()):
        return
    logger.warning(message, code, *args)


def _warn_without_baseline(instrument: InstrumentInfo) -> None:
    """Log ``authguard.W121`` the first time (per process) the guard reads an instrument without a long-run
    daily value (``InstrumentInfo.baseline_daily_value``); silenced like a check, by its id in
    ``SILENCED_SYSTEM_CHECKS``.

    SECURITY: without it a pump of a stock that no customer of the portal traded in the month before (so the
    ledger has no memory of it) makes the stock look liquid: the guard cannot see it (red team, round
    nineteen: half a portfolio into a pumped mid-cap in one order)."""
    baseline = instrument.baseline_daily_value
    if baseline is not None and baseline > 0:
        return
    _warn_once(
        Codes.ORDER_BASELINE_MISSING,
        "%s: the order guard read %s without InstrumentInfo.baseline_daily_value (from "
        "AUTHGUARD_ORDER_INSTRUMENT or the portal). Without a long-run daily value the guard cannot see the "
        "pump of a stock no customer traded in the month before: give it from the portal's market data "
        "(docs/order-guard.md). Logged once per process.",
        instrument.symbol,
    )


def _warn_without_reference(instrument: InstrumentInfo) -> None:
    """Log ``authguard.W124`` the first time (per process) the guard reads an instrument without a long-run
    price (``InstrumentInfo.reference_price``); silenced like a check, by its id in
    ``SILENCED_SYSTEM_CHECKS``.

    SECURITY: without it the guard checks a thin stock's order at whatever price the gang's trades printed
    that day: the victim's shares sold into its crashed bid, or the victim's cash into its pump (red team,
    round twenty-three)."""
    reference = instrument.reference_price
    if reference is not None and reference > 0:
        return
    _warn_once(
        Codes.ORDER_REFERENCE_PRICE_MISSING,
        "%s: the order guard read %s without InstrumentInfo.reference_price (from AUTHGUARD_ORDER_INSTRUMENT "
        "or the portal). Without a long-run price the guard checks an order of a thinly traded stock at "
        "whatever price a gang's trades printed that day, so the customer's shares can be sold into its "
        "crash and the customer's cash into its pump: give it from the portal's market data "
        "(docs/order-guard.md). Logged once per process.",
        instrument.symbol,
    )


def _short_history(instrument: InstrumentInfo, min_days: int) -> bool:
    """Whether ``instrument``'s long-run figures cover fewer than ``min_days`` trading days
    (``InstrumentInfo.history_days``; unknown: no)."""
    days = instrument.history_days
    return days is not None and days < min_days


def _history_floor(instrument: InstrumentInfo, min_days: int, fade_days: int) -> float:
    """The least illiquidity ``instrument``'s history allows: 1 under ``min_days`` trading days; then
    ``ILLIQUID_WEIGHT`` falling linearly to 0 at ``fade_days``, so its exposure weight falls from 1 to 0 and
    the rules for illiquid instruments (pivot, risky session) no longer apply to it for its youth alone
    (unknown history: 0).

    SECURITY: a long run of a few weeks is what a gang's wash trades of those weeks made it: wash-traded
    every day of its first month, a new listing weighed 0 on day 21 and took all of her cash unheld (red
    team, round fifty-eight). Each day of data is believed a little more, and wash trading all of them
    costs the gang half a year of fees."""
    days = instrument.history_days
    if days is None:
        return 0.0
    if days < min_days:
        return 1.0
    if fade_days <= min_days or days >= fade_days:
        return 0.0
    return ILLIQUID_WEIGHT * (fade_days - days) / (fade_days - min_days)


def _without_young_references(portfolio: PortfolioSnapshot, min_days: int) -> PortfolioSnapshot:
    """``portfolio`` with no long-run price on a position whose instrument has a short history: such a
    position counts at its weight (1: nothing) in the sell base and the buy limits' portfolio, never up to
    a reference price its first days printed."""
    holdings = tuple(
        replace(h, instrument=replace(h.instrument, reference_price=None))
        if h.instrument is not None and _short_history(h.instrument, min_days)
        else h
        for h in portfolio.holdings
    )
    return replace(portfolio, holdings=holdings)


def _base_holdings(
    portfolio: PortfolioSnapshot,
    *,
    symbol: str,
    own_weight: float,
    weigh: Callable[[InstrumentInfo], float],
    deviation: Decimal,
) -> Decimal:
    """The holdings' value the liquidation base trusts: a liquid position in full; any other at no more
    than its long-run price (``InstrumentInfo.reference_price``) lifted by ``deviation``, or, without one,
    its value times its :func:`~authguard.orders.rule_base.base_weight`, from its instrument's exposure
    weight (``weigh``); the order's own instrument at the weight the guard gave the order (``own_weight``:
    the month's memory included). A position without its instrument's data counts in full
    (``authguard.W123``, once per process).

    SECURITY: a pump of a thin stock the victim holds (or was made to buy) lifts its value in the portfolio
    hook, not in the base (red team, round twenty). At its long-run price it counts, though: a Growth-market
    investor holding only small caps had a base of nothing, so every sell of hers was "100 %" of it and
    held (red team, round thirty-four)."""
    total = Decimal(0)
    for holding in portfolio.holdings:
        if holding.symbol == symbol:
            weight = own_weight
        elif holding.instrument is not None:
            weight = weigh(holding.instrument)
        else:
            _warn_once(
                Codes.ORDER_HOLDING_INSTRUMENT_MISSING,
                "%s: the portfolio hook (AUTHGUARD_ORDER_PORTFOLIO) gave the position in %s without "
                "HoldingValue.instrument. Without it the guard counts every position in full in the base of "
                "the sell limits, so a gang that pumps a thin stock the customer holds widens them: give "
                "each position's InstrumentInfo (docs/order-guard.md). Logged once per process.",
                holding.symbol,
            )
            weight = 0.0
        reference = holding.instrument.reference_price if holding.instrument is not None else None
        if weight > 0 and reference is not None and Decimal(reference) > 0 and holding.instrument is not None:
            ceiling = Decimal(reference) * (1 + deviation) * holding.quantity * holding.instrument.fx_rate
            total += min(holding.value, ceiling)
            continue
        total += holding.value * base_weight(weight)
    return total.quantize(Decimal("0.01"))


def _trusted_holdings(
    portfolio: PortfolioSnapshot, *, deviation: Decimal, weigh: Callable[[InstrumentInfo], float]
) -> Decimal:
    """The holdings' value the limits on buys of thin stocks trust: a liquid position in full, any other at
    no more than its long-run price (``InstrumentInfo.reference_price``) lifted by ``deviation``, the most a
    day's trades may move it unheld; without a long-run price, as the liquidation base counts it (its
    value times its :func:`~authguard.orders.rule_base.base_weight`); without its instrument's data, in full
    (as the base, ``authguard.W123``).

    SECURITY: those limits are shares of the portfolio. A pump of a thin stock the victim holds (or was made
    to buy, within every limit) lifted its value in the portfolio hook and widened them: 320 shares of the
    gang's small cap printed at a hundred times its price let 14.5 % of the portfolio into its second thin
    stock under a 5 % limit; a thousand times, 26.6 % (red team, round thirty)."""
    total = Decimal(0)
    for holding in portfolio.holdings:
        instrument = holding.instrument
        if instrument is None:
            total += holding.value
            continue
        weight = weigh(instrument)
        if weight <= 0:
            total += holding.value  # a liquid stock: no day's trades set its price (a takeover bid may)
            continue
        reference = instrument.reference_price
        if reference is None or Decimal(reference) <= 0:
            total += holding.value * base_weight(weight)
            continue
        ceiling = Decimal(reference) * (1 + deviation) * holding.quantity * instrument.fx_rate
        total += min(holding.value, ceiling)
    return total.quantize(Decimal("0.01"))


def _session_facts(request: HttpRequest | None) -> SessionFacts:
    state = session_state(request) if request is not None else None
    if state is None:
        return SessionFacts(known=False)
    return SessionFacts(
        known=True,
        login_action=state.login_action,
        stepped_up=state.stepped_up,
        rescored=state.rescored,
        new_device=state.new_device,
        low_risk=state.low_risk,
        login_at=state.login_at,
    )


def _window_hours(rules: Sequence[OrderRule]) -> list[int]:
    hours = {h for h in (rule.window_hours() for rule in rules) if h is not None}
    for rule in rules:
        if isinstance(rule, ExposureRule):
            hours.update(rule.horizons())
    return sorted(hours or {24})


def gather_facts(
    request: HttpRequest | None,
    intent: OrderIntent,
    *,
    user: Any,
    rules: Sequence[OrderRule],
    now: datetime | None = None,
    instrument: InstrumentInfo | None = None,
    serialise: bool = False,
) -> OrderFacts | None:
    """Everything the rules read about ``intent``; ``None`` when the portal does not know the instrument.

    Costs one ledger query plus the portal's hooks; buys of illiquid instruments add the campaign lookups.
    ``serialise`` (:func:`~authguard.orders.guard.submit_order`, inside its transaction): such a buy first
    waits for the other transactions buying the same instrument, whose buys the campaign facts count.
    A portal that has just read the instrument to validate the order passes it as ``instrument``, and the
    ``AUTHGUARD_ORDER_INSTRUMENT`` hook is not asked again.
    """
    now = now or clock.now()
    if instrument is None:
        instrument = _hook("ORDER_INSTRUMENT")(intent.symbol)
    elif instrument.symbol != intent.symbol:
        raise ValueError("the instrument given does not match the order's symbol")
    if instrument is None:
        return None
    _warn_without_baseline(instrument)
    _warn_without_reference(instrument)
    min_history = int(rule_option(rules, IlliquidBuy, "min_history_days", DEFAULT_MIN_HISTORY_DAYS))
    fade = int(rule_option(rules, IlliquidBuy, "history_fade_days", DEFAULT_HISTORY_FADE_DAYS))
    # SECURITY: a new listing's or a new code's long run is its first days, which the gang's wash trades
    # printed: its positions never count up to their "long-run" price (red team, round fifty-seven).
    portfolio: PortfolioSnapshot = _without_young_references(_hook("ORDER_PORTFOLIO")(user), min_history)
    session = _session_facts(request)
    risky_hours = int(rule_option(rules, RiskySession, "hours", DEFAULT_RISKY_SESSION_HOURS))
    session_risky = session.risky(now=now, hours=risky_hours)
    trust_days = int(rule_option(rules, ExposureRule, "trust_days", DEFAULT_TRUST_DAYS))
    campaign_rule = next((r for r in rules if isinstance(r, CampaignRule)), None)
    windows, held_due, trust, flagged, peak = ledger_totals(
        user,
        now=now,
        hours=_window_hours(rules),
        symbol=intent.symbol,
        former=instrument.former_symbols,
        held_seconds=app_settings.CONFIRMATION_SECONDS,
        trust_days=trust_days,
        changed_days=int(campaign_rule.options["changed_days"]) if campaign_rule else 0,
    )
    floor = Decimal(rule_option(rules, IlliquidBuy, "liquidity_floor", DEFAULT_LIQUIDITY_FLOOR))
    home = str(rule_option(rules, IlliquidBuy, "home_country", "JP"))
    scale = {
        "liquid_value": float(rule_option(rules, ExposureRule, "liquid_value", DEFAULT_LIQUID_VALUE)),
        "illiquid_value": float(rule_option(rules, ExposureRule, "illiquid_value", DEFAULT_ILLIQUID_VALUE)),
    }
    weight = illiquidity(
        instrument,
        **scale,
        small_cap_weight=float(rule_option(rules, ExposureRule, "small_cap_weight", 0.5)),
        home_country=home,
    )
    # What the ledger remembers: the weight of a known traded value only. SECURITY (availability): an
    # unknown or zero volume weighs 1 for this order alone; remembered, one glitch of the market data made a
    # blue chip "illiquid" for a month (red team, round sixteen).
    known = instrument.daily_value is not None and instrument.daily_value > 0
    own = weight if known else 0.0
    if peak > weight:
        # SECURITY: a pump must not make its stock look liquid (red team, round fourteen): the weight and
        # the daily value every rule reads (per-order shares, the floor, the campaign's volume) are those
        # the ledger saw this month, not the pumped ones.
        weight = peak
        seen = daily_value_of_weight(peak, **scale)
        current = instrument.daily_value
        instrument = replace(instrument, avg_daily_value=seen if current is None else min(current, seen))
    # SECURITY: weight 1 (every thin-stock rule) for this order under min_history_days, then fading, not
    # remembered: the first day of a new code, wash-traded to ¥12.6 billion, made its baseline, weighed 0 and
    # took all of her cash unheld (red team, round fifty-seven); wash-traded for its whole first month, on
    # day 21 (round fifty-eight). Its reference price still adds holds (a buy counts at no less than it); it
    # lifts no value while it is young (_without_young_references).
    young = _history_floor(instrument, min_history, fade)
    if young > weight:
        weight = young
        # SECURITY: and the day every rule reads is the day that weight stands for, as for the peak above:
        # twelve victims put ¥23.7 million into a young listing within two hours, which every campaign arm
        # (and each buy's share of the day) compared with its wash-traded first day of ¥12.6 billion
        # (red team, round seventy-five).
        young_day = daily_value_of_weight(young, **scale)
        current = instrument.daily_value
        instrument = replace(
            instrument, avg_daily_value=young_day if current is None else min(current, young_day)
        )
    daily = instrument.daily_value
    # SECURITY: liquidity is a scale (case 53): a stock just above the floor still weighs, and anything
    # weighing at least ILLIQUID_WEIGHT gets the pivot, risky-session and campaign rules too.
    illiquid = instrument.is_small_cap or daily is None or daily < floor or weight >= ILLIQUID_WEIGHT
    small_cap_weight = float(rule_option(rules, ExposureRule, "small_cap_weight", 0.5))

    def weigh(held: InstrumentInfo) -> float:
        if _short_history(held, min_history):
            return 1.0  # SECURITY: as the order's own instrument above (round fifty-seven)
        traded = exposure_weight(
            held, liquidity_floor=float(floor), **scale, small_cap_weight=small_cap_weight, home_country=home
        )
        return max(traded, min(1.0, _history_floor(held, min_history, fade) / ILLIQUID_WEIGHT))

    deviation = Decimal(str(rule_option(rules, ExposureRule, "max_reference_deviation", 0.3)))
    base_holdings = _base_holdings(
        portfolio,
        symbol=intent.symbol,
        # As OrderFacts.exposure_weight: the order's own instrument at the weight the rules read.
        own_weight=1.0 if illiquid else min(1.0, max(weight, 0.0) / ILLIQUID_WEIGHT),
        weigh=weigh,
        deviation=deviation,
    )
    trusted_holdings = _trusted_holdings(portfolio, deviation=deviation, weigh=weigh)
    amount = instrument.value_of(intent.quantity)
    # As OrderFacts.campaign_risky (``lately`` includes ``changed``): a taken-over account's buy.
    campaign_risky = session_risky or trust.lately
    first_trade = None
    campaign = None
    # SECURITY: every buy of a flagged instrument reads the campaign facts (which hold it), liquid or not;
    # so does every buy that counts at least half against the illiquid exposure: a pump lifts the volume of
    # the stock it pumps, just over the illiquid weight (red team, 2026-12-05).
    if intent.side == "buy" and (illiquid or flagged or weight >= ILLIQUID_WEIGHT / 2):
        campaign, never_bought = illiquid_buy_facts(
            user,
            intent.symbol,
            former=instrument.former_symbols,
            now=now,
            hours=campaign_rule.campaign_hours() if campaign_rule else None,
            risky=campaign_risky,
            amount=amount,
            volume_hours=campaign_rule.volume_hours() if campaign_rule else [],
            daily_value=daily,
            serialise=serialise,
        )
        first_trade = never_bought and portfolio.holding(intent.symbol) is None
    facts = OrderFacts(
        side=intent.side,
        symbol=intent.symbol,
        quantity=intent.quantity,
        amount=amount,
        instrument=instrument,
        portfolio=portfolio,
        windows=windows,
        session=session,
        now=now,
        illiquid=illiquid,
        session_risky=session_risky,
        home_country=home,
        first_trade=first_trade,
        campaign=campaign,
        illiquidity=weight,
        own_illiquidity=own,
        trust=trust,
        held_due=held_due,
        base_holdings=base_holdings,
        trusted_holdings=trusted_holdings,
    )
    days = int(rule_option(rules, ExposureRule, "unvouched_days", 0) or 0)
    # SECURITY: a thin buy from a session no passkey vouched for counts every thin buy since her last
    # confirmation, not only the month's: the month's budget rolled for a thief who kept his browser (red
    # team, round fifty-five). One statement more, for such buys only.
    if days > 0 and facts.is_buy and facts.exposure_weight > 0:
        # The ledger marks a vouched buy, which the count never reads (her own passkey buys cost her nothing
        # in a later session that is not vouched: red team, round fifty-eight).
        if session_vouched(request):
            facts = replace(facts, unvouched=vouched_buy(now=now, days=days))
        else:
            counted = thin_since_confirmation(user, now=now, days=days, device=placing_device(request))
            facts = replace(facts, unvouched=counted)
    if days > 0 and facts.is_sell:
        # SECURITY: the sells' long count (red team, round seventy-three: the month's 80 % renewed for a
        # thief who kept her session). One statement more for a sell from a session no passkey vouched for.
        if session_vouched(request):
            facts = replace(facts, unvouched=vouched_sell(now=now, days=days))
        else:
            counted = sells_since_confirmation(user, now=now, days=days, device=placing_device(request))
            facts = replace(facts, unvouched=counted)
    return facts


__all__ = ["gather_facts"]
