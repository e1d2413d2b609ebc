"""What a user's second factors are, read-only: the facts notifications, sessions and the lockout need.

A low module (it imports only :mod:`authguard.conf`, :mod:`authguard.exceptions`, :mod:`authguard.models`,
Django and django-otp, never another authguard feature), so anything may ask it without an import cycle.
Nothing here writes; the flows that change factors live in :mod:`authguard.factors.lifecycle`,
:mod:`authguard.factors.totp`, :mod:`authguard.factors.recovery`, :mod:`authguard.factors.passkeys` and
:mod:`authguard.factors.contact`.

* **Which factors**: :func:`user_factors` (usable: confirmed, not disabled by the failure limit, recovery
  codes left), :func:`usable_passkeys`, :func:`totp_device`, :func:`has_strong_factor`,
  :func:`recovery_codes_left` (the one count every front end shows), :func:`device_from_id`,
  :func:`session_device`.
* **Cooling-off** (see :mod:`authguard.factors.lifecycle` for the rules that start it): the account's
  (:func:`cooling_off_until`, :func:`in_cooling_off`) and one factor's (:func:`factor_is_cooling_off`,
  :func:`may_confirm_sensitive`), and where notices go meanwhile (:func:`notice_addresses`,
  :func:`previous_addresses`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from datetime import timezone as dt_timezone
from typing import TYPE_CHECKING, Any

from django.contrib.auth import get_user_model
from django.http import HttpRequest
from django.utils.translation import gettext_lazy
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.models import Device
from django_otp.plugins.otp_totp.models import TOTPDevice

from authguard import clock
from authguard.factors.verifier import VERIFIER_SESSION_KEY, remember_verifier
from authguard.models import (
    AccountSecurity,
    FactorKind,
    FactorRecord,
    PasskeyDevice,
    PreviousEmail,
    RecoveryCodeDevice,
)

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

#: How each kind is named in messages to the user (keyed by the kind's string: callers pass either).
FACTOR_LABELS: dict[str, StrOrPromise] = {
    FactorKind.PASSKEY: gettext_lazy("passkey"),
    FactorKind.TOTP: gettext_lazy("authenticator app"),
    FactorKind.RECOVERY_CODE: gettext_lazy("recovery codes"),
}


def _now(at: datetime | None) -> datetime:
    return at if at is not None else clock.now()


def kind_of(device: Device) -> FactorKind:
    """The :class:`~authguard.models.FactorKind` of a django-otp device."""
    if isinstance(device, PasskeyDevice):
        return FactorKind.PASSKEY
    if isinstance(device, RecoveryCodeDevice):
        return FactorKind.RECOVERY_CODE
    if isinstance(device, TOTPDevice):
        return FactorKind.TOTP
    raise ValueError(f"not an authguard factor: {type(device).__name__}")


# -- which factors a user has ------------------------------------------------------------------------------


def disabled_device_ids(user: Any) -> set[str]:
    """Persistent ids of the user's factors disabled by the failure limit."""
    return set(
        FactorRecord.objects.filter(user=user, disabled_at__isnull=False).values_list("device_id", flat=True)
    )


def is_disabled(device: Device) -> bool:
    """Whether ``device`` reached the failure limit and waits to be re-bound."""
    return FactorRecord.objects.filter(device_id=device.persistent_id, disabled_at__isnull=False).exists()


def user_factors(user: Any) -> list[Device]:
    """The user's usable factors: confirmed passkeys and TOTP devices not disabled by the failure limit,
    and a recovery-code set with codes left. Passkeys first, then TOTP, then recovery codes."""
    if user is None or not getattr(user, "is_authenticated", False):
        return []
    devices: list[Device] = [
        *PasskeyDevice.objects.filter(user=user, confirmed=True).order_by("pk"),
        *TOTPDevice.objects.filter(user=user, confirmed=True).order_by("pk"),
        *RecoveryCodeDevice.objects.filter(user=user, confirmed=True, codes__used_at__isnull=True)
        .distinct()
        .order_by("pk"),
    ]
    disabled = disabled_device_ids(user)
    return [device for device in devices if device.persistent_id not in disabled]


def usable_passkeys(user: Any) -> list[PasskeyDevice]:
    """The user's confirmed passkeys that are not disabled by the failure limit."""
    devices = list(PasskeyDevice.objects.filter(user=user, confirmed=True).order_by("pk"))
    disabled = disabled_device_ids(user)
    return [device for device in devices if device.persistent_id not in disabled]


def unused_recovery_codes(device: RecoveryCodeDevice) -> int:
    """How many codes of this recovery-code set can still be used: 0 when the set is unconfirmed or was
    disabled by the failure limit (its unused rows stay, but none of them signs in until it is re-issued)."""
    if not device.confirmed or is_disabled(device):
        return 0
    return device.remaining()


def recovery_codes_left(user: Any) -> int:
    """How many unused recovery codes the user has (0: none, or the set was disabled).

    The one count every front end shows (security page, JSON API, DRF): never ``device.remaining()``,
    which also counts the codes of a set the failure limit disabled."""
    for device in user_factors(user):
        if isinstance(device, RecoveryCodeDevice):
            return unused_recovery_codes(device)
    return 0


def has_strong_factor(user: Any) -> bool:
    """Whether the user has a usable passkey or TOTP device (recovery codes are a backup, not a factor to
    rely on day to day)."""
    return any(not isinstance(device, RecoveryCodeDevice) for device in user_factors(user))


def totp_device(user: Any) -> TOTPDevice | None:
    """The user's confirmed, usable TOTP device, if any."""
    for device in user_factors(user):
        if isinstance(device, TOTPDevice):
            return device
    return None


def device_from_id(user: Any, persistent_id: object) -> Device | None:
    """The session user's authguard factor with this django-otp ``persistent_id``, or None."""
    if not isinstance(persistent_id, str) or len(persistent_id) > 100:
        return None
    try:
        device = Device.from_persistent_id(persistent_id)
    except (AttributeError, ValueError, LookupError):
        # django-otp raises for an id naming a model that is not a device ("auth.user/1").
        return None
    if device is None or device.user_id != user.pk:
        return None
    try:
        kind_of(device)
    except ValueError:
        return None
    return device


def session_device(request: HttpRequest, *, persistent_id: str | None = None) -> Device | None:
    """The factor that last verified this session (``persistent_id``, by default django-otp's record in the
    session), if it still exists and belongs to the session's user."""
    session = getattr(request, "session", None)
    user = getattr(request, "user", None)
    if session is None or user is None or not user.is_authenticated:
        return None
    if persistent_id is None:
        persistent_id = session.get(DEVICE_ID_SESSION_KEY)
    if not isinstance(persistent_id, str) or len(persistent_id) > 100:
        return None
    try:
        device = Device.from_persistent_id(persistent_id)
    except (AttributeError, ValueError, LookupError):
        return None
    if device is None or device.user_id != user.pk:
        return None
    return device


# -- cooling-off: the account's and one factor's ------------------------------------------------------------


def cooling_off_until(user: Any, *, at: datetime | None = None) -> datetime | None:
    """When the account's cooling-off ends; None when it is not cooling off at ``at``."""
    if user is None or getattr(user, "pk", None) is None:
        return None
    at = _now(at)
    row = AccountSecurity.objects.filter(user_id=user.pk).first()
    if row is None or row.cooling_off_until is None or row.cooling_off_until <= at:
        return None
    if row.cooling_off_started_at is not None and row.cooling_off_started_at > at:
        return None  # asked about a time before this cooling-off began
    return row.cooling_off_until


def in_cooling_off(user: Any, *, at: datetime | None = None) -> bool:
    """Whether the account is cooling off at ``at`` (now)."""
    return cooling_off_until(user, at=at) is not None


def cooling_off_reason(user: Any) -> str:
    """Why the running cooling-off started (or was last extended); empty when none runs."""
    if not in_cooling_off(user):
        return ""
    row = AccountSecurity.objects.filter(user_id=user.pk).only("cooling_off_reason").first()
    return row.cooling_off_reason if row is not None else ""


def security_row(user: Any, *, lock: bool = False) -> AccountSecurity:
    """The user's :class:`~authguard.models.AccountSecurity` row (created on first use); ``lock`` inside a
    transaction."""
    row, _created = AccountSecurity.objects.get_or_create(user_id=user.pk)
    return AccountSecurity.objects.select_for_update().get(pk=row.pk) if lock else row


#: The confirmation time of a confirmed factor authguard has no record of and that has no ``created_at``:
#: django-otp's devices made before its timestamps (their column was added empty), from before authguard. It
#: has stood longer than anything authguard recorded.
LONG_STANDING = datetime(1970, 1, 1, tzinfo=dt_timezone.utc)


def unrecorded_confirmed_at(device: Device) -> datetime | None:
    """When a device authguard did not enroll (seeded, admin-made, from before authguard) was confirmed:
    its ``created_at``, or :data:`LONG_STANDING` for a confirmed one without it; None for an unconfirmed one.

    SECURITY: "no time" counted as cooling off whenever the account was: one relayed code's passkey made her
    app of years "new", so his passkey was the oldest of all-new factors and added on, and her reset revoked
    her own app (red team, round twenty-two).
    """
    created = getattr(device, "created_at", None)
    if created is None and getattr(device, "confirmed", False) and getattr(device, "pk", None) is not None:
        return LONG_STANDING
    return created


def factor_confirmed_at(device: Device) -> datetime | None:
    """When ``device`` was confirmed: its record's time (the confirmation, never the start of an enrollment);
    for devices authguard did not enroll, :func:`unrecorded_confirmed_at`."""
    record = FactorRecord.objects.filter(device_id=device.persistent_id).only("enrolled_at").first()
    if record is not None:
        return record.enrolled_at
    return unrecorded_confirmed_at(device)


def factor_is_cooling_off(device: Device, *, at: datetime | None = None) -> bool:
    """Whether ``device`` is cooling off at ``at``: its own cooling-off has not ended, or it was confirmed
    during the account's running cooling-off. Unknown devices count as cooling off; whoever judges a
    session's or token's verifier treats an unconfirmed one so as well (it is read as stored here)."""
    at = _now(at)
    if device is None or getattr(device, "pk", None) is None:
        return True
    record = FactorRecord.objects.filter(device_id=device.persistent_id).first()
    if record is not None and record.cooling_off_until is not None and record.cooling_off_until > at:
        return True
    confirmed = record.enrolled_at if record is not None else unrecorded_confirmed_at(device)
    row = AccountSecurity.objects.filter(user_id=device.user_id).first()
    if row is None or row.cooling_off_until is None or row.cooling_off_until <= at:
        return False
    started = row.cooling_off_started_at
    if started is None or started > at:
        return False
    # SECURITY: no time means we cannot prove it is older than the cooling-off: it is cooling off.
    return confirmed is None or confirmed >= started


def cooling_off_end(device: Device, *, at: datetime | None = None) -> datetime | None:
    """When ``device``'s cooling-off ends (:func:`factor_is_cooling_off`), or None if it is not cooling off
    at ``at``: the later of its own and the account's cooling-off it was confirmed in."""
    at = _now(at)
    if not factor_is_cooling_off(device, at=at):
        return None
    record = FactorRecord.objects.filter(device_id=device.persistent_id).first()
    row = AccountSecurity.objects.filter(user_id=device.user_id).first()
    ends = [
        until
        for until in (
            record.cooling_off_until if record is not None else None,
            row.cooling_off_until if row is not None else None,
        )
        if until is not None and until > at
    ]
    return max(ends) if ends else None


def may_confirm_sensitive(user: Any, device: Device | None, *, at: datetime | None = None) -> bool:
    """Whether ``device`` may confirm a held order or a sensitive action of ``user`` now: it is the user's,
    confirmed, not disabled and not cooling off."""
    if device is None or user is None or getattr(device, "user_id", None) != user.pk:
        return False
    if not getattr(device, "confirmed", False) or is_disabled(device):
        return False
    return not factor_is_cooling_off(device, at=at)


def verified_by_cooling_off_factor(request: HttpRequest, *, at: datetime | None = None) -> bool:
    """Whether this session's last strong verification was with a factor that is cooling off (or one that
    no longer exists or is unconfirmed); False for a session that has not verified with a factor at all."""
    session = getattr(request, "session", None)
    if session is None:
        return False
    # SECURITY: our own record first: django-otp's is gone once its factor is (see remember_verifier).
    persistent_id = session.get(VERIFIER_SESSION_KEY) or session.get(DEVICE_ID_SESSION_KEY)
    if not persistent_id:
        return False
    device = session_device(request, persistent_id=str(persistent_id))
    return verifier_is_cooling_off(device, at=at)


def verifier_is_cooling_off(device: Device | None, *, at: datetime | None = None) -> bool:
    """Whether a session's or a token's verifying factor no longer proves anything: gone (``None``),
    unconfirmed (disabled at its failure limit), or cooling off. The one rule both doors read."""
    return device is None or not device.confirmed or factor_is_cooling_off(device, at=at)


def previous_addresses(user: Any, *, at: datetime | None = None) -> list[str]:
    """The addresses the account had before each e-mail change made during its running cooling-off, earliest
    first, without repeats (case-insensitive); empty when no cooling-off runs at ``at`` (now).

    SECURITY: only those dropped since that cooling-off began: an address the customer dropped long ago must
    not hear of her account (review, 2026-12-04). All of them, not the first alone: after her own change A->B
    a thief's B->C must not leave B, her real address, unheard (red team).
    """
    at = _now(at)
    row = AccountSecurity.objects.filter(user_id=user.pk).first()
    if (
        row is None
        or row.cooling_off_until is None
        or row.cooling_off_until <= at
        or row.cooling_off_started_at is None
    ):
        return []
    return _distinct(email for email, _strong in dropped_addresses(user, at=at))


def dropped_addresses(user: Any, *, at: datetime | None = None) -> list[tuple[str, bool]]:
    """``(address, replaced with a passkey)`` of each e-mail change of the running cooling-off, in order."""
    at = _now(at)
    row = AccountSecurity.objects.filter(user_id=user.pk).first()
    if (
        row is None
        or row.cooling_off_until is None
        or row.cooling_off_until <= at
        or row.cooling_off_started_at is None
    ):
        return []
    return list(
        PreviousEmail.objects.filter(account_id=row.pk, dropped_at__gte=row.cooling_off_started_at)
        .order_by("dropped_at", "pk")
        .values_list("email", "by_passkey")
    )


def since_last_passkey_change(dropped: list[tuple[str, bool]]) -> tuple[bool, list[str]]:
    """``(whether a change of the cooling-off was confirmed with a passkey, the addresses replaced since the
    last such change without one)``."""
    last = max((i for i, (_email, strong) in enumerate(dropped) if strong), default=None)
    if last is None:
        return False, [email for email, _strong in dropped]
    return True, [email for email, strong in dropped[last + 1 :] if not strong]


def reset_addresses(user: Any, *, at: datetime | None = None) -> list[str]:
    """Where a password reset's link goes during the cooling-off of an e-mail change (empty when none runs:
    the current address, as Django does): the addresses replaced by changes confirmed without a passkey
    since the last change confirmed with one; with none such, after a passkey-confirmed change, the current
    address.

    SECURITY: a change made with two relayed codes may be the thief's, so the link goes to the address it
    replaced, not to his. A change confirmed with her passkey (not cooling off) is hers: it closes the
    addresses before it. Mailing every address of the cooling-off sent the link to the thief's address after
    she had taken hers back with her passkey, and only to her phished mailbox after she had moved off it
    with her passkey (red team, round thirty-nine)."""
    strong, weak = since_last_passkey_change(dropped_addresses(user, at=at))
    if weak or not strong:
        return _distinct(weak)
    field = get_user_model().get_email_field_name()
    return _distinct([str(getattr(user, field, "") or "")])


def notice_addresses(user: Any) -> list[str]:
    """Where held-order and security notices of ``user`` go: the current address, and during a cooling-off
    started by an e-mail change also every address the account had in it (a thief who changed it, once or
    again, cannot silence them)."""
    field = get_user_model().get_email_field_name()
    return _distinct([str(getattr(user, field, "") or ""), *previous_addresses(user)])


def _distinct(addresses: Iterable[str]) -> list[str]:
    """``addresses`` without empty ones and case-insensitive repeats, in their order."""
    seen: set[str] = set()
    kept: list[str] = []
    for address in addresses:
        if address and address.lower() not in seen:
            seen.add(address.lower())
            kept.append(address)
    return kept


__all__ = [
    "VERIFIER_SESSION_KEY",
    "cooling_off_reason",
    "cooling_off_until",
    "device_from_id",
    "disabled_device_ids",
    "factor_confirmed_at",
    "factor_is_cooling_off",
    "FACTOR_LABELS",
    "has_strong_factor",
    "remember_verifier",
    "verifier_is_cooling_off",
    "in_cooling_off",
    "is_disabled",
    "kind_of",
    "may_confirm_sensitive",
    "notice_addresses",
    "previous_addresses",
    "reset_addresses",
    "dropped_addresses",
    "since_last_passkey_change",
    "recovery_codes_left",
    "session_device",
    "totp_device",
    "unused_recovery_codes",
    "usable_passkeys",
    "user_factors",
    "verified_by_cooling_off_factor",
]
