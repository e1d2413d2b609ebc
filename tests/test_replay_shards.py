"""`authguard replay --shards N` (issue 15): users scored in shards on Dask, the same lines as one process."""

from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from authguard.risk import replay_shards
from authguard.risk.history import MemoryHistory
from authguard.risk.replay import Policy, replay
from authguard.risk.replay_shards import (
    NO_DASK,
    cross_user_pass,
    dask_available,
    prepare_chunk,
    score_shard,
    shard_of,
)
from bench.detection.generator import Config, Generator, write_events

needs_dask = pytest.mark.skipif(not dask_available(), reason="needs the authguard[dask] extra")

CONTRACT_KEYS = ("ts", "user", "ip", "user_agent", "device_id", "password_ok", "second_factor_ok")


@pytest.fixture(scope="module")
def benchmark(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A small detection benchmark (python -m bench.detection's generator): its events and GeoIP folder."""
    folder = tmp_path_factory.mktemp("bench")
    generator = Generator(Config(seed=7, users=250, history_days=45, test_days=15))
    write_events(generator.generate(), folder / "events.jsonl")
    generator.world.write_databases(folder / "geoip", anonymous=True)
    return folder / "events.jsonl", folder / "geoip"


def run_replay(events: Path, geoip: Path, out: Path, *extra: str) -> tuple[str, str]:
    """``manage.py authguard replay``; returns the output file's text and what went to stderr."""
    stderr = io.StringIO()
    call_command(
        "authguard",
        "replay",
        str(events),
        "--output",
        str(out),
        "--geoip-path",
        str(geoip),
        *extra,
        stderr=stderr,
    )
    return out.read_text(), stderr.getvalue()


def sharded_in_process(lines: list[str], geoip: Path, shards: int) -> str:
    """The sharded computation without Dask: prepare, pass 1, each shard's pass 2, merge."""
    prepared, error = prepare_chunk(1, lines, str(geoip))
    assert error is None
    schedule: list[tuple[int, Counter[str]]] = []
    by_shard = cross_user_pass(prepared, shards=shards, schedule=schedule)
    merged: list[tuple[int, str]] = []
    for items in by_shard:
        out, _actions, _reasons = score_shard(
            [(number, lines[number - 1], velocity) for number, velocity in items],
            schedule,
            Policy.current(),
            str(geoip),
        )
        merged += out
    return "".join(text for _number, text in sorted(merged))


def streaming(lines: list[str], geoip: Path) -> str:
    out = io.StringIO()
    replay(lines, out, geoip_path=str(geoip))
    return out.getvalue()


@pytest.mark.parametrize("fold_seconds", [0, 900])
def test_any_split_of_the_users_scores_every_line_as_the_streaming_replay(benchmark, settings, fold_seconds):
    settings.AUTHGUARD_POPULATION_FOLD_SECONDS = fold_seconds
    events, geoip = benchmark
    lines = events.read_text().splitlines(keepends=True)
    expected = streaming(lines, geoip)
    assert len(expected.splitlines()) == len(lines)
    for shards in (1, 3, 7):
        assert sharded_in_process(lines, geoip, shards) == expected


def test_the_naive_split_differs_so_the_cross_user_pass_is_what_makes_shards_equal(benchmark):
    """Each shard replayed on its own (no pass over the whole stream) loses the other users' velocity and
    population: the equality above would fail without pass 1."""
    events, geoip = benchmark
    lines = events.read_text().splitlines(keepends=True)
    expected = {json.loads(x)["line"]: json.loads(x) for x in streaming(lines, geoip).splitlines()}
    naive: dict[int, dict] = {}
    for shard in range(2):
        numbers = [n for n, text in enumerate(lines, 1) if shard_of(json.loads(text)["user"], 2) == shard]
        out = io.StringIO()
        replay([lines[n - 1] for n in numbers], out, geoip_path=str(geoip))
        for number, result in zip(numbers, out.getvalue().splitlines(), strict=True):
            naive[number] = json.loads(result)
    differing = [
        n
        for n in expected
        if (naive[n]["score"], naive[n]["action"])
        != (
            expected[n]["score"],
            expected[n]["action"],
        )
    ]
    assert differing


@needs_dask
def test_shards_2_equals_shards_1_on_the_detection_benchmark(benchmark, tmp_path):
    events, geoip = benchmark
    one, _ = run_replay(events, geoip, tmp_path / "one.jsonl", "--shards", "1")
    two, progress = run_replay(events, geoip, tmp_path / "two.jsonl", "--shards", "2")
    assert two == one
    results = [json.loads(x) for x in one.splitlines()]
    assert [r["line"] for r in results] == list(range(1, len(events.read_text().splitlines()) + 1))
    actions = Counter(r["action"] for r in results)
    assert actions["allow"] and actions["step_up"]  # a real mix of decisions, not all-equal lines
    # Progress of each stage on stderr, then the summary.
    assert "pass 1 (velocity and population, across users)" in progress
    assert "shard 2/2 scored" in progress
    assert f"{len(results)} logins scored" in progress


@pytest.fixture(scope="module")
def cluster() -> object:
    """A running Dask cluster whose workers know nothing of Django yet, as an operator's cluster."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as running:
        yield running


@needs_dask
def test_scheduler_points_the_same_job_at_a_running_cluster(benchmark, tmp_path, cluster):
    events, geoip = benchmark
    lines = events.read_text().splitlines(keepends=True)
    out, progress = run_replay(
        events, geoip, tmp_path / "cluster.jsonl", "--shards", "3", "--scheduler", cluster.scheduler_address
    )
    assert out == streaming(lines, geoip)
    assert cluster.scheduler_address in progress and "shard 3/3 scored" in progress


@needs_dask
def test_a_bad_line_stops_the_sharded_run_with_its_number_and_writes_nothing(tmp_path, cluster, geoip_dir):
    good = {
        k: v
        for k, v in zip(
            CONTRACT_KEYS,
            ("2026-04-01T09:00:00+09:00", "alice", "192.0.2.1", "UA", None, True, None),
            strict=True,
        )
    }
    later = {**good, "ts": "2026-04-01T08:00:00+09:00"}
    for rows, message in (
        ([good, good, "not json", good], "line 3: not valid JSON"),
        ([good, good, later], "line 3: out of order"),
    ):
        source = tmp_path / "in.jsonl"
        source.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
        out = tmp_path / "out.jsonl"
        with pytest.raises(CommandError, match=message):
            run_replay(source, geoip_dir, out, "--scheduler", cluster.scheduler_address, "--quiet")
        assert out.read_text() == ""


def test_without_dask_only_one_shard_runs(benchmark, tmp_path, monkeypatch):
    monkeypatch.setattr(replay_shards, "DASK_MODULE", "authguard_test_no_such_module")
    events, geoip = benchmark
    with pytest.raises(CommandError) as refused:
        run_replay(events, geoip, tmp_path / "two.jsonl", "--shards", "2")
    assert str(refused.value) == NO_DASK and "authguard[dask]" in NO_DASK
    with pytest.raises(CommandError, match="need Dask"):
        run_replay(events, geoip, tmp_path / "remote.jsonl", "--scheduler", "tcp://127.0.0.1:1")
    out, _ = run_replay(events, geoip, tmp_path / "one.jsonl", "--shards", "1", "--quiet")
    assert len(out.splitlines()) == len(events.read_text().splitlines())


@pytest.mark.parametrize("shards", ["0", "-2"])
def test_shards_must_be_positive(benchmark, tmp_path, shards):
    events, geoip = benchmark
    with pytest.raises(CommandError, match="--shards must be a positive integer"):
        run_replay(events, geoip, tmp_path / "o.jsonl", "--shards", shards)


def test_population_counts_come_from_the_log_not_from_decisions(geoip_dir):
    """A right password whose second factor did not fail counts in the population whatever the decision,
    so every shard sees the same counts; a failed second factor or a wrong password never counts."""
    base = dict(
        zip(CONTRACT_KEYS, ("", "", "192.0.2.1", "Mozilla/5.0 Firefox/131.0", "d", True, None), strict=True)
    )
    rows = [
        {**base, "ts": "2026-04-01T09:00:00+09:00", "user": "a", "second_factor_ok": False},
        {**base, "ts": "2026-04-01T09:00:01+09:00", "user": "b", "password_ok": False},
        {**base, "ts": "2026-04-01T09:00:02+09:00", "user": "c"},  # a stranger's first login: stepped up
        {**base, "ts": "2026-04-01T09:00:03+09:00", "user": "c", "second_factor_ok": True},
    ]
    history = MemoryHistory(fold_every=0)
    out = io.StringIO()
    replay([json.dumps(r) for r in rows], out, geoip_path=str(geoip_dir), history=history)
    history.fold()
    assert history.population["#users"] == 1  # c alone: a and b never got in
    assert history.population["ip:192.0.2.1"] == 2
    assert set(history.profiles) <= {"c"}


@pytest.mark.parametrize("fold_seconds", [0, 900])
def test_a_replay_continued_on_its_store_scores_every_line_as_one_replay(benchmark, settings, fold_seconds):
    """What an import followed by enforcement relies on (bench.detection.firstday's day-180 run): the store
    carries everything a later login reads, the users already counted in ``#users`` included."""
    settings.AUTHGUARD_POPULATION_FOLD_SECONDS = fold_seconds
    events, geoip = benchmark
    lines = events.read_text().splitlines(keepends=True)
    whole = [json.loads(text) for text in streaming(lines, geoip).splitlines()]
    half = len(lines) // 2
    history = MemoryHistory()
    first, second = io.StringIO(), io.StringIO()
    replay(lines[:half], first, geoip_path=str(geoip), history=history)
    assert history.counted_users and history.profiles
    replay(lines[half:], second, geoip_path=str(geoip), history=history)
    continued = [json.loads(text) for text in (first.getvalue() + second.getvalue()).splitlines()]
    assert len(continued) == len(whole) == len(lines)
    assert [(o["user"], o["score"], o["action"], o["reasons"]) for o in continued] == [
        (o["user"], o["score"], o["action"], o["reasons"]) for o in whole
    ]
