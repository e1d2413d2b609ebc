"""Red team, round thirty-three (a): the one-sign-in-old copy's "crash at home" excuse (round 32).

``signals_profile._copy_elsewhere`` lets the familiar part of the login lower a copy one generation behind
only at an exact address the account signed in from ("only her own address excuses it, as a browser that
crashed at home"), and ``DeviceCookie._behind`` floors it at a step-up only on a network or in a city its
device never used. An "exact address" is not always hers alone: a commercial VPN's exit is shared by every
subscriber who picks that server, and the rest of authguard already refuses to let a shared network vouch
(``_shared_network``: no young-account discount, no cookie-shedding habit). Real sign-ins through the demo's
JSON API, the real middleware (generations confirmed by real requests), real GeoIP test databases,
time-machine for time.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client

from .conftest import IP_VPN, UA_IPHONE, bind_passkey, passkey_step_up
from .test_login_behind_copy_walkarounds import (  # noqa: F401  (clock, hanako, rt_geoip*: fixtures)
    DEVICE,
    _last,
    _login,
    _other_customers,
    _summary,
    _thief,
    clock,  # noqa: F401 (fixture)
    hanako,  # noqa: F401 (fixture)
    rt_geoip,
    rt_geoip_dir,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("rt_geoip")]


def _her_phone_on_her_vpn_and_a_copy(clock: Any, hanako: Any, authenticator: Any) -> str:  # noqa: F811
    """Her iPhone always signs in through her VPN (the same exit server each day), stepping up with her
    passkey (of long standing) when asked, which teaches her profile the VPN; an infostealer copies the jar
    after the ninth sign-in; her tenth moves the cookie on. Returns the copy's device cookie."""
    from django.utils import timezone

    passkey = bind_passkey(hanako, authenticator)
    passkey.created_at = timezone.now() - timedelta(days=200)
    passkey.save(update_fields=["created_at"])
    phone = Client(REMOTE_ADDR=IP_VPN, HTTP_USER_AGENT=UA_IPHONE)
    phone.get("/api/csrf")
    stolen = ""
    statuses = []
    for day in range(10):
        phone.post("/api/logout")
        answer = _login(phone)
        statuses.append(f"{answer['status']}: {_summary(_last())}")
        if answer["status"] == "step_up_required":
            assert passkey_step_up(phone, authenticator).status_code == 200
        assert day < 5 or answer["status"] == "ok", statuses
        assert phone.get("/api/portfolio").status_code == 200  # confirms the new generation
        if day == 8:
            stolen = phone.cookies[DEVICE].value
        clock.shift(timedelta(days=1))
    assert phone.cookies[DEVICE].value != stolen
    return stolen


@pytest.mark.battery(62)
def test_her_phones_copy_one_sign_in_old_is_not_excused_on_her_vpns_shared_exit(
    hanako: Any,  # noqa: F811
    user_factory: Any,
    clock: Any,  # noqa: F811
    authenticator: Any,
) -> None:
    """A privacy-minded customer: her iPhone signs in only through her commercial VPN (M247 exit in
    Amsterdam, GeoIP: anonymous VPN), always the same server. The infostealer's copy of the phone's cookie jar
    is one sign-in old; the thief subscribes to the same VPN and picks the same server: the copy comes from
    "an exact address the account signed in from". ``_copy_elsewhere`` is false there, so ``familiar_login``
    pays for the copy; ``_elsewhere`` finds nothing new (the phone's own network and city), so no floor. Now
    (with the site's other customers, as round 32's tests): allow at 32 (``familiar_login`` -20,
    ``device_cookie_behind`` +40, ``anonymous_hosting`` +12 habitual: GeoIP lists M247 as hosting), a verified
    session with her password and the copy, no step-up; without other customers it is stepped up. Secure: an
    anonymous/shared exit is no "own address": the copy there is ``_copy_elsewhere`` (the familiar part does
    not lower it) and gets the step-up floor, as ``_shared_network`` already denies such
    an exit every other discount."""
    _other_customers(user_factory)
    stolen = _her_phone_on_her_vpn_and_a_copy(clock, hanako, authenticator)
    thief = _thief(IP_VPN, UA_IPHONE, stolen)
    answer = _login(thief)
    event = _last()
    assert event.ip == IP_VPN and "device_cookie_behind" in event.reasons, _summary(event)
    assert answer["status"] == "step_up_required", f"her VPN's shared exit: {_summary(event)}"
