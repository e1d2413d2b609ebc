"""Red team, round twenty-five (d): a user agent whose version is hundreds of digits long.

``authguard.risk.useragent`` keeps up to 512 characters of the header, and ``user-agents`` reads any run of
digits as a version: "Android 999...9" (380 nines) parses as Chrome Mobile on "Android 999...9". The
profile's population values (``authguard.risk.profile.client_feature_values``) are ``f"{os} {version}"``,
uncut, so a learned sign-in appends the population key ``os:Android 999...9`` of 391 characters to
``PopulationDelta.key`` / ``PopulationCount.key``, both ``CharField(max_length=255)``. SQLite stores it
anyway; PostgreSQL (the production database, CONTRACTS section 1) refuses a value longer than
``varchar(255)``, so the learning write of that sign-in fails, and an ``import-history`` whose old log holds
one such line fails as a whole. Every key written must fit its column (the LoginEvent columns are cut
already: ``authguard.login.events.record_event``).
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from authguard.models import LoginEvent, PopulationCount
from authguard.models.population import PopulationDelta
from authguard.risk.import_history import import_history

from .conftest import IP_TOKYO

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]

#: 495 characters: under the 512 kept, a browser and OS the parser names, the OS version 380 digits long.
LONG_VERSION_UA = (
    "Mozilla/5.0 (Linux; Android "
    + "9" * 380
    + "; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36"
)


def _keys_over_column() -> list[str]:
    limit_counts = int(PopulationCount._meta.get_field("key").max_length or 0)
    limit_deltas = int(PopulationDelta._meta.get_field("key").max_length or 0)
    over = [k for k in PopulationCount.objects.values_list("key", flat=True) if len(k) > limit_counts]
    over += [k for k in PopulationDelta.objects.values_list("key", flat=True) if len(k) > limit_deltas]
    return [f"{key[:30]}... ({len(key)} characters)" for key in over]


def test_a_learned_sign_in_with_a_long_version_writes_population_keys_that_fit_their_column(
    user_factory: Any,
) -> None:
    """The gang's own new account at the portal signs in with the crafted user agent: its first sign-in is
    allowed (``no_history`` alone) and learned, the second too. The population keys it appends must fit
    ``varchar(255)``."""
    user_factory("mallory")
    browser = Client(REMOTE_ADDR=IP_TOKYO, HTTP_USER_AGENT=LONG_VERSION_UA)
    for _ in range(2):
        browser.get("/login/")
        signed_in: Any = browser.post("/login/", {"username": "mallory", "password": "correct horse battery"})
        assert signed_in.status_code == 302 and signed_in.url == "/"
        assert LoginEvent.objects.latest("pk").action == "allow"
        browser.post("/logout/")
    assert PopulationCount.objects.exists()
    assert not _keys_over_column()


def test_an_import_whose_old_log_holds_a_long_version_writes_population_keys_that_fit_their_column(
    user_factory: Any, geoip: Any
) -> None:
    """On the install day the portal imports its old sign-in log (docs/benchmarks-detection.md, "The first
    day"). One of the gang's accounts signed in before the install with the crafted user agent: a valid line.
    The import must still write only keys its columns hold (on PostgreSQL the whole import fails
    otherwise, and every customer's first day is a stranger's)."""
    user_factory("alice")
    user_factory("mallory")
    start = timezone.now() - timedelta(days=30)
    rows = []
    for day in range(3):
        for user, agent in (
            ("alice", "Mozilla/5.0 (Windows NT 10.0; Win64; x64)"),
            ("mallory", LONG_VERSION_UA),
        ):
            rows.append(
                json.dumps(
                    {
                        "ts": (start + timedelta(days=day)).isoformat(),
                        "user": user,
                        "ip": IP_TOKYO,
                        "user_agent": agent,
                        "device_id": f"portal-device-{user}-0001",
                        "password_ok": True,
                        "second_factor_ok": None,
                    }
                )
            )
    summary = import_history(rows, geoip_path=str(geoip))
    assert summary.imported_profiles == 2
    assert not _keys_over_column()


def test_the_key_length_is_the_columns_own() -> None:
    """``POPULATION_KEY_LENGTH`` repeats the columns' length (the risk core does not import models): both
    columns must say the same, or a key cut to the constant would still not fit."""
    from authguard.risk.context import POPULATION_KEY_LENGTH

    lengths = {model._meta.get_field("key").max_length for model in (PopulationCount, PopulationDelta)}
    assert lengths == {POPULATION_KEY_LENGTH}
