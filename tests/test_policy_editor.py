"""The policy editor (issue 16): forms per signal in words, the changes against the policy in force before
anything is asked for, the backtest beside them, worded errors, and saving only through the staff approvals.

Staff sessions are passkey-verified (tests/staff_fixtures.py); the editor's POSTs are built from the page's
own form, as a browser sends it.
"""

from __future__ import annotations

import re
from html import unescape
from typing import Any

import pytest
import time_machine
from django import forms
from django.contrib.auth import get_user_model
from django.contrib.messages import get_messages

from authguard.console.policy_forms import REVIEWED
from authguard.models import Feedback, PolicyVersion, StaffApproval
from authguard.risk import backtest
from authguard.risk.findings import RiskSignal
from authguard.risk.policy import build_policy, current_policy, save_policy
from authguard.risk.policy_validation import policy_problem

from .console_data import NOW, build_history, mark, staff_client, staff_user
from .staff_fixtures import approve_pending

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]

ADD = "/admin/authguard/policyversion/add/"
PERMS = ("authguard.view_loginevent", "authguard.add_policyversion", "authguard.view_policyversion")
UNUSUAL_HOUR = "authguard.risk_signals.UnusualHour"
AUTOMATION = "authguard.risk_signals.AutomationClient"
NETWORK_HOP = "authguard.risk_signals.NetworkHop"


@pytest.fixture
def analyst() -> Any:
    return staff_client(staff_user("tuner", perms=PERMS))


def page_values(page: Any) -> dict[str, Any]:
    """The editor's form as a browser would post it, unchanged (checkboxes ticked or left out)."""
    form = page.context["adminform"].form
    data: dict[str, Any] = {}
    for name, field in form.fields.items():
        value = form[name].value()  # as the widget shows it
        if isinstance(field, forms.BooleanField):
            if value:
                data[name] = "on"
            continue
        data[name] = "" if value is None else str(value)
    return data


def review(client: Any, **changes: Any) -> tuple[Any, dict[str, Any]]:
    """Open the editor, change some fields, press Review; returns the page and the posted values."""
    data = page_values(client.get(ADD))
    data.update({"comment": "tighten after the November campaign", **changes})
    page = client.post(ADD, {**data, "_review": "1"})
    assert page.status_code == 200
    return page, data


def confirm(client: Any, page: Any, data: dict[str, Any]) -> Any:
    return client.post(ADD, {**data, REVIEWED: page.context["reviewed"], "_confirm": "1"})


def nothing_asked_for() -> bool:
    return not StaffApproval.objects.exists() and not PolicyVersion.objects.exists()


# -- the page ----------------------------------------------------------------------------------------------


def test_one_fieldset_per_configured_signal_in_words_with_typed_fields(analyst: Any, settings: Any) -> None:
    from authguard.conf import DEFAULT_RISK_SIGNALS

    settings.AUTHGUARD_RISK_SIGNALS = [
        {**entry, "OPTIONS": {"score": 12}} if entry["NAME"] == UNUSUAL_HOUR else entry
        for entry in DEFAULT_RISK_SIGNALS
    ]
    page = analyst.get(ADD)
    assert page.status_code == 200
    html = page.content.decode()
    fieldsets = re.findall(r'<fieldset class="pe-card pe-signal" id="signal-(\w+)"', html)
    assert fieldsets == [entry["NAME"].rsplit(".", 1)[-1] for entry in DEFAULT_RISK_SIGNALS]
    # Human names and plain sentences; the dotted paths are internal keys only, and no code markup leaks.
    for words in ("Unusual hour", "Impossible travel", "Failed sign-ins", "Flags a sign-in at an hour"):
        assert words in html
    assert "authguard.risk.signals" not in html and "``" not in html and ":class:" not in html
    # Each option a typed field with its default; a report-only box per signal.
    assert re.search(r'<input type="number" name="UnusualHour__score" value="12" step="1"', html)
    assert re.search(r'<input type="number" name="UnusualHour__max_share" value="0.02" step="any"', html)
    assert re.search(
        r'<input type="checkbox" name="StatisticalModel__browser_update_neutral"[^>]* checked', html
    )
    assert re.search(
        r'<input type="text" name="StatisticalModel__ip_weights" value="0.35, 0.25, 0.3, 0.1"', html
    )
    assert re.search(r'<input type="text" name="AccountContext__home_countries" value="JP"', html)
    assert len(re.findall(r'<input type="checkbox" name="\w+__shadow"', html)) == len(DEFAULT_RISK_SIGNALS)
    row = re.search(r'data-option="score">.*?</tr>', html[html.index('id="signal-UnusualHour"') :], re.S)
    assert row and "default 12" in row.group(0)
    # A request through the approvals, never "Save and add another" or "Save and continue".
    assert "_addanother" not in html and "_continue" not in html and 'name="_save"' not in html
    assert "Save and add another" not in html and 'id="policy-review"' in html


class LateNightTrader(RiskSignal):
    """A sign-in after ``start_hour`` (see :class:`~authguard.risk.findings.RiskSignal`). Another package's
    signal.

    The editor knows nothing of it but its class, docstring and ``defaults``.
    """

    defaults = {"start_hour": 22, "score": 5, "weekends": True}

    def evaluate(self, evidence: Any) -> list[Any]:
        return []


def test_a_signal_of_another_package_is_named_from_its_class_without_markup(
    analyst: Any, settings: Any
) -> None:
    settings.AUTHGUARD_RISK_SIGNALS = [{"NAME": "tests.test_policy_editor.LateNightTrader", "OPTIONS": {}}]
    page = analyst.get(ADD)
    html = page.content.decode()
    assert "Late night trader" in html and "A sign-in after start_hour (see RiskSignal)." in html
    assert "``" not in html and ":class:" not in html and "tests.test_policy_editor" not in html
    data = {**page_values(page), "comment": "try", "LateNightTrader__start_hour": "late", "_review": "1"}
    answer = analyst.post(ADD, data)
    assert "Late night trader: 'Start hour' must be a whole number" in unescape(answer.content.decode())
    data["LateNightTrader__start_hour"] = "23"
    answer = analyst.post(ADD, data)
    assert answer.context["changes"] == [
        {"what": "Late night trader", "option": "Start hour", "old": "22", "new": "23"}
    ]


# -- review, confirmation, approvals -----------------------------------------------------------------------


def test_a_threshold_change_is_reviewed_then_waits_for_a_second_approval(
    analyst: Any, on_commit: Any
) -> None:
    page, data = review(analyst, step_up="30")
    assert page.context["changes"] == [
        {"what": "Thresholds", "option": "Step up at a score of", "old": "40", "new": "30"}
    ]
    html = page.content.decode()
    assert 'id="policy-diff"' in html and "Ask for this policy" in html
    assert nothing_asked_for()  # reviewing saves nothing

    answer = confirm(analyst, page, data)
    approval = StaffApproval.objects.get()
    assert answer.status_code == 302 and answer["Location"].endswith(f"/staffapproval/{approval.pk}/change/")
    assert approval.status == "pending" and approval.action == "change_policy"
    assert {k: approval.payload[k] for k in ("thresholds", "signal_options", "shadow_signals")} == {
        "thresholds": {"step_up": 30, "deny": 100},
        "signal_options": {},
        "shadow_signals": [],
    }
    assert not PolicyVersion.objects.exists() and current_policy().thresholds.step_up == 40
    with on_commit(execute=True):
        approve_pending(staff_client(staff_user("reviewer", perms=PERMS)))
    version = PolicyVersion.objects.get()
    assert version.thresholds == {"step_up": 30, "deny": 100} and version.approved_by.username == "reviewer"
    assert current_policy().thresholds.step_up == 30


def test_without_four_eyes_the_confirmation_puts_it_in_force(
    analyst: Any, settings: Any, on_commit: Any
) -> None:
    settings.AUTHGUARD_FOUR_EYES = {"ACTIONS": []}
    page, data = review(analyst, step_up="35")
    assert "Put in force" in page.content.decode() and "Ask for this policy" not in page.content.decode()
    with on_commit(execute=True):
        answer = confirm(analyst, page, data)
    assert answer.status_code == 302 and answer["Location"].endswith("/policyversion/")
    version = PolicyVersion.objects.get()
    assert version.thresholds == {"step_up": 35, "deny": 100} and version.approved_by is None
    assert version.created_by.username == "tuner" and current_policy().version == version.pk


def test_values_changed_after_the_review_are_reviewed_again_not_saved(analyst: Any, settings: Any) -> None:
    settings.AUTHGUARD_FOUR_EYES = {"ACTIONS": []}
    page, data = review(analyst, step_up="30")
    answer = analyst.post(ADD, {**data, "step_up": "10", REVIEWED: page.context["reviewed"], "_confirm": "1"})
    assert answer.status_code == 200 and nothing_asked_for()
    assert any("changed since you reviewed" in str(m) for m in get_messages(answer.wsgi_request))
    assert answer.context["changes"][0]["new"] == "10"  # the new values are shown for review


def test_the_changes_list_only_what_changes_and_report_only_keeps_the_values_in_force(
    analyst: Any, on_commit: Any, settings: Any
) -> None:
    settings.AUTHGUARD_FOUR_EYES = {"ACTIONS": []}
    with on_commit(execute=True):
        save_policy(by=None, comment="earlier", signal_options={UNUSUAL_HOUR: {"score": 15}})
    opened = analyst.get(ADD)
    assert "in force 15" in opened.content.decode()
    page, data = review(
        analyst, AutomationClient__score="50", NetworkHop__shadow="on", NetworkHop__minutes="20"
    )
    # In the order of the configured signals.
    assert page.context["changes"] == [
        {"what": "Network hop", "option": "Shadow trial", "old": "off", "new": "on"},
        {
            "what": "Network hop, shadow trial",
            "option": "Minutes after the last sign-in",
            "old": "10",
            "new": "20",
        },
        {"what": "Automated clients", "option": "Points for an automated client", "old": "35", "new": "50"},
    ]
    with on_commit(execute=True):
        assert confirm(analyst, page, data).status_code == 302
    version = PolicyVersion.objects.order_by("-pk").first()
    # The earlier change is kept; the report-only signal decides with its values in force (the defaults).
    assert version.signal_options == {UNUSUAL_HOUR: {"score": 15}, AUTOMATION: {"score": 50}}
    assert version.shadow_signals == [{"NAME": NETWORK_HOP, "OPTIONS": {"minutes": 20}}]
    policy = current_policy()
    hop = next(s for s in policy.signals if type(s).__name__ == "NetworkHop")
    assert hop.options["minutes"] == 10 and policy.shadow_signals[0].options["minutes"] == 20

    # The trial shows as ticked; unticking it makes its values decide (and ends the trial).
    page, data = review(analyst, NetworkHop__shadow="")
    assert page.context["changes"] == [
        {"what": "Network hop", "option": "Minutes after the last sign-in", "old": "10", "new": "20"},
        {"what": "Network hop", "option": "Shadow trial", "old": "on", "new": "off"},
    ]


def test_a_report_only_trial_is_scored_in_place_of_the_values_in_force(
    user_factory: Any, on_commit: Any
) -> None:
    from django.test import RequestFactory

    from authguard.risk.context import build_context
    from authguard.risk.engine import SHADOW_DECISION, score_login
    from authguard.risk.history import DatabaseHistory

    from .conftest import IP_TOKYO, UA_CHROME_WIN, UA_CURL

    alice = user_factory("alice")

    def score(ua: str) -> Any:
        request = RequestFactory().post("/login/", REMOTE_ADDR=IP_TOKYO, HTTP_USER_AGENT=ua)
        return score_login(build_context(request, username="alice", user=alice), DatabaseHistory())[0]

    before = score(UA_CURL)
    assert "automation_client" in {f.code for f in before.findings} and before.score < 90
    with on_commit(execute=True):  # the automation rule in force gives 35; try 45
        save_policy(by=None, comment="trial", shadow_signals=[{"NAME": AUTOMATION, "OPTIONS": {"score": 45}}])
    after = score(UA_CURL)
    assert (after.score, after.action) == (before.score, before.action)  # report-only: decides nothing
    summary = {f.code: f for f in after.findings}[SHADOW_DECISION].evidence
    assert summary["would_score"] == before.score + 10  # in place of the 35, not on top of them
    assert SHADOW_DECISION not in {f.code for f in score(UA_CHROME_WIN).findings}  # neither version fires


def test_nothing_to_ask_for_when_nothing_changes(analyst: Any) -> None:
    page, _data = review(analyst)
    assert page.context["changes"] == [] and 'id="policy-no-changes"' in page.content.decode()
    assert 'name="_confirm"' not in page.content.decode() and nothing_asked_for()


# -- errors ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"UnusualHour__score": "lots"},
            "Unusual hour: 'Points for an unusual hour' must be a whole number from -100 to 100",
        ),
        (
            {"UnusualHour__max_share": "1.5"},
            "Unusual hour: 'Share of sign-ins below which an hour is unusual' must be a number from 0 to 1",
        ),
        (
            {"UnusualHour__min_history": ""},
            "Unusual hour: 'Sign-ins before hours are compared' must be a whole number of at least 0",
        ),
        (
            {"StatisticalModel__ip_weights": "0.5, x"},
            "Familiar network and browser: 'Weights of address, /24 network, provider and country' must be a "
            "list of numbers",
        ),
        (
            {"StatisticalModel__ip_weights": "0.5, 0.5"},
            "Familiar network and browser: the options are refused (ip_weights needs 4",
        ),
        ({"step_up": "90", "deny": "50"}, "must not exceed"),
        (
            {"signal_options": '{"authguard.risk_signals.Velocity": {"bogus": 1}}'},
            "Failed sign-ins: unknown options ['bogus']",
        ),
        ({"comment": ""}, "This field is required"),
    ],
)
def test_invalid_values_give_a_worded_error_and_save_nothing(
    analyst: Any, changes: dict[str, str], message: str
) -> None:
    data = page_values(analyst.get(ADD))
    data.update({"comment": "try", **changes})
    for button in ({"_review": "1"}, {"_backtest": "1"}, {"_confirm": "1", REVIEWED: "x"}):
        page = analyst.post(ADD, {**data, **button})
        assert page.status_code == 200
        html = unescape(page.content.decode())
        assert message in html, button
        assert not re.search(r"entry \d", html)
    assert nothing_asked_for()


def test_policy_problem_names_the_signal_and_option_in_words() -> None:
    assert policy_problem(signal_options={UNUSUAL_HOUR: {"score": "x"}}) == (
        "Unusual hour: Points for an unusual hour (score) must be a number"
    )
    assert policy_problem(shadow_signals=[{"NAME": AUTOMATION, "OPTIONS": {"scor": 1}}]) == (
        "Automated clients (shadow): unknown options ['scor']"
    )
    problem = policy_problem(shadow_signals=[{"NAME": AUTOMATION}, {"NAME": "nowhere.Signal"}]) or ""
    assert "cannot import" in problem and "'nowhere.Signal'" in problem and "entry" not in problem


@pytest.mark.parametrize(
    "changes",
    [
        {"step_up": "abc"},
        {"UnusualHour__score": "1e999"},
        {"UnusualHour__max_share": "nan"},
        {"UnusualHour__score": "9" * 5000},
        {"StatisticalModel__ip_weights": "nan, inf, 0, 0"},
        {"AnonymousNetwork__extra_hosting_asns": "-5"},
        {"signal_options": "[1]"},
        {"signal_options": '{"authguard.risk_signals.Velocity": 5}'},
        {"signal_options": '{"nowhere": {"a": 1}}'},
        {"shadow_signals": '{"NAME": "x"}'},
        {"shadow_signals": '[{"NAME": 5}]'},
        {"shadow_signals": '["x"]'},
        {"shadow_signals": '[{"NAME": "authguard.risk_signals.Velocity", "OPTIONS": [1]}]'},
        {"shadow_signals": '[{"NAME": "os.system"}]'},
        {"backtest_days": "0"},
        {"comment": "x" * 600},
    ],
)
def test_malformed_posts_answer_with_form_errors_never_500(analyst: Any, changes: dict[str, Any]) -> None:
    data = page_values(analyst.get(ADD))
    data.update({"comment": "try", **changes})
    for button in ({"_review": "1"}, {"_backtest": "1"}, {"_confirm": "1", REVIEWED: "x"}, {}):
        page = analyst.post(ADD, {**data, **button})
        assert page.status_code == 200, (button, page.status_code)
        assert 'class="errornote"' in page.content.decode() or "errorlist" in page.content.decode()
    assert nothing_asked_for()


# -- the backtest ------------------------------------------------------------------------------------------


def test_the_backtest_preview_shows_beside_the_changes_and_saves_nothing(
    analyst: Any, user_factory: Any
) -> None:
    user_factory("alice")
    built = build_history({"alice": "correct horse battery"})
    mark(built.attacks, Feedback.FRAUD)
    with time_machine.travel(NOW, tick=False):
        # Signed in again at the data's time: a session signed in "later" than the clock reads is ended.
        analyst = staff_client(get_user_model().objects.get(username="tuner"))
        data = page_values(analyst.get(ADD))
        data.update({"comment": "tighten", "step_up": "5"})
        page = analyst.post(ADD, {**data, "_backtest": "1"})
        expected = backtest.run_backtest(build_policy(thresholds={"step_up": 5, "deny": 100}))
    assert page.status_code == 200 and nothing_asked_for()
    result = page.context["backtest"]
    assert result == expected and result.events > 0
    assert result.proposed.friction > result.current.friction and result.proposed.catches == 3
    html = page.content.decode()
    preview = html[html.index('class="pe-preview') : html.index('id="policy-thresholds"')]
    assert 'id="policy-diff"' in preview and 'id="backtest-result"' in preview
    assert f'data-metric="friction-proposed">{result.proposed.friction}<' in preview
    assert page.context["changes"] == [
        {"what": "Thresholds", "option": "Step up at a score of", "old": "40", "new": "5"}
    ]
    # The form comes back filled in with the proposal, ready to confirm.
    assert page.context["adminform"].form.initial["step_up"] == 5 and 'name="_confirm"' in html


def test_the_backtest_needs_the_right_to_see_login_events() -> None:
    client = staff_client(staff_user("tuner", perms=PERMS[1:]))  # no view_loginevent
    data = page_values(client.get(ADD))
    page = client.post(ADD, {**data, "comment": "tighten", "step_up": "5", "_backtest": "1"})
    assert page.status_code == 200 and "backtest" not in page.context and nothing_asked_for()
    assert "permission to view login events" in page.content.decode()
    assert page.context["changes"][0]["new"] == "5"  # the review itself is allowed


@pytest.fixture
def on_commit(django_capture_on_commit_callbacks: Any) -> Any:
    return django_capture_on_commit_callbacks
