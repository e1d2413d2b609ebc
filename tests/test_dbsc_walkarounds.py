"""DBSC against a thief with the customer's password, her copied cookie jar (session and device cookie),
her user agent and a residential proxy in Japan, who re-binds her device to his own key (red team,
2026-12-05; each test failed on the code before): through an account of his own, to revive a copied bound
session, or from a copied session viewing a step-up page.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from django.test import Client

from authguard.conf import app_settings
from authguard.models import DbscSession, LoginEvent
from authguard.sessions import dbsc

from .conftest import IP_TOKYO, UA_CHROME_WIN, api_post, totp_token
from .test_sessions_dbsc import (  # the protocol helpers: real keys, real proofs
    OFFER,
    DeviceKey,
    dbsc_on,  # noqa: F401 (fixture)
    json_login,
    post_register,
    register,
    urlpatterns,  # noqa: F401 (this module's URLconf: the demo plus the offer view)
)

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]


@pytest.fixture
def verified_browser(user_factory: Any, dbsc_on: None) -> Client:  # noqa: F811
    """A signed-in, verified browser with authguard's device cookie (test_sessions_dbsc's ``browser``)."""
    from .test_sessions_dbsc import new_device_cookie

    client = Client()
    client.force_login(user_factory("hanako"))
    client.cookies[app_settings.DEVICE_COOKIE_NAME] = new_device_cookie()
    return client


def login_as(client: Client, username: str) -> Any:
    return client.post(
        "/api/login",
        {"username": username, "password": "correct horse battery"},
        content_type="application/json",
        REMOTE_ADDR=IP_TOKYO,
        HTTP_USER_AGENT=UA_CHROME_WIN,
    )


def browser() -> Client:
    return Client(REMOTE_ADDR=IP_TOKYO, HTTP_USER_AGENT=UA_CHROME_WIN)


def her_bound_browser(user_factory: Any, totp_factory: Any) -> tuple[Client, str]:
    """hanako's browser (she has an authenticator app), signed in (allowed) and bound to the key in its TPM;
    returns it and the binding's DBSC session id."""
    totp_factory(user_factory("hanako"))
    own = browser()
    own.get("/login/")
    assert json_login(own, IP_TOKYO).json()["status"] == "ok"
    binding = register(own, DeviceKey())
    assert own.get("/api/portfolio").status_code == 200  # her session is bound and proven
    return own, binding


def rebind_through_his_account(copied_device_cookie: str, user_factory: Any, totp_factory: Any) -> Any:
    """The thief signs in to an account of his own (kuroda) with her copied device cookie (stepping up with
    his own authenticator app if asked) and answers the registration offer his verified sign-in gets with
    his own key. Returns the registration's answer."""
    account = user_factory("kuroda")
    totp = totp_factory(account)
    thief = browser()
    thief.cookies[app_settings.DEVICE_COOKIE_NAME] = copied_device_cookie
    passed = login_as(thief, "kuroda")
    if passed.json()["status"] == "step_up_required":
        passed = api_post(thief, "api-step-up-totp", {"code": totp_token(totp)})
    assert passed.status_code == 200, passed.content
    thief.cookies[app_settings.DEVICE_COOKIE_NAME] = (
        copied_device_cookie  # the re-issued cookie is never kept
    )
    offered = OFFER.match(passed[dbsc.REGISTRATION_HEADER])
    assert offered, passed[dbsc.REGISTRATION_HEADER]
    return post_register(thief, DeviceKey().proof(offered["challenge"]))


@pytest.mark.battery(65)
@pytest.mark.usefixtures("geoip", "dbsc_on")
def test_a_copied_device_cookie_cannot_be_re_bound_to_the_thiefs_key_through_his_own_account(
    user_factory: Any, totp_factory: Any
) -> None:
    """A registration ended *any* active binding of the device, whichever account it belonged to. So the
    thief signed in to an account of his own with the customer's copied device cookie, passed that
    account's step-up with his own authenticator app, answered the registration offer with his own key and
    thereby replaced her binding: from then on his copy was the "bound_ok" device and her TPM-held key
    void; he signed in to her account with her password, her device cookie and his bound cookie, and was
    let in as her known, DBSC-proven browser. Bindings are per account now: his binds his account only."""
    own, binding = her_bound_browser(user_factory, totp_factory)
    copied = own.cookies[app_settings.DEVICE_COOKIE_NAME].value

    rebind_through_his_account(copied, user_factory, totp_factory)
    assert DbscSession.objects.get(session_id=binding).ended_at is None
    assert set(
        DbscSession.objects.filter(ended_at__isnull=True).values_list("user__username", flat=True)
    ) <= {
        "hanako",
        "kuroda",
    }

    # Her device cookie without her key is still a copy at her sign-in.
    thief = browser()
    thief.cookies[app_settings.DEVICE_COOKIE_NAME] = copied
    answer = login_as(thief, "hanako")
    last = LoginEvent.objects.filter(user__username="hanako").order_by("-pk").first()
    assert answer.json()["status"] == "step_up_required", (answer.json(), last.reasons if last else None)
    assert last is not None and "device_binding_missing" in last.reasons


@pytest.mark.battery(65)
@pytest.mark.usefixtures("geoip", "dbsc_on")
def test_a_copied_bound_session_is_not_revived_by_re_binding_the_device_through_another_account(
    user_factory: Any, totp_factory: Any
) -> None:
    """The same hole, second use: a copied session cookie of a DBSC-bound session is held once its bound
    cookie's minutes are over (``test_sessions_dbsc``), but ``rescoring.check_binding`` dropped the
    session's binding once it was no longer active ("nothing is left to prove"), and the thief ended it
    himself as above. Her copied session was then served in full from her own line."""
    own, binding = her_bound_browser(user_factory, totp_factory)
    # The jar, copied: the session cookie and the device cookie (the bound cookie expires in minutes).
    names = (settings.SESSION_COOKIE_NAME, app_settings.DEVICE_COOKIE_NAME)
    jar = {name: own.cookies[name].value for name in names}

    rebind_through_his_account(jar[app_settings.DEVICE_COOKIE_NAME], user_factory, totp_factory)
    replay = browser()
    for name, value in jar.items():
        replay.cookies[name] = value
    answer = replay.get("/api/portfolio")

    # The copy without her key's proof is held (or ended), never served; her binding stands.
    assert answer.status_code != 200, answer.content
    assert DbscSession.objects.get(session_id=binding).ended_at is None


@pytest.mark.battery(65)
@pytest.mark.usefixtures("geoip", "dbsc_on")
def test_a_copied_session_cannot_bind_the_customers_device_to_the_thiefs_key(
    user_factory: Any, totp_factory: Any
) -> None:
    """A registration offer was made for *any* answer below 400 to a step-up route, not only after a sign-in
    or a passed step-up. Her browser has no DBSC (Firefox, Safari, a Mac), so nothing binds her device
    cookie. The thief replayed her copied cookie jar from her own line, opened the step-up chooser (a
    verified session is redirected: 302, offer included) and registered his own key for her device cookie;
    the shared session then demanded *his* bound cookie, her own browser was held as a copy at once and
    again right after her step-up, and every later sign-in of hers was stepped up for
    ``device_binding_missing`` while his copy was ``bound_ok``."""
    totp_factory(user_factory("hanako"))
    own = browser()
    own.get("/login/")
    assert json_login(own, IP_TOKYO).json()["status"] == "ok"  # (her browser ignores the offer)
    assert own.get("/api/portfolio").status_code == 200

    thief = browser()
    for name in (settings.SESSION_COOKIE_NAME, app_settings.DEVICE_COOKIE_NAME):
        thief.cookies[name] = own.cookies[name].value
    assert thief.get("/api/portfolio").status_code == 200  # the copied session, from her own line

    # A page view of a signed-in session offers nothing: her device stays unbound, her browser carries on.
    assert dbsc.REGISTRATION_HEADER not in thief.get("/authguard/step-up/")
    assert not DbscSession.objects.exists()
    assert own.get("/api/portfolio").status_code == 200


@pytest.mark.battery(65)
@pytest.mark.usefixtures("geoip")
def test_a_thief_cannot_bind_the_customers_unbound_device_cookie_to_his_key_through_his_own_account(
    user_factory: Any, totp_factory: Any, settings: Any
) -> None:
    """188f278 stops a re-binding of a *bound* device from another account (``_check_replaceable``) and a
    registration offer to her copied session. Her browser has no DBSC (Firefox, Safari), so her device
    cookie has no binding, and ``_check_replaceable`` lets any account bind it: the thief signs in to an
    account of his own (kuroda) with her copied device cookie, gets the offer his sign-in (or step-up)
    earns, and registers his own key for *her* device cookie. From then on her own browser is the "copy":
    each of her sign-ins is stepped up for ``device_binding_missing`` ("worse than a new device", no
    known-device discount), she can never register her own key over it (another account's live binding:
    403 ``device``, passkey or not), and he keeps it alive with refreshes; while his copy of her cookie
    presents a fresh bound cookie and is ``bound_ok`` (a proven device) at a sign-in to her account
    (``device_binding_state`` never asks whose binding it is).

    SECURE: a device cookie is bound only for an account it belongs to (one the account's history knows,
    or issued in this sign-in), or another account's binding never counts for this one."""
    settings.AUTHGUARD_DBSC = {"ENABLED": True}

    totp_factory(user_factory("hanako"))
    own = browser()
    own.get("/login/")
    assert json_login(own, IP_TOKYO).json()["status"] == "ok"  # her browser ignores the offer (no DBSC)
    assert own.get("/api/portfolio").status_code == 200
    copied = own.cookies[app_settings.DEVICE_COOKIE_NAME].value

    # The thief, with her copied device cookie, signs in to his own account and answers its offer.
    kuroda = user_factory("kuroda")
    kuroda_totp = totp_factory(kuroda)
    thief = browser()
    thief.cookies[app_settings.DEVICE_COOKIE_NAME] = copied
    signed_in = thief.post(
        "/api/login",
        {"username": "kuroda", "password": "correct horse battery"},
        content_type="application/json",
    )
    verified = signed_in
    if signed_in.json()["status"] == "step_up_required":
        verified = api_post(thief, "api-step-up-totp", {"code": totp_token(kuroda_totp)})
    assert verified.status_code == 200, verified.content
    thief.cookies[app_settings.DEVICE_COOKIE_NAME] = copied  # a re-issued cookie is never kept
    offered = OFFER.match(verified.get(dbsc.REGISTRATION_HEADER, ""))
    assert offered, dict(verified.items())
    registered = post_register(thief, DeviceKey().proof(offered["challenge"]))
    assert registered.status_code == 200, registered.content  # his key, for his own account only

    # Her own browser signs in again, as every morning.
    again = browser()
    again.cookies[app_settings.DEVICE_COOKIE_NAME] = copied  # her own cookie, on her own computer
    answer = json_login(again, IP_TOKYO)
    last = LoginEvent.objects.filter(user__username="hanako").order_by("-pk").first()
    # SECURE: another account's binding of her device cookie does not make her own browser a copy.
    assert answer.json()["status"] == "ok" and "device_binding_missing" not in last.reasons, (
        f"the thief's account bound her device cookie to his key (registration {registered.status_code}, "
        f"bindings {list(DbscSession.objects.values_list('user__username', 'ended_at'))}): her own "
        f"sign-in is now {answer.json()['status']} for {last.reasons}"
    )
    # And a browser of hers with DBSC can still bind her device cookie to its own key (no lasting lock-out).
    assert register(again, DeviceKey())
    assert DbscSession.objects.filter(user__username="kuroda", ended_at__isnull=True).count() == 1


# -- round fourteen ----------------------------------------------------------------------------------------


@pytest.mark.battery(62)
def test_a_registration_proof_with_a_lone_surrogate_challenge_is_a_4xx_not_a_server_error(
    verified_browser: Client,
) -> None:
    """docs/dbsc.md: "Malformed input of any kind gets a 4xx with a stable ``code`` and a translated
    ``message``, never a 500". A registration proof is self-signed (its ``jwk`` header is the key it is
    verified with), so anyone with a verified session can sign any claims. ``dbsc_proofs._verify`` accepts a
    ``jti`` that is any non-empty JSON string up to 256 characters, and JSON lets it be a lone surrogate
    (``"\\ud800"``). ``dbsc._find_challenge`` then hashes it with ``challenge.encode("utf-8")``, which raises
    ``UnicodeEncodeError``: an unhandled exception, a 500 from the registration endpoint (and from the
    refresh endpoint for a binding's own key)."""
    from joserfc import jws

    from authguard.models import DbscChallenge

    from .test_sessions_dbsc import offer

    offer(verified_browser)  # a real offer is outstanding for this session
    key = DeviceKey()
    header = {"alg": "ES256", "typ": "dbsc+jwt", "jwk": key.public_jwk()}
    proof = jws.serialize_compact(header, b'{"jti": "\\ud800"}', key.key, algorithms=["ES256"])
    proof = proof.decode() if isinstance(proof, bytes) else proof

    client = Client(raise_request_exception=False)
    client.cookies = verified_browser.cookies
    answer = client.post("/authguard/api/dbsc/register/", headers={"Secure-Session-Response": f'"{proof}"'})

    assert 400 <= answer.status_code < 500, f"a malformed proof answered {answer.status_code}"
    assert answer.json()["code"] in ("malformed", "challenge")
    assert not DbscSession.objects.exists()
    assert DbscChallenge.objects.filter(used_at__isnull=True).count() == 1  # the real offer stays usable
