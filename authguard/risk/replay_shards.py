"""The replay sharded by user on a Dask cluster (issue 15): ``authguard replay ... --shards N``.

The output is the one :func:`authguard.risk.replay.replay` writes, line for line, whatever ``N``: the replay
is two passes (:mod:`authguard.risk.replay`), and only the first reads across users.

1. **Prepare** (parallel, chunks of lines): parse and validate each line, look up its place and browser,
   and keep what pass 1 needs (time, user, address, password result, population values).
2. **Pass 1** (this process, in line order, about 50 microseconds a line): velocity counters and population
   folds (:class:`~authguard.risk.replay.CrossUserPass`); each line gets its velocity counts, each fold is
   kept with the line it becomes visible at. It runs on each chunk as soon as it is prepared.
3. **Pass 2** (parallel, one Dask actor per shard of users, ``crc32(user) % N``): each block of lines pass
   1 has counted goes to every shard at once, so pass 2 of a block overlaps pass 1 of the next; a shard
   keeps its users' state between blocks, replays the folds into its own copy of the population counts and
   scores its users' lines in order (:class:`ShardScorer`, :class:`~authguard.risk.replay.UserScorer`).
4. **Merge**: the shards' lines, each shard in line order, merged back into the input's order.

Why Dask (``distributed``) rather than Celery, which authguard already uses: the job is a batch of large
functions whose results come back to the caller to be merged, which is what Dask's futures and actors do
(``submit``, actors that keep a shard's state, ``scatter`` for large arguments), with a local cluster of
processes for one machine and the same code on a real cluster (``--scheduler tcp://host:8786``), no broker
and no result backend. Celery would need both, its results pass through the backend (the shards' lines are
the size of the input), and its workers are the portal's own notification workers.

Workers import authguard and configure Django from ``DJANGO_SETTINGS_MODULE`` (the same settings as the
command: the secret key hashes device ids, the time zone sets the hours); on a real cluster the workers
need the same code, settings module and GeoIP folder path.
"""

from __future__ import annotations

import heapq
import importlib
import importlib.util
import os
import pickle
import time as _time
import zlib
from collections import Counter, deque
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import IO, TYPE_CHECKING, Any, NamedTuple

from authguard.risk.context import ClientInfo, Geo, LoginContext
from authguard.risk.history import MemoryHistory
from authguard.risk.replay import (
    CrossUserPass,
    Policy,
    ReplayError,
    Summary,
    UserScorer,
    context_from_record,
    counts_in_population,
    open_lines,
    open_text,
    parse_line,
)
from authguard.risk.velocity import VelocityCounts

if TYPE_CHECKING:
    from _typeshed import SupportsWrite

#: Lines per preparation task: large enough that a task's overhead (milliseconds) is a small share of it.
CHUNK_LINES = 20_000

NO_DASK = (
    "--shards above 1 and --scheduler need Dask: pip install 'authguard[dask]' "
    '(or "dask[distributed]"); without it, run with --shards 1.'
)


class Prepared(NamedTuple):
    """What pass 1 needs of one line."""

    line: int
    ts: datetime
    user: str
    ip: str
    failed: bool
    counted: bool
    keys: tuple[str, ...]


#: The module a sharded run needs (the ``authguard[dask]`` extra), imported only when one runs.
DASK_MODULE = "distributed"


def dask_available() -> bool:
    """Whether ``distributed`` is installed (the ``authguard[dask]`` extra; without it: --shards 1 only)."""
    return importlib.util.find_spec(DASK_MODULE) is not None


def shard_of(user: str, shards: int) -> int:
    """The shard of a user: stable across processes and runs (Python's ``hash`` of a str is not)."""
    return zlib.crc32(user.encode("utf-8")) % shards


def worker_setup(settings_module: str) -> str:
    """Python run by each worker before any task: configure Django with ``settings_module``.

    Run as text (a Dask preload, or ``client.run(exec, ...)``): the tasks' own module imports the models, so
    Django must be set up before the first task is even unpickled.
    """
    return (
        f"import os, django\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', {settings_module!r})\n"
        "from django.apps import apps\nif not apps.ready:\n    django.setup()\n"
    )


def prepare_chunk(
    first: int, lines: Sequence[str], geoip_path: str | None
) -> tuple[list[Prepared], tuple[int, str] | None]:
    """Parse ``lines`` (numbered from ``first``) into what pass 1 needs.

    A bad line ends the chunk: it comes back as ``(line, message)`` (a :class:`ReplayError` itself does not
    survive pickling) with the lines before it.
    """
    prepared: list[Prepared] = []
    for number, text in enumerate(lines, start=first):
        try:
            if not text.strip():
                raise ReplayError(number, "empty line")
            record = parse_line(number, text)
        except ReplayError as error:
            return prepared, (error.line, str(error))
        ctx = context_from_record(record, geoip_path=geoip_path)
        prepared.append(
            Prepared(
                number,
                record.ts,
                record.user,
                record.ip,
                not record.password_ok,
                counts_in_population(record),
                tuple(ctx.population_value_keys.values()),
            )
        )
    return prepared, None


#: Pass 1 reads only the time, user and address of a login: its place and browser are never looked at.
_NO_GEO = Geo()
_NO_CLIENT = ClientInfo("", "", "", "", "", "other", False)


Velocities = list[list[tuple[int, VelocityCounts]]]
Folds = list[tuple[int, Counter[str]]]


def cross_user_blocks(
    prepared: Iterable[Prepared], *, shards: int, block: int = CHUNK_LINES
) -> Iterator[tuple[Velocities, Folds]]:
    """Pass 1 over every line in order, ``block`` lines at a time: each block's velocity counts grouped by
    the user's shard, and the population folds made in it (each with the line it is visible from).

    Raises :class:`ReplayError` at a line out of time order.
    """
    folds: Folds = []
    cross = CrossUserPass(MemoryHistory(), schedule=folds)
    by_shard: Velocities = [[] for _ in range(shards)]
    previous: datetime | None = None
    count = 0
    for item in prepared:
        if previous is not None and item.ts < previous:
            order = f"out of order: {item.ts.isoformat()} is before {previous.isoformat()}"
            raise ReplayError(item.line, order)
        previous = item.ts
        ctx = LoginContext(item.ts, item.user, item.user, item.ip, _NO_GEO, _NO_CLIENT, None)
        velocity = cross.before(item.line, ctx)
        by_shard[shard_of(item.user, shards)].append((item.line, velocity))
        cross.after(ctx, failed=item.failed, counted=item.counted, keys=item.keys)
        count += 1
        if count % block == 0:
            yield by_shard, list(folds)
            by_shard = [[] for _ in range(shards)]
            folds.clear()
    if count % block or not count:
        yield by_shard, list(folds)


def cross_user_pass(prepared: Iterable[Prepared], *, shards: int, schedule: Folds) -> Velocities:
    """:func:`cross_user_blocks` whole: every line's velocity counts by shard; the folds to ``schedule``."""
    by_shard: Velocities = [[] for _ in range(shards)]
    for velocities, folds in cross_user_blocks(prepared, shards=shards):
        for mine, more in zip(by_shard, velocities, strict=True):
            mine += more
        schedule += folds
    return by_shard


class ShardScorer:
    """Pass 2 for one shard of users, fed block after block in line order (a Dask actor on a cluster)."""

    def __init__(self, policy: Policy, geoip_path: str | None) -> None:
        self.scorer = UserScorer(policy, MemoryHistory(fold_every=0))
        self.geoip_path = geoip_path
        self.population: dict[str, int] = {}
        self.folds: deque[tuple[int, Counter[str]]] = deque()

    def score(
        self, items: Sequence[tuple[int, str, VelocityCounts]], folds: Iterable[tuple[int, Counter[str]]]
    ) -> tuple[list[tuple[int, str]], Counter[str], Counter[str]]:
        """Score ``items`` (``(line, text, velocity)`` of this shard's users, in line order) after the folds
        made up to their lines; returns the output lines with their numbers and the counts of actions and
        reasons. A fold is applied when the first line it is visible from comes, in this block or a later one.
        """
        self.folds.extend(folds)
        population, pending, scorer = self.population, self.folds, self.scorer
        out: list[tuple[int, str]] = []
        actions: Counter[str] = Counter()
        reasons_seen: Counter[str] = Counter()
        for number, text, velocity in items:
            while pending and pending[0][0] <= number:
                for key, times in pending.popleft()[1].items():
                    population[key] = population.get(key, 0) + times
            record = parse_line(number, text)
            ctx = context_from_record(record, geoip_path=self.geoip_path)
            result, action, reasons = scorer.score(record, ctx, velocity, population)
            out.append((number, result))
            actions[action] += 1
            reasons_seen.update(reasons)
        return out, actions, reasons_seen

    def score_packed(self, items: bytes, folds: bytes) -> bytes:
        """:meth:`score` with its arguments and answer pickled once (see :func:`_pack`)."""
        return _pack(self.score(_unpack(items), _unpack(folds)))


def score_shard(
    items: Sequence[tuple[int, str, VelocityCounts]],
    schedule: Sequence[tuple[int, Counter[str]]],
    policy: Policy,
    geoip_path: str | None,
) -> tuple[list[tuple[int, str]], Counter[str], Counter[str]]:
    """Pass 2 for one shard in one go: ``items`` are its users' ``(line, text, velocity)`` in line order."""
    return ShardScorer(policy, geoip_path).score(items, schedule)


def _pack(value: Any) -> bytes:
    """One pickle for a whole list: Dask serialises a list it is handed element by element, which made
    moving a shard's 80,000 lines take longer than scoring them (measured: 25-40 s against 10-18 s)."""
    return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


def _unpack(data: bytes) -> Any:
    # SECURITY: only this job's own client and workers make these pickles; Dask itself moves tasks and
    # results as pickles, so a cluster must only ever be reachable by whom may run code on it.
    return pickle.loads(data)  # noqa: S301


def _prepare_packed(first: int, lines: bytes, geoip_path: str | None) -> bytes:
    return _pack(prepare_chunk(first, _unpack(lines), geoip_path))


def _chunks(lines: Iterable[str], size: int) -> Iterator[tuple[int, list[str]]]:
    chunk: list[str] = []
    first = 1
    for text in lines:
        chunk.append(text)
        if len(chunk) == size:
            yield first, chunk
            first += size
            chunk = []
    if chunk:
        yield first, chunk


def replay_sharded(
    lines: Iterable[str],
    output: SupportsWrite[str],
    *,
    shards: int,
    scheduler: str | None = None,
    geoip_path: str | None = None,
    policy: Policy | None = None,
    progress: IO[str] | None = None,
) -> Summary:
    """:func:`authguard.risk.replay.replay` on a Dask cluster, ``shards`` shards of users; the same output.

    ``scheduler``: the address of a running Dask scheduler; by default a local cluster of ``shards``
    single-threaded worker processes is started and stopped. Unlike the streaming replay, every line is
    validated before any is written: a bad line raises :class:`ReplayError` with nothing written.
    """
    if not dask_available():
        raise RuntimeError(NO_DASK)
    if shards < 1:
        raise ValueError("shards must be at least 1")
    policy = policy or Policy.current()
    settings_module = os.environ.get("DJANGO_SETTINGS_MODULE")
    if not settings_module:
        raise RuntimeError("the workers configure Django from DJANGO_SETTINGS_MODULE, which is not set")
    setup = worker_setup(settings_module)
    started = _time.monotonic()

    def say(message: str) -> None:
        if progress is not None:
            progress.write(f"[{_time.monotonic() - started:6.1f} s] {message}\n")
            progress.flush()

    # Loaded here, not at import: every `manage.py authguard` subcommand imports this module, and Dask takes
    # half a second to load.
    distributed = importlib.import_module(DASK_MODULE)

    texts = list(lines)
    cluster = None
    if scheduler:
        client = distributed.Client(scheduler)
        client.run(exec, setup, {})  # the workers already running; new ones need the same --preload
    else:
        cluster = distributed.LocalCluster(
            n_workers=shards,
            threads_per_worker=1,
            processes=True,  # one interpreter per shard: scoring is pure Python and holds the GIL
            dashboard_address=None,
            preload=[setup],
        )
        client = distributed.Client(cluster)
    try:
        say(f"{len(texts):,} lines; {shards} shards on {scheduler or 'a local cluster'}")
        futures = []
        for first, chunk in _chunks(texts, CHUNK_LINES):
            [data] = client.scatter([_pack(chunk)])  # scattered, not in the task graph: it is megabytes
            futures.append(client.submit(_prepare_packed, first, data, geoip_path, pure=False))

        def prepared() -> Iterator[Prepared]:
            # In line order, so the first bad line is the one reported; pass 1 runs on each chunk as soon
            # as it is back, while the workers prepare the next ones.
            for future in futures:
                part, error = _unpack(future.result())
                yield from part
                if error is not None:
                    raise ReplayError(*error)

        # One actor per shard, on distinct workers where there are enough: each keeps its users' state
        # between blocks, so pass 2 of a block runs while pass 1 counts the next one.
        workers = sorted(client.scheduler_info()["workers"])
        actors = [
            client.submit(ShardScorer, policy, geoip_path, actor=True, workers=[workers[k % len(workers)]])
            for k in range(shards)
        ]
        scorers = [actor.result() for actor in actors]
        pending: list[Any] = [None] * shards
        results: list[list[tuple[int, str]]] = [[] for _ in range(shards)]
        summary = Summary()

        def collect(shard: int) -> None:
            if pending[shard] is not None:
                out, actions, reasons = _unpack(pending[shard].result())
                results[shard] += out
                summary.actions.update(actions)
                summary.reasons.update(reasons)
                pending[shard] = None

        done = 0
        for velocities, folds in cross_user_blocks(prepared(), shards=shards):
            packed_folds = _pack(folds)
            for shard, items in enumerate(velocities):
                collect(shard)  # the shard's previous block first: its blocks must arrive in line order
                payload = _pack([(number, texts[number - 1], velocity) for number, velocity in items])
                pending[shard] = scorers[shard].score_packed(payload, packed_folds)
            done += sum(len(items) for items in velocities)
            say(f"pass 1 (velocity and population, across users): {done:,} lines; pass 2 follows")
        for shard in range(shards):
            collect(shard)
            say(
                f"pass 2 (each user's logins): shard {shard + 1}/{shards} scored "
                f"({len(results[shard]):,} lines)"
            )
        for _number, text in heapq.merge(*results):
            output.write(text)
        summary.lines = len(texts)
        summary.seconds = _time.monotonic() - started
        say("merged in input order")
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return summary


def replay_file_sharded(input_path: str, output_path: str, **kwargs: Any) -> Summary:
    """:func:`replay_sharded` between two files (``-`` reads stdin or writes stdout)."""
    if not dask_available():
        raise RuntimeError(NO_DASK)
    with open_lines(input_path) as source:
        texts = list(source)  # lines as the streaming replay reads them (a JSON string may hold U+2028)
    with open_text(output_path, "w") as target:
        return replay_sharded(texts, target, **kwargs)


__all__ = [
    "CHUNK_LINES",
    "NO_DASK",
    "dask_available",
    "replay_file_sharded",
    "replay_sharded",
    "shard_of",
]
