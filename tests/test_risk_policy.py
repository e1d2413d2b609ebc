"""Acceptance 3: run-time policy changes take effect without a restart, are audited, and invalid values
are refused with a message. Shadow signals report without deciding; scoring does not query the policy."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.test import RequestFactory

from authguard.choices import Action
from authguard.models import PolicyVersion
from authguard.risk import policy
from authguard.risk.context import build_context
from authguard.risk.engine import SHADOW_DECISION, score_login
from authguard.risk.findings import RiskSignal
from authguard.risk.history import DatabaseHistory
from authguard.risk.policy import VERSION_CACHE_KEY, InvalidPolicy, build_policy, current_policy, save_policy
from authguard.risk.policy_validation import policy_problem
from tests.conftest import IP_TOKYO, UA_CHROME_WIN, UA_CURL

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]  # IP_TOKYO is in Tokyo

WITHOUT_AUTOMATION = [
    {"NAME": "authguard.risk_signals.DeviceCookie", "OPTIONS": {}},
    {"NAME": "authguard.risk_signals.AccountContext", "OPTIONS": {}},
]


@pytest.fixture
def on_commit(django_capture_on_commit_callbacks: Any) -> Any:
    return django_capture_on_commit_callbacks


def _score(user: Any, *, ua: str = UA_CHROME_WIN) -> Any:
    request = RequestFactory().post("/login/", REMOTE_ADDR=IP_TOKYO, HTTP_USER_AGENT=ua)
    ctx = build_context(request, username=user.get_username(), user=user)
    assessment, _evidence = score_login(ctx, DatabaseHistory())
    return assessment


def test_saved_thresholds_take_effect_at_the_next_login(
    user_factory: Any, on_commit: Any, settings: Any
) -> None:
    settings.AUTHGUARD_RISK_SIGNALS = WITHOUT_AUTOMATION
    admin = user_factory("root", is_staff=True, is_superuser=True)
    alice = user_factory("alice")
    before = _score(alice)
    assert before.score == 20 and before.action == Action.ALLOW  # no history yet: +20, below 40
    with on_commit(execute=True):
        version = save_policy(thresholds={"step_up": 15}, by=admin, comment="tighten during the campaign")
    after = _score(alice)
    assert after.score == 20 and after.action == Action.STEP_UP
    assert current_policy().version == version.pk
    with on_commit(execute=True):
        save_policy(thresholds={"step_up": 30}, by=admin, comment="campaign over")
    assert _score(alice).action == Action.ALLOW


def test_a_change_saved_by_another_process_is_seen_through_the_cache(
    user_factory: Any, on_commit: Any
) -> None:
    admin = user_factory("root", is_staff=True, is_superuser=True)
    with on_commit(execute=True):
        first = save_policy(thresholds={"step_up": 35}, by=admin, comment="v1")
    assert current_policy().thresholds.step_up == 35  # memoised in this process now
    # Another process saves: its row lands in the shared database and its version number in the shared
    # cache; this process gets no signal of any kind (bulk_create bypasses save()).
    (other,) = PolicyVersion.objects.bulk_create([PolicyVersion(thresholds={"step_up": 25}, comment="v2")])
    other_pk = other.pk or PolicyVersion.objects.order_by("-pk").values_list("pk", flat=True).first()
    cache.set(VERSION_CACHE_KEY, other_pk)
    assert current_policy().thresholds.step_up == 25
    assert current_policy().version == other_pk != first.pk


def test_policy_lookup_costs_no_query_once_known(user_factory: Any, django_assert_num_queries: Any) -> None:
    current_policy()  # first call of the process (or after an eviction): one query for the version
    with django_assert_num_queries(0):
        for _ in range(20):
            current_policy()


def test_scoring_a_login_has_the_same_query_count_as_without_a_policy(
    user_factory: Any, on_commit: Any, django_assert_num_queries: Any
) -> None:
    alice = user_factory("alice")
    _score(alice)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as baseline:
        _score(alice)
    with on_commit(execute=True):
        save_policy(thresholds={"step_up": 30}, by=None, comment="")
    _score(alice)  # the new version is built once
    with django_assert_num_queries(len(baseline.captured_queries)):
        _score(alice)


def test_every_save_is_a_new_audited_version(user_factory: Any, on_commit: Any) -> None:
    admin = user_factory("root", is_staff=True, is_superuser=True)
    with on_commit(execute=True):
        v1 = save_policy(thresholds={"step_up": 35}, by=admin, comment="one")
        v2 = save_policy(
            signal_options={"authguard.risk_signals.DeviceCookie": {"new_device": 40}},
            by=admin,
            comment="two",
        )
    assert list(PolicyVersion.objects.order_by("pk").values_list("comment", "created_by__username")) == [
        ("one", "root"),
        ("two", "root"),
    ]
    assert v1.created_at <= v2.created_at
    v1.comment = "rewritten history"
    with pytest.raises(ValueError, match="never edited"):
        v1.save()
    assert PolicyVersion.objects.get(pk=v1.pk).comment == "one"
    # v2 is in force: its own thresholds are the settings' (each version is complete, not a diff)
    assert current_policy().thresholds.step_up == 40


@pytest.mark.parametrize(
    ("parts", "message"),
    [
        ({"thresholds": {"step_up": 90, "deny": 50}}, "'step_up' must not exceed 'deny'"),
        ({"thresholds": {"step_up": "40"}}, "'step_up' must be an integer"),
        ({"thresholds": {"step_up": 140}}, "between 0 and 100"),
        ({"thresholds": {"stepup": 40}}, "unknown keys"),
        ({"thresholds": [40, 100]}, "must be a dict"),
        ({"signal_options": {"authguard.risk_signals.Nope": {}}}, "not a configured signal"),
        ({"signal_options": {"authguard.risk_signals.DeviceCookie": {"new_devcie": 30}}}, "unknown options"),
        (
            {"signal_options": {"authguard.risk_signals.DeviceCookie": {"new_device": "lots"}}},
            "must be a number",
        ),
        ({"signal_options": {"authguard.risk_signals.DeviceCookie": 5}}, "must be a dict"),
        # SECURITY: a string "false" must not switch a guard (it would read as true, or off) by accident.
        (
            {
                "signal_options": {
                    "authguard.risk_signals.StatisticalModel": {"new_device_can_lower": "false"}
                }
            },
            "must be true or false",
        ),
        (
            {"signal_options": {"authguard.risk_signals.StatisticalModel": {"user_agent_can_lower": 0}}},
            "must be true or false",
        ),
        ({"shadow_signals": [{"NAME": "authguard.nowhere.Signal"}]}, "cannot import"),
        ({"shadow_signals": {"NAME": "x"}}, "must be a list"),
    ],
)
def test_invalid_values_are_refused_with_a_message(
    user_factory: Any, parts: dict[str, Any], message: str
) -> None:
    assert message in (policy_problem(**parts) or "")
    with pytest.raises(InvalidPolicy, match=message.replace("(", r"\(")):
        save_policy(by=None, comment="bad", **parts)
    assert not PolicyVersion.objects.exists()
    row = PolicyVersion(comment="bad", **parts)
    with pytest.raises(ValidationError) as excinfo:
        row.full_clean()
    assert message in str(excinfo.value)


def test_signal_options_override_the_settings(user_factory: Any, on_commit: Any, settings: Any) -> None:
    settings.AUTHGUARD_RISK_SIGNALS = WITHOUT_AUTOMATION
    alice = user_factory("alice")
    with on_commit(execute=True):
        save_policy(
            signal_options={"authguard.risk_signals.AccountContext": {"no_history": 45}}, by=None, comment=""
        )
    assessment = _score(alice)
    assert assessment.score == 45 and assessment.action == Action.STEP_UP


def test_shadow_signal_reports_but_never_decides(user_factory: Any, on_commit: Any, settings: Any) -> None:
    settings.AUTHGUARD_RISK_SIGNALS = WITHOUT_AUTOMATION
    alice = user_factory("alice")
    shadow = [{"NAME": "authguard.risk_signals.AutomationClient", "OPTIONS": {"score": 90}}]
    with on_commit(execute=True):
        save_policy(shadow_signals=shadow, by=None, comment="try the automation rule report-only")
    assessment = _score(alice, ua=UA_CURL)
    assert assessment.score == 20 and assessment.action == Action.ALLOW
    assert "automation_client" not in assessment.reasons
    by_code = {f.code: f for f in assessment.findings}
    found = by_code["automation_client"]
    assert found.score == 0 and found.evidence["shadow"] is True and found.evidence["would_score"] == 90
    summary = by_code[SHADOW_DECISION].evidence
    assert summary == {"shadow": True, "would_score": 100, "would_action": "deny"}
    # A browser the shadow rule does not match: nothing is recorded for it.
    assert SHADOW_DECISION not in {f.code for f in _score(alice).findings}


def test_a_failing_shadow_signal_changes_nothing(user_factory: Any, on_commit: Any) -> None:
    alice = user_factory("alice")
    baseline = _score(alice)
    with on_commit(execute=True):
        save_policy(shadow_signals=[{"NAME": "tests.test_risk_policy.Broken"}], by=None, comment="")
    assessment = _score(alice)
    assert (assessment.score, assessment.action, assessment.reasons) == (
        baseline.score,
        baseline.action,
        baseline.reasons,
    )


def test_replay_path_ignores_the_run_time_policy(user_factory: Any, on_commit: Any) -> None:
    """Explicit signals and thresholds (the replay, a backtest) are used as given."""
    with on_commit(execute=True):
        save_policy(thresholds={"step_up": 5}, by=None, comment="")
    proposed = build_policy(thresholds={"step_up": 60})
    assert proposed.version is None and proposed.thresholds.step_up == 60
    assert current_policy().thresholds.step_up == 5


def test_cache_down_falls_back_to_the_database(user_factory: Any, on_commit: Any, settings: Any) -> None:
    with on_commit(execute=True):
        save_policy(thresholds={"step_up": 33}, by=None, comment="")
    policy._clear_memo()
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:9/0",
        }
    }
    assert current_policy().thresholds.step_up == 33


def test_saving_inside_a_rolled_back_transaction_changes_nothing(user_factory: Any, on_commit: Any) -> None:
    with on_commit(execute=True), pytest.raises(RuntimeError), transaction.atomic():
        save_policy(thresholds={"step_up": 5}, by=None, comment="")
        raise RuntimeError
    assert current_policy().version == 0 and current_policy().thresholds.step_up == 40


class Broken(RiskSignal):
    """A shadow signal that crashes (and takes no options)."""

    def evaluate(self, evidence: Any) -> list[Any]:
        raise RuntimeError("boom")


def test_a_version_made_invalid_by_a_settings_change_falls_back_to_the_settings(
    user_factory: Any, on_commit: Any, settings: Any
) -> None:
    with on_commit(execute=True):
        save_policy(
            thresholds={"step_up": 10},
            signal_options={"authguard.risk_signals.UnusualHour": {"score": 5}},
            by=None,
            comment="",
        )
    settings.AUTHGUARD_RISK_SIGNALS = WITHOUT_AUTOMATION  # UnusualHour is no longer configured
    policy_now = current_policy()
    assert policy_now.thresholds.step_up == 40 and policy_now.version == 0
    assert [type(s).__name__ for s in policy_now.signals] == ["DeviceCookie", "AccountContext"]


def test_a_saved_policy_decides_the_next_real_login(
    user_factory: Any, on_commit: Any, settings: Any, browser_at: Any, geoip: Any
) -> None:
    """Through the real login form: the same sign-in is allowed before the change and not after it."""
    from authguard.models import LoginEvent

    settings.AUTHGUARD_RISK_SIGNALS = WITHOUT_AUTOMATION
    user_factory("alice")
    user_factory("bob")
    assert browser_at(IP_TOKYO, UA_CHROME_WIN).sign_in("alice").url == "/"
    with on_commit(execute=True):
        save_policy(thresholds={"step_up": 15}, by=None, comment="no new sign-ins without a second factor")
    response = browser_at(IP_TOKYO, UA_CHROME_WIN).sign_in("bob")
    assert response.url != "/"
    assert list(LoginEvent.objects.order_by("pk").values_list("username", "score", "action")) == [
        ("alice", 20, "allow"),
        ("bob", 20, "step_up"),
    ]
