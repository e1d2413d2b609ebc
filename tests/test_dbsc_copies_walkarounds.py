"""Red team, round thirty-four (b): stolen device cookies and DBSC, fixed.

* A registration no longer takes a copied bound cookie for a proof of the key, and a device cookie the
  account used before the offering sign-in is bound only after a passkey (``dbsc._check_bindable``).
* A missing proof and a cookie one sign-in behind no longer add up to a refusal of her own browser
  (``signals_device``: the behind finding is one point beside a missing proof).
* A refresh signed by the registered key moves the binding to the browser's new device cookie
  (``dbsc.verify_refresh``), so her browser given a new id after a copy was used keeps its binding.
* Refresh challenges are not stored until answered: a copy's requests cannot evict hers.
* Kept as a trade: a copy shown to the thief's own account holds her bound session once (either holder may
  be the thief while the bound cookie is fresh, and it is copied with the jar); her step-up carries her on
  and her binding follows her new id.

The infostealer copies the whole cookie jar (device cookie, the short-lived bound cookie, maybe the session
cookie) and her user agent; the thief replays it from a residential proxy on her ISP in her city. Real
sign-ins through the demo's JSON API, real DBSC keys and proofs (test_sessions_dbsc's helpers), real TOTP
codes, the real middleware, GeoIP test databases, time-machine for time.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.conf import settings
from django.test import Client
from django.utils import timezone

from authguard.conf import app_settings
from authguard.models import DbscSession, LoginEvent
from authguard.risk.context import device_id_from_cookie
from authguard.sessions import dbsc

from .conftest import IP_TOKYO, IP_TOKYO_2, UA_CHROME_WIN, api_post, totp_token
from .test_sessions_dbsc import (  # the protocol helpers: real keys, real proofs
    CHALLENGE,
    OFFER,
    DeviceKey,
    dbsc_on,  # noqa: F401 (fixture)
    post_refresh,
    post_register,
    register,
    urlpatterns,  # noqa: F401 (this module's URLconf: the demo plus the offer view)
)

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__), pytest.mark.usefixtures("geoip", "dbsc_on")]

DEVICE = app_settings.DEVICE_COOKIE_NAME
BOUND = "authguard_bound"
PASSWORD = "correct horse battery"


@pytest.fixture
def clock() -> Any:
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        yield traveller


def _login(client: Client, username: str = "hanako") -> Any:
    return client.post(
        "/api/login", {"username": username, "password": PASSWORD}, content_type="application/json"
    )


def _last(username: str = "hanako") -> LoginEvent:
    return LoginEvent.objects.filter(user__username=username).order_by("-pk").first()


def _summary(event: LoginEvent | None) -> str:
    if event is None:
        return "no event"
    parts = ", ".join(f"{f['code']} {f['score']:+d}" for f in event.findings if f["score"])
    return f"{event.action}/{event.outcome} at {event.score} ({parts})"


def _her_bound_browser(user_factory: Any, totp_factory: Any) -> tuple[Client, DeviceKey, str, Any]:
    """Hanako (authenticator app) signs in at home; her browser binds its device cookie to its TPM key.
    Returns (her browser, her key, the binding's id, her totp device)."""
    totp = totp_factory(user_factory("hanako", password=PASSWORD))
    her = Client(REMOTE_ADDR=IP_TOKYO, HTTP_USER_AGENT=UA_CHROME_WIN)
    her.get("/api/csrf")
    answer = _login(her)
    assert answer.json()["status"] == "ok", _summary(_last())
    assert her.get("/api/portfolio").status_code == 200
    key = DeviceKey()
    binding = register(her, key)
    assert her.get("/api/portfolio").status_code == 200  # bound and proven
    return her, key, binding, totp


def _her_refresh(her: Client, key: DeviceKey, binding: str) -> Any:
    """Her browser's DBSC refresh, as Chrome runs it when the bound cookie runs out."""
    first = post_refresh(her, binding)
    if first.status_code != 403:
        return first
    match = CHALLENGE.match(first[dbsc.CHALLENGE_HEADER])
    assert match, first.content
    return post_refresh(her, binding, key.proof(match["challenge"], registration=False))


@pytest.mark.battery(62)
def test_a_fresh_jar_and_one_relayed_code_do_not_re_bind_her_browser_to_the_thiefs_key(
    clock: Any, user_factory: Any, totp_factory: Any
) -> None:
    """The infostealer sends the jar at once (as today's stealers do): her device cookie and her bound cookie,
    fresh for ten minutes. The thief signs in to her account from her ISP in Tokyo *without* the bound cookie
    (``device_binding_missing``: stepped up; the device being unproven, the step-up's answer carries a
    registration offer), relays one TOTP code, answers the offer with his own key and sends her copied bound
    cookie with it (keeping her copied device cookie, never the re-issued ones). ``_check_replaceable`` takes
    the copied bearer cookie for "a request that proves the binding": her TPM-held binding is ended
    (``replaced``) and his key binds her device cookie for her account. Now: her browser's refresh gets 404
    (Chrome drops the session); two days later he signs in with her password alone, allowed at 0 as her
    known, key-proven browser (``bound_ok``), while her own browser is stepped up as the copy
    (``device_binding_missing``) at every sign-in, for 400 days of his refreshes. (A copied live session
    cookie instead of the password does the same: held, one relayed code, the offer.)
    Secure: replacing a live binding needs a proof of its *key* (a signature by the old key, or an offer made
    to a request that itself presented the fresh bound cookie), never the bearer bound cookie alone, which
    is copied with the jar; his registration is refused and her binding stands."""
    her, key, binding, totp = _her_bound_browser(user_factory, totp_factory)
    jar = {DEVICE: her.cookies[DEVICE].value, BOUND: her.cookies[BOUND].value}

    clock.shift(timedelta(minutes=3))  # within the bound cookie's ten minutes
    thief = Client(REMOTE_ADDR=IP_TOKYO_2, HTTP_USER_AGENT=UA_CHROME_WIN)
    thief.get("/api/csrf")
    thief.cookies[DEVICE] = jar[DEVICE]  # the bound cookie held back for now
    answer = _login(thief)
    assert answer.json()["status"] == "step_up_required", _summary(_last())
    assert "device_binding_missing" in _last().reasons
    passed = api_post(thief, "api-step-up-totp", {"code": totp_token(totp)})  # one relayed code
    assert passed.status_code == 200, passed.content
    offered = OFFER.match(passed.get(dbsc.REGISTRATION_HEADER, ""))
    assert offered, dict(passed.items())
    his_key = DeviceKey()
    thief.cookies[DEVICE] = jar[DEVICE]  # her copied cookie, not the re-issued one
    thief.cookies[BOUND] = jar[BOUND]  # the copied bound cookie "proves" the binding
    registered = post_register(thief, his_key.proof(offered["challenge"]))

    hers = DbscSession.objects.get(session_id=binding)
    his = DbscSession.objects.filter(key_thumbprint=his_key.key.thumbprint(), ended_at__isnull=True).first()
    later = "-"
    if his is not None:  # two days on: his browser refreshes with his key, then signs in with her password
        clock.shift(timedelta(days=2))
        thief.cookies.pop(BOUND)
        challenge = CHALLENGE.match(post_refresh(thief, his.session_id)[dbsc.CHALLENGE_HEADER])["challenge"]
        assert (
            post_refresh(thief, his.session_id, his_key.proof(challenge, registration=False)).status_code
            == 200
        )
        thief.post("/api/logout")
        thief.cookies[DEVICE] = jar[DEVICE]
        later = f"his sign-in {_login(thief).json()['status']} {_summary(_last())}"
        her.cookies.pop(BOUND, None)  # her refresh is refused: Chrome dropped the session
        her.post("/api/logout")
        later += f"; hers {_login(her).json()['status']} {_summary(_last())}"
    assert hers.ended_at is None and his is None, (
        f"registration with a copied bound cookie: {registered.status_code}; her binding ended: "
        f"{hers.end_reason}; his key bound for her account: {his is not None}; {later}"
    )


@pytest.mark.battery(62)
def test_after_a_re_binding_attempt_her_own_browser_is_not_refused(
    clock: Any, user_factory: Any, totp_factory: Any
) -> None:
    """The same re-binding by a thief whose browser simply keeps the cookies it is given (his step-up's
    re-issued device cookie, the next generation of her id). Two days later her browser's refresh is 404
    (her binding was replaced), and her sign-in at home from her own TPM-bound browser scores
    ``device_binding_missing`` +60 and ``device_cookie_behind`` +40: 100, *denied*. Her own computer is
    locked out of her account; his copy is stepped up, and his key keeps her device cookie bound.
    Secure: her browser, the key's real holder, is let in (at most stepped up); the copied bound cookie
    never re-binds her device (see the test above)."""
    her, key, binding, totp = _her_bound_browser(user_factory, totp_factory)
    jar = {DEVICE: her.cookies[DEVICE].value, BOUND: her.cookies[BOUND].value}
    clock.shift(timedelta(minutes=3))
    thief = Client(REMOTE_ADDR=IP_TOKYO_2, HTTP_USER_AGENT=UA_CHROME_WIN)
    thief.get("/api/csrf")
    thief.cookies[DEVICE] = jar[DEVICE]
    assert _login(thief).json()["status"] == "step_up_required"
    passed = api_post(thief, "api-step-up-totp", {"code": totp_token(totp)})  # one relayed code
    offered = OFFER.match(passed.get(dbsc.REGISTRATION_HEADER, ""))
    assert offered, dict(passed.items())
    thief.cookies[BOUND] = jar[BOUND]
    registered = post_register(thief, DeviceKey().proof(offered["challenge"]))

    clock.shift(timedelta(days=2))
    refreshed = _her_refresh(her, key, binding)
    her.cookies.pop(BOUND, None)  # Chrome dropped the session it could not refresh
    her.post("/api/logout")
    answer = _login(her)
    assert answer.json()["status"] in ("ok", "step_up_required"), (
        f"his registration {registered.status_code}; her refresh {refreshed.status_code}; her own browser's "
        f"sign-in at home: {answer.json()['status']}, {_summary(_last())}"
    )


def _thief_steps_up_with_a_current_copy(clock: Any, jar_device: str, totp: Any) -> Client:
    """The thief signs in to her account with her current device cookie (no bound cookie: its minutes are
    over), from another line of her ISP in Tokyo, and relays one TOTP code. Returns his browser."""
    thief = Client(REMOTE_ADDR=IP_TOKYO_2, HTTP_USER_AGENT=UA_CHROME_WIN)
    thief.get("/api/csrf")
    thief.cookies[DEVICE] = jar_device
    answer = _login(thief)
    assert answer.json()["status"] == "step_up_required", _summary(_last())
    assert "device_binding_missing" in _last().reasons
    clock.shift(timedelta(seconds=40))
    passed = api_post(thief, "api-step-up-totp", {"code": totp_token(totp)})
    assert passed.status_code == 200, passed.content
    assert thief.get("/api/portfolio").status_code == 200  # his session confirms what it was given
    return thief


@pytest.mark.battery(62)
def test_her_bound_browser_signing_in_after_the_thief_keeps_its_binding_and_its_session(
    clock: Any, user_factory: Any, totp_factory: Any
) -> None:
    """Customer cost: the copy is current (taken after her last sign-in). The thief signs in with it (no
    bound cookie: stepped up), relays one code; his step-up re-issues her device id's next generation to him.
    In the evening her own DBSC-bound browser (TPM key, fresh bound cookie: ``bound_ok``) signs in at home:
    one generation behind, so the id is retired and she is given a *new* device id. Her DBSC session is
    bound to the old id: ten minutes later Chrome's refresh is answered 400 ``device`` (Chrome drops the
    session), her next page is held for ``device_binding_missing`` and she must step up in the middle of her
    session; her browser has lost DBSC (the offer comes only after a sign-in or step-up).
    Secure: a sign-in that proves the device key (``bound_ok``) is the browser, not a copy: her binding goes
    on with her browser (it follows the new id, or the id is kept for the proven holder), her refresh
    succeeds and her session is not held."""
    her, key, binding, totp = _her_bound_browser(user_factory, totp_factory)
    stolen = her.cookies[DEVICE].value

    clock.shift(timedelta(hours=2))
    _thief_steps_up_with_a_current_copy(clock, stolen, totp)

    clock.shift(timedelta(hours=6))  # the evening: her browser refreshes, then signs in at home
    assert _her_refresh(her, key, binding).status_code == 200
    her.post("/api/logout")
    answer = _login(her)
    event = _last()
    assert answer.json()["status"] == "ok", _summary(event)
    assert her.get("/api/portfolio").status_code == 200
    new_id = device_id_from_cookie(her.cookies[DEVICE].value) != device_id_from_cookie(stolen)

    clock.shift(timedelta(minutes=11))  # the bound cookie runs out; Chrome refreshes it
    refreshed = _her_refresh(her, key, binding)
    page = her.get("/api/portfolio")
    assert refreshed.status_code == 200 and page.status_code == 200, (
        f"her proven sign-in ({_summary(event)}, new device id: {new_id}); her browser's DBSC refresh: "
        f"{refreshed.status_code} {refreshed.content[:80]!r}; her next page: {page.status_code} "
        f"{page.content[:120]!r}; last event: {_summary(_last())}"
    )


def test_cost_a_copy_shown_to_the_thiefs_own_account_holds_her_bound_session_once_and_she_carries_on(
    clock: Any, user_factory: Any, totp_factory: Any
) -> None:
    """Customer cost, kept (red team, round thirty-four): with only the copy of her device cookie and an
    account of his own, the thief signs in to his account; within a minute her live session is held as
    ``device_cookie_superseded``. Her bound cookie cannot tell her from him while it is fresh (it is copied
    with the jar), so the two holders of one device id are both stopped. What is fixed: her step-up carries
    her on, her browser is given a new device id, and the refresh her key signs moves her binding to it; her
    session stays bound and her pages load."""
    her, key, binding, totp = _her_bound_browser(user_factory, totp_factory)
    stolen = her.cookies[DEVICE].value

    clock.shift(timedelta(minutes=3))
    kuroda = user_factory("kuroda", password=PASSWORD)
    his_totp = totp_factory(kuroda)
    thief = Client(REMOTE_ADDR=IP_TOKYO_2, HTTP_USER_AGENT=UA_CHROME_WIN)
    thief.get("/api/csrf")
    thief.cookies[DEVICE] = stolen
    answer = _login(thief, "kuroda")
    if answer.json()["status"] == "step_up_required":
        assert api_post(thief, "api-step-up-totp", {"code": totp_token(his_totp)}).status_code == 200
    assert thief.get("/api/portfolio").status_code == 200

    clock.shift(timedelta(minutes=2))
    assert her.get("/api/portfolio").status_code == 401  # held once: two holders of her device id
    clock.shift(timedelta(seconds=31))
    assert api_post(her, "api-step-up-totp", {"code": totp_token(totp)}).status_code == 200
    assert device_id_from_cookie(her.cookies[DEVICE].value) != device_id_from_cookie(stolen)
    clock.shift(timedelta(minutes=11))  # her bound cookie runs out; her key signs the refresh
    assert _her_refresh(her, key, binding).status_code == 200
    assert her.get("/api/portfolio").status_code == 200
    assert DbscSession.objects.get(session_id=binding).ended_at is None


def _session_id_of(bound_cookie_value: str) -> str:
    """The DBSC session id inside a bound cookie (a TimestampSigner value: signed, not encrypted)."""
    return bound_cookie_value.split(":", 1)[0]


@pytest.mark.battery(62)
def test_a_copy_asking_for_challenges_does_not_evict_her_browsers_refresh(
    clock: Any, user_factory: Any, totp_factory: Any
) -> None:
    """Customer cost: the bound cookie is signed, not encrypted: the copied jar (even an expired bound cookie)
    tells the thief her DBSC session id, and he has her device cookie. The refresh endpoint issues a
    challenge to anyone who names the session with its device cookie, and keeps at most four outstanding,
    dropping the oldest. From a residential proxy he asks for a challenge a few times a second: each time
    Chrome's refresh gets its challenge and signs it with the TPM key, the challenge has been dropped, and
    her proof is refused (403, a new challenge, dropped in turn). Her bound cookie lapses: her session is
    held for ``device_binding_missing`` and each of her sign-ins is stepped up as a copy, for as long as
    he keeps asking (no password, no code, nothing of his own at stake).
    Secure: a challenge issued to the browser stays answerable until it expires whatever others ask for
    (challenges bounded per requester, or the oldest kept): her key's proof gets her a new bound cookie."""
    her, key, binding, _totp = _her_bound_browser(user_factory, totp_factory)
    jar = {DEVICE: her.cookies[DEVICE].value, BOUND: her.cookies[BOUND].value}
    session_id = _session_id_of(jar[BOUND])
    assert session_id == binding

    thief = Client(REMOTE_ADDR=IP_TOKYO_2, HTTP_USER_AGENT=UA_CHROME_WIN)
    thief.cookies[DEVICE] = jar[DEVICE]

    clock.shift(timedelta(minutes=11))  # her bound cookie runs out: Chrome refreshes
    first = post_refresh(her, binding)
    assert first.status_code == 403
    challenge = CHALLENGE.match(first[dbsc.CHALLENGE_HEADER])["challenge"]
    for _ in range(4):  # the thief's requests, landing while her TPM signs
        assert post_refresh(thief, session_id).status_code == 403
    answered = post_refresh(her, binding, key.proof(challenge, registration=False))
    if not answered.cookies.get(BOUND):
        her.cookies.pop(BOUND, None)  # Chrome gives up; her expired bound cookie counts for nothing
    page = her.get("/api/portfolio")
    assert answered.status_code == 200 and answered.cookies.get(BOUND) and page.status_code == 200, (
        f"her browser's refresh, signed by her TPM key, after the copy asked for four challenges: "
        f"{answered.status_code} {answered.content[:100]!r}; her next page: {page.status_code} "
        f"{_summary(_last())}"
    )


# -- held ------------------------------------------------------------------------------------------------


def test_held_the_copy_cannot_refresh_her_binding_after_the_id_is_retired(
    clock: Any, user_factory: Any, totp_factory: Any
) -> None:
    """HELD: her id retired by the copy (shown two sign-ins old), the thief names her DBSC session (read out
    of the copied bound cookie) with her device cookie and signs the challenge with a key of his own: 401, no
    bound cookie; the refresh proof cannot bring a key either (400)."""
    her, key, binding, totp = _her_bound_browser(user_factory, totp_factory)
    jar = {DEVICE: her.cookies[DEVICE].value, BOUND: her.cookies[BOUND].value}
    for _ in range(2):
        clock.shift(timedelta(minutes=2))
        her.post("/api/logout")
        assert _login(her).json()["status"] == "ok", _summary(_last())
        assert her.get("/api/portfolio").status_code == 200
    clock.shift(timedelta(hours=3))
    thief = Client(REMOTE_ADDR=IP_TOKYO_2, HTTP_USER_AGENT=UA_CHROME_WIN)
    thief.get("/api/csrf")
    thief.cookies[DEVICE] = jar[DEVICE]
    assert _login(thief).json()["status"] == "step_up_required"
    assert "device_cookie_superseded" in _last().reasons  # retired
    session_id = _session_id_of(jar[BOUND])
    first = post_refresh(thief, session_id)
    assert first.status_code == 403
    challenge = CHALLENGE.match(first[dbsc.CHALLENGE_HEADER])["challenge"]
    mine = DeviceKey()
    signed = post_refresh(thief, session_id, mine.proof(challenge, registration=False))
    with_key = post_refresh(thief, session_id, mine.proof(challenge))
    assert signed.status_code == 401 and not signed.cookies.get(BOUND)
    assert with_key.status_code == 400 and not with_key.cookies.get(BOUND)
    assert DbscSession.objects.get(session_id=binding).ended_at is None


def test_held_his_own_accounts_binding_refreshed_inside_her_copied_session_does_not_re_point_it(
    clock: Any, user_factory: Any, totp_factory: Any
) -> None:
    """HELD: the thief binds her copied device cookie to his key from his own account (kuroda), then replays
    her copied session cookie and refreshes *his* binding through it: the refresh answers (his binding, his
    key), but her session's binding is not re-pointed (another account's), and her copied session is held
    for the missing proof of her own binding."""
    her, _key, binding, _totp = _her_bound_browser(user_factory, totp_factory)
    jar = {name: her.cookies[name].value for name in (DEVICE, settings.SESSION_COOKIE_NAME)}
    kuroda = user_factory("kuroda", password=PASSWORD)
    his_totp = totp_factory(kuroda)
    own = Client(REMOTE_ADDR=IP_TOKYO_2, HTTP_USER_AGENT=UA_CHROME_WIN)
    own.get("/api/csrf")
    own.cookies[DEVICE] = jar[DEVICE]
    passed = _login(own, "kuroda")
    if passed.json()["status"] == "step_up_required":
        passed = api_post(own, "api-step-up-totp", {"code": totp_token(his_totp)})
    own.cookies[DEVICE] = jar[DEVICE]  # the re-issued cookie is not kept
    offered = OFFER.match(passed.get(dbsc.REGISTRATION_HEADER, ""))
    assert offered, dict(passed.items())
    his_key = DeviceKey()
    registered = post_register(own, his_key.proof(offered["challenge"]))
    assert registered.status_code == 200, registered.content
    his_binding = registered.json()["session_identifier"]

    clock.shift(timedelta(minutes=11))
    replay = Client(REMOTE_ADDR=IP_TOKYO_2, HTTP_USER_AGENT=UA_CHROME_WIN)
    for name, value in jar.items():
        replay.cookies[name] = value
    challenge = CHALLENGE.match(post_refresh(replay, his_binding)[dbsc.CHALLENGE_HEADER])["challenge"]
    refreshed = post_refresh(replay, his_binding, his_key.proof(challenge, registration=False))
    assert refreshed.status_code == 200  # his own binding
    page = replay.get("/api/portfolio")
    assert page.status_code != 200, page.content
    assert DbscSession.objects.get(session_id=binding).ended_at is None


def test_held_the_thiefs_stepped_up_session_is_held_after_her_proven_sign_in(
    clock: Any, user_factory: Any, totp_factory: Any
) -> None:
    """HELD: the thief's session (a current copy stepped up with one relayed code) is held within a minute of
    her own browser's sign-in: his device cookie's id is retired, and he has no proof of her key."""
    her, key, binding, totp = _her_bound_browser(user_factory, totp_factory)
    stolen = her.cookies[DEVICE].value
    clock.shift(timedelta(hours=2))
    thief = _thief_steps_up_with_a_current_copy(clock, stolen, totp)
    clock.shift(timedelta(hours=1))
    assert _her_refresh(her, key, binding).status_code == 200
    her.post("/api/logout")
    assert _login(her).json()["status"] == "ok"
    assert her.get("/api/portfolio").status_code == 200
    clock.shift(timedelta(minutes=2))
    page = thief.get("/api/portfolio")
    assert page.status_code != 200, page.content


@pytest.mark.battery(62)
def test_a_current_copy_of_her_unbound_browser_cannot_be_bound_to_the_thiefs_key(
    clock: Any, user_factory: Any, totp_factory: Any
) -> None:
    """Her browser has no DBSC (Firefox, Safari, a Mac: most of a brokerage's customers), so her device cookie
    has no binding. The stealer's copy is current (taken after her last sign-in: the case docs/dbsc.md
    leaves to the rest of the engine). With her password alone the thief signs in from her ISP in Tokyo as
    her known browser, and his allowed sign-in's answer offers a registration *for her device cookie in her
    account*; he answers it with his own key (nothing to replace, nothing to prove). Now her own browser's
    next sign-in at home is ``device_binding_missing`` +60 and ``device_cookie_behind`` +40 (his sign-in moved
    the id on): 100, *denied*; her second try is stepped up as a copy (``device_binding_missing``,
    ``device_cookie_superseded``), for a key she never had. With no code at all he turned her own computer
    into "the copy". (The 2026-12-05 fix made bindings per account, which closed this from *his* account
    only; docs/dbsc.md: "a thief replaying the customer's copied cookie jar could bind her unbound device
    cookie to his own key and make her own browser the copy".)
    Customer cost, and DBSC turned against her.
    Secure: a device cookie already in use unbound is bound to a new key only where the binding proves
    something its own browser lacks (the request the cookie was issued to, or a phishing-resistant step-up);
    otherwise no offer, and her browser's sign-in is never refused for another key's binding."""
    totp_factory(user_factory("hanako", password=PASSWORD))
    her = Client(REMOTE_ADDR=IP_TOKYO, HTTP_USER_AGENT=UA_CHROME_WIN)
    her.get("/api/csrf")
    assert _login(her).json()["status"] == "ok", _summary(_last())  # (her browser ignores the offer)
    assert her.get("/api/portfolio").status_code == 200
    stolen = her.cookies[DEVICE].value

    clock.shift(timedelta(hours=5))
    thief = Client(REMOTE_ADDR=IP_TOKYO_2, HTTP_USER_AGENT=UA_CHROME_WIN)
    thief.get("/api/csrf")
    thief.cookies[DEVICE] = stolen
    answer = _login(thief)
    signed_in = f"{answer.json()['status']} {_summary(_last())}"
    offered = OFFER.match(answer.get(dbsc.REGISTRATION_HEADER, ""))
    registered = post_register(thief, DeviceKey().proof(offered["challenge"])) if offered else None

    clock.shift(timedelta(days=1))
    her.post("/api/logout")
    hers = _login(her)
    first = f"{hers.json()['status']}, {_summary(_last())}"
    clock.shift(timedelta(minutes=5))
    again = _login(her)  # she tries again
    second = f"{again.json()['status']}, {_summary(_last())}"
    assert hers.json()["status"] in ("ok", "step_up_required") and "device_binding_missing" not in first, (
        f"his sign-in with the current copy: {signed_in}; his registration for her device cookie: "
        f"{registered.status_code if registered else None}; her own browser's next sign-in at home: "
        f"{first}; her second try: {second}"
    )


def test_held_a_copy_one_sign_in_old_shown_in_her_grace_minute_is_still_stepped_up_for_the_missing_proof(
    clock: Any, user_factory: Any, totp_factory: Any
) -> None:
    """HELD: the thief times a copy one sign-in old of her DBSC-bound browser to twenty seconds after her
    morning sign-in (the grace minute, where the one before the newest counts as current): the generations
    see nothing, but the copy has no proof of her key: stepped up (``device_binding_missing``), not let in,
    and his attempt teaches her account nothing."""
    her, key, binding, totp = _her_bound_browser(user_factory, totp_factory)
    stolen = her.cookies[DEVICE].value
    clock.shift(timedelta(days=1))
    assert _her_refresh(her, key, binding).status_code == 200
    her.post("/api/logout")
    assert _login(her).json()["status"] == "ok", _summary(_last())
    assert her.get("/api/portfolio").status_code == 200  # confirms her new generation
    clock.shift(timedelta(seconds=20))
    thief = Client(REMOTE_ADDR=IP_TOKYO_2, HTTP_USER_AGENT=UA_CHROME_WIN)
    thief.get("/api/csrf")
    thief.cookies[DEVICE] = stolen
    answer = _login(thief)
    event = _last()
    assert answer.json()["status"] == "step_up_required", _summary(event)
    assert "device_binding_missing" in event.reasons
    assert thief.get("/api/portfolio").status_code != 200
    assert her.get("/api/portfolio").status_code == 200  # her own session carries on
