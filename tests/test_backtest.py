"""Backtest before enforcing: the admin's figures equal `authguard replay` on the same recorded events."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import time_machine
from django.core.management import call_command

from authguard import backtest
from authguard.models import Feedback, LoginEvent, Outcome

from .console_data import NOW, build_history, mark, staff_client, staff_user

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]

BACKTEST_URL = "/admin/authguard/loginevent/backtest/"
EXPORT_URL = "/admin/authguard/loginevent/export/"


@pytest.fixture
def history(user_factory):
    user_factory("alice")
    user_factory("bob")
    built = build_history({"alice": "correct horse battery", "bob": "correct horse battery"})
    mark(built.attacks, Feedback.FRAUD)
    mark(built.routine[-1:], Feedback.LEGITIMATE)
    return built


@pytest.fixture
def desk():
    return staff_client(staff_user(perms=("authguard.view_loginevent",)))


def expected_label(event: LoginEvent) -> str:
    """The documented labels, restated independently of authguard.backtest."""
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
def test_backtest_page_equals_replay_command(history, desk, tmp_path, thresholds):
    with time_machine.travel(NOW, tick=False):
        page = desk.post(BACKTEST_URL, {"days": 30, **thresholds, "signals": ""})
        export = desk.get(EXPORT_URL, {"days": 30})
    assert page.status_code == 200 and export.status_code == 200
    result = page.context["result"]
    jsonl = b"".join(export.streaming_content).decode()
    assert result.events == len(jsonl.splitlines()) > 30

    proposed = replay_command(tmp_path, jsonl, {"thresholds": thresholds})
    current = replay_command(tmp_path, jsonl, None)
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


def test_the_window_limits_the_events(history):
    with time_machine.travel(NOW, tick=False):
        week = backtest.run_backtest({"thresholds": {"step_up": 40}}, days=7)
        month = backtest.run_backtest({"thresholds": {"step_up": 40}}, days=30)
    assert 0 < week.events < month.events


def test_export_lines_follow_the_replay_contract(history):
    start, end = backtest.window(30, now=NOW)
    lines = [json.loads(x) for x in backtest.iter_export(start, end)]
    assert {"ts", "user", "ip", "user_agent", "device_id", "password_ok", "second_factor_ok"} <= set(lines[0])
    assert [x["ts"] for x in lines] == sorted(x["ts"] for x in lines)
    wrong = [x for x in lines if not x["password_ok"]]
    assert len(wrong) == 2 and all(x["second_factor_ok"] is None for x in wrong)
    fraud_ids = set(history.attacks)
    assert all(x["second_factor_ok"] is False for x in lines if x["event"] in fraud_ids)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"days": 30, "step_up": 70, "deny": 50, "signals": ""}, "must not exceed"),
        ({"days": 0, "step_up": 40, "deny": 100, "signals": ""}, "greater than or equal to 1"),
        ({"days": "x", "step_up": 40, "deny": 100, "signals": ""}, "whole number"),
        ({"days": 30, "step_up": 40, "deny": 100, "signals": "[{"}, "not valid JSON"),
        (
            {"days": 30, "step_up": 40, "deny": 100, "signals": '[{"NAME": "no.such.Signal"}]'},
            "cannot import",
        ),
    ],
)
def test_invalid_proposals_are_refused_with_a_message(desk, data, message):
    response = desk.post(BACKTEST_URL, data)
    assert response.status_code == 200
    assert response.context["result"] is None
    assert message in response.content.decode()


def test_backtest_needs_the_view_permission(history):
    nobody = staff_client(staff_user("intern"))
    assert nobody.post(BACKTEST_URL, {"days": 30, "step_up": 40, "deny": 100}).status_code == 403
    assert nobody.get(EXPORT_URL).status_code == 403
