"""Red team round forty-eight: the round-47 re-score travel fix (sessions.rescoring._SeenHistory /
_seen_places) against a copy of her live cookie jar (infostealer: session, device and CSRF cookies), and
her own ordinary mid-session moves. Real middleware, real risk engine, GeoIP test databases.

Fixed: the re-score measures travel from the session's last precise, non-anonymous place and when it was
last seen there (``places.known_seen``; since round fifty-two the one of its places that gives the travel
rule the most points), whatever address came between.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine

from authguard.testing import GeoNetwork, write_geoip_databases

from .conftest import IP_DOCOMO, IP_OSAKA, IP_SG_VPS, IP_TOKYO, TEST_NETWORKS
from .test_private_answers_cache_page_walkarounds import _copy, _her_session, _thief_with
from .test_sessions_binding_anchor import START, _jar, _signed_in_after, rt_geoip, rt_geoip_dir  # noqa: F401
from .test_sessions_binding_anchor import hanako as binding_hanako  # noqa: F401

#: A cloud VM in Tokyo (AWS ap-northeast-1: AMAZON-02, a hosting network): rented by anyone for cents.
AWS_TOKYO = "203.0.99.9"
UNPLACED = "8.8.8.8"  # an address the GeoIP databases cannot place (no country, no coordinates)


@pytest.fixture(scope="session")
def cloud_geoip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tokyo_vm = GeoNetwork(
        "203.0.99.0/24",
        country="JP",
        city="Tokyo",
        latitude=35.6895,
        longitude=139.6917,
        accuracy_km=10,
        time_zone="Asia/Tokyo",
        asn=16509,
        as_org="AMAZON-02",
        hosting=True,
    )
    return write_geoip_databases(tmp_path_factory.mktemp("rt48a"), [*TEST_NETWORKS, tokyo_vm])


@pytest.fixture
def cloud_geoip(settings: Any, cloud_geoip_dir: Path) -> Path:
    settings.AUTHGUARD_GEOIP_PATH = str(cloud_geoip_dir)
    return cloud_geoip_dir


def _copy_hops(hanako: Any, totp_factory: Any, clock: Any, *, hours: int, hop: str) -> tuple[int, int, Any]:
    """hanako signs in at home in Tokyo (password + TOTP), calls every 50 minutes for ``hours``; a minute
    after her last call the copy calls from ``hop``, and a minute later from the Singapore VPS."""
    her = _her_session(hanako, totp_factory)
    for _ in range(hours * 60 // 50):
        clock.shift(50 * 60)
        assert her.client.get("/api/portfolio").status_code == 200
    thief = _thief_with(_copy(her.client.cookies))
    clock.shift(60)
    first = thief.get("/api/portfolio", REMOTE_ADDR=hop).status_code
    clock.shift(60)
    answer = thief.get("/api/portfolio", REMOTE_ADDR=IP_SG_VPS)
    return first, answer.status_code, (dict(thief.session).get("_authguard") or {}).get("s")


@pytest.mark.django_db
def test_a_copy_that_first_calls_from_a_tokyo_cloud_vm_reads_her_portfolio_from_singapore_an_hour_in(
    hanako: Any, totp_factory: Any, clock: Any, cloud_geoip: Path
) -> None:
    """Secure: a copy of her live jar replayed from Singapore a minute after her call from Tokyo is held
    at step-up (impossible_travel), however it got there.

    Stolen cookie jar only. One hour into her session the copy calls once from a Tokyo cloud VM (same city,
    her device cookie: allowed, the session rebound there with ``x``, anonymous). A minute later it calls
    from Singapore: _last_seen_at hands the re-score "last seen: Tokyo, anon=True", _SeenHistory overwrites
    her real last sign-in with it, and ImpossibleTravel never starts from an anonymous place: no travel
    check at all. Served (before round 47 the same pair was held: travel from her sign-in)."""
    first, answer, state = _copy_hops(hanako, totp_factory, clock, hours=1, hop=AWS_TOKYO)
    assert first == 200  # the hop itself
    assert answer != 200, (answer, state)


@pytest.mark.django_db
@pytest.mark.usefixtures("geoip")
def test_a_copy_that_first_calls_from_an_unplaced_address_is_measured_from_her_sign_in_again(
    hanako: Any, totp_factory: Any, clock: Any
) -> None:
    """Secure: the round-47 fix holds once the session passed through an address GeoIP cannot place.

    Stolen cookie jar only. Seven hours in, a minute after her Tokyo call, the copy calls once from an
    unplaced address (allowed: unverifiable_travel +15 only), then from Singapore. The bound place is now
    None, _last_seen_at returns None, and travel is measured from her sign-in seven hours ago again:
    'possible', served - exactly the round-47 attack (control: the same replay without the hop is held)."""
    first, answer, state = _copy_hops(hanako, totp_factory, clock, hours=7, hop=UNPLACED)
    assert first == 200
    assert answer != 200, (answer, state)


def _her_move(frm: str, to: str, history: list[str], hours: int) -> int:
    traveller = time_machine.travel(START - timedelta(days=21), tick=False)
    t = traveller.start()
    try:
        her = _signed_in_after(t, history * 5, at=frm)
        for _ in range(hours * 2):
            t.shift(timedelta(minutes=30))
            assert her.get("/api/portfolio").status_code == 200
        t.shift(timedelta(minutes=1))
        return _jar(her, to).get("/api/portfolio").status_code
    finally:
        traveller.stop()


@pytest.mark.django_db
def test_held_her_phone_handing_over_from_osaka_wifi_to_docomo_is_not_stepped_up(
    binding_hanako: Any,  # noqa: F811
    rt_geoip: Path,  # noqa: F811
) -> None:
    """Friction check (held): her phone leaves the Osaka office Wi-Fi for DOCOMO, which GeoIP places in
    Tokyo (radius 200 km), a minute after her last call: no step-up (the radius absorbs it)."""
    assert _her_move(IP_OSAKA, IP_DOCOMO, [IP_TOKYO, IP_OSAKA, IP_DOCOMO], hours=2) == 200


@pytest.mark.django_db
def test_held_her_office_vpn_without_a_geoip_place_seven_hours_in_is_not_stepped_up(
    binding_hanako: Any,  # noqa: F811
    rt_geoip: Path,  # noqa: F811
) -> None:
    """Friction check (held): seven hours into her session she switches on her office VPN (an egress no
    GeoIP database places, which she signs in from daily) a minute after a call from home: the new
    unverifiable_travel (now measured from a minute ago) does not tip it into a step-up."""
    assert _her_move(IP_TOKYO, UNPLACED, [IP_TOKYO, UNPLACED], hours=7) == 200
