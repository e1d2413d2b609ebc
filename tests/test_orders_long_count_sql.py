"""The long count's statement (``authguard.orders.vouching.thin_since_confirmation``) on ledger rows written
directly: which confirmations forgive which browser's buys, on SQLite and PostgreSQL alike (issue 8, red
team rounds fifty-eight and fifty-nine, and the review of round fifty-nine)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from decimal import Decimal
from typing import Any

import pytest

from authguard.models import GuardedOrder, GuardStatus, HeldOrder
from authguard.orders import rollup, vouching

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 12, 3, 14, 37, 21, tzinfo=dt_timezone.utc)
HERS, HIS = "a" * 64, "b" * 64


def _buy(user: Any, *, days_ago: float, device: str, amount: int = 100_000, vouched: bool = False) -> Any:
    return GuardedOrder.objects.create(
        user=user, created_at=NOW - timedelta(days=days_ago), side="buy", symbol="7Z2A", quantity=1,
        amount=Decimal(amount), currency="JPY", status=GuardStatus.PLACED, illiquid=True, illiquidity=1.0,
        illiquid_amount=Decimal(amount), vouched=vouched, device_hash=device,
    )  # fmt: skip


def _confirmed(user: Any, order: Any, *, days_ago: float, method: str = "passkey", code: str = "") -> Any:
    """``order`` held and confirmed ``days_ago`` (by ``method``), its hold's finding ``code``."""
    at = NOW - timedelta(days=days_ago)
    return HeldOrder.objects.create(
        id=uuid.uuid4(), user=user, guarded=order, canonical="{}", digest="0" * 64, nonce="n",
        session_binding="s", methods=["passkey"], summary="Buy 1 7Z2A", summary_data={}, severity=4,
        reasons=[{"code": code or vouching.FINDING}], status=HeldOrder.Status.CONFIRMED, created_at=at,
        expires_at=at + timedelta(minutes=5), confirmed_at=at, confirmed_method=method,
    )  # fmt: skip


def _count(user: Any, device: str = HERS) -> Decimal:
    return vouching.thin_since_confirmation(user, now=NOW, days=365, device=device).amount


def test_her_confirmation_forgives_her_browsers_buys_and_not_his(user_factory: Any) -> None:
    user = user_factory("hanako")
    _buy(user, days_ago=20, device=HIS)
    mine = _buy(user, days_ago=10, device=HERS)
    assert _count(user) == Decimal(200_000)
    _confirmed(user, mine, days_ago=9)
    assert _count(user) == Decimal(100_000)  # his buy still counts
    since = vouching.thin_since_confirmation(user, now=NOW, days=365, device=HERS)
    assert since.confirmed and since.since == NOW - timedelta(days=9)
    assert not vouching.thin_since_confirmation(user, now=NOW, days=365, device=HIS).confirmed


def test_orders_without_a_browser_are_forgiven_by_no_confirmation(user_factory: Any) -> None:
    """Review, round fifty-nine: "" = "" made every order without a device cookie one browser."""
    user = user_factory("hanako")
    _buy(user, days_ago=20, device="")
    app = _buy(user, days_ago=10, device="")
    _confirmed(user, app, days_ago=9)
    assert _count(user, device="") == Decimal(200_000)


def test_rows_from_before_the_browser_was_kept_are_forgiven_by_any_browsers_confirmation(
    user_factory: Any,
) -> None:
    user = user_factory("hanako")
    _buy(user, days_ago=20, device="*")
    mine = _buy(user, days_ago=10, device=HERS)
    _confirmed(user, mine, days_ago=9)
    assert _count(user) == 0


@pytest.mark.parametrize(("method", "code"), [("staff", ""), ("passkey", "exposure_illiquid")])
def test_a_desk_release_or_a_hold_of_another_rule_forgives_nothing(
    user_factory: Any, method: str, code: str
) -> None:
    user = user_factory("hanako")
    mine = _buy(user, days_ago=10, device=HERS)
    _confirmed(user, mine, days_ago=9, method=method, code=code)
    assert _count(user) == Decimal(100_000)


def test_vouched_buys_and_buys_older_than_the_count_never_count(user_factory: Any) -> None:
    user = user_factory("hanako")
    _buy(user, days_ago=10, device=HERS, vouched=True)
    _buy(user, days_ago=400, device=HERS)
    assert _count(user) == 0


def test_unvouched_thin_buys_stay_in_the_ledger_until_the_count_is_past_them(user_factory: Any) -> None:
    """A day's total keeps no browser, so the roll-up leaves the count's rows in the ledger (review, round
    fifty-nine: without that, her confirmation would forgive his rolled-up buys), and rolls them up once
    they are older than the count reads."""
    user = user_factory("hanako")
    his = _buy(user, days_ago=10, device=HIS)
    old = _buy(user, days_ago=400, device=HIS)
    vouched = _buy(user, days_ago=10, device=HERS, vouched=True)
    liquid = GuardedOrder.objects.create(
        user=user, created_at=NOW - timedelta(days=10), side="buy", symbol="7203", quantity=1,
        amount=Decimal(5000), currency="JPY", status=GuardStatus.PLACED,
    )  # fmt: skip
    mine = _buy(user, days_ago=5, device=HERS)
    _confirmed(user, mine, days_ago=4)
    assert rollup.roll_up(user.pk, before=rollup.rollable_before(NOW)) == 3
    rolled = dict(GuardedOrder.objects.filter(user=user).values_list("pk", "rolled"))
    assert rolled == {his.pk: False, mine.pk: False, old.pk: True, vouched.pk: True, liquid.pk: True}
    assert _count(user) == Decimal(100_000)  # his, still counted after the roll-up


def test_a_policy_cannot_make_the_count_read_past_the_rows_the_ledger_keeps(user_factory: Any) -> None:
    """Red team, round sixty-one: with ``unvouched_days`` 730 the roll-up moved his year-old buys into day
    totals (which keep no browser) while the count still read them, and her confirmation from her own
    browser forgave them. A policy may set at most 365; the roll-up keeps the count's rows a day longer."""
    from authguard.orders.exposure_rules import MAX_UNVOUCHED_DAYS, Exposure

    with pytest.raises(ValueError, match="unvouched_days"):
        Exposure(unvouched_days=MAX_UNVOUCHED_DAYS + 1)
    assert Exposure(unvouched_days=MAX_UNVOUCHED_DAYS).options["unvouched_days"] == 365
    assert rollup.UNVOUCHED_KEPT_DAYS > MAX_UNVOUCHED_DAYS
    user = user_factory("hanako")
    his = _buy(user, days_ago=365, device=HIS)
    mine = _buy(user, days_ago=5, device=HERS)
    _confirmed(user, mine, days_ago=4)
    rollup.roll_up(user.pk, before=rollup.rollable_before(NOW))
    his.refresh_from_db()
    assert not his.rolled and _count(user) == Decimal(100_000)
