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
from decimal import Decimal
from typing import Any, ClassVar

from django.core.signals import setting_changed
from django.utils.module_loading import import_string
from django.utils.translation import gettext_lazy as _

from authguard.conf import DEFAULT_ORDER_RULES as DEFAULT_ORDER_RULES
from authguard.conf import app_settings
from authguard.orders.exposure_rules import Campaign as Campaign
from authguard.orders.exposure_rules import Exposure as Exposure
from authguard.orders.rule_base import CRITICAL as CRITICAL
from authguard.orders.rule_base import DEFAULT_HORIZON_HOURS as DEFAULT_HORIZON_HOURS
from authguard.orders.rule_base import DEFAULT_ILLIQUID_VALUE as DEFAULT_ILLIQUID_VALUE
from authguard.orders.rule_base import DEFAULT_LIQUID_VALUE as DEFAULT_LIQUID_VALUE
from authguard.orders.rule_base import DEFAULT_LIQUIDITY_FLOOR as DEFAULT_LIQUIDITY_FLOOR
from authguard.orders.rule_base import DEFAULT_RISKY_SESSION_HOURS as DEFAULT_RISKY_SESSION_HOURS
from authguard.orders.rule_base import DEFAULT_SLOW_HORIZON_HOURS as DEFAULT_SLOW_HORIZON_HOURS
from authguard.orders.rule_base import DEFAULT_TRUST_DAYS as DEFAULT_TRUST_DAYS
from authguard.orders.rule_base import DENY as DENY
from authguard.orders.rule_base import HIGH as HIGH
from authguard.orders.rule_base import HOLD as HOLD
from authguard.orders.rule_base import ILLIQUID_WEIGHT as ILLIQUID_WEIGHT
from authguard.orders.rule_base import LOW as LOW
from authguard.orders.rule_base import MEDIUM as MEDIUM
from authguard.orders.rule_base import CampaignFacts as CampaignFacts
from authguard.orders.rule_base import HoldingValue as HoldingValue
from authguard.orders.rule_base import InstrumentInfo as InstrumentInfo
from authguard.orders.rule_base import OrderFacts as OrderFacts
from authguard.orders.rule_base import OrderRule as OrderRule
from authguard.orders.rule_base import PortfolioSnapshot as PortfolioSnapshot
from authguard.orders.rule_base import RuleFinding as RuleFinding
from authguard.orders.rule_base import SessionFacts as SessionFacts
from authguard.orders.rule_base import TrustFacts as TrustFacts
from authguard.orders.rule_base import WindowTotals as WindowTotals
from authguard.orders.rule_base import _percent as _percent
from authguard.orders.rule_base import illiquidity as illiquidity
from authguard.orders.rule_base import message_of as message_of
from authguard.orders.rule_base import reason as reason
from authguard.orders.rule_base import render_message as render_message
from authguard.plugins import plugin_list_problem

#: Trading days of long-run data (``InstrumentInfo.history_days``) under which an instrument counts as
#: illiquid, unless the configured :class:`IlliquidBuy` sets its own ``min_history_days``.
DEFAULT_MIN_HISTORY_DAYS = 20
#: Trading days over which a young instrument's weight falls from 1 back to its traded value's
#: (``IlliquidBuy`` option ``history_fade_days``): half a year of data before volume alone is believed.
DEFAULT_HISTORY_FADE_DAYS = 120


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
    ``min_history_days``: an instrument whose long-run data cover fewer trading days
    (``InstrumentInfo.history_days``: a new listing, a new code) is illiquid for every rule (0: never);
    ``history_fade_days``: from there its weight falls no faster than linearly to its traded value's weight
    at this many trading days of history (0 or at most ``min_history_days``: no fade).
    """

    defaults: ClassVar[dict[str, Any]] = {
        "max_adv_share": 0.05,
        "liquidity_floor": DEFAULT_LIQUIDITY_FLOOR,
        "floor_max_amount": 1_000_000,
        "floor_max_share": 0.2,
        "foreign_small_cap": True,
        "home_country": "JP",
        # A month of trading days: the window of the reference price's median (docs/order-guard.md).
        "min_history_days": DEFAULT_MIN_HISTORY_DAYS,
        # A gang wash-trading a new listing every day of its first month made that month its long run, and
        # the stock weighed 0 on day 21 (red team, round fifty-eight): the weight fades over half a year.
        "history_fade_days": DEFAULT_HISTORY_FADE_DAYS,
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
        adv_share = facts.amount / daily  # like with like: both at the day's price (round thirty-eight)
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
            total = facts.trusted_total  # SECURITY: not lifted by a pump of her thin holdings (round thirty)
            portfolio_share = facts.counted_amount / total if total > 0 else Decimal(1)
            if facts.counted_amount > Decimal(self.options["floor_max_amount"]) or portfolio_share > Decimal(
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
        elif facts.illiquid and facts.counted_amount > Decimal(self.options["max_illiquid_amount"]):
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


# -- configuration ---------------------------------------------------------------------------------------


def build_rules(config: Sequence[dict[str, Any]]) -> tuple[OrderRule, ...]:
    """Instantiate a ``[{"NAME", "OPTIONS"}]`` list."""
    return tuple(import_string(entry["NAME"])(**entry.get("OPTIONS", {})) for entry in config)


@functools.lru_cache(maxsize=1)
def configured_rules() -> tuple[OrderRule, ...]:
    """The rules of ``AUTHGUARD_ORDER_RULES``, built once per process (rebuilt when settings change)."""
    return build_rules(app_settings.ORDER_RULES)


def _settings_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == "AUTHGUARD_ORDER_RULES":
        configured_rules.cache_clear()


setting_changed.connect(_settings_changed)


def rules_problem(raw: Any) -> str | None:
    """Say what is wrong with an order-rule list (import and construct each), or ``None`` when valid."""
    # L8 (checks) until the merge moves plugin_list_problem to authguard.validators (then top-level).

    return plugin_list_problem(raw, base=OrderRule)


def rule_option(rules: Sequence[OrderRule], kind: type[OrderRule], name: str, default: Any) -> Any:
    """The option ``name`` of the first configured rule of class ``kind``, else ``default``."""
    for rule in rules:
        if isinstance(rule, kind):
            return rule.options.get(name, default)
    return default
