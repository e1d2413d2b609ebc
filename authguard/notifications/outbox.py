"""Security notifications to customers and staff, through an outbox that loses nothing and sends once.

:func:`notify` writes a :class:`~authguard.models.Notification` row *in the caller's transaction*, so the
message exists exactly when the event it reports was committed (a rolled-back factor change notifies
nobody). After commit, :func:`~authguard.notifications.delivery.send_notification` is queued; if the
broker is down the row stays ``pending`` and the periodic
:func:`~authguard.notifications.delivery.retry_pending_notifications` sends it later.

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
import uuid
from collections.abc import Mapping
from datetime import datetime
from functools import partial
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.dispatch import receiver
from django.http import HttpRequest
from django.utils.functional import Promise

from authguard.conf import app_settings
from authguard.factors.inventory import notice_addresses
from authguard.models import LoginEvent, Notification, NotificationStatus, Outcome
from authguard.notifications.delivery import delivery_failed, enqueue
from authguard.notifications.messages import (
    FREE_TEXT_KEYS,
    KINDS,
    LONG_VALUES,
    MAX_VALUE,
    defang,
    defang_name,
    user_language,
)
from authguard.risk.addresses import client_ip
from authguard.risk.geoip import geolocate
from authguard.risk.useragent import client_info

logger = logging.getLogger(__name__)


#: Context keys that must never reach a message (codes, passwords, tokens...).
_SECRET_KEY = re.compile(r"(?i)(code|secret|token|password|passwd|otp|key|nonce|challenge|session|cookie)")
#: Keys allowed despite matching :data:`_SECRET_KEY` (they name things, they are not secrets).
_PUBLIC_KEYS = frozenset({"country_code", "device_kind", "factor_key_name"})


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
        clean_value = defang_name if key in FREE_TEXT_KEYS else defang
        clean[key] = clean_value(value, limit=LONG_VALUES.get(key, MAX_VALUE))
    return clean


def _key(scope: str, kind: str, dedupe_key: str | None) -> str:
    raw = f"{kind}:{scope}:{dedupe_key if dedupe_key is not None else uuid.uuid4().hex}"
    if len(raw) <= 200:
        return raw
    return f"{kind}:{scope}:sha256:{hashlib.sha256(raw.encode()).hexdigest()}"


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
    (:func:`authguard.factors.inventory.notice_addresses`).

    SECURITY: a thief who changed the address cannot silence held-order and security notices: the old
    address keeps hearing of them until the cooling-off ends. Returns the messages queued.
    """

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


#: Findings that prove the device cookie presented was copied off the customer's device. Not
#: ``device_binding_missing``: a browser that lost its DBSC session raises it too (docs/dbsc.md).
#: ``device_cookie_superseded``: two sign-ins older than the cookie its browser holds (one older may be a
#: browser that lost its newest cookie in a crash: ``device_cookie_behind`` tells no one).
COPIED_COOKIE_CODES = frozenset({"device_in_two_places", "device_cookie_superseded"})


def request_context(request: HttpRequest | None) -> dict[str, Any]:
    """Where and on what a change was made, in the shape of a sign-in notice's (``_login.txt``): the
    request's place, network, browser and address; empty without a request or when unreadable."""
    if request is None:
        return {}
    try:
        ip = client_ip(request)
        geo = geolocate(ip)
        device = client_info(request.META.get("HTTP_USER_AGENT")).summary
    except Exception:  # the notice still goes, without the details
        logger.exception("authguard: no place for a notice")
        return {}
    where = {"city": geo.city or "", "country": geo.country or "", "network": geo.as_org or ""}
    return {**where, "device": device, "ip": ip or ""}


def _login_context(event: LoginEvent) -> dict[str, Any]:
    return {
        "time": event.created_at,
        "city": event.city,
        "country": event.country,
        "network": event.as_org,
        "device": event.device_summary,
        "ip": event.ip or "",
    }


def notify_login(event: LoginEvent, *, country_known: bool = False) -> list[Notification]:
    """Tell the customer about a sign-in from a new device or a new country. Idempotent per event.

    Call it when a login event reaches a signed-in outcome (``signed_in``, or ``step_up_passed``); calling
    it again for the same event (e.g. on both outcomes) sends nothing more. The first login of an account
    has nothing to compare with and notifies nothing. ``country_known``: the caller knows the account signed
    in from this country before (it is in the risk profile as it was before this login), so it is no new
    country and the two queries that would ask the login events are not sent (issue 15).
    """
    if event.user_id is None or event.outcome not in SIGNED_IN_OUTCOMES:
        return []
    user = event.user
    sent: list[Notification] = []
    codes = {f.get("code") for f in event.findings or [] if isinstance(f, dict)}
    context = _login_context(event)
    # SECURITY: on every address security notices go to: after a thief changed the address, her previous
    # one still hears of his sign-ins during the cooling-off (red team, round thirty-seven).
    if codes & NEW_DEVICE_CODES:
        sent += notify_customer(user, "new_device_login", context=context, dedupe_key=f"event:{event.pk}")
    if event.country and not country_known and _is_new_country(event, event.user_id):
        sent += notify_customer(user, "new_country_login", context=context, dedupe_key=f"event:{event.pk}")
    return sent


def notify_copied_cookie(event: LoginEvent) -> list[Notification]:
    """Tell the customer that a copy of one of their browsers' device cookies was presented, whatever the
    sign-in's outcome: stepped up or refused, the copy says that malware on their computer reads its
    browser data, and only the customer can clean it. At most once per account and clock hour, on every
    address security notices go to (:func:`notify_customer`); nothing under report-only (a rollout shows
    customers nothing); a sign-in without such a finding costs nothing (no query). Queued in a savepoint:
    a failure never undoes the login event."""
    codes = {f.get("code") for f in event.findings or [] if isinstance(f, dict)}
    if event.user_id is None or not codes & COPIED_COOKIE_CODES or "report_only" in codes:
        return []
    try:
        with transaction.atomic():
            return notify_customer(
                event.user,
                "device_cookie_copied",
                context=_login_context(event),
                dedupe_key=f"copied:{event.created_at:%Y-%m-%dT%H}",
            )
    except Exception:
        logger.exception("authguard: could not queue the copied-cookie notification")
        return []


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


def _may_notify(event: Any, *, country_known: bool) -> bool:
    """Whether :func:`notify_login` could queue anything for ``event``, decided without a query."""
    if event.user_id is None or event.outcome not in SIGNED_IN_OUTCOMES:
        return False
    codes = {f.get("code") for f in event.findings or [] if isinstance(f, dict)}
    return bool(codes & NEW_DEVICE_CODES) or (bool(event.country) and not country_known)


def notify_signed_in(event: Any, *, country_known: bool = False) -> None:
    """Tell the customer about a sign-in from a new device or country, now that it is signed in.

    The outbox row joins the caller's transaction through a savepoint, so a failure to queue the message
    never undoes the login event it is about. A login from a known browser and a known country
    (``country_known``, see :func:`notify_login`) has nothing to queue: no savepoint, no query (issue 15).
    """
    if not _may_notify(event, country_known=country_known):
        return
    try:
        with transaction.atomic():
            notify_login(event, country_known=country_known)  # idempotent per event
    except Exception:
        logger.exception("authguard: could not queue the sign-in notification")


@receiver(delivery_failed, dispatch_uid="authguard.alert_staff_on_failed_delivery")
def _alert_staff(sender: Any, *, pk: int, **kwargs: Any) -> None:
    """Tell staff that a customer was not warned (never for staff messages: no alert loops)."""
    row = Notification.objects.select_related("user").get(pk=pk)
    if row.staff:
        return
    context: dict[str, Any] = {"failed_kind": row.kind, "time": row.created_at, "attempts": row.attempts}
    if row.user is not None:
        context.update(account=row.user.get_username(), account_id=row.user.pk)
    notify_staff("notification_failed", context=context, dedupe_key=f"failed:{pk}")
