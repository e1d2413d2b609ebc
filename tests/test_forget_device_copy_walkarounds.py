"""Red team round forty-six: "forget this browser" from a copy of her DBSC-bound browser's device cookie.

Real sign-ins through the demo's JSON API and pages, real DBSC keys and proofs, real TOTP codes, the real
middleware, GeoIP test databases, time-machine for time.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from authguard.conf import app_settings
from authguard.models import DbscSession, KnownDevice

from .conftest import IP_TOKYO_2, UA_CHROME_WIN, api_post, totp_token
from .test_dbsc_copies_walkarounds import _her_refresh, _last, _login, _summary
from .test_dbsc_session_rebind_walkarounds import _her_bound_history
from .test_sessions_dbsc import dbsc_on, urlpatterns  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__), pytest.mark.usefixtures("geoip", "dbsc_on")]

DEVICE = app_settings.DEVICE_COOKIE_NAME


@pytest.fixture
def clock() -> Any:
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        yield traveller


def _thief_with_her_copied_device_cookie(her: Client, totp: Any) -> Client:
    """The infostealer's jar: her device cookie (her bound cookie long stale, left out). He signs in with her
    password (stepped up: device_binding_missing) and passes the step-up with one relayed app code."""
    thief = Client(REMOTE_ADDR=IP_TOKYO_2, HTTP_USER_AGENT=UA_CHROME_WIN)
    thief.get("/api/csrf")
    thief.cookies[DEVICE] = her.cookies[DEVICE].value
    answer = _login(thief)
    assert answer.json()["status"] == "step_up_required", _summary(_last())
    assert "device_binding_missing" in _last().reasons
    passed = api_post(thief, "api-step-up-totp", {"code": totp_token(totp)})  # the one relayed code
    assert passed.status_code == 200, passed.content
    return thief


def test_his_copy_of_her_device_cookie_forgets_her_bound_browser_of_months_with_one_relayed_code(
    clock: Any, user_factory: Any, totp_factory: Any
) -> None:
    """Secure: one relayed code does not end the DBSC binding of her browser of months (round forty-one kept
    it through a code-verified "sign out everywhere" and a reset for exactly that reason), nor forget that
    browser (round thirty-three asks for a strong removal for "another browser than this one").

    Attack (password + one relayed code + a copy of her device cookie): the thief signs in with her copied
    device cookie, is stepped up as device_binding_missing, relays one code, and on the security page forgets
    "this browser": the presented device cookie is her browser's row, so ``forget_device`` asks nothing more.
    Her binding of 45 days ends (``device_forgotten``, which holds nothing), her key's next refresh is 404,
    and her browser (a used cookie) is bound again only after a passkey she may not have."""
    her, her_key, her_binding, totp = _her_bound_history(clock, user_factory, totp_factory, days=45)
    hers = KnownDevice.objects.get(user__username="hanako", revoked_at__isnull=True)
    clock.shift(timedelta(hours=3))
    thief = _thief_with_her_copied_device_cookie(her, totp)

    forgot = thief.post(f"/authguard/security/devices/{hers.pk}/revoke/")
    assert forgot.status_code == 302, forgot
    binding = DbscSession.objects.get(session_id=her_binding)
    clock.shift(timedelta(minutes=11))
    refreshed = _her_refresh(her, her_key, her_binding)
    assert binding.ended_at is None and refreshed.status_code == 200, (
        f"her binding of 45 days ended: {binding.end_reason!r}, her refresh {refreshed.status_code}, "
        f"her browser row revoked={KnownDevice.objects.get(pk=hers.pk).revoked_at is not None}, "
        f"forget answered {forgot['Location']}"
    )


def test_held_without_the_forget_her_binding_of_months_outlives_his_relayed_step_up(
    clock: Any, user_factory: Any, totp_factory: Any
) -> None:
    """Control for the attack above: the same copy, password and relayed code, but no "forget this browser":
    her binding of 45 days stays and her key's refresh answers (so the forget alone ends it)."""
    her, her_key, her_binding, totp = _her_bound_history(clock, user_factory, totp_factory, days=45)
    clock.shift(timedelta(hours=3))
    thief = _thief_with_her_copied_device_cookie(her, totp)
    assert thief.get("/api/portfolio").status_code == 200
    clock.shift(timedelta(minutes=11))
    assert _her_refresh(her, her_key, her_binding).status_code == 200
    assert DbscSession.objects.get(session_id=her_binding).ended_at is None


def test_held_forgetting_her_browser_from_his_own_browser_needs_more_than_one_relayed_code(
    clock: Any, user_factory: Any, totp_factory: Any
) -> None:
    """Round thirty-three's rule, for comparison: from his own browser (no copy), the same relayed code does
    not forget her bound browser ("another browser than this one" needs a strong removal)."""
    her, her_key, her_binding, totp = _her_bound_history(clock, user_factory, totp_factory, days=45)
    hers = KnownDevice.objects.get(user__username="hanako", revoked_at__isnull=True)
    clock.shift(timedelta(hours=3))
    thief = Client(REMOTE_ADDR=IP_TOKYO_2, HTTP_USER_AGENT=UA_CHROME_WIN)
    thief.get("/api/csrf")
    if _login(thief).json()["status"] == "step_up_required":
        assert api_post(thief, "api-step-up-totp", {"code": totp_token(totp)}).status_code == 200
    else:
        clock.shift(timedelta(seconds=31))
        from .test_stepup_security import reverify

        reverify(thief, totp)
    thief.post(f"/authguard/security/devices/{hers.pk}/revoke/")
    assert KnownDevice.objects.get(pk=hers.pk).revoked_at is None
    assert DbscSession.objects.get(session_id=her_binding).ended_at is None
