"""Red team orders71: the demo portal's doors into the order guard after round sixty-nine (code retirement),
held confirmations across corporate actions, and the demo's code-change sync.

Every scenario runs through the demo's real entries (``POST /api/orders``, the HTML form at ``/trade/``,
authguard's single and batch confirmation APIs) with the conftest fixtures; nothing of authguard is mocked.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest

from authguard.models import CampaignFlag, GuardedOrder, HeldOrder
from demo_site.brokerage import services
from demo_site.brokerage.models import Instrument, Order, OrderStatus, Position

from . import test_battery_exposure as battery
from .test_battery_exposure import PUMPED, PUMPED_DAILY, value
from .test_orders_campaign_month_round66_walkarounds import _placed
from .test_orders_campaign_month_walkarounds import _gang
from .test_orders_code_change_walkarounds import ROWS, _group

start = battery.start
clock = battery.clock

BATCH_OPTIONS = "/authguard/api/confirmations/batch/passkey/options"
BATCH = "/authguard/api/confirmations/batch/passkey"


def _change_code(ratio: Fraction | None = None) -> None:
    """7Z2A -> 7Z2B; ``ratio``: the change's exchange ratio, which a change into a code the demo lists
    already states (round seventy-four: a merger's is never assumed one for one)."""
    services.sync_instruments([replace(ROWS[PUMPED], symbol="7Z2B", formerly=PUMPED, exchange_ratio=ratio)])


def _quantity(user: Any, symbol: str) -> int:
    row = Position.objects.filter(account__user=user, instrument__symbol=symbol).first()
    return 0 if row is None else row.quantity


# -- the doors: a retired code ------------------------------------------------------------------------


@pytest.mark.django_db
def test_held_a_retired_code_is_refused_on_the_html_form_and_every_spelling_of_the_api(
    order_api: Any, clock: Any
) -> None:
    """After 7Z2A -> 7Z2B the thief names the former code on the HTML order form (a hand-made POST: the
    form's list no longer offers it) and on the JSON API in other spellings (lower case, padded, a
    full-width ``Ｚ`` that ``str.upper`` keeps, a Turkish dotless ``ı`` style fold). Nothing is recorded:
    no ledger row under the former code, no order, no hold."""
    victim = battery.customer("o71a", cash=20_000_000, holdings={"6758": 2000}, home_device=True)
    clock(0)
    thief = order_api()
    thief.login_known(victim.username, battery.PASSWORD)
    _change_code()
    before = GuardedOrder.objects.count()
    form = thief.client.post(
        "/trade/", {"side": "buy", "symbol": PUMPED, "quantity": 100, "csrfmiddlewaretoken": thief.token}
    )
    assert form.status_code == 200, form.status_code  # the form shows its error, nothing redirects
    for spelling in (PUMPED, "7z2a", " 7Z2A ", "7Z2A\n", "7\uff3a2A", "\u00a07Z2A"):
        answer = thief.order("buy", spelling, 100)
        assert answer.status_code == 400, (spelling, answer.content)
    assert GuardedOrder.objects.count() == before
    assert not Order.objects.filter(account__user=victim).exists()
    assert not HeldOrder.objects.filter(user=victim).exists()


@pytest.mark.django_db
def test_held_a_batch_confirmation_executes_no_buy_held_under_a_former_code(
    order_api: Any, authenticator: Any, clock: Any
) -> None:
    """The single confirmation refuses a buy held under a code that changed (round sixty-nine's cost test);
    the batch door goes through the same executor: her passkey over the batch of two held 7Z2A buys after
    the change executes neither, her cash and positions are untouched, and both portal orders are closed."""
    victim = battery.customer(
        "o71b", cash=20_000_000, holdings={"6758": 2000, PUMPED: 100}, authenticator=authenticator
    )
    clock(0)
    browser = order_api()
    browser.login_known(victim.username, battery.PASSWORD)
    ids = []
    for _ in range(2):
        answer = browser.order("buy", PUMPED, 2000).json()
        assert answer["status"] == "held", answer
        ids.append(answer["confirmation"]["id"])
    _change_code()
    cash = value(victim).cash
    options = browser.post(BATCH_OPTIONS, {"ids": ids})
    assert options.status_code == 200, options.content
    done = browser.post(BATCH, {"ids": ids, "credential": authenticator.get(options.json())})
    assert done.status_code == 200, done.content
    assert done.json()["confirmed"] == [] and len(done.json()["failed"]) == 2, done.json()
    assert value(victim).cash == cash
    assert {h.symbol: h.quantity for h in value(victim).holdings} == {"6758": 2000, "7Z2B": 100}
    assert not Order.objects.filter(account__user=victim, status=OrderStatus.PLACED).exists()
    assert not Order.objects.filter(account__user=victim, status=OrderStatus.HELD).exists()


# -- a held confirmation across a corporate action ----------------------------------------------------


@pytest.mark.django_db
def test_held_a_held_sell_confirmed_after_a_consolidation_sells_no_more_than_she_confirmed(
    order_api: Any, authenticator: Any, clock: Any
) -> None:
    """Held since: the demo counts every synced split or consolidation in ``Instrument.share_basis``, keeps
    it with the order when it is checked, and executes no order whose basis changed (``SharesChanged``).

    Secure: a held order executes as the amount the customer confirmed (its summary: "Sell 500 of 7203
    ... ¥1,425,000") within the price band, or not at all. The demo says so for corporate actions: "A held
    order from before the split no longer fills: its checked price is out of its band (PriceMoved)"
    (services._apply_split), and docs/order-guard.md: "what the customer confirmed is the amount in the
    summary, not the quantity at whatever the price is by then".

    Attack: her sell of 500 Toyota (¥1,425,000) is held (risky_session_sell, exposure_liquidation: her
    sells passed the new browser's 25 % that week; the page: "Sell 500 of 7203 Toyota Motor (¥1.4
    million)"). Before she
    touches her passkey the market data's consolidation of 7203 (ten shares into one, ¥2,850 -> ¥28,500)
    is synced: her 10,000 shares become 1,000. Her confirmation of the held order executes 500 *new* shares
    at ¥28,500: ¥14,250,000, ten times what the page asked her to confirm, and half of her Toyota position.
    The ledger still counts ¥1,425,000 for it. (No thief gains by it directly: the lever is her own
    confirmation; a held order waits minutes, so it needs the sync to land inside them. It breaks the
    dynamic-linking promise that a confirmation moves what it showed and nothing more.)

    Root cause: demo_site/brokerage/services.py:execute_order bounds a sell's fill from below only
    (``fills_within``: at least the checked price less 1 %, no upper bound), and a held order's quantity is
    in shares of the day it was held; a consolidation lifts the price per share tenfold, so the price band
    passes and the stored quantity now means ten times the value. ``_apply_split``'s claim holds for a
    split (price down: a sell is out of its band) and for a consolidation's buy, not for a consolidation's
    sell (nor, harmlessly, a split's buy).

    Fix: the demo's executor refuses a held order whose instrument had a corporate action after it was
    held (keep the split's date or a share-basis counter on ``Instrument`` and in the stored order), or
    checks the fill's amount against the stored ``amount`` (``stored_approval``: refuse when
    ``quantity x price x fx`` exceeds the confirmed amount by more than the tolerance for a sell too)."""
    victim = battery.customer(
        "o71c",
        cash=1_000_000,
        holdings={"7203": 10_000, "6758": 8_000},
        authenticator=authenticator,
        home_device=True,
    )
    clock(0)
    browser = order_api()
    browser.login_known(victim.username, battery.PASSWORD)
    # Up to the day's limit in Sony (placed), then 500 Toyota: held.
    placed = browser.order("sell", "6758", 3_700).json()
    assert placed["status"] == "placed", placed
    held = browser.order("sell", "7203", 500).json()
    assert held["status"] == "held", held
    confirmed_amount = Decimal(held["order"]["amount_jpy"])
    assert confirmed_amount == Decimal("1425000.00")
    # The morning's market data: 7203 consolidates ten into one.
    row = ROWS["7203"]
    services.sync_instruments(
        [
            replace(
                row, price=row.price * 10, avg_daily_volume=row.avg_daily_volume // 10, split=Fraction(1, 10)
            )
        ]
    )
    assert _quantity(victim, "7203") == 1_000
    cash = value(victim).cash
    answer = browser.confirm_with_passkey(held["confirmation"]["id"], authenticator)
    moved = value(victim).cash - cash
    assert answer.status_code != 200 or moved <= confirmed_amount * Decimal("1.01"), (
        f"confirmed a sale of ¥{confirmed_amount:,.0f}; executed ¥{moved:,.0f}"
        f" ({_quantity(victim, '7203')} of 1,000 Toyota shares left): {answer.status_code}"
        f" {Order.objects.get(pk=held['order_id']).amount_jpy}"
    )


# -- the demo's code-change sync ------------------------------------------------------------------------


@pytest.mark.django_db
def test_held_a_code_change_into_a_code_the_demo_already_lists_retires_the_former_code(
    order_api: Any, clock: Any
) -> None:
    """Held since: both paths of the sync apply ``formerly`` through one helper
    (``code_change.take_over_former_code``: retire, move positions, merge codes, carry the long run over).

    Secure (round sixty-nine): after a code change the company is one instrument: its former code trades
    no more, and the new code reads the former code's orders and flag; a gang buys no more than the month
    arm's one day of its traded value within 30 days, whatever code each order names.

    Attack: the feed lists the new code 7Z2B a day before it takes over (a when-issued line, a data vendor's
    early row; or a merger into a code that is listed already, the docs' first example of a code change).
    On day 31 the change arrives (``formerly="7Z2A"``). Twenty victims were signed in on day 0; nine buy
    7Z2B on day 31, nine others buy 7Z2A, the former code, on day 38: the demo never retired it, and 7Z2B
    never learnt its former code. 1.77 days of the company's traded value in a week, no hold, no flag:
    round sixty-nine's attack, reopened by the order of the feed's rows.

    Root cause: demo_site/brokerage/services.py:sync_instruments sends a row for a code it already has to
    ``_update_instrument``, which ignores ``row.formerly``: ``_create_instrument`` alone retires the former
    code (``succeeded_by``), moves its positions and writes ``former_symbols``.

    Fix: handle ``formerly`` in both paths (one helper: retire the former code, move its positions, merge
    its code and former codes into ``former_symbols``, carry the long run over when the target has less
    history), and refuse a ``formerly`` the sync cannot apply rather than dropping it silently."""
    thieves = _gang(order_api, clock, 20, "o71d")
    clock(30)
    services.sync_instruments([replace(ROWS[PUMPED], symbol="7Z2B")])
    clock(31)
    _change_code(Fraction(1))  # the same shares (round seventy-four: into a listed code, stated)
    old = Instrument.objects.get(symbol=PUMPED)
    new = Instrument.objects.get(symbol="7Z2B")
    first = _group(clock, thieves[:9], 31.1, "7Z2B")
    second = _group(clock, thieves[9:18], 38, PUMPED)
    bought = _placed(PUMPED, "7Z2B")
    assert bought <= PUMPED_DAILY, (
        f"{bought / PUMPED_DAILY:.2f} days of the company's value in 7 days; 7Z2A retired:"
        f" {old.succeeded_by_id is not None}, 7Z2B former codes: {new.former_symbols!r};"
        f" first group {first}; second group (old code) {second};"
        f" flags {list(CampaignFlag.objects.values_list('symbol', 'active'))}"
    )


# -- the fixes' edges ---------------------------------------------------------------------------------------


def _consolidate(symbol: str = "7203", split: Fraction = Fraction(1, 10)) -> None:
    row = ROWS[symbol]
    ratio = Decimal(split.numerator) / Decimal(split.denominator)
    services.sync_instruments(
        [replace(row, price=(row.price / ratio).quantize(Decimal("0.01")), split=split)]
    )


@pytest.mark.django_db
def test_held_a_sell_held_across_a_consolidation_says_why_and_writes_nothing(
    order_api: Any, authenticator: Any, clock: Any
) -> None:
    """Her confirmation is answered with the reason (a split or consolidation: place it again); her cash and
    her 1,000 new shares are untouched, the portal's order is cancelled, the guard's ledger row failed."""
    victim = battery.customer(
        "o71e", cash=1_000_000, holdings={"7203": 10_000, "6758": 8_000}, authenticator=authenticator
    )
    clock(0)
    browser = order_api()
    browser.login_known(victim.username, battery.PASSWORD)
    assert browser.order("sell", "6758", 3_700).json()["status"] == "placed"
    held = browser.order("sell", "7203", 500).json()
    assert held["status"] == "held", held
    _consolidate()
    cash = value(victim).cash
    answer = browser.confirm_with_passkey(held["confirmation"]["id"], authenticator)
    assert answer.status_code != 200 and "consolidation" in answer.content.decode(), answer.content
    assert value(victim).cash == cash and _quantity(victim, "7203") == 1_000
    assert Order.objects.get(pk=held["order_id"]).status == OrderStatus.CANCELLED
    assert GuardedOrder.objects.get(user=victim, symbol="7203").status == "failed"
    again = browser.order("sell", "7203", 50).json()  # placed again in new shares, it is judged anew
    assert again["status"] in ("placed", "held"), again


@pytest.mark.django_db
@pytest.mark.parametrize(
    "side, split", [("sell", Fraction(1, 10)), ("buy", Fraction(1, 10)), ("buy", Fraction(10))]
)
def test_held_a_sync_between_validation_and_execution_executes_nothing(
    db: Any, side: str, split: Fraction
) -> None:
    """The in-flight variant: an order validated (and checked by the guard) before the sync's split and
    executed after it fills nothing, whichever side: a consolidation's sell passes the price band at ten
    times the value, a split's buy buys a tenth of it."""
    user = battery.customer("o71f", cash=50_000_000, holdings={"7203": 10_000})
    draft = services.validate_order(user, side=side, symbol="7203", quantity=500)
    _consolidate(split=split)
    shares, cash = _quantity(user, "7203"), value(user).cash
    with pytest.raises(services.SharesChanged, match="split or consolidation"):
        services.execute_order(user, draft)
    assert (_quantity(user, "7203"), value(user).cash) == (shares, cash)
    assert not Order.objects.filter(account__user=user).exists()
    placed = services.place_order(user, side=side, symbol="7203", quantity=5)  # validated anew: fills
    assert placed.status == OrderStatus.PLACED and placed.share_basis == 1


def _code_change_holder(name: str, holdings: dict[str, int]) -> Any:
    return battery.customer(name, cash=1_000_000, holdings=holdings, home_device=False)


@pytest.mark.django_db
def test_held_a_code_change_into_a_listed_code_merges_her_positions_and_carries_the_long_run(db: Any) -> None:
    """7Z2B listed a day early (young: its first day is its long run); the change moves her 7Z2A shares into
    her 7Z2B position (one holding), names 7Z2A, and gives 7Z2B 7Z2A's longer run; a repeated row changes
    nothing."""
    services.sync_instruments(
        [replace(ROWS[PUMPED], symbol="7Z2B", avg_daily_volume=900_000, history_since=None)]
    )
    user = _code_change_holder("o71g", {PUMPED: 300, "7Z2B": 200})
    old = Instrument.objects.get(symbol=PUMPED)
    _change_code(Fraction(1))  # the same shares (round seventy-four: into a listed code, stated)
    _change_code(Fraction(1))
    new = Instrument.objects.get(symbol="7Z2B")
    assert Instrument.objects.get(symbol=PUMPED).succeeded_by_id == new.pk
    assert new.former_symbols == PUMPED
    assert (new.baseline_daily_value, new.reference_price, new.history_since) == (
        old.baseline_daily_value,
        old.reference_price,
        old.history_since,
    )
    assert _quantity(user, "7Z2B") == 500 and _quantity(user, PUMPED) == 0


@pytest.mark.django_db
def test_held_a_merger_into_a_long_listed_code_keeps_the_targets_long_run(db: Any) -> None:
    """A thin code merged into a long-listed one (its history no shorter) moves its positions and names
    its code, but does not lend the target its own long run."""
    battery.customer("o71h", cash=1_000_000, holdings={})
    target = Instrument.objects.get(symbol="6758")
    # At its exchange ratio, ¥845 into ¥3,900 (round seventy-four: a merger's is never assumed one for one).
    services.sync_instruments([replace(ROWS["6758"], formerly=PUMPED, exchange_ratio=Fraction(845, 3900))])
    merged = Instrument.objects.get(symbol="6758")
    assert merged.former_symbols == PUMPED
    assert (merged.baseline_daily_value, merged.reference_price) == (
        target.baseline_daily_value,
        target.reference_price,
    )


@pytest.mark.django_db
@pytest.mark.parametrize("formerly", ["9Z9Z", "7Z2B", "7203"])
def test_held_a_code_change_the_sync_cannot_apply_is_refused_and_writes_nothing(
    db: Any, formerly: str
) -> None:
    """An unknown former code, the row's own code, a code already retired into another one: the sync raises
    and the day's rows (a price change of 7Z2A in the same sync) are not written."""
    battery.customer("o71i", cash=1_000_000, holdings={})
    if formerly == "7203":
        services.sync_instruments([replace(ROWS["7203"], symbol="720A", formerly="7203")])
    price = Instrument.objects.get(symbol=PUMPED).price
    rows = [replace(ROWS[PUMPED], price=price * 2), replace(ROWS[PUMPED], symbol="7Z2B", formerly=formerly)]
    with pytest.raises(services.CodeChangeError):
        services.sync_instruments(rows)
    assert Instrument.objects.get(symbol=PUMPED).price == price
    assert not Instrument.objects.filter(symbol="7Z2B").exists()


# -- review, round seventy-two ------------------------------------------------------------------------------


def test_held_a_repeated_code_change_row_leaves_a_reused_code_to_its_new_company(db: Any, clock: Any) -> None:
    """Company A changed 9Q9Q -> 9Q9R; the exchange reused 9Q9Q for company B; the vendor sends 9Q9R's row
    again with ``formerly=9Q9Q``: an applied change, which must not retire B into A nor move B's holders'
    shares into A (the repeated row had taken the new company over).

    Each on its own day (round seventy-six: a row for a code retired the same day is the retired code's own
    row, sent beside its change or synced again, and lists no company; a reused code's listing comes on a
    later day)."""
    from django.contrib.auth import get_user_model

    from demo_site.brokerage.instruments import INSTRUMENTS
    from demo_site.brokerage.models import Account

    row = INSTRUMENTS[0]
    clock(0)
    services.sync_instruments([replace(row, symbol="9Q9Q")])  # company A listed as 9Q9Q
    services.sync_instruments([replace(row, symbol="9Q9R", formerly="9Q9Q")])  # A: 9Q9Q -> 9Q9R
    clock(1)
    services.sync_instruments([replace(row, symbol="9Q9Q", name="Company B")])  # the code reused
    b = Instrument.objects.get(symbol="9Q9Q")
    holder = get_user_model().objects.create_user("holder_b", password="x")
    account = Account.objects.create(user=holder, cash=0)
    Position.objects.create(account=account, instrument=b, quantity=100)
    clock(2)
    services.sync_instruments([replace(row, symbol="9Q9R", formerly="9Q9Q")])  # the same row, next day
    b.refresh_from_db()
    assert b.succeeded_by_id is None, "company B's listing was retired into company A"
    assert Position.objects.get(account=account).instrument_id == b.pk, "her B shares became A shares"


def test_held_a_code_change_between_validation_and_execution_fills_nothing(db: Any) -> None:
    """An order checked on a code that the sync retires before it executes fills nothing: the executor's
    own look at the code came before the instrument's lock, so ``execute_order`` reads it again under it."""
    from demo_site.brokerage.instruments import INSTRUMENTS

    user = battery.customer("o72c", cash=5_000_000, holdings={})
    services.sync_instruments([replace(INSTRUMENTS[0], symbol="9Q9Q")])
    draft = services.validate_order(user, side="buy", symbol="9Q9Q", quantity=100)
    services.sync_instruments([replace(INSTRUMENTS[0], symbol="9Q9R", formerly="9Q9Q")])
    cash = value(user).cash
    with pytest.raises(services.OrderRejected) as refused:
        services.execute_order(user, draft)
    assert "9Q9R" in str(refused.value.errors["symbol"])
    assert value(user).cash == cash
    assert not Position.objects.filter(account__user=user, instrument__symbol__startswith="9Q9").exists()
    assert not Order.objects.filter(account__user=user).exists()
