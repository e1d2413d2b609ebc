"""Red team round thirty-eight (a): a refresh of the thief's own DBSC binding, sent with a copy of her
signed-in session cookie, re-binds HER Django session to HIS key (``dbsc_views.refresh`` calls
``note_device_bound`` for any binding of the session's account, and a refused move still answers 200).

Real sign-ins through the demo's JSON API, real DBSC keys and proofs (test_sessions_dbsc's helpers), real
TOTP, the real middleware, GeoIP test databases, time-machine for time.
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
from authguard.models import DbscSession

from .conftest import IP_TOKYO, IP_TOKYO_2, UA_CHROME_WIN
from .test_dbsc_copies_walkarounds import _her_refresh, _last, _login, _summary
from .test_dbsc_moves_walkarounds import _thief_binds_his_own_browser
from .test_sessions_dbsc import (  # noqa: F401
    CHALLENGE,
    OFFER,
    DeviceKey,
    dbsc_on,
    post_refresh,
    register,
    urlpatterns,
)

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__), pytest.mark.usefixtures("geoip", "dbsc_on")]

DEVICE = app_settings.DEVICE_COOKIE_NAME
BOUND = "authguard_bound"
PASSWORD = "correct horse battery"


@pytest.fixture
def clock() -> Any:
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        yield traveller


def _her_bound_history(
    clock: Any, user_factory: Any, totp_factory: Any, days: int = 5
) -> tuple[Client, Any, str, Any]:
    """Hanako binds her browser (TPM key) at her first sign-in, then signs in from it every day; the last
    day she stays signed in. Returns (her browser, her key, her binding, her totp device)."""
    totp = totp_factory(user_factory("hanako", password=PASSWORD))
    her = Client(REMOTE_ADDR=IP_TOKYO, HTTP_USER_AGENT=UA_CHROME_WIN)
    her.get("/api/csrf")
    assert _login(her).json()["status"] == "ok", _summary(_last())
    assert her.get("/api/portfolio").status_code == 200
    key = DeviceKey()
    binding = register(her, key)
    assert her.get("/api/portfolio").status_code == 200
    for _ in range(days):
        her.post("/api/logout")
        clock.shift(timedelta(days=1))
        assert _her_refresh(her, key, binding).status_code == 200
        assert _login(her).json()["status"] == "ok", _summary(_last())
        assert her.get("/api/portfolio").status_code == 200
    return her, key, binding, totp


def _refresh_his(client: Client, key: DeviceKey, binding: str) -> Any:
    first = post_refresh(client, binding)
    if first.status_code != 403:
        return first
    match = CHALLENGE.match(first["Secure-Session-Challenge"])
    assert match, first.content
    return post_refresh(client, binding, key.proof(match["challenge"], registration=False))


def _copy_jar(source: Client, ip: str) -> Client:
    copy = Client(REMOTE_ADDR=ip, HTTP_USER_AGENT=UA_CHROME_WIN)
    for name in (settings.SESSION_COOKIE_NAME, DEVICE, BOUND, settings.CSRF_COOKIE_NAME):
        if name in source.cookies:
            copy.cookies[name] = source.cookies[name].value
    return copy


def test_his_keys_refresh_with_her_copied_session_rebinds_her_session_to_his_key(
    clock: Any, user_factory: Any, totp_factory: Any
) -> None:
    """Secure: a DBSC refresh binds the request's Django session only to a binding of the session's own
    browser (the binding on its device cookie, or the one the session was bound to), never to another
    browser's key of the account; her copied session cookie is held once her copied bound cookie runs out
    (ten minutes), as DBSC promises.

    The attacker had her password and a fresh copy of her cookie jar (session cookie, device cookie, her
    bound cookie of ten minutes: the infostealer sends it at once); no code. He signs in on a fresh browser
    of his own (a new browser on her ISP with her user agent: allowed, no code) and registers his own key
    (his binding, on his device cookie). Then, within the copied bound cookie's minutes, he sends a refresh
    of HIS binding with her copied jar: the move onto her device is refused, but the answer is still 200,
    his bound cookie is set, and ``note_device_bound`` writes his binding's id into HER session's state
    (same account). From then on her copied session is 'bound' to his key: each of its requests with a
    fresh bound cookie of his binding (refreshed by his key from anywhere) passes ``bound_proof_missing``,
    hours after her copied bound cookie expired: the copied session carries on as her verified session on
    her browser, and her own browser's session (with her own bound cookie) is now the one held."""
    her, her_key, her_binding, totp = _her_bound_history(clock, user_factory, totp_factory)
    jar = _copy_jar(her, IP_TOKYO_2)  # the stealer's copy, sent at once: her bound cookie still fresh

    thief = Client(REMOTE_ADDR=IP_TOKYO_2, HTTP_USER_AGENT=UA_CHROME_WIN)
    his_key, his_binding = _thief_binds_his_own_browser(thief, totp)
    assert his_binding != her_binding

    # Within her copied bound cookie's minutes: refresh HIS binding through HER copied session.
    answer = _refresh_his(jar, his_key, his_binding)
    rebound_status = answer.status_code

    # An hour later (her copied bound cookie long expired). His key refreshes his binding from his own
    # browser and he carries the fresh bound cookie into her copied session.
    clock.shift(timedelta(minutes=50))
    assert _refresh_his(thief, his_key, his_binding).status_code == 200
    jar.cookies[BOUND] = thief.cookies[BOUND].value
    copied = jar.get("/api/portfolio")

    assert DbscSession.objects.get(session_id=her_binding).ended_at is None
    assert copied.status_code != 200, (
        f"refresh through her session answered {rebound_status}; her copied session, an hour after her "
        f"bound cookie ran out, still serves her portfolio with HIS key's bound cookie: "
        f"{copied.status_code} {copied.content[:200]!r}"
    )


def test_held_her_copied_session_without_the_rebinding_refresh_is_held(
    clock: Any, user_factory: Any, totp_factory: Any
) -> None:
    """The control: the same copy and his own binding, but no refresh of his binding through her session.
    An hour later her copied session with his key's fresh bound cookie is held (not her binding's proof)."""
    her, her_key, her_binding, totp = _her_bound_history(clock, user_factory, totp_factory)
    jar = _copy_jar(her, IP_TOKYO_2)
    thief = Client(REMOTE_ADDR=IP_TOKYO_2, HTTP_USER_AGENT=UA_CHROME_WIN)
    his_key, his_binding = _thief_binds_his_own_browser(thief, totp)
    assert jar.get("/api/portfolio").status_code == 200  # her bound cookie still fresh: the known trade
    clock.shift(timedelta(minutes=50))
    assert _refresh_his(thief, his_key, his_binding).status_code == 200
    jar.cookies[BOUND] = thief.cookies[BOUND].value
    copied = jar.get("/api/portfolio")
    assert copied.status_code != 200, copied.content[:200]


def test_her_own_session_is_held_after_his_key_rebinds_it(
    clock: Any, user_factory: Any, totp_factory: Any
) -> None:
    """Secure: her own browser's session, proving her own key (her refresh, her fresh bound cookie), is not
    held because a thief refreshed his key through a copy of her session cookie. The attacker had her
    password and a fresh copy of her jar (no code): the same refresh of his binding through her copied
    session; then her browser's next page, five minutes later, with her own fresh bound cookie: held for
    step-up (``bound_proof_missing``: her session now expects his key's bound cookie). A customer without a
    second factor would be signed out."""
    her, her_key, her_binding, totp = _her_bound_history(clock, user_factory, totp_factory)
    jar = _copy_jar(her, IP_TOKYO_2)
    thief = Client(REMOTE_ADDR=IP_TOKYO_2, HTTP_USER_AGENT=UA_CHROME_WIN)
    his_key, his_binding = _thief_binds_his_own_browser(thief, totp)
    assert _refresh_his(jar, his_key, his_binding).status_code == 200
    clock.shift(timedelta(minutes=5))
    # Her browser goes on, its own bound cookie still fresh (five minutes old).
    hers = her.get("/api/portfolio")
    assert hers.status_code == 200, f"her own bound browser's page: {hers.status_code} {hers.content[:300]!r}"


def test_held_her_step_up_frees_her_session_from_his_key(
    clock: Any, user_factory: Any, totp_factory: Any
) -> None:
    """Held: once she steps up (her own TOTP) her session is hers again (the step-up cycles the session key:
    the copy of her session cookie is dead); his key refreshing through the copy no longer reaches it."""
    from .conftest import api_post, totp_token

    her, her_key, her_binding, totp = _her_bound_history(clock, user_factory, totp_factory)
    jar = _copy_jar(her, IP_TOKYO_2)
    thief = Client(REMOTE_ADDR=IP_TOKYO_2, HTTP_USER_AGENT=UA_CHROME_WIN)
    his_key, his_binding = _thief_binds_his_own_browser(thief, totp)
    assert _refresh_his(jar, his_key, his_binding).status_code == 200
    clock.shift(timedelta(minutes=2))
    assert her.get("/api/portfolio").status_code == 200  # not held: his refresh bound nothing of hers
    clock.shift(timedelta(seconds=31))
    assert api_post(her, "api-step-up-totp", {"code": totp_token(totp)}).status_code == 200
    # Her key refreshes as Chrome does; her page is served.
    assert _her_refresh(her, her_key, her_binding).status_code == 200
    first = her.get("/api/portfolio").status_code
    # His key, from anywhere, with his fresh bound cookie, refreshes through the copy of her session again.
    clock.shift(timedelta(minutes=1))
    jar.cookies[BOUND] = thief.cookies[BOUND].value
    assert _refresh_his(thief, his_key, his_binding).status_code == 200
    jar.cookies[BOUND] = thief.cookies[BOUND].value
    again = _refresh_his(jar, his_key, his_binding).status_code
    clock.shift(timedelta(minutes=1))
    second = her.get("/api/portfolio")
    assert (first, second.status_code) == (200, 200), (
        f"after her step-up: {first}; his refresh through the copy answered {again}; her next page "
        f"{second.status_code} {second.content[:200]!r}"
    )


def test_held_sign_out_everywhere_from_his_session_with_a_relayed_code_ends_his_binding_too(
    clock: Any, user_factory: Any, totp_factory: Any
) -> None:
    """Her password on his own browser, his own key bound, one relayed TOTP code for the fresh
    verification, then "sign out everywhere" from his session: every binding of the month ends, his too
    (``signed_out_everywhere``; until round forty-one his stayed and hers ended). Hers of five days ends
    with it (a relayable verification keeps only bindings older than the month:
    test_dbsc_sign_out_everywhere_walkarounds)."""
    from django.urls import reverse

    from .conftest import api_post, totp_token
    from .test_dbsc_moves_walkarounds import _refresh

    her, her_key, her_binding, totp = _her_bound_history(clock, user_factory, totp_factory)
    thief = Client(REMOTE_ADDR=IP_TOKYO_2, HTTP_USER_AGENT=UA_CHROME_WIN)
    his_key, his_binding = _thief_binds_his_own_browser(thief, totp)
    clock.shift(timedelta(seconds=31))
    stepped = api_post(thief, "api-step-up-totp", {"code": totp_token(totp)})
    # His browser refreshes with its key: the step-up's answer ended the bound cookie from before it.
    assert _refresh(thief, his_key, his_binding).status_code == 200
    ended = thief.post(reverse("authguard:security-end-sessions"))
    hers = DbscSession.objects.get(session_id=her_binding)
    his = DbscSession.objects.get(session_id=his_binding)
    assert (stepped.status_code, ended.status_code) == (200, 302), (stepped.content[:200], ended)
    assert his.ended_at is not None and his.end_reason == "signed_out_everywhere"
    assert hers.ended_at is not None and hers.end_reason == "signed_out_everywhere"
