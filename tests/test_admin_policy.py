"""The policy editor: validated, versioned (who, when, why), in force at once, never edited."""

from __future__ import annotations

import json

import pytest
import time_machine
from django.contrib.admin.models import LogEntry

from authguard.models import Feedback, PolicyVersion
from authguard.risk import backtest
from authguard.risk.policy import current_policy

from .console_data import NOW, build_history, mark, staff_client, staff_user
from .staff_fixtures import approve_pending

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]

ADD = "/admin/authguard/policyversion/add/"


EDITOR_PERMS = ("authguard.view_loginevent", "authguard.add_policyversion", "authguard.view_policyversion")


@pytest.fixture
def editor():
    return staff_user("tuner", perms=EDITOR_PERMS)


def second_editor():
    """The second staff member whose approval puts a new version in force (four eyes, battery case 60)."""
    return staff_client(staff_user("reviewer", perms=EDITOR_PERMS))


def form(**overrides):
    data = {
        "comment": "tighten after the November campaign",
        "step_up": 30,
        "deny": 95,
        "signal_options": "{}",
        "shadow_signals": "[]",
        "backtest_days": 30,
    }
    data.update(overrides)
    return data


def test_the_add_page_starts_from_the_policy_in_force(editor):
    page = staff_client(editor).get(ADD)
    assert page.status_code == 200
    initial = page.context["adminform"].form.initial
    assert (initial["step_up"], initial["deny"]) == (40, 100)
    html = page.content.decode()
    # Issue 16: one fieldset per configured signal, named in words; the dotted path is only an internal key
    # (it used to be shown in a "signal reference" table).
    assert 'id="signal-ImpossibleTravel"' in html and "Impossible travel" in html
    assert "authguard.risk.signals" not in html


def test_saving_creates_a_version_in_force_at_once_and_audited(editor, django_capture_on_commit_callbacks):
    client = staff_client(editor)
    response = client.post(ADD, form(signal_options=json.dumps({"authguard.risk_signals.Velocity": {}})))
    assert response.status_code == 302
    # Four eyes: nothing is in force before a second staff member approves.
    assert not PolicyVersion.objects.exists() and current_policy().version == 0
    reviewer = second_editor()
    with django_capture_on_commit_callbacks(execute=True):  # the new version is published after commit
        approve_pending(reviewer)
    version = PolicyVersion.objects.get()
    assert version.created_by == editor and version.comment.startswith("tighten")
    assert version.approved_by.username == "reviewer"
    assert version.thresholds == {"step_up": 30, "deny": 95}
    policy = current_policy()
    assert policy.version == version.pk and (policy.thresholds.step_up, policy.thresholds.deny) == (30, 95)
    log = LogEntry.objects.get(object_id=str(version.pk), content_type__model="policyversion")
    assert log.user.username == "reviewer" and "in force" in log.change_message
    listing = client.get("/admin/authguard/policyversion/").content.decode()
    assert f"v{version.pk}" in listing


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"step_up": 90, "deny": 50}, "must not exceed"),
        ({"step_up": 101}, "less than or equal to 100"),
        ({"signal_options": '{"no.such.Signal": {}}'}, "not a configured signal"),
        ({"signal_options": '{"authguard.risk_signals.Velocity": {"bogus": 1}}'}, "unknown options"),
        ({"signal_options": "{not json"}, "Enter a valid JSON"),
        ({"shadow_signals": '[{"NAME": "no.such.Signal"}]'}, "cannot import"),
        ({"comment": ""}, "This field is required"),
    ],
)
def test_invalid_values_are_refused_with_a_message(editor, overrides, message):
    client = staff_client(editor)
    for button in ({}, {"_backtest": "1"}):
        response = client.post(ADD, {**form(**overrides), **button})
        assert response.status_code == 200
        assert message in response.content.decode()
    assert not PolicyVersion.objects.exists()
    assert current_policy().version == 0


def test_versions_are_never_edited_or_deleted(editor):
    client = staff_client(editor)
    client.post(ADD, form())
    approve_pending(second_editor())
    version = PolicyVersion.objects.get()
    page = client.get(f"/admin/authguard/policyversion/{version.pk}/change/")
    assert page.status_code == 200 and 'name="step_up"' not in page.content.decode()
    client.post(f"/admin/authguard/policyversion/{version.pk}/change/", form(step_up=5))
    client.post(f"/admin/authguard/policyversion/{version.pk}/delete/", {"post": "yes"})
    version.refresh_from_db()
    assert version.thresholds["step_up"] == 30 and PolicyVersion.objects.count() == 1


def test_staff_without_add_permission_cannot_change_the_policy():
    viewer = staff_user("viewer", perms=("authguard.view_policyversion",))
    client = staff_client(viewer)
    assert client.get(ADD).status_code == 403
    assert client.post(ADD, {**form(), "_backtest": "1"}).status_code == 403
    assert client.post(ADD, form()).status_code == 403
    assert not PolicyVersion.objects.exists()


def test_backtest_button_shows_the_backtest_and_saves_nothing(editor, user_factory):
    user_factory("alice")
    built = build_history({"alice": "correct horse battery"})
    mark(built.attacks, Feedback.FRAUD)
    with time_machine.travel(NOW, tick=False):
        # Signed in at the data's time: a session signed in "later" than the clock reads is ended.
        client = staff_client(editor)
        page = client.post(ADD, {**form(step_up=5, deny=100), "_backtest": "1"})
        expected = backtest.run_backtest(
            backtest.proposed_runtime_policy(thresholds={"step_up": 5}, signal_options={})
        )
    assert page.status_code == 200 and not PolicyVersion.objects.exists()
    result = page.context["backtest"]
    assert result == expected
    assert result.proposed.friction > result.current.friction and result.proposed.catches == 3
    html = page.content.decode()
    assert f'data-metric="friction-proposed">{result.proposed.friction}<' in html
    # The form comes back filled in with the proposal, ready to save.
    assert page.context["adminform"].form.initial["step_up"] == 5
    assert '"step_up": 5' in page.context["backtest_policy_json"]
