"""Changing the e-mail address: the contact change a thief wants most, so it is the strictest factor change.

It needs a fresh passkey verification (a passkey not cooling off) or, for a customer without a passkey,
fresh verifications with two different factors (:func:`require_contact_change_allowed`); a one-time code
mailed to the new address proves it is the customer's (:func:`begin_email_change`,
:func:`confirm_email_change`). The change starts the account's cooling-off and notices keep going to the old
address until it ends (:func:`authguard.factors.lifecycle.note_contact_changed`,
:func:`authguard.factors.inventory.notice_addresses`). ``AUTHGUARD_EMAIL_CHANGE`` off turns it off.
"""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import BaseUserManager
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import F
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.crypto import constant_time_compare, salted_hmac
from django.utils.translation import gettext as _
from django_otp.models import Device

from authguard import clock
from authguard.conf import app_settings
from authguard.exceptions import InvalidCredential, StepUpRequired, Throttled
from authguard.factors import methods as factor_methods
from authguard.factors.base import note_change, tell_user
from authguard.factors.inventory import (
    device_from_id,
    factor_is_cooling_off,
    may_confirm_sensitive,
    session_device,
    user_factors,
)
from authguard.factors.lifecycle import (
    note_contact_changed,
    require_can_change_factors,
    session_vouched,
    verified_by_usable_factor,
)
from authguard.models import ContactChange, PasskeyDevice
from authguard.notifications.messages import user_language
from authguard.sessions import state as sessions_state

logger = logging.getLogger(__name__)

#: How long a mailed e-mail confirmation code is valid, and how many wrong codes end the change.
EMAIL_CODE_SECONDS = 30 * 60
EMAIL_CODE_ATTEMPTS = 5
EMAIL_CODE_LENGTH = 8
#: Session key remembering the first of two factors proven for a contact change.
SECOND_FACTOR_KEY = "_authguard_contact_first_factor"


# -- who may change a contact --------------------------------------------------------------------------------


def require_contact_change_allowed(request: HttpRequest, *, user: Any) -> str:
    """An e-mail/contact change needs a fresh passkey verification (a passkey not cooling off), or, where
    the customer has no passkey, fresh verifications with two different factors not cooling off, the last
    one within ``AUTHGUARD_STEP_UP_FRESH_SECONDS``. Returns ``"passkey"`` or ``"two_factors"``."""
    require_can_change_factors(request, user=user)
    user = request.user
    verifier = session_device(request)
    if verifier is None or not may_confirm_sensitive(user, verifier):
        raise StepUpRequired(
            _("Confirm it is you with a security method you had before the cooling-off period."),
            code="step_up_required",
            methods=factor_methods.step_up_methods(user),
        )
    passkeys = [
        d for d in user_factors(user) if isinstance(d, PasskeyDevice) and not factor_is_cooling_off(d)
    ]
    if passkeys:
        if isinstance(verifier, PasskeyDevice) and sessions_state.has_fresh_verification(
            request, methods=["passkey"]
        ):
            return "passkey"
        raise StepUpRequired(
            _("Confirm it is you with your passkey to change your e-mail address."),
            code="step_up_required",
            methods=["passkey"],
        )
    earlier = request.session.get(SECOND_FACTOR_KEY)
    if (
        isinstance(earlier, dict)
        and earlier.get("id") != verifier.persistent_id
        # SECURITY: within minutes, and never "from the future" (a node whose clock ran ahead wrote it).
        and not clock.is_from_the_future(elapsed := clock.timestamp() - float(earlier.get("t", 0)))
        and elapsed <= 2 * app_settings.STEP_UP_FRESH_SECONDS
    ):
        other = session_device_by_id(user, earlier.get("id"))
        if other is not None and may_confirm_sensitive(user, other):
            return "two_factors"
    remember_first_factor(request)
    methods = {
        factor_methods.method_of(d) for d in user_factors(user) if d.persistent_id != verifier.persistent_id
    }
    others = sorted(m for m in methods if m is not None)
    raise StepUpRequired(
        _("Confirm it is you with a second, different security method to change your e-mail address."),
        code="second_factor_required",
        methods=[m for m in others if m],
    )


def require_strong_removal(request: HttpRequest, *, user: Any) -> str:
    """Removing or replacing a factor that is not cooling off needs more than one relayable code: a vouched
    session (``"vouched"``, :func:`~authguard.factors.lifecycle.session_vouched`: a fresh verification with a
    trusted passkey, or a low-risk session on a browser the account has used for a month) verified with a
    factor not cooling off, or what an e-mail change needs (``"two_factors"``,
    :func:`require_contact_change_allowed`). Raises :class:`~authguard.exceptions.StepUpRequired`."""
    verifier = session_device(request)
    if (
        verifier is not None
        and may_confirm_sensitive(user, verifier)
        and session_vouched(request, user=user, via="fresh_verification", now=clock.now())
    ):
        return "vouched"
    try:
        return require_contact_change_allowed(request, user=user)
    except StepUpRequired as exc:
        raise StepUpRequired(
            _(
                "To remove or replace a security method, confirm it is you with your passkey, or with a "
                "second, different security method."
            ),
            code=exc.code,
            methods=exc.methods,
        ) from None


def require_password_change_allowed(request: HttpRequest, *, user: Any) -> str:
    """A password change from a signed-in session (a reset by e-mail is not one): the rules of a factor
    change, with a verifying factor that is not cooling off. Returns how, as
    :func:`~authguard.factors.lifecycle.require_can_change_factors` does.

    SECURITY: a change ends every other session and revokes the factors added during a cooling-off
    (:func:`authguard.login.flow.password_changed`): the customer's decision, never a password-only
    session's, or a thief with the password alone would lock her out and delete her new passkey (red team,
    2026-12-05). Raises :class:`~authguard.exceptions.StepUpRequired`.
    """
    how = require_can_change_factors(request, user=user)
    if how == "low_risk_first_factor":
        return how
    verifier = session_device(request)
    if (
        how != "fresh_verification"
        or verifier is None
        or not may_confirm_sensitive(request.user, verifier)
        or not verified_by_usable_factor(request)
    ):
        # SECURITY: the desk's or identity proofing's grant to bind a factor again is no licence to change
        # the password from a password session (red team, 2026-12-05): a reset by e-mail is the way.
        raise StepUpRequired(
            _("Confirm it is you with a security method you had before the cooling-off period."),
            code="step_up_required",
            methods=factor_methods.step_up_methods(request.user),
        )
    return how


def remember_first_factor(request: HttpRequest) -> None:
    """Remember the factor that verified this session, so a second, different one can complete a contact
    change (for customers without a passkey)."""
    device = session_device(request)
    if device is not None:
        request.session[SECOND_FACTOR_KEY] = {"id": device.persistent_id, "t": clock.timestamp()}


def session_device_by_id(user: Any, persistent_id: object) -> Device | None:
    """The user's device with this persistent id, or None."""
    return device_from_id(user, persistent_id)


# -- the e-mail change ---------------------------------------------------------------------------------------


def _email_digest(user_pk: int, email: str, code: str) -> str:
    return salted_hmac(
        "authguard.lifecycle.email-code", f"{user_pk}:{email.lower()}:{code}", algorithm="sha256"
    ).hexdigest()


def _require_email_change_on() -> None:
    """``AUTHGUARD_EMAIL_CHANGE`` off: the built-in e-mail change refuses (400 ``email_change_off``)."""
    if not app_settings.EMAIL_CHANGE:
        raise InvalidCredential(
            _("The e-mail address cannot be changed here. Please contact customer support."),
            code="email_change_off",
        )


def email_is_login_name() -> bool:
    """Whether the user model signs in with its e-mail address (``USERNAME_FIELD`` is the e-mail field): an
    e-mail change then changes what the customer types to sign in."""
    model = get_user_model()
    return bool(model.get_email_field_name() == model.USERNAME_FIELD)


def normalize_email_address(value: object) -> str:
    """``value`` as the address to store: stripped, its domain lower-cased (as Django's
    ``BaseUserManager.normalize_email`` stores new users' addresses), checked by Django's ``validate_email``
    and against the user model's field length. Raises :class:`InvalidCredential` (``invalid_email``)."""
    invalid = InvalidCredential(_("Enter a valid e-mail address."), code="invalid_email")
    if not isinstance(value, str) or len(value) > 254:
        raise invalid
    address = BaseUserManager.normalize_email(value.strip())
    model = get_user_model()
    max_length = getattr(model._meta.get_field(model.get_email_field_name()), "max_length", None) or 254
    if not address or len(address) > min(max_length, 254):
        raise invalid
    try:
        validate_email(address)
    except ValidationError:
        raise invalid from None
    return address


def _address_taken(address: str, *, user_pk: Any) -> bool:
    """Whether another account already has ``address`` (case-insensitively: two accounts whose addresses
    differ only in case would share password resets and notices, and confuse an e-mail login)."""
    model = get_user_model()
    field = model.get_email_field_name()
    return model._default_manager.filter(**{f"{field}__iexact": address}).exclude(pk=user_pk).exists()


def _address_unavailable(user: Any, stage: str) -> InvalidCredential:
    """The refusal of an address another account has. The message says no more than a sign-up form would
    (nothing about the other account); staff read the log."""
    logger.warning(
        "authguard: e-mail change refused at %s: the address belongs to another account user=%s",
        stage,
        user.pk,
    )
    return InvalidCredential(_("This address cannot be used."), code="email_unavailable")


def begin_email_change(request: HttpRequest, *, user: Any, new_email: object) -> ContactChange:
    """Start an e-mail change: check the session (:func:`require_contact_change_allowed`), then mail a
    one-time code to the *new* address (it must be the customer's). Nothing changes until
    :func:`confirm_email_change`.

    The address is normalised (:func:`normalize_email_address`) and must not belong to another account.
    Raises :class:`~authguard.exceptions.InvalidCredential` (``email_change_off`` when
    ``AUTHGUARD_EMAIL_CHANGE`` is off, ``invalid_email``, ``same_email``, ``email_unavailable``,
    ``mail_failed``) or :class:`~authguard.exceptions.StepUpRequired`."""
    _require_email_change_on()
    require_contact_change_allowed(request, user=user)
    user = request.user
    address = normalize_email_address(new_email)
    field = get_user_model().get_email_field_name()
    if address.lower() == str(getattr(user, field, "") or "").lower():
        raise InvalidCredential(_("This is already your e-mail address."), code="same_email")
    if _address_taken(address, user_pk=user.pk):
        raise _address_unavailable(user, "request")
    code = "".join(secrets.choice("0123456789") for _ in range(EMAIL_CODE_LENGTH))
    now = clock.now()
    change, _created = ContactChange.objects.update_or_create(
        user_id=user.pk,
        defaults={
            "new_email": address,
            "code_digest": _email_digest(user.pk, address, code),
            "created_at": now,
            "expires_at": now + timedelta(seconds=EMAIL_CODE_SECONDS),
            "attempts": 0,
        },
    )
    try:
        _mail_code(user, address, code)
    except Exception:
        logger.exception("authguard: could not mail an e-mail confirmation code user=%s", user.pk)
        change.delete()
        raise InvalidCredential(
            _("We could not send the code. Please try again later."), code="mail_failed"
        ) from None
    return change


def _mail_code(user: Any, address: str, code: str) -> None:
    """Mail the confirmation code to the new address (directly: the outbox carries no secrets)."""
    with translation.override(user_language(user)):
        subject = _("Confirm your new e-mail address")
        body = render_to_string(
            "authguard/email/email_verify.txt",
            {
                "code": code,
                "minutes": EMAIL_CODE_SECONDS // 60,
                "user": user,
                "login_name_changes": email_is_login_name(),
            },
        )
    send_mail(subject, body, None, [address], fail_silently=False)


def pending_email_change(user: Any) -> ContactChange | None:
    """The user's e-mail change waiting for its code, if any and not expired."""
    return ContactChange.objects.filter(user_id=user.pk, expires_at__gt=clock.now()).first()


def confirm_email_change(request: HttpRequest, *, user: Any, code: object) -> str:
    """Finish the pending e-mail change with the code mailed to the new address; returns the new address.

    The session must still be allowed to change contacts. Notifies the old address (and the new one),
    remembers the old address for the cooling-off it starts (held-order notices keep going there too).
    Where the e-mail address is the login name (:func:`email_is_login_name`) the customer signs in with
    the new address from now on; the notices say so (``login_name_changed`` in their context).

    The address is checked again under the user's row lock and the locks of every pending change to the
    same address, so of two accounts confirming one address at once the second is refused; a unique
    constraint on the user model that fires anyway is refused the same way, with nothing written.
    Raises :class:`~authguard.exceptions.InvalidCredential` (``email_change_off``, ``no_change``,
    ``wrong_code``, ``email_unavailable``) or :class:`~authguard.exceptions.Throttled` after too many wrong
    codes (the change is then dropped).
    """
    _require_email_change_on()
    via = require_contact_change_allowed(request, user=user)
    user = request.user
    change = pending_email_change(user)
    if change is None:
        raise InvalidCredential(_("Start the e-mail change again."), code="no_change")
    token = code.strip() if isinstance(code, str) else ""
    expected = change.code_digest
    if not (token.isascii() and token.isdigit()) or not constant_time_compare(
        _email_digest(user.pk, change.new_email, token), expected
    ):
        ContactChange.objects.filter(pk=change.pk).update(attempts=F("attempts") + 1)
        try:
            change.refresh_from_db()
        except ContactChange.DoesNotExist:  # a parallel request used up the last try
            raise InvalidCredential(_("Start the e-mail change again."), code="no_change") from None
        if change.attempts >= EMAIL_CODE_ATTEMPTS:
            change.delete()
            raise Throttled(
                _("Too many wrong codes. Start the e-mail change again."), code="too_many_attempts"
            )
        raise InvalidCredential(_("That code is not right."), code="wrong_code")
    model = get_user_model()
    field = model.get_email_field_name()
    login_name = email_is_login_name()
    now = clock.now()
    old = str(getattr(user, field, "") or "")
    try:
        with transaction.atomic():
            # SECURITY: lock order as the order and action guards: the user's row first. Then every
            # pending change to this address, in one order, so two accounts confirming it queue up and
            # the second sees the first's address below.
            model._default_manager.select_for_update().filter(pk=user.pk).values_list("pk", flat=True).first()
            claims = ContactChange.objects.select_for_update().filter(new_email__iexact=change.new_email)
            list(claims.order_by("pk").values_list("pk", flat=True))
            if not ContactChange.objects.filter(pk=change.pk, code_digest=expected).exists():
                # A parallel confirmation (or a new request) of this user's change came first.
                raise InvalidCredential(_("Start the e-mail change again."), code="no_change")
            if _address_taken(change.new_email, user_pk=user.pk):
                raise _address_unavailable(user, "confirmation")
            old = str(model._default_manager.filter(pk=user.pk).values_list(field, flat=True).first() or "")
            setattr(user, field, change.new_email)
            user.save(update_fields=[field])
            ContactChange.objects.filter(pk=change.pk).delete()
            note_contact_changed(user, old_email=old, at=now, by_passkey=via == "passkey")
            if old:
                tell_user(user, "email_changed", to_email=old, login_name_changed=login_name)
            tell_user(
                user,
                "email_changed_new",
                to_email=change.new_email,  # the old address has its own message above
                hours=app_settings.FACTOR_COOLING_OFF_HOURS,
                login_name_changed=login_name,
            )
            note_change(user, now)
    except IntegrityError:
        # SECURITY: a unique constraint on the address (an e-mail login) fired after all (a write that
        # bypassed these locks, the admin say): nothing was written; refuse like the check above.
        setattr(user, field, old)
        ContactChange.objects.filter(pk=change.pk).delete()
        raise _address_unavailable(user, "save") from None
    except InvalidCredential as error:
        if error.code == "email_unavailable":
            ContactChange.objects.filter(pk=change.pk).delete()  # the address cannot become this user's
        raise
    logger.info("authguard e-mail changed user=%s login_name_changed=%s", user.pk, login_name)
    return change.new_email


__all__ = [
    "begin_email_change",
    "confirm_email_change",
    "EMAIL_CODE_ATTEMPTS",
    "EMAIL_CODE_LENGTH",
    "EMAIL_CODE_SECONDS",
    "email_is_login_name",
    "normalize_email_address",
    "pending_email_change",
    "remember_first_factor",
    "require_contact_change_allowed",
    "require_password_change_allowed",
    "require_strong_removal",
    "SECOND_FACTOR_KEY",
    "session_device_by_id",
]
