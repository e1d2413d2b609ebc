"""Red team, round seventy-five (held since) (factors75): what a session stepped up with a factor that is
spent, replaced, removed or cooling off still reaches: a ``@step_up_required`` view, factor changes,
signing out everywhere.

Real views (the demo portal plus two ``@step_up_required`` views), real TOTP codes, real WebAuthn payloads.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import include, path
from django_otp.plugins.otp_totp.models import TOTPDevice

from authguard.factors import inventory
from authguard.models import PasskeyDevice, RecoveryCode, RecoveryCodeDevice
from authguard.sessions.decorators import step_up_required

from .conftest import HANAKO_PASSWORD, IP_OSAKA, IP_TOKYO, bind_passkey, of_long_standing, totp_token
from .factor_scenarios import (
    change_password,
    disabled_totp,
    her_recovery_codes,
    new_key,
    old_totp,
    passkey_verify,
    register,
)

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.usefixtures("geoip"),
    pytest.mark.urls("tests.test_factor_step_up_reach_walkarounds"),
]


@step_up_required
def statements(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"status": "ok"})


urlpatterns = [
    path("", include("demo_site.urls")),
    path("bank/api/statements", statements, name="statements"),
]


def _spend_all_but(user: Any, left: int) -> None:
    the_set = RecoveryCodeDevice.objects.get(user=user)
    rows = list(RecoveryCode.objects.filter(device=the_set).order_by("pk"))
    RecoveryCode.objects.filter(pk__in=[r.pk for r in rows[: len(rows) - left]]).update(
        used_at=the_set.created_at
    )


def _her_passkey_of_years(hanako: Any) -> Any:
    from datetime import timedelta

    from django.utils import timezone

    key = new_key()
    device = bind_passkey(hanako, key)
    PasskeyDevice.objects.filter(pk=device.pk).update(created_at=timezone.now() - timedelta(days=300))
    return key


def test_held_her_last_printed_code_relayed_reaches_the_step_up_view_only(
    new_browser_api: Any, hanako: Any, totp_factory: Any
) -> None:
    """The lead of round seventy-five: her app lost (disabled), one printed code left, relayed by a phishing
    page to the thief's new browser in Osaka. Documented (docs/factor-lifecycle.md, "Changing the password"):
    ``@step_up_required`` accepts it as it accepts any relayed code. Held: nothing lasting: no new set, no
    passkey, no password change, no "sign out everywhere"."""
    of_long_standing(hanako)
    disabled_totp(hanako, totp_factory)
    codes = her_recovery_codes(hanako)
    _spend_all_but(hanako, 1)

    thief = new_browser_api(IP_OSAKA)
    thief.login("hanako", HANAKO_PASSWORD)
    assert thief.post("/authguard/api/step-up/recovery-code", {"code": codes[9]}).status_code == 200
    assert inventory.user_factors(hanako) == []

    # documented: one relayed code buys one session, and the step-up view is in it
    assert thief.get("/bank/api/statements").status_code == 200
    assert thief.post("/authguard/api/recovery-codes").status_code == 403
    assert register(thief, new_key()).status_code in (401, 403)
    assert not PasskeyDevice.objects.filter(user=hanako).exists()
    change_password(thief, HANAKO_PASSWORD, "thief-owns-it-2026!")
    hanako.refresh_from_db()
    assert hanako.check_password(HANAKO_PASSWORD)
    thief.client.get("/authguard/security/")
    from authguard.models import Notification as Outbox

    before = Outbox.objects.filter(kind="sessions_ended").count()
    thief.client.post("/authguard/security/sessions/end-others/", HTTP_X_CSRFTOKEN=thief.token)
    assert Outbox.objects.filter(kind="sessions_ended").count() == before


def test_her_app_replaced_after_his_relayed_step_up_leaves_his_session_no_step_up(
    new_browser_api: Any, hanako: Any, totp_factory: Any
) -> None:
    """(A variant of tests/test_factor_gone_verifier_walkarounds.py, same root cause; smaller impact.)

    **Secure**: docs/step-up.md: a verification with a factor that no longer exists does not count
    (``verified_by_cooling_off_factor``: "or one that no longer exists").
    **Attack**: the thief steps up with one relayed code of her app of years; she notices and replaces the
    app from her PC with her passkey. His session keeps passing ``@step_up_required`` until his 300 s end.
    **Root cause**: django-otp's OTPMiddleware deletes ``DEVICE_ID_SESSION_KEY`` once the device is gone, and
    authguard/factors/inventory.py:verified_by_cooling_off_factor reads "no key" as "no factor verified".
    **Fix**: keep the verifying device's id in authguard's own session state and judge it from there.
    Factor changes hold (the count): only the step-up views are reached."""
    of_long_standing(hanako)
    key = _her_passkey_of_years(hanako)
    app = old_totp(hanako, totp_factory)

    thief = new_browser_api(IP_OSAKA)
    thief.login("hanako", HANAKO_PASSWORD)
    assert thief.post("/authguard/api/step-up/totp", {"code": totp_token(app)}).status_code == 200
    assert thief.get("/bank/api/statements").status_code == 200

    her = new_browser_api(IP_TOKYO)
    her.login_usual("hanako", HANAKO_PASSWORD)
    assert passkey_verify(her, key).status_code == 200
    assert her.post("/authguard/api/totp").status_code == 200
    new_app = TOTPDevice.objects.get(user=hanako, confirmed=False)
    assert her.post("/authguard/api/totp/confirm", {"code": totp_token(new_app)}).status_code == 201
    assert not TOTPDevice.objects.filter(pk=app.pk).exists()

    answer = thief.get("/bank/api/statements")
    assert answer.status_code == 403 and answer.json().get("code") == "cooling_off", answer.content
    assert thief.post("/authguard/api/recovery-codes").status_code == 403
    assert register(thief, new_key()).status_code in (401, 403)


def test_a_code_of_her_replaced_set_relayed_before_the_replacement_opens_nothing_after(
    new_browser_api: Any, hanako: Any, totp_factory: Any
) -> None:
    """(Variant, same root cause as above.) **Secure**: a session verified with a recovery-code set she has
    since replaced passes no step-up view. **Attack**: one relayed printed code; she renews the set from her
    PC with her passkey; his session keeps passing ``@step_up_required`` for the rest of its 300 s (it mints
    nothing and adds nothing: held by the count). **Root cause / Fix**: as above."""
    of_long_standing(hanako)
    key = _her_passkey_of_years(hanako)
    codes = her_recovery_codes(hanako)

    thief = new_browser_api(IP_OSAKA)
    thief.login("hanako", HANAKO_PASSWORD)
    assert thief.post("/authguard/api/step-up/recovery-code", {"code": codes[0]}).status_code == 200

    her = new_browser_api(IP_TOKYO)
    her.login_usual("hanako", HANAKO_PASSWORD)
    assert passkey_verify(her, key).status_code == 200
    assert her.post("/authguard/api/recovery-codes").status_code == 201

    answer = thief.get("/bank/api/statements")
    assert answer.status_code == 403, answer.content
    assert thief.post("/authguard/api/recovery-codes").status_code == 403
    assert register(thief, new_key()).status_code in (401, 403)
    assert thief.post("/authguard/api/step-up/recovery-code", {"code": codes[1]}).status_code != 200


def test_held_her_cooling_off_app_relayed_opens_no_step_up_view(
    new_browser_api: Any, hanako: Any, totp_factory: Any, clock: Any
) -> None:
    """Her new app (added from her PC with her passkey: cooling off), one code relayed to Osaka: the step-up
    view answers ``cooling_off``."""
    from .factor_scenarios import her_new_app

    app = her_new_app(new_browser_api, hanako)
    clock.shift(31)  # her confirming code's time step is spent
    thief = new_browser_api(IP_OSAKA)
    thief.login("hanako", HANAKO_PASSWORD)
    assert thief.post("/authguard/api/step-up/totp", {"code": totp_token(app)}).status_code == 200
    answer = thief.get("/bank/api/statements")
    assert answer.status_code == 403 and answer.json().get("code") == "cooling_off", answer.content
