"""GeoIP database files under operations (issue 15, item 4): in-place truncation, atomic replacement,
corrupt and missing files, the status function and the system check.

Real databases written by :func:`authguard.testing.write_geoip_databases`; no sleeps (time_machine moves
the recheck clock). The truncation tests run the reader in a subprocess, so a SIGBUS would show as a
killed child instead of killing the test run.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine

from authguard.checks import Codes, check_geoip_files
from authguard.choices import Action
from authguard.conf import DEFAULT_RISK_SIGNALS
from authguard.risk.engine import score_login
from authguard.risk.findings import build_signals
from authguard.risk.geoip import GeoReaders, _cached_lookup, geo_readers, geoip_status, geolocate
from authguard.risk.policy import Thresholds
from authguard.testing import CITY_FILENAME, GeoNetwork, write_geoip_databases

from .factories import T0, ctx, daily, history_of

REPO = Path(__file__).resolve().parents[1]
ADDRESS = "203.0.113.10"  # moves from Tokyo to Osaka between the two versions below
OTHER = "198.51.100.70"


def networks(city: str = "Tokyo") -> list[GeoNetwork]:
    latitude, longitude = (35.69, 139.69) if city == "Tokyo" else (34.69, 135.50)
    return [
        GeoNetwork(
            "203.0.113.0/24",
            country="JP",
            city=city,
            latitude=latitude,
            longitude=longitude,
            time_zone="Asia/Tokyo",
            asn=4713,
            as_org="NTT",
        ),
        GeoNetwork(
            "198.51.100.0/24", country="US", city="Ashburn", latitude=39.0, longitude=-77.5, asn=16509
        ),
        GeoNetwork("192.0.2.0/24", country="SG", city="Singapore", asn=14061, hosting=True),
    ]


@pytest.fixture
def live(settings: Any, tmp_path: Path) -> Path:
    """A live database folder (version 1: the address is in Tokyo) with a private snapshot folder."""
    folder = write_geoip_databases(tmp_path / "live", networks("Tokyo"))
    settings.AUTHGUARD_GEOIP_SNAPSHOT_DIR = str(tmp_path / "snapshots")
    settings.AUTHGUARD_GEOIP_RECHECK_SECONDS = 30
    settings.AUTHGUARD_GEOIP_PATH = str(folder)
    return folder


def replace_atomically(live: Path, source: Path, name: str = CITY_FILENAME) -> None:
    """What a careful updater does: write next to the live file, then rename over it."""
    staged = live / f".{name}.new"
    staged.write_bytes(source.read_bytes())
    os.replace(staged, live / name)


def status_of(kind: str) -> Any:
    return next(s for s in geoip_status() if s.kind == kind)


# -- in-place truncation: the process survives ------------------------------------------------------------

CHILD = textwrap.dedent(
    """
    import json, logging, os, sys
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    import django
    django.setup()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    from django.conf import settings
    folder, snapshots, size, raw = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "raw"
    settings.AUTHGUARD_GEOIP_SNAPSHOT_DIR = snapshots
    city_file = os.path.join(folder, "GeoLite2-City.mmdb")
    if raw:  # the old way: the live file memory-mapped
        import geoip2.database
        reader = geoip2.database.Reader(city_file, mode=0)
        lookup = lambda ip: reader.city(ip).city.name
    else:
        from authguard.risk.context import geolocate
        lookup = lambda ip: geolocate(ip, path=folder).city
    out = {"before": lookup("203.0.113.10")}
    os.truncate(city_file, size)  # in place, as `cp new.mmdb live.mmdb` does first
    out["after"] = lookup("198.51.100.70")  # an address never looked up: the reader walks the tree
    if not raw:
        from authguard.risk.context import GeoReaders, geo_readers
        out["changed"] = geo_readers(folder).refresh()  # the recheck sees the truncated file
        out["after_recheck"] = geolocate("192.0.2.1", path=folder).country
        city = [s for s in geo_readers(folder).status() if s.kind == "city"][0]
        out["status"] = {"ok": city.ok, "serving": city.serving, "error": city.error}
        fresh = GeoReaders(folder)  # a worker starting now: nothing good to fall back on
        out["fresh"] = fresh.lookup("203.0.113.10").city
        out["fresh_asn"] = fresh.lookup("203.0.113.10").asn
    print(json.dumps(out))
    """
)


def run_child(folder: Path, tmp_path: Path, *, size: int, raw: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-c",
            CHILD,
            str(folder),
            str(tmp_path / "snapshots"),
            str(size),
            "raw" if raw else "-",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def test_truncating_the_live_file_kills_a_process_that_maps_it(tmp_path: Path) -> None:
    """The control: the hazard is real here, so the next test would catch a reader that maps the live file."""
    folder = write_geoip_databases(tmp_path / "live", networks())
    child = run_child(folder, tmp_path, size=0, raw=True)
    assert child.returncode == -signal.SIGBUS, (child.returncode, child.stderr[-2000:])


@pytest.mark.parametrize("fraction", [0, 0.5], ids=["emptied", "half-written"])
def test_in_place_truncation_never_kills_the_process(tmp_path: Path, fraction: float) -> None:
    folder = write_geoip_databases(tmp_path / "live", networks())
    size = int((folder / CITY_FILENAME).stat().st_size * fraction)
    child = run_child(folder, tmp_path, size=size)
    assert child.returncode == 0, child.stderr[-3000:]
    out = json.loads(child.stdout.strip().splitlines()[-1])
    # The running process keeps answering from its private copy, before and after the recheck.
    assert (out["before"], out["after"], out["after_recheck"]) == ("Tokyo", "Ashburn", "SG")
    assert out["changed"] is False
    assert out["status"]["ok"] is False and out["status"]["serving"] is True
    assert "cannot be read" in out["status"]["error"]
    assert "keeping the copy loaded at" in child.stderr
    # A process that starts on the truncated file answers "unknown" for the city; the ASN still works.
    assert out["fresh"] is None and out["fresh_asn"] == 4713
    assert "its lookups answer 'unknown'" in child.stderr


# -- atomic replacement: picked up after the recheck interval ---------------------------------------------


def test_atomic_replace_is_picked_up_after_the_recheck_interval(live: Path, tmp_path: Path) -> None:
    osaka = write_geoip_databases(tmp_path / "v2", networks("Osaka"))
    with time_machine.travel(T0, tick=False) as clock:
        assert geolocate(ADDRESS).city == "Tokyo"
        first = status_of("city")
        replace_atomically(live, osaka / CITY_FILENAME)
        assert geolocate(ADDRESS).city == "Tokyo"  # not before the interval: no file system call per lookup
        clock.shift(timedelta(seconds=29))
        assert geolocate(ADDRESS).city == "Tokyo"
        clock.shift(timedelta(seconds=2))
        moved = geolocate(ADDRESS)
        assert (moved.city, moved.latitude) == ("Osaka", pytest.approx(34.69))
        assert geolocate(OTHER).city == "Ashburn"  # the other databases were not disturbed
        second = status_of("city")
    assert second.ok and second.serving and second.loaded_at > first.loaded_at
    # One snapshot per database: the replaced version's copy is gone.
    snapshots = sorted(p.name for p in (tmp_path / "snapshots").iterdir() if p.name.startswith("city-"))
    assert len(snapshots) == 1 and snapshots[0].endswith(f"-{(live / CITY_FILENAME).stat().st_size}.mmdb")


def test_the_process_cache_never_serves_an_answer_of_a_replaced_database(live: Path, tmp_path: Path) -> None:
    osaka = write_geoip_databases(tmp_path / "v2", networks("Osaka"))
    readers = geo_readers()
    assert geolocate(ADDRESS).city == "Tokyo"
    assert _cached_lookup.cache_info().currsize >= 1
    old_version = readers.current
    replace_atomically(live, osaka / CITY_FILENAME)
    assert readers.refresh() is True
    assert readers.current is not old_version and readers.current.number == old_version.number + 1
    assert _cached_lookup.cache_info().currsize == 0  # dropped with the old readers
    assert geolocate(ADDRESS).city == "Osaka"
    assert readers.refresh() is False  # nothing changed since: nothing reloaded


def test_the_clock_going_back_triggers_a_recheck(live: Path, tmp_path: Path) -> None:
    osaka = write_geoip_databases(tmp_path / "v2", networks("Osaka"))
    with time_machine.travel(T0, tick=False) as clock:
        assert geolocate(ADDRESS).city == "Tokyo"
        replace_atomically(live, osaka / CITY_FILENAME)
        clock.move_to(T0 - timedelta(hours=2))  # a clock stepped back must not delay the next check
        assert geolocate(ADDRESS).city == "Osaka"


# -- corrupt and missing files ----------------------------------------------------------------------------


def test_corrupt_replacement_keeps_the_last_good_reader_and_logs_once(
    live: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    garbage = tmp_path / "garbage.mmdb"
    garbage.write_bytes(b"\x00not a maxmind database" * 200)
    readers = geo_readers()
    assert geolocate(ADDRESS).city == "Tokyo"
    caplog.set_level(logging.INFO, logger="authguard.risk.geoip_files")
    replace_atomically(live, garbage)
    assert readers.refresh() is False
    assert geolocate(ADDRESS).city == "Tokyo"  # the last good copy serves
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert str(live / CITY_FILENAME) in errors[0].getMessage()
    assert "keeping the copy loaded at" in errors[0].getMessage()
    status = status_of("city")
    assert (status.ok, status.serving) == (False, True) and "cannot be read" in status.error
    readers.refresh()
    readers.refresh()
    assert len([r for r in caplog.records if r.levelno == logging.ERROR]) == 1  # once per change

    # A database of the wrong type in the City file's place is refused the same way.
    replace_atomically(live, live / "GeoLite2-ASN.mmdb")
    readers.refresh()
    assert "not City" in status_of("city").error and geolocate(ADDRESS).city == "Tokyo"
    # A good file heals it.
    replace_atomically(live, write_geoip_databases(tmp_path / "v2", networks("Osaka")) / CITY_FILENAME)
    assert readers.refresh() is True
    assert status_of("city").ok and geolocate(ADDRESS).city == "Osaka"


def test_corrupt_file_at_start_answers_unknown_and_says_so(
    settings: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = write_geoip_databases(tmp_path / "live", networks())
    data = (folder / CITY_FILENAME).read_bytes()
    (folder / CITY_FILENAME).write_bytes(data[: len(data) // 2])
    settings.AUTHGUARD_GEOIP_SNAPSHOT_DIR = str(tmp_path / "snapshots")
    caplog.set_level(logging.INFO, logger="authguard.risk.geoip_files")
    readers = GeoReaders(str(folder))
    geo = readers.lookup(ADDRESS)
    assert geo.city is None and geo.country is None and geo.asn == 4713
    [error] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "lookups answer 'unknown'" in error.getMessage() and CITY_FILENAME in error.getMessage()
    # The refused file leaves no snapshot behind.
    assert not [p for p in (tmp_path / "snapshots").iterdir() if p.name.startswith("city-")]


def test_deleted_databases_answer_unknown_and_the_risk_engine_steps_up(
    live: Path, caplog: pytest.LogCaptureFixture
) -> None:
    signals = build_signals(DEFAULT_RISK_SIGNALS)
    thresholds = Thresholds(step_up=40, deny=100)
    store = history_of(*(ctx(ip=ADDRESS, at=login.time) for login in daily(20)))
    usual, _ = score_login(
        ctx(ip=ADDRESS, at=T0 + timedelta(days=21)), store, signals=signals, thresholds=thresholds
    )
    assert usual.action == Action.ALLOW and "unknown_network" not in usual.reasons

    caplog.set_level(logging.INFO, logger="authguard.risk.geoip_files")
    for name in os.listdir(live):
        os.unlink(live / name)
    assert geo_readers().refresh() is True
    geo = geolocate(ADDRESS)
    assert (geo.country, geo.city, geo.asn) == (None, None, None)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("GeoIP city database missing" in m and "removed while in use" in m for m in warnings)
    assert all(not s.ok and not s.serving for s in geoip_status())
    blind, _ = score_login(
        ctx(ip=ADDRESS, at=T0 + timedelta(days=21)), store, signals=signals, thresholds=thresholds
    )
    # SECURITY: not knowing where a login comes from is a finding, and it never lowers the score.
    assert "unknown_network" in blind.reasons and blind.score > usual.score


def test_snapshot_folder_writable_by_others_is_refused(settings: Any, tmp_path: Path, caplog: Any) -> None:
    """SECURITY: another local user must not be able to swap the file a worker maps."""
    folder = write_geoip_databases(tmp_path / "live", networks())
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    settings.AUTHGUARD_GEOIP_SNAPSHOT_DIR = str(shared)
    caplog.set_level(logging.WARNING, logger="authguard.risk.geoip_files")
    readers = GeoReaders(str(folder))
    assert readers.lookup(ADDRESS).city == "Tokyo"  # read into memory instead: still right
    assert list(shared.iterdir()) == []
    assert any("writable by other users" in r.getMessage() for r in caplog.records)


# -- status and the system check ----------------------------------------------------------------------------


def test_status_reports_path_load_time_and_build_age(live: Path) -> None:
    with time_machine.travel(T0, tick=False):
        statuses = {s.kind: s for s in geoip_status()}
    assert set(statuses) == {"city", "asn", "anonymous"}
    city = statuses["city"]
    assert city.path == str(live / CITY_FILENAME) and city.ok and city.serving and city.error == ""
    assert city.loaded_at == T0
    assert city.database_type == "GeoLite2-City"
    assert city.built_at is not None and city.age_days is not None and 0 <= city.age_days < 1


def test_status_is_empty_without_a_folder(settings: Any) -> None:
    settings.AUTHGUARD_GEOIP_PATH = None
    assert geoip_status() == []


def check_ids() -> list[str]:
    return [message.id for message in check_geoip_files(None)]


def test_system_check_is_quiet_on_fresh_databases(live: Path) -> None:
    assert check_ids() == []


def test_system_check_warns_on_missing_required_database(live: Path) -> None:
    os.unlink(live / "GeoLite2-ASN.mmdb")
    os.unlink(live / "GeoIP2-Anonymous-IP.mmdb")  # optional: no warning of its own
    geo_readers().refresh()
    messages = check_geoip_files(None)
    assert [m.id for m in messages] == [Codes.GEOIP_DATABASE_MISSING]
    assert "asn" in messages[0].msg


def test_system_check_warns_on_corrupt_database(live: Path, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.mmdb"
    garbage.write_bytes(b"\xff" * 4096)
    geolocate(ADDRESS)
    replace_atomically(live, garbage)
    geo_readers().refresh()
    assert check_ids() == [Codes.GEOIP_DATABASE_UNREADABLE]


def test_system_check_warns_on_databases_older_than_30_days(live: Path) -> None:
    geolocate(ADDRESS)
    with time_machine.travel(timedelta(days=31)):
        ids = check_ids()
    assert ids.count(Codes.GEOIP_DATABASE_STALE) == 3
    with time_machine.travel(timedelta(days=29)):
        assert check_ids() == []


def test_system_check_is_silent_without_a_folder(settings: Any) -> None:
    settings.AUTHGUARD_GEOIP_PATH = None  # the existing W003 says so; nothing more to add
    assert check_ids() == []
