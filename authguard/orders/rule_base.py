"""The contract of an order rule: what the portal tells the guard, the facts the guard gathers, the finding a
rule returns, the :class:`OrderRule` base class and the liquidity scale.

Rules are pure functions of one order's facts (:mod:`authguard.orders.rules` lists and loads them; the rule
families live in :mod:`authguard.orders.rules` and :mod:`authguard.orders.exposure_rules`). Amounts are in the
portfolio's currency (the portal's :class:`PortfolioSnapshot` says which); shares are fractions (``0.5`` is
50 %).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar

from django.utils import translation
from django.utils.functional import Promise, lazy
from django.utils.translation import gettext

if TYPE_CHECKING:
    from authguard.orders.vouching import UnvouchedThin

#: Severity of a finding: the decision carries the highest one, and the admin sorts by it.
LOW, MEDIUM, HIGH, CRITICAL = 1, 2, 3, 4

HOLD = "hold"
DENY = "deny"

#: The built-in rules, in the order their findings are reported.

#: Daily traded value (portfolio currency) under which an instrument counts as illiquid, unless the
#: configured :class:`IlliquidBuy` sets its own ``liquidity_floor``: ¥100 million a day.
DEFAULT_LIQUIDITY_FLOOR = 100_000_000
#: Hours after sign-in during which a stepped-up, re-scored or new-device session counts as risky.
DEFAULT_RISKY_SESSION_HOURS = 24
#: The exposure horizons (hours): a week, and the slow variant of a month (issue 11).
DEFAULT_HORIZON_HOURS = 168
DEFAULT_SLOW_HORIZON_HOURS = 720
#: Days during which a change of the account's sign-in context (new device or network, factor or contact
#: change, a risky or stepped-up login, the account's cooling-off) lowers the account's limits.
DEFAULT_TRUST_DAYS = 7
#: The liquidity scale: daily traded value at and above which an instrument weighs 0 (liquid), and at and
#: below which it weighs 1 (illiquid); in between the weight falls with the logarithm of the value.
DEFAULT_LIQUID_VALUE = 10_000_000_000
DEFAULT_ILLIQUID_VALUE = 50_000_000
#: Weight at and above which an instrument counts as illiquid for the pivot, risky-session and campaign
#: rules (¥707 million a day on the default scale).
ILLIQUID_WEIGHT = 0.5


# -- what the portal tells the guard -------------------------------------------------------------------


@dataclass(frozen=True)
class HoldingValue:
    """One position of a portfolio, valued in the portfolio's currency.

    ``instrument``, optional: the position's instrument as the ``AUTHGUARD_ORDER_INSTRUMENT`` hook would give
    it (its daily traded value, long-run value, small cap...). The guard then counts the position in the
    liquidation base only as far as its market is liquid (:func:`base_weight`); without it the position
    counts in full and ``authguard.W123`` is logged once per process."""

    symbol: str
    quantity: int
    value: Decimal
    instrument: InstrumentInfo | None = None


@dataclass(frozen=True)
class PortfolioSnapshot:
    """A customer's cash and holdings, all valued in ``currency`` (the ``AUTHGUARD_ORDER_PORTFOLIO`` hook)."""

    currency: str
    cash: Decimal
    holdings: tuple[HoldingValue, ...] = ()

    @property
    def holdings_value(self) -> Decimal:
        return sum((h.value for h in self.holdings), Decimal(0))

    @property
    def total_value(self) -> Decimal:
        return self.cash + self.holdings_value

    def holding(self, symbol: str) -> HoldingValue | None:
        """The position in ``symbol``, or ``None``."""
        return next((h for h in self.holdings if h.symbol == symbol), None)


@dataclass(frozen=True)
class InstrumentInfo:
    """What the guard needs to know about an instrument (the ``AUTHGUARD_ORDER_INSTRUMENT`` hook).

    Give the average daily traded value (portfolio currency) or volume in shares (times ``price`` and
    ``fx_rate``: one ``currency`` unit in the portfolio's). Optional: ``baseline_daily_value``, the long-run
    daily traded value (portfolio currency; e.g. a 250-day median), read as the lower of it and today's;
    ``reference_price``, the long-run price per share in ``currency`` (e.g. a 20-day median close), a thin
    stock's order checked far from it is held (:meth:`price_deviation`). Prices and volumes are per share as
    it trades today (split-adjusted). ``history_days``: the trading days the long-run figures cover; under
    ``IlliquidBuy``'s ``min_history_days`` (a new listing, a new code) it is illiquid (``None``: as before).
    ``former_symbols``: the codes it traded under before (a code change, newest first): the guard sums their
    orders and reads their campaign flags as this instrument's (:mod:`authguard.orders.codes`).
    """

    symbol: str
    price: Decimal
    currency: str
    market: str
    listing_country: str
    avg_daily_volume: int | None = None
    avg_daily_value: Decimal | None = None
    is_small_cap: bool = False
    fx_rate: Decimal = Decimal(1)
    name: str = ""
    baseline_daily_value: Decimal | None = None
    reference_price: Decimal | None = None
    history_days: int | None = None
    former_symbols: tuple[str, ...] = ()

    @property
    def daily_value(self) -> Decimal | None:
        """Average value traded per day in the portfolio's currency, or ``None`` when unknown; never more than
        ``baseline_daily_value`` when the portal gives one.

        SECURITY: a pump lifts the price and the volume of the stock it pumps; a long-run baseline keeps it
        from looking liquid, also where no customer of the portal traded it in the month before (the
        ledger's memory, :func:`authguard.orders.exposure.ledger_totals`)."""
        if self.avg_daily_value is not None:
            current = Decimal(self.avg_daily_value)
        elif self.avg_daily_volume is not None:
            current = Decimal(self.avg_daily_volume) * self.price * self.fx_rate
        else:
            return None
        baseline = self.baseline_daily_value
        if baseline is not None and Decimal(baseline) > 0:
            return min(current, Decimal(baseline))
        return current

    def value_of(self, quantity: int) -> Decimal:
        """The value of ``quantity`` shares in the portfolio's currency."""
        return (self.price * quantity * self.fx_rate).quantize(Decimal("0.01"))

    def reference_value_of(self, quantity: int) -> Decimal | None:
        """:meth:`value_of` at ``reference_price``; ``None`` without one."""
        reference = self.reference_price
        if reference is None or Decimal(reference) <= 0:
            return None
        return (Decimal(reference) * quantity * self.fx_rate).quantize(Decimal("0.01"))

    def price_deviation(self, side: str) -> Decimal | None:
        """How far ``price`` is from ``reference_price`` to the loss of a customer on ``side``, as a share of
        the reference: a sell's price below it (``1 - price / reference``), a buy's above it (``price /
        reference - 1``); 0 at it or on the customer's side of it; ``None`` without a reference price.

        SECURITY: in a thin stock the gang *is* the market for the day, and the price the guard checks is
        the one its wash trades printed; the long-run price is what a day's trades cannot move (red team,
        round twenty-three: the victim's shares checked and sold at a tenth of their price)."""
        reference = self.reference_price
        if reference is None or Decimal(reference) <= 0:
            return None
        ratio = Decimal(self.price) / Decimal(reference)
        deviation = 1 - ratio if side == "sell" else ratio - 1
        return max(deviation, Decimal(0))


# -- what the guard gathered -----------------------------------------------------------------------------


@dataclass(frozen=True)
class WindowTotals:
    """The customer's guarded orders since ``start`` (placed and held; cancelled and expired ones not)."""

    hours: int
    start: datetime
    sells_placed: Decimal = Decimal(0)
    sells_held: Decimal = Decimal(0)
    buys_placed: Decimal = Decimal(0)
    illiquid_buys: int = 0
    #: Buys placed or held, weighted by their instrument's illiquidity (0 to 1), all instruments.
    illiquid_amount: Decimal = Decimal(0)
    #: Buys placed or held of the order's own instrument.
    symbol_buys: Decimal = Decimal(0)
    buys_held: Decimal = Decimal(0)
    buys_counted: Decimal = Decimal(0)  #: placed buys at what the sell base counts (exposure.COUNTED_BUY)

    @property
    def sells(self) -> Decimal:
        return self.sells_placed + self.sells_held


@dataclass(frozen=True)
class TrustFacts:
    """Whether the account's sign-in context changed within ``days`` (not only this session's).

    ``reasons`` name what changed: ``new_device`` (a device first seen recently, unless the account has no
    older one and was itself opened within the days: a new customer's very first devices), ``risky_login``
    (a login with the right password that was stepped up, denied, re-scored, or scored for a new network, a
    proxy, a factor or password change, or after a dormancy; or a signed-in session or API token re-scored
    to a step-up or an end), ``cooling_off`` (the account's cooling-off after a factor or contact change)."""

    changed: bool
    reasons: tuple[str, ...] = ()
    days: int = DEFAULT_TRUST_DAYS
    #: The context changed within the campaign rule's longer look-back (``Campaign`` option
    #: ``changed_days``): such an account's buys count as a campaign's, even after its trust days ran out.
    lately: bool = False


@dataclass(frozen=True)
class SessionFacts:
    """The signed-in session behind the order (from :func:`authguard.sessions.state.session_state`).

    ``known`` is false when the session carries no authguard state: the guard then treats it as risky."""

    known: bool
    login_action: str = ""
    stepped_up: bool = False
    rescored: bool = False
    new_device: bool = False
    low_risk: bool = False
    login_at: datetime | None = None

    def risky(self, *, now: datetime, hours: int) -> bool:
        """Stepped up, re-scored, started on a new device or at a risky login within ``hours``; or unknown."""
        if not self.known:
            # SECURITY: no state is no evidence of a safe session: fail closed.
            return True
        recent = self.login_at is None or now - self.login_at <= timedelta(hours=hours)
        flagged = self.stepped_up or self.rescored or self.new_device or self.login_action != "allow"
        return recent and flagged

    def reasons(self) -> list[str]:
        if not self.known:
            return ["unknown_session"]
        names = {"stepped_up": self.stepped_up, "rescored": self.rescored, "new_device": self.new_device}
        found = [name for name, on in names.items() if on]
        if self.login_action and self.login_action != "allow" and not self.stepped_up:
            found.append("risky_login")
        return found


@dataclass(frozen=True)
class CampaignFacts:
    """Buys of one illiquid instrument across all accounts within the campaign window."""

    flagged: bool
    accounts: int = 0
    risky_accounts: int = 0
    hours: int = 0
    #: Hours -> value of the instrument bought (placed or held) within that many hours by accounts from
    #: risky sessions or with a recent change of sign-in context, this order included if it is one.
    risky_volume: dict[int, Decimal] = field(default_factory=dict)
    #: Distinct such accounts within the longest volume window (this order's included).
    risky_volume_accounts: int = 0
    #: Value bought by all accounts within ``hours`` (this order included); ``None``: not looked up.
    window_volume: Decimal | None = None
    #: The instrument's average daily traded value (portfolio currency), or ``None`` when unknown.
    daily_value: Decimal | None = None
    #: Distinct accounts of any kind, and the value they bought, within the longest volume window (this
    #: order included): a gang patient enough to outwait every look-back is still many accounts.
    slow_accounts: int = 0
    slow_volume: Decimal | None = None
    slow_hours: int = 0
    #: The same over the month (``Campaign`` option ``month_hours``): groups of accounts in turn add up.
    month_accounts: int = 0
    month_volume: Decimal | None = None


@dataclass(frozen=True)
class OrderFacts:
    """Everything a rule may read about one order. ``amount`` is in the portfolio's currency."""

    side: str
    symbol: str
    quantity: int
    amount: Decimal
    instrument: InstrumentInfo
    portfolio: PortfolioSnapshot
    windows: dict[int, WindowTotals]
    session: SessionFacts
    now: datetime
    illiquid: bool
    session_risky: bool
    home_country: str = "JP"
    #: Whether the customer never traded nor held the instrument (``None``: not looked up).
    first_trade: bool | None = None
    campaign: CampaignFacts | None = None
    #: How thinly traded the instrument is on the liquidity scale: 0 (liquid) to 1 (illiquid), at least the
    #: weight the ledger saw this month (a pump must not make its stock look liquid).
    illiquidity: float = 0.0
    #: The weight of the instrument's own daily value today, before that floor: what the ledger records, so
    #: the month's memory expires a month after the stock stopped being thin (``None``: as ``illiquidity``).
    own_illiquidity: float | None = None
    #: The account's sign-in context over days (``None``: not looked up, treated as unchanged).
    trust: TrustFacts | None = None
    #: Some of the account's held orders are past their deadline (the guard expires them first).
    held_due: bool = False
    #: The holdings' value the liquidation base trusts: each position at its value times its
    #: :func:`base_weight` (``None``: the portfolio's holdings value, every position in full).
    base_holdings: Decimal | None = None
    #: The holdings' value the buy limits trust: each position at no more than its long-run price lifted by
    #: the reference deviation (``None``: the portfolio's holdings value, every position in full).
    trusted_holdings: Decimal | None = None
    #: For a thin buy (a sell) from a session no passkey vouched for: the count since her last confirmation
    #: of a hold of it (:mod:`~authguard.orders.vouching`, ``long_sells``; ``None``: vouched, or not read).
    unvouched: UnvouchedThin | None = None

    @property
    def trusted_total(self) -> Decimal:
        """The portfolio's value the limits on buys of thin stocks are shares of: cash, and the holdings at
        what a day's trades cannot lift (:attr:`trusted_holdings`)."""
        if self.trusted_holdings is None:
            return self.portfolio.total_value
        return self.portfolio.cash + self.trusted_holdings

    @property
    def account_changed(self) -> bool:
        """The session is risky, or the account's sign-in context changed within the trust days."""
        return self.session_risky or bool(self.trust and self.trust.changed)

    @property
    def campaign_risky(self) -> bool:
        """Whether this order's buy counts among the buys of taken-over accounts for the campaign rule: the
        account changed within the trust days or the campaign's longer look-back.

        SECURITY: a gang that signs in to its victims and waits out the trust week before buying the pumped
        stock is still a campaign (red team, 2026-12-05)."""
        return self.account_changed or bool(self.trust and self.trust.lately)

    @property
    def exposure_weight(self) -> float:
        """How much of a buy of this instrument counts towards the illiquid exposure limits: all of it for an
        instrument the guard calls illiquid, else its illiquidity over ``ILLIQUID_WEIGHT`` (rising with no
        step from 0 for a liquid stock to 1 where "illiquid" begins).

        SECURITY: the limits are shares of the portfolio in yen. Counting an illiquid stock's buys at its
        weight (0.5 for a small cap at home, 0.86 just above the liquidity floor) let 11.5-20 % of a
        portfolio into a stock the guard itself called illiquid (red team, 2026-12-05).
        """
        if self.illiquid:
            return 1.0
        return min(1.0, max(self.illiquidity, 0.0) / ILLIQUID_WEIGHT)

    @property
    def counted_amount(self) -> Decimal:
        """What the limits on buys of thin stocks count this order at: its amount, or, for a buy of a stock
        that weighs (:attr:`exposure_weight`) priced below its long-run price, its shares at that price.

        SECURITY: the trusted total and the liquidation base count a thin position at up to its long-run
        price; shares bought far below it had counted at the price paid against the limits and at the
        long-run price in the totals. A gang that printed its stocks at a hundredth of their price for a day
        sold her ¥960,000 of shares the guard then trusted at ¥98 million, and her whole portfolio went into
        its pump unheld (red team, round thirty-seven)."""
        if not self.is_buy or self.exposure_weight <= 0:
            return self.amount
        at_reference = self.instrument.reference_value_of(self.quantity)
        return self.amount if at_reference is None else max(self.amount, at_reference)

    @property
    def weighted_amount(self) -> Decimal:
        """This order's amount weighted by :attr:`exposure_weight` (what the ledger sums as exposure), plus
        in full what :attr:`counted_amount` adds to it: shares bought below their long-run price count at
        that price in the trusted total whatever the stock weighs, so the difference is charged whole."""
        weighted = self.amount * Decimal(str(self.exposure_weight)) + (self.counted_amount - self.amount)
        return weighted.quantize(Decimal("0.01"))

    @property
    def is_sell(self) -> bool:
        return self.side == "sell"

    @property
    def is_buy(self) -> bool:
        return self.side == "buy"

    def window(self, hours: int) -> WindowTotals:
        return self.windows[hours]

    def sold_share(self, hours: int) -> tuple[Decimal, Decimal, Decimal]:
        """``(share, sold, base)``: sells in the window including this order, against the holdings' value
        at the window's start (today's holdings plus what was sold, minus what was bought, since then).

        SECURITY: buys never raise the base (battery case 51): stock bought with cash inside the window is
        taken out again at what today's holdings count of it (:attr:`WindowTotals.buys_counted`, round 76),
        so buying first does not make room for selling more of the original holdings.
        Today's holdings count at what the guard can trust of their value (:attr:`base_holdings`): a thin
        stock's price is whatever the gang trades it at, so a pump of it never widens the base (red team,
        round twenty: the victim's 320 shares of the gang's small cap, pumped twentyfold, let 37 % of the
        holdings be sold under a 25 % limit; a hundredfold, 91 %).
        """
        totals = self.window(hours)
        sold = totals.sells + (self.amount if self.is_sell else Decimal(0))
        holdings_now = self.portfolio.holdings_value if self.base_holdings is None else self.base_holdings
        base = holdings_now + totals.sells_placed - max(totals.buys_placed, totals.buys_counted)
        base = max(base, sold)
        if base <= 0:
            return Decimal(0), sold, Decimal(0)
        return sold / base, sold, base


@dataclass(frozen=True)
class RuleFinding:
    """One reason to hold (or deny) an order."""

    code: str
    severity: int
    reason: str | Promise
    action: str = HOLD
    evidence: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-able form with the reason in English (for the ledger, the admin and the evidence)."""
        with translation.override("en"):
            reason = str(self.reason)
        data = {
            "code": self.code,
            "severity": self.severity,
            "reason": reason,
            "action": self.action,
            "evidence": _jsonable(self.evidence),
        }
        message = message_of(self.reason)
        if message is not None:
            data["message"] = message
        return data


def message_of(value: Any) -> dict[str, Any] | None:
    """The untranslated template (``id``) and ``params`` of a :func:`reason` (or a plain ``gettext_lazy``
    string), so a stored finding can be shown later in the reader's language; ``None`` when unknown."""
    args = getattr(value, "_args", None)
    params: dict[str, Any] = {}
    template = value
    if isinstance(args, tuple) and len(args) == 2 and isinstance(args[1], dict):
        template, params = args
    inner = getattr(template, "_args", None)
    msgid = inner[0] if isinstance(inner, tuple) and len(inner) == 1 and isinstance(inner[0], str) else None
    if msgid is None:
        return None
    return {"id": msgid, "params": _jsonable(params)}


def render_message(finding: dict[str, Any]) -> str:
    """A stored finding's reason in the active language (the stored English one when it cannot be)."""
    message = finding.get("message")
    if isinstance(message, dict) and isinstance(message.get("id"), str):
        params = message.get("params")
        try:
            return gettext(message["id"]) % (params if isinstance(params, dict) else {})
        except (KeyError, TypeError, ValueError):
            pass
    return str(finding.get("reason", ""))


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


# -- rules -----------------------------------------------------------------------------------------------


class OrderRule:
    """Base class of order rules. Subclasses take their ``OPTIONS`` as keyword arguments.

    Every rule accepts ``action`` (``"hold"``, the default, or ``"deny"``). Unknown options and
    non-numbers where a number is expected raise, so ``authguard.E020`` catches typos at start-up."""

    defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, **options: Any) -> None:
        defaults = {"action": HOLD, **self.defaults}
        unknown = set(options) - set(defaults)
        if unknown:
            raise TypeError(f"unknown options {sorted(unknown)}")
        merged = {**defaults, **options}
        for key, value in merged.items():
            default = defaults[key]
            numeric = isinstance(default, int | float) and not isinstance(default, bool)
            if numeric and (isinstance(value, bool) or not isinstance(value, int | float) or value < 0):
                raise ValueError(f"option {key!r} must be a non-negative number")
        if merged["action"] not in (HOLD, DENY):
            raise ValueError("option 'action' must be 'hold' or 'deny'")
        self.options = merged

    @property
    def action(self) -> str:
        return str(self.options["action"])

    def window_hours(self) -> int | None:
        """The rolling window (hours) this rule reads from :attr:`OrderFacts.windows`, if any."""
        hours = self.options.get("window_hours")
        return int(hours) if hours is not None else None

    def evaluate(self, facts: OrderFacts) -> Iterable[RuleFinding]:
        raise NotImplementedError


def _interpolate(template: str | Promise, params: dict[str, Any]) -> str:
    return str(template) % params


#: ``reason(template, params)``: a translatable reason rendered in whatever language is active when shown.
reason = lazy(_interpolate, str)


def _percent(share: Decimal | float) -> int:
    return round(float(share) * 100)


def _days(hours: int) -> int | str:
    """Hours as whole days for a reason (``168`` -> ``7``)."""
    return hours // 24 if hours % 24 == 0 else f"{hours / 24:.1f}"


def daily_value_of_weight(
    weight: float,
    *,
    liquid_value: float = DEFAULT_LIQUID_VALUE,
    illiquid_value: float = DEFAULT_ILLIQUID_VALUE,
) -> Decimal:
    """The daily traded value at which :func:`illiquidity` gives ``weight`` (its inverse on the scale)."""
    weight = min(max(weight, 0.0), 1.0)
    return Decimal(round(liquid_value / (liquid_value / illiquid_value) ** weight))


def base_weight(exposure_weight: float) -> Decimal:
    """How much of a position's value the liquidation base trusts, from its instrument's exposure weight
    (:func:`exposure_weight`): all of a liquid stock's, nothing of an illiquid one's, and in between the
    share the exposure limits do not count (a stock at ¥2 billion a day, exposure weight 0.61: 39 %).

    SECURITY: the price of a thinly traded stock is whatever its few traders make it; the base of the sell
    limits is the customer's wealth in stock whose price a gang cannot set (red team, round twenty)."""
    return Decimal(str(round(1.0 - min(max(exposure_weight, 0.0), 1.0), 4)))


def exposure_weight(
    instrument: InstrumentInfo,
    *,
    liquidity_floor: float = DEFAULT_LIQUIDITY_FLOOR,
    liquid_value: float = DEFAULT_LIQUID_VALUE,
    illiquid_value: float = DEFAULT_ILLIQUID_VALUE,
    small_cap_weight: float = 0.5,
    home_country: str = "JP",
) -> float:
    """How much of a buy of ``instrument`` counts towards the illiquid exposure limits, as
    :attr:`OrderFacts.exposure_weight` reads it for an order: 1 for an instrument the guard calls illiquid (a
    small cap, an unknown volume, under the liquidity floor, or weighing at least :data:`ILLIQUID_WEIGHT` on
    the liquidity scale), else its :func:`illiquidity` over :data:`ILLIQUID_WEIGHT`."""
    weight = illiquidity(
        instrument,
        liquid_value=liquid_value,
        illiquid_value=illiquid_value,
        small_cap_weight=small_cap_weight,
        home_country=home_country,
    )
    daily = instrument.daily_value
    if instrument.is_small_cap or daily is None or daily < Decimal(str(liquidity_floor)):
        return 1.0
    if weight >= ILLIQUID_WEIGHT:
        return 1.0
    return min(1.0, max(weight, 0.0) / ILLIQUID_WEIGHT)


def illiquidity(
    instrument: InstrumentInfo,
    *,
    liquid_value: float = DEFAULT_LIQUID_VALUE,
    illiquid_value: float = DEFAULT_ILLIQUID_VALUE,
    small_cap_weight: float = 0.5,
    home_country: str = "JP",
) -> float:
    """How thinly traded ``instrument`` is, from 0 (liquid) to 1 (illiquid): the liquidity scale.

    The weight falls with the logarithm of the daily traded value between ``illiquid_value`` (1) and
    ``liquid_value`` (0), so there is no single floor to trade just above (battery case 53): a stock at
    ¥105 million a day weighs 0.86 on the default scale, one at ¥1 billion 0.43. An unknown volume and a
    small cap listed abroad weigh 1; a small cap at home at least ``small_cap_weight``.
    """
    daily = instrument.daily_value
    if daily is None or daily <= 0:
        return 1.0  # SECURITY: an instrument whose volume is unknown is treated as the thinnest
    value = float(daily)
    if value >= liquid_value:
        weight = 0.0
    elif value <= illiquid_value:
        weight = 1.0
    else:
        weight = math.log(liquid_value / value) / math.log(liquid_value / illiquid_value)
    if instrument.is_small_cap:
        foreign = instrument.listing_country.upper() != home_country.upper()
        weight = max(weight, 1.0 if foreign else small_cap_weight)
    return round(min(max(weight, 0.0), 1.0), 4)
