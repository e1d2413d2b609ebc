"""Red team round forty-one (a): a DBSC-bound browser's copied jar signed in at the API token endpoint.
Fixed:

* The attack: the thief has her password and the jar the infostealer sent at once (her device cookie and
  her fresh DBSC bound cookie, good for ten minutes); no code, no key. He posts her password to the DRF
  token endpoint with the two cookies from her ISP in Tokyo with her user agent: ``bound_ok`` on her known
  browser, allowed at score 0, a token. The token never showed the bound cookie again and read her
  portfolio for hours, while the same copy signed in through the JSON login was held once the bound
  cookie ran out: a session is tied to its binding (``db``), a token was not.
* Fixed: a token issued to a sign-in (or step-up exchange) that presented a fresh bound cookie records
  that binding in its state (``db``, ``token_binding.issued_state``), as a session does.
* Fixed: a call of such a token without a fresh bound cookie of that binding is re-scored as a session's
  request without its proof is (``device_binding_missing``, a step-up at least), and a token cannot be
  held for a step-up: it ends (``token_binding.check``). A binding that expired or was ended drops the
  requirement, as for a session.
* Held: her own single-page app in her DBSC browser sends the bound cookie with its same-origin calls
  (Chrome refreshes it before it sends them): its token keeps working. A native app never has a bound
  cookie, and its token is not tied to any binding.

Real sign-ins through the demo's JSON API and authguard's DRF token endpoint, real DBSC keys and proofs
(test_sessions_dbsc's helpers), real TOTP, the real middleware, GeoIP test databases, time-machine.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.test import Client
from django.urls import path
from django.utils import timezone
from rest_framework.test import APIClient

from authguard.conf import app_settings
from authguard.models import DbscSession, LoginEvent
from authguard.sessions import token_activity

from .conftest import IP_TOKYO_2, UA_CHROME_WIN
from .drf_urlconf import urlpatterns as drf_urlpatterns
from .test_dbsc_copies_walkarounds import _her_refresh, _last, _login, _summary
from .test_dbsc_session_rebind_walkarounds import _her_bound_history
from .test_sessions_dbsc import (
    dbsc_on,  # noqa: F401
    offer_view,
)

urlpatterns = [path("dbsc-offer/", offer_view), *drf_urlpatterns]

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.urls(__name__),
    pytest.mark.usefixtures("geoip", "dbsc_on"),
]

DEVICE = app_settings.DEVICE_COOKIE_NAME
BOUND = "authguard_bound"
PASSWORD = "correct horse battery"
TOKEN_URL = "/api/auth/token"


@pytest.fixture
def clock() -> Any:
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        yield traveller


def _jar(source: Client, client: Any, names: tuple[str, ...] = (DEVICE, BOUND)) -> Any:
    for name in names:
        if name in source.cookies:
            client.cookies[name] = source.cookies[name].value
    return client


@pytest.mark.battery(66)
def test_a_token_sign_in_with_the_copied_bound_cookie_outlives_its_minutes(
    clock: Any, user_factory: Any, totp_factory: Any
) -> None:
    """Secure: a sign-in that counts a fresh bound cookie as the proof of her bound browser holds only while
    that proof is renewed (docs/dbsc.md: a session signed in presenting a fresh bound cookie remembers the
    binding, and every later request must carry a fresh bound cookie of it; "a token is a session",
    authguard.drf). The attacker has her password and the jar the infostealer sent at once (her device
    cookie and her bound cookie, fresh for ten minutes); no code, no key. From her ISP in Tokyo with her
    user agent he posts her password to the DRF token endpoint with the two copied cookies: ``bound_ok``,
    her known browser, allowed, a token. The token carries no cookie and is never asked for the key's proof:
    hours after her bound cookie expired he still reads (and trades on) her account through the API, while
    the same copy signed in through the JSON login is held after ten minutes."""
    her, _key, binding, _totp = _her_bound_history(clock, user_factory, totp_factory)
    # The control: the JSON session sign-in with the same copy is held once the copied proof runs out.
    control = _jar(her, Client(REMOTE_ADDR=IP_TOKYO_2, HTTP_USER_AGENT=UA_CHROME_WIN))
    control.get("/api/csrf")
    assert _login(control).json()["status"] == "ok", _summary(_last())
    thief = _jar(her, APIClient(REMOTE_ADDR=IP_TOKYO_2, HTTP_USER_AGENT=UA_CHROME_WIN))
    answer = thief.post(TOKEN_URL, {"username": "hanako", "password": PASSWORD}, format="json")
    first = f"{answer.status_code} {answer.json().get('status')} {_summary(_last())}"
    token = answer.json().get("token")

    clock.shift(timedelta(minutes=12))  # her bound cookie copy expired
    held = control.get("/api/portfolio").status_code
    api = APIClient(REMOTE_ADDR=IP_TOKYO_2, HTTP_USER_AGENT=UA_CHROME_WIN)
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    later = []
    for _ in range(12):  # every ten minutes for two hours
        later.append(api.get("/drf/portfolio").status_code if token else None)
        clock.shift(timedelta(minutes=10))
    assert DbscSession.objects.get(session_id=binding).ended_at is None
    assert held != 200, "control: the copied session should be held after the bound cookie's minutes"
    assert 200 not in later, (
        f"token sign-in with her copied bound cookie: {first}; two hours later the token still reads her "
        f"portfolio: {later}"
    )
    # The token ended at its first call without the proof, re-scored as a refused sign-in.
    rescore = LoginEvent.objects.filter(user__username="hanako", rescore=True).order_by("-pk").first()
    assert rescore is not None, "no re-score recorded"
    assert "device_binding_missing" in [f["code"] for f in rescore.findings], _summary(rescore)


def test_held_her_own_token_sign_in_from_her_bound_browser_keeps_working(
    clock: Any, user_factory: Any, totp_factory: Any
) -> None:
    """Secure (control): her own single-page app in her DBSC browser signs in at the token endpoint with her
    device cookie and her fresh bound cookie (``bound_ok``: allowed), and uses the token for two hours; her
    browser refreshes the bound cookie with its key whenever it runs out and sends it with every same-origin
    call, as Chrome does. Every call is served, and the token is tied to her binding."""
    her, key, binding, _totp = _her_bound_history(clock, user_factory, totp_factory)
    her.post("/api/logout")  # the app uses its token, not a session
    answer = her.post(
        TOKEN_URL, {"username": "hanako", "password": PASSWORD}, content_type="application/json"
    )
    assert answer.status_code == 200, f"{answer.content!r} {_summary(_last())}"
    token = answer.json()["token"]
    stored = token_activity.binding_of(token)
    assert isinstance(stored, dict) and stored.get("db") == binding, stored
    served = []
    for _ in range(12):  # every ten minutes for two hours
        clock.shift(timedelta(minutes=10))
        assert _her_refresh(her, key, binding).status_code == 200  # her bound cookie ran out
        served.append(her.get("/drf/portfolio", HTTP_AUTHORIZATION=f"Token {token}").status_code)
    assert served == [200] * 12, f"{served} {_summary(_last())}"
    assert DbscSession.objects.get(session_id=binding).ended_at is None
