"""Red team, round seventy-five (held since) (factors75): a session whose verifying factor is gone.

django-otp's ``OTPMiddleware`` drops ``DEVICE_ID_SESSION_KEY`` from the session as soon as the device it names
no longer exists; authguard's ``inventory.verified_by_cooling_off_factor`` then reads "this session never
verified with a factor" (False), while ``sessions.state`` still holds the fresh step-up and its method.
Real views (the demo portal plus ``@step_up_required`` views), real TOTP, real WebAuthn payloads.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import include, path
from rest_framework.decorators import api_view, permission_classes

from authguard.drf import StepUpRequired
from authguard.factors import inventory
from authguard.models import PasskeyDevice
from authguard.sessions.decorators import step_up_required

from .conftest import HANAKO_PASSWORD, IP_OSAKA, IP_TOKYO, bind_passkey, of_long_standing, totp_token
from .factor_scenarios import new_key, old_totp, passkey_verify, register

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.usefixtures("geoip"),
    pytest.mark.urls("tests.test_factor_gone_verifier_walkarounds"),
]


@step_up_required(methods=["passkey"])
def change_bank_account(request: HttpRequest) -> HttpResponse:
    """docs/step-up.md's own example: only a passkey counts."""
    return JsonResponse({"status": "ok", "changed": True})


@step_up_required
def statements(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"status": "ok"})


@api_view(["POST"])
@permission_classes([StepUpRequired.require(methods=["passkey"])])
def drf_payee(request: Any) -> Any:
    from rest_framework.response import Response

    return Response({"status": "ok", "changed": True})


urlpatterns = [
    path("", include("demo_site.urls")),
    path("bank/api/change-bank-account", change_bank_account),
    path("bank/api/statements", statements),
    path("bank/api/drf-payee", drf_payee),
]


def _hanako_with_app_of_years(hanako: Any, totp_factory: Any) -> Any:
    from datetime import timedelta

    from django.utils import timezone

    of_long_standing(hanako)
    key = new_key()
    device = bind_passkey(hanako, key)
    PasskeyDevice.objects.filter(pk=device.pk).update(created_at=timezone.now() - timedelta(days=300))
    hanako.key = key
    return old_totp(hanako, totp_factory)


def _thief_with_his_own_passkey(new_browser_api: Any, app: Any) -> tuple[Any, Any, Any]:
    """Password + ONE relayed code of her app from Osaka; his own passkey added (unvouched, cooling off),
    then his session re-verified with it (a passkey step-up, which cools off)."""
    thief = new_browser_api(IP_OSAKA)
    thief.login("hanako", HANAKO_PASSWORD)
    assert thief.post("/authguard/api/step-up/totp", {"code": totp_token(app)}).status_code == 200
    his_key = new_key()
    assert register(thief, his_key).status_code == 201
    his = PasskeyDevice.objects.filter(user=app.user).order_by("-pk").first()
    assert inventory.factor_is_cooling_off(his)
    assert passkey_verify(thief, his_key).status_code == 200
    return thief, his_key, his


def test_his_own_passkey_deleted_opens_the_passkey_only_step_up_view(
    new_browser_api: Any, hanako: Any, totp_factory: Any
) -> None:
    """**Secure**: docs/step-up.md: "a verification with a factor that is still cooling off does not count
    ... so a thief's new passkey never opens a protected view (battery case 58)"; ``methods=["passkey"]``:
    "only a passkey counts" (a relayed code never opens it).

    **Attack** (password + ONE relayed code of her app, new browser in Osaka): step up with the code; add his
    own passkey (allowed: one relayed code buys one addition; it cools off 14 days); re-verify the session
    with his passkey: the passkey-only view answers 403 ``cooling_off``, as documented. Now remove his own
    passkey (a cooling-off factor removes itself; his session added it, so no count). His very next request:
    ``@step_up_required(methods=["passkey"])`` answers 200, so does DRF's ``StepUpRequired.require(
    methods=["passkey"])``, for the rest of the 300 s window: a phishing-resistant-only view (the docs'
    ``change_bank_account``) opened by one relayed TOTP code and a passkey that no longer exists.

    **Root cause**: authguard/factors/inventory.py:verified_by_cooling_off_factor answers False when the
    session has no ``DEVICE_ID_SESSION_KEY`` ("not verified with a factor at all"), but django-otp's
    ``OTPMiddleware._finalize_device`` deletes that key on the first request after the device is deleted
    (or unconfirmed), while ``sessions.state`` keeps ``st``/``sm`` (fresh, ``passkey``). The "device gone =
    cooling off" branch (``device is None``) is dead code behind django-otp. The decorator
    (authguard/sessions/decorators.py:step_up_required.refusal) and ``drf.StepUpRequired.has_permission``
    (session branch) ask nothing else. (Tokens are safe: ``_token_fresh`` keeps the device id in the cache.)

    **Fix**: record the verifying device's persistent id in authguard's own state at ``mark_strong`` (e.g.
    ``state["sd"]``) and judge ``verified_by_cooling_off_factor`` (and ``session_device``) from it: a fresh
    verification whose device no longer exists (or is unconfirmed/disabled) counts as cooling off; or make
    ``has_fresh_verification`` False when ``sm`` is set but the session's device is gone.
    """
    app = _hanako_with_app_of_years(hanako, totp_factory)
    thief, _his_key, his = _thief_with_his_own_passkey(new_browser_api, app)

    before = thief.get("/bank/api/change-bank-account")
    assert before.status_code == 403 and before.json().get("code") == "cooling_off", before.content

    removed = thief.post("/authguard/api/factors/remove", {"id": his.persistent_id})
    assert removed.status_code == 200, removed.content
    assert not PasskeyDevice.objects.filter(pk=his.pk).exists()

    after = thief.get("/bank/api/change-bank-account")
    drf = thief.post("/bank/api/drf-payee", {})
    assert after.status_code == 403, (
        f"a passkey-only @step_up_required view opened for one relayed TOTP code and his deleted passkey: "
        f"{after.status_code} {after.content!r}; DRF StepUpRequired(passkey): {drf.status_code} "
        f"{drf.content!r}"
    )
    assert drf.status_code == 403, (
        f"DRF StepUpRequired(passkey) opened too: {drf.status_code} {drf.content!r}"
    )


def test_her_removing_his_passkey_upgrades_his_session_to_open_step_up_views(
    new_browser_api: Any, hanako: Any, totp_factory: Any, clock: Any
) -> None:
    """**Secure**: as above; her removal of the thief's factor must take from him, never give.

    **Attack**: as above, but he keeps his passkey; his session re-verifies with it (every few minutes, a
    script). His session is refused by every ``@step_up_required`` view (``cooling_off``) while his passkey
    exists. She reads the "passkey added" notice and removes it from her PC of months with her passkey of
    years. From his next request until 300 s after his last passkey step-up, every ``@step_up_required``
    view opens for him, the passkey-only ones included: her defence hands him what his factor could not.

    **Root cause**: authguard/factors/inventory.py:verified_by_cooling_off_factor (django-otp's middleware
    drops the session's device key once the device is gone; "no key" reads "no factor verified").
    **Fix**: as above (authguard's own record of the verifying device in the session state).
    """
    app = _hanako_with_app_of_years(hanako, totp_factory)
    thief, _his_key, his = _thief_with_his_own_passkey(new_browser_api, app)
    assert thief.get("/bank/api/statements").status_code == 403

    clock.shift(60)
    her = new_browser_api(IP_TOKYO)
    her.login_usual("hanako", HANAKO_PASSWORD)
    assert passkey_verify(her, hanako.key).status_code == 200
    removed = her.post("/authguard/api/factors/remove", {"id": his.persistent_id})
    assert removed.status_code == 200, removed.content

    statements = thief.get("/bank/api/statements")
    passkey_only = thief.get("/bank/api/change-bank-account")
    assert statements.status_code == 403 and passkey_only.status_code == 403, (
        f"her removal of his passkey opened his session's step-up views: statements "
        f"{statements.status_code}, passkey-only {passkey_only.status_code} {passkey_only.content!r}"
    )


def test_held_his_session_after_his_passkey_is_gone_changes_no_factor_and_ends_no_session(
    new_browser_api: Any, hanako: Any, totp_factory: Any
) -> None:
    """Held: after removing his own passkey his session adds nothing, removes nothing (the count), and
    "sign out everywhere" refuses it (``verified_by_usable_factor``)."""
    app = _hanako_with_app_of_years(hanako, totp_factory)
    thief, _his_key, his = _thief_with_his_own_passkey(new_browser_api, app)
    assert thief.post("/authguard/api/factors/remove", {"id": his.persistent_id}).status_code == 200
    assert register(thief, new_key()).status_code in (401, 403)
    assert thief.post("/authguard/api/factors/remove", {"id": app.persistent_id}).status_code in (
        400,
        401,
        403,
    )
    assert thief.post("/authguard/api/recovery-codes").status_code == 403
    from authguard.models import Notification

    before = Notification.objects.filter(kind="sessions_ended").count()
    thief.client.get("/authguard/security/")
    thief.client.post("/authguard/security/sessions/end-others/", HTTP_X_CSRFTOKEN=thief.token)
    assert Notification.objects.filter(kind="sessions_ended").count() == before


def test_cost_she_replaces_her_app_then_re_verifies_with_the_new_one_and_the_view_opens(
    new_browser_api: Any, hanako: Any, totp_factory: Any, clock: Any
) -> None:
    """Cost of the fix: her own session verified with her passkey replaces her app; once the verifying
    device may no longer be gone, her session must simply re-verify (with the new app or her passkey) and
    the step-up views open. This legitimate path must keep working."""
    app = _hanako_with_app_of_years(hanako, totp_factory)
    her = new_browser_api(IP_TOKYO)
    her.login_usual("hanako", HANAKO_PASSWORD)
    assert passkey_verify(her, hanako.key).status_code == 200
    assert her.post("/authguard/api/totp").status_code == 200
    from django_otp.plugins.otp_totp.models import TOTPDevice

    new_app = TOTPDevice.objects.get(user=hanako, confirmed=False)
    assert her.post("/authguard/api/totp/confirm", {"code": totp_token(new_app)}).status_code == 201
    assert not TOTPDevice.objects.filter(pk=app.pk).exists()
    clock.shift(31)
    assert passkey_verify(her, hanako.key).status_code == 200
    assert her.get("/bank/api/change-bank-account").status_code == 200
