"""Device Bound Session Credentials (W3C webappsec-dbsc): bind the device cookie to a key the device holds.

An infostealer copies the browser's cookies, authguard's device cookie among them; replayed with the
victim's user agent from a residential proxy, a copied device cookie looks like the victim's browser. With
DBSC the browser (Chrome 145+ on Windows, key in the TPM) creates a key pair per session and proves
possession of the private key whenever the short-lived *bound cookie* runs out. A device cookie whose device
registered a DBSC session but that arrives without a valid, fresh bound cookie was copied off the device:
:func:`device_binding_state` says ``"bound_missing_proof"`` and the risk engine treats the login as stolen.

The protocol, as the current draft (https://w3c.github.io/webappsec-dbsc/) specifies it:

1. **Registration offer.** After a successful, verified sign-in the response carries
   ``Secure-Session-Registration: (ES256 RS256);path="…/dbsc/register/";challenge="…"``
   (:func:`registration_header`). The challenge is single use, expires after ``CHALLENGE_SECONDS`` and is
   bound to the user, the device cookie and the Django session it was offered to.
2. **Registration.** The browser creates a key and POSTs ``Secure-Session-Response: <JWT>``, a JWS with
   header ``{"typ": "dbsc+jwt", "alg": "ES256"|"RS256", "jwk": <public key>}`` and payload
   ``{"jti": <challenge>}``, signed by the new key. :func:`verify_registration` checks all of it and stores
   a :class:`~authguard.models.DbscSession`; the answer is the JSON *session instructions*
   (:func:`session_instructions`: ``session_identifier``, ``refresh_url``, ``scope``, ``credentials``)
   plus the bound cookie (:func:`bound_cookie_value`).
3. **Refresh.** When the bound cookie is gone the browser POSTs ``Sec-Secure-Session-Id: "<id>"`` to the
   refresh URL. Without a proof it gets 403 and ``Secure-Session-Challenge: "<challenge>";id="<id>"``
   (:func:`issue_refresh_challenge`); it answers with ``Secure-Session-Response: <JWT>`` (same shape,
   without ``jwk``), signed by the registered key; :func:`verify_refresh` checks it and a new bound cookie
   is issued.

What authguard checks (fail closed, every failure a :class:`DbscError` with a stable ``code``):

* only ES256 (P-256) and RS256 (2048 bits or more); ``none``, HMAC and everything else are refused before
  any signature is looked at, and joserfc verifies with an explicit one-algorithm allow-list;
* ``typ`` is ``dbsc+jwt``; registration carries a public JWK (no private members), refresh carries none
  (the key is the registered one, never one the proof brings); a key is registered once;
* the challenge (``jti``) is one authguard issued, for this purpose and this session, not expired, and is
  consumed atomically together with the write it allows, so a proof is never accepted twice;
* registration requires a signed-in session that is not waiting for step-up, the same user, device cookie
  and Django session the challenge was offered to; refresh requires a device cookie, and moves the binding
  onto another one than the bound one only when the binding's own browser was given it
  (:mod:`~authguard.sessions.dbsc_moves`).

The binding is per device cookie, not per sign-in: it survives signing out, so a copied device cookie is
recognised at any later sign-in. A new registration of the same device (after a step-up proved the
customer) replaces the old binding. The doors that end the account's access (the desk's containment, a
password change or reset, "sign out everywhere", "forget this browser") end its bindings too.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.urls import NoReverseMatch, reverse
from django.utils.crypto import constant_time_compare, salted_hmac

from authguard import clock
from authguard.conf import app_settings
from authguard.models import DbscChallenge, DbscSession, KnownDevice, LoginEvent
from authguard.risk.context import device_hash, device_id_from_cookie
from authguard.sessions import dbsc_moves
from authguard.sessions import state as sessions_state

# Where a binding moves and ends lives in dbsc_moves; re-exported: part of this module's API.
from authguard.sessions.dbsc_moves import end_device_binding as end_device_binding

# The wire formats (errors, headers, proofs) are their own module; re-exported: part of this module's API.
from authguard.sessions.dbsc_proofs import ALGORITHMS as ALGORITHMS
from authguard.sessions.dbsc_proofs import MAX_PROOF_CHARS as MAX_PROOF_CHARS
from authguard.sessions.dbsc_proofs import MIN_RSA_BITS as MIN_RSA_BITS
from authguard.sessions.dbsc_proofs import PROOF_TYPE as PROOF_TYPE
from authguard.sessions.dbsc_proofs import ChallengeRejected as ChallengeRejected
from authguard.sessions.dbsc_proofs import DbscDisabled as DbscDisabled
from authguard.sessions.dbsc_proofs import DbscError as DbscError
from authguard.sessions.dbsc_proofs import InvalidProof as InvalidProof
from authguard.sessions.dbsc_proofs import MalformedDbscRequest as MalformedDbscRequest
from authguard.sessions.dbsc_proofs import RegistrationNotAllowed as RegistrationNotAllowed
from authguard.sessions.dbsc_proofs import UnknownSession as UnknownSession
from authguard.sessions.dbsc_proofs import VerifiedProof as VerifiedProof
from authguard.sessions.dbsc_proofs import parse_sf_string_item as parse_sf_string_item
from authguard.sessions.dbsc_proofs import sf_string as sf_string
from authguard.sessions.dbsc_proofs import verify_proof as verify_proof

# The read side lives in device_binding (the risk context needs it); re-exported: part of this module's API.
from authguard.sessions.device_binding import (
    _BOUND_COOKIE_SALT,
)
from authguard.sessions.device_binding import (
    BOUND_COOKIE_LEEWAY_SECONDS as BOUND_COOKIE_LEEWAY_SECONDS,
)
from authguard.sessions.device_binding import BindingState as BindingState
from authguard.sessions.device_binding import bound_cookie_age as bound_cookie_age
from authguard.sessions.device_binding import bound_cookie_name as bound_cookie_name
from authguard.sessions.device_binding import bound_session_id as bound_session_id
from authguard.sessions.device_binding import device_binding_state as device_binding_state
from authguard.sessions.device_binding import enabled as enabled

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

logger = logging.getLogger(__name__)

# -- protocol constants ------------------------------------------------------------------------------------

#: Response header that offers a registration (draft section 9.1).
REGISTRATION_HEADER = "Secure-Session-Registration"
#: Response header carrying a challenge for a session (section 9.2).
CHALLENGE_HEADER = "Secure-Session-Challenge"
#: Request header carrying the signed proof (section 9.3).
RESPONSE_HEADER = "Secure-Session-Response"
#: Request header naming the session to refresh (section 9.4).
SESSION_ID_HEADER = "Sec-Secure-Session-Id"
#: Longest session identifier read (authguard's are 43 characters).
MAX_SESSION_ID_CHARS = 128
#: URL names of the two endpoints (:mod:`authguard.sessions.dbsc_views`, mounted in the ``authguard``
#: namespace).
REGISTER_URL_NAME = "authguard:dbsc_register"
REFRESH_URL_NAME = "authguard:dbsc_refresh"
#: Django session key of the nonce that binds a registration challenge to the session it was offered to.
SESSION_NONCE_KEY = "_authguard_dbsc"
#: Kept for the portals that read it: refresh challenges are no longer stored until answered (round 34).
MAX_PENDING_REFRESH_CHALLENGES = 4

_SESSION_BINDING_SALT = "authguard.dbsc-django-session"
_REFRESH_SALT = "authguard.dbsc-refresh-challenge"


# -- errors ------------------------------------------------------------------------------------------------


# -- settings ----------------------------------------------------------------------------------------------


def _challenge_seconds() -> int:
    return int(app_settings.DBSC["CHALLENGE_SECONDS"])


def _session_lifetime() -> timedelta:
    return timedelta(days=int(app_settings.DBSC["SESSION_DAYS"]))


# -- structured fields (RFC 9651), the few shapes DBSC uses --------------------------------------------------


# -- request helpers ---------------------------------------------------------------------------------------


def request_device_hash(request: HttpRequest) -> str | None:
    """The keyed hash of the request's device cookie (as :mod:`authguard.risk.context` computes it), or
    None."""
    return device_hash(device_id_from_cookie(request.COOKIES.get(app_settings.DEVICE_COOKIE_NAME)))


def _digest(challenge: str) -> str:
    return hashlib.sha256(challenge.encode("utf-8")).hexdigest()


def _session_binding(nonce: str) -> str:
    return salted_hmac(_SESSION_BINDING_SALT, nonce, algorithm="sha256").hexdigest()


def _new_challenge() -> str:
    # 256 bits, unpadded base64url: valid inside an sf-string and a JWT claim.
    return secrets.token_urlsafe(32)


# -- JWT proofs ----------------------------------------------------------------------------------------------


# -- challenges ----------------------------------------------------------------------------------------------


def _find_challenge(challenge: str, *, kind: str, now: datetime) -> DbscChallenge:
    """The stored challenge ``challenge`` of ``kind`` if still usable, else :class:`ChallengeRejected`."""
    row = DbscChallenge.objects.filter(digest=_digest(challenge)).first()
    if row is None or row.kind != kind:
        raise ChallengeRejected("challenge")
    if row.used_at is not None:
        raise ChallengeRejected("replayed")
    if row.expires_at <= now:
        raise ChallengeRejected("expired")
    return row


def _consume(row: DbscChallenge, *, now: datetime) -> None:
    """Mark ``row`` used; raise if another request used it first. Call inside the transaction of the write.

    SECURITY: a conditional UPDATE, so two requests racing with one proof cannot both pass.
    """
    updated = DbscChallenge.objects.filter(pk=row.pk, used_at__isnull=True, expires_at__gt=now).update(
        used_at=now
    )
    if updated != 1:
        raise ChallengeRejected("replayed")


def _prune_challenges(now: datetime) -> None:
    """Forget challenges past their expiry (a proof for one fails either way: unknown or expired)."""
    DbscChallenge.objects.filter(expires_at__lt=now - timedelta(hours=1)).delete()


# -- registration ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RegistrationOffer:
    """A registration challenge issued by :func:`start_registration`, and the header that carries it."""

    challenge: str
    header_value: str
    expires_at: datetime


def start_registration(
    *,
    user: AbstractBaseUser,
    device_cookie_hash: str,
    session_nonce: str,
    registration_path: str,
    now: datetime | None = None,
) -> RegistrationOffer:
    """Store a registration challenge for ``user`` on the device ``device_cookie_hash`` in the Django session
    holding ``session_nonce``; return it with the ``Secure-Session-Registration`` header value."""
    now = now or clock.now()
    challenge = _new_challenge()
    expires_at = now + timedelta(seconds=_challenge_seconds())
    _prune_challenges(now)
    DbscChallenge.objects.create(
        digest=_digest(challenge),
        kind=DbscChallenge.Kind.REGISTRATION,
        user=user,  # type: ignore[misc]  # swappable AUTH_USER_MODEL: the plugin types the FK as the settings' concrete model
        device_hash=device_cookie_hash,
        session_binding=_session_binding(session_nonce),
        created_at=now,
        expires_at=expires_at,
    )
    header_value = (
        f"({' '.join(ALGORITHMS)});path={sf_string(registration_path)};challenge={sf_string(challenge)}"
    )
    return RegistrationOffer(challenge=challenge, header_value=header_value, expires_at=expires_at)


def registration_header(request: HttpRequest) -> str | None:
    """The ``Secure-Session-Registration`` value to add to the response of a successful sign-in, or None.

    None when DBSC is off, the session is not signed in or still waits for step-up, the request has no
    device cookie (nor one issued in this response and bound to the session), or the device is already
    bound and proved it with a fresh bound cookie. Call it after the sign-in (and after a step-up that
    made a pending session verified); a browser without DBSC ignores the header.
    """
    if not enabled():
        return None
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not hasattr(request, "session"):
        return None

    if sessions_state.is_pending(request):
        return None
    presented = dev = request_device_hash(request)
    # The device cookie the middleware issued in this very response (sessions.state.bind_issued_device_cookie
    # binds the session to it): the presented one's next generation, a new id, or a first cookie.
    issued = sessions_state.bound_context(sessions_state.raw_state(request) or {}).get("dev")
    issued = issued if isinstance(issued, str) else None
    if dev is None:
        # A first sign-in: the registration comes back with the cookie issued in this response.
        dev = issued
    if dev is None:
        return None
    binding = device_binding_state(request, device_cookie_hash=dev, user_id=user.pk)
    # SECURITY: a new id given to a browser that proved its binding here is where that binding may move at
    # its key's next refresh; no other cookie is (red team, round thirty-seven).
    dbsc_moves.note_issued(
        request, user_id=user.pk, presented=presented, issued=issued, bound_ok=binding == "bound_ok"
    )
    if binding == "bound_ok":
        return None
    try:
        path = reverse(REGISTER_URL_NAME)
    except NoReverseMatch:
        logger.error("authguard: AUTHGUARD_DBSC is on but %s is not mounted (check E161)", REGISTER_URL_NAME)
        return None
    nonce = secrets.token_urlsafe(24)
    # One offer per Django session: a new nonce makes the older offers of this session unusable.
    request.session[SESSION_NONCE_KEY] = nonce
    offer = start_registration(user=user, device_cookie_hash=dev, session_nonce=nonce, registration_path=path)
    return offer.header_value


def check_can_register(request: HttpRequest) -> None:
    """Raise :class:`RegistrationNotAllowed` unless the request's session is signed in and verified (not
    waiting for step-up): only a session the risk engine let in, or that proved itself, binds a device."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        raise RegistrationNotAllowed("login_required")

    if sessions_state.is_pending(request):
        raise RegistrationNotAllowed("step_up_required")


def verify_registration(
    *,
    proof: str,
    user: AbstractBaseUser,
    device_cookie_hash: str | None,
    session_nonce: str | None,
    passkey_verified: bool = False,
    now: datetime | None = None,
) -> DbscSession:
    """Verify a registration proof and store the new :class:`DbscSession` (replacing the device's old one).

    ``user``, ``device_cookie_hash`` and ``session_nonce`` are the registering request's: they must be the
    ones the challenge was offered to. A device the account used before the offering sign-in, or with an
    active binding, is bound only by a session the customer has just verified with an established passkey
    (``passkey_verified``: a browser whose DBSC session failed drops its key and keeps its cookies). Raises
    :class:`MalformedDbscRequest`, :class:`InvalidProof`, :class:`ChallengeRejected` or
    :class:`RegistrationNotAllowed`; nothing is written unless all passes.
    """
    if not enabled():
        raise DbscDisabled()
    now = now or clock.now()
    verified = verify_proof(proof=proof, registered_jwk=None, registered_algorithm=None)
    row = _find_challenge(verified.challenge, kind=DbscChallenge.Kind.REGISTRATION, now=now)
    if device_cookie_hash is None or not constant_time_compare(row.device_hash, device_cookie_hash):
        raise RegistrationNotAllowed("device")
    # SECURITY: the offer is bound to the Django session it was made in: a copied or parallel session
    # (or another account) cannot answer it.
    if (
        row.user_id != user.pk
        or session_nonce is None
        or not constant_time_compare(row.session_binding, _session_binding(session_nonce))
    ):
        raise ChallengeRejected("challenge")
    try:
        with transaction.atomic():
            _consume(row, now=now)
            _check_bindable(user, device_cookie_hash, passkey_verified, offered_at=row.created_at, now=now)
            # SECURITY: one binding per device and account: the new key replaces the account's old one,
            # whose bound cookies stop counting at once; another account's binding is not ours to end.
            DbscSession.objects.filter(
                device_hash=device_cookie_hash, user_id=user.pk, ended_at__isnull=True
            ).update(ended_at=now, end_reason="replaced")
            session = DbscSession.objects.create(
                session_id=secrets.token_urlsafe(32),
                user=user,  # type: ignore[misc]  # swappable AUTH_USER_MODEL: the plugin types the FK as the settings' concrete model
                device_hash=device_cookie_hash,
                # SECURITY: where it was registered, wherever its refreshes move it: "forget this browser"
                # ends it with that browser (red team, round forty-one).
                registered_device_hash=device_cookie_hash,
                algorithm=verified.algorithm,
                public_jwk=verified.jwk,
                key_thumbprint=verified.thumbprint,
                created_at=now,
                last_refreshed_at=now,
                expires_at=now + _session_lifetime(),
            )
    except IntegrityError:
        # The key's thumbprint is unique: each session must have its own key (draft section 1).
        raise MalformedDbscRequest("key_reused") from None
    logger.info(
        "authguard dbsc: device bound user=%s session=%s alg=%s", user.pk, session.pk, session.algorithm
    )
    return session


#: A browser this account saw longer ago than this before the offer was in use before the sign-in that
#: offered the binding (the offering sign-in learns a new browser moments before it offers).
IN_USE_BEFORE_SECONDS = 60


def _check_bindable(
    user: Any, device_hash: str, passkey_verified: bool, *, offered_at: datetime, now: datetime
) -> None:
    """Raise :class:`RegistrationNotAllowed` (``device``) unless the registering session was just verified
    with an established passkey, or the device cookie has no active binding for this account and was new
    to it at the sign-in that offered the binding.

    SECURITY: a device cookie with a live binding and no proof is, for all the server can tell, a copy.
    Replacing that binding from the customer's account after one relayed code would make the copy the bound
    browser and void her key (red team, 2026-12-05). Nor does a fresh bound cookie sent with the
    registration prove anything: it is a bearer cookie, copied with the jar and valid for its minutes; the
    thief who registered his key with it became her key-proven browser and hers the copy (round thirty-four).
    And a cookie the account already used unbound has two holders as soon as it is copied: binding it to
    whichever registers first made a thief with her password and a current copy the key-proven browser and
    hers "the copy", stepped up for a key she never had (round thirty-four). Only a passkey proves which
    holder is hers. Bindings are per account: another account's binding of the device (the thief's, made
    with her copied cookie) neither blocks hers nor is ended by it.
    """
    if passkey_verified:
        return
    active = DbscSession.objects.select_for_update().filter(
        device_hash=device_hash, user_id=user.pk, ended_at__isnull=True, expires_at__gt=now
    )
    before = offered_at - timedelta(seconds=IN_USE_BEFORE_SECONDS)
    # SECURITY: any earlier sign-in with the cookie counts, not only the browser row's first sighting: the
    # desk's containment forgets her browsers, and the copy learned again looked new (round thirty-five).
    in_use_before = (
        KnownDevice.objects.filter(
            user_id=user.pk, cookie_hash=device_hash, first_seen_at__lt=before
        ).exists()
        or LoginEvent.objects.filter(user_id=user.pk, device_hash=device_hash, created_at__lt=before).exists()
    )
    if in_use_before or active.exists():
        raise RegistrationNotAllowed("device")


# -- refresh -----------------------------------------------------------------------------------------------


def active_session(
    *, session_id: str, device_cookie_hash: str | None, now: datetime | None = None
) -> DbscSession:
    """The active DBSC session ``session_id``, asked for by a request with the device cookie
    ``device_cookie_hash``.

    Raises :class:`UnknownSession` (``unknown_session``: unknown, ended or expired; ``device``: the request
    carries no device cookie). A request with another device cookie than the bound one is answered (a
    challenge): only the registered key can sign the refresh, which moves the binding to that cookie only
    when the binding's own browser was given it (:func:`verify_refresh`).
    """
    now = now or clock.now()
    session = DbscSession.objects.filter(session_id=session_id).first()
    if session is None or session.ended_at is not None or session.expires_at <= now:
        raise UnknownSession("unknown_session")
    if device_cookie_hash is None:
        raise UnknownSession("device")
    return session


def _refresh_challenge(session_id: str, issued: int, nonce: str) -> str:
    """Twelve digits of issue time, 24 hex digits of nonce, the keyed MAC: base64url characters only."""
    mac = salted_hmac(_REFRESH_SALT, f"{session_id}|{issued}|{nonce}", algorithm="sha256").hexdigest()
    return f"{issued:012d}{nonce}{mac}"


def issue_refresh_challenge(*, session: DbscSession, now: datetime | None = None) -> str:
    """A new refresh challenge for ``session``: the ``Secure-Session-Challenge`` value.

    SECURITY: nothing is stored until a proof answers it (a keyed MAC of the session, the time and a nonce;
    its use is recorded, once, by :func:`verify_refresh`). The session id is readable in the bound cookie and
    the device cookie is copied with the jar: stored, bounded challenges let a copy's requests evict the
    one her browser was signing, and her refresh failed for as long as he asked (red team, round
    thirty-four). Now every challenge issued stays answerable until it expires, whoever asks for more.
    """
    now = now or clock.now()
    challenge = _refresh_challenge(session.session_id, int(now.timestamp()), secrets.token_hex(12))
    return f"{sf_string(challenge)};id={sf_string(session.session_id)}"


def _refresh_issued_at(challenge: str, *, session: DbscSession, now: datetime) -> datetime:
    """When ``challenge`` was issued for ``session``; :class:`ChallengeRejected` unless it is one issued
    here for this session (``challenge``) and not expired (``expired``)."""
    issued, nonce = challenge[:12], challenge[12:36]
    if not (issued.isascii() and issued.isdigit()) or len(nonce) != 24:
        raise ChallengeRejected("challenge")
    if not constant_time_compare(challenge, _refresh_challenge(session.session_id, int(issued), nonce)):
        raise ChallengeRejected("challenge")
    at = datetime.fromtimestamp(int(issued), tz=now.tzinfo)
    if at + timedelta(seconds=_challenge_seconds()) <= now:
        raise ChallengeRejected("expired")
    return at


def verify_refresh(
    *,
    session: DbscSession,
    proof: str,
    device_cookie_hash: str | None = None,
    device_cookie_generation: int | None = None,
    issued_to: str | None = None,
    now: datetime | None = None,
) -> DbscSession:
    """Verify a refresh proof for ``session`` (from :func:`active_session`) and record it.

    The proof must be signed by the registered key under the registered algorithm and answer an unexpired
    refresh challenge issued for this very session, never answered before. ``device_cookie_hash`` (and its
    ``device_cookie_generation``): the refreshing request's device cookie; when it is another than the bound
    one, the binding moves to it if its own browser was given it (``issued_to``, the move the refreshing
    session recorded, :func:`~.dbsc_moves.issued_to_binding`; or a cookie new to the account since the
    registration: :func:`~.dbsc_moves.may_move`), so her browser given a new device id after a copy of its
    old one was used keeps its binding (round thirty-four); otherwise it stays where it is. Raises
    :class:`MalformedDbscRequest`, :class:`InvalidProof` or :class:`ChallengeRejected`; nothing is written
    unless all passes.
    """
    if not enabled():
        raise DbscDisabled()
    now = now or clock.now()
    verified = verify_proof(
        proof=proof, registered_jwk=session.public_jwk, registered_algorithm=session.algorithm
    )
    issued_at = _refresh_issued_at(verified.challenge, session=session, now=now)
    elsewhere = device_cookie_hash is not None and not constant_time_compare(
        session.device_hash, device_cookie_hash
    )
    moved = False
    _prune_challenges(now)
    with transaction.atomic():
        try:
            with transaction.atomic():  # SECURITY: the unique digest: a proof is accepted once
                DbscChallenge.objects.create(
                    digest=_digest(verified.challenge),
                    kind=DbscChallenge.Kind.REFRESH,
                    session=session,
                    created_at=issued_at,
                    expires_at=issued_at + timedelta(seconds=_challenge_seconds()),
                    used_at=now,
                )
        except IntegrityError:
            raise ChallengeRejected("replayed") from None
        changes: dict[str, Any] = {"last_refreshed_at": now, "expires_at": now + _session_lifetime()}
        if elsewhere and device_cookie_hash is not None:
            # SECURITY: a key proves its own browser, not the cookie its refresh carries: the binding moves
            # only onto a cookie that browser was given. A refused move still refreshes the binding where it
            # is (not fail closed): a 4xx makes the browser drop its key, and her own browser signed out
            # before its refresh would lose DBSC for good (re-binding a used cookie needs a passkey), while a
            # binding left on its own device harms no other browser (red team, round thirty-seven).
            moved = dbsc_moves.may_move(
                session,
                device_cookie_hash=device_cookie_hash,
                generation=device_cookie_generation,
                issued_to=issued_to,
                now=now,
            )
        if moved:
            changes["device_hash"] = device_cookie_hash
        updated = DbscSession.objects.filter(pk=session.pk, ended_at__isnull=True).update(**changes)
        if updated != 1:
            # Ended (a new registration, a door that ends access) while the proof was checked: undo, refuse.
            raise UnknownSession("unknown_session")
    if moved and device_cookie_hash is not None:
        logger.info("authguard dbsc: binding moved to the refreshing device's cookie session=%s", session.pk)
        session.device_hash = device_cookie_hash
    elif elsewhere:
        logger.warning(
            "authguard dbsc: refresh from a device cookie its browser was not given; not moved session=%s",
            session.pk,
        )
    session.last_refreshed_at = now
    session.expires_at = now + _session_lifetime()
    return session


# -- session instructions and the bound cookie -------------------------------------------------------------


def _cookie_attributes(*, secure: bool) -> str:
    attributes = "Path=/; HttpOnly; SameSite=Lax"
    return attributes + "; Secure" if secure else attributes


def session_instructions(*, session: DbscSession, secure: bool) -> dict[str, Any]:
    """The JSON session instructions (draft section 9.6) for ``session``, answered on registration and
    refresh: the identifier, the refresh URL, the scope (this origin, minus static and media files) and the
    bound cookie with the attributes it is set with."""
    exclusions = []
    for prefix in (getattr(settings, "STATIC_URL", None), getattr(settings, "MEDIA_URL", None)):
        if isinstance(prefix, str) and prefix.startswith("/") and prefix != "/":
            exclusions.append({"type": "exclude", "path": prefix})
    return {
        "session_identifier": session.session_id,
        "refresh_url": reverse(REFRESH_URL_NAME),
        "scope": {"include_site": False, "scope_specification": exclusions},
        "credentials": [
            {"type": "cookie", "name": bound_cookie_name(), "attributes": _cookie_attributes(secure=secure)}
        ],
    }


def bound_cookie_value(*, session: DbscSession) -> str:
    """A new bound cookie for ``session``: its identifier, signed and timestamped (checked statelessly for
    age, then against the session row)."""
    return clock.TimestampSigner(salt=_BOUND_COOKIE_SALT).sign(session.session_id)


def set_bound_cookie(response: HttpResponse, *, session: DbscSession, secure: bool) -> None:
    """Set the short-lived bound cookie on ``response`` with the attributes the instructions announce."""
    response.set_cookie(
        bound_cookie_name(),
        bound_cookie_value(session=session),
        max_age=bound_cookie_age(),
        path="/",
        secure=secure,
        httponly=True,
        samesite="Lax",
    )
