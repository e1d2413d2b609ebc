"""Device Bound Session Credentials at protocol level (issue 13, acceptance 2; docs/dbsc.md).

The browser is played by real keys (``cryptography``: EC P-256 and RSA 2048, as a TPM would hold them) that
sign proofs with joserfc exactly as the draft shapes them; the server side runs through the real middleware,
views, models and database. The offer view below stands in for the lead's wiring of
``dbsc.registration_header`` into the sign-in response.
"""

from __future__ import annotations

import base64
import json
import re
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from django.conf import settings
from django.contrib.auth import SESSION_KEY, get_user_model
from django.http import HttpRequest, HttpResponse
from django.test import Client, RequestFactory
from django.urls import path
from django.utils import timezone
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey, RSAKey

from authguard import checks
from authguard.conf import app_settings
from authguard.models import DbscChallenge, DbscSession, LoginEvent, Notification
from authguard.risk.context import device_hash, device_id_from_cookie, new_device_cookie
from authguard.sessions import dbsc
from authguard.sessions import state as sessions_state
from demo_site import urls as demo_urls

from .conftest import IP_TOKYO, UA_CHROME_WIN, bind_passkey, passkey_step_up

# -- a URLconf: the demo's (authguard.urls mounts the DBSC endpoints), plus a bare offer view ---------------


def offer_view(request: HttpRequest) -> HttpResponse:
    """A sign-in response with the registration offer header, for the protocol tests."""
    response = HttpResponse("signed in")
    value = dbsc.registration_header(request)
    if value is not None:
        response[dbsc.REGISTRATION_HEADER] = value
    return response


urlpatterns = [path("dbsc-offer/", offer_view), *demo_urls.urlpatterns]

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]

REGISTER = "/authguard/api/dbsc/register/"
REFRESH = "/authguard/api/dbsc/refresh/"
OFFER = re.compile(r'^\(ES256 RS256\);path="(?P<path>[^"]+)";challenge="(?P<challenge>[A-Za-z0-9_-]+)"$')
CHALLENGE = re.compile(r'^"(?P<challenge>[A-Za-z0-9_-]+)";id="(?P<id>[A-Za-z0-9_-]+)"$')


# -- the browser's side: a device key signing proofs ---------------------------------------------------------


class DeviceKey:
    """A session key as the browser holds it, and the proofs it signs (draft section 9.7)."""

    def __init__(self, alg: str = "ES256") -> None:
        self.alg = alg
        if alg == "ES256":
            self.key: Any = ECKey.import_key(ec.generate_private_key(ec.SECP256R1()))
        else:
            self.key = RSAKey.import_key(rsa.generate_private_key(public_exponent=65537, key_size=2048))

    def public_jwk(self) -> dict[str, Any]:
        return self.key.as_dict(private=False)

    def proof(
        self,
        jti: str,
        *,
        registration: bool = True,
        header: dict[str, Any] | None = None,
        claims: dict[str, Any] | None = None,
    ) -> str:
        protected: dict[str, Any] = {"alg": self.alg, "typ": "dbsc+jwt"}
        if registration:
            protected["jwk"] = self.public_jwk()
        protected.update(header or {})
        return jwt.encode(protected, {"jti": jti, **(claims or {})}, self.key, algorithms=[protected["alg"]])


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def with_header(proof: str, header: dict[str, Any]) -> str:
    """``proof`` with its protected header replaced (the signature no longer matches)."""
    return _b64(header) + proof[proof.index(".") :]


def unsigned_proof(jti: str, jwk: dict[str, Any]) -> str:
    """An ``alg: none`` token: what a forger sends when it has no key."""
    return f"{_b64({'alg': 'none', 'typ': 'dbsc+jwt', 'jwk': jwk})}.{_b64({'jti': jti})}."


# -- fixtures and helpers ------------------------------------------------------------------------------------


@pytest.fixture
def dbsc_on(settings: Any) -> None:
    settings.AUTHGUARD_DBSC = {"ENABLED": True}


@pytest.fixture
def browser(user_factory: Any, dbsc_on: None) -> Client:
    """A signed-in, verified browser with authguard's device cookie."""
    client = Client()
    client.force_login(user_factory("hanako"))
    client.cookies[app_settings.DEVICE_COOKIE_NAME] = new_device_cookie()
    return client


def device_of(client: Client) -> str:
    value = device_hash(device_id_from_cookie(client.cookies[app_settings.DEVICE_COOKIE_NAME].value))
    assert value is not None
    return value


def offer(client: Client) -> str:
    """Sign-in response → the registration challenge it offers."""
    response = client.get("/dbsc-offer/")
    assert response.status_code == 200
    match = OFFER.match(response[dbsc.REGISTRATION_HEADER])
    assert match, response[dbsc.REGISTRATION_HEADER]
    assert match["path"] == REGISTER
    return match["challenge"]


def post_register(client: Client, proof: str | None, *, quoted: bool = True) -> Any:
    headers = {}
    if proof is not None:
        headers["Secure-Session-Response"] = f'"{proof}"' if quoted else proof
    return client.post(REGISTER, headers=headers)


def post_refresh(
    client: Client, session_id: str | None, proof: str | None = None, *, quoted: bool = True
) -> Any:
    headers = {}
    if session_id is not None:
        headers["Sec-Secure-Session-Id"] = f'"{session_id}"' if quoted else session_id
    if proof is not None:
        headers["Secure-Session-Response"] = f'"{proof}"' if quoted else proof
    return client.post(REFRESH, headers=headers)


def register(client: Client, key: DeviceKey) -> str:
    """Run a whole registration; return the DBSC session identifier."""
    response = post_register(client, key.proof(offer(client)))
    assert response.status_code == 200, response.content
    return response.json()["session_identifier"]


def refresh_challenge(client: Client, session_id: str) -> str:
    response = post_refresh(client, session_id)
    assert response.status_code == 403
    match = CHALLENGE.match(response[dbsc.CHALLENGE_HEADER])
    assert match and match["id"] == session_id
    return match["challenge"]


def bound_cookie(response: Any) -> Any:
    return response.cookies.get(dbsc.bound_cookie_name())


def assert_refused(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == code
    assert body["message"]
    assert bound_cookie(response) is None
    assert "no-store" in response["Cache-Control"]


def _request_of(client: Client) -> Any:
    """A request carrying the cookies this client would send next."""
    request = RequestFactory().get("/")
    request.COOKIES = {name: morsel.value for name, morsel in client.cookies.items() if morsel.value}
    return request


def binding_state(client: Client) -> str:
    """``device_binding_state`` for the next request this client would send."""
    request = _request_of(client)
    return dbsc.device_binding_state(request, device_cookie_hash=dbsc.request_device_hash(request))


# -- registration --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["ES256", "RS256"])
@pytest.mark.parametrize("quoted", [True, False], ids=["sf-string", "bare"])
def test_registration_binds_the_device_cookie_and_sets_a_bound_cookie(
    browser: Client, alg: str, quoted: bool
) -> None:
    key = DeviceKey(alg)
    challenge = offer(browser)
    response = post_register(browser, key.proof(challenge), quoted=quoted)

    assert response.status_code == 200, response.content
    assert "no-store" in response["Cache-Control"]
    body = response.json()
    assert set(body) == {"session_identifier", "refresh_url", "scope", "credentials"}
    assert body["refresh_url"] == REFRESH
    assert body["scope"]["include_site"] is False
    assert {"type": "exclude", "path": "/static/"} in body["scope"]["scope_specification"]
    assert body["credentials"] == [
        {"type": "cookie", "name": "authguard_bound", "attributes": "Path=/; HttpOnly; SameSite=Lax"}
    ]
    cookie = bound_cookie(response)
    assert cookie is not None and cookie["max-age"] == 600 and cookie["httponly"] and cookie["path"] == "/"

    session = DbscSession.objects.get()
    assert session.session_id == body["session_identifier"]
    assert session.device_hash == device_of(browser)
    assert session.user.username == "hanako"
    assert session.algorithm == alg
    assert session.public_jwk == {k: v for k, v in key.public_jwk().items() if k != "kid"}
    assert session.key_thumbprint == key.key.thumbprint()
    assert session.ended_at is None
    assert DbscChallenge.objects.get(kind="registration").used_at is not None
    assert dbsc.SESSION_NONCE_KEY not in browser.session
    assert binding_state(browser) == "bound_ok"


def test_registration_offer_only_for_a_verified_session_with_a_device_cookie(
    user_factory: Any, dbsc_on: None, settings: Any
) -> None:
    anonymous = Client()
    anonymous.cookies[app_settings.DEVICE_COOKIE_NAME] = new_device_cookie()
    assert dbsc.REGISTRATION_HEADER not in anonymous.get("/dbsc-offer/")

    pending = Client()
    pending.force_login(user_factory("pending"))
    pending.cookies[app_settings.DEVICE_COOKIE_NAME] = new_device_cookie()
    session = pending.session
    session[sessions_state.STATE_KEY] = {"s": "pending", "t": timezone.now().timestamp()}
    session.save()
    request = RequestFactory().get("/")
    request.session = pending.session
    request.user = session_user(pending)
    request.COOKIES = {
        app_settings.DEVICE_COOKIE_NAME: pending.cookies[app_settings.DEVICE_COOKIE_NAME].value
    }
    assert dbsc.registration_header(request) is None

    settings.AUTHGUARD_DBSC = {"ENABLED": False}
    off = Client()
    off.force_login(user_factory("off"))
    off.cookies[app_settings.DEVICE_COOKIE_NAME] = new_device_cookie()
    assert dbsc.REGISTRATION_HEADER not in off.get("/dbsc-offer/")
    assert DbscChallenge.objects.count() == 0


def session_user(client: Client) -> Any:
    from django.contrib.auth import get_user_model

    return get_user_model().objects.get(pk=client.session[SESSION_KEY])


def test_a_new_offer_of_the_same_session_replaces_the_older_one(browser: Client) -> None:
    key = DeviceKey()
    first = offer(browser)
    second = offer(browser)
    assert_refused(post_register(browser, key.proof(first)), 403, "challenge")
    assert DbscSession.objects.count() == 0
    assert post_register(browser, key.proof(second)).status_code == 200


def test_registration_replayed_is_refused_and_stores_nothing_more(browser: Client) -> None:
    key = DeviceKey()
    proof = key.proof(offer(browser))
    assert post_register(browser, proof).status_code == 200
    assert_refused(post_register(browser, proof), 403, "replayed")
    assert DbscSession.objects.count() == 1


def test_registration_with_an_expired_challenge_is_refused(browser: Client) -> None:
    key = DeviceKey()
    challenge = offer(browser)
    with time_machine.travel(timezone.now() + timedelta(seconds=301), tick=False):
        assert_refused(post_register(browser, key.proof(challenge)), 403, "expired")
    assert DbscSession.objects.count() == 0
    assert DbscChallenge.objects.get().used_at is None


def test_registration_with_a_challenge_not_issued_here_is_refused(browser: Client) -> None:
    offer(browser)
    assert_refused(post_register(browser, DeviceKey().proof("made-up-challenge")), 403, "challenge")
    assert DbscSession.objects.count() == 0


def test_registration_answering_another_sessions_offer_is_refused(browser: Client, user_factory: Any) -> None:
    """A copied proof (or challenge) used from another Django session, even with the same device cookie."""
    challenge = offer(browser)
    other = Client()
    other.force_login(user_factory("taro"))
    other.cookies[app_settings.DEVICE_COOKIE_NAME] = browser.cookies[app_settings.DEVICE_COOKIE_NAME].value
    assert_refused(post_register(other, DeviceKey().proof(challenge)), 403, "challenge")
    assert DbscSession.objects.count() == 0
    assert DbscChallenge.objects.get().used_at is None


def test_registration_from_another_device_cookie_is_refused(browser: Client) -> None:
    challenge = offer(browser)
    key = DeviceKey()
    with pytest.raises(dbsc.RegistrationNotAllowed) as caught:
        dbsc.verify_registration(
            proof=key.proof(challenge),
            user=session_user(browser),
            device_cookie_hash=device_hash("another-device"),
            session_nonce=browser.session[dbsc.SESSION_NONCE_KEY],
        )
    assert caught.value.code == "device" and caught.value.http_status == 403
    # Over HTTP the middleware's session binding already refuses the session carried to another device.
    browser.cookies[app_settings.DEVICE_COOKIE_NAME] = new_device_cookie()
    response = post_register(browser, key.proof(challenge))
    assert 400 <= response.status_code < 500 and bound_cookie(response) is None
    assert DbscSession.objects.count() == 0
    assert DbscChallenge.objects.get().used_at is None


def test_registration_needs_a_signed_in_session(dbsc_on: None) -> None:
    assert_refused(post_register(Client(), DeviceKey().proof("x")), 401, "login_required")


@pytest.mark.parametrize(
    "make, status, code",
    [
        # Algorithms: none, HMAC (with the public key as secret, the classic confusion), others.
        (lambda key, c: unsigned_proof(c, key.public_jwk()), 400, "algorithm"),
        (
            lambda key, c: jwt.encode(
                {"alg": "HS256", "typ": "dbsc+jwt", "jwk": key.public_jwk()},
                {"jti": c},
                OctKey.import_key(json.dumps(key.public_jwk()).encode()),
            ),
            400,
            "algorithm",
        ),
        (
            lambda key, c: jwt.encode(
                {
                    "alg": "ES384",
                    "typ": "dbsc+jwt",
                    "jwk": (k := ECKey.generate_key("P-384")).as_dict(private=False),
                },
                {"jti": c},
                k,
                algorithms=["ES384"],
            ),
            400,
            "algorithm",
        ),
        (
            lambda key, c: jwt.encode(
                {
                    "alg": "PS256",
                    "typ": "dbsc+jwt",
                    "jwk": (k := RSAKey.generate_key(2048)).as_dict(private=False),
                },
                {"jti": c},
                k,
                algorithms=["PS256"],
            ),
            400,
            "algorithm",
        ),
        # Header shape.
        (lambda key, c: key.proof(c, header={"typ": "JWT"}), 400, "type"),
        (lambda key, c: key.proof(c, registration=False), 400, "key"),
        (lambda key, c: key.proof(c, header={"jwk": key.key.as_dict(private=True)}), 400, "key"),
        (lambda key, c: key.proof(c, header={"jwk": DeviceKey().public_jwk()}), 401, "signature"),
        (lambda key, c: key.proof(c, header={"jwk": DeviceKey("RS256").public_jwk()}), 400, "key"),
        (
            lambda key, c: with_header(
                key.proof(c), {"alg": "ES256", "typ": "dbsc+jwt", "jwk": key.public_jwk(), "crit": ["x"]}
            ),
            400,
            "malformed",
        ),
        (
            lambda key, c: jwt.encode(
                {
                    "alg": "RS256",
                    "typ": "dbsc+jwt",
                    "jwk": (k := RSAKey.generate_key(1024)).as_dict(private=False),
                },
                {"jti": c},
                k,
            ),
            400,
            "key",
        ),
        # Claims.
        (lambda key, c: key.proof(c, claims={"jti": 42}), 400, "malformed"),
        # Not a JWT at all.
        (lambda key, c: "not-a-jwt", 400, "malformed"),
        (lambda key, c: "a.b.c", 400, "malformed"),
        (lambda key, c: key.proof(c)[:-12] + "AAAAAAAAAAAA", 401, "signature"),
        (lambda key, c: key.proof(c) + "x" * 9000, 400, "too_large"),
        (lambda key, c: key.proof(c).replace(".", "..", 1), 400, "malformed"),
    ],
    ids=[
        "none",
        "hs256",
        "es384",
        "ps256",
        "typ",
        "no-jwk",
        "private-jwk",
        "jwk-of-another-key",
        "jwk-wrong-type",
        "crit",
        "rsa-1024",
        "jti-not-string",
        "garbage",
        "three-parts-garbage",
        "bad-signature",
        "too-large",
        "four-parts",
    ],
)
# The rsa-1024 case generates a weak key on purpose (the browser side); joserfc warns about it.
@pytest.mark.filterwarnings("ignore:Key size should be:joserfc.errors.SecurityWarning")
def test_registration_with_a_bad_proof_is_refused_and_stores_nothing(
    browser: Client, make: Any, status: int, code: str
) -> None:
    key = DeviceKey()
    challenge = offer(browser)
    assert_refused(post_register(browser, make(key, challenge)), status, code)
    assert DbscSession.objects.count() == 0
    # SECURITY: a refused proof does not burn the offer: the real browser can still answer it.
    assert DbscChallenge.objects.get().used_at is None
    assert post_register(browser, key.proof(challenge)).status_code == 200


@pytest.mark.parametrize(
    "header, code",
    [
        (None, "no_proof"),
        ('"unterminated', "malformed"),
        ('"a" "b"', "malformed"),
        ("with space.and.dots", "malformed"),
        ('"bad\\escape"', "malformed"),
        ('"\u00e9t\u00e9"', "malformed"),
        ('""', "malformed"),
    ],
)
def test_registration_with_a_malformed_header_is_refused(
    browser: Client, header: str | None, code: str
) -> None:
    offer(browser)
    headers = {} if header is None else {"Secure-Session-Response": header}
    response = browser.post(REGISTER, headers=headers)
    assert_refused(response, 400, code)
    assert DbscSession.objects.count() == 0


def test_endpoints_answer_post_only_and_404_when_off(browser: Client, settings: Any) -> None:
    for url in (REGISTER, REFRESH):
        response = browser.get(url)
        assert response.status_code == 405 and response["Allow"] == "POST"
    settings.AUTHGUARD_DBSC = {"ENABLED": False}
    assert_refused(post_register(browser, DeviceKey().proof("x")), 404, "disabled")
    assert_refused(post_refresh(browser, "abc"), 404, "disabled")


def test_a_key_is_registered_once(browser: Client, user_factory: Any) -> None:
    key = DeviceKey()
    register(browser, key)
    other = Client()
    other.force_login(user_factory("taro"))
    other.cookies[app_settings.DEVICE_COOKIE_NAME] = new_device_cookie()
    assert_refused(post_register(other, key.proof(offer(other))), 400, "key_reused")
    assert DbscSession.objects.count() == 1


# -- refresh -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["ES256", "RS256"])
@pytest.mark.parametrize("quoted", [True, False], ids=["sf-string", "bare"])
def test_refresh_with_a_proof_issues_a_new_bound_cookie(browser: Client, alg: str, quoted: bool) -> None:
    key = DeviceKey(alg)
    session_id = register(browser, key)
    browser.cookies.pop(dbsc.bound_cookie_name())  # expired: the browser refreshes
    assert binding_state(browser) == "bound_missing_proof"

    first = post_refresh(browser, session_id, quoted=quoted)
    assert first.status_code == 403 and bound_cookie(first) is None
    assert first.json()["code"] == "challenge_required"
    challenge = CHALLENGE.match(first[dbsc.CHALLENGE_HEADER])["challenge"]  # type: ignore[index]

    later = timezone.now() + timedelta(minutes=3)
    with time_machine.travel(later, tick=False):
        response = post_refresh(browser, session_id, key.proof(challenge, registration=False), quoted=quoted)
    assert response.status_code == 200, response.content
    assert response.json()["session_identifier"] == session_id
    cookie = bound_cookie(response)
    assert cookie is not None and cookie.value and cookie["max-age"] == 600
    assert dbsc.bound_session_id(cookie.value) == session_id
    session = DbscSession.objects.get()
    assert session.last_refreshed_at == later
    assert session.expires_at == later + timedelta(days=400)
    assert DbscChallenge.objects.get(kind="refresh").used_at == later
    assert binding_state(browser) == "bound_ok"


def test_refresh_signed_by_another_key_is_refused(browser: Client) -> None:
    session_id = register(browser, DeviceKey())
    browser.cookies.pop(dbsc.bound_cookie_name())
    challenge = refresh_challenge(browser, session_id)
    thief = DeviceKey()
    assert_refused(
        post_refresh(browser, session_id, thief.proof(challenge, registration=False)), 401, "signature"
    )
    # Bringing his own key in the header does not help either.
    assert_refused(post_refresh(browser, session_id, thief.proof(challenge)), 400, "key")
    assert not DbscChallenge.objects.filter(kind="refresh").exists()  # no challenge was used up
    assert DbscSession.objects.get().last_refreshed_at == DbscSession.objects.get().created_at
    assert binding_state(browser) == "bound_missing_proof"


def test_refresh_with_a_replayed_proof_is_refused_with_a_new_challenge(browser: Client) -> None:
    key = DeviceKey()
    session_id = register(browser, key)
    proof = key.proof(refresh_challenge(browser, session_id), registration=False)
    assert post_refresh(browser, session_id, proof).status_code == 200

    thief = Client()  # the thief copied the device cookie and captured the proof
    thief.cookies[app_settings.DEVICE_COOKIE_NAME] = browser.cookies[app_settings.DEVICE_COOKIE_NAME].value
    response = post_refresh(thief, session_id, proof)
    assert_refused(response, 403, "replayed")
    assert CHALLENGE.match(response[dbsc.CHALLENGE_HEADER])  # the draft's 403: sign this one instead
    assert binding_state(thief) == "bound_missing_proof"


def test_refresh_with_a_missing_proof_issues_nothing_but_a_challenge(browser: Client) -> None:
    session_id = register(browser, DeviceKey())
    browser.cookies.pop(dbsc.bound_cookie_name())
    for _ in range(6):
        response = post_refresh(browser, session_id)
        assert response.status_code == 403 and bound_cookie(response) is None
        assert response.json()["message"]
    # Nothing is stored for a challenge until a proof answers it: no flood fills the table or evicts hers.
    assert DbscChallenge.objects.filter(kind="refresh").count() == 0
    assert binding_state(browser) == "bound_missing_proof"


def test_refresh_with_an_expired_or_foreign_challenge_is_refused(browser: Client, user_factory: Any) -> None:
    key = DeviceKey()
    session_id = register(browser, key)
    challenge = refresh_challenge(browser, session_id)
    with time_machine.travel(timezone.now() + timedelta(seconds=301), tick=False):
        assert_refused(
            post_refresh(browser, session_id, key.proof(challenge, registration=False)), 403, "expired"
        )

    # A challenge issued to another device's session does not refresh this one.
    other = Client()
    other.force_login(user_factory("taro"))
    other.cookies[app_settings.DEVICE_COOKIE_NAME] = new_device_cookie()
    other_id = register(other, DeviceKey())
    foreign = refresh_challenge(other, other_id)
    assert_refused(
        post_refresh(browser, session_id, key.proof(foreign, registration=False)), 403, "challenge"
    )
    # And a registration challenge is not a refresh challenge. (Without its bound cookie the session is
    # re-scored and, for this customer without a factor, ended: she signs in again for a new offer.)
    browser.cookies.pop(dbsc.bound_cookie_name())
    assert browser.get("/dbsc-offer/").status_code == 302
    browser.force_login(get_user_model().objects.get(username="hanako"))
    registration_challenge = offer(browser)
    assert_refused(
        post_refresh(browser, session_id, key.proof(registration_challenge, registration=False)),
        403,
        "challenge",
    )


def test_refresh_with_the_wrong_algorithm_for_the_key_is_refused(browser: Client) -> None:
    key = DeviceKey()
    session_id = register(browser, key)
    challenge = refresh_challenge(browser, session_id)
    forged = unsigned_proof(challenge, key.public_jwk()).replace(
        _b64({"alg": "none", "typ": "dbsc+jwt", "jwk": key.public_jwk()}),
        _b64({"alg": "none", "typ": "dbsc+jwt"}),
    )
    assert_refused(post_refresh(browser, session_id, forged), 400, "algorithm")
    rsa_key = DeviceKey("RS256")
    assert_refused(
        post_refresh(browser, session_id, rsa_key.proof(challenge, registration=False)), 400, "algorithm"
    )


def test_refresh_session_and_device_checks(browser: Client) -> None:
    key = DeviceKey()
    session_id = register(browser, key)
    assert_refused(post_refresh(browser, None), 400, "no_session_id")
    assert_refused(post_refresh(browser, "unknown-session"), 404, "unknown_session")
    assert_refused(post_refresh(browser, '"a" "b"', quoted=False), 400, "malformed")
    # Another browser (another device cookie, or none) cannot refresh this device's session: without a
    # device cookie it is refused; with another one it is given a challenge only the key can sign (the key's
    # holder moves the binding to its cookie: round thirty-four), and a proof by any other key is refused.
    stranger = Client()
    assert_refused(post_refresh(stranger, session_id), 400, "device")
    stranger.cookies[app_settings.DEVICE_COOKIE_NAME] = new_device_cookie()
    challenge = refresh_challenge(stranger, session_id)
    assert_refused(
        post_refresh(stranger, session_id, DeviceKey().proof(challenge, registration=False)), 401, "signature"
    )
    assert DbscChallenge.objects.filter(kind="refresh").count() == 0
    assert DbscSession.objects.get().device_hash == dbsc.request_device_hash(_request_of(browser))


def test_answering_one_refresh_challenge_twice_fails_even_when_both_proofs_verify(browser: Client) -> None:
    """Two requests racing with one proof: both verify, only the first records the challenge's use (its
    digest is unique), the second is ``replayed`` and changes nothing."""
    key = DeviceKey()
    session_id = register(browser, key)
    proof = key.proof(refresh_challenge(browser, session_id), registration=False)
    session = DbscSession.objects.get()
    dbsc.verify_refresh(session=session, proof=proof)
    refreshed = DbscSession.objects.get().last_refreshed_at
    with pytest.raises(dbsc.ChallengeRejected) as caught:
        dbsc.verify_refresh(session=session, proof=proof, now=timezone.now() + timedelta(seconds=5))
    assert caught.value.code == "replayed"
    assert DbscSession.objects.get().last_refreshed_at == refreshed


def test_a_refresh_signed_by_the_key_moves_the_binding_to_the_browsers_new_device_cookie(
    browser: Client,
) -> None:
    """Her browser was given a new device id (a copy of the old one was used, round thirty-four): the refresh
    it signs with its registered key moves the binding to the cookie it now holds, and it stays bound."""
    key = DeviceKey()
    session_id = register(browser, key)
    browser.cookies[app_settings.DEVICE_COOKIE_NAME] = new_device_cookie()
    browser.cookies.pop(dbsc.bound_cookie_name())
    browser.cookies.pop(settings.SESSION_COOKIE_NAME)  # (a refresh needs no signed-in session)
    answer = post_refresh(
        browser, session_id, key.proof(refresh_challenge(browser, session_id), registration=False)
    )
    assert answer.status_code == 200, answer.content
    assert DbscSession.objects.get().device_hash == dbsc.request_device_hash(_request_of(browser))
    assert binding_state(browser) == "bound_ok"


# -- the device binding state: the stolen-cookie case --------------------------------------------------------


def test_device_binding_state(browser: Client, settings: Any) -> None:
    assert binding_state(browser) == "unbound"  # not registered yet
    key = DeviceKey()
    register(browser, key)
    assert binding_state(browser) == "bound_ok"

    # Infostealer: the device cookie (and even the long-lived session cookie) copied to another machine,
    # the bound cookie expired long ago or never copied.
    thief = Client()
    thief.cookies[app_settings.DEVICE_COOKIE_NAME] = browser.cookies[app_settings.DEVICE_COOKIE_NAME].value
    assert binding_state(thief) == "bound_missing_proof"
    # The bound cookie copied too, but it only lives ten minutes.
    thief.cookies[dbsc.bound_cookie_name()] = browser.cookies[dbsc.bound_cookie_name()].value
    assert binding_state(thief) == "bound_ok"
    with time_machine.travel(timezone.now() + timedelta(minutes=11), tick=False):
        assert binding_state(thief) == "bound_missing_proof"
        assert binding_state(browser) == "bound_missing_proof"  # the real browser would refresh first
    # A forged or tampered bound cookie is no proof.
    thief.cookies[dbsc.bound_cookie_name()] = browser.cookies[dbsc.bound_cookie_name()].value + "x"
    assert binding_state(thief) == "bound_missing_proof"

    # Another device: unbound, whatever bound cookie it carries.
    stranger = Client()
    stranger.cookies[app_settings.DEVICE_COOKIE_NAME] = new_device_cookie()
    stranger.cookies[dbsc.bound_cookie_name()] = browser.cookies[dbsc.bound_cookie_name()].value
    assert binding_state(stranger) == "unbound"
    assert binding_state(Client()) == "unbound"  # no device cookie

    settings.AUTHGUARD_DBSC = {"ENABLED": False}
    assert binding_state(thief) == "unbound"


def test_device_binding_state_reads_one_query(browser: Client, django_assert_num_queries: Any) -> None:
    register(browser, DeviceKey())
    request = RequestFactory().get("/")
    request.COOKIES = {name: morsel.value for name, morsel in browser.cookies.items()}
    dev = dbsc.request_device_hash(request)
    with django_assert_num_queries(1):
        assert dbsc.device_binding_state(request, device_cookie_hash=dev) == "bound_ok"
    with django_assert_num_queries(0):
        assert dbsc.device_binding_state(request, device_cookie_hash=None) == "unbound"


def test_re_registration_after_a_lost_binding_replaces_the_old_key(
    browser: Client, authenticator: Any
) -> None:
    """The browser lost its DBSC session (its 10-minute cookie is gone and it cannot refresh): after the
    customer proved themselves with an established passkey, the sign-in offers a new registration, which
    ends the old binding; the old key can no longer refresh. A session verified without one (a sign-in, a
    relayed code) cannot replace a live binding: it proves nothing a copy of the device cookie could not
    (red team, 2026-12-05)."""
    hanako = get_user_model().objects.get(username="hanako")
    with time_machine.travel(timezone.now() - timedelta(days=30)):
        bind_passkey(hanako, authenticator)  # long established, not cooling off
    old_key = DeviceKey()
    old_id = register(browser, old_key)
    assert dbsc.REGISTRATION_HEADER not in browser.get("/dbsc-offer/")  # bound and proved: no offer

    browser.cookies.pop(dbsc.bound_cookie_name())
    # Its session without the bound cookie is a copy for all the server can tell: re-scored and held. She
    # signs in again, and the sign-in offers DBSC anew; a registration without the old key's proof and
    # without a passkey is refused, and the old binding stands.
    assert browser.get("/dbsc-offer/").status_code != 200
    browser.force_login(hanako)
    assert_refused(post_register(browser, DeviceKey().proof(offer(browser))), 403, "device")
    assert DbscSession.objects.get(session_id=old_id).ended_at is None
    assert passkey_step_up(browser, authenticator).status_code == 200
    new_id = register(browser, DeviceKey())
    assert new_id != old_id
    old = DbscSession.objects.get(session_id=old_id)
    assert old.ended_at is not None and old.end_reason == "replaced"
    assert binding_state(browser) == "bound_ok"
    assert_refused(post_refresh(browser, old_id), 404, "unknown_session")


def test_a_bound_sessions_cookie_replayed_without_the_bound_cookie_is_re_scored(
    browser: Client, user_factory: Any
) -> None:
    """Red team, 2026-12-04: DBSC was consulted only when a sign-in was scored, so the session cookie an
    infostealer copies with the rest of the jar was served for its whole life, from anywhere. Each request
    of a bound session now needs a fresh bound cookie of its binding (checked statelessly)."""
    from authguard.models import LoginEvent, Outcome

    register(browser, DeviceKey())
    assert browser.get("/dbsc-offer/").status_code == 200  # her browser, its bound cookie fresh
    thief = Client()
    for name in (settings.SESSION_COOKIE_NAME, app_settings.DEVICE_COOKIE_NAME):
        thief.cookies[name] = browser.cookies[name].value  # the bound cookie's ten minutes are over

    answer = thief.get("/dbsc-offer/")

    assert answer.status_code == 302 and "session_ended" in answer["Location"]
    event = LoginEvent.objects.get()
    assert event.outcome == Outcome.REFUSED and "device_binding_missing" in event.reasons
    # The shared session is gone for both: she signs in again.
    assert SESSION_KEY not in browser.session


@pytest.mark.parametrize("device_cookie", ["none", "fresh"])
def test_a_bound_session_cannot_shed_its_binding_by_leaving_the_device_cookie_behind(
    browser: Client, device_cookie: str
) -> None:
    """Review, 2026-12-04: without the device cookie (or with a new one) the context sees no binding, so the
    re-score was a plain new device, allowed on the customer's own line, and the session forgot its
    binding for good. The session's own binding is checked instead."""
    from authguard.models import LoginEvent

    register(browser, DeviceKey())
    assert browser.session[sessions_state.STATE_KEY]["db"]
    thief = Client()
    thief.cookies[settings.SESSION_COOKIE_NAME] = browser.cookies[settings.SESSION_COOKIE_NAME].value
    if device_cookie == "fresh":
        thief.cookies[app_settings.DEVICE_COOKIE_NAME] = new_device_cookie()

    answer = thief.get("/dbsc-offer/")

    assert answer.status_code == 302 and "session_ended" in answer["Location"]
    assert "device_binding_missing" in LoginEvent.objects.get().reasons


def test_a_sign_in_presenting_a_fresh_bound_cookie_binds_its_new_session(
    browser: Client, totp_factory: Any
) -> None:
    """A later sign-in of the bound browser (its bound cookie fresh) carries the binding into the new
    session, so a copy of that session's cookie needs the proof as well."""
    session_id = register(browser, DeviceKey())
    totp_factory(get_user_model().objects.get(username="hanako"))
    assert browser.post("/api/logout").status_code == 200  # (keeps the browser's cookies)
    answer = browser.post(
        "/api/login",
        {"username": "hanako", "password": "correct horse battery"},
        content_type="application/json",
    )
    assert answer.status_code == 200 and answer.json()["status"] in ("ok", "step_up_required")
    assert browser.session[sessions_state.STATE_KEY]["db"] == session_id


def test_a_session_whose_binding_ended_carries_on_without_the_bound_cookie(browser: Client) -> None:
    register(browser, DeviceKey())
    assert dbsc.end_device_binding(device_cookie_hash=device_of(browser), reason="device_revoked") == 1
    browser.cookies.pop(dbsc.bound_cookie_name())
    assert browser.get("/dbsc-offer/").status_code == 200
    assert "db" not in browser.session[sessions_state.STATE_KEY]
    assert SESSION_KEY in browser.session


def test_end_device_binding(browser: Client) -> None:
    session_id = register(browser, DeviceKey())
    assert dbsc.end_device_binding(device_cookie_hash=device_of(browser), reason="device_revoked") == 1
    assert binding_state(browser) == "unbound"
    assert_refused(post_refresh(browser, session_id), 404, "unknown_session")


# -- system checks -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        [],
        {"ENABLED": "yes"},
        {"BOUND_COOKIE_AGE": 10},
        {"BOUND_COOKIE_AGE": True},
        {"CHALLENGE_SECONDS": 3600},
        {"SESSION_DAYS": 0},
        {"BOUND_COOKIE_NAME": "bad name"},
        {"BOUND_COOKIE_NAME": "sessionid"},
        {"BOUND_COOKIE_NAME": "authguard_device"},
        {"TYPO": 1},
    ],
)
def test_check_e160_invalid_settings(settings: Any, value: Any) -> None:
    settings.AUTHGUARD_DBSC = value
    assert [m.id for m in checks.check_dbsc(None)] == [checks.Codes.DBSC_SETTINGS_INVALID]


def test_check_e161_w160(settings: Any) -> None:
    settings.AUTHGUARD_DBSC = {"ENABLED": True, "BOUND_COOKIE_AGE": 300}
    settings.SESSION_COOKIE_SECURE = True
    assert checks.check_dbsc(None) == []  # this module's URLconf mounts the endpoints
    settings.SESSION_COOKIE_SECURE = False
    assert [m.id for m in checks.check_dbsc(None)] == [checks.Codes.DBSC_WITHOUT_HTTPS]
    settings.ROOT_URLCONF = "django.contrib.auth.urls"  # a portal that did not mount authguard.urls
    settings.SESSION_COOKIE_SECURE = True
    assert [m.id for m in checks.check_dbsc(None)] == [checks.Codes.DBSC_URLS_MISSING]
    settings.AUTHGUARD_DBSC = {}
    assert checks.check_dbsc(None) == []


def test_first_sign_in_offer_binds_the_device_cookie_issued_in_the_same_response(
    user_factory: Any, dbsc_on: None
) -> None:
    """No device cookie in the request: the middleware issues one and binds the session to it
    (stepup.bind_issued_device_cookie); an offer made after that binds the challenge to the new cookie."""
    client = Client()
    client.force_login(user_factory("newcomer"))
    issued = new_device_cookie()
    session = client.session
    session[sessions_state.STATE_KEY] = {
        "s": "verified",
        "t": timezone.now().timestamp(),
        "b": {"dev": device_hash(device_id_from_cookie(issued))},
    }
    session.save()
    request = RequestFactory().get("/")
    request.session = client.session
    request.user = session_user(client)
    request.COOKIES = {}
    assert OFFER.match(dbsc.registration_header(request) or "")
    request.session.save()
    assert DbscChallenge.objects.get().device_hash == device_hash(device_id_from_cookie(issued))

    # The registration comes back with the issued cookie (verified at function level: this hand-made
    # session state has no full binding, which the middleware would re-score).
    challenge = OFFER.match(dbsc.registration_header(request) or "")["challenge"]  # type: ignore[index]
    registered = dbsc.verify_registration(
        proof=DeviceKey().proof(challenge),
        user=request.user,
        device_cookie_hash=device_hash(device_id_from_cookie(issued)),
        session_nonce=request.session[dbsc.SESSION_NONCE_KEY],
    )
    assert registered.device_hash == device_hash(device_id_from_cookie(issued))


# -- wired into sign-in and scoring (issue 13, acceptance 2) ------------------------------------------


def json_login(client: Client, ip: str) -> Any:
    return client.post(
        "/api/login",
        {"username": "hanako", "password": "correct horse battery"},
        content_type="application/json",
        REMOTE_ADDR=ip,
        HTTP_USER_AGENT=UA_CHROME_WIN,
    )


@pytest.mark.usefixtures("geoip")
def test_a_sign_in_offers_the_binding_and_a_copied_cookie_of_a_bound_device_is_stepped_up(
    browser: Client, totp_factory: Any
) -> None:
    totp_factory(session_user(browser))  # she can step up (without a factor, a risky sign-in is refused)
    # The real sign-in answer carries the offer (the middleware), for the device cookie it was made with.
    fresh = Client()
    fresh.cookies[app_settings.DEVICE_COOKIE_NAME] = browser.cookies[app_settings.DEVICE_COOKIE_NAME].value
    signed_in = json_login(fresh, IP_TOKYO)
    assert signed_in.status_code == 200 and signed_in.json()["status"] == "ok", signed_in.content
    assert OFFER.match(signed_in[dbsc.REGISTRATION_HEADER])
    # Her browser binds the device cookie to its key.
    register(browser, DeviceKey())
    # An infostealer copied the device cookie (not the key, not the short-lived bound cookie).
    thief = Client()
    thief.cookies[app_settings.DEVICE_COOKIE_NAME] = browser.cookies[app_settings.DEVICE_COOKIE_NAME].value
    answer = json_login(thief, IP_TOKYO)
    assert answer.status_code == 200 and answer.json()["status"] == "step_up_required", answer.content
    event = LoginEvent.objects.order_by("-pk").first()
    assert "device_binding_missing" in event.reasons and event.action == "step_up"
    # No malware warning: a browser that lost its DBSC session looks the same (the step-up is enough).
    assert not Notification.objects.filter(kind="device_cookie_copied", user=event.user).exists()
    # Her own browser, with its bound cookie, signs in as before.
    own = json_login(browser, IP_TOKYO)
    assert own.json()["status"] == "ok", own.content
    assert "device_binding_missing" not in LoginEvent.objects.order_by("-pk").first().reasons
