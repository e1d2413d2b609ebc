"""Red team, round seventy-four (held since): a code change that comes with a split or consolidation.

Real ``services.sync_instruments`` rows, real accounts, the real JSON order API and authguard's real passkey
confirmation; nothing of our code is mocked.

Held since a code change has its own exchange ratio (``InstrumentData.exchange_ratio``, or the row's
``split``), applied to the former code's positions only before they join the new code's (odd lots in cash
at the lowest price, the carried long-run price rescaled, the former code's share basis counted), and a row
the sync cannot apply unambiguously raises ``CodeChangeError``: a change into a code the demo lists already
without its ratio, a split and an exchange ratio on one row. The fix's edges are at the end.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest

from demo_site.brokerage import services
from demo_site.brokerage.instruments import INSTRUMENTS
from demo_site.brokerage.models import Instrument, Position

from . import test_battery_exposure as battery

start = battery.start
clock = battery.clock
ROWS = {row.symbol: row for row in INSTRUMENTS}
THIN_US = "ZVXQ"  # Zephyr Vale Quantum (fictional), $1.37 on NASDAQ: a penny stock


def _worth(user: Any) -> Decimal:
    return battery.value(user).total_value


def _quantity(user: Any, symbol: str) -> int:
    row = Position.objects.filter(account__user=user, instrument__symbol=symbol).first()
    return 0 if row is None else row.quantity


def _sell_all(client: Any, symbol: str, quantity: int, authenticator: Any) -> dict[str, Any]:
    answer = client.order("sell", symbol, quantity).json()
    if answer["status"] == "held":  # the gang's own account: its own passkey confirms
        done = client.confirm_with_passkey(answer["confirmation"]["id"], authenticator)
        assert done.status_code == 200, done.content
        return {"status": "confirmed", **done.json()}
    return answer


@pytest.mark.django_db
def test_a_reverse_split_with_a_new_ticker_multiplies_the_gangs_shares_tenfold(
    order_api: Any, authenticator: Any, clock: Any
) -> None:
    """Secure: a corporate action moves no value (docs/order-guard.md: "a consolidation moves no value";
    InstrumentData: a row's ``split`` "takes effect with this row ... the positions are rescaled"). Whoever
    held ¥X of a stock holds ¥X of it (and odd lots in cash) the day after.

    Attack: ZVXQ (fictional, $1.37, NASDAQ) announces, weeks ahead and in public, the penny-stock classic: a
    one-for-ten reverse split trading from the effective day under a new ticker, ZVXR, at $13.70. The
    market data carry it on one row: ``symbol="ZVXR", formerly="ZVXQ", split=Fraction(1, 10)``. The gang's
    account (its own, at the same broker) buys 100,000 ZVXQ (¥20.55 million) before the day. The sync moves
    the 100,000 shares to ZVXR *one for one* and never applies the split: 100,000 ZVXR at $13.70, ¥205.5
    million. The gang sells them from its own browser (a hold is confirmed with its own passkey): ¥185
    million of cash out of nothing, paid by the broker, withdrawable.

    Root cause: demo_site/brokerage/services.py:_create_instrument runs ``take_over_former_code`` (positions
    moved 1:1, the former code's reference price carried over per *old* share) and ignores ``row.split``:
    only ``_update_instrument`` applies a split (``_apply_split``, ``share_basis``). A new code's row is
    where a split and a code change meet (a reverse split with a new ticker, a holding company formed at an
    exchange ratio), and the sync drops the ratio silently, as round seventy-one's update path dropped
    ``formerly``.

    Fix: apply ``row.split`` in the create path too: rescale the former code's positions (odd lots in cash
    at the lowest price, as ``_apply_split``) and its carried reference price by the ratio before or while
    moving them, and count it in ``share_basis``; or raise ``CodeChangeError`` for a row the sync cannot
    apply rather than writing it half."""
    gang = battery.customer("rt74gang", cash=0, holdings={THIN_US: 100_000}, authenticator=authenticator)
    clock(0)
    before = _worth(gang)
    assert before == Decimal("20550000.00")
    row = ROWS[THIN_US]
    services.sync_instruments(
        [replace(row, symbol="ZVXR", price=Decimal("13.70"), avg_daily_volume=8_500, formerly=THIN_US,
                 split=Fraction(1, 10))]
    )  # fmt: skip
    clock(1)
    browser = order_api()
    browser.login_known(gang.username, battery.PASSWORD)
    shares = _quantity(gang, "ZVXR")
    answer = _sell_all(browser, "ZVXR", shares, authenticator)
    after = _worth(gang)
    assert after <= before * Decimal("1.01"), (
        f"the gang held ¥{before:,.0f} of {THIN_US}; after its one-for-ten reverse split into ZVXR it held"
        f" {shares:,} ZVXR and sold them ({answer['status']}) for ¥{after:,.0f} in cash:"
        f" ¥{after - before:,.0f} out of nothing"
    )


@pytest.mark.django_db
def test_a_ten_for_one_split_into_a_listed_code_splits_the_when_issued_shares_again(
    order_api: Any, authenticator: Any, clock: Any
) -> None:
    """Secure: as above: a corporate action moves no value.

    Attack: the update path (a code the demo lists already) applies ``formerly`` then ``split`` to *every*
    position of the target, its own included. ZVXQ announces a ten-for-one split into a new ticker ZVXR; the
    data vendor lists ZVXR a day early (a when-issued line, round seventy-one's own example) at the new
    share's $0.14. The gang buys 97,857 ZVXR there (¥2.05 million). The next day the change arrives on
    ZVXR's row (``formerly="ZVXQ", split=Fraction(10)``): ZVXQ holders' shares move and are split (right),
    and the gang's ZVXR shares, new shares already, are split a second time: 978,570 ZVXR, ¥20.55
    million: ¥18.5 million out of nothing, sellable as in the test above.

    Root cause: demo_site/brokerage/services.py:_update_instrument calls ``take_over_former_code`` (which
    merges the former code's positions into the target's one for one) and then ``_apply_split`` over all of
    the target's positions: a ratio that belongs to the former code's shares is applied to the new code's.

    Fix: apply a code change's ratio to the former code's positions only, before merging them
    (``take_over_former_code(instrument, formerly, ratio=row.split)``), and a split of the listed code
    itself only on a row without ``formerly``; or refuse (``CodeChangeError``) a row carrying both for a
    code that already has positions."""
    gang = battery.customer("rt74gang2", cash=2_055_000, holdings={}, authenticator=authenticator)
    clock(0)
    row = ROWS[THIN_US]
    new = replace(row, symbol="ZVXR", price=Decimal("0.14"), avg_daily_volume=850_000)
    services.sync_instruments([new])
    price = Instrument.objects.get(symbol="ZVXR").price
    browser = order_api()
    browser.login_known(gang.username, battery.PASSWORD)
    quantity = int(Decimal(2_055_000) / (price * services.USD_JPY))
    bought = browser.order("buy", "ZVXR", quantity).json()
    if bought["status"] == "held":
        done = browser.confirm_with_passkey(bought["confirmation"]["id"], authenticator)
        assert done.status_code == 200, done.content
    before = _worth(gang)
    clock(1)
    services.sync_instruments([replace(new, formerly=THIN_US, split=Fraction(10))])
    after = _worth(gang)
    assert after <= before * Decimal("1.01"), (
        f"the gang held ¥{before:,.0f} of ZVXR ({quantity:,} when-issued shares at ${price});"
        f" after ZVXQ's ten-for-one split into ZVXR it held {_quantity(gang, 'ZVXR'):,}: ¥{after:,.0f}"
    )


@pytest.mark.django_db
@pytest.mark.parametrize("with_ratio", [False, True])
def test_a_merger_into_a_listed_code_moves_no_value(db: Any, with_ratio: bool) -> None:
    """Secure: a merger moves no value: holders of the absorbed code get the target's shares at the exchange
    ratio, and the target's own holders keep theirs.

    Attack: 7Z2A (¥845, thin) is merged into 6758 Sony (¥3,900) at the public exchange ratio of 0.2166
    Sony share per 7Z2A share (¥845 / ¥3,900: no premium). The gang's account buys 10,000 7Z2A (¥8.45
    million) after the announcement. The demo's code change is the docs' own "merger into a listed code"
    (``replace(ROWS["6758"], formerly="7Z2A")``, round seventy-one's test): it moves positions one for one,
    and a row has no way to say the ratio but ``split``, which the sync applies to every Sony holder too.
    Without it: 10,000 Sony, ¥39 million, ¥30.5 million out of nothing for the gang. With it
    (``split=Fraction(845, 3900)``): the gang is right, and an honest Sony holder's 1,000 shares (¥3.9
    million) become 216 (¥0.84 million plus odd-lot cash).

    Root cause: demo_site/brokerage/code_change.py:take_over_former_code merges the former code's positions
    into the target's one for one (``_merge_positions``), and services._update_instrument applies the row's
    ``split`` after the merge, to the target's own positions as well.

    Fix: give a code change its own ratio (``InstrumentData.formerly`` with an exchange ratio, or apply
    ``split`` to the former code's positions only, before ``_merge_positions``), with odd lots paid as
    ``_apply_split`` pays them; refuse (``CodeChangeError``) a ``formerly`` into a listed code without it
    rather than assume one for one.

    Adapted to the fix's contract (the attack and what it protects unchanged): a change into a listed code
    without its ratio is refused now, so ``[False]`` expects the row without one to raise
    ``CodeChangeError`` and write nothing (both accounts worth what they were, 7Z2A still listed), and then
    sends the row the contract asks for, the ratio stated as ``exchange_ratio``, under the same assertion
    as ``[True]``."""
    services.sync_instruments()
    gang = services.open_account(
        "rt74m", "gang-2025-pw", email="m@example.jp", cash=0, holdings={"7Z2A": 10_000}
    )
    honest = services.open_account(
        "rt74h", "honest-2025-pw", email="h@example.jp", cash=0, holdings={"6758": 1_000}
    )
    before = {u.username: _worth(u) for u in (gang, honest)}
    row = replace(ROWS["6758"], formerly="7Z2A")
    if with_ratio:
        row = replace(row, split=Fraction(845, 3900))
    else:
        with pytest.raises(services.CodeChangeError, match="exchange ratio"):
            services.sync_instruments([row])
        assert {u.username: _worth(u) for u in (gang, honest)} == before
        assert Instrument.objects.get(symbol="7Z2A").succeeded_by_id is None
        row = replace(row, exchange_ratio=Fraction(845, 3900))
    services.sync_instruments([row])
    after = {u.username: _worth(u) for u in (gang, honest)}
    for name in before:
        assert abs(after[name] - before[name]) <= before[name] * Decimal("0.01"), (
            f"{name}: ¥{before[name]:,.0f} before the merger of 7Z2A into 6758"
            f" ({'with' if with_ratio else 'without'} the ratio as a split), ¥{after[name]:,.0f} after;"
            f" {after}"
        )


@pytest.mark.django_db
def test_held_a_held_sell_of_the_target_code_confirmed_after_a_merger_sells_what_she_confirmed(
    order_api: Any, authenticator: Any, clock: Any
) -> None:
    """Her sell of 30,000 ZVXR (when-issued, held) is confirmed after ZVXQ merged into ZVXR (her 700 ZVXQ
    joined the position, one for one): exactly the 30,000 shares at the checked price move, no more.

    Adapted to the fix's contract: the change into the listed ZVXR states its ratio, one for one (the same
    shares at the same price), which a row without one now had to (it is refused otherwise)."""
    victim = battery.customer(
        "rt74t", cash=0, holdings={THIN_US: 700}, authenticator=authenticator, home_device=False
    )
    services.sync_instruments([replace(ROWS[THIN_US], symbol="ZVXR")])
    Position.objects.create(
        account=victim.brokerage_account, instrument=Instrument.objects.get(symbol="ZVXR"), quantity=30_000
    )
    clock(0)
    browser = order_api()
    browser.login_known(victim.username, battery.PASSWORD)
    held = browser.order("sell", "ZVXR", 30_000).json()
    assert held["status"] == "held", held
    confirmed = Decimal(held["order"]["amount_jpy"])
    services.sync_instruments(
        [replace(ROWS[THIN_US], symbol="ZVXR", formerly=THIN_US, exchange_ratio=Fraction(1))]
    )
    cash = battery.value(victim).cash
    done = browser.confirm_with_passkey(held["confirmation"]["id"], authenticator)
    assert done.status_code == 200, done.content
    assert battery.value(victim).cash - cash == confirmed
    assert _quantity(victim, "ZVXR") == 700


@pytest.mark.django_db
def test_cost_a_plain_code_change_keeps_every_share(db: Any) -> None:
    """The fix must keep a plain code change (a move between markets, a new ticker, no ratio) one for one:
    her 1,000 shares under the old code are 1,000 under the new, at the same value."""
    services.sync_instruments()
    user = services.open_account(
        "rt74c", "cost-2025-pw", email="c@example.jp", cash=0, holdings={"7Z2A": 1_000}
    )
    before = _worth(user)
    services.sync_instruments([replace(ROWS["7Z2A"], symbol="7Z2B", formerly="7Z2A")])
    assert _quantity(user, "7Z2B") == 1_000 and _worth(user) == before


# -- the fix's edges ----------------------------------------------------------------------------------------


def _holder(name: str, holdings: dict[str, int]) -> Any:
    return services.open_account(name, "edge-2025-pw", email=f"{name}@example.jp", cash=0, holdings=holdings)


def _cash(user: Any) -> Decimal:
    return battery.value(user).cash


@pytest.mark.django_db
@pytest.mark.parametrize("listed", [False, True], ids=["new_ticker", "when_issued_line"])
def test_held_a_reverse_split_under_a_new_ticker_rescales_the_former_codes_positions_and_long_run(
    db: Any, listed: bool
) -> None:
    """105 ZVXQ at $1.37, one-for-ten into ZVXR at $13.70: 10 ZVXR and half a share in cash ($6.85, ¥1,028);
    ZVXR's long run is ZVXQ's per new share ($13.70, not $1.37); ZVXQ is retired with its share basis
    counted (an order checked in its shares is in shares that no longer exist); ZVXR's own basis is
    untouched. The same whether ZVXR is new (``split``) or listed a day early (``exchange_ratio``)."""
    services.sync_instruments()
    user = _holder("edge1", {THIN_US: 105})
    before = _worth(user)
    row = replace(
        ROWS[THIN_US], symbol="ZVXR", price=Decimal("13.70"), avg_daily_volume=8_500, history_since=None
    )
    if listed:
        services.sync_instruments([row])
        row = replace(row, formerly=THIN_US, exchange_ratio=Fraction(1, 10))
    else:
        row = replace(row, formerly=THIN_US, split=Fraction(1, 10))
    services.sync_instruments([row])
    new, old = Instrument.objects.get(symbol="ZVXR"), Instrument.objects.get(symbol=THIN_US)
    assert _quantity(user, "ZVXR") == 10 and _cash(user) == Decimal("1028.00")
    assert abs(_worth(user) - before) <= 1
    assert new.reference_price == Decimal("13.70") and new.history_since == ROWS[THIN_US].history_since
    assert (old.succeeded_by_id, old.share_basis, new.share_basis) == (new.pk, 1, 0)


@pytest.mark.django_db
def test_held_the_same_days_sync_run_again_applies_its_split_once(db: Any, clock: Any) -> None:
    """7Z2A consolidates ten into one; the day's sync runs twice: her 1,005 shares are 100 and half a share
    in cash once, the long-run price and the share basis move once. Another split of the same day is
    refused (a correction or a second action: the sync cannot tell) and writes nothing; the next day's
    split applies (a row carries a split on the day it takes effect, once)."""
    clock(0)
    services.sync_instruments()
    user = _holder("edge2", {"7Z2A": 1005})
    row = replace(ROWS["7Z2A"], price=Decimal(8450), split=Fraction(1, 10))
    services.sync_instruments([row])
    services.sync_instruments([row])
    instrument = Instrument.objects.get(symbol="7Z2A")
    assert (_quantity(user, "7Z2A"), _cash(user)) == (100, Decimal("4225.00"))
    assert (instrument.reference_price, instrument.share_basis) == (Decimal("8450.00"), 1)
    with pytest.raises(services.CorporateActionError, match="another split"):
        services.sync_instruments([replace(row, price=Decimal(845), split=Fraction(10))])
    instrument.refresh_from_db()
    assert (_quantity(user, "7Z2A"), instrument.price, instrument.share_basis) == (100, Decimal(8450), 1)
    clock(1)
    services.sync_instruments([replace(row, price=Decimal(845), split=Fraction(10))])
    assert _quantity(user, "7Z2A") == 1000 and Instrument.objects.get(symbol="7Z2A").share_basis == 2


@pytest.mark.django_db
def test_held_a_code_change_with_a_split_run_again_applies_once_and_a_later_day_is_refused(
    db: Any, clock: Any
) -> None:
    """ZVXR (formerly ZVXQ, one-for-ten) synced twice on its day moves the shares once; the gang's ZVXR
    bought since is untouched. The same row on a later day is refused: its split is the applied change's
    again, or ZVXR's own consolidation on a row that still names its former code, and the sync cannot tell
    which holders it means (ignored, a consolidation left the new code's holders ten times their value)."""
    clock(0)
    services.sync_instruments()
    user = _holder("edge3", {THIN_US: 1000})
    row = replace(
        ROWS[THIN_US], symbol="ZVXR", price=Decimal("13.70"), formerly=THIN_US, split=Fraction(1, 10)
    )
    services.sync_instruments([row])
    gang = _holder("edge3g", {"ZVXR": 500})
    services.sync_instruments([row])
    assert (_quantity(user, "ZVXR"), _quantity(gang, "ZVXR")) == (100, 500)
    clock(1)
    with pytest.raises(services.CodeChangeError, match="applied already"):
        services.sync_instruments([row])
    assert (_quantity(user, "ZVXR"), _quantity(gang, "ZVXR")) == (100, 500)
    services.sync_instruments(
        [replace(row, formerly=None, split=None)]
    )  # the day's row as the contract has it
    services.sync_instruments([replace(row, split=None)])  # formerly repeated alone: an applied change
    assert (_quantity(user, "ZVXR"), _quantity(gang, "ZVXR")) == (100, 500)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "change",
    [
        {"formerly": "7Z2A", "split": Fraction(1, 2), "exchange_ratio": Fraction(845, 3900)},
        {"exchange_ratio": Fraction(845, 3900)},
        {"formerly": "7Z2A", "exchange_ratio": Fraction(0)},
    ],
    ids=["split_and_ratio", "ratio_without_formerly", "zero_ratio"],
)
def test_held_a_code_change_row_the_sync_cannot_apply_unambiguously_is_refused(
    db: Any, change: dict[str, Any]
) -> None:
    """A split beside an exchange ratio (is it Sony's own holders', or part of the merger's?), a ratio
    without a code change, a ratio of nothing: the sync raises and the day's rows write nothing."""
    services.sync_instruments()
    gang = _holder("edge4", {"7Z2A": 10_000})
    honest = _holder("edge4h", {"6758": 1_000})
    price = Instrument.objects.get(symbol="7203").price
    rows = [replace(ROWS["7203"], price=price * 2), replace(ROWS["6758"], **change)]
    with pytest.raises(services.CorporateActionError):
        services.sync_instruments(rows)
    assert Instrument.objects.get(symbol="7203").price == price
    assert (_quantity(gang, "7Z2A"), _quantity(honest, "6758")) == (10_000, 1_000)


@pytest.mark.django_db
def test_held_a_code_change_with_a_ratio_from_a_code_split_the_same_day_is_refused(db: Any) -> None:
    """7Z2A consolidated ten into one on its own row, then merged into 6758 with a ratio on the same day:
    the ratio may count the old shares or the new ones (the consolidation applied twice made her 10,000
    7Z2A a tenth of their worth; a ratio per new share the other way round a tenfold), so the day's sync is
    refused and writes nothing."""
    services.sync_instruments()
    user = _holder("edge6", {"7Z2A": 10_000})
    rows = [
        replace(ROWS["7Z2A"], price=Decimal(8450), split=Fraction(1, 10)),
        replace(ROWS["6758"], formerly="7Z2A", exchange_ratio=Fraction(845, 3900)),
    ]
    with pytest.raises(services.CodeChangeError, match="split applied today"):
        services.sync_instruments(rows)
    assert _quantity(user, "7Z2A") == 10_000 and Instrument.objects.get(symbol="7Z2A").share_basis == 0


@pytest.mark.django_db
def test_held_a_three_into_one_consolidation_keeps_every_whole_share(db: Any) -> None:
    """3 old shares consolidated three into one are exactly 1 new share (in decimals, 0.999...: a whole
    share paid out as an odd lot); 4 are 1 and a third of a share in cash (¥845)."""
    services.sync_instruments()
    three, four = _holder("edge5a", {"7Z2A": 3}), _holder("edge5b", {"7Z2A": 4})
    services.sync_instruments([replace(ROWS["7Z2A"], price=Decimal(2535), split=Fraction(1, 3))])
    assert (_quantity(three, "7Z2A"), _cash(three)) == (1, Decimal(0))
    assert (_quantity(four, "7Z2A"), _cash(four)) == (1, Decimal(845))
