"""Backtest before enforcing: the admin's figures equal `authguard replay` on the same recorded events."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import time_machine
from django.core.management import call_command
from django_otp.plugins.otp_totp.models import TOTPDevice

from authguard.models import Feedback, LoginEvent, Outcome
from authguard.risk import backtest
from authguard.risk.policy import current_policy, save_policy

from .console_data import NOW, build_history, mark, staff_client, staff_user

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]

BACKTEST_URL = "/admin/authguard/loginevent/backtest/"
EXPORT_URL = "/admin/authguard/loginevent/export/"


@pytest.fixture
def history(user_factory):
    keys = {}
    for name in ("alice", "bob"):
        keys[name] = TOTPDevice.objects.create(user=user_factory(name), name="app", confirmed=True).key
    built = build_history({"alice": "correct horse battery", "bob": "correct horse battery"}, totp_keys=keys)
    assert LoginEvent.objects.filter(outcome=Outcome.STEP_UP_PASSED).count() >= 2
    mark(built.attacks, Feedback.FRAUD)
    mark(built.routine[-1:], Feedback.LEGITIMATE)
    return built


@pytest.fixture
def desk_user():
    return staff_user(perms=("authguard.view_loginevent",))


@pytest.fixture
def desk(desk_user):
    return staff_client(desk_user)


def expected_label(event: LoginEvent) -> str:
    """The documented labels, restated independently of authguard.risk.backtest."""
    if not event.password_ok:
        return "unknown"
    if event.feedback == "fraud":
        return "fraud"
    if event.feedback == "legitimate" or event.outcome == Outcome.STEP_UP_PASSED:
        return "good"
    if event.action == "allow" and event.outcome == Outcome.SIGNED_IN:
        return "good"
    return "unknown"


def replay_command(tmp_path: Path, jsonl: str, policy: dict | None) -> list[dict]:
    source = tmp_path / "events.jsonl"
    source.write_text(jsonl)
    out = tmp_path / "out.jsonl"
    args = [str(source), "--output", str(out), "--quiet"]
    if policy is not None:
        (tmp_path / "policy.json").write_text(json.dumps(policy))
        args += ["--policy", str(tmp_path / "policy.json")]
    call_command("authguard", "replay", *args)
    return [json.loads(x) for x in out.read_text().splitlines()]


def friction_and_catches(jsonl: str, results: list[dict]) -> tuple[int, int]:
    events = LoginEvent.objects.in_bulk([json.loads(x)["event"] for x in jsonl.splitlines()])
    friction = catches = 0
    for text, result in zip(jsonl.splitlines(), results, strict=True):
        label = expected_label(events[json.loads(text)["event"]])
        blocked = result["action"] in ("step_up", "deny")
        friction += label == "good" and blocked
        catches += label == "fraud" and blocked
    return friction, catches


@pytest.mark.parametrize(
    "thresholds",
    [{"step_up": 15, "deny": 100}, {"step_up": 80, "deny": 95}, {"step_up": 40, "deny": 60}],
)
def test_backtest_page_equals_replay_command(history, desk_user, tmp_path, thresholds):
    with time_machine.travel(NOW, tick=False):
        # Signed in at the data's time: a session signed in "later" than the clock reads is ended.
        desk = staff_client(desk_user)
        page = desk.post(BACKTEST_URL, {"days": 30, **thresholds, "signal_options": ""})
        export = desk.get(EXPORT_URL, {"days": 30})
    assert page.status_code == 200 and export.status_code == 200
    result = page.context["result"]
    jsonl = b"".join(export.streaming_content).decode()
    assert result.events == len(jsonl.splitlines()) > 30

    proposed = replay_command(tmp_path, jsonl, {"thresholds": thresholds})
    current = replay_command(tmp_path, jsonl, backtest.policy_json(current_policy()))
    assert (result.proposed.friction, result.proposed.catches) == friction_and_catches(jsonl, proposed)
    assert (result.current.friction, result.current.catches) == friction_and_catches(jsonl, current)
    assert result.proposed.fraud == 3 and result.proposed.known_good > 30
    # The page shows the same figures.
    html = page.content.decode()
    for metric, value in (
        ("friction-proposed", result.proposed.friction),
        ("catches-proposed", result.proposed.catches),
        ("friction-current", result.current.friction),
        ("catches-current", result.current.catches),
    ):
        assert re.search(rf'data-metric="{metric}">{value}<', html), metric


def test_a_stricter_policy_adds_friction_and_a_laxer_one_misses_attacks(history):
    with time_machine.travel(NOW, tick=False):
        strict = backtest.run_backtest({"thresholds": {"step_up": 1, "deny": 100}}, days=30)
        # Scoring with one signal only (the hour of day) lets the attacks through.
        lax = backtest.run_backtest(
            {"signals": [{"NAME": "authguard.risk_signals.UnusualHour", "OPTIONS": {}}]}, days=30
        )
    assert strict.proposed.friction > strict.current.friction
    assert strict.proposed.catches == 3
    assert lax.proposed.catches < lax.current.catches == 3
    assert lax.changed_total > 0 and all(c.current != c.proposed for c in lax.changes)


def test_the_current_side_is_the_runtime_policy_in_force(
    history, desk_user, tmp_path, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):  # the new version is published after commit
        save_policy(by=None, comment="stricter after the campaign", thresholds={"step_up": 20})
    with time_machine.travel(NOW, tick=False):
        desk = staff_client(desk_user)
        page = desk.post(BACKTEST_URL, {"days": 30, "step_up": 40, "deny": 100, "signal_options": ""})
        jsonl = b"".join(page.client.get(EXPORT_URL, {"days": 30}).streaming_content).decode()
    result = page.context["result"]
    assert current_policy().thresholds.step_up == 20
    strict = replay_command(tmp_path, jsonl, {"thresholds": {"step_up": 20, "deny": 100}})
    assert (result.current.friction, result.current.catches) == friction_and_catches(jsonl, strict)
    assert result.current.friction >= result.proposed.friction


def test_signal_options_are_backtested(history):
    # A (silly) proposal: a known device adds 45 points instead of removing 10.
    options = {"authguard.risk_signals.DeviceCookie": {"known_device": 45}}
    with time_machine.travel(NOW, tick=False):
        proposed = backtest.proposed_runtime_policy(thresholds={}, signal_options=options)
        result = backtest.run_backtest(proposed, days=30)
    assert result.proposed.friction > result.current.friction
    assert all(c.proposed != "allow" for c in result.changes if c.label == "good")


def test_the_window_limits_the_events(history):
    with time_machine.travel(NOW, tick=False):
        week = backtest.run_backtest({"thresholds": {"step_up": 40}}, days=7)
        month = backtest.run_backtest({"thresholds": {"step_up": 40}}, days=30)
    assert 0 < week.events < month.events


def test_a_capped_backtest_replays_the_most_recent_events_and_says_so(history):
    with time_machine.travel(NOW, tick=False):
        capped = backtest.run_backtest({"thresholds": {"step_up": 40}}, days=30, max_events=5)
        whole = backtest.run_backtest({"thresholds": {"step_up": 40}}, days=30)
    assert capped.truncated and capped.events == 5 and not whole.truncated
    assert capped.proposed.fraud == 3  # the attack is among the newest events


def test_export_lines_follow_the_replay_contract(history):
    start, end = backtest.window(30, now=NOW)
    lines = [json.loads(x) for x in backtest.iter_export(start, end)]
    assert {"ts", "user", "ip", "user_agent", "device_id", "password_ok", "second_factor_ok"} <= set(lines[0])
    assert [x["ts"] for x in lines] == sorted(x["ts"] for x in lines)
    wrong = [x for x in lines if not x["password_ok"]]
    assert len(wrong) == 2 and all(x["second_factor_ok"] is None for x in wrong)
    by_event = {x["event"]: x for x in lines}
    # The takeover passed step-up (a phished code); the other attacks never had a second factor.
    assert by_event[history.takeover]["second_factor_ok"] is True
    assert all(by_event[pk]["second_factor_ok"] is False for pk in history.attacks if pk != history.takeover)


BASE = {"days": 30, "step_up": 40, "deny": 100, "signal_options": ""}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({**BASE, "step_up": 70, "deny": 50}, "must not exceed"),
        ({**BASE, "days": 0}, "greater than or equal to 1"),
        ({**BASE, "days": "x"}, "whole number"),
        ({**BASE, "signal_options": "{"}, "not valid JSON"),
        ({**BASE, "signal_options": '{"no.such.Signal": {}}'}, "not a configured signal"),
        ({**BASE, "signal_options": '{"authguard.risk_signals.Velocity": {"nope": 1}}'}, "unknown options"),
        (
            {**BASE, "signal_options": '{"authguard.risk_signals.DeviceCookie": {"new_device": "x"}}'},
            "number",
        ),
    ],
)
def test_invalid_proposals_are_refused_with_a_message(desk, data, message):
    response = desk.post(BACKTEST_URL, data)
    assert response.status_code == 200
    assert response.context["result"] is None
    assert message in response.content.decode()


@pytest.mark.parametrize("days", ["abc", "0", "9999", ""])
def test_export_refuses_a_bad_window_with_a_message(desk, days):
    response = desk.get(EXPORT_URL, {"days": days})
    assert response.status_code == 400 and response.content


def test_backtest_needs_the_view_permission(history):
    nobody = staff_client(staff_user("intern"))
    assert nobody.post(BACKTEST_URL, {"days": 30, "step_up": 40, "deny": 100}).status_code == 403
    assert nobody.get(EXPORT_URL).status_code == 403
