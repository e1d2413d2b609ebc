"""``python manage.py authguard <subcommand>``: authguard's operator tools.

* ``replay INPUT.jsonl --output OUT.jsonl [--geoip-path DIR] [--policy POLICY.json] [--shards N]
  [--scheduler ADDRESS]``: backtest a policy on past logins (CONTRACTS section 5). Nothing is read from or
  written to the configured database. ``--shards N`` splits the users over a Dask cluster (a local one, or
  the scheduler at ``ADDRESS``) with the same output (:mod:`authguard.risk.replay_shards`).
* ``prune [--dry-run] [--batch N] [--only WHAT ...] [--population-days N]``: delete what retention allows
  (stale session records, dead population rows, login events and notifications past
  ``AUTHGUARD_EVENT_RETENTION_DAYS``); ``--dry-run`` counts without deleting (:mod:`authguard.retention`).
* ``import-history INPUT.jsonl [--geoip-path DIR] [--replace] [--dry-run]``: learn the accounts' profiles
  from the portal's old sign-in log (the replay's format) before enforcing
  (:mod:`authguard.risk.import_history`).
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from authguard import retention
from authguard.conf import app_settings
from authguard.risk.import_history import import_history
from authguard.risk.replay import Policy, ReplayError, open_lines, replay_file
from authguard.risk.replay_shards import NO_DASK, dask_available, replay_file_sharded

#: ``--only`` choices -> the :mod:`authguard.retention` function, in the order they run.
PRUNERS = {
    "sessions": "prune_session_records",
    "population": "prune_population",
    "events": "prune_login_events",
    "notifications": "prune_notifications",
}


class Command(BaseCommand):
    help = (
        "authguard operator tools (see `authguard replay --help`, `authguard prune --help`, "
        "`authguard import-history --help`)."
    )
    # The replay must not depend on the database being reachable or migrated.
    requires_migrations_checks = False
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="subcommand", required=True, parser_class=type(parser))
        rp = sub.add_parser(
            "replay", help="Score a JSONL file of past logins with the current or a proposed policy."
        )
        rp.add_argument("input", help="JSONL input, one login per line, sorted by time ('-' for stdin).")
        rp.add_argument(
            "--output", required=True, help="JSONL output, one result per input line ('-' for stdout)."
        )
        rp.add_argument(
            "--geoip-path", default=None, help="Folder of MaxMind databases (default: AUTHGUARD_GEOIP_PATH)."
        )
        rp.add_argument("--policy", default=None, help='JSON file: {"thresholds": {...}, "signals": [...]}.')
        rp.add_argument("--quiet", action="store_true", help="No progress and no summary on stderr.")
        rp.add_argument(
            "--shards",
            type=int,
            default=1,
            help="Score the users in N shards in parallel on Dask (same output; default 1: no Dask).",
        )
        rp.add_argument(
            "--scheduler",
            default=None,
            help="A running Dask scheduler (tcp://host:8786); default: a local cluster of N workers.",
        )
        pp = sub.add_parser("prune", help="Delete what retention allows; --dry-run counts without deleting.")
        pp.add_argument("--dry-run", action="store_true", help="Count what would be deleted; delete nothing.")
        pp.add_argument("--batch", type=int, default=5000, help="Rows per statement (default 5000).")
        pp.add_argument(
            "--only",
            action="append",
            choices=sorted(PRUNERS),
            help="Prune only this table (repeatable; default: all).",
        )
        pp.add_argument(
            "--population-days",
            type=int,
            default=None,
            help="Age population counts out after N days (reported as not possible yet: no last-seen time).",
        )

        ip = sub.add_parser(
            "import-history",
            help="Learn profiles from the portal's old sign-in log (replay format) before enforcing.",
        )
        ip.add_argument("input", help="JSONL input in the replay's format, sorted by time ('-' for stdin).")
        ip.add_argument(
            "--geoip-path", default=None, help="Folder of MaxMind databases (default: AUTHGUARD_GEOIP_PATH)."
        )
        ip.add_argument("--replace", action="store_true", help="Overwrite profiles that already exist.")
        ip.add_argument("--dry-run", action="store_true", help="Score and count; write nothing.")
        ip.add_argument("--quiet", action="store_true", help="No progress on stderr.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["subcommand"] == "replay":
            self.replay(**options)
        elif options["subcommand"] == "prune":
            self.prune(**options)
        elif options["subcommand"] == "import-history":
            self.import_history(**options)

    def import_history(self, **options: Any) -> None:
        geoip_path = options["geoip_path"] or app_settings.GEOIP_PATH
        progress = None if options["quiet"] else self.stderr._out
        try:
            with open_lines(options["input"]) as source:
                summary = import_history(
                    source,
                    geoip_path=geoip_path,
                    replace=options["replace"],
                    dry_run=options["dry_run"],
                    # django-stubs types OutputWrapper._out as a callable; it is the wrapped stream.
                    progress=progress,  # type: ignore[arg-type]
                )
        except OSError as exc:
            raise CommandError(str(exc)) from None
        except ReplayError as exc:
            raise CommandError(f"{exc} (nothing was imported)") from None
        self.stdout.write(summary.render())

    def prune(self, **options: Any) -> None:

        if options["batch"] < 1:
            raise CommandError("--batch must be a positive integer.")
        if options["population_days"] is not None and options["population_days"] < 1:
            raise CommandError("--population-days must be a positive integer.")
        dry_run, batch = options["dry_run"], options["batch"]
        results = []
        for name in options["only"] or list(PRUNERS):
            if name == "population":
                results.append(
                    retention.prune_population(options["population_days"], batch=batch, dry_run=dry_run)
                )
            else:
                results.append(getattr(retention, PRUNERS[name])(batch=batch, dry_run=dry_run))
        for result in results:
            self.stdout.write(result.render())

    def replay(self, **options: Any) -> None:
        policy = Policy.current()
        if options["policy"]:
            try:
                with open(options["policy"], encoding="utf-8") as fh:
                    policy = Policy.from_json(json.load(fh))
            except RecursionError:
                raise CommandError(f"cannot use policy {options['policy']}: JSON nested too deeply") from None
            except (OSError, ValueError) as exc:
                raise CommandError(f"cannot use policy {options['policy']}: {exc}") from None
        geoip_path = options["geoip_path"] or app_settings.GEOIP_PATH
        progress = None if options["quiet"] else self.stderr._out
        shards, scheduler = options["shards"], options["scheduler"]
        if shards < 1:
            raise CommandError("--shards must be a positive integer.")
        if (shards > 1 or scheduler) and not dask_available():
            raise CommandError(NO_DASK)
        common = {"geoip_path": geoip_path, "policy": policy, "progress": progress}
        try:
            if shards > 1 or scheduler:
                summary = replay_file_sharded(
                    options["input"], options["output"], shards=shards, scheduler=scheduler, **common
                )
            else:
                summary = replay_file(options["input"], options["output"], **common)
        except ReplayError as exc:
            raise CommandError(str(exc)) from None
        except OSError as exc:
            raise CommandError(str(exc)) from None
        if not options["quiet"]:
            self.stderr.write(summary.render())
