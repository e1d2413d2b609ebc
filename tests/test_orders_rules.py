"""The order guard's rules on hand-built facts, their options, the system checks, and the plain summary."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.core.checks import run_checks
from django.utils import translation

from authguard import conf
from authguard.checks import Codes
from authguard.orders import rules as r
from authguard.orders.guard import decide, format_amount, render_summary

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
KNOWN = r.SessionFacts(known=True, login_action="allow", low_risk=True, login_at=NOW - timedelta(hours=1))
TOYOTA = r.InstrumentInfo("7203", Decimal(2850), "JPY", "TSE Prime", "JP", avg_daily_volume=25_000_000)
THIN = r.InstrumentInfo(
    "7Z2A", Decimal(845), "JPY", "TSE Standard", "JP", avg_daily_volume=6_500, is_small_cap=True
)
FOREIGN = r.InstrumentInfo(
    "ZVXQ", Decimal("1.37"), "USD", "NASDAQ", "US", avg_daily_volume=85_000_000, is_small_cap=True,
    fx_rate=Decimal(150),
)  # fmt: skip
PORTFOLIO = r.PortfolioSnapshot(
    "JPY", Decimal(1_000_000), (r.HoldingValue("7203", 3000, Decimal(8_550_000)),)
)


def facts(
    side: str = "sell",
    instrument: r.InstrumentInfo = TOYOTA,
    quantity: int = 100,
    *,
    sells_placed: int = 0,
    sells_held: int = 0,
    session: r.SessionFacts = KNOWN,
    first_trade: bool | None = None,
    campaign: r.CampaignFacts | None = None,
    holdings_value: int = 8_550_000,
) -> r.OrderFacts:
    window = r.WindowTotals(24, NOW - timedelta(hours=24), Decimal(sells_placed), Decimal(sells_held))
    daily = instrument.daily_value
    return r.OrderFacts(
        side=side,
        symbol=instrument.symbol,
        quantity=quantity,
        amount=instrument.value_of(quantity),
        instrument=instrument,
        portfolio=r.PortfolioSnapshot(
            "JPY", Decimal(1_000_000), (r.HoldingValue("7203", 3000, Decimal(holdings_value)),)
        ),
        windows={24: window},
        session=session,
        now=NOW,
        illiquid=instrument.is_small_cap or daily is None or daily < r.DEFAULT_LIQUIDITY_FLOOR,
        session_risky=session.risky(now=NOW, hours=24),
        first_trade=first_trade,
        campaign=campaign,
    )


def codes(rule: r.OrderRule, f: r.OrderFacts) -> list[str]:
    return [finding.code for finding in rule.evaluate(f)]


def test_mass_liquidation_counts_placed_and_held_sells_against_the_window_start() -> None:
    rule = r.MassLiquidation()
    # 1,500 Toyota = ¥4,275,000 = 50 % of ¥8.55 million: at the limit, not above.
    assert codes(rule, facts(quantity=1500)) == []
    assert codes(rule, facts(quantity=1501)) == ["mass_liquidation"]
    # Earlier sells count (placed ones raise the base back to the window start), held ones too.
    assert codes(rule, facts(quantity=100, sells_placed=4_000_000, holdings_value=4_550_000)) == [
        "mass_liquidation"
    ]
    assert codes(rule, facts(quantity=100, sells_placed=3_000_000, holdings_value=5_550_000)) == []
    assert codes(rule, facts(quantity=100, sells_held=4_000_000)) == ["mass_liquidation"]
    assert codes(rule, facts("buy", quantity=100)) == []
    assert codes(r.MassLiquidation(max_share=0.9), facts(quantity=2000)) == []


def test_illiquid_buy_large_against_daily_volume_thin_and_first_foreign_small_cap() -> None:
    rule = r.IlliquidBuy()
    assert codes(rule, facts("buy", THIN, 400)) == ["illiquid_buy_large"]  # 6 % of a day's ¥5.5 million
    assert codes(rule, facts("buy", THIN, 100)) == []  # ¥84,500: small
    assert codes(r.IlliquidBuy(floor_max_amount=50_000), facts("buy", THIN, 100)) == ["illiquid_buy_thin"]
    assert codes(rule, facts("buy", FOREIGN, 100, first_trade=True)) == ["foreign_small_cap_first_trade"]
    assert codes(rule, facts("buy", FOREIGN, 100, first_trade=False)) == []
    assert codes(rule, facts("buy", TOYOTA, 1000)) == []
    unknown = r.InstrumentInfo("X", Decimal(1), "JPY", "TSE Growth", "JP")
    assert codes(rule, facts("buy", unknown, 1)) == ["illiquid_unknown"]


def test_the_pivot_is_an_illiquid_buy_after_a_liquidation_at_the_highest_severity() -> None:
    rule = r.Pivot()
    found = list(rule.evaluate(facts("buy", THIN, 10, sells_placed=3_000_000, holdings_value=5_550_000)))
    assert [f.code for f in found] == ["liquidate_and_pivot"] and found[0].severity == r.CRITICAL
    assert codes(rule, facts("buy", THIN, 10, sells_placed=1_000_000, holdings_value=7_550_000)) == []
    # Held sells count too: the thief need not wait for them to execute.
    assert codes(rule, facts("buy", THIN, 10, sells_held=3_000_000)) == ["liquidate_and_pivot"]
    assert codes(rule, facts("buy", TOYOTA, 10, sells_placed=8_000_000)) == []


def test_risky_sessions_get_lower_limits() -> None:
    rule = r.RiskySession()
    new_device = r.SessionFacts(
        known=True, login_action="allow", new_device=True, login_at=NOW - timedelta(hours=2)
    )
    assert codes(rule, facts(quantity=1000, session=new_device)) == ["risky_session_sell"]  # 33 % > 25 %
    assert codes(rule, facts(quantity=1000, session=KNOWN)) == []
    assert codes(rule, facts("buy", THIN, 400, session=new_device)) == ["risky_session_illiquid_buy"]
    # Long ago is not recent; a session without authguard state is risky (fail closed).
    old = r.SessionFacts(
        known=True, login_action="allow", new_device=True, login_at=NOW - timedelta(hours=30)
    )
    assert codes(rule, facts(quantity=1000, session=old)) == []
    assert codes(rule, facts(quantity=1000, session=r.SessionFacts(known=False))) == ["risky_session_sell"]
    stepped_up = r.SessionFacts(known=True, login_action="step_up", stepped_up=True, login_at=NOW)
    assert stepped_up.reasons() == ["stepped_up"]


def test_campaign_flags_at_the_account_thresholds() -> None:
    rule = r.Campaign()
    assert codes(rule, facts("buy", THIN, 1, campaign=r.CampaignFacts(False, 9, 0, 6))) == []
    found = list(rule.evaluate(facts("buy", THIN, 1, campaign=r.CampaignFacts(False, 10, 0, 6))))
    assert [f.code for f in found] == ["campaign_detected"] and found[0].evidence["flag"] is True
    assert codes(rule, facts("buy", THIN, 1, campaign=r.CampaignFacts(False, 5, 5, 6))) == [
        "campaign_detected"
    ]
    assert codes(rule, facts("buy", THIN, 1, campaign=r.CampaignFacts(True))) == ["campaign_instrument"]
    assert codes(rule, facts("sell", THIN, 1, campaign=r.CampaignFacts(True))) == []


def test_a_crashing_rule_holds_the_order_and_deny_rules_deny() -> None:
    class Broken(r.OrderRule):
        def evaluate(self, facts: r.OrderFacts) -> Any:
            raise RuntimeError("boom")

    assert decide(facts(), [Broken()]).action == "hold"
    assert decide(facts(), [Broken()]).reasons == ["rule_error"]
    assert decide(facts(quantity=2000), [r.MassLiquidation(action="deny")]).action == "deny"
    assert decide(facts(quantity=10), r.build_rules(conf.DEFAULT_ORDER_RULES)).action == "allow"


def test_reasons_are_translatable_and_stored_in_english() -> None:
    (finding,) = r.MassLiquidation().evaluate(facts(quantity=2000))
    assert finding.as_dict()["reason"].startswith("Sells within 24 hours would reach 67 %")
    assert finding.as_dict()["evidence"]["sold"] == "5700000.00"


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"max_shar": 0.5}, TypeError),
        ({"max_share": "half"}, ValueError),
        ({"max_share": -1}, ValueError),
        ({"action": "block"}, ValueError),
    ],
)
def test_rule_options_are_validated(options: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        r.MassLiquidation(**options)


@pytest.mark.parametrize(
    ("name", "value", "code"),
    [
        ("AUTHGUARD_ORDER_RULES", [{"NAME": "authguard.order_rules.Nope"}], Codes.ORDER_RULES_INVALID),
        ("AUTHGUARD_ORDER_RULES", [{"NAME": "authguard.risk_signals.Velocity"}], Codes.ORDER_RULES_INVALID),
        ("AUTHGUARD_ORDER_RULES", "all", Codes.ORDER_RULES_INVALID),
        ("AUTHGUARD_ORDER_PORTFOLIO", None, Codes.ORDER_HOOK_MISSING),
        ("AUTHGUARD_ORDER_INSTRUMENT", "demo_site.brokerage.services.nope", Codes.ORDER_HOOK_INVALID),
        (
            "AUTHGUARD_ORDER_EXECUTOR",
            "demo_site.brokerage.services.guard_portfolio",
            Codes.ORDER_HOOK_INVALID,
        ),
        ("AUTHGUARD_CONFIRMATION_METHODS", ["sms"], Codes.CONFIRMATION_METHODS_INVALID),
        ("AUTHGUARD_CONFIRMATION_SECONDS", 5, Codes.CONFIRMATION_SECONDS_INVALID),
        ("AUTHGUARD_ORDER_PRICE_TOLERANCE", 0.5, Codes.ORDER_PRICE_TOLERANCE_INVALID),
        ("AUTHGUARD_ORDER_PRICE_TOLERANCE", -0.01, Codes.ORDER_PRICE_TOLERANCE_INVALID),
        ("AUTHGUARD_ORDER_PRICE_TOLERANCE", "a yen", Codes.ORDER_PRICE_TOLERANCE_INVALID),
        ("AUTHGUARD_ORDER_PRICE_TOLERANCE", True, Codes.ORDER_PRICE_TOLERANCE_INVALID),
        ("AUTHGUARD_ORDER_PRICE_TOLERANCE", None, Codes.ORDER_PRICE_TOLERANCE_INVALID),
    ],
)
def test_system_checks_of_the_order_guard(settings: Any, name: str, value: Any, code: str) -> None:
    assert code not in {m.id for m in run_checks()}
    setattr(settings, name, value)
    assert code in {m.id for m in run_checks()}


@pytest.mark.parametrize("value", [0, 0.005, "0.01", Decimal("0.05")])
def test_a_price_tolerance_from_0_to_5_percent_passes_the_check(settings: Any, value: Any) -> None:
    settings.AUTHGUARD_ORDER_PRICE_TOLERANCE = value
    assert Codes.ORDER_PRICE_TOLERANCE_INVALID not in {m.id for m in run_checks()}


def test_the_summary_in_english_and_japanese() -> None:
    data = {
        "side": "sell", "symbol": "7203", "name": "Toyota Motor", "quantity": 100, "amount": "285000.00",
        "currency": "JPY", "hours": 24, "sold_share": 0.92, "sold_amount": "9700000", "sold_holdings": 27,
        "holdings": 30,
    }  # fmt: skip
    text = render_summary(data)
    assert text == (
        "Sell 100 of 7203 Toyota Motor (¥285,000). With it you would sell 27 of your 30 holdings within 24 "
        "hours: 92 % of your portfolio, ¥9.7 million."
    )
    with translation.override("ja"):
        assert format_amount("9700000", "JPY") == "970万円"
        assert "970万円" in render_summary(data)
    assert format_amount("123.45", "USD") == "123.45 USD"


# -- issue 11: the exposure rule on hand-built facts ---------------------------------------------------------


def exposure_facts(
    side: str, instrument: r.InstrumentInfo, quantity: int, *, week: r.WindowTotals | None = None,
    month: r.WindowTotals | None = None, changed: bool = False, holdings_value: int = 8_550_000,
) -> r.OrderFacts:  # fmt: skip
    base = facts(side, instrument, quantity, holdings_value=holdings_value)
    windows = {
        24: base.windows[24],
        168: week or r.WindowTotals(168, NOW - timedelta(days=7)),
        720: month or r.WindowTotals(720, NOW - timedelta(days=30)),
    }
    trust = r.TrustFacts(changed, ("new_device",) if changed else ())
    from dataclasses import replace

    return replace(base, windows=windows, trust=trust, illiquidity=r.illiquidity(instrument))


def test_exposure_adds_sells_over_the_week_and_buys_never_raise_the_base() -> None:
    rule = r.Exposure()
    # ¥3.5 million sold earlier this week + ¥1.14 million now = 54 % of the ¥8.55 million at the week's start.
    week = r.WindowTotals(168, NOW - timedelta(days=7), sells_placed=Decimal(3_500_000))
    assert codes(rule, exposure_facts("sell", TOYOTA, 400, week=week, holdings_value=5_050_000)) == [
        "exposure_liquidation"
    ]
    assert codes(rule, exposure_facts("sell", TOYOTA, 100, week=week, holdings_value=5_050_000)) == []
    # Case 51: ¥4 million bought this week with cash does not make room for more selling.
    bought = r.WindowTotals(168, NOW - timedelta(days=7), buys_placed=Decimal(4_000_000))
    assert codes(rule, exposure_facts("sell", TOYOTA, 1600, week=bought, holdings_value=12_550_000)) == [
        "exposure_liquidation"
    ]
    # An account whose sign-in context changed has half the limit.
    assert codes(rule, exposure_facts("sell", TOYOTA, 1000, changed=True)) == ["exposure_liquidation"]
    assert codes(rule, exposure_facts("sell", TOYOTA, 1000)) == []


def test_exposure_adds_buys_of_a_thin_stock_over_days_and_weighs_them_by_liquidity() -> None:
    rule = r.Exposure()
    # Case 49: 4.9 % of the day's value now, after 6 % earlier this week: 11 % > 10 %.
    week = r.WindowTotals(168, NOW - timedelta(days=7), symbol_buys=Decimal(330_000))
    assert codes(rule, exposure_facts("buy", THIN, 320, week=week)) == ["exposure_instrument_volume"]
    assert codes(rule, exposure_facts("buy", THIN, 320)) == []
    # Within the month, weighted buys of thin stocks above 10 % of the portfolio (¥9.55 million).
    month = r.WindowTotals(720, NOW - timedelta(days=30), illiquid_amount=Decimal(800_000))
    assert codes(rule, exposure_facts("buy", THIN, 200, month=month)) == ["exposure_illiquid"]
    found = list(rule.evaluate(exposure_facts("buy", THIN, 200, month=month)))
    assert found[0].severity == r.CRITICAL and found[0].evidence["illiquidity"] == 1.0
    # A large cap weighs nothing on the liquidity scale.
    assert codes(rule, exposure_facts("buy", TOYOTA, 3000, month=month)) == []


@pytest.mark.parametrize(
    ("kind", "options"),
    [
        (r.Exposure, {"liquid_value": 10, "illiquid_value": 100}),
        (r.Exposure, {"changed_factor": 0}),
        (r.Exposure, {"horizon_hour": 24}),
        (r.Campaign, {"volume_windows": [[24]]}),
        (r.Campaign, {"volume_windows": [[24, -1]]}),
        (r.Campaign, {"volume_windows": "daily"}),
    ],
)
def test_exposure_and_campaign_options_are_validated(
    kind: type[r.OrderRule], options: dict[str, Any]
) -> None:
    with pytest.raises((TypeError, ValueError)):
        kind(**options)


def test_the_campaign_flags_on_risky_volume_over_days_from_several_accounts() -> None:
    rule = r.Campaign()
    daily = THIN.daily_value
    assert daily is not None

    def campaign(bought: float, accounts: int) -> r.CampaignFacts:
        volume = {24: Decimal(0), 72: Decimal(0), 168: Decimal(bought) * daily}
        return r.CampaignFacts(
            False, 1, 1, 6, risky_volume=volume, risky_volume_accounts=accounts, daily_value=daily
        )

    assert codes(rule, facts("buy", THIN, 1, campaign=campaign(0.24, 5))) == []
    found = list(rule.evaluate(facts("buy", THIN, 1, campaign=campaign(0.26, 5))))
    assert [f.code for f in found] == ["campaign_detected"] and found[0].evidence["hours"] == 168
    assert codes(rule, facts("buy", THIN, 1, campaign=campaign(0.9, 2))) == []  # one account is no campaign
