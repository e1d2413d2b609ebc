"""One confirmation for a batch of held orders: the passkey challenge is bound to the exact set.

A customer whose liquidation was held order by order confirms the whole set once. The challenge is
``sha256(nonce || sha256(id_1:digest_1 || ... || id_n:digest_n))`` over the held orders sorted by id, with a
fresh nonce written on every order of the set: the signature names every order (dynamic linking, as for one
order), and a set with one order more, one less, or one changed does not verify. Each order is then executed
exactly as a single confirmation would (:func:`authguard.orders.guard._execute`: row locks, stored order
re-checked, executed once); the answer lists what was placed and what failed.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django.http import HttpRequest
from django.utils.translation import gettext as _

from authguard.exceptions import InvalidCredential
from authguard.factors import passkey_ceremony
from authguard.factors.base import note_account_failure
from authguard.factors.passkeys import authentication_options, verify_authentication
from authguard.models import HeldOrder
from authguard.orders.confirmation import ConfirmationError, ConfirmationInvalid, signed_challenge
from authguard.orders.held import (
    _execute,
    _require_older_than,
    expire_due,
    factor_cooling_off,
    pending_for,
    stored_order,
)

#: Largest batch one confirmation may cover.
MAX_BATCH = 50


@dataclass(frozen=True)
class BatchResult:
    """What a batch confirmation did: the orders executed and the ones that could not be."""

    confirmed: list[Any]
    failed: list[tuple[HeldOrder, str]]


def _ids(raw: object) -> list[str]:
    """The held orders' ids, each spelled one way (a UUID's canonical form; anything else as sent, to be
    refused as not found). SECURITY: one order named twice under two spellings (upper case, no hyphens,
    ``urn:uuid:``) passed the duplicate check, and her passkey signed a "batch of two" that was one order
    (red team, round fifty)."""
    if not isinstance(raw, list) or not raw or len(raw) > MAX_BATCH:
        raise ConfirmationInvalid(_("Choose the held orders to confirm."), code="malformed")
    if not all(isinstance(i, str) for i in raw):
        raise ConfirmationInvalid(_("Choose the held orders to confirm."), code="malformed")
    ids = [_canonical(i) for i in raw]
    if len(set(ids)) != len(ids):
        raise ConfirmationInvalid(_("Choose the held orders to confirm."), code="malformed")
    return sorted(ids)


def _canonical(item_id: str) -> str:
    try:
        return str(uuid.UUID(item_id))
    except ValueError:
        return item_id


def pending_batch(request: HttpRequest, ids: object) -> list[HeldOrder]:
    """The held orders ``ids`` of this customer in this session, all pending and confirmable with a passkey,
    sorted by id. Raises like :func:`authguard.orders.guard.pending_for` for any one of them."""

    helds = [pending_for(request, i) for i in _ids(ids)]
    for held in helds:
        if "passkey" not in held.methods:
            raise ConfirmationInvalid(_("This order cannot be confirmed with a passkey."), code="method")
        stored_order(held)
    return sorted(helds, key=lambda h: str(h.pk))


def session_pending(request: HttpRequest) -> list[HeldOrder]:
    """This customer's held orders that this session placed and that are still pending, oldest first
    (those past their deadline are expired first)."""

    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return []
    expire_due(user=user)
    found = []
    candidates = HeldOrder.objects.filter(user_id=user.pk, status=HeldOrder.Status.PENDING).order_by(
        "created_at"
    )
    for held in candidates[:MAX_BATCH]:
        try:
            found.append(pending_for(request, held.pk))
        except ConfirmationError:
            continue  # another session's: only that session may confirm it
    return found


def shown_set(helds: list[HeldOrder]) -> str:
    """The query string that names the set the batch page shows: its passkey button posts to the API with
    it, so one confirmation covers exactly the orders that page listed."""
    return urlencode({"ids": ",".join(sorted(str(h.pk) for h in helds))})


def ids_of_shown_set(request: HttpRequest) -> list[str] | None:
    """The set named by the batch page's query string (:func:`shown_set`), or None.

    SECURITY: never a set remembered in the session: a second tab, or a copied live session, loading the
    page after adding an order of its own would change what the first page's one passkey touch confirms
    (red team, 2026-12-05).
    """
    raw = request.GET.get("ids")
    return raw.split(",") if isinstance(raw, str) and raw else None


def batch_digest(helds: list[HeldOrder]) -> bytes:
    """SHA-256 over the sorted ``id:digest`` lines of the set."""
    lines = "\n".join(f"{h.pk}:{h.digest}" for h in sorted(helds, key=lambda h: str(h.pk)))
    return hashlib.sha256(lines.encode()).digest()


def batch_challenge(helds: list[HeldOrder]) -> bytes | None:
    """``sha256(nonce || batch digest)``; ``None`` unless every order of the set carries the same nonce."""
    nonces = {h.nonce for h in helds}
    if len(nonces) != 1:
        return None
    return hashlib.sha256(bytes.fromhex(nonces.pop()) + batch_digest(helds)).digest()


def _purpose(helds: list[HeldOrder]) -> str:
    return "confirm-batch:" + batch_digest(helds).hex()[:32]


def batch_options(request: HttpRequest, *, ids: object) -> dict[str, Any]:
    """WebAuthn request options whose challenge names exactly the held orders ``ids``."""

    helds = pending_batch(request, ids)
    nonce = secrets.token_hex(16)
    # A fresh nonce on every order of the set: any earlier challenge for any of them is void.
    HeldOrder.objects.filter(pk__in=[h.pk for h in helds], status=HeldOrder.Status.PENDING).update(
        nonce=nonce
    )
    for held in helds:
        held.nonce = nonce
    challenge = batch_challenge(helds)
    assert challenge is not None  # one nonce was just written on all of them
    try:
        return authentication_options(
            request, purpose=_purpose(helds), user=request.user, challenge=challenge
        )
    except InvalidCredential as exc:
        raise ConfirmationInvalid(exc.message, code=exc.code) from None


def confirm_batch_with_passkey(request: HttpRequest, *, ids: object, credential: object) -> BatchResult:
    """Confirm the held orders ``ids`` with one passkey assertion over the set, then execute each once."""

    helds = pending_batch(request, ids)
    expected = batch_challenge(helds)
    signed = signed_challenge(credential)
    # SECURITY: dynamic linking over the set: the signed challenge must name exactly these orders.
    if expected is None or signed is None or not secrets.compare_digest(signed, expected):
        raise ConfirmationInvalid(_("This passkey response is not for these orders."), code="challenge")
    if not isinstance(credential, dict | str):
        raise ConfirmationInvalid(code="malformed")
    try:
        device = verify_authentication(
            request, purpose=_purpose(helds), credential=credential, user=request.user
        )
    except InvalidCredential as exc:
        note_account_failure(request.user, kind="passkey", code=exc.code)
        raise ConfirmationInvalid(exc.message, code=exc.code) from None
    if factor_cooling_off(device):
        raise ConfirmationInvalid(
            _("This passkey was added too recently to confirm orders."), code="cooling_off"
        )
    for held in helds:
        _require_older_than(device, held)
    evidence = passkey_ceremony.assertion_evidence(credential)
    confirmed, failed = [], []
    for held in helds:
        try:
            confirmed.append(
                _execute(request.user, held.pk, method="passkey", device=device, assertion=evidence)
            )
        except ConfirmationError as exc:
            failed.append((held, str(exc.message)))
    return BatchResult(confirmed, failed)


__all__ = [
    "MAX_BATCH",
    "BatchResult",
    "batch_challenge",
    "batch_options",
    "confirm_batch_with_passkey",
    "ids_of_shown_set",
    "session_pending",
    "shown_set",
]
