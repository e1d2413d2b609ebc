"""The order guard's rules: pure functions of one order's facts, pluggable like the risk signals.

Configure them like ``AUTH_PASSWORD_VALIDATORS``::

    AUTHGUARD_ORDER_RULES = [
        {"NAME": "authguard.order_rules.MassLiquidation", "OPTIONS": {"max_share": 0.4}},
        {"NAME": "authguard.order_rules.IlliquidBuy", "OPTIONS": {}},
    ]

Each rule reads an :class:`OrderFacts` (gathered by :mod:`authguard.orders.guard` in a few queries; rules
do no
I/O) and returns :class:`RuleFinding` objects with a stable ``code``, a severity, a translatable reason and
the evidence behind it. Any finding holds the order for the customer's confirmation (or denies it, for a
rule configured with ``"action": "deny"``); no finding lets it through.

Amounts are in the portfolio's currency (the portal's :class:`PortfolioSnapshot` says which); shares are
fractions (``0.5`` is 50 %).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar

from django.core.signals import setting_changed
from django.utils.functional import Promise, lazy
from django.utils.module_loading import import_string
from django.utils.translation import gettext_lazy as _

#: Severity of a finding: the decision carries the highest one, and the admin sorts by it.
LOW, MEDIUM, HIGH, CRITICAL = 1, 2, 3, 4

HOLD = "hold"
DENY = "deny"

#: The built-in rules, in the order their findings are reported.
DEFAULT_ORDER_RULES: list[dict[str, Any]] = [
    {"NAME": "authguard.order_rules.MassLiquidation", "OPTIONS": {}},
    {"NAME": "authguard.order_rules.IlliquidBuy", "OPTIONS": {}},
    {"NAME": "authguard.order_rules.Pivot", "OPTIONS": {}},
    {"NAME": "authguard.order_rules.RiskySession", "OPTIONS": {}},
    {"NAME": "authguard.order_rules.Campaign", "OPTIONS": {}},
    {"NAME": "authguard.order_rules.Exposure", "OPTIONS": {}},
]

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
#: rules (¥316 million a day on the default scale).
ILLIQUID_WEIGHT = 0.5


# -- what the portal tells the guard -------------------------------------------------------------------


@dataclass(frozen=True)
class HoldingValue:
    """One position of a portfolio, valued in the portfolio's currency."""

    symbol: str
    quantity: int
    value: Decimal


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

    Give the average daily traded value (in the portfolio's currency) or the average daily volume in shares
    (the guard multiplies by ``price`` and ``fx_rate``). ``fx_rate`` converts one unit of the instrument's
    ``currency`` into the portfolio's currency.
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

    @property
    def daily_value(self) -> Decimal | None:
        """Average value traded per day in the portfolio's currency, or ``None`` when unknown."""
        if self.avg_daily_value is not None:
            return Decimal(self.avg_daily_value)
        if self.avg_daily_volume is not None:
            return Decimal(self.avg_daily_volume) * self.price * self.fx_rate
        return None

    def value_of(self, quantity: int) -> Decimal:
        """The value of ``quantity`` shares in the portfolio's currency."""
        return (self.price * quantity * self.fx_rate).quantize(Decimal("0.01"))


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

    @property
    def sells(self) -> Decimal:
        return self.sells_placed + self.sells_held


@dataclass(frozen=True)
class TrustFacts:
    """Whether the account's sign-in context changed within ``days`` (not only this session's).

    ``reasons`` name what changed: ``new_device`` (a device first seen recently on an account that has older
    ones), ``risky_login`` (a login with the right password that was stepped up, denied, re-scored, or scored
    for a new network, a proxy, a factor or password change), ``cooling_off`` (the account's cooling-off after
    a factor or contact change).
    """

    changed: bool
    reasons: tuple[str, ...] = ()
    days: int = DEFAULT_TRUST_DAYS


@dataclass(frozen=True)
class SessionFacts:
    """The signed-in session behind the order (from :func:`authguard.sessions.stepup.session_state`).

    ``known`` is false when the session carries no authguard state: the guard then treats it as risky.
    """

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
        names = [
            ("stepped_up", self.stepped_up),
            ("rescored", self.rescored),
            ("new_device", self.new_device),
        ]
        found = [name for name, on in names if on]
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
    #: How thinly traded the instrument is on the liquidity scale: 0 (liquid) to 1 (illiquid).
    illiquidity: float = 0.0
    #: The account's sign-in context over days (``None``: not looked up, treated as unchanged).
    trust: TrustFacts | None = None
    #: Some of the account's held orders are past their deadline (the guard expires them first).
    held_due: bool = False

    @property
    def account_changed(self) -> bool:
        """The session is risky, or the account's sign-in context changed within the trust days."""
        return self.session_risky or bool(self.trust and self.trust.changed)

    @property
    def weighted_amount(self) -> Decimal:
        """This order's amount weighted by the instrument's illiquidity."""
        return (self.amount * Decimal(str(self.illiquidity))).quantize(Decimal("0.01"))

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
        taken out again, so buying first does not make room for selling more of the original holdings.
        """
        totals = self.window(hours)
        sold = totals.sells + (self.amount if self.is_sell else Decimal(0))
        holdings_now = self.portfolio.holdings_value
        base = holdings_now + totals.sells_placed - totals.buys_placed
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
        from django.utils import translation

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
    from django.utils.translation import gettext

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
    non-numbers where a number is expected raise, so ``authguard.E020`` catches typos at start-up.
    """

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


class MassLiquidation(OrderRule):
    """Sells within ``window_hours`` above ``max_share`` of the holdings' value at the window's start.

    Placed and held sells count, however the selling is split (20 sells of 5 % are 100 %).
    """

    defaults: ClassVar[dict[str, Any]] = {"window_hours": 24, "max_share": 0.5}

    def evaluate(self, facts: OrderFacts) -> Iterable[RuleFinding]:
        if not facts.is_sell:
            return
        hours = int(self.options["window_hours"])
        share, sold, base = facts.sold_share(hours)
        if share > Decimal(str(self.options["max_share"])):
            yield RuleFinding(
                "mass_liquidation",
                HIGH,
                reason(
                    _(
                        "Sells within %(hours)s hours would reach %(share)s %% of your holdings "
                        "(limit %(limit)s %%)."
                    ),
                    {"hours": hours, "share": _percent(share), "limit": _percent(self.options["max_share"])},
                ),
                self.action,
                {"share": round(float(share), 4), "sold": sold, "base": base, "hours": hours},
            )


class IlliquidBuy(OrderRule):
    """A buy large against the instrument's average daily traded value, a buy of an instrument under the
    liquidity floor, or a first trade in a foreign small cap.

    ``max_adv_share``: largest share of a day's traded value one buy may be. ``liquidity_floor``: daily
    traded value under which an instrument is illiquid; buys of one are held above ``floor_max_amount`` or
    above ``floor_max_share`` of the portfolio. ``home_country``: where the portal's own market is.
    """

    defaults: ClassVar[dict[str, Any]] = {
        "max_adv_share": 0.05,
        "liquidity_floor": DEFAULT_LIQUIDITY_FLOOR,
        "floor_max_amount": 1_000_000,
        "floor_max_share": 0.2,
        "foreign_small_cap": True,
        "home_country": "JP",
    }

    def evaluate(self, facts: OrderFacts) -> Iterable[RuleFinding]:
        if not facts.is_buy:
            return
        daily = facts.instrument.daily_value
        if daily is None or daily <= 0:
            yield RuleFinding(
                "illiquid_unknown",
                MEDIUM,
                reason(_("The trading volume of %(symbol)s is unknown."), {"symbol": facts.symbol}),
                self.action,
            )
            return
        adv_share = facts.amount / daily
        if adv_share > Decimal(str(self.options["max_adv_share"])):
            yield RuleFinding(
                "illiquid_buy_large",
                HIGH,
                reason(
                    _("This buy is %(share)s %% of what %(symbol)s trades in a day."),
                    {"share": _percent(adv_share), "symbol": facts.symbol},
                ),
                self.action,
                {"adv_share": round(float(adv_share), 4), "daily_value": daily},
            )
        elif daily < Decimal(self.options["liquidity_floor"]):
            total = facts.portfolio.total_value
            portfolio_share = facts.amount / total if total > 0 else Decimal(1)
            if facts.amount > Decimal(self.options["floor_max_amount"]) or portfolio_share > Decimal(
                str(self.options["floor_max_share"])
            ):
                yield RuleFinding(
                    "illiquid_buy_thin",
                    MEDIUM,
                    reason(
                        _("%(symbol)s is thinly traded and this buy is %(share)s %% of your portfolio."),
                        {"symbol": facts.symbol, "share": _percent(portfolio_share)},
                    ),
                    self.action,
                    {"daily_value": daily, "portfolio_share": round(float(portfolio_share), 4)},
                )
        instrument = facts.instrument
        foreign = instrument.listing_country.upper() != str(self.options["home_country"]).upper()
        if self.options["foreign_small_cap"] and instrument.is_small_cap and foreign and facts.first_trade:
            yield RuleFinding(
                "foreign_small_cap_first_trade",
                MEDIUM,
                reason(
                    _("This is your first trade in %(symbol)s, a small company listed abroad."),
                    {"symbol": facts.symbol},
                ),
                self.action,
                {"listing_country": instrument.listing_country},
            )


class Pivot(OrderRule):
    """A buy of an illiquid instrument after selling more than ``min_sold_share`` of the holdings within
    ``window_hours``: the signature of the 2025 account takeovers, held at the highest severity."""

    defaults: ClassVar[dict[str, Any]] = {"window_hours": 24, "min_sold_share": 0.3}

    def evaluate(self, facts: OrderFacts) -> Iterable[RuleFinding]:
        if not (facts.is_buy and facts.illiquid):
            return
        hours = int(self.options["window_hours"])
        share, sold, base = facts.sold_share(hours)
        if share >= Decimal(str(self.options["min_sold_share"])):
            yield RuleFinding(
                "liquidate_and_pivot",
                CRITICAL,
                reason(
                    _(
                        "After selling %(share)s %% of your holdings within %(hours)s hours, this order buys "
                        "%(symbol)s, a thinly traded stock."
                    ),
                    {"share": _percent(share), "hours": hours, "symbol": facts.symbol},
                ),
                self.action,
                {"sold_share": round(float(share), 4), "sold": sold, "hours": hours},
            )


class RiskySession(OrderRule):
    """Lower limits for a session that was stepped up, re-scored or started on a new device within
    ``hours`` (or that carries no authguard state): sells above ``max_sell_share`` within ``window_hours``,
    and buys of illiquid instruments above ``max_illiquid_amount``, are held."""

    defaults: ClassVar[dict[str, Any]] = {
        "hours": DEFAULT_RISKY_SESSION_HOURS,
        "window_hours": 24,
        "max_sell_share": 0.25,
        "max_illiquid_amount": 300_000,
    }

    def evaluate(self, facts: OrderFacts) -> Iterable[RuleFinding]:
        session_risky = facts.session.risky(now=facts.now, hours=int(self.options["hours"]))
        # SECURITY: trust over time: an account whose sign-in context changed within the trust days keeps
        # the lower limits in every later session, not only in the one that started on the new device.
        account_changed = bool(facts.trust and facts.trust.changed)
        if not (session_risky or account_changed):
            return
        evidence: dict[str, Any] = {"session": facts.session.reasons() if session_risky else []}
        if account_changed and facts.trust is not None:
            evidence["account"] = list(facts.trust.reasons)
        if facts.is_sell:
            share, _sold, _base = facts.sold_share(int(self.options["window_hours"]))
            if share > Decimal(str(self.options["max_sell_share"])):
                template = (
                    _(
                        "This session started recently on a new device or after a security check; sells "
                        "above %(limit)s %% of your holdings need your confirmation."
                    )
                    if session_risky
                    else _(
                        "The way you sign in changed recently (a new device or network, or a security "
                        "setting); sells above %(limit)s %% of your holdings need your confirmation."
                    )
                )
                yield RuleFinding(
                    "risky_session_sell",
                    HIGH,
                    reason(template, {"limit": _percent(self.options["max_sell_share"])}),
                    self.action,
                    {**evidence, "share": round(float(share), 4)},
                )
        elif facts.illiquid and facts.amount > Decimal(self.options["max_illiquid_amount"]):
            template = (
                _(
                    "This session started recently on a new device or after a security check; buying "
                    "thinly traded %(symbol)s needs your confirmation."
                )
                if session_risky
                else _(
                    "The way you sign in changed recently (a new device or network, or a security setting); "
                    "buying thinly traded %(symbol)s needs your confirmation."
                )
            )
            yield RuleFinding(
                "risky_session_illiquid_buy",
                HIGH,
                reason(template, {"symbol": facts.symbol}),
                self.action,
                evidence,
            )


class Campaign(OrderRule):
    """Many accounts buying one illiquid instrument within ``window_hours``: at ``accounts`` distinct buyers
    (or ``risky_accounts`` from risky sessions) the instrument is flagged, the admins are alerted, and every
    further buy of it is held for every account until an admin clears the flag."""

    defaults: ClassVar[dict[str, Any]] = {
        "window_hours": 6,
        "accounts": 10,
        "risky_accounts": 5,
        # [hours, share]: buys by accounts with a recent context change above ``share`` of one day's traded
        # value within ``hours`` flag the instrument, however the buys are spaced (battery case 52).
        "volume_windows": [[24, 0.1], [72, 0.2], [168, 0.25]],
        # ...once at least this many such accounts bought it (one account's own buys are the exposure rule's).
        "volume_accounts": 3,
        # The count of accounts flags only when together they bought at least this share of a day's traded
        # value: a dozen customers buying ¥3,000 each of a small cap is no pump (0 turns the condition off).
        "min_volume_share": 0.05,
    }

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        windows = self.options["volume_windows"]
        ok = isinstance(windows, list | tuple) and all(
            isinstance(w, list | tuple)
            and len(w) == 2
            and all(isinstance(x, int | float) and not isinstance(x, bool) and x > 0 for x in w)
            for w in windows
        )
        if not ok:
            raise ValueError(
                "option 'volume_windows' must be a list of [hours, share] pairs of positive numbers"
            )

    def campaign_hours(self) -> int:
        return int(self.options["window_hours"])

    def volume_hours(self) -> list[int]:
        """The hours of the volume windows (the guard sums risky buys over each)."""
        return sorted({int(h) for h, _share in self.options["volume_windows"]})

    def window_hours(self) -> int | None:
        return None  # reads CampaignFacts, not the customer's own window

    def evaluate(self, facts: OrderFacts) -> Iterable[RuleFinding]:
        campaign = facts.campaign
        if not facts.is_buy or campaign is None:
            return
        if campaign.flagged:
            yield RuleFinding(
                "campaign_instrument",
                CRITICAL,
                reason(
                    _(
                        "Many accounts have been buying %(symbol)s at once; "
                        "buys of it need your confirmation."
                    ),
                    {"symbol": facts.symbol},
                ),
                self.action,
                {"accounts": campaign.accounts},
            )
            return
        volume = self._volume_window(campaign)
        if volume is not None:
            hours, share, limit = volume
            yield RuleFinding(
                "campaign_detected",
                CRITICAL,
                reason(
                    _(
                        "Many accounts have been buying %(symbol)s at once; "
                        "buys of it need your confirmation."
                    ),
                    {"symbol": facts.symbol},
                ),
                self.action,
                {
                    "accounts": campaign.accounts,
                    "risky_accounts": campaign.risky_accounts,
                    "hours": hours,
                    "volume_share": round(float(share), 4),
                    "limit": limit,
                    "flag": True,
                },
            )
            return
        enough = campaign.accounts >= int(self.options["accounts"]) or campaign.risky_accounts >= int(
            self.options["risky_accounts"]
        )
        daily = campaign.daily_value
        if enough and campaign.window_volume is not None and daily is not None and daily > 0:
            # SECURITY: an unknown volume (or none reported) keeps the count alone, as before: fail closed.
            enough = campaign.window_volume / daily >= Decimal(str(self.options["min_volume_share"]))
        if enough:
            yield RuleFinding(
                "campaign_detected",
                CRITICAL,
                reason(
                    _(
                        "Many accounts have been buying %(symbol)s at once; "
                        "buys of it need your confirmation."
                    ),
                    {"symbol": facts.symbol},
                ),
                self.action,
                {
                    "accounts": campaign.accounts,
                    "risky_accounts": campaign.risky_accounts,
                    "hours": campaign.hours,
                    "flag": True,
                },
            )

    def _volume_window(self, campaign: CampaignFacts) -> tuple[int, Decimal, float] | None:
        """The first volume window whose risky buys exceed its share of a day's traded value, if any."""
        daily = campaign.daily_value
        if (
            daily is None
            or daily <= 0
            or campaign.risky_volume_accounts < int(self.options["volume_accounts"])
        ):
            return None
        for hours, limit in sorted(self.options["volume_windows"]):
            bought = campaign.risky_volume.get(int(hours))
            if bought is None:
                continue
            share = bought / daily
            if share > Decimal(str(limit)):
                return int(hours), share, float(limit)
        return None


class Exposure(OrderRule):
    """The account's exposure over days, not one order in a 24-hour window (issue 11).

    Over ``horizon_hours`` (a week) and ``slow_horizon_hours`` (a month), placed and held orders add up
    however they are split, ordered or spaced:

    - ``exposure_liquidation``: sells against the holdings' value at the horizon's start (buys never raise
      it) above ``max_liquidation_share`` (``slow_max_liquidation_share`` over the slow horizon);
    - ``exposure_illiquid``: buys weighted by their instrument's illiquidity (the liquidity scale: 0 for a
      stock trading ``liquid_value`` a day or more, 1 at ``illiquid_value`` or less, a foreign small cap 1,
      a small cap at least ``small_cap_weight``) above ``max_illiquid_share`` of the portfolio's value
      within the slow horizon, so the limit tightens continuously as the stock gets thinner;
    - ``exposure_instrument_volume``: the account's buys of one instrument within the horizon above
      ``max_adv_share`` of its daily traded value (chunks just under the per-order limit add up);
    - ``exposure_concentration``: after the buy, more than ``max_position_share`` of the portfolio (weighted
      by illiquidity) in the instrument.

    An account whose sign-in context changed within ``trust_days`` (or a risky session) has every limit
    multiplied by ``changed_factor``.
    """

    defaults: ClassVar[dict[str, Any]] = {
        "horizon_hours": DEFAULT_HORIZON_HOURS,
        "slow_horizon_hours": DEFAULT_SLOW_HORIZON_HOURS,
        "max_liquidation_share": 0.5,
        "slow_max_liquidation_share": 0.8,
        "max_illiquid_share": 0.1,
        "max_adv_share": 0.1,
        "max_position_share": 0.3,
        "trust_days": DEFAULT_TRUST_DAYS,
        "changed_factor": 0.5,
        "liquid_value": DEFAULT_LIQUID_VALUE,
        "illiquid_value": DEFAULT_ILLIQUID_VALUE,
        "small_cap_weight": 0.5,
    }

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        if not self.options["liquid_value"] > self.options["illiquid_value"] > 0:
            raise ValueError("option 'liquid_value' must be above 'illiquid_value', both positive")
        if not 0 < self.options["changed_factor"] <= 1:
            raise ValueError("option 'changed_factor' must be above 0 and at most 1")

    def window_hours(self) -> int | None:
        return int(self.options["horizon_hours"])

    def horizons(self) -> list[int]:
        return sorted({int(self.options["horizon_hours"]), int(self.options["slow_horizon_hours"])})

    def _limit(self, name: str, facts: OrderFacts) -> Decimal:
        limit = Decimal(str(self.options[name]))
        if facts.account_changed:
            limit *= Decimal(str(self.options["changed_factor"]))
        return limit

    def _evidence(self, facts: OrderFacts, **values: Any) -> dict[str, Any]:
        evidence: dict[str, Any] = {
            k: round(float(v), 4) if isinstance(v, Decimal) else v for k, v in values.items()
        }
        if facts.account_changed:
            evidence["account_changed"] = list(facts.trust.reasons) if facts.trust else []
            if facts.session_risky:
                evidence["account_changed"].append("risky_session")
        return evidence

    def evaluate(self, facts: OrderFacts) -> Iterable[RuleFinding]:
        if facts.is_sell:
            yield from self._liquidation(facts)
        else:
            yield from self._illiquid(facts)

    def _liquidation(self, facts: OrderFacts) -> Iterable[RuleFinding]:
        checks = (
            (int(self.options["horizon_hours"]), "max_liquidation_share"),
            (int(self.options["slow_horizon_hours"]), "slow_max_liquidation_share"),
        )
        for hours, option in checks:
            if hours not in facts.windows:
                continue
            share, sold, base = facts.sold_share(hours)
            limit = self._limit(option, facts)
            if share > limit:
                yield RuleFinding(
                    "exposure_liquidation",
                    HIGH,
                    reason(
                        _(
                            "Sells within %(days)s days would reach %(share)s %% of your holdings "
                            "(limit %(limit)s %%)."
                        ),
                        {"days": _days(hours), "share": _percent(share), "limit": _percent(limit)},
                    ),
                    self.action,
                    self._evidence(facts, share=share, sold=str(sold), base=str(base), hours=hours),
                )
                return

    def _illiquid(self, facts: OrderFacts) -> Iterable[RuleFinding]:
        horizon = int(self.options["horizon_hours"])
        slow = int(self.options["slow_horizon_hours"])
        daily = facts.instrument.daily_value
        if horizon in facts.windows and daily is not None and daily > 0:
            bought = facts.window(horizon).symbol_buys + facts.amount
            share = bought / daily
            limit = self._limit("max_adv_share", facts)
            if share > limit:
                yield RuleFinding(
                    "exposure_instrument_volume",
                    HIGH,
                    reason(
                        _(
                            "Within %(days)s days your buys of %(symbol)s would reach %(share)s %% of what "
                            "it trades in a day."
                        ),
                        {"days": _days(horizon), "symbol": facts.symbol, "share": _percent(share)},
                    ),
                    self.action,
                    self._evidence(facts, adv_share=share, bought=str(bought), hours=horizon),
                )
        if facts.illiquidity <= 0:
            return
        total = facts.portfolio.total_value
        weighted = facts.weighted_amount
        if slow in facts.windows:
            exposure = facts.window(slow).illiquid_amount + weighted
            share = exposure / total if total > 0 else Decimal(1)
            limit = self._limit("max_illiquid_share", facts)
            if share > limit:
                yield RuleFinding(
                    "exposure_illiquid",
                    CRITICAL,
                    reason(
                        _(
                            "Within %(days)s days your buys of thinly traded stocks would reach %(share)s %% "
                            "of your portfolio (limit %(limit)s %%)."
                        ),
                        {"days": _days(slow), "share": _percent(share), "limit": _percent(limit)},
                    ),
                    self.action,
                    self._evidence(
                        facts, share=share, weighted=str(exposure), illiquidity=facts.illiquidity, hours=slow
                    ),
                )
                return
        holding = facts.portfolio.holding(facts.symbol)
        position = (holding.value if holding else Decimal(0)) + facts.amount
        concentration = position * Decimal(str(facts.illiquidity)) / total if total > 0 else Decimal(1)
        limit = self._limit("max_position_share", facts)
        if concentration > limit:
            yield RuleFinding(
                "exposure_concentration",
                HIGH,
                reason(
                    _(
                        "After this buy, %(share)s %% of your portfolio would be in %(symbol)s, a thinly "
                        "traded stock."
                    ),
                    {"share": _percent(position / total if total > 0 else 1), "symbol": facts.symbol},
                ),
                self.action,
                self._evidence(facts, concentration=concentration, illiquidity=facts.illiquidity),
            )


def _days(hours: int) -> int | str:
    """Hours as whole days for a reason (``168`` -> ``7``)."""
    return hours // 24 if hours % 24 == 0 else f"{hours / 24:.1f}"


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
    import math

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


# -- configuration ---------------------------------------------------------------------------------------


def build_rules(config: Sequence[dict[str, Any]]) -> tuple[OrderRule, ...]:
    """Instantiate a ``[{"NAME", "OPTIONS"}]`` list."""
    return tuple(import_string(entry["NAME"])(**entry.get("OPTIONS", {})) for entry in config)


@functools.lru_cache(maxsize=1)
def configured_rules() -> tuple[OrderRule, ...]:
    """The rules of ``AUTHGUARD_ORDER_RULES``, built once per process (rebuilt when settings change)."""
    from authguard.conf import app_settings

    return build_rules(app_settings.ORDER_RULES)


def _settings_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == "AUTHGUARD_ORDER_RULES":
        configured_rules.cache_clear()


setting_changed.connect(_settings_changed)


def rules_problem(raw: Any) -> str | None:
    """Say what is wrong with an order-rule list (import and construct each), or ``None`` when valid."""
    from authguard.checks import plugin_list_problem

    return plugin_list_problem(raw, base=OrderRule)


def rule_option(rules: Sequence[OrderRule], kind: type[OrderRule], name: str, default: Any) -> Any:
    """The option ``name`` of the first configured rule of class ``kind``, else ``default``."""
    for rule in rules:
        if isinstance(rule, kind):
            return rule.options.get(name, default)
    return default
