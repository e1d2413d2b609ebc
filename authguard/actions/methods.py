"""How a sensitive action may be confirmed: the methods offered when it is held, and the factor checks when
it is confirmed (:mod:`authguard.actions.flow`)."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _

from authguard.actions.errors import ConfirmationInvalid
from authguard.conf import app_settings
from authguard.factors.inventory import (
    factor_confirmed_at,
    may_confirm_sensitive,
    totp_device,
    usable_passkeys,
)
from authguard.models import ActionKind, HeldAction


def _may_confirm(user: Any, device: Any) -> bool:
    return may_confirm_sensitive(user, device)


def confirmation_methods(user: Any, *, kind: str | None = None) -> list[str]:
    """How ``user`` may confirm a sensitive action (of ``kind``) now: ``["passkey"]``, ``["totp"]`` or none.

    SECURITY: a passkey, whenever the customer has one; TOTP only where the setting allows it and the customer
    has no usable passkey (a code can be relayed by a phishing page, a passkey cannot), never under the JSDA
    preset, and never for a contact change. Factors in their cooling-off are not counted at all.
    """
    allowed = app_settings.ACTION_CONFIRMATION_METHODS
    passkeys = usable_passkeys(user)
    if "passkey" in allowed and any(_may_confirm(user, device) for device in passkeys):
        return ["passkey"]
    # SECURITY: a relayed code never stands in for her passkey while it cools off (red team, 2026-12-05),
    # nor changes where her password reset goes: authguard's own e-mail change asks two different factors
    # of a customer without a passkey, and one relayed code here made the address his (round thirty).
    totp = (
        totp_device(user)
        if "totp" in allowed and not passkeys and kind != ActionKind.CONTACT_CHANGE
        else None
    )
    return ["totp"] if totp is not None and _may_confirm(user, totp) else []


def _require_may_confirm(user: Any, device: Any, held: HeldAction) -> None:
    """SECURITY: the factor is not cooling off (its own, or the account's with a factor confirmed during it),
    and the customer had it before the action was asked for: whoever holds a hijacked session must not add a
    factor of their own and confirm with it."""
    if not _may_confirm(user, device):
        raise ConfirmationInvalid(
            _(
                "This passkey or authenticator was added too recently to confirm this. "
                "Use one you had before."
            ),
            code="cooling_off",
        )
    confirmed = factor_confirmed_at(device)
    if confirmed is None or confirmed >= held.created_at:
        raise ConfirmationInvalid(
            _("Confirm with a passkey or authenticator you had before this was asked for."),
            code="factor_too_new",
        )
