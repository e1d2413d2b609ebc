"""Red team, round twenty-six (round twenty-five's session fixes: the step-up's place check).

``authguard.login.stepup.refused_where_posted`` scores a pending session's step-up as a sign-in from where it
is posted, but only when the step-up's context is a *material* change from the login's binding
(``places.is_material_change``), and not at all when the pending login event's IP equals the request's. Each
test not marked HELD fails on the code it was written against (commit 586894f).

1. ``is_material_change`` knows networks, countries, device cookies, browsers and distances, not anonymity: a
   Tor exit (or a proxy, a VPS) on the kit's own ISP in the kit's own city is "no move", so the step-up is
   never scored there, and the session or token is verified and bound at a Tor exit whose own sign-in is
   refused.
2. The exemption compares the IP alone: the login event was scored for the kit's real browser, the step-up
   is posted from the same address by a script (curl, python-requests: ``automation_client``), another
   browser family, so material, and never scored; a sign-in by that script from that address is refused.
   Likewise a step-up posted with her copied device cookie (infostealer) from the kit's address, where a
   sign-in with that cookie is refused while her PC is in use: the kit's session is bound to her device
   cookie and handed its next generation.

Real views (the demo's JSON login, authguard's JSON and HTML step-up, authguard.drf's token login and its
step_up_token exchange), the real risk engine, synthetic GeoIP databases, real TOTP codes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

# isort: split
# test_drf skips this module without djangorestframework (and fails under CI=true): imported first.
from .test_drf import with_token  # noqa: F401

# isort: split
from django.test import Client
from rest_framework.test import APIClient

from authguard.models import LoginEvent
from authguard.testing import GeoNetwork, write_geoip_databases

from .conftest import IP_OSAKA, IP_TOR, TEST_NETWORKS, UA_CHROME_WIN, UA_CURL, totp_token
from .test_copy_walkarounds import KDDI

#: A Tor exit relay on a KDDI home line in Osaka (the kit's own ISP and city: Tor exits run on residential
#: lines too; the anonymous-IP database flags it ``tor_exit``).
KDDI_OSAKA_TOR_NET = GeoNetwork(
    "203.0.93.0/24", city="Osaka", latitude=34.70, longitude=135.50, accuracy_km=10, tor_exit=True, **KDDI
)
KDDI_OSAKA_TOR = "203.0.93.9"
UA_REQUESTS = "python-requests/2.32.3"
PASSWORD = "correct horse battery"


@pytest.fixture(scope="session")
def rt26a_geoip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_geoip_databases(tmp_path_factory.mktemp("rt26ageoip"), [*TEST_NETWORKS, KDDI_OSAKA_TOR_NET])


@pytest.fixture
def rt26a_geoip(settings: Any, rt26a_geoip_dir: Path) -> Path:
    settings.AUTHGUARD_GEOIP_PATH = str(rt26a_geoip_dir)
    return rt26a_geoip_dir


def _victim(user_factory: Any, browser_at: Any, totp_factory: Any) -> tuple[Any, Any]:
    """alice signs in at home (Tokyo, Chrome) twice, and has an authenticator app (her phone)."""
    from .test_drf import customer

    alice = customer(user_factory, browser_at, "alice")
    return alice, totp_factory(alice)


def _kit_login(kit: Client) -> None:
    """The phishing kit posts her password from its Osaka address in a real browser: step_up (pending)."""
    login = kit.post(
        "/api/login", json.dumps({"username": "alice", "password": PASSWORD}),
        content_type="application/json", REMOTE_ADDR=IP_OSAKA,
    )  # fmt: skip
    assert login.status_code in (200, 401) and login.json()["status"] == "step_up_required", login.content


def _browser_sign_in_from(ip: str, ua: str) -> Any:
    """A fresh sign-in from that context (the precondition: refused)."""
    return Client(HTTP_USER_AGENT=ua).post(
        "/api/login", json.dumps({"username": "alice", "password": PASSWORD}),
        content_type="application/json", REMOTE_ADDR=ip,
    )  # fmt: skip


def _served(client: Client, ip: str, ua: str) -> tuple[int, int]:
    portfolio = client.get("/drf/portfolio", REMOTE_ADDR=ip, HTTP_USER_AGENT=ua).status_code
    withdraw = client.post("/drf/withdraw", REMOTE_ADDR=ip, HTTP_USER_AGENT=ua).status_code
    return portfolio, withdraw


def _events(user: Any) -> list[tuple[str, str, str]]:
    return [(e.ip, e.outcome, e.action) for e in LoginEvent.objects.filter(user=user).order_by("pk")]


# -- 1. a Tor exit on the kit's own network in the kit's own city is "no move": never scored -----------------


@pytest.mark.battery(61)
@pytest.mark.django_db
@pytest.mark.urls("tests.drf_urlconf")
def test_a_pending_session_is_not_stepped_up_from_a_tor_exit_on_the_kits_own_network(
    user_factory: Any, browser_at: Any, totp_factory: Any, rt26a_geoip: Any
) -> None:
    """The kit's login from Osaka (KDDI) is pending. Its step-up, with the relayed code, is posted from a Tor
    exit on a KDDI line in Osaka, with the kit's own cookies and browser: same ASN, country, device cookie and
    browser, 1 km away, so ``is_material_change`` says no move and ``refused_where_posted`` never scores it.
    The session is verified and bound at the Tor exit: the portfolio is served there and the fresh step-up
    withdraws. A sign-in from that Tor exit is refused (anonymous_tor: deny)."""
    alice, phone = _victim(user_factory, browser_at, totp_factory)
    kit = Client(HTTP_USER_AGENT=UA_CHROME_WIN)
    _kit_login(kit)
    step_up = kit.post(
        "/authguard/api/step-up/totp", json.dumps({"code": totp_token(phone)}),
        content_type="application/json", REMOTE_ADDR=KDDI_OSAKA_TOR,
    )  # fmt: skip
    served, withdrew = _served(kit, KDDI_OSAKA_TOR, UA_CHROME_WIN)
    direct = _browser_sign_in_from(KDDI_OSAKA_TOR, UA_CHROME_WIN)
    assert direct.json()["status"] == "denied", direct.content  # the precondition
    assert step_up.status_code == 403 and served in (401, 403) and withdrew in (401, 403), (
        f"a pending session stepped up from a Tor exit (a sign-in there is refused) is served there: "
        f"step-up {step_up.status_code}, portfolio {served}, withdraw {withdrew}; events {_events(alice)}"
    )


@pytest.mark.battery(61)
@pytest.mark.django_db
@pytest.mark.urls("tests.drf_urlconf")
def test_the_html_step_up_page_is_not_passed_from_a_tor_exit_on_the_kits_own_network(
    user_factory: Any, browser_at: Any, totp_factory: Any, rt26a_geoip: Any
) -> None:
    """The same through the HTML TOTP page (``views._verify_code``): the form posted from the Osaka Tor exit
    verifies the session (302 to the portal) instead of ending it (302 to ``denied``)."""
    alice, phone = _victim(user_factory, browser_at, totp_factory)
    kit = Client(HTTP_USER_AGENT=UA_CHROME_WIN)
    _kit_login(kit)
    page = kit.post("/authguard/step-up/totp/", {"code": totp_token(phone)}, REMOTE_ADDR=KDDI_OSAKA_TOR)
    served, withdrew = _served(kit, KDDI_OSAKA_TOR, UA_CHROME_WIN)
    assert served in (401, 403) and withdrew in (401, 403), (
        f"the HTML step-up posted from a Tor exit verified the session: {page.status_code} "
        f"{page.get('Location')}, portfolio {served}, withdraw {withdrew}; events {_events(alice)}"
    )
    assert ("203.0.93.9", "refused", "deny") in _events(alice)


@pytest.mark.battery(61)
@pytest.mark.django_db
@pytest.mark.urls("tests.drf_urlconf")
def test_a_step_up_token_is_not_exchanged_from_a_tor_exit_on_the_kits_own_network(
    user_factory: Any, browser_at: Any, totp_factory: Any, rt26a_geoip: Any
) -> None:
    """The token flavour: the app login from Osaka (KDDI, Chrome's agent) is scored step_up; the
    step_up_token is exchanged with the relayed code from the KDDI Tor exit in Osaka with the same agent.
    ``_usable`` runs the place check in the parked session, which the Tor exit does not materially change:
    a TOTP-strength token is issued and bound there; it reads the portfolio and withdraws."""
    from .test_drf import api, obtain

    alice, phone = _victim(user_factory, browser_at, totp_factory)
    login = obtain(api(IP_OSAKA, UA_CHROME_WIN))
    assert login.status_code == 401 and login.json()["status"] == "step_up_required", login.content
    exchange = APIClient(REMOTE_ADDR=KDDI_OSAKA_TOR, HTTP_USER_AGENT=UA_CHROME_WIN).post(
        "/api/auth/step-up/totp",
        {"step_up_token": login.json()["step_up_token"], "code": totp_token(phone)},
        format="json",
    )
    served = withdrew = None
    if exchange.status_code == 200:
        token = exchange.json()["token"]
        served = with_token(api(KDDI_OSAKA_TOR, UA_CHROME_WIN), token).get("/drf/portfolio").status_code
        withdrew = with_token(api(KDDI_OSAKA_TOR, UA_CHROME_WIN), token).post("/drf/withdraw").status_code
    direct = obtain(api(KDDI_OSAKA_TOR, UA_CHROME_WIN))
    assert direct.status_code == 403 and direct.json()["status"] == "denied", direct.content
    assert exchange.status_code == 403, (
        f"a step_up_token exchanged at a Tor exit (a sign-in there is refused) gave a token: exchange "
        f"{exchange.status_code}, portfolio {served}, withdraw {withdrew}; events {_events(alice)}"
    )


# -- 2. the exemption compares the IP alone: the kit's script on the kit's address -------------------------


@pytest.mark.battery(61)
@pytest.mark.django_db
@pytest.mark.urls("tests.drf_urlconf")
@pytest.mark.parametrize("script", [UA_CURL, UA_REQUESTS], ids=["curl", "python-requests"])
def test_a_pending_session_is_not_stepped_up_by_a_script_on_the_kits_address(
    user_factory: Any, browser_at: Any, totp_factory: Any, geoip: Any, script: str
) -> None:
    """The kit's browser posts her password from Osaka: scored step_up for *that* browser. Its relay script
    then posts the step-up with the session cookie from the same address (curl / python-requests). Another
    browser family is a material change, but the login event's IP equals the request's, so
    ``refused_where_posted`` returns before scoring. The session is verified and bound to the script, which
    is then served (portfolio, withdraw) from there; the script's own sign-in from that address is refused
    (``automation_client``: deny)."""
    alice, phone = _victim(user_factory, browser_at, totp_factory)
    kit = Client(HTTP_USER_AGENT=UA_CHROME_WIN)
    _kit_login(kit)
    step_up = kit.post(
        "/authguard/api/step-up/totp", json.dumps({"code": totp_token(phone)}),
        content_type="application/json", REMOTE_ADDR=IP_OSAKA, HTTP_USER_AGENT=script,
    )  # fmt: skip
    served, withdrew = _served(kit, IP_OSAKA, script)
    direct = _browser_sign_in_from(IP_OSAKA, script)
    assert direct.json()["status"] == "denied", direct.content  # the precondition
    assert step_up.status_code == 403 and served in (401, 403) and withdrew in (401, 403), (
        f"a pending session stepped up by a script its own sign-in is refused as is served to it: "
        f"step-up {step_up.status_code}, portfolio {served}, withdraw {withdrew}; events {_events(alice)}"
    )


@pytest.mark.battery(61)
@pytest.mark.django_db
@pytest.mark.urls("tests.drf_urlconf")
def test_a_step_up_token_is_not_exchanged_by_a_script_on_the_kits_address(
    user_factory: Any, browser_at: Any, totp_factory: Any, geoip: Any
) -> None:
    """The token flavour: the app login in Chrome's agent from Osaka is step_up; the exchange is posted by
    python-requests from the same address (exempt: same IP), and the token lives with the script there."""
    from .test_drf import api, obtain

    alice, phone = _victim(user_factory, browser_at, totp_factory)
    login = obtain(api(IP_OSAKA, UA_CHROME_WIN))
    assert login.status_code == 401 and login.json()["status"] == "step_up_required", login.content
    exchange = APIClient(REMOTE_ADDR=IP_OSAKA, HTTP_USER_AGENT=UA_REQUESTS).post(
        "/api/auth/step-up/totp",
        {"step_up_token": login.json()["step_up_token"], "code": totp_token(phone)},
        format="json",
    )
    served = withdrew = None
    if exchange.status_code == 200:
        token = exchange.json()["token"]
        served = with_token(api(IP_OSAKA, UA_REQUESTS), token).get("/drf/portfolio").status_code
        withdrew = with_token(api(IP_OSAKA, UA_REQUESTS), token).post("/drf/withdraw").status_code
    direct = obtain(api(IP_OSAKA, UA_REQUESTS))
    assert direct.status_code == 403 and direct.json()["status"] == "denied", direct.content
    assert exchange.status_code == 403, (
        f"a step_up_token exchanged by a script refused a sign-in gave it a token: exchange "
        f"{exchange.status_code}, portfolio {served}, withdraw {withdrew}; events {_events(alice)}"
    )


@pytest.mark.battery(61)
@pytest.mark.battery(62)
@pytest.mark.django_db
@pytest.mark.urls("tests.drf_urlconf")
def test_a_pending_session_is_not_stepped_up_with_her_copied_device_cookie_on_the_kits_address(
    user_factory: Any, browser_at: Any, totp_factory: Any, geoip: Any
) -> None:
    """The device cookie is a dimension of the context too. alice's settled PC in Tokyo is signed in. A
    sign-in from the kit's Osaka address presenting her copied device cookie (infostealer) is refused
    (device_in_two_places, settled_device_moved: deny). So the kit signs in there *without* it (a new
    browser: step_up), and posts the step-up from the same address with her copied device cookie: another
    device cookie is material, but the login event's IP is the request's, so it is never scored. The session
    is verified and bound to her device cookie at Osaka, served, and the middleware hands the kit the next
    generation of her PC's device id (the one her own browser should get next)."""
    from authguard.risk.context import device_cookie_parts

    from .conftest import IP_TOKYO, settle_device

    alice = user_factory("alice")
    phone = totp_factory(alice)
    her = browser_at(IP_TOKYO, UA_CHROME_WIN)
    her.sign_in("alice")
    her.post("/logout/")
    her.sign_in("alice")
    her_cookie = her.cookies["authguard_device"].value
    settle_device(her_cookie, alice)
    assert her.get("/drf/portfolio").status_code == 200  # she is signed in at home, in use
    copy = Client(HTTP_USER_AGENT=UA_CHROME_WIN)
    copy.cookies["authguard_device"] = her_cookie
    direct = copy.post(
        "/api/login", json.dumps({"username": "alice", "password": PASSWORD}),
        content_type="application/json", REMOTE_ADDR=IP_OSAKA,
    )  # fmt: skip
    assert direct.json()["status"] == "denied", direct.content  # the precondition: refused with her cookie
    kit = Client(HTTP_USER_AGENT=UA_CHROME_WIN)
    _kit_login(kit)
    kit.cookies["authguard_device"] = her_cookie
    step_up = kit.post(
        "/authguard/api/step-up/totp", json.dumps({"code": totp_token(phone)}),
        content_type="application/json", REMOTE_ADDR=IP_OSAKA,
    )  # fmt: skip
    handed = device_cookie_parts(kit.cookies["authguard_device"].value)
    served, withdrew = _served(kit, IP_OSAKA, UA_CHROME_WIN)
    assert step_up.status_code == 403 and served in (401, 403) and withdrew in (401, 403), (
        f"a pending session stepped up with her copied device cookie where a sign-in with it is refused: "
        f"step-up {step_up.status_code}, portfolio {served}, withdraw {withdrew}; the kit now holds her "
        f"device id {handed} (hers: {device_cookie_parts(her_cookie)}); events {_events(alice)}"
    )


# -- HELD ---------------------------------------------------------------------------------------------------


def _recovery_code(user: Any) -> str:
    """One of her printed recovery codes (a confirmed set, as the security page issues it)."""
    import secrets

    from authguard import clock
    from authguard.factors.recovery import _BASE32, RECOVERY_CODE_LENGTH, _recovery_digest
    from authguard.models import RecoveryCode, RecoveryCodeDevice

    device = RecoveryCodeDevice.objects.create(
        user=user, name="Recovery codes", confirmed=True, created_at=clock.now()
    )
    code = "".join(secrets.choice(_BASE32) for _ in range(RECOVERY_CODE_LENGTH))
    RecoveryCode.objects.create(device=device, digest=_recovery_digest(device.pk, code), hashed="")
    return code


@pytest.mark.battery(61)
@pytest.mark.django_db
@pytest.mark.urls("tests.drf_urlconf")
def test_held_the_html_recovery_page_posted_from_tor_abroad_ends_the_pending_login_and_spends_no_code(
    user_factory: Any, browser_at: Any, totp_factory: Any, geoip: Any
) -> None:
    """HELD: the HTML recovery-code page (not covered by round twenty-five's tests, which use the JSON TOTP
    step-up and DRF): the kit's pending login from Osaka posts her relayed printed code from a Tor exit in
    Frankfurt. The place check runs before the code is checked: the page redirects to ``denied``, the
    pending login is signed out (nothing is served, back in Osaka either), a ``refused`` event is recorded
    at the Tor exit, and her code is not spent."""
    from authguard.models import RecoveryCode

    alice, _phone = _victim(user_factory, browser_at, totp_factory)
    code = _recovery_code(alice)
    kit = Client(HTTP_USER_AGENT=UA_CHROME_WIN)
    _kit_login(kit)
    page = kit.post("/authguard/step-up/recovery-code/", {"code": code}, REMOTE_ADDR=IP_TOR)
    assert page.status_code == 302 and page["Location"].endswith("/denied/"), (page.status_code, page)
    assert all(s in (401, 403) for s in _served(kit, IP_TOR, UA_CHROME_WIN))
    assert all(s in (401, 403) for s in _served(kit, IP_OSAKA, UA_CHROME_WIN))
    assert (IP_TOR, "refused", "deny") in _events(alice)
    assert not RecoveryCode.objects.filter(device__user=alice, used_at__isnull=False).exists()
