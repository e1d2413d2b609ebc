"""Staff sessions for the security console: staff members with a real passkey, verified through the real
passkey step-up API (a real WebAuthn assertion verified by py_webauthn), or signed in with a password only.

``staff_client(user)`` (re-exported by :mod:`tests.console_data`) is what the console tests use: the
console opens only to a passkey-verified staff session (:mod:`authguard.console.guard`).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.test import Client
from django.utils import timezone

from authguard.login import lockout
from authguard.testing import SoftAuthenticator

from .conftest import api_post, bind_passkey

#: How long ago the staff members' passkeys were registered (older than the console's new-passkey wait).
PASSKEY_AGE = timedelta(days=30)


def give_passkey(user: Any, *, age: timedelta = PASSKEY_AGE) -> tuple[SoftAuthenticator, Any]:
    """Give ``user`` a passkey registered ``age`` ago (a real registration, verified by py_webauthn);
    returns the software authenticator holding it and the stored device."""
    authenticator = SoftAuthenticator(origin="http://localhost:8000", rp_id="localhost")
    device = bind_passkey(user, authenticator)
    type(device).objects.filter(pk=device.pk).update(created_at=timezone.now() - age)
    device.refresh_from_db()
    return authenticator, device


def passkey_verify(client: Client, authenticator: SoftAuthenticator, **overrides: Any) -> Any:
    """Verify the client's session with its staff member's passkey through the step-up JSON API."""
    options = api_post(client, "api-step-up-passkey-options")
    assert options.status_code == 200, options.content
    return api_post(client, "api-step-up-passkey", authenticator.get(options.json(), **overrides))


def password_only_client(user: Any, **client_kwargs: Any) -> Client:
    """A staff session signed in without any passkey check (what a phished staff password gives)."""
    client = Client(**client_kwargs)
    client.force_login(user)
    return client


def staff_client(user: Any, *, passkey: bool = True, **client_kwargs: Any) -> Client:
    """A client signed in as ``user`` and verified with the staff member's own passkey in this session
    (the passkey is created if the user has none yet). ``passkey=False``: a password-only session.
    ``client_kwargs`` go to the test ``Client`` (``HTTP_USER_AGENT=...``: the browser of the session).

    The client keeps its authenticator as ``client.authenticator`` for a later re-verification.
    """
    from authguard.models import PasskeyDevice

    client = password_only_client(user, **client_kwargs)
    if not passkey:
        return client
    authenticator = getattr(user, "_test_authenticator", None)
    if authenticator is None or not PasskeyDevice.objects.filter(user=user).exists():
        authenticator, _device = give_passkey(user)
        user._test_authenticator = authenticator
    answer = passkey_verify(client, authenticator)
    assert answer.status_code == 200, answer.content
    client.authenticator = authenticator  # type: ignore[attr-defined]
    return client


#: The staff actions page (four eyes).
APPROVALS = "/admin/authguard/staffapproval/"


def approve_pending(client: Client, *, note: str = "checked with the customer by phone") -> Any:
    """Approve every pending staff action through the staff actions page, as ``client``'s staff member."""
    from authguard.models import StaffApproval

    pks = [str(pk) for pk in StaffApproval.objects.filter(status="pending").values_list("pk", flat=True)]
    return client.post(
        APPROVALS, {"action": "approve", "_selected_action": pks, "apply": "1", "reason": note}
    )


def locked_by_failures(user: Any, settings: Any, *, failures: int = 2) -> Any:
    """Lock ``user``'s account the way a run of wrong passwords does; returns ``user``."""
    settings.AUTHGUARD_LOCKOUT_FAILURES = failures
    for _ in range(failures):
        lockout.record_failure(user, kind="password")
    assert lockout.is_locked(user)
    return user
