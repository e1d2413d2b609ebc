"""Analyst feedback: marks for backtests, and the optional, cautious confirmed-fraud network signal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.core.exceptions import PermissionDenied
from django.test import RequestFactory

from authguard.models import LoginEvent, Outcome
from authguard.risk import feedback
from authguard.risk.context import build_context
from authguard.risk.engine import SHADOW_DECISION, score_login
from authguard.risk.feedback import ConfirmedFraudNetworks, labels, mark
from authguard.risk.history import DatabaseHistory
from authguard.risk.policy import Thresholds, save_policy
from tests.conftest import IP_JP_PROXY, IP_SG_VPS, IP_TOKYO, UA_CHROME_WIN

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
THRESHOLDS = Thresholds(step_up=40, deny=100)


@pytest.fixture(autouse=True)
def _fresh_marks() -> Any:
    feedback.refresh()
    yield
    feedback.refresh()


@pytest.fixture
def analyst(user_factory: Any) -> Any:
    user = user_factory("analyst", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="change_loginevent"))
    return user


def _fraud(user: Any, ip: str, asn: int | None, when: datetime, verdict: str = "fraud") -> LoginEvent:
    return LoginEvent.objects.create(
        created_at=when,
        user=user,
        username=user.get_username(),
        password_ok=True,
        ip=ip,
        asn=asn,
        action="allow",
        outcome=Outcome.SIGNED_IN,
        feedback=verdict,
    )


def _assess(user: Any, ip: str, *, signal: ConfirmedFraudNetworks | None = None, learn: bool = False) -> Any:
    request = RequestFactory().post("/login/", REMOTE_ADDR=ip, HTTP_USER_AGENT=UA_CHROME_WIN)
    ctx = build_context(request, username=user.get_username(), user=user)
    history = DatabaseHistory()
    assessment, evidence = score_login(
        ctx, history, signals=[signal or ConfirmedFraudNetworks()], thresholds=THRESHOLDS
    )
    if learn and evidence is not None:
        history.learn(ctx, evidence)
    return assessment


def _codes(assessment: Any) -> dict[str, Any]:
    return {f.code: f for f in assessment.findings}


def test_fraud_on_two_other_accounts_raises_the_network(user_factory: Any, geoip: Any) -> None:
    victims = [user_factory(f"victim{i}") for i in range(2)]
    for i, victim in enumerate(victims):
        _fraud(victim, f"198.51.100.{20 + i}", 14061, NOW - timedelta(days=3))
    carol = user_factory("carol")
    with time_machine.travel(NOW, tick=False):
        found = _codes(_assess(carol, IP_SG_VPS))
    assert found["confirmed_fraud_network"].score == 25
    assert found["confirmed_fraud_network"].evidence == {"prefix": "198.51.100.0/24", "accounts": 2}


def test_one_account_is_not_a_pattern(user_factory: Any, geoip: Any) -> None:
    victim = user_factory("victim")
    _fraud(victim, "198.51.100.20", 14061, NOW - timedelta(days=3))
    _fraud(victim, "198.51.100.21", 14061, NOW - timedelta(days=2))
    with time_machine.travel(NOW, tick=False):
        assert _assess(user_factory("carol"), IP_SG_VPS).findings == ()


def test_no_label_leakage_in_a_backtest(user_factory: Any, geoip: Any) -> None:
    """Marks on events after (or just before) the scored login are not used: a backtest of the marked
    events themselves cannot catch them with their own labels."""
    victims = [user_factory(f"victim{i}") for i in range(2)]
    for victim in victims:
        _fraud(victim, "198.51.100.20", 14061, NOW + timedelta(minutes=1))
    for victim in victims:
        _fraud(victim, "198.51.100.21", 14061, NOW - timedelta(minutes=30))  # inside the embargo
    with time_machine.travel(NOW, tick=False):
        assert _assess(user_factory("carol"), IP_SG_VPS).findings == ()


def test_old_marks_expire(user_factory: Any, geoip: Any) -> None:
    for i in range(2):
        _fraud(user_factory(f"victim{i}"), "198.51.100.20", 14061, NOW - timedelta(days=91))
    with time_machine.travel(NOW, tick=False):
        assert _assess(user_factory("carol"), IP_SG_VPS).findings == ()


def test_a_network_the_account_uses_is_never_held_against_it(user_factory: Any, geoip: Any) -> None:
    for i in range(2):
        _fraud(user_factory(f"victim{i}"), "198.51.100.20", 14061, NOW - timedelta(days=3))
    carol = user_factory("carol")
    with time_machine.travel(NOW - timedelta(days=10), tick=False):
        _assess(carol, IP_SG_VPS, learn=True)  # carol's own earlier, good login from that network
    with time_machine.travel(NOW, tick=False):
        assert "confirmed_fraud_network" not in _codes(_assess(carol, IP_SG_VPS))


def test_asn_needs_several_accounts_and_fraud_to_dominate(user_factory: Any, geoip: Any) -> None:
    for i in range(3):  # SoftBank, over IPv6 (another prefix than the login's)
        _fraud(user_factory(f"victim{i}"), f"2001:db8::{i + 1}", 17676, NOW - timedelta(days=2))
    carol = user_factory("carol")
    with time_machine.travel(NOW, tick=False):
        found = _codes(_assess(carol, IP_JP_PROXY))
    assert found["confirmed_fraud_asn"].score == 15
    assert found["confirmed_fraud_asn"].evidence == {"asn": 17676, "accounts": 3, "fraud_share": 1.0}
    # A big consumer ISP: honest customers' logins marked legitimate outnumber the fraud.
    for i in range(4):
        _fraud(
            user_factory(f"honest{i}"), f"2001:db8::{i + 10}", 17676, NOW - timedelta(days=1), "legitimate"
        )
    feedback.refresh()
    with time_machine.travel(NOW, tick=False):
        assert _assess(carol, IP_JP_PROXY).findings == ()


def test_the_signal_as_a_shadow_rule_reports_only(
    user_factory: Any, geoip: Any, django_capture_on_commit_callbacks: Any
) -> None:
    for i in range(2):
        _fraud(user_factory(f"victim{i}"), "198.51.100.20", 14061, NOW - timedelta(days=3))
    shadow = [
        {
            "NAME": "authguard.feedback.ConfirmedFraudNetworks",
            "OPTIONS": {"prefix_score": 90, "max_score": 90},
        }
    ]
    with django_capture_on_commit_callbacks(execute=True):
        save_policy(shadow_signals=shadow, by=None, comment="trial of the feedback rule")
    carol = user_factory("carol")
    request = RequestFactory().post("/login/", REMOTE_ADDR=IP_SG_VPS, HTTP_USER_AGENT=UA_CHROME_WIN)
    with time_machine.travel(NOW, tick=False):
        ctx = build_context(request, username="carol", user=carol)
        assessment, _evidence = score_login(ctx, DatabaseHistory())
    found = _codes(assessment)
    assert found["confirmed_fraud_network"].score == 0
    assert found["confirmed_fraud_network"].evidence["would_score"] == 90
    assert found[SHADOW_DECISION].evidence["would_score"] >= 90
    assert "confirmed_fraud_network" not in assessment.reasons


def test_mark_needs_permission_and_feeds_labels(user_factory: Any, analyst: Any) -> None:
    alice = user_factory("alice")
    good = _fraud(alice, IP_TOKYO, 4713, NOW - timedelta(days=1), verdict="")
    bad = _fraud(alice, IP_SG_VPS, 14061, NOW, verdict="")
    with pytest.raises(PermissionDenied):
        mark(bad, "fraud", by=user_factory("clerk", is_staff=True))
    with pytest.raises(ValueError, match="unknown verdict"):
        mark(bad, "maybe", by=analyst)
    mark(bad, "fraud", by=analyst)
    mark(good, "legitimate", by=analyst)
    assert labels() == {good.pk: "legitimate", bad.pk: "fraud"}
    assert labels(since=NOW) == {bad.pk: "fraud"}
    mark(good, "", by=analyst)
    assert labels() == {bad.pk: "fraud"}
    assert LoginEvent.objects.get(pk=bad.pk).feedback == "fraud"


def test_marks_are_read_once_per_refresh_period(
    user_factory: Any, geoip: Any, django_assert_num_queries: Any
) -> None:
    carol = user_factory("carol")
    with time_machine.travel(NOW, tick=False):
        _assess(carol, IP_SG_VPS)
        request = RequestFactory().post("/login/", REMOTE_ADDR=IP_SG_VPS, HTTP_USER_AGENT=UA_CHROME_WIN)
        ctx = build_context(request, username="carol", user=carol)
        signal = ConfirmedFraudNetworks()
        evidence = DatabaseHistory().evidence(ctx)
        with django_assert_num_queries(0):
            for _ in range(10):
                list(signal.evaluate(evidence))
