"""The detection benchmark: its generator's invariants, its GeoIP databases and its scorer's arithmetic."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import geoip2.database
import geoip2.errors
import pytest

from authguard.testing import ANONYMOUS_FILENAME, ASN_FILENAME, CITY_FILENAME
from bench.detection import ATTACK_CLASSES, CONTRACT_KEYS, LABEL_KEYS, Config, Generator
from bench.detection.__main__ import main
from bench.detection.baseline import run_b0
from bench.detection.generator import write_events
from bench.detection.scorer import history_bucket, roc_auc, score_run, threshold_for_friction
from bench.detection.world import JP_CARRIERS, JP_FIXED_ISPS

SMALL = Config(seed=7, users=80, history_days=40, test_days=20)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> tuple[Generator, list[dict], Path]:
    """A small generated dataset and its GeoIP folder."""
    generator = Generator(SMALL)
    lines = generator.generate()
    geoip = generator.world.write_databases(tmp_path_factory.mktemp("geoip"))
    return generator, lines, geoip


@pytest.fixture(scope="module")
def asn_of(dataset):
    reader = geoip2.database.Reader(str(dataset[2] / ASN_FILENAME))
    yield lambda ip: reader.asn(ip).autonomous_system_number
    reader.close()


def _by_label(lines: list[dict], label: str) -> list[dict]:
    return [line for line in lines if line["label"] == label]


def test_same_seed_gives_the_same_file_and_another_seed_another(tmp_path):
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        write_events(
            Generator(Config(seed=seed, users=30, history_days=20, test_days=10)).generate(), tmp_path / name
        )
    assert (tmp_path / "a").read_bytes() == (tmp_path / "b").read_bytes()
    assert (tmp_path / "a").read_bytes() != (tmp_path / "c").read_bytes()


def test_lines_are_sorted_and_carry_exactly_the_contract_and_label_keys(dataset):
    _, lines, _ = dataset
    times = [dt.datetime.fromisoformat(line["ts"]) for line in lines]
    assert times == sorted(times)
    assert all(t.utcoffset() == dt.timedelta(hours=9) for t in times)
    for line in lines:
        assert set(line) == set(CONTRACT_KEYS) | set(LABEL_KEYS)
        assert isinstance(line["user"], str) and isinstance(line["ip"], str) and line["user_agent"]
        assert line["device_id"] is None or isinstance(line["device_id"], str)
        assert isinstance(line["password_ok"], bool)
        assert line["second_factor_ok"] in ((None,) if not line["password_ok"] else (True, False))
        assert line["phase"] in ("history", "test")


def test_labels_phases_and_history_sizes(dataset):
    generator, lines, _ = dataset
    labels = {line["label"] for line in lines}
    assert labels == {"legit", "control", *ATTACK_CLASSES}
    history: dict[str, int] = {}
    for line in lines:
        in_test = dt.datetime.fromisoformat(line["ts"]).timestamp() >= generator.test_start
        assert line["phase"] == ("test" if in_test else "history")
        assert line["history_size"] == history.get(line["user"], 0)
        if line["label"] in ("legit", "control") and line["password_ok"] and line["second_factor_ok"]:
            history[line["user"]] = history.get(line["user"], 0) + 1
        if line["label"] in ATTACK_CLASSES:
            assert line["phase"] == "test"
            assert line["second_factor_ok"] is (None if not line["password_ok"] else False)
            assert line["password_ok"] or line["label"] == "A5"
    for label in ATTACK_CLASSES:
        assert sum(line["password_ok"] for line in _by_label(lines, label)) >= 10
    # Hard legitimate cases are there: no known device cookie, a wrong password first, IPv6.
    legit = _by_label(lines, "legit")
    assert any("+unknown_device" in line["scenario"] for line in legit)
    assert any(not line["password_ok"] for line in legit)
    assert any(":" in line["ip"] for line in legit)
    assert any(line["phase"] == "test" and line["history_size"] == 0 for line in legit)


def test_attackers_never_present_a_cookie_the_victim_has_used_except_infostealers(dataset):
    _, lines, _ = dataset
    legit_ids = {line["device_id"] for line in lines if line["label"] in ("legit", "control")}
    for line in lines:
        if line["label"] in ATTACK_CLASSES and line["label"] != "A7" and line["device_id"] is not None:
            assert line["device_id"] not in legit_ids


def test_a7_replays_a_cookie_the_victim_used_from_a_japanese_fixed_line(dataset, asn_of):
    generator, lines, geoip = dataset
    users = {u.name: u for u in generator.users}
    city = geoip2.database.Reader(str(geoip / CITY_FILENAME))
    used: dict[str, dict[str, list[tuple[float, str]]]] = {}  # user -> cookie -> (time, user agent)
    stolen = 0
    for line in lines:
        ts = dt.datetime.fromisoformat(line["ts"]).timestamp()
        if (
            line["label"] == "legit"
            and line["password_ok"]
            and line["second_factor_ok"]
            and line["device_id"]
        ):
            used.setdefault(line["user"], {}).setdefault(line["device_id"], []).append(
                (ts, line["user_agent"])
            )
        if line["label"] != "A7":
            continue
        stolen += 1
        uses = used[line["user"]][line["device_id"]]  # a cookie the victim used on a successful login
        assert uses[0][0] < ts - 86400  # stolen at least a day before
        assert line["second_factor_ok"] is False and line["password_ok"]
        assert line["scenario"].startswith("stolen_cookie")
        victim = users[line["user"]]
        located = city.city(line["ip"])
        assert located.country.iso_code == "JP"
        assert asn_of(line["ip"]) in {isp.asn for isp in JP_FIXED_ISPS}
        if "same_isp" in line["scenario"]:
            assert asn_of(line["ip"]) == victim.household.isp.asn
    assert stolen >= 10


def test_a8_comes_from_a_fixed_line_in_the_victims_home_city_without_its_cookie(dataset, asn_of):
    generator, lines, _ = dataset
    users = {u.name: u for u in generator.users}
    legit_ids = {line["device_id"] for line in lines if line["label"] == "legit"}
    low = _by_label(lines, "A8")
    assert len(low) >= 10
    for line in low:
        victim = users[line["user"]]
        assert asn_of(line["ip"]) in {isp.asn for isp in generator.world.isps_in(victim.household.city)}
        assert line["device_id"] not in legit_ids or line["device_id"] is None
        own = "own_isp" in line["scenario"]
        assert own == (victim.household.isp is not None and asn_of(line["ip"]) == victim.household.isp.asn)


def test_a6_follows_a_login_of_the_victim_within_60_s_from_another_as(dataset, asn_of):
    _, lines, _ = dataset
    seconds = [dt.datetime.fromisoformat(line["ts"]).timestamp() for line in lines]
    for i, line in enumerate(lines):
        if line["label"] != "A6":
            continue
        relayed = [
            j
            for j in range(i - 1, -1, -1)
            if seconds[i] - seconds[j] <= 60
            and lines[j]["user"] == line["user"]
            and lines[j]["label"] == "legit"
            and lines[j]["password_ok"]
        ]
        assert relayed, line
        assert any(lines[j]["user_agent"] == line["user_agent"] for j in relayed)
        assert all(asn_of(lines[j]["ip"]) != asn_of(line["ip"]) for j in relayed)


def test_a4_uses_the_victims_own_isp_and_a3_the_victims_user_agent(dataset, asn_of):
    generator, lines, _ = dataset
    users = {u.name: u for u in generator.users}
    for line in _by_label(lines, "A4"):
        victim = users[line["user"]]
        own = victim.household.isp.asn if victim.household.isp else victim.carrier.asn
        assert asn_of(line["ip"]) == own
    last_ua: dict[str, str] = {}
    checked = 0
    for line in lines:
        if line["label"] == "legit" and line["password_ok"] and line["second_factor_ok"]:
            last_ua[line["user"]] = line["user_agent"]
        elif line["label"] == "A3" and line["user"] in last_ua:
            assert line["user_agent"] == last_ua[line["user"]]
            checked += 1
    assert checked


def test_geoip_databases_read_back_with_geoip2(dataset, tmp_path):
    generator, lines, geoip = dataset
    city = geoip2.database.Reader(str(geoip / CITY_FILENAME))
    asn = geoip2.database.Reader(str(geoip / ASN_FILENAME))
    anonymous = geoip2.database.Reader(str(geoip / ANONYMOUS_FILENAME))
    home = next(
        line["ip"] for line in lines if line["scenario"].startswith("home+") or line["scenario"] == "home"
    )
    assert city.city(home).country.iso_code == "JP"
    assert asn.asn(home).autonomous_system_number in {isp.asn for isp in JP_FIXED_ISPS}
    mobile = next(line["ip"] for line in lines if line["scenario"].split("+")[0] == "mobile")
    assert asn.asn(mobile).autonomous_system_number in {c.asn for c in JP_CARRIERS}
    assert city.city(mobile).location.accuracy_radius >= 100
    listed = [
        line["ip"] for line in lines if line["label"] in ATTACK_CLASSES and "+listed" in line["scenario"]
    ]
    unlisted = [line["ip"] for line in lines if line["label"] == "A1" and "+listed" not in line["scenario"]]
    assert listed and all(anonymous.anonymous_ip(ip).is_anonymous for ip in listed)
    for ip in unlisted:
        with pytest.raises(geoip2.errors.AddressNotFoundError):
            anonymous.anonymous_ip(ip)
    with pytest.raises(geoip2.errors.AddressNotFoundError):
        anonymous.anonymous_ip(home)
    for reader in (city, asn, anonymous):
        reader.close()
    generator.world.write_databases(tmp_path / "lite")
    folder = generator.world.write_databases(tmp_path / "lite", anonymous=False)
    assert sorted(p.name for p in folder.iterdir()) == sorted([CITY_FILENAME, ASN_FILENAME])


def test_roc_auc_counts_ties_as_half():
    assert roc_auc([3, 2], [1, 2]) == pytest.approx(3.5 / 4)
    assert roc_auc([5, 6], [1, 2, 3]) == 1.0
    assert roc_auc([1], [1]) == 0.5
    assert roc_auc([], [1]) is None


def test_threshold_for_friction_never_flags_more_than_the_budget():
    legit = [0] * 8 + [10, 20]
    assert threshold_for_friction(legit, 0.05) == 20  # flags nothing
    assert threshold_for_friction(legit, 0.10) == 10  # flags the 20
    assert threshold_for_friction(legit, 0.20) == 0  # flags the 10 and the 20
    assert threshold_for_friction(legit, 1.0) == 0  # ties at the cut are never flagged
    assert [history_bucket(n) for n in (0, 1, 3, 4, 10, 11, 40, 41)] == [
        "0", "1-3", "1-3", "4-10", "4-10", "11-40", "11-40", ">40",
    ]  # fmt: skip


def _line(user, label, phase="test", history=5, password_ok=True, scenario="home"):
    return {
        "user": user,
        "label": label,
        "phase": phase,
        "history_size": history,
        "password_ok": password_ok,
        "scenario": scenario,
    }


def _out(user, score, action, reasons=()):
    return {"user": user, "score": score, "action": action, "reasons": list(reasons)}


def test_score_run_on_a_hand_made_replay():
    pairs = [
        (_line("a", "legit", phase="history"), _out("a", 90, "deny")),  # history: ignored
        (_line("a", "legit", password_ok=False), _out("a", 95, "deny")),  # wrong password: ignored
        (_line("a", "legit"), _out("a", 10, "allow")),
        (_line("a", "legit"), _out("a", 50, "step_up", ["new_device"])),
        (_line("a", "legit", scenario="mobile+unknown_device"), _out("a", 0, "allow")),
        (_line("a", "legit"), _out("a", 0, "allow")),
        (_line("b", "legit", history=0), _out("b", 95, "deny", ["new_device", "vpn"])),
        (_line("c", "legit", history=50), _out("c", 20, "allow")),
        (_line("c", "control"), _out("c", 45, "step_up")),
        (_line("a", "A1", scenario="vps"), _out("a", 95, "deny")),
        (_line("b", "A1", scenario="vps"), _out("b", 30, "allow", ["new_device"])),
        (_line("b", "A1", scenario="vps"), _out("b", 60, "step_up")),
    ]
    report = score_run([e for e, _ in pairs], [o for _, o in pairs], bootstrap=50)
    legit = report["legit"]
    assert legit["logins"] == 6 and legit["users"] == 3
    assert legit["friction"] == pytest.approx(2 / 6)
    assert legit["deny"] == pytest.approx(1 / 6) and legit["denies"] == 1
    assert legit["median_user_friction"] == pytest.approx(0.25)  # users: 1/4, 1/1, 0/1
    assert legit["friction_reasons"] == {"new_device": 2, "vpn": 1}
    buckets = {b["bucket"]: b for b in legit["by_history"]}
    assert buckets["0"]["logins"] == 1 and buckets["0"]["friction"] == 1.0
    assert buckets["4-10"]["logins"] == 4 and buckets["4-10"]["friction"] == 0.25
    assert buckets[">40"]["friction"] == 0.0
    assert legit["by_device"] == {
        "known": {"logins": 5, "friction": 0.4},
        "unknown": {"logins": 1, "friction": 0.0},
    }
    lo, hi = legit["friction_ci"]
    assert 0 <= lo <= legit["friction"] <= hi <= 1
    assert report["control"] == {"logins": 1, "friction": 1.0, "deny": 0.0}
    a1 = report["attacks"]["A1"]
    assert (a1["logins"], a1["caught"], a1["denied"]) == (3, 2, 1)
    assert a1["catch"] == pytest.approx(2 / 3)
    assert (a1["victims"], a1["victims_compromised"]) == (2, 1)
    # Legit scores 10 50 0 0 95 20 against 95 30 60: 5.5 + 4 + 5 pairs won out of 18.
    assert a1["auc"] == pytest.approx(14.5 / 18)
    # 1 % and 5 % of six logins allow none flagged: the cut is 95 and nothing scores above it.
    assert a1["at_friction"]["1%"] == {"cut": 95.0, "friction": 0.0, "catch": 0.0}
    assert a1["missed_reasons"] == {"new_device": 1}
    assert report["targets"]["legit_friction"] == {
        "target": 0.01,
        "value": pytest.approx(2 / 6),
        "met": False,
    }
    assert report["targets"]["A1"]["met"] is False


def test_score_run_rejects_misaligned_output():
    with pytest.raises(ValueError, match="line 1"):
        score_run([_line("a", "legit")], [_out("b", 0, "allow")])
    with pytest.raises(ValueError, match="2 scored lines"):
        score_run([_line("a", "legit")], [_out("a", 0, "allow")] * 2)


def test_baseline_b0_steps_up_a_new_device_or_country_and_learns_like_the_replay(tmp_path):
    def event(device, password_ok=True, second_factor_ok=True):
        return {"user": "u", "ip": "192.0.2.1", "device_id": device, "password_ok": password_ok,
                "second_factor_ok": second_factor_ok}  # fmt: skip

    events = [
        event("d1", second_factor_ok=False),
        event("d1"),
        event("d1"),
        event(None),
        event("d2", False, None),
    ]
    out = run_b0(events, tmp_path)  # no databases: every address is in country "unknown"
    assert [o["action"] for o in out] == ["step_up", "step_up", "allow", "step_up", "step_up"]
    assert out[0] == {"line": 1, "user": "u", "score": 100, "action": "step_up",
                      "reasons": ["new_device", "new_country"]}  # fmt: skip
    assert out[3]["reasons"] == ["new_device"]


def test_command_writes_the_dataset_and_reports_baseline_b0(tmp_path, capsys):
    args = [
        "--seed",
        "2",
        "--users",
        "25",
        "--history-days",
        "15",
        "--test-days",
        "8",
        "--out",
        str(tmp_path),
    ]
    status = main([*args, "--no-replay", "--bootstrap", "0", "--no-anonymous-db"])
    assert status == 0
    assert {p.name for p in tmp_path.iterdir()} >= {
        "events.jsonl",
        "geoip",
        "scored-b0.jsonl",
        "report.json",
        "report.md",
    }
    assert not (tmp_path / "geoip" / ANONYMOUS_FILENAME).exists()
    report = json.loads((tmp_path / "report.json").read_text())
    assert list(report["systems"]) == ["B0"]
    assert report["dataset"]["events"] == len((tmp_path / "events.jsonl").read_text().splitlines())
    assert "| A1 caught |" in capsys.readouterr().out


def test_findings_rows_carry_each_login_s_findings_and_its_device_s_past(dataset, tmp_path):
    from bench.detection.findings import run

    _generator, lines, geoip = dataset
    folder = tmp_path / "seed"
    folder.mkdir()
    write_events(lines, folder / "events.jsonl")
    (folder / "geoip").symlink_to(geoip, target_is_directory=True)
    rows = run(folder, None, tmp_path / "findings.jsonl")
    assert rows and all(row["line"] and row["label"] for row in rows)
    assert [json.loads(text) for text in (tmp_path / "findings.jsonl").read_text().splitlines()] == rows
    test_logins = [line for line in lines if line["phase"] == "test" and line["password_ok"]]
    assert len(rows) == len(test_logins)

    # The score is the clamped sum of the findings' points, raised to the step-up threshold where a finding
    # asks for a step-up whatever the points (what the what-if re-scoring relies on).
    def rescored(row):
        total = max(0, min(100, sum(points for _, points in row["findings"])))
        return max(total, 40) if row["floor"] else total

    assert all(row["score"] == rescored(row) for row in rows)
    assert any(row["floor"] for row in rows) and not all(row["floor"] for row in rows)
    known = [row for row in rows if row["known"] and "dev_hours" in row]
    assert known, "known devices carry their past"
    # Read before the login is learned: a device's last use is before this login, not this login itself.
    assert sum(row["dev_hours"] > 0 for row in known) > 0.9 * len(known)
    assert all(row["dcity_n"] >= 1 and row["dasn_n"] >= 1 for row in known)
