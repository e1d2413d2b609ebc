"""Red team round forty-seven: "this browser" on a portal without DBSC, from a copy of her device cookie
that the sign-in itself flagged (her settled PC moved 400 km). Fixed: without a DBSC proof, a browser is
"this browser" to forget only from a session its sign-in left low-risk (``own_devices._is_this_browser``);
otherwise forgetting it takes what a factor's removal needs.

Real sign-ins through the demo's JSON API and pages, real TOTP codes, the real middleware, GeoIP test
databases, time-machine for time.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from authguard.conf import app_settings
from authguard.models import KnownDevice

from .conftest import IP_OSAKA, IP_TOKYO, UA_CHROME_WIN, api_post, totp_token
from .test_dbsc_copies_walkarounds import _last, _login, _summary
from .test_sessions_dbsc import urlpatterns  # noqa: F401 (the demo plus authguard's pages)

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__), pytest.mark.usefixtures("geoip")]

DEVICE = app_settings.DEVICE_COOKIE_NAME
PASSWORD = "correct horse battery"


@pytest.fixture
def clock() -> Any:
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        yield traveller


def test_a_copy_flagged_as_her_settled_pc_moved_forgets_it_as_this_browser_with_one_relayed_code(
    clock: Any, user_factory: Any, totp_factory: Any
) -> None:
    """Secure: forgetting her browser of months takes more than one relayed code (round thirty-three: "one
    relayed code forgot her PC of months, and her passkey added there the next day cooled off for two
    weeks"), also when the request carries a copy of its device cookie that the sign-in caught as a copy.

    Attack (portal without DBSC; her password + one relayed code + a current copy of her device cookie from
    an infostealer): two hours after her last sign-in the thief signs in from Osaka with the copy. The
    engine says what it is: ``settled_device_moved`` (her PC of months, on a network and in a city it never
    used), a step-up. He relays one code, and on the security page forgets "this browser": the copy's cookie
    is her PC's row, so ``own_devices.forget_device`` asks no strong removal. Her PC of 45 days is
    forgotten; its next sign-in is a new browser's, with no month of standing."""
    totp = totp_factory(user_factory("hanako", password=PASSWORD))
    her = Client(REMOTE_ADDR=IP_TOKYO, HTTP_USER_AGENT=UA_CHROME_WIN)
    her.get("/api/csrf")
    for _ in range(45):
        assert _login(her).json()["status"] == "ok", _summary(_last())
        assert her.get("/api/portfolio").status_code == 200
        her.post("/api/logout")
        clock.shift(timedelta(days=1))
    assert _login(her).json()["status"] == "ok", _summary(_last())
    assert her.get("/api/portfolio").status_code == 200
    her.post("/api/logout")  # the infostealer's copy is of this, her newest cookie
    pc = KnownDevice.objects.get(user=totp.user, revoked_at__isnull=True)

    clock.shift(timedelta(hours=2))
    thief = Client(REMOTE_ADDR=IP_OSAKA, HTTP_USER_AGENT=UA_CHROME_WIN)
    thief.get("/api/csrf")
    thief.cookies[DEVICE] = her.cookies[DEVICE].value
    answer = _login(thief)
    event = _last()
    assert answer.json()["status"] == "step_up_required", _summary(event)
    assert api_post(thief, "api-step-up-totp", {"code": totp_token(totp)}).status_code == 200  # relayed
    forgot = thief.post(f"/authguard/security/devices/{pc.pk}/revoke/")
    pc.refresh_from_db()
    assert pc.revoked_at is None, (
        f"his sign-in: {_summary(event)}; forget answered {forgot.status_code} {forgot.get('Location')}; "
        "her PC of 45 days is forgotten"
    )
