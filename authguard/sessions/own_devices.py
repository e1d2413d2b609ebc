"""What a customer does to her own browsers and sessions from the security page: forget a remembered
browser, sign out every other session. One flow each, called by the HTML page (and any portal front end).

Both need a fresh verification with a factor she had before any cooling-off (the page checks it first);
forgetting *another* browser than this one needs more (:func:`forget_device`), and both tell her.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db import transaction
from django.http import HttpRequest
from django.utils import translation
from django.utils.translation import gettext_lazy as _

from authguard import clock
from authguard.factors import contact, lifecycle
from authguard.factors.methods import PHISHING_RESISTANT_METHODS
from authguard.factors.throttles import ESTABLISHED_DEVICE_DAYS
from authguard.models import KnownDevice
from authguard.notifications.messages import user_language
from authguard.notifications.outbox import notify_customer
from authguard.sessions import dbsc_moves, device_binding, device_generations
from authguard.sessions import state as sessions_state


def forget_device(request: HttpRequest, *, pk: int) -> bool:
    """Forget the session user's remembered browser ``pk``: its next sign-in is a new browser's, and the
    account's DBSC bindings on it or registered on it end (``device_forgotten``). Whether one was
    forgotten. Raises :class:`~authguard.exceptions.StepUpRequired` for another browser than this one (or
    this one's device cookie without its DBSC binding's proof: a copy) without what a factor's removal needs
    (:func:`~authguard.factors.contact.require_strong_removal`).

    SECURITY: a browser of months is her standing (her one-step code renewal, the desk's re-binding grant,
    her own throttle scope, a passkey's short cooling-off): one relayed code forgot her PC, and her passkey
    added there the next day cooled off for two weeks (red team, round thirty-three). She is told."""
    user: Any = request.user
    device = KnownDevice.objects.filter(pk=pk, user=user, revoked_at__isnull=True).first()
    if device is None:
        return False
    if not _is_this_browser(request, device=device, user=user):
        contact.require_strong_removal(request, user=user)
    with transaction.atomic():
        forgotten = KnownDevice.objects.filter(pk=device.pk, revoked_at__isnull=True).update(
            revoked_at=clock.now(), trusted_until=None
        )
        if forgotten:
            # SECURITY: a key registered on the forgotten browser is forgotten with it, in this transaction:
            # his key's refresh had gone on answering after she forgot his browser (red team, round
            # thirty-seven). Wherever its refreshes moved it since, too (dbsc_moves.of_device): moved onto
            # a fresh cookie first, his key had outlived it (round forty-one).
            dbsc_moves.end_bindings(
                user_id=user.pk, reason=dbsc_moves.DEVICE_FORGOTTEN, device_cookie_hash=device.cookie_hash
            )
            with translation.override(user_language(user) or None):
                label = str(_("remembered device"))
            # SECURITY: on every address security notices go to (red team, round thirty-seven (d)).
            notify_customer(
                user,
                "factor_removed",
                context={"factor": label, "name": device.label, "time": clock.now(), "by_staff": False},
                dedupe_key=f"forget-device:{device.pk}",
            )
    return bool(forgotten)


def _is_this_browser(request: HttpRequest, *, device: KnownDevice, user: Any) -> bool:
    """Whether ``device`` is the browser making this request, as far as forgetting it goes: its cookie, and
    for a browser with standing (known for ``ESTABLISHED_DEVICE_DAYS``) its DBSC binding's proof or, unbound,
    a session its sign-in left low-risk. A browser without standing (the shared computer she signed in on
    today) is forgotten from itself as before, unless it is bound and this request has no proof of it. A
    bound browser's proof is a bound cookie its key refreshed since the session's latest verification.

    SECURITY: a copy of her browser's device cookie is not "this browser": his relayed code forgot her
    browser of months and ended its binding, which a code-verified sign-out keeps (round forty-six); without
    DBSC, a copy stepped up as her settled browser moved did the same (round forty-seven)."""
    if device.cookie_hash != device_generations.presented(request)[0]:
        return False
    binding = device_binding.device_binding_state(
        request, device_cookie_hash=device.cookie_hash, user_id=user.pk
    )
    if binding == "bound_missing_proof":
        # SECURITY: a bound browser's cookie without its proof is a copy, however young the browser: his
        # relayed code forgot her browser bound five days before, and her binding ended with it (red team,
        # round fifty-six).
        return False
    verified = sessions_state.session_state(request)
    since = (verified.strong_at or verified.login_at) if verified is not None else None
    if binding == "bound_ok" and not device_binding.key_proved_since(request, since):
        # SECURITY: a bound cookie copied with the jar is a bearer cookie for its minutes: only one her key
        # refreshed since this session's step-up proves the browser. His fresh copy of her jar and one relayed
        # code forgot her browser of months (red team, round fifty-seven). Her own browser's next refresh
        # (within the bound cookie's ten minutes) proves it.
        return False
    established = clock.now() - timedelta(days=ESTABLISHED_DEVICE_DAYS)
    if device.learned_at is None or device.learned_at > established:
        return True
    return binding == "bound_ok" or (binding == "unbound" and lifecycle.session_low_risk(request))


def end_other_sessions(request: HttpRequest) -> int:
    """Sign out every other session of the session user, her API tokens and the DBSC bindings of her other
    browsers (``signed_out_everywhere``); she is told. How many sessions and tokens ended.

    SECURITY: a thief's session doing this signed her out with no word to her (red team, round
    thirty-three). "Everywhere" includes the API (his token would outlive it) and his key's binding (round
    thirty-seven). Verified with a factor a page can relay, it ends the bindings registered within the
    month, this browser's too, and keeps the older ones, as a password reset does: his, from one relayed
    code, had stayed and hers of months had ended. Verified with a passkey, all but this browser's end."""
    user: Any = request.user
    kept: tuple[Any, ...]
    if sessions_state.has_fresh_verification(request, methods=PHISHING_RESISTANT_METHODS):
        state = sessions_state.raw_state(request) or {}
        this_browser = device_generations.presented(request)[0]
        kept, since = (this_browser, device_binding.presented_session_id(request), state.get("db")), None
    else:
        kept, since = (), clock.now() - timedelta(days=ESTABLISHED_DEVICE_DAYS)
    with transaction.atomic():
        ended = sessions_state.end_all_sessions(
            user=user,
            keep=request.session.session_key,
            kept_browser=kept,
            binding_reason=dbsc_moves.SIGNED_OUT_EVERYWHERE,
            bound_since=since,
        )
        sessions_state.note_kept_through_ending(request)
        ended += sessions_state.revoke_api_tokens(user)
        if ended:
            notify_customer(user, "sessions_ended", context={"count": ended, "time": clock.now()})
    return ended


__all__ = ["end_other_sessions", "forget_device"]
