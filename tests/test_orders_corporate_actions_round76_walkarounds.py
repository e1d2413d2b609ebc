"""Red team, round seventy-six (held since): the demo's corporate actions after round seventy-four's fix
(``InstrumentData.exchange_ratio``, ``Instrument.corporate_actions(_on)``, the contract table of
docs/demo.md).

Real ``services.sync_instruments`` rows, real accounts (``services.open_account``), the real JSON order API
and authguard's real passkey confirmation; nothing of our code is mocked. Money is measured in yen with the
demo's own portfolio valuation (``services.portfolio``).

Held since a code's own split and a code change from it or into it cannot share a day, in either order
(``CodeChangeError``: the change's ratio counts the shares before the split or after?), and a row for a code
the day's sync retired is no new listing: the retired code's own row (sent beside its change, or synced
again) writes nothing, its own change synced again (recorded on it) is skipped, and its split or a change
into it (a chain's rows in reverse, a change back) is refused. The fix's edges are at the end.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest

from demo_site.brokerage import services
from demo_site.brokerage.instruments import INSTRUMENTS
from demo_site.brokerage.models import Account, Instrument, Position

from . import test_battery_exposure as battery

start = battery.start
clock = battery.clock
ROWS = {row.symbol: row for row in INSTRUMENTS}
THIN_US = "ZVXQ"


def _worth(user: Any) -> Decimal:
    return services.portfolio(user).total_value


def _quantity(user: Any, symbol: str) -> int:
    row = Position.objects.filter(account__user=user, instrument__symbol=symbol).first()
    return 0 if row is None else row.quantity


def _holder(name: str, holdings: dict[str, int], cash: int = 0) -> Any:
    return services.open_account(
        name, "r76b-2025-pw", email=f"{name}@example.jp", cash=Decimal(cash), holdings=holdings
    )


def _sync_or_refused(rows: list[Any]) -> bool:
    """Sync the rows; ``True`` when the sync refused them (and wrote nothing)."""
    try:
        services.sync_instruments(rows)
    except services.CorporateActionError:
        return True
    return False


# -- a split of the *target* code on the day of a merger into it -------------------------------------------


def _sony_consolidated_and_merged_into(suffix: str) -> tuple[Any, Any, Any, Any]:
    """The demo listed; the gang's 10,000 7Z2A, an honest 1,000 Sony; Sony's ten-into-one consolidation row
    and 7Z2A's merger into it at 845/3,900 (Sony at ¥39,000 the new share)."""
    services.sync_instruments()
    gang = _holder(f"r76m{suffix}", {"7Z2A": 10_000})
    honest = _holder(f"r76h{suffix}", {"6758": 1_000})
    consolidation = replace(ROWS["6758"], price=Decimal(39_000), split=Fraction(1, 10))
    merger = replace(ROWS["6758"], price=Decimal(39_000), formerly="7Z2A", exchange_ratio=Fraction(845, 3900))
    return gang, honest, consolidation, merger


@pytest.mark.django_db
def test_a_merger_into_a_code_consolidated_the_same_day_takes_the_ratio_per_new_share_and_pays_tenfold(
    db: Any,
) -> None:
    """Secure: a corporate action moves no value (docs/demo.md, round seventy-four); a row the sync cannot
    apply unambiguously is refused and the day writes nothing (``CorporateActionError``). The contract
    refuses "a ratio for a former code whose own row split it the same day: per share before the split or
    after?".

    Attack: the same question on the other code. 7Z2A (¥845, the gang's) merges into 6758 Sony at the public
    ratio of 845/3,900 Sony share per 7Z2A share, and Sony consolidates ten into one on the same effective day
    (Sony at ¥39,000 the new share). The contract has no single row for it: ``formerly`` + ``split`` makes the
    split the change's, ``split`` + ``exchange_ratio`` is refused, and "a split of a code's own shares comes
    on a row without formerly", so the day's data carry two Sony rows: its consolidation and the merger. In
    that order the sync applies the consolidation to Sony's own holders, then the merger's ratio, announced
    per Sony share of the day it was announced, to the gang's 7Z2A *per new share*: its 10,000 7Z2A (¥8.45
    million) become 2,166 Sony at ¥39,000: ¥84.5 million, sellable at once (Sony is liquid). The other order
    of the same two rows gives the gang 216 Sony (¥8.42 million); the sync accepts both and the yen depend on
    the rows' order. A ten-for-one split instead of the consolidation costs honest 7Z2A holders 90 % the same
    way (the test's second case: ¥8.45 million -> ¥0.84 million).

    Root cause: demo_site/brokerage/market_data.py:_take_over refuses a ratio for a former code with a split
    in ``_actions_on(former, today)`` but never looks at the target's own actions of the day
    (``_actions_on(instrument, today)`` holds ``split 1/10``); and ``_own_split`` applies a target's split
    after a code change of the day (``"7Z2A x 169/780"`` recorded) to the merged holders too. Neither order
    is refused.

    Fix: refuse (``CodeChangeError``) a code change with a ratio other than one into an instrument whose
    own split the sync applied today, and a split of an instrument that took over a code with a ratio
    today (any ``"X x r"`` in its day's actions), as the former code's case is refused; document it in the
    contract table."""
    gang, honest, consolidation, merger = _sony_consolidated_and_merged_into("")
    before = {u.username: _worth(u) for u in (gang, honest)}
    refused = _sync_or_refused([consolidation, merger])
    after = {u.username: _worth(u) for u in (gang, honest)}
    assert refused or all(abs(after[n] - before[n]) <= before[n] * Decimal("0.01") for n in before), (
        f"consolidation then merger, accepted: {_quantity(gang, '6758'):,} Sony for the gang's 10,000 7Z2A;"
        f" before {before}, after {after}"
    )


@pytest.mark.django_db
def test_a_merger_into_a_code_split_ten_for_one_the_same_day_costs_her_90_percent(db: Any) -> None:
    """Secure: as above. Attack (the honest side of the same gap): 7Z2A merges into Sony at 845/3,900 and
    Sony splits ten for one the same day (¥390 the new share); the rows come split first. Her 10,000 7Z2A
    (¥8.45 million) become 2,166 Sony at ¥390 (¥0.84 million and odd-lot cash): ¥7.6 million of hers gone,
    no hold, no notice, and the sync reported nothing. Root cause and fix: as
    ``test_a_merger_into_a_code_consolidated_the_same_day_takes_the_ratio_per_new_share_and_pays_tenfold``."""
    services.sync_instruments()
    her = _holder("r76v", {"7Z2A": 10_000})
    before = _worth(her)
    split = replace(ROWS["6758"], price=Decimal(390), split=Fraction(10))
    merger = replace(ROWS["6758"], price=Decimal(390), formerly="7Z2A", exchange_ratio=Fraction(845, 3900))
    refused = _sync_or_refused([split, merger])
    after = _worth(her)
    assert refused or abs(after - before) <= before * Decimal("0.01"), (
        f"split then merger, accepted: her ¥{before:,.0f} of 7Z2A are {_quantity(her, '6758'):,} Sony,"
        f" ¥{after:,.0f}"
    )


@pytest.mark.django_db
def test_held_the_merger_first_then_the_consolidation_keeps_the_gangs_value(db: Any) -> None:
    """The same two rows, merger first: the consolidation applies to the merged holders too (the ratio read
    per old Sony share): the gang's ¥8.45 million stays ¥8.4 million, the honest holder's ¥3.9 million too.
    (Value conserved only if the ratio was per old share: the order decides; see the test above.)

    Adapted to the fix's contract: the rows' order is no statement of the ratio's shares, so this order is
    refused too (as the former code's split and change are, either way round): the day writes nothing and
    both keep what they had."""
    gang, honest, consolidation, merger = _sony_consolidated_and_merged_into("2")
    before = {u.username: _worth(u) for u in (gang, honest)}
    with pytest.raises(services.CodeChangeError, match="code change into it"):
        services.sync_instruments([merger, consolidation])
    after = {u.username: _worth(u) for u in (gang, honest)}
    assert all(abs(after[n] - before[n]) <= before[n] * Decimal("0.01") for n in before), (before, after)
    assert (_quantity(gang, "7Z2A"), _quantity(honest, "6758")) == (10_000, 1_000)


def _rows_of(code: str) -> list[Any]:
    rows = Instrument.objects.filter(symbol__startswith=code)
    return list(rows.values_list("symbol", "succeeded_by__symbol"))


# -- a former code's own split arriving *after* its change on the same day ---------------------------------


@pytest.mark.django_db
def test_the_former_codes_split_after_its_change_is_a_new_listing_not_a_refusal(db: Any) -> None:
    """Secure: the contract refuses "a ratio for a former code whose own row split it the same day" (per
    share before the split or after?): the sync must not apply one reading silently, whatever the rows'
    order.

    Attack: 7Z2A consolidates ten into one (¥8,450 the new share) and merges into Sony the same day at the
    ratio stated per *new* 7Z2A share (8,450/3,900: the announcement after the consolidation was set). Split
    row first: refused (round seventy-four). Merger row first: the merger moves the gang's 10,000 old 7Z2A
    at 8,450/3,900 each: 21,666 Sony, ¥84.5 million for ¥8.45 million; the 7Z2A consolidation row that
    follows is taken for "a new listing on a reused code" (7Z2A retired), archives the old row and creates
    a phantom 7Z2A at ¥8,450 that no one holds. No error; the day is written.

    Root cause: demo_site/brokerage/market_data.py:sync_instruments treats any row for a retired code as a
    new company's listing, so the former code's own split of the same day never reaches
    ``_take_over``'s refusal; that refusal only looks back (a split applied before the change).

    Fix: a row for a code retired *today* (``succeeded_by`` set by today's sync, e.g. the successor's day
    actions name it) that carries a split is the former code's own action: refuse it (``CodeChangeError``:
    per share before the split or after?) rather than list a new company."""
    services.sync_instruments()
    gang = _holder("r76f", {"7Z2A": 10_000})
    before = _worth(gang)
    merger = replace(ROWS["6758"], formerly="7Z2A", exchange_ratio=Fraction(8450, 3900))
    consolidation = replace(ROWS["7Z2A"], price=Decimal(8450), split=Fraction(1, 10))
    refused = _sync_or_refused([merger, consolidation])
    after = _worth(gang)
    assert refused or abs(after - before) <= before * Decimal("0.01"), (
        f"merger then the former code's consolidation, accepted: the gang's ¥{before:,.0f} of 7Z2A are"
        f" {_quantity(gang, '6758'):,} Sony, ¥{after:,.0f};"
        f" 7Z2A rows now {_rows_of('7Z2A')}"
    )


@pytest.mark.django_db
def test_held_the_former_codes_split_first_then_its_change_is_refused(db: Any) -> None:
    """Round seventy-four's refusal, the same two rows split first: refused, nothing written."""
    services.sync_instruments()
    gang = _holder("r76f2", {"7Z2A": 10_000})
    merger = replace(ROWS["6758"], formerly="7Z2A", exchange_ratio=Fraction(8450, 3900))
    consolidation = replace(ROWS["7Z2A"], price=Decimal(8450), split=Fraction(1, 10))
    assert _sync_or_refused([consolidation, merger])
    assert _quantity(gang, "7Z2A") == 10_000


# -- chains, back and forth, reruns ------------------------------------------------------------------------


@pytest.mark.django_db
def test_held_a_chain_a_to_b_to_c_the_same_day_conserves_value(db: Any) -> None:
    """ZVXQ -> ZVXR (one for ten) and ZVXR -> ZVXS (ten for one) on one day, in that order: her 1,005 ZVXQ
    are 100 ZVXR and half a share in cash, then 1,000 ZVXS: ¥206,528 before, within ¥1 after."""
    services.sync_instruments()
    her = _holder("r76c", {THIN_US: 1_005})
    before = _worth(her)
    row = ROWS[THIN_US]
    r1 = replace(row, symbol="ZVXR", price=Decimal("13.70"), formerly=THIN_US, exchange_ratio=Fraction(1, 10))
    r2 = replace(row, symbol="ZVXS", price=Decimal("1.37"), formerly="ZVXR", exchange_ratio=Fraction(10))
    services.sync_instruments([r1, r2])
    assert _quantity(her, "ZVXS") == 1_000
    assert abs(_worth(her) - before) <= 2, (before, _worth(her))
    assert Instrument.objects.get(symbol="ZVXS").former_symbols.split() == ["ZVXR", THIN_US]


@pytest.mark.django_db
def test_held_a_chain_listed_in_reverse_order_conserves_value(db: Any) -> None:
    """The same chain, rows in reverse (ZVXS formerly ZVXR first; ZVXR listed a day early as a when-issued
    line with no holders): ZVXR moves into ZVXS, then the ZVXR row is a new listing that takes ZVXQ over.
    Her value is kept in yen (but she ends in 100 of a new ZVXR listing that takes ZVXQ over, while ZVXS
    names the archived ZVXR as its former code: the chain is broken, her shares stranded at a price no
    later row will update)."""
    services.sync_instruments()
    row = ROWS[THIN_US]
    services.sync_instruments([replace(row, symbol="ZVXR", price=Decimal("13.70"))])
    her = _holder("r76c2", {THIN_US: 1_005})
    before = _worth(her)
    r1 = replace(row, symbol="ZVXR", price=Decimal("13.70"), formerly=THIN_US, exchange_ratio=Fraction(1, 10))
    r2 = replace(row, symbol="ZVXS", price=Decimal("1.37"), formerly="ZVXR", exchange_ratio=Fraction(10))
    refused = _sync_or_refused([r2, r1])
    assert refused or abs(_worth(her) - before) <= 2, (before, _worth(her))


@pytest.mark.django_db
def test_held_a_change_back_and_forth_the_same_day_conserves_value(db: Any) -> None:
    """ZVXQ -> ZVXR at one for ten, then ZVXR -> ZVXQ at ten for one (a correction as two rows): her 1,005
    ZVXQ are 1,000 ZVXQ (a new listing on the reused code) and half a ZVXR share in cash: value kept within
    ¥2. (Synced again the same day, the round trip is applied again, archiving two more rows, value kept
    since the ratios are inverse.)"""
    services.sync_instruments()
    her = _holder("r76bf", {THIN_US: 1_005})
    before = _worth(her)
    row = ROWS[THIN_US]
    there = replace(
        row, symbol="ZVXR", price=Decimal("13.70"), formerly=THIN_US, exchange_ratio=Fraction(1, 10)
    )
    back = replace(row, formerly="ZVXR", exchange_ratio=Fraction(10))
    refused = _sync_or_refused([there, back])
    assert refused or abs(_worth(her) - before) <= 2, (before, _worth(her))


@pytest.mark.django_db
def test_a_chains_rows_synced_again_on_their_day_refuse_the_whole_days_sync(db: Any) -> None:
    """Secure: docs/demo.md: "Each corporate action applies once: ... the same day's rows synced again
    rescale nothing" (a sync retried after a timeout, or the afternoon's full file after the morning's).

    Attack (no yen; availability of the day's market data): a chain ZVXQ -> ZVXR (one for ten) -> ZVXS (ten
    for one) synced on its day; the day's full file is synced again with Toyota's new price. The second run
    raises ``CodeChangeError`` ("the code ZVXQ already changed to another code") and writes nothing: every
    instrument keeps yesterday's price (the guard's day figures and the demo's fills with it) until someone
    edits the vendor's file. Her shares are safe (1,000 ZVXS).

    Root cause: demo_site/brokerage/market_data.py:sync_instruments reads the ZVXR row as a new listing on a
    reused code (ZVXR retired into ZVXS today), archives ZVXR and creates a new one, whose ``formerly`` ZVXQ
    code_change.former_code finds retired into the archived row, not into this one: refused. The day's
    record (``corporate_actions``) is never consulted for a code retired today.

    Fix: before treating a row for a retired code as a new listing, check whether its successor's actions of
    today name it (``"ZVXR x 10"`` on ZVXS) and the row's own change is recorded on the retired row: then it
    is the day's row again, applied already: skip it."""
    services.sync_instruments()
    her = _holder("r76rr", {THIN_US: 1_005})
    row = ROWS[THIN_US]
    r1 = replace(row, symbol="ZVXR", price=Decimal("13.70"), formerly=THIN_US, exchange_ratio=Fraction(1, 10))
    r2 = replace(row, symbol="ZVXS", price=Decimal("1.37"), formerly="ZVXR", exchange_ratio=Fraction(10))
    services.sync_instruments([r1, r2])
    worth = _worth(her)
    toyota = replace(ROWS["7203"], price=ROWS["7203"].price + 10)
    refused = _sync_or_refused([toyota, r1, r2])
    assert _quantity(her, "ZVXS") == 1_000 and _worth(her) == worth
    assert not refused and Instrument.objects.get(symbol="7203").price == toyota.price


# -- odd lots over many accounts ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_held_odd_lots_over_many_gang_accounts_pay_at_most_half_a_yen_each(db: Any) -> None:
    """300 gang accounts of one ZVXQ share ($1.37, ¥205.5) each, consolidated ten into one: each gets a
    tenth of a ZVXR share in cash at the lowest price per new share ($13.70): ¥205.5, rounded half up to
    ¥206. The broker pays ¥0.5 an account more than the shares were worth (¥150 over 300 accounts): the
    rounding, not a lever (a yen's worth of shares per account at most)."""
    services.sync_instruments()
    accounts = [_holder(f"r76o{i}", {THIN_US: 1}) for i in range(300)]
    before = sum((_worth(u) for u in accounts), Decimal(0))
    row = ROWS[THIN_US]
    services.sync_instruments(
        [replace(row, symbol="ZVXR", price=Decimal("13.70"), formerly=THIN_US, split=Fraction(1, 10))]
    )
    after = sum((a.cash for a in Account.objects.filter(user__in=accounts)), Decimal(0))
    assert not Position.objects.filter(account__user__in=accounts).exists()
    assert after - before <= Decimal("0.5") * len(accounts), (before, after)


# -- the fix's edges ---------------------------------------------------------------------------------------


def _chain(ratios: bool = True) -> tuple[Any, Any]:
    row = ROWS[THIN_US]
    first = replace(row, symbol="ZVXR", price=Decimal("13.70"), formerly=THIN_US)
    second = replace(row, symbol="ZVXS", price=Decimal("1.37"), formerly="ZVXR")
    if ratios:
        first = replace(first, exchange_ratio=Fraction(1, 10))
        second = replace(second, exchange_ratio=Fraction(10))
    else:
        first = replace(first, price=row.price)
    return first, second


@pytest.mark.django_db
@pytest.mark.parametrize("case", ["reversed_chain", "change_back"])
def test_held_a_chains_rows_in_reverse_or_a_change_back_the_same_day_are_refused(db: Any, case: str) -> None:
    """A row whose code the day's sync retired already, naming a former code of its own: a chain's rows in
    reverse (ZVXS formerly ZVXR, then ZVXR formerly ZVXQ: her shares ended in a new ZVXR listing beside the
    ZVXS that names the archived one) or a change back (ZVXQ -> ZVXR -> ZVXQ). Which holders it means, at
    which code's shares, the sync cannot tell: refused, nothing written."""
    services.sync_instruments()
    row = ROWS[THIN_US]
    services.sync_instruments([replace(row, symbol="ZVXR", price=Decimal("13.70"))])  # a when-issued line
    her = _holder(f"r76e{case[:4]}", {THIN_US: 1_005})
    before = _worth(her)
    first, second = _chain()
    rows = (
        [second, first]
        if case == "reversed_chain"
        else [first, replace(row, formerly="ZVXR", exchange_ratio=Fraction(10))]
    )
    with pytest.raises(services.CodeChangeError, match="changed to .* today"):
        services.sync_instruments(rows)
    assert (_quantity(her, THIN_US), _worth(her)) == (1_005, before)
    assert Instrument.objects.get(symbol=THIN_US).succeeded_by_id is None
    assert Instrument.objects.get(symbol="ZVXR").succeeded_by_id is None
    assert not Instrument.objects.filter(symbol__contains="~").exists()


@pytest.mark.django_db
@pytest.mark.parametrize("retired_row_first", [True, False])
def test_held_the_retired_codes_own_row_beside_its_change_lists_no_phantom_and_syncs_again(
    db: Any, retired_row_first: bool
) -> None:
    """The day's full file carries 7Z2A's own last row and its merger into Sony: in either order, and synced
    a second time, 7Z2A is retired once into Sony (the gang's 10,000 at 845/3,900: 2,166 Sony and odd-lot
    cash, value kept) and no new 7Z2A is listed (the row after the change had listed a phantom of the old
    company on its reused code); the rest of the file is written both times."""
    services.sync_instruments()
    gang = _holder("r76p", {"7Z2A": 10_000})
    before = _worth(gang)
    merger = replace(ROWS["6758"], formerly="7Z2A", exchange_ratio=Fraction(845, 3900))
    rows = [ROWS["7Z2A"], merger] if retired_row_first else [merger, ROWS["7Z2A"]]
    services.sync_instruments(rows)
    assert _quantity(gang, "6758") == 2_166 and abs(_worth(gang) - before) <= before * Decimal("0.001")
    worth = _worth(gang)
    toyota = replace(ROWS["7203"], price=ROWS["7203"].price + 10)
    services.sync_instruments([toyota, *rows])
    assert Instrument.objects.get(symbol="7203").price == toyota.price
    assert (_quantity(gang, "6758"), _worth(gang)) == (2_166, worth)
    sony = Instrument.objects.get(symbol="6758")
    assert Instrument.objects.get(symbol="7Z2A").succeeded_by_id == sony.pk
    assert not Instrument.objects.filter(symbol__contains="~").exists()
    assert sony.corporate_actions.splitlines() == ["7Z2A x 13/60"]


@pytest.mark.django_db
@pytest.mark.parametrize("ratios", [True, False], ids=["with_ratios", "plain"])
def test_held_a_chain_synced_again_on_its_day_applies_once(db: Any, ratios: bool) -> None:
    """ZVXQ -> ZVXR -> ZVXS, with ratios or plain (new codes, one for one, recorded as ``x 1``), synced three
    times on its day: her shares move once, the codes are named once, nothing is archived."""
    services.sync_instruments()
    her = _holder(f"r76a{int(ratios)}", {THIN_US: 1_005})
    before = _worth(her)
    rows = list(_chain(ratios))
    for _ in range(3):
        services.sync_instruments(rows)
    assert _quantity(her, "ZVXS") == (1_000 if ratios else 1_005)
    assert abs(_worth(her) - before) <= 2
    zvxs = Instrument.objects.get(symbol="ZVXS")
    assert zvxs.former_symbols.split() == ["ZVXR", THIN_US]
    assert zvxs.corporate_actions.splitlines() == [f"ZVXR x {10 if ratios else 1}"]
    assert not Instrument.objects.filter(symbol__contains="~").exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "case",
    [
        "rename_then_new_codes_split",
        "formers_split_then_rename",
        "change_with_split_then_the_split_again",
        "targets_split_then_merger_at_one",
        "merger_then_formers_split",
        "merger_then_the_same_merger_at_another_ratio",
        "chain_then_middle_codes_split",
        "chain_then_middle_codes_change_at_another_ratio",
    ],
)
def test_held_a_split_beside_a_code_change_of_the_same_day_is_refused(db: Any, case: str) -> None:
    """A code's own split and a code change from or into it cannot share a day, whatever the ratio (one for
    one too: a share before the split or after?) and whichever row comes first; a split that comes with a
    change into a new code is the change's own row (``formerly`` + ``split``). After a chain is applied, its
    middle code's rows stay refused unless they are the day's rows again, and a change the day applied comes
    again at its ratio or none (another is a correction or a second action). The day writes nothing."""
    services.sync_instruments()
    her = _holder(f"r76s{abs(hash(case)) % 10_000}", {THIN_US: 1_005, "7Z2A": 1_000})
    zvxq, sony = ROWS[THIN_US], ROWS["6758"]
    renamed = replace(zvxq, symbol="ZVXR")
    consolidated = replace(zvxq, symbol="ZVXR", price=Decimal("13.70"))
    first, second = _chain()
    merger = replace(sony, formerly="7Z2A", exchange_ratio=Fraction(845, 3900))
    rows = {
        "rename_then_new_codes_split": [
            replace(renamed, formerly=THIN_US),
            replace(consolidated, split=Fraction(1, 10)),
        ],
        "formers_split_then_rename": [
            replace(zvxq, price=Decimal("13.70"), split=Fraction(1, 10)),
            replace(consolidated, formerly=THIN_US),
        ],
        "change_with_split_then_the_split_again": [
            replace(consolidated, formerly=THIN_US, split=Fraction(1, 10)),
            replace(consolidated, price=Decimal("137"), split=Fraction(1, 10)),
        ],
        "targets_split_then_merger_at_one": [
            replace(sony, price=Decimal(390), split=Fraction(10)),
            replace(merger, price=Decimal(390), exchange_ratio=Fraction(1)),
        ],
        "merger_then_formers_split": [
            merger,
            replace(ROWS["7Z2A"], price=Decimal(8450), split=Fraction(1, 10)),
        ],
        "merger_then_the_same_merger_at_another_ratio": [
            merger,
            replace(merger, exchange_ratio=Fraction(845, 3800)),
        ],
        "chain_then_middle_codes_split": [
            first,
            second,
            replace(first, formerly=None, exchange_ratio=None, split=Fraction(1, 10)),
        ],
        "chain_then_middle_codes_change_at_another_ratio": [
            first,
            second,
            replace(first, exchange_ratio=Fraction(1, 5)),
        ],
    }[case]
    if case.startswith("chain_then"):
        services.sync_instruments(rows[:2])
        rows = [ROWS["7203"], *rows]
        held = {"ZVXS": 1_000, "7Z2A": 1_000}
    else:
        held = {THIN_US: 1_005, "7Z2A": 1_000}
    before = _worth(her)
    with pytest.raises(services.CodeChangeError):
        services.sync_instruments(rows)
    assert {symbol: _quantity(her, symbol) for symbol in held} == held
    assert _worth(her) == before
