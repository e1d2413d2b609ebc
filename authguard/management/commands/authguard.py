"""``python manage.py authguard <subcommand>``: authguard's operator tools.

* ``replay INPUT.jsonl --output OUT.jsonl [--geoip-path DIR] [--policy POLICY.json]``: backtest a policy
  on past logins (CONTRACTS section 5). Nothing is read from or written to the configured database.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ...conf import app_settings
from ...replay import Policy, ReplayError, replay_file


class Command(BaseCommand):
    help = "authguard operator tools (see `authguard replay --help`)."
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

    def handle(self, *args: Any, **options: Any) -> None:
        if options["subcommand"] == "replay":
            self.replay(**options)

    def replay(self, **options: Any) -> None:
        policy = Policy.current()
        if options["policy"]:
            try:
                with open(options["policy"], encoding="utf-8") as fh:
                    policy = Policy.from_json(json.load(fh))
            except (OSError, ValueError) as exc:
                raise CommandError(f"cannot use policy {options['policy']}: {exc}") from None
        geoip_path = options["geoip_path"] or app_settings.GEOIP_PATH
        progress = None if options["quiet"] else self.stderr._out
        try:
            summary = replay_file(
                options["input"], options["output"], geoip_path=geoip_path, policy=policy, progress=progress
            )
        except ReplayError as exc:
            raise CommandError(str(exc)) from None
        except OSError as exc:
            raise CommandError(str(exc)) from None
        if not options["quiet"]:
            self.stderr.write(summary.render())
