"""Red team round forty-seven: a copy of her DBSC-bound browser's device cookie, stepped up with one
relayed code, was re-issued the next generation of her device id (``device_generations.reissued_id`` asked
only whether the cookie was left behind). Her own key-proven browser was then the one left behind: stepped
up, given a new id without standing (a stranger at the factor throttle, a passkey added there unvouched),
while his copy held her old id of 45 days, established at the throttle once her binding had moved off it.
Fixed: a bound browser's cookie presented without its key's proof and verified without a passkey is not
re-issued: the copy keeps the cookie it came with, and her browser its id, its binding and its standing.

Real sign-ins through the demo's JSON API, real DBSC keys and proofs, real TOTP codes, the real middleware,
GeoIP test databases, time-machine for time.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.test import Client, RequestFactory
from django.utils import timezone

from authguard.conf import app_settings
from authguard.factors import throttles
from authguard.models import DbscSession, KnownDevice
from authguard.risk.context import device_hash, device_id_from_cookie

from .conftest import IP_TOKYO, IP_TOKYO_2, UA_CHROME_WIN, api_post, totp_token
from .test_dbsc_copies_walkarounds import _her_refresh, _last, _login, _summary
from .test_dbsc_session_rebind_walkarounds import _her_bound_history
from .test_sessions_dbsc import dbsc_on, urlpatterns  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__), pytest.mark.usefixtures("geoip", "dbsc_on")]

DEVICE = app_settings.DEVICE_COOKIE_NAME
BOUND = "authguard_bound"


@pytest.fixture
def clock() -> Any:
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        yield traveller


def _as_request(client: Client, user: Any, ip: str) -> Any:
    """The next request this browser would send (its cookie jar as it is), for the throttle's question."""
    request = RequestFactory().post("/api/step-up/totp", REMOTE_ADDR=ip, HTTP_USER_AGENT=UA_CHROME_WIN)
    request.COOKIES = {name: morsel.value for name, morsel in client.cookies.items()}
    request.user = user
    return request


def _thief_steps_up_with_her_copy(stolen: str, totp: Any) -> Client:
    thief = Client(REMOTE_ADDR=IP_TOKYO_2, HTTP_USER_AGENT=UA_CHROME_WIN)
    thief.get("/api/csrf")
    thief.cookies[DEVICE] = stolen
    answer = _login(thief)
    assert answer.json()["status"] == "step_up_required", _summary(_last())
    assert "device_binding_missing" in _last().reasons
    passed = api_post(thief, "api-step-up-totp", {"code": totp_token(totp)})  # the one relayed code
    assert passed.status_code == 200, passed.content
    assert thief.get("/api/portfolio").status_code == 200  # confirms the generation it was given
    return thief


def _her_browser_moves_on(clock: Any, her: Client, key: Any, binding: str, totp: Any) -> None:
    """The evening: her TPM-bound browser (fresh bound cookie: bound_ok) signs in at home, is stepped up for
    the cookie one generation behind (the thief's step-up took the next one), passes her own code and is
    given a new device id; eleven minutes later her key's refresh moves her binding onto it."""
    clock.shift(timedelta(hours=6))
    assert _her_refresh(her, key, binding).status_code == 200
    her.post("/api/logout")
    if _login(her).json()["status"] == "step_up_required":
        clock.shift(timedelta(seconds=31))
        assert api_post(her, "api-step-up-totp", {"code": totp_token(totp)}).status_code == 200
    assert her.get("/api/portfolio").status_code == 200
    clock.shift(timedelta(minutes=11))
    assert _her_refresh(her, key, binding).status_code == 200


def test_his_relayed_step_up_with_her_copied_bound_cookie_does_not_take_her_device_id(
    clock: Any, user_factory: Any, totp_factory: Any
) -> None:
    """Secure: on a DBSC portal the server knows which holder of her device id is hers (her key's proof) and
    which is the copy (bound_missing_proof): his step-up with one relayed code does not cost her browser of
    months its id, its binding or its standing.

    Attack (her password + one relayed code + the infostealer's copy of her device cookie, her bound cookie
    long stale): the thief signs in with the copy (stepped up: device_binding_missing) and relays one code.
    His step-up was re-issued the next generation of her id: that evening her own browser was one generation
    behind, its id retired, and it was given a new id with no standing, while his copy held the old one."""
    her, key, binding, totp = _her_bound_history(clock, user_factory, totp_factory, days=45)
    user = totp.user
    stolen = her.cookies[DEVICE].value
    old = device_hash(device_id_from_cookie(stolen))
    assert throttles.established_device(_as_request(her, user, IP_TOKYO), user=user) == old
    clock.shift(timedelta(hours=2))
    thief = _thief_steps_up_with_her_copy(stolen, totp)
    assert thief.cookies[DEVICE].value == stolen, "his relayed step-up was re-issued her device cookie"
    assert throttles.established_device(_as_request(thief, user, IP_TOKYO_2), user=user) is None

    _her_browser_moves_on(clock, her, key, binding, totp)
    assert device_hash(device_id_from_cookie(her.cookies[DEVICE].value)) == old  # her browser keeps its id
    kept = DbscSession.objects.get(session_id=binding)
    assert kept.ended_at is None and kept.device_hash == old
    assert throttles.established_device(_as_request(her, user, IP_TOKYO), user=user) == old
    assert KnownDevice.objects.get(user=user, cookie_hash=old).revoked_at is None


def test_his_copy_with_the_id_his_step_up_was_given_is_a_stranger_at_her_factors_back_off(
    clock: Any, user_factory: Any, totp_factory: Any
) -> None:
    """Secure: what the copy's step-up gave it buys nothing later: with her password alone (no code) the
    copy signs in again, is stepped up and types a wrong code, which is taken off her factor's own back-off
    (a stranger's), and her own browser stays her established one."""
    her, key, binding, totp = _her_bound_history(clock, user_factory, totp_factory, days=45)
    user = totp.user
    old = device_hash(device_id_from_cookie(her.cookies[DEVICE].value))
    clock.shift(timedelta(hours=2))
    thief = _thief_steps_up_with_her_copy(her.cookies[DEVICE].value, totp)
    _her_browser_moves_on(clock, her, key, binding, totp)
    clock.shift(timedelta(hours=10))
    copy = Client(REMOTE_ADDR=IP_TOKYO_2, HTTP_USER_AGENT=UA_CHROME_WIN)
    copy.get("/api/csrf")
    copy.cookies[DEVICE] = thief.cookies[DEVICE].value
    assert _login(copy).json()["status"] == "step_up_required", _summary(_last())
    before = type(totp).objects.get(pk=totp.pk).throttling_failure_count
    api_post(copy, "api-step-up-totp", {"code": "000000" if totp_token(totp) != "000000" else "111111"})
    assert type(totp).objects.get(pk=totp.pk).throttling_failure_count == before
    assert _her_refresh(her, key, binding).status_code == 200  # her browser refreshes before it asks
    assert throttles.established_device(_as_request(her, user, IP_TOKYO), user=user) == old
    assert device_hash(device_id_from_cookie(her.cookies[DEVICE].value)) == old
