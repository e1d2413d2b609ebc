"""Red team round thirty-five (d): stolen cookie jars against DBSC's refresh re-point, and a browser the
desk forgot: fixed, a cookie with any earlier sign-in of the account is bound only after a passkey
(``dbsc._check_bindable`` reads the account's login events, not only the browser row the containment
forgot)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from authguard.conf import app_settings
from authguard.models import DbscSession, KnownDevice
from authguard.risk.context import device_hash, device_id_from_cookie
from authguard.sessions import dbsc

from .conftest import IP_TOKYO, IP_TOKYO_2, UA_CHROME_WIN, api_post, totp_token
from .console_data import staff_user
from .staff_fixtures import staff_client
from .test_dbsc_copies_walkarounds import _her_bound_browser, _her_refresh, _last, _login, _summary
from .test_sessions_dbsc import (  # noqa: F401
    CHALLENGE,
    OFFER,
    DeviceKey,
    dbsc_on,
    post_refresh,
    post_register,
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


def test_held_after_her_binding_follows_her_new_id_the_old_ids_copies_are_still_stepped_up(
    clock: Any, user_factory: Any, totp_factory: Any
) -> None:
    """HELD: the thief shows her bound browser's copied device cookie to his own account (kuroda), keeps and
    confirms the next generation he is given; her session is held, she steps up, gets a new id, and her key's
    refresh moves her binding off the old id. For her account the old id is now unbound (no missing proof),
    but both the copy and his laundered next generation are stepped up (superseded / behind): the refresh
    re-point did not turn the old id's copies into a clean known browser."""
    her, key, binding, totp = _her_bound_browser(user_factory, totp_factory)
    stolen = her.cookies[DEVICE].value
    clock.shift(timedelta(minutes=3))
    kuroda = user_factory("kuroda", password=PASSWORD)
    his_totp = totp_factory(kuroda)
    own = Client(REMOTE_ADDR=IP_TOKYO_2, HTTP_USER_AGENT=UA_CHROME_WIN)
    own.get("/api/csrf")
    own.cookies[DEVICE] = stolen
    if _login(own, "kuroda").json()["status"] == "step_up_required":
        assert api_post(own, "api-step-up-totp", {"code": totp_token(his_totp)}).status_code == 200
    assert own.get("/api/portfolio").status_code == 200
    laundered = own.cookies[DEVICE].value
    assert device_id_from_cookie(laundered) == device_id_from_cookie(stolen)
    clock.shift(timedelta(minutes=2))
    assert her.get("/api/portfolio").status_code == 401
    clock.shift(timedelta(seconds=31))
    assert api_post(her, "api-step-up-totp", {"code": totp_token(totp)}).status_code == 200
    clock.shift(timedelta(minutes=11))
    assert _her_refresh(her, key, binding).status_code == 200
    old = device_hash(device_id_from_cookie(stolen))
    assert DbscSession.objects.get(session_id=binding).device_hash != old
    for cookie, code in ((stolen, "device_cookie_superseded"), (laundered, "device_cookie_behind")):
        clock.shift(timedelta(days=1))
        thief = Client(REMOTE_ADDR=IP_TOKYO_2, HTTP_USER_AGENT=UA_CHROME_WIN)
        thief.get("/api/csrf")
        thief.cookies[DEVICE] = cookie
        assert _login(thief).json()["status"] == "step_up_required", _summary(_last())
        assert code in _last().reasons
        assert thief.get("/api/portfolio").status_code != 200


INCIDENT = "/admin/authguard/loginevent/incident/"
DESK_PERMS = ("auth.view_user", "authguard.view_loginevent", "authguard.contain_account")


@pytest.mark.battery(62)
@pytest.mark.battery(62)
def test_a_browser_the_desk_forgot_is_not_bound_to_the_thiefs_key(
    clock: Any, user_factory: Any, totp_factory: Any
) -> None:
    """Her laptop is two weeks old; her browser there has no DBSC (it ignores the offers) and signs in
    every day. The infostealer sends its jar (device cookie, user agent) and her saved password. A
    suspicious-login alert makes the desk end her sessions (the incident page's ``end_sessions``); every
    containment forgets the browsers without a month of standing, hers among them. Before she signs in
    again, the thief signs in with the copy from another line of her ISP in Tokyo: a forgotten browser is
    a new one, allowed at 25, and the engine *learns* it, which resets the row's ``first_seen_at`` to now
    (``risk.history``: a forgotten browser comes back as first seen). So ``_check_bindable`` finds nothing
    "in use before the offering sign-in": the offer his sign-in's answer carries binds her device cookie to
    his key, for her account, with no passkey. Now her own browser's next sign-in at home is
    ``device_binding_missing`` +60 (stepped up as the copy, the offer never comes back to her), while his
    copy is her key-proven browser (``bound_ok``, allowed at 0 with the password alone) for the binding's
    400 days. (Round thirty-four's fix, "a device cookie the account used before the offering sign-in is
    bound only after a passkey", reads the forgetful ``first_seen_at``.)
    Secure: a device cookie the account has ever used (a forgotten row, its login events) counts as in use
    before the offer: his registration is refused without a passkey, and her browser is never judged by a
    key she never had."""
    totp_factory(user_factory("hanako", password=PASSWORD))
    her = Client(REMOTE_ADDR=IP_TOKYO, HTTP_USER_AGENT=UA_CHROME_WIN)
    her.get("/api/csrf")
    for _ in range(14):  # a new laptop: two weeks of daily sign-ins
        assert _login(her).json()["status"] == "ok", _summary(_last())
        assert her.get("/api/portfolio").status_code == 200
        her.post("/api/logout")
        clock.shift(timedelta(days=1))
    stolen = her.cookies[DEVICE].value
    hanako = KnownDevice.objects.get().user

    desk = staff_user("desk-a", perms=DESK_PERMS)
    contained = staff_client(desk).post(
        INCIDENT,
        {"user": str(hanako.pk), "containment": "end_sessions", "reason": "suspicious sign-in alert"},
    )
    assert contained.status_code == 303
    assert KnownDevice.objects.get(user=hanako).revoked_at is not None  # her laptop forgotten

    clock.shift(timedelta(minutes=20))
    thief = Client(REMOTE_ADDR=IP_TOKYO_2, HTTP_USER_AGENT=UA_CHROME_WIN)
    thief.get("/api/csrf")
    thief.cookies[DEVICE] = stolen
    answer = _login(thief)
    his = f"{answer.json()['status']} {_summary(_last())}"
    offered = OFFER.match(answer.get(dbsc.REGISTRATION_HEADER, ""))
    thief.cookies[DEVICE] = stolen  # her copied cookie, not the re-issued one
    his_key = DeviceKey()
    registered = post_register(thief, his_key.proof(offered["challenge"])) if offered else None
    bound = DbscSession.objects.filter(user=hanako, ended_at__isnull=True).exists()

    clock.shift(timedelta(hours=3))
    hers = _login(her)
    event = _last()
    later = "-"
    his_binding = DbscSession.objects.filter(user=hanako, ended_at__isnull=True).first()
    if his_binding is not None and registered is not None:  # two days on: his key refreshes, he signs in
        clock.shift(timedelta(days=2))
        thief.post("/api/logout")
        thief.cookies.pop(BOUND, None)
        thief.cookies[DEVICE] = stolen
        first = post_refresh(thief, his_binding.session_id)
        challenge = CHALLENGE.match(first[dbsc.CHALLENGE_HEADER])["challenge"]
        later = "refresh " + str(
            post_refresh(
                thief, his_binding.session_id, his_key.proof(challenge, registration=False)
            ).status_code
        )
        later += f", his sign-in {_login(thief).json()['status']} {_summary(_last())}"
    assert not bound and "device_binding_missing" not in event.reasons, (
        f"his sign-in with the copy after the containment: {his}; his registration for her device "
        f"cookie: {registered.status_code if registered else None}; her own browser's next sign-in at "
        f"home: {hers.json()['status']}, {_summary(event)}; two days later: {later}"
    )
