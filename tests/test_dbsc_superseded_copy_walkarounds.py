"""Red team, round thirty-three (a): a copy two sign-ins old of a DBSC-bound browser's device cookie.

docs/dbsc.md: a device cookie two or more generations behind is ``device_cookie_superseded`` (a copy: "no
crash loses two"): its id is retired, the customer is told (``device_cookie_copied``), and each holder's
next verified sign-in gets a new device id, never the next generation of the copy. But when the device is
bound to a key (DBSC) and the copy comes without the key's proof, ``DeviceCookie._judge`` answers
``device_binding_missing`` and returns before the generation is looked at, and ``_behind`` skips a
``bound_missing_proof`` context: no ``device_cookie_behind``/``device_cookie_superseded`` among the reasons,
so ``device_generations.retire_if_left_behind`` and ``reissued_id`` (which read only those two codes) see
no copy. The browser that has the *strongest* protection gets the weakest handling of a proven copy.

Real sign-ins through the demo's JSON API, real DBSC keys and proofs (test_sessions_dbsc's helpers), real
TOTP codes, the real middleware (generations confirmed by real requests), GeoIP test databases,
time-machine for time.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from authguard.conf import app_settings
from authguard.models import LoginEvent, Notification
from authguard.risk.context import device_id_from_cookie

from .conftest import IP_TOKYO, IP_TOKYO_2, UA_CHROME_WIN, api_post, totp_token
from .test_sessions_dbsc import (  # the protocol helpers: real keys, real proofs
    DeviceKey,
    dbsc_on,  # noqa: F401 (fixture)
    register,
    urlpatterns,  # noqa: F401 (this module's URLconf: the demo plus the offer view)
)

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__), pytest.mark.usefixtures("geoip")]

DEVICE = app_settings.DEVICE_COOKIE_NAME
PASSWORD = "correct horse battery"


@pytest.fixture
def clock() -> Any:
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        yield traveller


def _login(client: Client) -> Any:
    return client.post(
        "/api/login", {"username": "hanako", "password": PASSWORD}, content_type="application/json"
    )


def _last() -> LoginEvent:
    return LoginEvent.objects.order_by("-pk").first()


def _summary(event: LoginEvent) -> str:
    parts = ", ".join(f"{f['code']} {f['score']:+d}" for f in event.findings if f["score"])
    return f"{event.action}/{event.outcome} at {event.score} ({parts})"


def _her_browser_and_an_old_copy(clock: Any, user_factory: Any, totp_factory: Any, *, bound: bool) -> Any:
    """Hanako (authenticator app) signs in at home; her browser binds its device cookie to its TPM key
    (``bound``); the infostealer copies the jar; she signs in twice more (two new generations, each confirmed
    by her next request). Returns (her browser, the copy's device cookie, her totp device)."""
    totp = totp_factory(user_factory("hanako", password=PASSWORD))
    her = Client(REMOTE_ADDR=IP_TOKYO, HTTP_USER_AGENT=UA_CHROME_WIN)
    her.get("/api/csrf")
    answer = _login(her)
    assert answer.json()["status"] == "ok", _summary(_last())
    assert her.get("/api/portfolio").status_code == 200
    if bound:
        register(her, DeviceKey())
        assert her.get("/api/portfolio").status_code == 200  # bound and proven
    stolen = her.cookies[DEVICE].value
    for _ in range(2):
        clock.shift(timedelta(minutes=2))  # within the bound cookie's ten minutes
        her.post("/api/logout")
        answer = _login(her)
        assert answer.json()["status"] == "ok", _summary(_last())
        assert her.get("/api/portfolio").status_code == 200  # confirms the new generation
    assert device_id_from_cookie(her.cookies[DEVICE].value) == device_id_from_cookie(stolen)
    return her, stolen, totp


def _thief_signs_in(clock: Any, stolen: str) -> tuple[Client, Any, LoginEvent]:
    clock.shift(timedelta(minutes=2))
    thief = Client(REMOTE_ADDR=IP_TOKYO_2, HTTP_USER_AGENT=UA_CHROME_WIN)  # her ISP, her city
    thief.cookies[DEVICE] = stolen
    answer = _login(thief)
    return thief, answer, _last()


@pytest.mark.usefixtures("dbsc_on")
def test_a_copy_two_sign_ins_old_of_her_bound_browser_is_called_a_copy_and_she_is_told(
    clock: Any, user_factory: Any, totp_factory: Any
) -> None:
    """Her browser is DBSC-bound. The infostealer's copy of its device cookie is two sign-ins old (no crash
    loses two: a copy, by docs/dbsc.md's own table). He signs in with her password from another line of her
    ISP in Tokyo. Now: ``device_binding_missing`` alone (stepped up), no ``device_cookie_superseded``, so
    her device id is not retired and she gets no ``device_cookie_copied`` warning, which an *unbound*
    browser's owner gets for the very same copy (held twin below). Secure: a copy two generations behind is
    superseded whatever the binding says: the id retired and the customer told."""
    _her, stolen, _totp = _her_browser_and_an_old_copy(clock, user_factory, totp_factory, bound=True)
    _thief, answer, event = _thief_signs_in(clock, stolen)
    told = Notification.objects.filter(kind="device_cookie_copied", user=event.user).count()
    assert answer.json()["status"] == "step_up_required"
    assert "device_cookie_superseded" in event.reasons and told, (
        f"a copy two sign-ins old of her DBSC-bound browser: {_summary(event)}; "
        f"{told} device_cookie_copied message(s) to her"
    )


@pytest.mark.usefixtures("dbsc_on")
def test_held_a_relayed_step_up_of_a_bound_browsers_old_copy_is_not_given_her_browsers_next_generation(
    clock: Any, user_factory: Any, totp_factory: Any
) -> None:
    """HELD: the same copy two sign-ins old, stepped up with one relayed TOTP code (the threat model). A
    bound browser's cookie without its key's proof, verified with a relayable code, is re-issued nothing
    (round forty-seven; before, a new device id): his session keeps the copy it came with, two generations
    behind, and is held at its next request. The copy retires nothing either (its missing proof tells it
    apart), so her own bound browser's next sign-in at home keeps her id of months."""
    her, stolen, totp = _her_browser_and_an_old_copy(clock, user_factory, totp_factory, bound=True)
    hers_before = device_id_from_cookie(her.cookies[DEVICE].value)
    thief, answer, event = _thief_signs_in(clock, stolen)
    assert answer.json()["status"] == "step_up_required", _summary(event)
    passed = api_post(thief, "api-step-up-totp", {"code": totp_token(totp)})
    assert passed.status_code == 200, passed.content
    assert thief.cookies[DEVICE].value == stolen  # not re-issued
    assert thief.get("/api/portfolio").status_code != 200  # held: his cookie is two sign-ins behind
    clock.shift(timedelta(minutes=2))
    her.post("/api/logout")
    her_answer = _login(her)
    hers = _last()
    assert her_answer.json()["status"] == "ok", _summary(hers)
    assert device_id_from_cookie(her.cookies[DEVICE].value) == hers_before


def test_held_the_same_copy_of_her_unbound_browser_is_superseded_retired_and_told(
    clock: Any, user_factory: Any, totp_factory: Any
) -> None:
    """HELD (control, DBSC off): the same copy two sign-ins old is ``device_cookie_superseded``, stepped up,
    she is told, and his relayed step-up gets a new device id."""
    _her, stolen, totp = _her_browser_and_an_old_copy(clock, user_factory, totp_factory, bound=False)
    thief, answer, event = _thief_signs_in(clock, stolen)
    assert answer.json()["status"] == "step_up_required"
    assert "device_cookie_superseded" in event.reasons, _summary(event)
    assert Notification.objects.filter(kind="device_cookie_copied", user=event.user).exists()
    assert api_post(thief, "api-step-up-totp", {"code": totp_token(totp)}).status_code == 200
    assert device_id_from_cookie(thief.cookies[DEVICE].value) != device_id_from_cookie(stolen)
