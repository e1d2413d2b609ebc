"""The detection benchmark's opt-in attack variants (``bench/detection/variants.py``, ``--variants``): off
by default and byte-identical then; when on they only add lines, each with the properties its class claims."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import zlib
from collections import Counter
from pathlib import Path

import geoip2.database
import pytest

from authguard.testing import ASN_FILENAME
from bench.detection import ATTACK_CLASSES, Config, Generator
from bench.detection.__main__ import main
from bench.detection.generator import DAY, VARIANT_CLASSES, Event, write_events
from bench.detection.scorer import score_run
from bench.detection.variants import changed_lines

TINY = Config(seed=7, users=120, history_days=40, test_days=20)


@pytest.fixture(scope="module")
def worlds(tmp_path_factory) -> tuple[list[dict], Generator, list[dict], Path]:
    """The tiny world without variants, and the same world with them (its generator, lines and GeoIP)."""
    off = Generator(TINY).generate()
    generator = Generator(TINY, variants=True)
    on = generator.generate()
    geoip = generator.world.write_databases(tmp_path_factory.mktemp("geoip"))
    return off, generator, on, geoip


@pytest.fixture(scope="module")
def asn_of(worlds):
    reader = geoip2.database.Reader(str(worlds[3] / ASN_FILENAME))
    yield lambda ip: reader.asn(ip).autonomous_system_number
    reader.close()


def _ts(line: dict) -> int:
    return int(dt.datetime.fromisoformat(line["ts"]).timestamp())


def _event_of(generator: Generator, line: dict) -> Event:
    """The generator's event behind a variant line (its device is the victim's own for infostealers)."""
    ts = _ts(line)
    return next(
        e for e in generator.events if e.ts == ts and e.user == line["user"] and e.label == line["label"]
    )


def _used_cookies(lines: list[dict]) -> dict[str, dict[str, int]]:
    """user -> cookie -> first time it was presented on a successful legitimate login."""
    used: dict[str, dict[str, int]] = {}
    for line in lines:
        if (
            line["label"] == "legit"
            and line["password_ok"]
            and line["second_factor_ok"]
            and line["device_id"]
        ):
            used.setdefault(line["user"], {}).setdefault(line["device_id"], _ts(line))
    return used


def _own_nets(lines: list[dict], generator: Generator) -> dict[str, set]:
    """user -> every IPv4 /24 and IPv6 /56 of their legitimate lines and of their home line's leases."""
    nets: dict[str, set] = {}
    for line in lines:
        if line["label"] in ("legit", "control"):
            prefix = 24 if ":" not in line["ip"] else 56
            nets.setdefault(line["user"], set()).add(
                ipaddress.ip_network(f"{line['ip']}/{prefix}", strict=False)
            )
    for user in generator.users:
        own = nets.setdefault(user.name, set())
        own.update(ipaddress.ip_network(f"{ip}/24", strict=False) for _, ip in user.household.leases)
        own.update(ipaddress.ip_network((p, 56)) for _, p in user.household.v6_prefixes)
    return nets


def _in(ip: str, blocks) -> bool:
    address = ipaddress.ip_address(ip)
    return any(address in block.net for block in blocks)


def test_without_the_flag_the_stream_is_the_default_one(tmp_path):
    config = Config(seed=3, users=30, history_days=20, test_days=10)
    write_events(Generator(config).generate(), tmp_path / "default")
    write_events(Generator(config, variants=False).generate(), tmp_path / "off")
    assert (tmp_path / "default").read_bytes() == (tmp_path / "off").read_bytes()
    assert not any(f'"label":"{v}"' in (tmp_path / "default").read_text() for v in VARIANT_CLASSES)


def test_variants_only_add_lines_and_leave_the_databases_alone(worlds):
    off, generator, on, _ = worlds
    assert [line for line in on if line["label"] not in VARIANT_CLASSES] == off
    plain = Generator(TINY)
    plain.generate()
    # What the GeoIP databases are written from (the files differ only in their build time).
    assert plain.world.proxy_ips == generator.world.proxy_ips
    assert [b.geo_network() for b in plain.world.blocks()] == [
        b.geo_network() for b in generator.world.blocks()
    ]


def test_every_variant_class_has_correct_password_logins_in_the_test_window(worlds):
    _, generator, on, _ = worlds
    target = round(TINY.users * TINY.attacks_per_user / 2)
    times = [_ts(line) for line in on]
    assert times == sorted(times)
    for label in VARIANT_CLASSES:
        lines = [line for line in on if line["label"] == label]
        assert target - 2 <= len(lines) <= target, label  # an infostealer line without a cookie is dropped
        for line in lines:
            assert line["phase"] == "test" and line["password_ok"] and line["second_factor_ok"] is False
            assert _ts(line) >= generator.test_start


def test_v1_replays_the_victims_cookie_from_a_new_24_of_its_isp_in_its_city_with_todays_ua(worlds, asn_of):
    _, generator, on, _ = worlds
    users = {u.name: u for u in generator.users}
    used, nets = _used_cookies(on), _own_nets(on, generator)
    for line in (line for line in on if line["label"] == "V1"):
        victim, ts = users[line["user"]], _ts(line)
        household = victim.household
        assert household.isp is not None
        assert used[line["user"]][line["device_id"]] < ts - DAY  # the victim's cookie, stolen a day before
        assert asn_of(line["ip"]) == household.isp.asn
        assert _in(line["ip"], generator.world.fixed[(household.isp.key, household.city.name)])
        assert ipaddress.ip_network(f"{line['ip']}/24", strict=False) not in nets[line["user"]]
        device = _event_of(generator, line).device
        assert device in victim.devices and device.kind in ("pc", "work_pc")
        assert line["user_agent"] == device.ua(generator._date((ts - generator.t0) // DAY))
        assert line["scenario"] == "own_isp_home_city"


@pytest.mark.parametrize("label", ["V2", "V2b"])
def test_v2_replays_the_victims_cookie_from_its_carriers_cgnat(worlds, asn_of, label):
    _, generator, on, _ = worlds
    users = {u.name: u for u in generator.users}
    used = _used_cookies(on)
    for line in (line for line in on if line["label"] == label):
        victim, ts = users[line["user"]], _ts(line)
        assert used[line["user"]][line["device_id"]] < ts - DAY
        assert ":" not in line["ip"] and asn_of(line["ip"]) == victim.carrier.asn
        assert _in(
            line["ip"],
            [b for (c, _), bs in generator.world.mobile.items() if c == victim.carrier.key for b in bs],
        )
        device = _event_of(generator, line).device
        assert device in victim.devices and device.kind in ("pc", "work_pc")
        day = (ts - generator.t0) // DAY
        if label == "V2b":  # today's UA
            assert line["user_agent"] == device.ua(generator._date(day))
        else:  # the UA of the theft day, 1-40 days ago
            assert line["user_agent"] in {device.ua(generator._date(day - k)) for k in range(1, 42)}


def _victim_cookie_free_and_last_ua(on: list[dict], label: str):
    """Yield each line of ``label`` after checking it presents no cookie of the victim and the UA of the
    victim's latest successful login."""
    legit_ids = {line["device_id"] for line in on if line["label"] in ("legit", "control")}
    last_ua: dict[str, str] = {}
    for line in on:
        if line["label"] == "legit" and line["password_ok"] and line["second_factor_ok"]:
            last_ua[line["user"]] = line["user_agent"]
        elif line["label"] == label:
            assert line["device_id"] is None or line["device_id"] not in legit_ids
            if line["user"] in last_ua:
                assert line["user_agent"] == last_ua[line["user"]]
            yield line


def test_v3_is_a_quiet_login_from_the_victims_carrier_cgnat(worlds, asn_of):
    _, generator, on, _ = worlds
    users = {u.name: u for u in generator.users}
    for line in _victim_cookie_free_and_last_ua(on, "V3"):
        victim = users[line["user"]]
        assert ":" not in line["ip"] and asn_of(line["ip"]) == victim.carrier.asn
        assert _in(
            line["ip"],
            [b for (c, _), bs in generator.world.mobile.items() if c == victim.carrier.key for b in bs],
        )
        assert line["scenario"] == "own_carrier_cgnat"


def test_v4_is_a_quiet_login_from_a_new_56_of_the_victims_isp(worlds, asn_of):
    _, generator, on, _ = worlds
    users = {u.name: u for u in generator.users}
    nets = _own_nets(on, generator)
    everyone = {ipaddress.ip_network((p, 56)) for u in generator.users for _, p in u.household.v6_prefixes}
    seen = set()
    for line in _victim_cookie_free_and_last_ua(on, "V4"):
        household = users[line["user"]].household
        assert household.isp is not None and ":" in line["ip"]
        assert asn_of(line["ip"]) == household.isp.asn
        assert _in(line["ip"], [generator.world.fixed_v6[(household.isp.key, household.city.name)]])
        net = ipaddress.ip_network(f"{line['ip']}/56", strict=False)
        assert net not in nets[line["user"]] and net not in everyone
        expected = "own_isp_v6_home" if household.v6_share else "own_isp_v6_no_v6_home"
        assert line["scenario"] == expected
        seen.add(expected)
    assert seen == {"own_isp_v6_home", "own_isp_v6_no_v6_home"}


def _fake_replay(lines: list[dict]) -> list[dict]:
    """A deterministic stand-in for a replay's output: a score and an action from each line's own content."""
    out = []
    for n, line in enumerate(lines, start=1):
        score = zlib.crc32(f"{line['ip']} {line['user_agent']} {line['label']}".encode()) % 1000 / 10
        action = "deny" if score > 90 else "step_up" if score > 60 else "allow"
        out.append({"line": n, "user": line["user"], "score": score, "action": action, "reasons": []})
    return out


def test_the_scorer_reports_the_variant_classes_beside_unchanged_a_classes_and_friction(worlds):
    off, _, on, _ = worlds
    report_off = score_run(off, _fake_replay(off), seed=TINY.seed, bootstrap=20)
    report_on = score_run(on, _fake_replay(on), seed=TINY.seed, bootstrap=20)
    assert report_on["legit"] == report_off["legit"] and report_on["control"] == report_off["control"]
    assert list(report_on["attacks"]) == [*ATTACK_CLASSES, *VARIANT_CLASSES]
    for label in ATTACK_CLASSES:
        assert report_on["attacks"][label] == report_off["attacks"][label]
    for label in VARIANT_CLASSES:
        assert report_on["attacks"][label]["logins"] > 0
        assert (
            report_on["attacks"][label]["catch"] is not None
            and report_on["attacks"][label]["auc"] is not None
        )
    assert report_on["targets"] == report_off["targets"]


def test_command_flag_adds_the_variants_and_is_off_by_default(tmp_path, capsys):
    args = ["--seed", "2", "--users", "40", "--history-days", "20", "--test-days", "10"]
    args += ["--no-replay", "--bootstrap", "0"]
    assert main([*args, "--out", str(tmp_path / "off")]) == 0
    assert main([*args, "--out", str(tmp_path / "on"), "--variants"]) == 0
    off = json.loads((tmp_path / "off" / "report.json").read_text())
    on = json.loads((tmp_path / "on" / "report.json").read_text())
    assert "variants" not in off["config"] and on["config"]["variants"] == list(VARIANT_CLASSES)
    assert not set(off["systems"]["B0"]["attacks"]) & set(VARIANT_CLASSES)
    assert set(on["systems"]["B0"]["attacks"]) >= set(VARIANT_CLASSES)
    assert "| V2b caught |" in capsys.readouterr().out


def test_changed_lines_compares_the_runs_without_and_with_variants(worlds, tmp_path):
    off, _, on, _ = worlds
    for name, lines in (("off", off), ("on", on)):
        (tmp_path / name).mkdir()
        write_events(lines, tmp_path / name / "events.jsonl")
        write_events(_fake_replay(lines), tmp_path / name / "scored.jsonl")
    assert changed_lines(tmp_path / "off", tmp_path / "on") == (Counter(), Counter())
    scored = _fake_replay(on)
    n = next(i for i, line in enumerate(on) if line["label"] == "legit" and line["phase"] == "test")
    scored[n] = {**scored[n], "score": 100, "action": "deny" if scored[n]["action"] != "deny" else "allow"}
    write_events(scored, tmp_path / "on" / "scored.jsonl")
    changed, actions = changed_lines(tmp_path / "off", tmp_path / "on")
    assert changed == Counter({("legit", "test"): 1}) and sum(actions.values()) == 1
    with pytest.raises(ValueError, match="not"):
        changed_lines(tmp_path / "on", tmp_path / "off")
