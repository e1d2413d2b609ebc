"""``manage.py build_demo_geoip [--path DIR]``: write the demo's MaxMind-format GeoIP databases."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from authguard.conf import app_settings
from authguard.testing import ANONYMOUS_FILENAME, ASN_FILENAME, CITY_FILENAME, write_geoip_databases
from demo_site.brokerage.geoip_plan import PLAN, UNKNOWN_SAMPLE_IP, geo_networks


class Command(BaseCommand):
    help = (
        "Write City, ASN and Anonymous-IP databases for the demo IP ranges (documentation ranges only) "
        "into --path, by default AUTHGUARD_GEOIP_PATH."
    )
    # It creates what check authguard.W001 looks for, so it must not warn about its absence first.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--path", help="Folder to write to (default: AUTHGUARD_GEOIP_PATH).")

    def handle(self, *args: Any, path: str | None = None, **options: Any) -> None:
        folder = path or app_settings.GEOIP_PATH
        if not folder:
            raise CommandError("No folder to write to: pass --path DIR or set AUTHGUARD_GEOIP_PATH.")
        try:
            written = write_geoip_databases(folder, geo_networks())
        except OSError as error:
            raise CommandError(f"Could not write the GeoIP databases to {folder}: {error}") from error
        self.stdout.write(
            self.style.SUCCESS(f"Wrote {CITY_FILENAME}, {ASN_FILENAME} and {ANONYMOUS_FILENAME} to {written}")
        )
        for network in PLAN:
            self.stdout.write(f"  {network.geo.network:<20} e.g. {network.sample_ip:<18} {network.label}")
        self.stdout.write(f"  {'(unknown)':<20} e.g. {UNKNOWN_SAMPLE_IP:<18} in no database")
