"""The order rules that read more than one order: many accounts buying one instrument (:class:`Campaign`)
and the account's exposure over days (:class:`Exposure`, issue 11).

Configured and loaded like every order rule through :mod:`authguard.orders.rules` (stored policies name them
``authguard.order_rules.Campaign`` / ``.Exposure``).
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any, ClassVar

from django.utils.translation import gettext_lazy as _

from authguard.orders.rule_base import (
    CRITICAL,
    DEFAULT_HORIZON_HOURS,
    DEFAULT_ILLIQUID_VALUE,
    DEFAULT_LIQUID_VALUE,
    DEFAULT_SLOW_HORIZON_HOURS,
    DEFAULT_TRUST_DAYS,
    HIGH,
    CampaignFacts,
    OrderFacts,
    OrderRule,
    RuleFinding,
    _days,
    _percent,
    reason,
)

#: The longest ``unvouched_days`` a policy may set: the roll-up keeps the count's rows in the ledger (where
#: each keeps its browser) one day longer (:data:`authguard.orders.rollup.UNVOUCHED_KEPT_DAYS`); a longer
#: count read rolled-up days, which any browser's confirmation restarted (red team, round sixty-one).
MAX_UNVOUCHED_DAYS = 365
#: The long count's finding (:meth:`Exposure._unvouched`): only her confirmation of a hold that had it starts
#: the count again (:mod:`authguard.orders.vouching`).
UNVOUCHED_FINDING = "exposure_illiquid_unvouched"
#: The long count of sells (:meth:`Exposure._sells_unvouched`, :mod:`authguard.orders.long_sells`).
LIQUIDATION_UNVOUCHED_FINDING = "exposure_liquidation_unvouched"
#: The longest ``month_hours`` a policy may set (92 days): the campaign statement reads every buy of the
#: instrument within it, by every account.
MAX_MONTH_HOURS = 92 * 24


def _campaign_reason(facts: OrderFacts) -> Any:
    """What the customer reads for every campaign finding (flagged, by volume or by count)."""
    return reason(
        _("Many accounts have been buying %(symbol)s at once; buys of it need your confirmation."),
        {"symbol": facts.symbol},
    )


class Campaign(OrderRule):
    """Many accounts buying one illiquid instrument within ``window_hours``: at ``accounts`` distinct buyers
    (or ``risky_accounts`` from risky sessions) the instrument is flagged, the admins are alerted, and every
    further buy of it is held for every account until an admin clears the flag. So do buys by volume: by
    accounts with a recent context change within the ``volume_windows``, ``slow_accounts`` of any kind within
    the longest of them, and any accounts together within ``month_hours``."""

    defaults: ClassVar[dict[str, Any]] = {
        "window_hours": 6,
        "accounts": 10,
        "risky_accounts": 5,
        # [hours, share]: buys by accounts with a recent context change above ``share`` of one day's traded
        # value within ``hours`` flag the instrument, however the buys are spaced (battery case 52).
        "volume_windows": [[24, 0.1], [72, 0.2], [168, 0.25]],
        # How far back a context change makes an account's buys count in the volume windows: longer than the
        # longest window plus the trust days, so a gang cannot wait out the trust week before it buys.
        "changed_days": 30,
        # Any accounts, changed or not: ``slow_accounts`` of them buying more than ``slow_share`` of a day's
        # traded value within the longest volume window (the gang that outwaits every look-back).
        "slow_accounts": 10,
        "slow_share": 0.25,
        # ...once at least this many such accounts bought it (one account's own buys are the exposure rule's).
        "volume_accounts": 3,
        # The count of accounts flags only when together they bought at least this share of a day's traded
        # value: a dozen customers buying ¥3,000 each of a small cap is no pump (0 turns the condition off).
        "min_volume_share": 0.05,
        # Any accounts, at least ``month_accounts`` of them, buying more than ``month_share`` of a day's
        # traded value within ``month_hours``, however many at a time and however spaced: groups of accounts
        # taking turns add up (red team, round fifty-nine). ``month_share`` 0 turns it off.
        "month_hours": 720,
        "month_share": 1.0,
        "month_accounts": 3,
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
        longest = max([int(h) for h, _share in windows] or [0])
        if not longest < self.options["month_hours"] <= MAX_MONTH_HOURS:
            # The month's hours are told from the volume windows' by being the longest (volume_hours).
            raise ValueError(
                f"option 'month_hours' must be above the longest volume window ({longest}) and at most "
                f"{MAX_MONTH_HOURS}"
            )
        if self.options["month_accounts"] < 2:
            # One account's own buys are the exposure rule's (max_adv_share), not a campaign.
            raise ValueError("option 'month_accounts' must be at least 2")

    def campaign_hours(self) -> int:
        return int(self.options["window_hours"])

    def volume_hours(self) -> list[int]:
        """The hours of the volume windows (the guard sums risky buys over each) and, last and longest, the
        month's (``month_hours``: the guard sums every account's buys over it too)."""
        return [*sorted({int(h) for h, _share in self.options["volume_windows"]}), self.month_hours()]

    def month_hours(self) -> int:
        return int(self.options["month_hours"])

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
                _campaign_reason(facts),
                self.action,
                {"accounts": campaign.accounts},
            )
            return
        month = self._month(campaign)
        arm = self._arm(campaign, month)
        if arm is not None:
            name, evidence = arm
            evidence = {**evidence, "flag": True, "arm": name, **self._month_shown(campaign, month)}
            yield RuleFinding("campaign_detected", CRITICAL, _campaign_reason(facts), self.action, evidence)

    def _arm(self, campaign: CampaignFacts, month: Decimal | None) -> tuple[str, dict[str, Any]] | None:
        """The first arm that flags the instrument, and its evidence: by the volume windows, the slow arm,
        the month (``month``: :meth:`_month`'s share) or the count of accounts."""
        volume = self._volume_window(campaign)
        if volume is not None:
            hours, share, limit = volume
            evidence = {"accounts": campaign.accounts, "risky_accounts": campaign.risky_accounts}
            return "volume", {
                **evidence,
                "hours": hours,
                "volume_share": round(float(share), 4),
                "limit": limit,
            }
        daily = campaign.daily_value
        slow = campaign.slow_volume
        if (
            campaign.slow_accounts >= int(self.options["slow_accounts"])
            and slow is not None
            and daily is not None
            and daily > 0
            and slow / daily > Decimal(str(self.options["slow_share"]))
        ):
            evidence = {"accounts": campaign.slow_accounts, "hours": campaign.slow_hours}
            return "slow", {
                **evidence,
                "volume_share": round(float(slow / daily), 4),
                "limit": float(self.options["slow_share"]),
            }
        if month is not None:
            evidence = {"accounts": campaign.month_accounts, "hours": self.month_hours()}
            return "month", {
                **evidence,
                "volume_share": round(float(month), 4),
                "limit": float(self.options["month_share"]),
            }
        enough = campaign.accounts >= int(self.options["accounts"]) or campaign.risky_accounts >= int(
            self.options["risky_accounts"]
        )
        if enough and campaign.window_volume is not None and daily is not None and daily > 0:
            # SECURITY: an unknown volume (or none reported) keeps the count alone, as before: fail closed.
            enough = campaign.window_volume / daily >= Decimal(str(self.options["min_volume_share"]))
        if not enough:
            return None
        evidence = {"accounts": campaign.accounts, "risky_accounts": campaign.risky_accounts}
        return "count", {**evidence, "hours": campaign.hours}

    def _month_shown(self, campaign: CampaignFacts, month: Decimal | None) -> dict[str, Any]:
        """What every flag shows the desk of the instrument's month (the flag keeps it: ``CampaignFlag``),
        whichever arm raised it: the accounts, the value they bought (placed, since the last clearing that
        judged the month, this order included) and its share of a day's traded value; ``month_over``: the
        month arm's own limit is passed, so the desk's clearing judges the month.

        SECURITY: a clearing forgives the month's buys only when the flag showed them over the month's
        share; a flag of another arm, raised by three of the gang's own held and cancelled buys, showed the
        desk nothing of its victims' month, and its clearing started the month again every week (red team,
        round seventy-five)."""
        daily, bought = campaign.daily_value, campaign.month_volume
        share = bought / daily if bought is not None and daily is not None and daily > 0 else None
        return {
            "month_hours": self.month_hours(),
            "month_accounts": campaign.month_accounts,
            "month_volume": None if bought is None else str(bought),
            "month_share": None if share is None else round(float(share), 4),
            "month_over": month is not None,  # SECURITY: only then does a clearing start the month again
        }

    def _month(self, campaign: CampaignFacts) -> Decimal | None:
        """The share of a day's traded value every account bought within ``month_hours``, when above
        ``month_share`` and bought by at least ``month_accounts`` accounts.

        SECURITY: the slow arm counts distinct buyers within a week; twenty victims buying in turn, nine a
        week, each under every per-account limit, bought 6.9 days of a thin stock's traded value in a quarter
        unflagged (red team, round fifty-nine). By volume over the month, rotating or adding accounts changes
        nothing; at least a few accounts, so that one customer's own buys stay the exposure rule's."""
        limit = Decimal(str(self.options["month_share"]))
        daily, bought = campaign.daily_value, campaign.month_volume
        if limit <= 0 or daily is None or daily <= 0 or bought is None:
            return None
        if campaign.month_accounts < int(self.options["month_accounts"]):
            return None
        share = bought / daily
        return share if share > limit else None

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
    - ``exposure_illiquid_unvouched``: for a thin buy from a session no passkey vouched for, every thin buy
      since the customer last confirmed a held order (at most ``unvouched_days`` back) above
      ``max_illiquid_share``: the month's share must not renew every month for a browser she never vouched
      for (:mod:`authguard.orders.vouching`);
    - ``exposure_liquidation_unvouched``: for a sell from a session no passkey vouched for, every such sell
      since the customer last confirmed a hold of this count (at most ``unvouched_days`` back) above
      ``slow_max_liquidation_share`` of the holdings at that point (:mod:`authguard.orders.long_sells`);
    - ``exposure_concentration``: after the buy, more than ``max_position_share`` of the portfolio (weighted
      by illiquidity) in the instrument;
    - ``exposure_reference_price``: a sell checked at a price below the instrument's long-run price
      (``InstrumentInfo.reference_price``), or a buy above it, by more than ``max_reference_deviation`` of it,
      weighted by the instrument's exposure weight (an illiquid stock in full, a liquid one not at all).

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
        # How far from its long-run price a thin stock's order may be checked without a hold: a day's price
        # limit of a Tokyo stock of ¥500 or more is 14-30 %, a gang's crash or pump tenfold
        # (docs/order-guard.md).
        "max_reference_deviation": 0.3,
        # How far back a thin buy (a sell) from a session no passkey vouched for counts the account's thin
        # buys (sells) since its last confirmed hold of that count against ``max_illiquid_share``
        # (``slow_max_liquidation_share``); 0 turns the long counts off.
        "unvouched_days": 365,
    }

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        if not self.options["liquid_value"] > self.options["illiquid_value"] > 0:
            raise ValueError("option 'liquid_value' must be above 'illiquid_value', both positive")
        if not 0 < self.options["changed_factor"] <= 1:
            raise ValueError("option 'changed_factor' must be above 0 and at most 1")
        if not 0 < self.options["max_reference_deviation"] < 1:
            # At 1 or more no sell is ever held (its price cannot fall by more than all of it).
            raise ValueError("option 'max_reference_deviation' must be above 0 and below 1")
        if self.options["unvouched_days"] > MAX_UNVOUCHED_DAYS:
            raise ValueError(f"option 'unvouched_days' must be at most {MAX_UNVOUCHED_DAYS} (0 turns it off)")

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
        yield from self._reference_price(facts)
        if facts.is_sell:
            yield from self._liquidation(facts)
        else:
            yield from self._illiquid(facts)

    def _reference_price(self, facts: OrderFacts) -> Iterable[RuleFinding]:
        """A thin stock's order checked at a price far from its long-run price, to the customer's loss."""
        deviation = facts.instrument.price_deviation(facts.side)
        weight = Decimal(str(facts.exposure_weight))
        if deviation is None or weight <= 0:
            return  # no reference price (authguard.W124), or a liquid stock: no day's trades move it far
        limit = self._limit("max_reference_deviation", facts)
        # SECURITY: the sell limits measure a sell at the price checked, which in a thin stock the gang's
        # wash trades set: the victim's 24 % of the portfolio in it, checked at a tenth of its price, was 3 %
        # of the base and sold into the gang's bid (red team, round twenty-three); a buy far above it is the
        # pump the 2025 gangs sold into victims' cash. Weighted like the exposure (no floor to trade above).
        if deviation * weight <= limit:
            return
        sell = _(
            "This sell's price is %(share)s %% below the usual price of %(symbol)s, a thinly traded stock."
        )
        buy = _(
            "This buy's price is %(share)s %% above the usual price of %(symbol)s, a thinly traded stock."
        )
        yield RuleFinding(
            "exposure_reference_price",
            HIGH,
            reason(sell if facts.is_sell else buy, {"share": _percent(deviation), "symbol": facts.symbol}),
            self.action,
            self._evidence(
                facts,
                deviation=deviation,
                limit=limit / weight,
                price=str(facts.instrument.price),
                reference_price=str(facts.instrument.reference_price),
                illiquidity=facts.illiquidity,
            ),
        )

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
                break
        yield from self._sells_unvouched(facts)

    def _sells_unvouched(self, facts: OrderFacts) -> Iterable[RuleFinding]:
        """The sells since the customer last confirmed a hold of this count, for a sell no passkey vouched
        for, against her holdings at that point (today's, plus what was sold, less what was bought).

        SECURITY: the month's share rolls every 30 days; a thief who kept her session sold just under it
        every month and had 94.7 % of her holdings sold in seven weeks, never held (red team, round
        seventy-three). Not lowered for a changed account: the month's limit already is. Shown beside the
        month's finding, so that one confirmation of hers answers both."""
        counted = facts.unvouched
        if counted is None or counted.vouched:
            return
        sold = counted.amount + facts.amount
        holdings_now = facts.portfolio.holdings_value if facts.base_holdings is None else facts.base_holdings
        base = max(holdings_now + counted.amount - counted.bought, sold)
        share = sold / base if base > 0 else Decimal(1)
        limit = Decimal(str(self.options["slow_max_liquidation_share"]))
        if share <= limit:
            return
        yield RuleFinding(
            LIQUIDATION_UNVOUCHED_FINDING,
            HIGH,
            reason(
                _(
                    "Your sells since you last confirmed them would reach %(share)s %% of your holdings "
                    "(limit %(limit)s %%)."
                ),
                {"share": _percent(share), "limit": _percent(limit)},
            ),
            self.action,
            self._evidence(
                facts,
                share=share,
                sold=str(sold),
                base=str(base),
                since=counted.since.isoformat(),
                since_confirmation=counted.confirmed,
                days=counted.days,
            ),
        )

    def _illiquid(self, facts: OrderFacts) -> Iterable[RuleFinding]:
        horizon = int(self.options["horizon_hours"])
        slow = int(self.options["slow_horizon_hours"])
        daily = facts.instrument.daily_value
        if horizon in facts.windows and daily is not None and daily > 0:
            # Like with like: the day's traded value and the ledger's amounts are at the prices traded; at
            # the long-run price a customer's buy on a real dip was charged for the dip twice (round 38).
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
        if facts.exposure_weight <= 0:
            return
        # SECURITY: shares of what a pump of her own thin holdings cannot lift (red team, round thirty).
        total = facts.trusted_total
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
        finding = self._unvouched(facts, total, weighted)
        if finding is not None:
            yield finding
            return
        position = _held_at_least_reference(facts) + facts.counted_amount
        concentration = position * Decimal(str(facts.exposure_weight)) / total if total > 0 else Decimal(1)
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

    def _unvouched(self, facts: OrderFacts, total: Decimal, weighted: Decimal) -> RuleFinding | None:
        """The thin buys since the customer last confirmed a held order, for a buy no passkey vouched for.

        SECURITY: the month's share rolls every 30 days; a thief who kept his browser and bought just under
        it each month had a third of her portfolio in the gang's stock after a quarter, never held (red
        team, round fifty-five). Not lowered for a changed account: the month's limit already is."""
        unvouched = facts.unvouched
        if unvouched is None or unvouched.vouched:
            return None
        exposure = unvouched.amount + weighted
        share = exposure / total if total > 0 else Decimal(1)
        limit = Decimal(str(self.options["max_illiquid_share"]))
        if share <= limit:
            return None
        return RuleFinding(
            UNVOUCHED_FINDING,
            CRITICAL,
            reason(
                _(
                    "Your buys of thinly traded stocks since you last confirmed them would reach "
                    "%(share)s %% of your portfolio (limit %(limit)s %%)."
                ),
                {"share": _percent(share), "limit": _percent(limit)},
            ),
            self.action,
            self._evidence(
                facts,
                share=share,
                weighted=str(exposure),
                since=unvouched.since.isoformat(),
                since_confirmation=unvouched.confirmed,
                days=unvouched.days,
                illiquidity=facts.illiquidity,
            ),
        )


def _held_at_least_reference(facts: OrderFacts) -> Decimal:
    """The position the customer already holds in the order's instrument, valued at no less than its shares
    at the long-run price (``InstrumentInfo.reference_price``), as the order itself is (``counted_amount``).

    SECURITY: valued at the day's price, a print of the gang's stock at 60 % of its usual price halved her
    years-old 27 % position, and his buys with her cash took it to 35 % unheld, over the 30 % limit (red
    team, round fifty-five)."""
    holding = facts.portfolio.holding(facts.symbol)
    if holding is None:
        return Decimal(0)
    at_reference = facts.instrument.reference_value_of(holding.quantity)
    return holding.value if at_reference is None else max(holding.value, at_reference)
