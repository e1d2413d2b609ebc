"""Red team round forty-nine (A), fixed: the ending time ``records._ended_since`` compares a renewed session
with.

Round forty-seven ends a renewal whose old key's record is gone only when the account's sessions were ended
after the session signed in, with ``ENDING_SKEW_SECONDS`` (five minutes) of clock skew counted as "after";
round forty-eight exempts the session an ending *kept* (``state["ek"]``). Two of her own sessions are still
read as ended by an ending that was not theirs, when the retention prune deletes the record of a key the
portal's rotation middleware (listed above authguard's, as docs/faults.md allows) renewed:

* the session she signs in with a minute after resetting her password (the natural next step of a reset);
* the session she changed her password in through Django's own ``PasswordChangeView`` (the password hook
  ends *every* session, hers included, and ``update_session_auth_hash()`` renews hers: that session is the
  one the ending let live, but nothing notes it, since ``password_changed`` never gets the request).

Not a thief: hanako, signed out for nothing ("it was used from a place we could not trust") right after
securing her account.

Fixed: the skew is the nodes' clocks (``records.ending_skew_seconds``: twice the clock tolerance and ten
seconds), and a renewal of the session its own request ended notes that ending as the one that kept it
(``state["ek"]``, ``state.note_session_key``).
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import views as auth_views
from django.urls import include, path

from authguard.models import AccountSecurity
from authguard.retention import prune_session_records

from .conftest import HANAKO_PASSWORD, IP_TOKYO, OrderApi, of_long_standing, totp_token
from .factor_scenarios import old_totp
from .test_session_key_renewal_portals_walkarounds import portal_login, portfolio_page

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]

NEW_PASSWORD = "hanako-new-secret-2026!"

urlpatterns = [
    path("portal/portfolio", portfolio_page),
    path("portal/login", portal_login),
    path(
        "portal/password",
        auth_views.PasswordChangeView.as_view(success_url="/portal/portfolio"),
        name="password_change",
    ),
    path("", include("demo_site.urls")),
]


@pytest.fixture
def rotating_password_portal(settings: Any) -> None:
    settings.ROOT_URLCONF = __name__
    settings.AUTHGUARD_LOCKOUT_FAILURES = None
    middleware = list(settings.MIDDLEWARE)
    at = middleware.index("django.contrib.sessions.middleware.SessionMiddleware") + 1
    middleware.insert(
        at, "tests.test_session_key_renewal_portals_walkarounds.PeriodicSessionRotationMiddleware"
    )
    settings.MIDDLEWARE = middleware


def _stepped_up(hanako: Any, password: str) -> OrderApi:
    her = OrderApi(REMOTE_ADDR=IP_TOKYO)
    her.post("/api/login", {"username": "hanako", "password": password})
    assert her.post("/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)}).status_code == 200
    assert her.get("/portal/portfolio").status_code == 200
    return her


def _rotation_prune_then_page(her: OrderApi, clock: Any) -> Any:
    """Her portal renews her key six minutes on (above authguard), the scheduled prune runs five minutes
    later (the old key's record names a key the store no longer has), and she opens one more page."""
    assert her.get("/portal/portfolio").status_code == 200
    before = her.client.cookies["sessionid"].value
    clock.shift(6 * 60)
    assert her.get("/portal/portfolio").status_code == 200
    assert her.client.cookies["sessionid"].value != before  # renewed by the portal, after authguard looked
    clock.shift(5 * 60)
    prune_session_records()
    clock.shift(60)
    return her.get("/portal/portfolio")


def _reset_by_mail(hanako: Any) -> None:
    """What ``PasswordResetConfirmView`` does with her new password (an anonymous request)."""
    hanako.set_password(NEW_PASSWORD)
    hanako.save()
    assert AccountSecurity.objects.get(user=hanako).sessions_ended_at is not None


def _signs_in_after_reset(wait: int, hanako: Any, totp_factory: Any, clock: Any) -> Any:
    of_long_standing(hanako)
    hanako.totp = old_totp(hanako, totp_factory)
    _reset_by_mail(hanako)
    clock.shift(wait)
    her = _stepped_up(hanako, NEW_PASSWORD)
    return _rotation_prune_then_page(her, clock)


@pytest.mark.usefixtures("rotating_password_portal")
def test_her_sign_in_a_minute_after_her_reset_outlives_the_prune(
    hanako: Any, totp_factory: Any, clock: Any
) -> None:
    """Secure: the session she signs in with one minute after resetting her password stays signed in across
    the retention prune, as any later sign-in does.

    Means: none (her own flow on a portal configured as docs/faults.md allows: the round-46 rotation
    middleware above authguard's, the scheduled ``prune_session_records``). hanako resets her password by
    mail and signs in at once with the new one (step-up with her app). Her portal renews her key six minutes
    later; the prune deletes the old key's record. Her next page finds the record gone, and an ending (her
    reset) "after" her sign-in because it lies within ``ENDING_SKEW_SECONDS`` (300 s) *before* it: she is
    signed out ("session_ended"). At fault: ``records._ended_since``, ``at >= signed_in_at -
    ENDING_SKEW_SECONDS`` (five minutes where authguard.clock keeps nodes within 2 x tolerance, 4 s)."""
    again = _signs_in_after_reset(60, hanako, totp_factory, clock)
    assert again.status_code == 200, (again.status_code, again.get("Location"), again.content[:120])


@pytest.mark.usefixtures("rotating_password_portal")
def test_held_her_sign_in_six_minutes_after_her_reset_stays(
    hanako: Any, totp_factory: Any, clock: Any
) -> None:
    """The control: the same, signed in six minutes after the reset (outside the skew): she stays."""
    again = _signs_in_after_reset(6 * 60, hanako, totp_factory, clock)
    assert again.status_code == 200, (again.status_code, again.get("Location"), again.content[:120])


@pytest.mark.usefixtures("rotating_password_portal")
def test_her_password_change_in_djangos_view_outlives_the_prune(
    hanako: Any, totp_factory: Any, clock: Any
) -> None:
    """Secure: the session she changed her password in (Django's ``PasswordChangeView``, which keeps the
    changer signed in through ``update_session_auth_hash``) stays signed in across the retention prune, as
    round forty-eight's session kept by "sign out everywhere else" does.

    Means: none (her own flow, Django's stock view, docs/integration.md's password hook). The password hook
    (``login.receivers.act_on_password_change`` -> ``flow.password_changed(instance)``, no request) ends
    every session, hers included; Django renews her key and authguard moves her record (``previous in
    ENDED_SESSIONS``) but never notes the ending as kept (``note_kept_through_ending`` runs only when
    ``password_changed`` has a request, which the receiver never passes). Her portal's rotation and the prune
    then sign her out. At fault: ``records._move`` (the ``ENDED_SESSIONS`` branch) sets no ``ek``; fix: when
    a renewal is moved because its own request ended it, mark the state kept (``ek`` = now)."""
    of_long_standing(hanako)
    hanako.totp = old_totp(hanako, totp_factory)
    her = _stepped_up(hanako, HANAKO_PASSWORD)
    clock.shift(60)
    changed = her.client.post(
        "/portal/password",
        {"old_password": HANAKO_PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
        HTTP_X_CSRFTOKEN=her.token,
    )
    assert changed.status_code == 302 and changed["Location"] == "/portal/portfolio", changed
    hanako.refresh_from_db()
    assert hanako.check_password(NEW_PASSWORD)
    assert AccountSecurity.objects.get(user=hanako).sessions_ended_at is not None
    again = _rotation_prune_then_page(her, clock)
    assert again.status_code == 200, (again.status_code, again.get("Location"), again.content[:120])


@pytest.mark.usefixtures("rotating_password_portal")
def test_held_her_password_change_keeps_her_without_the_prune(
    hanako: Any, totp_factory: Any, clock: Any
) -> None:
    """The control: after her password change in Django's view she stays signed in across the rotation
    (no prune in between)."""
    of_long_standing(hanako)
    hanako.totp = old_totp(hanako, totp_factory)
    her = _stepped_up(hanako, HANAKO_PASSWORD)
    changed = her.client.post(
        "/portal/password",
        {"old_password": HANAKO_PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
        HTTP_X_CSRFTOKEN=her.token,
    )
    assert changed.status_code == 302, changed
    assert her.get("/portal/portfolio").status_code == 200
    clock.shift(6 * 60)
    assert her.get("/portal/portfolio").status_code == 200
    clock.shift(6 * 60)
    assert her.get("/portal/portfolio").status_code == 200
