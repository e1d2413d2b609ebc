"""What follows the database's clock (issue 15, acceptance 2): a web node whose own clock is 2 h off writes
and compares the database's time, so it neither shortens nor stretches what other nodes compare.

The node is simulated in-process: time-machine moves this process's clock (``timezone.now()``,
``time.time()``) away from the database's time, and a :class:`authguard.clock.Skew` says by how much, as
:func:`authguard.clock.measure` finds on such a node (the real skewed node under libfaketime is
tests/test_faults_clock.py). Every case fails on the node's own clock: the row's time or the decision moves
by the 2 hours.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
import time_machine
from django.core import signing

from authguard import clock
from authguard.actions.errors import PayeeOnHold
from authguard.actions.payees import _payee_snapshot, payee_available_at, register_payee
from authguard.factors import inventory, lifecycle
from authguard.login.lockout import is_locked, record_failure
from authguard.models import (
    AccountLock,
    AccountSecurity,
    ActionKind,
    NetworkBlock,
    NetworkBlockKind,
    Notification,
    NotificationStatus,
)
from authguard.notifications.delivery import claim
from authguard.notifications.outbox import notify
from authguard.risk import networks
from authguard.risk.signals_network import NetworkLists
from authguard.sessions import dbsc
from authguard.sessions.device_binding import bound_session_id

from .actions_support import BANK
from .factories import ctx, history_of

pytestmark = pytest.mark.django_db

#: The database's time when each case starts.
T = datetime(2031, 4, 1, 9, 0, tzinfo=UTC)
AHEAD = timedelta(hours=2)
BEHIND = -AHEAD
ON_TIME = timedelta(0)

Node = Callable[[datetime, timedelta], AbstractContextManager[None]]


@pytest.fixture
def node(monkeypatch: pytest.MonkeyPatch) -> Node:
    """``with node(db_time, off):`` runs as a web node whose clock reads ``db_time + off`` while the
    database's reads ``db_time``, the offset measured (the measurement is restored after the test)."""
    # No real measurement on a new connection replaces the simulated one (PostgreSQL leg).
    monkeypatch.setattr(clock, "_attempted_at", time.monotonic())
    monkeypatch.setattr(clock, "_last", None)

    @contextmanager
    def on_node(db_time: datetime, off: timedelta) -> Iterator[None]:
        seconds = off.total_seconds()
        measured = clock.Skew(-seconds, 0.001, "default", time.monotonic()) if seconds else None
        with time_machine.travel(db_time + off, tick=False):
            monkeypatch.setattr(clock, "_last", measured)
            try:
                yield
            finally:
                monkeypatch.setattr(clock, "_last", None)

    return on_node


def test_the_node_simulation_is_what_a_measurement_finds(node: Node) -> None:
    with node(T, AHEAD):
        skew = clock.skew()
        assert skew is not None and skew.correction == -7200
        assert clock.now() == T and clock.timestamp() == T.timestamp()
    with node(T, ON_TIME):
        assert clock.skew() is None and clock.now() == T


def test_failures_on_a_node_behind_count_in_the_same_lockout_window(
    user_factory: Any, settings: Any, node: Node
) -> None:
    """A guesser whose attempts land alternately on a node 2 h behind and a true one: before, each true node
    saw the slow node's failure 2 h old (outside the 1-hour window) and started the count again, so the
    account never locked."""
    settings.AUTHGUARD_LOCKOUT_FAILURES = 4
    settings.AUTHGUARD_LOCKOUT_FAILURE_WINDOW_HOURS = 1
    alice = user_factory("alice")
    results = []
    for i, off in enumerate([BEHIND, ON_TIME, BEHIND, ON_TIME]):
        with node(T + timedelta(minutes=i), off):
            results.append(record_failure(alice, kind="password"))
    assert results == [False, False, False, True]
    lock = AccountLock.objects.get(user=alice)
    assert lock.failures == 4 and lock.locked_at == T + timedelta(minutes=3)
    # The last failure the slow node wrote was the database's time, not 2 h earlier.
    with node(T + timedelta(minutes=4), BEHIND):
        assert is_locked(alice)
        record_failure(alice, kind="password")
    assert AccountLock.objects.get(user=alice).last_failure_at == T + timedelta(minutes=4)


def test_a_cooling_off_started_on_a_node_behind_lasts_its_full_24_hours(alice: Any, node: Node) -> None:
    """Before: started "2 h ago", it ended 2 h early everywhere; a factor the thief added could confirm
    withdrawals after 22 h."""
    with node(T, BEHIND):
        until = lifecycle.start_cooling_off(alice, reason="factor_added")
    row = AccountSecurity.objects.get(user_id=alice.pk)
    assert until == row.cooling_off_until == T + timedelta(hours=24)
    assert row.cooling_off_started_at == T
    for off in (ON_TIME, BEHIND, AHEAD):  # 23 h later, whichever node asks: still cooling off
        with node(T + timedelta(hours=23), off):
            assert inventory.in_cooling_off(alice)
    with node(T + timedelta(hours=24, seconds=1), AHEAD):
        assert not inventory.in_cooling_off(alice)


def test_the_desks_rebind_window_granted_on_a_node_ahead_is_not_stretched(
    alice: Any, user_factory: Any, node: Node
) -> None:
    desk = user_factory("desk", is_staff=True)
    with node(T, AHEAD):
        until = lifecycle.grant_rebind(alice, by_staff=desk, hours=1).until
    assert (
        until == AccountSecurity.objects.get(user_id=alice.pk).rebind_granted_until == T + timedelta(hours=1)
    )


def test_a_payee_registered_on_a_node_behind_waits_its_whole_hold(
    alice: Any, settings: Any, node: Node
) -> None:
    """Before: registered "2 h ago", a thief's new payee received money 2 h early."""
    settings.AUTHGUARD_NEW_PAYEE_HOLD_HOURS = 72
    with node(T, BEHIND):
        payee = register_payee(user=alice, ref="bank-1", details=BANK, source="confirmed")
    payee.refresh_from_db()
    assert payee.registered_at == T and payee_available_at(payee) == T + timedelta(hours=72)
    withdrawal = {"payee": "bank-1"}
    with node(T + timedelta(hours=71), ON_TIME), pytest.raises(PayeeOnHold):
        _payee_snapshot(alice, ActionKind.WITHDRAWAL, withdrawal, now=clock.now())
    with node(T + timedelta(hours=72, seconds=1), BEHIND):
        assert _payee_snapshot(alice, ActionKind.WITHDRAWAL, withdrawal, now=clock.now()) is not None


def test_an_outbox_claim_by_a_worker_behind_is_not_stale_to_the_others(alice: Any, node: Node) -> None:
    """Before: the slow worker's claim was written 2 h old, past the 10-minute staleness, so a true-clock
    worker claimed the same row at once and the customer got the message twice."""
    with node(T, ON_TIME):
        row = notify(alice, "account_locked", context={"account": "alice"}, dedupe_key="lock:1")
    assert row is not None
    with node(T + timedelta(seconds=5), BEHIND):
        assert claim(row.pk)
    row.refresh_from_db()
    assert row.status == NotificationStatus.SENDING and row.claimed_at == T + timedelta(seconds=5)
    with node(T + timedelta(minutes=1), ON_TIME):
        assert not claim(row.pk)  # being sent by the other worker
    with node(T + timedelta(minutes=11), AHEAD):
        assert claim(row.pk)  # stale now: the other worker died
    assert Notification.objects.get(pk=row.pk).attempts == 2


def test_a_dbsc_bound_cookie_keeps_its_ten_minutes_across_nodes(settings: Any, node: Node) -> None:
    """The bound cookie (600 s, 30 s leeway) proves the device key. Before: one signed on a node 2 h behind
    was already expired on every other node (the legitimate browser looked like a stolen cookie), and a
    node 2 h behind accepted a copied cookie for 2 h after it expired."""
    settings.AUTHGUARD_DBSC = {"ENABLED": True}
    session = SimpleNamespace(session_id="dbsc-session-1")
    with node(T, BEHIND):
        from_slow_node = dbsc.bound_cookie_value(session=session)  # type: ignore[arg-type]
    with node(T + timedelta(seconds=60), ON_TIME):
        assert bound_session_id(from_slow_node) == "dbsc-session-1"
    with node(T, ON_TIME):
        copied = dbsc.bound_cookie_value(session=session)  # type: ignore[arg-type]
    with node(T + timedelta(seconds=600), BEHIND):
        assert bound_session_id(copied) == "dbsc-session-1"  # within its age and leeway
    with node(T + timedelta(seconds=700), BEHIND):
        assert bound_session_id(copied) is None  # expired on every node


def test_a_step_up_token_signed_and_checked_on_the_database_clock() -> None:
    """The signer of bound cookies and API step-up tokens: Django's format, authguard's clock."""
    signer = clock.TimestampSigner(salt="test")
    with time_machine.travel(T, tick=False):
        token = signer.sign_object({"u": "1"})
    with time_machine.travel(T + timedelta(seconds=299), tick=False):
        assert signer.unsign_object(token, max_age=300) == {"u": "1"}
        # Django's own signer reads the same format (a value signed before the change still loads).
        assert signing.loads(token, salt="test", max_age=300) == {"u": "1"}
    with time_machine.travel(T + timedelta(seconds=301), tick=False), pytest.raises(signing.SignatureExpired):
        signer.unsign_object(token, max_age=timedelta(seconds=300))


@pytest.mark.usefixtures("geoip")
@pytest.mark.parametrize("off", [AHEAD, BEHIND], ids=["ahead", "behind"])
def test_the_desks_network_block_applies_to_a_live_login_on_a_node_off(node: Node, off: timedelta) -> None:
    """Live blocks apply to a login whose time is within 5 minutes of the clock. Before: the login's time
    (the database's) was compared with the node's own ``time.time()``, 2 h apart, so a node off by more than
    5 minutes scored every login as a replay of the past: without the desk's blocks."""
    NetworkBlock.objects.create(
        network="198.51.100.0/24",
        kind=NetworkBlockKind.CIDR,
        until=T + timedelta(hours=1),
        reason="credential stuffing",
        created_at=T,
    )
    networks.blocks_changed()
    with node(T + timedelta(minutes=1), off):
        login = ctx(ip="198.51.100.9", device=None, at=clock.now())
        found = list(NetworkLists().evaluate(history_of().evidence(login)))
    assert [f.code for f in found] == ["denylisted_network"], found
