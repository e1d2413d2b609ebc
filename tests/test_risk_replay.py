"""`authguard replay` follows CONTRACTS section 5 to the letter."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from authguard.models import KnownDevice, LoginEvent, PopulationCount, RiskProfile

from .conftest import IP_SG_VPS, IP_TOKYO, UA_CHROME_WIN, UA_CURL, UA_FIREFOX_LINUX

T = datetime.fromisoformat("2026-04-01T09:00:00+09:00")


def line(i: int, **overrides) -> dict:
    row = {
        "ts": (T + timedelta(hours=i)).isoformat(),
        "user": "alice",
        "ip": IP_TOKYO,
        "user_agent": UA_CHROME_WIN,
        "device_id": "pc-1",
        "password_ok": True,
        "second_factor_ok": None,
    }
    row.update(overrides)
    return row


def write(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def run(tmp_path, rows, *extra) -> list[dict]:
    out = tmp_path / "out.jsonl"
    call_command(
        "authguard",
        "replay",
        str(write(tmp_path / "in.jsonl", rows)),
        "--output",
        str(out),
        "--quiet",
        *extra,
    )
    return [json.loads(x) for x in out.read_text().splitlines()]


def test_one_output_line_per_input_line_in_order(tmp_path, geoip_dir):
    rows = [line(i) for i in range(5)] + [line(6, ip=IP_SG_VPS, user_agent=UA_CURL, device_id=None)]
    out = run(tmp_path, rows, "--geoip-path", str(geoip_dir))
    assert [o["line"] for o in out] == [1, 2, 3, 4, 5, 6]
    assert set(out[0]) == {"line", "user", "score", "action", "reasons"}
    assert all(0 <= o["score"] <= 100 and o["action"] in ("allow", "step_up", "deny") for o in out)
    assert out[4]["action"] == "allow"
    assert out[5]["action"] in ("step_up", "deny")
    assert {"automation_client", "anonymous_hosting", "new_device"} <= set(out[5]["reasons"])


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("not json", "line 3: not valid JSON"),
        ("[1, 2]", "line 3: not a JSON object"),
        (json.dumps({k: v for k, v in line(2).items() if k != "ip"}), "line 3: missing keys ['ip']"),
        (json.dumps(line(2, ts="yesterday")), "line 3: 'ts' is not ISO-8601"),
        (json.dumps(line(2, ts="2026-04-01T11:00:00")), "line 3: 'ts' needs a UTC offset"),
        (json.dumps(line(2, password_ok="yes")), "line 3: 'password_ok' must be true or false"),
        (json.dumps(line(2, second_factor_ok=1)), "line 3: 'second_factor_ok'"),
        (json.dumps(line(2, device_id=5)), "line 3: 'device_id'"),
        (json.dumps(line(2, ip="999.1.1.1")), "line 3: 'ip' is not an IP address"),
        (json.dumps(line(2, user="")), "line 3: 'user' must not be empty"),
        (json.dumps(line(2, user_agent=None)), "line 3: 'user_agent' must be a string"),
        (json.dumps(line(-5)), "line 3: out of order"),
    ],
)
def test_malformed_or_out_of_order_line_stops_with_its_number(tmp_path, bad, message):
    with pytest.raises(CommandError, match=message.replace("[", r"\[").replace("]", r"\]")):
        run(tmp_path, [line(0), line(1), bad, line(3)])


def test_exit_code_is_non_zero_on_a_bad_line(tmp_path):
    src = write(tmp_path / "in.jsonl", [line(1), line(0)])
    proc = subprocess.run(
        [sys.executable, "manage.py", "authguard", "replay", str(src), "--output", str(tmp_path / "o.jsonl")],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parent.parent,
    )
    assert proc.returncode != 0
    assert "line 2: out of order" in proc.stderr


def test_extra_keys_are_ignored_and_equal_timestamps_are_in_order(tmp_path):
    rows = [line(0, label="A1", anything={"x": 1}), line(0)]
    assert len(run(tmp_path, rows)) == 2


def test_learns_only_from_allowed_or_passed_step_up(tmp_path, geoip_dir):
    # A foreign VPS login stepped up and failed: not learned, so the next one is as risky.
    vps = {"ip": IP_SG_VPS, "device_id": "attacker", "user_agent": UA_FIREFOX_LINUX}
    base = [line(i) for i in range(10)]
    no_deny = tmp_path / "no-deny.json"
    no_deny.write_text(json.dumps({"thresholds": {"step_up": 40, "deny": 100}}))
    options = ("--geoip-path", str(geoip_dir), "--policy", str(no_deny))
    failed = run(
        tmp_path,
        base + [line(100, second_factor_ok=False, **vps), line(101, second_factor_ok=False, **vps)],
        *options,
    )
    assert failed[10]["action"] == "step_up"
    assert failed[11]["score"] >= failed[10]["score"]
    # Stepped up and passed: learned, and the device is remembered, so the next login is less risky.
    passed = run(
        tmp_path,
        base + [line(100, second_factor_ok=True, **vps), line(101, second_factor_ok=True, **vps)],
        *options,
    )
    assert passed[10] == failed[10]  # the decision never depends on the line's own second_factor_ok
    assert passed[11]["score"] < failed[11]["score"]
    assert "remembered_device" not in passed[11]["reasons"]  # it lowers the score; reasons list only raisers


def test_failed_passwords_feed_velocity(tmp_path):
    rows = (
        [line(0)]
        + [
            line(1, password_ok=False, second_factor_ok=None, user=f"u{i}", ip="198.51.100.9")
            for i in range(6)
        ]
        + [line(1, user="alice", ip="198.51.100.9")]
    )
    out = run(tmp_path, rows)
    assert "velocity_ip_users" in out[-1]["reasons"]


def test_policy_file_changes_the_decisions(tmp_path):
    rows = [line(0, ip=IP_SG_VPS, user_agent=UA_CURL)]
    strict = tmp_path / "strict.json"
    strict.write_text(json.dumps({"thresholds": {"step_up": 1, "deny": 2}}))
    assert run(tmp_path, rows, "--policy", str(strict))[0]["action"] == "deny"
    lax = tmp_path / "lax.json"
    lax.write_text(
        json.dumps(
            {
                "thresholds": {"step_up": 100, "deny": 100},
                "signals": [{"NAME": "authguard.risk_signals.Velocity"}],
            }
        )
    )
    assert run(tmp_path, rows, "--policy", str(lax))[0] == {
        "line": 1,
        "user": "alice",
        "score": 0,
        "action": "allow",
        "reasons": [],
    }


@pytest.mark.parametrize(
    "policy",
    [
        '{"thresholds": {"step_up": 90, "deny": 10}}',
        "[]",
        '{"nope": 1}',
        '{"signals": [{"NAME": "x.Y"}]}',
        "{bad json",
    ],
)
def test_invalid_policy_is_refused(tmp_path, policy):
    path = tmp_path / "p.json"
    path.write_text(policy)
    with pytest.raises(CommandError, match="cannot use policy"):
        run(tmp_path, [line(0)], "--policy", str(path))


@pytest.mark.django_db
def test_replay_never_touches_the_database(tmp_path, django_assert_num_queries):
    rows = [line(i) for i in range(20)] + [line(21, ip=IP_SG_VPS, second_factor_ok=True)]
    with django_assert_num_queries(0):
        run(tmp_path, rows)
    assert not (
        LoginEvent.objects.exists()
        or RiskProfile.objects.exists()
        or PopulationCount.objects.exists()
        or KnownDevice.objects.exists()
    )


def test_summary_and_progress_on_stderr(tmp_path, capsys):
    out = tmp_path / "o.jsonl"
    call_command(
        "authguard",
        "replay",
        str(write(tmp_path / "in.jsonl", [line(i) for i in range(3)])),
        "--output",
        str(out),
    )
    err = capsys.readouterr().err
    assert "3 logins scored" in err and "allow" in err


# -- inputs an outside evaluation sends (review, 2026-12-04) ----------------------------------------------


def _raw_run(tmp_path: Path, data: bytes, *extra: str) -> list[dict]:
    source = tmp_path / "raw.jsonl"
    source.write_bytes(data)
    out = tmp_path / "out.jsonl"
    call_command("authguard", "replay", str(source), "--output", str(out), "--quiet", *extra)
    return [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]


def _jsonl(rows: list[dict]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


@pytest.mark.parametrize("field", ["user", "user_agent", "device_id"])
def test_a_lone_surrogate_escape_is_scored_not_a_crash(tmp_path, field):
    # json.dumps writes "\ud800" as the escape itself: valid JSON, but no character.
    rows = [line(0), line(1, **{field: "pc\ud800x"}), line(2)]
    out = _raw_run(tmp_path, _jsonl(rows))
    assert [o["line"] for o in out] == [1, 2, 3]
    if field == "user":
        assert out[1]["user"] == "pc?x"


def test_a_byte_order_mark_bytes_that_are_not_utf8_and_trailing_blank_lines_are_read(tmp_path):
    body = (
        _jsonl([line(0)])
        + json.dumps(line(1, user="caf\u00e9")).encode().replace(b"caf\\u00e9", b"caf\xe9")
        + b"\n"
        + _jsonl([line(2)])
    )
    out = _raw_run(tmp_path, b"\xef\xbb\xbf" + body + b"\n\r\n")
    assert [o["line"] for o in out] == [1, 2, 3]
    assert out[1]["user"] == "caf\ufffd" and out[0]["user"] == out[2]["user"] == "alice"


def test_a_blank_line_before_another_line_still_stops_the_run(tmp_path):
    with pytest.raises(CommandError, match="line 2: empty line"):
        _raw_run(tmp_path, _jsonl([line(0)]) + b"\n" + _jsonl([line(1)]))


@pytest.mark.parametrize(
    ("ts", "expected"),
    [
        ("2026-04-01t09:00:00z", "2026-04-01T09:00:00+00:00"),
        ("2026-04-01T08:59:60Z", "2026-04-01T09:00:00+00:00"),  # a leap second
        ("2026-03-31T24:00:00+09:00", "2026-04-01T00:00:00+09:00"),
    ],
)
def test_rfc3339_times_pythons_parser_refuses_are_read(ts, expected):
    from authguard.risk.replay import parse_line

    record = parse_line(1, json.dumps(line(0, ts=ts)))
    assert record.ts == datetime.fromisoformat(expected)


@pytest.mark.parametrize("ts", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:30:00+01:00"])
def test_a_time_at_the_calendars_edge_stops_the_run_with_its_line(tmp_path, ts):
    with pytest.raises(CommandError, match="line 2: 'ts' is not ISO-8601"):
        run(tmp_path, [line(0), line(1, ts=ts)])


def test_an_ipv6_zone_is_dropped(tmp_path, geoip_dir):
    rows = [line(0, ip="2001:db8:1::1"), line(1, ip="2001:db8:1::1%eth0")]
    out = _raw_run(tmp_path, _jsonl(rows), "--geoip-path", str(geoip_dir))
    assert "unknown_network" not in out[1]["reasons"]


def test_long_device_ids_are_hashed_without_filling_the_cache():
    from authguard.risk import context

    before = context._cached_device_hash.cache_info().currsize
    long_id = "x" * 100_000
    assert context.device_hash(long_id) == context.device_hash(long_id) is not None
    assert context._cached_device_hash.cache_info().currsize == before
    assert context.device_hash("pc-1") == context._device_hash("pc-1")
