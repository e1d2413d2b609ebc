"""What a notification says: its text, rendered in the recipient's language, with no links and no secrets.

Messages carry no links (the JSDA's 2025 guidelines forbid links in security mail, and a link is what a
phishing mail imitates): context values are defanged, and a rendered body that still contains anything
link-like is refused (:class:`LinkInMessage`) rather than sent.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.dateparse import parse_datetime
from django.utils.functional import Promise
from django.utils.module_loading import import_string
from django.utils.translation import gettext_lazy as _

from authguard.conf import app_settings
from authguard.factors.methods import codes_unlock_available, factor_cooling_off, method_of, usable_factors
from authguard.models import Notification
from authguard.notifications.lures import LINK_PATTERN as LINK_PATTERN
from authguard.notifications.lures import strip_lures
from authguard.validators import visible_text


@dataclass(frozen=True)
class Kind:
    """A kind of notification: its subject line (translatable) and whether customers may receive it."""

    subject: str | Promise
    staff_subject: str | Promise | None = None


#: Every kind of notification, with its subject line. Bodies are ``authguard/email/<kind>.txt``.
KINDS: dict[str, Kind] = {
    "new_device_login": Kind(_("New sign-in from a device we did not recognise")),
    "new_country_login": Kind(_("New sign-in from another country")),
    # Whatever the sign-in's outcome: the customer's computer leaks its browser data (an infostealer).
    "device_cookie_copied": Kind(_("A copy of your browser's sign-in data was used")),
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
    "sessions_ended": Kind(_("The other sessions of your account were signed out")),
    "rebind_granted": Kind(_("Our desk allowed a new sign-in method to be set up on your account")),
    "desk_code_wrong": Kind(_("A wrong code from our desk was entered on your account")),
    # -- sensitive actions: withdrawals, bank accounts, transfers out, contacts (owner: actions) --
    "action_held": Kind(_("A request from your account is waiting for your confirmation")),
    "action_done": Kind(_("A request from your account was carried out")),
    # -- factor lifecycle: contacts and cooling-off (owner: factors) --
    "email_changed_new": Kind(_("This is now the e-mail address of your account")),
}


logger = logging.getLogger(__name__)

#: Longest context value a message shows (defanged values are cut here).
MAX_VALUE = 120
#: The context values a message may show longer: a held action's summary names every account and amount
#: the customer's passkey confirms (a bank account change names two accounts), none of it may be cut off.
LONG_VALUES = {"summary": 480}


#: Context keys whose values are text someone else chose (a factor's name, a browser's summary of the
#: User-Agent he wrote, a network's or a city's name): phone numbers and domains of any script go too.
FREE_TEXT_KEYS = frozenset({"name", "device", "network", "city"})


#: Context keys whose values authguard itself writes as times (ISO date-times from ``clock.now()`` or a row's
#: deadline): only these are shown as times (:func:`_format_time`).
TIME_KEYS = frozenset({"time", "expires", "until", "cooling_off_until", "due"})
#: Context keys whose text a message written without its details (:func:`build_message` with ``fallback``)
#: still shows: authguard's own words (the factor's kind, the staff action and its stage, the order's side,
#: the kind that failed) and values it wrote in a shape it checked (the address, its GeoIP country, an amount
#: and its currency, the unlock's reference). Other text (names, browsers, networks, summaries) is withheld.
FALLBACK_KEYS = frozenset(
    {"factor", "action", "stage", "side", "failed_kind", "currency", "amount", "country", "ip", "reference"}
)
#: What a message written without its details shows for each value it withholds (as a stripped lure shows).
WITHHELD = "[…]"


class LinkInMessage(ValueError):
    """A rendered message contained something link-like: it is refused, never sent."""


def contains_link(text: str) -> bool:
    """True when ``text`` holds a URL, an e-mail address, ``www.`` or a bare domain name."""
    return LINK_PATTERN.search(text) is not None


def defang(value: Any, *, limit: int = MAX_VALUE) -> Any:
    """Make a context value safe to show: short (``limit`` characters), one line, without invisible
    characters, with link-like parts removed.

    SECURITY: user agents, network names and device labels are written by whoever signs in; an attacker
    must not be able to put a link (or a convincing domain) into a mail that comes from the brokerage.
    """
    if isinstance(value, bool | int | float) or value is None:
        return value
    if isinstance(value, list | tuple):
        return [defang(v, limit=limit) for v in value][:20]
    text = visible_text(value)[:limit]
    return LINK_PATTERN.sub("[…]", text)


def defang_name(value: Any, *, limit: int = MAX_VALUE) -> Any:
    """:func:`defang` for text someone else chose (:data:`FREE_TEXT_KEYS`), its phone numbers and domain
    names in any script or width removed too (:func:`authguard.notifications.lures.strip_lures`).

    SECURITY: a thief with her password and one relayed code named his passkey "Hanako iPhone - if not you,
    call our desk 0120-987-654", and her genuine "a sign-in method was added" mail carried his number to her
    (red team, round fifty-three); his User-Agent's "SECURITY DESK CALL 0120 987 654 Spider/2" did the same
    as the mail's browser, and kanji numerals or a full-width dot passed a pattern of ASCII (round 54)."""
    cleaned = defang(value, limit=limit)
    if isinstance(cleaned, list):
        return [strip_lures(item) if isinstance(item, str) else item for item in cleaned]
    return strip_lures(cleaned) if isinstance(cleaned, str) else cleaned


def user_language(user: Any) -> str:
    """The language to write to ``user`` in: the hook's answer, else the active (request) language."""
    hook = getattr(settings, "AUTHGUARD_NOTIFICATION_LANGUAGE", None)
    if hook:
        chosen = import_string(hook)(user)
        if chosen:
            return str(chosen)
    return translation.get_language() or settings.LANGUAGE_CODE


def _local_time(value: Any) -> str | None:
    """An ISO date-time as ``2026-12-03 12:42 (JST)``; None for anything else or a time the site's time zone
    cannot hold.

    SECURITY: year 1 at +14:00 is a valid ISO date-time whose conversion overflows (``OverflowError``, and
    ``OSError`` from some platforms' time zone code): a passkey named ``0001-1-1T0:0+14:00`` made every
    attempt at her "sign-in method added" notice fail, for the 14 days of his passkey's cooling-off (red
    team, round seventy-five). A time that cannot be shown is no time.
    """
    if not isinstance(value, str) or "T" not in value:
        return None
    try:
        parsed = parse_datetime(value)
        if parsed is None:
            return None
        if timezone.is_naive(parsed):
            parsed = timezone.make_aware(parsed)
        local = timezone.localtime(parsed)
    except (ValueError, OverflowError, OSError):
        return None
    zone = local.tzname() or str(timezone.get_current_timezone())
    return f"{local:%Y-%m-%d %H:%M} ({zone})"


def _format_time(key: str, value: Any) -> Any:
    """The context value ``value`` of ``key``, a time (:data:`TIME_KEYS`) shown as ``2026-12-03 12:42 (JST)``.

    One format in every mail and language: the site's time zone (``TIME_ZONE``) with its abbreviation shown,
    a 24-hour clock and an ISO date, so no text around it doubles a full stop ("a.m..") and a customer
    abroad knows which clock is meant. Anything else is returned unchanged.

    SECURITY: only the keys authguard writes times under: a passkey's name, a browser or a network someone
    else chose is text, never parsed (round seventy-five: a name that parsed as a date-time of year 1 broke
    the notice it was in, although the notice does not even show the name).
    """
    if key not in TIME_KEYS:
        return value
    shown = _local_time(value)
    return value if shown is None else shown


def _fallback_value(key: str, value: Any) -> Any:
    """``value`` as a message written without its details shows it: numbers, flags and :data:`FALLBACK_KEYS`
    as they are, a time only if it can be shown, anything else :data:`WITHHELD`."""
    if key in TIME_KEYS:
        return _local_time(value) or WITHHELD
    if value is None or isinstance(value, bool | int | float):
        return value
    if key in FALLBACK_KEYS and isinstance(value, str):
        return value
    return WITHHELD


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
    path is on (:func:`~authguard.factors.methods.codes_unlock_available`). The desk is always offered.
    SECURITY: fails closed towards offering only the desk: a way that cannot be checked is not promised.
    """

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


def _body_context(notification: Notification, *, fallback: bool = False) -> dict[str, Any]:
    """The template context of ``notification``: times formatted once, derived labels, site and recipient;
    with ``fallback``, every value someone else may have written withheld (:func:`_fallback_value`).

    Runs inside the recipient's language. Values stored in the row are already defanged; derived ones are
    built from them or from trusted settings.
    """
    shown = _fallback_value if fallback else _format_time
    context: dict[str, Any] = {k: shown(k, v) for k, v in notification.context.items()}
    # A factor's name that only repeats its kind ("recovery codes (Recovery codes)") says nothing.
    name, factor = context.get("name"), context.get("factor")
    if isinstance(name, str) and (
        (isinstance(factor, str) and name.casefold() == factor.casefold())
        or name.casefold() in _default_factor_names()
    ):
        context["name"] = ""
    if notification.kind == "order_held":
        symbol, instrument = context.get("symbol") or "", context.get("instrument") or ""
        label = f"{instrument} ({symbol})" if instrument and symbol else instrument or symbol
        context["instrument_label"] = WITHHELD if fallback else label
        context["amount_text"] = (
            _format_amount(context.get("amount"), context.get("currency")) if context.get("amount") else ""
        )
    if notification.kind == "account_locked" and not notification.staff:
        ways = ways_back(notification.user)
        for key, value in ways.items():
            context.setdefault(key, value)
    context.update(
        withheld=fallback,
        staff=notification.staff,
        site_name=defang(app_settings.WEBAUTHN_RP_NAME),
        recipient=defang(notification.user.get_username()) if notification.user else "",
    )
    return context


def render(notification: Notification, *, fallback: bool = False) -> tuple[str, str]:
    """The subject and plain-text body of ``notification``, in its recipient's language; with ``fallback``,
    without the values someone else may have written (:func:`_body_context`).

    Raises :class:`LinkInMessage` if anything link-like made it into the text: fail closed.
    """
    kind = KINDS[notification.kind]
    language = notification.language or settings.LANGUAGE_CODE
    with translation.override(language):
        subject_text = kind.staff_subject if notification.staff and kind.staff_subject else kind.subject
        context = _body_context(notification, fallback=fallback)
        subject = f"[{context['site_name']}] {subject_text}"
        body = render_to_string(f"authguard/email/{notification.kind}.txt", context).strip() + "\n"
    if contains_link(subject) or contains_link(body):
        raise LinkInMessage(f"notification {notification.pk} ({notification.kind}) contains a link")
    return subject, body


def build_message(notification: Notification, *, fallback: bool = False) -> EmailMessage:
    """The e-mail for ``notification``, with a ``Message-ID`` derived from its dedupe key.

    A stable ``Message-ID`` lets mail servers drop a duplicate if a worker crashed between sending and
    recording the send (the one case the outbox cannot rule out). ``fallback``: the notice's own text without
    the values someone else may have written, each shown as :data:`WITHHELD` (what the outbox sends when the
    full message cannot be written: :func:`authguard.notifications.delivery.deliver`).
    """
    subject, body = render(notification, fallback=fallback)
    digest = hashlib.sha256(notification.dedupe_key.encode()).hexdigest()[:32]
    domain = settings.DEFAULT_FROM_EMAIL.rpartition("@")[2] or "authguard.invalid"
    return EmailMessage(
        subject=subject,
        body=body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[notification.to_email],
        headers={"Message-ID": f"<{digest}@{domain}>", "Auto-Submitted": "auto-generated"},
    )
