"""Red team round forty-nine (B), fixed: a copy of her whole cookie jar replayed through a *listed*
residential proxy on her own ISP in her own city (what the Anonymous-IP database flags, and what the sign-
in scores as ``residential_proxy`` +25) is no move for the session's binding: ``places.anonymous`` and the
binding's ``x`` know VPNs, Tor, public proxies and hosting, not residential proxies. The copy keeps her
low-risk, never-re-scored session, which makes it "this browser" of months (own_devices._is_this_browser).
Fixed: ``places.anonymous`` counts a listed residential proxy, so the move is material and re-scored.

Real sign-ins through the demo's JSON API, real TOTP codes, the real middleware, GeoIP test databases
(with one listed residential proxy block on her ISP, OCN, in Tokyo), time-machine for time.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from authguard.models import KnownDevice
from authguard.testing import GeoNetwork, write_geoip_databases

from .conftest import IP_TOKYO, TEST_NETWORKS, UA_CHROME_WIN, api_post, totp_token
from .test_dbsc_copies_walkarounds import _last, _login, _summary
from .test_sessions_dbsc import urlpatterns  # noqa: F401 (the demo plus authguard's pages)

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]

PASSWORD = "correct horse battery"
#: An OCN home line in Tokyo that a residential-proxy network resells, listed as such by the database.
IP_OCN_RESI_PROXY = "203.0.98.7"


@pytest.fixture(scope="session")
def resi_geoip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    listed = GeoNetwork(
        "203.0.98.0/24",
        country="JP",
        city="Tokyo",
        latitude=35.6895,
        longitude=139.6917,
        accuracy_km=10,
        time_zone="Asia/Tokyo",
        asn=4713,
        as_org="NTT Communications (OCN)",
        residential_proxy=True,
    )
    return write_geoip_databases(tmp_path_factory.mktemp("resi_proxy"), [*TEST_NETWORKS, listed])


@pytest.fixture(autouse=True)
def resi_geoip(settings: Any, resi_geoip_dir: Path) -> Path:
    settings.AUTHGUARD_GEOIP_PATH = str(resi_geoip_dir)
    return resi_geoip_dir


@pytest.fixture
def clock() -> Any:
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        yield traveller


def _her_pc_of_months(clock: Any, user_factory: Any, totp_factory: Any) -> tuple[Client, Any, KnownDevice]:
    """hanako signs in from home (OCN, Tokyo) on her PC every day for 45 days; today's sign-in is allowed
    outright (a low-risk session) and she reads her portfolio."""
    totp = totp_factory(user_factory("hanako", password=PASSWORD))
    her = Client(REMOTE_ADDR=IP_TOKYO, HTTP_USER_AGENT=UA_CHROME_WIN)
    her.get("/api/csrf")
    for _ in range(45):
        assert _login(her).json()["status"] == "ok", _summary(_last())
        assert her.get("/api/portfolio").status_code == 200
        her.post("/api/logout")
        clock.shift(timedelta(days=1))
    assert _login(her).json()["status"] == "ok", _summary(_last())
    assert her.get("/api/portfolio").status_code == 200
    pc = KnownDevice.objects.get(user=totp.user, revoked_at__isnull=True)
    return her, totp, pc


def _thief_with_jar(her: Client) -> Client:
    thief = Client(REMOTE_ADDR=IP_OCN_RESI_PROXY, HTTP_USER_AGENT=UA_CHROME_WIN)
    for name, morsel in her.cookies.items():
        thief.cookies[name] = morsel.value
    return thief


def _state(client: Client) -> dict[str, Any]:
    return dict(client.session).get("_authguard") or {}


def test_held_a_fresh_sign_in_from_the_listed_proxy_with_her_cookie_cannot_forget_her_pc(
    clock: Any, user_factory: Any, totp_factory: Any
) -> None:
    """Control (held): the same context at a fresh sign-in (her password and a copy of her device cookie
    from the listed proxy) is allowed but scored ``anonymous_residential_proxy``, so never low-risk; with
    one relayed code it cannot forget her PC as "this browser"."""
    her, totp, pc = _her_pc_of_months(clock, user_factory, totp_factory)
    her.post("/api/logout")
    clock.shift(120)
    thief = _thief_with_jar(her)
    thief.get("/api/csrf")
    assert _login(thief).json()["status"] == "ok"
    event = _last()
    assert any(f["code"].startswith("anonymous_") for f in event.findings), _summary(event)
    assert _state(thief).get("lr") is False
    api_post(thief, "api-step-up-totp", {"code": totp_token(totp)})
    thief.post(f"/authguard/security/devices/{pc.pk}/revoke/")
    pc.refresh_from_db()
    assert pc.revoked_at is None


def test_a_copied_jar_through_a_listed_residential_proxy_of_her_isp_is_rescored(
    clock: Any, user_factory: Any, totp_factory: Any
) -> None:
    """Secure: a copy of her live session moved onto an address the GeoIP database lists as a residential
    proxy is re-scored, as a move onto a Tor exit, VPN or hosting address of her own ISP in her own city is
    (round twenty-six), and is no longer low-risk.

    Means: an infostealer copy of her cookie jar (session + device cookie) and her exact user agent,
    replayed through a residential proxy on her ISP (OCN) in Tokyo that the Anonymous-IP database lists.
    ``state.current_binding`` sets ``x`` from ``places.anonymous``, which omits ``residential_proxy``: same
    ASN, same country, same device cookie, same browser, 0 km: ``"moved"``, rebound, no re-score, no event.
    The copy keeps her session's ``lr`` (low-risk, never re-scored)."""
    her, _totp, _pc = _her_pc_of_months(clock, user_factory, totp_factory)
    assert _state(her).get("lr") is True  # her sign-in was allowed outright
    clock.shift(120)
    thief = _thief_with_jar(her)
    answer = thief.get("/api/portfolio")
    state = _state(thief)
    assert answer.status_code != 200 or state.get("r"), (
        answer.status_code,
        state.get("s"),
        state.get("lr"),
        state.get("r"),
        state.get("b"),
    )


def test_a_copied_jar_through_a_listed_residential_proxy_cannot_forget_her_pc_with_one_relayed_code(
    clock: Any, user_factory: Any, totp_factory: Any
) -> None:
    """Secure: forgetting her browser of months takes what a factor's removal needs from a copy of its
    jar (round forty-seven: "this browser" with standing needs DBSC proof or an *unbound low-risk session*).

    Means: the infostealer copy of her jar, her exact user agent, a listed residential proxy of her ISP in
    Tokyo, one relayed TOTP code. The copy's session stays low-risk (no move, above), so after one relayed
    code (the fresh verification the security page asks), ``own_devices._is_this_browser`` answers True
    (its cookie, unbound, ``session_low_risk``), and her PC of 45 days is forgotten without a strong factor:
    its standing (one-step renewal, own throttle scope, short passkey cooling-off) is gone."""
    her, totp, pc = _her_pc_of_months(clock, user_factory, totp_factory)
    clock.shift(120)
    thief = _thief_with_jar(her)
    assert thief.get("/api/portfolio").status_code == 200  # (above: no re-score)
    relayed = api_post(thief, "api-step-up-totp", {"code": totp_token(totp)})
    forgot = thief.post(f"/authguard/security/devices/{pc.pk}/revoke/")
    pc.refresh_from_db()
    assert pc.revoked_at is None, (
        f"step-up {relayed.status_code}; forget {forgot.status_code} {forgot.get('Location')}; "
        f"state {_state(thief)}: her PC of 45 days is forgotten by the copy"
    )
