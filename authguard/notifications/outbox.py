"""Security notifications to customers and staff, through an outbox that loses nothing and sends once.

:func:`notify` writes a :class:`~authguard.models.Notification` row *in the caller's transaction*, so the
message exists exactly when the event it reports was committed (a rolled-back factor change notifies
nobody). After commit, :func:`authguard.tasks.send_notification` is queued; if the broker is down the row
stays ``pending`` and the periodic :func:`authguard.tasks.retry_pending_notifications` sends it later.

Sending is claimed with a conditional ``UPDATE`` on the row's status, so two workers (or a worker and
the retry task) never both send it; the row's unique ``dedupe_key`` means the same event never creates
a second row.

Messages carry no links and no secrets (the JSDA's 2025 guidelines forbid links in security mail, and a
link is what a phishing mail imitates). Context values are defanged, and a rendered body that still
contains anything link-like is refused rather than sent. Messages are rendered in the recipient's
language: the language active when the event happened (the customer's request), or
``AUTHGUARD_NOTIFICATION_LANGUAGE`` (a dotted path to ``user -> language code | None``).
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from functools import partial
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMessage
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.dateparse import parse_datetime
from django.utils.functional import Promise
from django.utils.module_loading import import_string
from django.utils.translation import gettext_lazy as _

from authguard.conf import app_settings
from authguard.models import LoginEvent, Notification, NotificationStatus, Outcome

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Kind:
    """A kind of notification: its subject line (translatable) and whether customers may receive it."""

    subject: str | Promise
    staff_subject: str | Promise | None = None


#: Every kind of notification, with its subject line. Bodies are ``authguard/email/<kind>.txt``.
KINDS: dict[str, Kind] = {
    "new_device_login": Kind(_("New sign-in from a device we did not recognise")),
    "new_country_login": Kind(_("New sign-in from another country")),
    "step_up_failures": Kind(
        _("Repeated failed security checks on your account"),
        _("Repeated failed second-factor checks on a customer account"),
    ),
    "factor_added": Kind(_("A sign-in method was added to your account")),
    "factor_removed": Kind(_("A sign-in method was removed from your account")),
    "recovery_code_used": Kind(_("A recovery code was used on your account")),
    "email_changed": Kind(_("The email address of your account was changed")),
    "order_held": Kind(_("An order is waiting for your confirmation")),
    "account_locked": Kind(_("Your account has been locked"), _("A customer account was locked")),
    "account_unlocked": Kind(_("Your account has been unlocked"), _("A customer account was unlocked")),
    "campaign_flagged": Kind(_("Possible attack campaign"), _("Possible attack campaign flagged")),
    # Staff only: a customer's security message could not be delivered (the customer was not warned).
    "notification_failed": Kind(
        _("A security message could not be delivered"),
        _("A security message to a customer was not delivered"),
    ),
    # Staff acted on the account (four eyes: requested, carried out, rejected...); never names staff.
    "staff_action": Kind(
        _("Our security desk acted on your account"),
        _("A staff action on the security console"),
    ),
    # -- locks, sessions, password reset (owner: sessions) --
    "unlock_requested": Kind(
        _("Your account will be unlocked unless you cancel"),
        _("A customer asked to unlock their account with recovery codes"),
    ),
    "unlock_cancelled": Kind(_("The unlock of your account was cancelled")),
    "password_changed": Kind(_("The password of your account was changed")),
    # -- sensitive actions: withdrawals, bank accounts, transfers out, contacts (owner: actions) --
    "action_held": Kind(_("A request from your account is waiting for your confirmation")),
    "action_done": Kind(_("A request from your account was carried out")),
    # -- factor lifecycle: contacts and cooling-off (owner: factors) --
    "email_changed_new": Kind(_("This is now the e-mail address of your account")),
}

#: Context keys that must never reach a message (codes, passwords, tokens...).
_SECRET_KEY = re.compile(r"(?i)(code|secret|token|password|passwd|otp|key|nonce|challenge|session|cookie)")
#: Keys allowed despite matching :data:`_SECRET_KEY` (they name things, they are not secrets).
_PUBLIC_KEYS = frozenset({"country_code", "device_kind", "factor_key_name"})
#: Anything a mail client could turn into a link: schemes, ``www.``, e-mail addresses and domain names.
LINK_PATTERN = re.compile(
    r"(?ix)("
    r"[a-z][a-z0-9+.\-]*:(//|[^\s]*@)"  # http://, ftp://, mailto:x@...
    r"|www\."
    r"|[\w.+\-]+@[\w\-]+(\.[\w\-]+)+"  # e-mail addresses
    r"|(?<![a-z0-9\-])[a-z0-9](?:[a-z0-9\-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9\-]*[a-z0-9])?)*"
    r"\.(?:[a-z]{2,24}|xn--[a-z0-9\-]+)(?![a-z0-9\-])"  # bare domain names (example.com, evil.co.jp)
    r")"
)
_MAX_VALUE = 120


class LinkInMessage(ValueError):
    """A rendered message contained something link-like: it is refused, never sent."""


def contains_link(text: str) -> bool:
    """True when ``text`` holds a URL, an e-mail address, ``www.`` or a bare domain name."""
    return LINK_PATTERN.search(text) is not None


def defang(value: Any) -> Any:
    """Make a context value safe to show: short, with link-like parts removed.

    SECURITY: user agents, network names and device labels are written by whoever signs in; an attacker
    must not be able to put a link (or a convincing domain) into a mail that comes from the brokerage.
    """
    if isinstance(value, bool | int | float) or value is None:
        return value
    if isinstance(value, list | tuple):
        return [defang(v) for v in value][:20]
    text = " ".join(str(value).split())[:_MAX_VALUE]
    return LINK_PATTERN.sub("[…]", text)


def _clean_context(context: Mapping[str, Any] | None) -> dict[str, Any]:
    clean: dict[str, Any] = {}
    for key, value in (context or {}).items():
        if not isinstance(key, str) or not key.isidentifier():
            raise ValueError(f"notification context key {key!r} is not an identifier")
        if _SECRET_KEY.search(key) and key not in _PUBLIC_KEYS:
            # SECURITY: a mail is not a safe place for a secret; refuse loudly rather than leak.
            raise ValueError(f"notification context key {key!r} looks like a secret; mails carry none")
        if isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, Promise):
            value = str(value)
        clean[key] = defang(value)
    return clean


def _key(scope: str, kind: str, dedupe_key: str | None) -> str:
    raw = f"{kind}:{scope}:{dedupe_key if dedupe_key is not None else uuid.uuid4().hex}"
    if len(raw) <= 200:
        return raw
    return f"{kind}:{scope}:sha256:{hashlib.sha256(raw.encode()).hexdigest()}"


def user_language(user: Any) -> str:
    """The language to write to ``user`` in: the hook's answer, else the active (request) language."""
    hook = getattr(settings, "AUTHGUARD_NOTIFICATION_LANGUAGE", None)
    if hook:
        chosen = import_string(hook)(user)
        if chosen:
            return str(chosen)
    return translation.get_language() or settings.LANGUAGE_CODE


def _create(
    *, user: Any, to_email: str, kind: str, context: dict[str, Any], key: str, language: str, staff: bool
) -> Notification | None:
    if Notification.objects.filter(dedupe_key=key).exists():
        return None
    try:
        # A savepoint: a concurrent duplicate must not break the caller's transaction.
        with transaction.atomic():
            notification = Notification.objects.create(
                user=user,
                to_email=to_email,
                kind=kind,
                context=context,
                language=language[:10],
                staff=staff,
                dedupe_key=key,
                status=NotificationStatus.PENDING if to_email else NotificationStatus.SKIPPED,
            )
    except IntegrityError:
        return None  # the same event notified this recipient already
    if to_email:
        transaction.on_commit(partial(enqueue, notification.pk))
    return notification


def notify(
    user: Any, kind: str, *, context: dict[str, Any] | None = None, dedupe_key: str | None = None
) -> Notification | None:
    """Queue a message of ``kind`` to ``user``, in the caller's transaction. ``None``: already notified.

    ``dedupe_key`` names the event (e.g. ``f"event:{login_event.pk}"``): the same kind, user and key never
    make a second message. Without it every call is a new message. ``context`` fills the template; it
    must hold no secrets (keys that look like one are refused with ``ValueError``). A user without an
    email address gets a row marked ``skipped``, so the incident report still shows the attempt.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown notification kind {kind!r}; one of {sorted(KINDS)}")
    clean = _clean_context(context)
    email_field = get_user_model().get_email_field_name()
    to_email = str(getattr(user, email_field, "") or "")
    if "to_email" in (context or {}):  # e.g. an email change tells the *old* address
        to_email = str(context["to_email"] or "")  # type: ignore[index]
        clean.pop("to_email", None)
    return _create(
        user=user,
        to_email=to_email,
        kind=kind,
        context=clean,
        key=_key(f"u{user.pk}", kind, dedupe_key),
        language=user_language(user),
        staff=False,
    )


def notify_customer(
    user: Any, kind: str, *, context: dict[str, Any] | None = None, dedupe_key: str | None = None
) -> list[Notification]:
    """:func:`notify` ``user`` on every address security notices go to: the current one and, during a
    cooling-off started by an e-mail change, the previous one too
    (:func:`authguard.factors.lifecycle.notice_addresses`).

    SECURITY: a thief who changed the address cannot silence held-order and security notices: the old
    address keeps hearing of them until the cooling-off ends. Returns the messages queued.
    """
    from authguard.factors.lifecycle import notice_addresses

    sent = [notify(user, kind, context=context, dedupe_key=dedupe_key)]
    current = str(getattr(user, get_user_model().get_email_field_name(), "") or "").lower()
    for address in notice_addresses(user):
        if address.lower() != current:
            key = f"{dedupe_key}:{address.lower()}" if dedupe_key else None
            sent.append(notify(user, kind, context={**(context or {}), "to_email": address}, dedupe_key=key))
    return [n for n in sent if n is not None]


def staff_recipients() -> list[Any]:
    """Active staff users holding ``AUTHGUARD_NOTIFICATION_STAFF_PERMISSION`` (superusers included)."""
    model = get_user_model()
    perm = app_settings.NOTIFICATION_STAFF_PERMISSION
    staff = model._default_manager.filter(is_staff=True, is_active=True).order_by("pk")
    # has_perm asks every authentication backend (groups, superusers, custom backends); staff lists are short.
    return [u for u in staff if u.has_perm(perm) and getattr(u, u.get_email_field_name(), None)]


def notify_staff(
    kind: str, *, context: dict[str, Any] | None = None, dedupe_key: str | None = None
) -> list[Notification]:
    """Queue a message of ``kind`` to every staff recipient, or to ``settings.ADMINS`` if there is none.

    Staff messages are written in ``settings.LANGUAGE_CODE``. Returns the rows created (none for a key
    that was already used).
    """
    if kind not in KINDS:
        raise ValueError(f"unknown notification kind {kind!r}; one of {sorted(KINDS)}")
    clean = _clean_context(context)
    created: list[Notification] = []
    recipients: list[tuple[Any, str]] = [
        (user, getattr(user, user.get_email_field_name())) for user in staff_recipients()
    ]
    if not recipients:
        recipients = [(None, address) for _name, address in getattr(settings, "ADMINS", [])]
    if not recipients:
        logger.warning("authguard: no staff recipient for a %s notification", kind)
    for user, address in recipients:
        scope = f"staff:u{user.pk}" if user is not None else f"staff:{address.lower()}"
        row = _create(
            user=user,
            to_email=address,
            kind=kind,
            context=clean,
            key=_key(scope, kind, dedupe_key),
            language=settings.LANGUAGE_CODE,
            staff=True,
        )
        if row is not None:
            created.append(row)
    return created


# -- login notifications --------------------------------------------------------------------------------

#: Findings that say the login came from a browser the account never used.
NEW_DEVICE_CODES = frozenset({"new_device", "copied_user_agent"})
#: Outcomes after which the customer is signed in (only those are worth a "new sign-in" message).
SIGNED_IN_OUTCOMES = frozenset({Outcome.SIGNED_IN, Outcome.STEP_UP_PASSED, Outcome.PASSKEY_LOGIN})


def _login_context(event: LoginEvent) -> dict[str, Any]:
    return {
        "time": event.created_at,
        "city": event.city,
        "country": event.country,
        "network": event.as_org,
        "device": event.device_summary,
        "ip": event.ip or "",
    }


def notify_login(event: LoginEvent) -> list[Notification]:
    """Tell the customer about a sign-in from a new device or a new country. Idempotent per event.

    Call it when a login event reaches a signed-in outcome (``signed_in``, or ``step_up_passed``); calling
    it again for the same event (e.g. on both outcomes) sends nothing more. The first login of an account
    has nothing to compare with and notifies nothing.
    """
    if event.user_id is None or event.outcome not in SIGNED_IN_OUTCOMES:
        return []
    user = event.user
    sent: list[Notification] = []
    codes = {f.get("code") for f in event.findings or [] if isinstance(f, dict)}
    context = _login_context(event)
    if codes & NEW_DEVICE_CODES:
        row = notify(user, "new_device_login", context=context, dedupe_key=f"event:{event.pk}")
        if row is not None:
            sent.append(row)
    if event.country and _is_new_country(event, event.user_id):
        row = notify(user, "new_country_login", context=context, dedupe_key=f"event:{event.pk}")
        if row is not None:
            sent.append(row)
    return sent


def _is_new_country(event: LoginEvent, user_id: int) -> bool:
    earlier = (
        LoginEvent.objects.filter(
            user_id=user_id, outcome__in=SIGNED_IN_OUTCOMES, created_at__lt=event.created_at
        )
        .exclude(pk=event.pk)
        # A sign-in whose country was unknown says nothing about which countries are new (issue 16: a Tokyo
        # sign-in after ones from unplaceable addresses was announced as "from another country").
        .exclude(country="")
    )
    return earlier.exists() and not earlier.filter(country__iexact=event.country).exists()


def login_event_saved(sender: Any, instance: LoginEvent, **kwargs: Any) -> None:
    """A ``post_save`` receiver for :class:`LoginEvent`: connect it to notify on every signed-in login.

    ``post_save.connect(notifications.login_event_saved, sender=LoginEvent, dispatch_uid=...)``.
    """
    if instance.outcome in SIGNED_IN_OUTCOMES:
        notify_login(instance)


# -- rendering and sending (used by authguard.tasks) ------------------------------------------------------


def _format_time(value: Any) -> Any:
    """An ISO date-time of the context (``time``, ``expires``...) as ``2026-12-03 12:42 (JST)``.

    One format in every mail and language: the site's time zone (``TIME_ZONE``) with its abbreviation shown,
    a 24-hour clock and an ISO date, so no text around it doubles a full stop ("a.m..") and a customer
    abroad knows which clock is meant. Anything else is returned unchanged.
    """
    try:
        parsed = parse_datetime(value) if isinstance(value, str) and "T" in value else None
    except ValueError:
        parsed = None
    if parsed is None:
        return value
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed)
    local = timezone.localtime(parsed)
    zone = local.tzname() or str(timezone.get_current_timezone())
    return f"{local:%Y-%m-%d %H:%M} ({zone})"


#: Minor units shown per currency (ISO 4217); others show two.
_CURRENCY_DECIMALS = {"JPY": 0, "KRW": 0}


def _format_amount(amount: Any, currency: Any) -> str:
    """``345,000 JPY`` (``345,000円`` in Japanese), or ``""`` when the amount is missing or not a number."""
    try:
        number = Decimal(str(amount))
    except (InvalidOperation, ValueError):
        return ""
    if not number.is_finite():
        return ""
    code = str(currency or "").upper()
    places = _CURRENCY_DECIMALS.get(code, 2)
    text = f"{number:,.{places}f}"
    if not code:
        return text
    if code == "JPY" and (translation.get_language() or "").startswith("ja"):
        return f"{text}円"
    return f"{text} {code}"


def _default_factor_names() -> set[str]:
    """The names authguard gives factors itself (the recovery-code set), in every configured language."""
    names: set[str] = set()
    for code, _label in settings.LANGUAGES:
        with translation.override(code):
            names.add(str(_("Recovery codes")).casefold())
    return names


def ways_back(user: Any) -> dict[str, bool]:
    """Which self-service ways out of a lock ``user`` really has, for a lock mail without them in context.

    ``unlock_passkey``: a confirmed passkey that is not cooling off, and passkeys may unlock
    (``AUTHGUARD_UNLOCK_METHODS``). ``unlock_codes``: an authenticator plus recovery codes and the codes
    path is on (:func:`authguard.login.lockout.codes_unlock_available`). The security desk is always offered.
    SECURITY: fails closed towards offering only the desk: a way that cannot be checked is not promised.
    """
    from authguard.login.lockout import codes_unlock_available
    from authguard.sessions.stepup import factor_cooling_off, method_of, usable_factors

    if user is None or user.pk is None:
        return {"unlock_passkey": False, "unlock_codes": False}
    try:
        passkey = "passkey" in app_settings.UNLOCK_METHODS and any(
            method_of(device) == "passkey" and not factor_cooling_off(device)
            for device in usable_factors(user)
        )
        codes = codes_unlock_available(user)
    except Exception:
        logger.warning("authguard: could not list the ways out of a lock for user %s", user.pk, exc_info=True)
        return {"unlock_passkey": False, "unlock_codes": False}
    return {"unlock_passkey": bool(passkey), "unlock_codes": bool(codes)}


def _body_context(notification: Notification) -> dict[str, Any]:
    """The template context of ``notification``: times formatted once, derived labels, site and recipient.

    Runs inside the recipient's language. Values stored in the row are already defanged; derived ones are
    built from them or from trusted settings.
    """
    context: dict[str, Any] = {k: _format_time(v) for k, v in notification.context.items()}
    # A factor's name that only repeats its kind ("recovery codes (Recovery codes)") says nothing.
    name, factor = context.get("name"), context.get("factor")
    if isinstance(name, str) and (
        (isinstance(factor, str) and name.casefold() == factor.casefold())
        or name.casefold() in _default_factor_names()
    ):
        context["name"] = ""
    if notification.kind == "order_held":
        symbol, instrument = context.get("symbol") or "", context.get("instrument") or ""
        context["instrument_label"] = (
            f"{instrument} ({symbol})" if instrument and symbol else instrument or symbol
        )
        context["amount_text"] = (
            _format_amount(context.get("amount"), context.get("currency")) if context.get("amount") else ""
        )
    if notification.kind == "account_locked" and not notification.staff:
        ways = ways_back(notification.user)
        for key, value in ways.items():
            context.setdefault(key, value)
    context.update(
        staff=notification.staff,
        site_name=defang(app_settings.WEBAUTHN_RP_NAME),
        recipient=defang(notification.user.get_username()) if notification.user else "",
    )
    return context


def render(notification: Notification) -> tuple[str, str]:
    """The subject and plain-text body of ``notification``, in its recipient's language.

    Raises :class:`LinkInMessage` if anything link-like made it into the text: fail closed.
    """
    kind = KINDS[notification.kind]
    language = notification.language or settings.LANGUAGE_CODE
    with translation.override(language):
        subject_text = kind.staff_subject if notification.staff and kind.staff_subject else kind.subject
        context = _body_context(notification)
        subject = f"[{context['site_name']}] {subject_text}"
        body = render_to_string(f"authguard/email/{notification.kind}.txt", context).strip() + "\n"
    if contains_link(subject) or contains_link(body):
        raise LinkInMessage(f"notification {notification.pk} ({notification.kind}) contains a link")
    return subject, body


def build_message(notification: Notification) -> EmailMessage:
    """The e-mail for ``notification``, with a ``Message-ID`` derived from its dedupe key.

    A stable ``Message-ID`` lets mail servers drop a duplicate if a worker crashed between sending and
    recording the send (the one case the outbox cannot rule out).
    """
    subject, body = render(notification)
    digest = hashlib.sha256(notification.dedupe_key.encode()).hexdigest()[:32]
    domain = settings.DEFAULT_FROM_EMAIL.rpartition("@")[2] or "authguard.invalid"
    return EmailMessage(
        subject=subject,
        body=body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[notification.to_email],
        headers={"Message-ID": f"<{digest}@{domain}>", "Auto-Submitted": "auto-generated"},
    )


class PublishTimeout(Exception):
    """The broker did not take the message within ``AUTHGUARD_BROKER_PUBLISH_SECONDS``."""


def enqueue(pk: int) -> bool:
    """Hand an outbox row to Celery. False when the broker is unreachable, hung or its breaker is open: the
    row stays ``pending`` and :func:`authguard.tasks.retry_pending_notifications` sends it later.

    Runs on the request thread (after commit), so it never waits longer than
    ``AUTHGUARD_BROKER_PUBLISH_SECONDS``: the publish runs in a short-lived daemon thread that the request
    stops waiting for, whatever the transport's own timeouts are. After repeated failures the broker's
    circuit breaker skips publishing at once (:mod:`authguard.resilience`).
    """
    from authguard.resilience import CircuitOpen, broker_breaker
    from authguard.tasks import send_notification

    task = send_notification._get_current_object()  # bound to this thread's Celery app
    if task.app.conf.task_always_eager:
        # No broker (the demo without servers, the tests): the task runs here, as it always did.
        try:
            task.delay(pk)
        except Exception:
            logger.warning("authguard: could not send notification %s; it stays pending", pk, exc_info=True)
            return False
        return True
    try:
        conf = task.app.conf
        breaker = broker_breaker(conf.broker_write_url or conf.broker_url)
        breaker.call(_publish, task, pk, app_settings.BROKER_PUBLISH_SECONDS)
    except CircuitOpen:
        logger.warning("authguard: broker circuit open; notification %s stays pending", pk)
        return False
    except Exception as error:
        # Broker down or hung: the row stays pending; retry_pending_notifications picks it up.
        logger.warning(
            "authguard: could not queue notification %s (%s: %s); it stays pending",
            pk,
            type(error).__name__,
            error,
        )
        return False
    return True


def _publish(task: Any, pk: int, seconds: float) -> None:
    """``task.apply_async((pk,))`` in a daemon thread, waited for at most ``seconds``.

    A daemon thread (not a pool's) so a publish stuck on a hung broker never delays a worker's shutdown;
    it ends when the transport's socket timeout fires (``docs/faults.md``), or with the process. One
    attempt, no retry loop: the outbox's retry task is the retry.
    """
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            task.apply_async((pk,), retry=False)
        except BaseException as error:  # handed to the waiting thread, which logs it
            outcome.append(error)
        else:
            outcome.append(None)

    thread = threading.Thread(target=run, name=f"authguard-publish-{pk}", daemon=True)
    thread.start()
    thread.join(seconds)
    if not outcome:
        raise PublishTimeout(f"the broker did not take notification {pk} within {seconds} s")
    if outcome[0] is not None:
        raise outcome[0]
