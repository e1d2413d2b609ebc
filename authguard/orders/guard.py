"""The order guard: hold liquidations and illiquid pivots until the customer confirms, bound to the order.

A portal describes an order as an :class:`OrderIntent` and submits it through :func:`submit_order`, giving a
``place`` callable (and, for holds, a ``hold`` callable)::

    outcome = orders.submit_order(
        request, user=request.user, intent=intent,
        place=lambda approval: services.execute_order(user, draft, approval=approval),
        hold=lambda decision: services.hold_order(user, draft).pk)
    if isinstance(outcome, orders.Held):
        return JsonResponse({"status": "held", "confirmation": outcome.as_json()}, status=202)

The portal's data reaches the guard through three hooks named by dotted paths in settings:
``AUTHGUARD_ORDER_PORTFOLIO`` (``user -> PortfolioSnapshot``), ``AUTHGUARD_ORDER_INSTRUMENT``
(``symbol -> InstrumentInfo | None``) and ``AUTHGUARD_ORDER_EXECUTOR`` (an object with
``execute(held) -> str`` that executes a held order's *stored* canonical order, and
``release(held, *, status)`` that closes the portal's copy of an order that will never execute).

What the guard allowed is an amount: ``place`` is given the :class:`~authguard.orders.approval.Approval` (the
checked quantity at the checked price) and executes the order as a limit order at that price (a buy at it or
lower, a sell at it or higher, within a small tolerance), never a market order at whatever the price is by
then (:mod:`authguard.orders.approval`).

Held orders use dynamic linking: the exact canonical order JSON and its SHA-256 ``digest`` are stored with a
random ``nonce``, and the passkey challenge is ``sha256(nonce || digest)``, so an assertion confirms this
order and no other. A confirmation is single-use, expires (``AUTHGUARD_CONFIRMATION_SECONDS``), is bound to
the session that placed the order, and executes the stored order exactly once, under row locks.

Concurrency: :func:`submit_order` locks the customer's user row (``SELECT ... FOR UPDATE``; on SQLite the
``IMMEDIATE`` transaction mode serialises writers) before it reads the rolling window, so parallel orders
queue up and cannot all slip under the limit.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Generic, TypeVar

from django.db import transaction
from django.http import HttpRequest
from django.utils.translation import gettext_lazy

from authguard import clock
from authguard.conf import app_settings
from authguard.durable import record_refusal
from authguard.exceptions import AuthguardError
from authguard.models import GuardedOrder, GuardStatus, HeldOrder
from authguard.notifications.outbox import notify_customer
from authguard.orders.approval import Approval as Approval
from authguard.orders.approval import approval_for, call_place
from authguard.orders.approval import stored_approval as stored_approval
from authguard.orders.campaign import flag_campaign
from authguard.orders.confirmation import ConfirmationError as ConfirmationError
from authguard.orders.confirmation import ConfirmationGone as ConfirmationGone
from authguard.orders.confirmation import ConfirmationInvalid as ConfirmationInvalid
from authguard.orders.confirmation import ConfirmationNotFound as ConfirmationNotFound
from authguard.orders.confirmation import ConfirmationThrottled as ConfirmationThrottled
from authguard.orders.confirmation import canonical_json as canonical_json
from authguard.orders.confirmation import challenge_for as challenge_for
from authguard.orders.confirmation import lock_customer as lock_customer
from authguard.orders.facts import gather_facts as gather_facts
from authguard.orders.held import BINDING_SESSION_KEY as BINDING_SESSION_KEY
from authguard.orders.held import CANONICAL_VERSION, _session_binding, confirmation_methods, order_digest
from authguard.orders.held import Confirmed as Confirmed
from authguard.orders.held import _close as _close
from authguard.orders.held import _execute as _execute
from authguard.orders.held import _require_older_than as _require_older_than
from authguard.orders.held import cancel as cancel
from authguard.orders.held import confirm_with_passkey as confirm_with_passkey
from authguard.orders.held import confirm_with_totp as confirm_with_totp
from authguard.orders.held import confirmation_json as confirmation_json
from authguard.orders.held import confirmation_options as confirmation_options
from authguard.orders.held import expire_due as expire_due
from authguard.orders.held import factor_cooling_off as factor_cooling_off
from authguard.orders.held import owned_confirmation as owned_confirmation
from authguard.orders.held import pending_for as pending_for
from authguard.orders.held import pending_orders as pending_orders
from authguard.orders.held import staff_cancel as staff_cancel
from authguard.orders.held import staff_release as staff_release
from authguard.orders.held import stored_order as stored_order
from authguard.orders.hooks import Executor as Executor
from authguard.orders.hooks import GuardMisconfigured as GuardMisconfigured
from authguard.orders.hooks import OrderNotExecutable as OrderNotExecutable
from authguard.orders.rules import (
    DENY,
    HIGH,
    HOLD,
    InstrumentInfo,
    OrderFacts,
    OrderRule,
    RuleFinding,
    configured_rules,
)
from authguard.orders.summary import format_amount as format_amount
from authguard.orders.summary import render_summary as render_summary
from authguard.orders.summary import summary_data as summary_data
from authguard.orders.vouching import placing_device

logger = logging.getLogger(__name__)

T = TypeVar("T")

ALLOW = "allow"


# -- the portal's order ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderIntent:
    """An order as the portal describes it: who trades what, how much, at which quoted price."""

    account: str
    side: str
    symbol: str
    quantity: int
    price: Decimal
    currency: str
    market: str

    def __post_init__(self) -> None:
        if self.side not in ("buy", "sell"):
            raise ValueError(f"side must be 'buy' or 'sell', not {self.side!r}")
        if isinstance(self.quantity, bool) or not isinstance(self.quantity, int) or self.quantity < 1:
            raise ValueError(f"quantity must be a positive int, not {self.quantity!r}")
        if not isinstance(self.price, Decimal) or not self.price.is_finite() or self.price <= 0:
            raise ValueError(f"price must be a positive Decimal, not {self.price!r}")


@dataclass(frozen=True)
class OrderDecision:
    """The guard's answer: ``allow``, ``hold`` (with the findings that say why) or ``deny``."""

    action: str
    findings: tuple[RuleFinding, ...] = ()
    facts: OrderFacts | None = None

    @property
    def severity(self) -> int:
        return max((f.severity for f in self.findings), default=0)

    @property
    def reasons(self) -> list[str]:
        """Finding codes, most severe first."""
        return [f.code for f in sorted(self.findings, key=lambda f: -f.severity)]

    @property
    def allowed(self) -> bool:
        return self.action == ALLOW

    def messages(self) -> list[str]:
        """The findings' reasons in the active language, most severe first."""
        return [str(f.reason) for f in sorted(self.findings, key=lambda f: -f.severity)]


@dataclass(frozen=True)
class Placed(Generic[T]):
    """The order was allowed and placed: ``result`` is what the portal's ``place()`` returned; ``approval``
    what the guard checked (the quantity at the checked price), which ``place`` was to execute within."""

    result: T
    decision: OrderDecision
    approval: Approval | None = None


@dataclass(frozen=True)
class Held:
    """The order is held until the customer confirms it; ``portal_result`` is what ``hold()`` returned."""

    confirmation: HeldOrder
    decision: OrderDecision
    portal_result: Any = None

    def as_json(self) -> dict[str, Any]:
        """CONTRACTS section 3: ``{id, summary, methods, expires_at}`` (plus ``reasons``)."""
        return confirmation_json(self.confirmation)


# -- exceptions ---------------------------------------------------------------------------------------------


class OrderDenied(AuthguardError):
    """The guard refused the order outright (a rule configured with ``"action": "deny"``)."""

    default_code = "denied"
    default_message = gettext_lazy("This order cannot be placed from this session.")

    def __init__(self, decision: OrderDecision) -> None:
        super().__init__()
        self.decision = decision


# -- deciding ------------------------------------------------------------------------------------------


def decide(facts: OrderFacts, rules: Sequence[OrderRule]) -> OrderDecision:
    """Run every rule over ``facts``. A rule that crashes holds the order (fail closed)."""
    findings: list[RuleFinding] = []
    for rule in rules:
        try:
            findings.extend(rule.evaluate(facts))
        except Exception:
            # SECURITY: a broken rule must never let an order through unchecked.
            logger.exception("authguard: order rule %s failed", type(rule).__name__)
            findings.append(RuleFinding("rule_error", HIGH, gettext_lazy("An order check failed."), HOLD))
    if any(f.action == DENY for f in findings):
        return OrderDecision(DENY, tuple(findings), facts)
    if findings:
        return OrderDecision(HOLD, tuple(findings), facts)
    return OrderDecision(ALLOW, (), facts)


def check_order(
    request: HttpRequest | None,
    intent: OrderIntent,
    *,
    user: Any,
    now: datetime | None = None,
    instrument: InstrumentInfo | None = None,
) -> OrderDecision:
    """Check ``intent`` without recording it: ``allow``, ``hold`` (with findings) or ``deny``.

    For placing, use :func:`submit_order`, which runs this check under the customer's row lock.
    ``instrument``: the portal's current data on the order's instrument, when it has just read it (else the
    ``AUTHGUARD_ORDER_INSTRUMENT`` hook is asked).
    """
    return _decide(request, intent, user=user, now=now, instrument=instrument, serialise=False)


def _decide(
    request: HttpRequest | None,
    intent: OrderIntent,
    *,
    user: Any,
    now: datetime | None,
    instrument: InstrumentInfo | None,
    serialise: bool,
) -> OrderDecision:
    """:func:`check_order`; ``serialise``: inside :func:`submit_order`'s transaction, where a buy of an
    illiquid instrument first waits for the other buys of it (the campaign facts are theirs)."""
    rules = configured_rules()
    facts = gather_facts(
        request, intent, user=user, rules=rules, now=now, instrument=instrument, serialise=serialise
    )
    if facts is None:
        # SECURITY: an instrument the guard cannot value is never waved through.
        finding = RuleFinding(
            "instrument_unknown", HIGH, gettext_lazy("The order guard has no data on this instrument.")
        )
        return OrderDecision(HOLD, (finding,), None)
    return decide(facts, rules)


# -- placing ----------------------------------------------------------------------------------------------


#: Ledger reason codes of an order placed in report-only mode (``AUTHGUARD_REPORT_ONLY``), after the reasons
#: it would have been held or denied for.
REPORT_ONLY_WOULD_HOLD = "report_only_would_hold"
REPORT_ONLY_WOULD_DENY = "report_only_would_deny"


def report_only_code(decision: OrderDecision) -> str:
    """The ledger code saying what a report-only ``decision`` would have done to its order."""
    return REPORT_ONLY_WOULD_DENY if decision.action == DENY else REPORT_ONLY_WOULD_HOLD


def submit_order(
    request: HttpRequest | None,
    *,
    user: Any,
    intent: OrderIntent,
    place: Callable[..., T],
    hold: Callable[[OrderDecision], Any] | None = None,
    now: datetime | None = None,
    instrument: InstrumentInfo | None = None,
) -> Placed[T] | Held:
    """Check, record and place ``intent``, or hold it for confirmation; all in one transaction.

    ``place(approval)`` places the order in the portal (its exceptions roll everything back) within the
    :class:`Approval`: as a limit order at ``approval.limit_price``, the price the guard checked, filling only
    where ``approval.fills_at(price)`` (a buy at most, a sell at least, that price within
    ``AUTHGUARD_ORDER_PRICE_TOLERANCE``). A ``place`` that takes no argument is called without it and must
    bound the fill to the checked price itself (``authguard.W122`` is logged once per process).
    ``hold(decision)`` stores the portal's copy of a held order and returns its reference (e.g. a primary
    key). Raises :class:`OrderDenied` for a denied order (the order is not recorded; a campaign the
    denial uncovered is flagged all the same, even when the caller's transaction rolls back:
    :mod:`authguard.durable`).
    ``instrument`` as for :func:`check_order`.

    With ``"orders"`` in ``AUTHGUARD_REPORT_ONLY`` an order that would be held or denied is placed: the
    ledger row is ``placed`` with :data:`REPORT_ONLY_WOULD_HOLD` (or ``..._DENY``) after the reasons, and
    ``Placed.decision`` keeps the decision (``action`` ``hold`` or ``deny``). No hold, notice or campaign
    flag is made.
    """
    now = now or clock.now()
    try:
        return _submit(
            request, user=user, intent=intent, place=place, hold=hold, now=now, instrument=instrument
        )
    except OrderDenied as denied:
        # SECURITY: the campaign a denial uncovered outlives the rollback of the order it refused (and of the
        # portal's own transaction around this call): its flag holds the next buyers and alerts staff.
        decision = denied.decision
        record_refusal(lambda: flag_campaign(decision, now=now))
        raise


def _submit(
    request: HttpRequest | None,
    *,
    user: Any,
    intent: OrderIntent,
    place: Callable[..., T],
    hold: Callable[[OrderDecision], Any] | None,
    now: datetime,
    instrument: InstrumentInfo | None,
) -> Placed[T] | Held:
    """:func:`submit_order`'s transaction."""
    with transaction.atomic():
        lock_customer(user)
        decision = _decide(request, intent, user=user, now=now, instrument=instrument, serialise=True)
        if decision.facts is not None and decision.facts.held_due:
            # Held orders expire on time without a periodic task: in the order path, before they count.
            expire_due(user=user, now=now)
            decision = _decide(request, intent, user=user, now=now, instrument=instrument, serialise=True)
        # Rollout (``"orders"`` in AUTHGUARD_REPORT_ONLY): a hold or a denial is recorded and logged, and the
        # order is placed; check W170 names the mode on every check.
        reported = decision.action != ALLOW and app_settings.report_only("orders")
        if decision.action == DENY and not reported:
            raise OrderDenied(decision)
        facts = decision.facts
        amount = facts.amount if facts else (intent.price * intent.quantity).quantize(Decimal("0.01"))
        currency = facts.portfolio.currency if facts else intent.currency
        ledger = GuardedOrder.objects.create(
            user=user,
            created_at=now,
            side=intent.side,
            symbol=intent.symbol,
            quantity=intent.quantity,
            amount=amount,
            currency=currency,
            status=GuardStatus.PLACED if decision.allowed or reported else GuardStatus.HELD,
            illiquid=bool(facts and facts.illiquid),
            risky_session=bool(facts.campaign_risky) if facts else True,
            reasons=[*decision.reasons, report_only_code(decision)] if reported else decision.reasons,
            # SECURITY: the weight of the day's own volume, not the month's floor: recorded floored, one order
            # a month kept an old thin weight alive for good (red team, round fifteen).
            illiquidity=_own_weight(facts),
            illiquid_amount=facts.weighted_amount if facts else amount,
            vouched=bool(facts and facts.unvouched and facts.unvouched.vouched),
            device_hash=placing_device(request),
        )
        # SECURITY: what the guard allowed is this amount: the portal executes the quantity at the checked
        # price or better, never at whatever the price is by then (red team, round nineteen).
        approval = approval_for(intent, facts)
        if decision.allowed:
            return Placed(call_place(place, approval), decision, approval)
        if reported:
            # No campaign flag, no notice, no hold: nothing acts on a report-only decision.
            logger.warning(
                "authguard REPORT-ONLY orders user=%s %s %s %s would have been %s: %s",
                user.pk,
                intent.side,
                intent.quantity,
                intent.symbol,
                "held" if decision.action == HOLD else "denied",
                ", ".join(decision.reasons),
            )
            return Placed(call_place(place, approval), decision, approval)
        flag_campaign(decision, now=now)
        portal_result = hold(decision) if hold is not None else None
        ref = getattr(portal_result, "pk", portal_result)
        held = _create_held(
            request,
            user=user,
            intent=intent,
            decision=decision,
            ledger=ledger,
            approval=approval,
            portal_ref="" if ref is None else str(ref),
            now=now,
        )
        _notify(
            user,
            "order_held",
            context={
                "side": intent.side,
                "quantity": intent.quantity,
                "symbol": intent.symbol,
                # The customer recognises an order by its name and amount, not a code.
                "instrument": facts.instrument.name if facts is not None else "",
                "amount": str(amount),
                "currency": str(currency),
                "time": now,
                "expires": held.expires_at,
            },
            dedupe_key=f"held:{held.pk}",
        )
        logger.info(
            "authguard order held user=%s %s %s %s: %s",
            user.pk,
            intent.side,
            intent.quantity,
            intent.symbol,
            ", ".join(decision.reasons),
        )
        return Held(held, decision, portal_result)


def _notify(user: Any, kind: str, *, context: dict[str, Any], dedupe_key: str) -> None:
    # SECURITY: held-order notices also reach the address a thief replaced during its cooling-off.
    notify_customer(user, kind, context=context, dedupe_key=dedupe_key)


def _create_held(
    request: HttpRequest | None,
    *,
    user: Any,
    intent: OrderIntent,
    decision: OrderDecision,
    ledger: GuardedOrder,
    approval: Approval,
    portal_ref: str,
    now: datetime,
) -> HeldOrder:
    held_id = uuid.uuid4()
    facts = decision.facts
    canonical = canonical_json(
        {
            "v": CANONICAL_VERSION,
            "confirmation": str(held_id),
            "user": str(user.pk),
            "account": intent.account,
            "side": intent.side,
            "symbol": intent.symbol,
            "quantity": intent.quantity,
            "price": str(intent.price),
            "currency": intent.currency,
            "market": intent.market,
            "amount": str(ledger.amount),
            "amount_currency": ledger.currency,
            # SECURITY: the price the guard checked: the executor fills at it or better (stored_approval).
            "limit_price": str(approval.limit_price),
            "limit_currency": approval.currency,
            "portal_ref": portal_ref,
            "held_at": now.isoformat(),
        }
    )
    data = summary_data(user, intent, facts, ledger=ledger, now=now, findings=decision.findings)
    binding = _session_binding(request, create=True)
    return HeldOrder.objects.create(
        id=held_id,
        user=user,
        guarded=ledger,
        canonical=canonical,
        digest=order_digest(canonical),
        nonce=secrets.token_hex(16),
        # SECURITY: no session, no binding that anyone could satisfy: such an order can only be cancelled.
        session_binding=binding or "",
        methods=confirmation_methods(user),
        summary=render_summary(data),
        summary_data=data,
        reasons=[f.as_dict() for f in decision.findings],
        severity=decision.severity,
        status=HeldOrder.Status.PENDING,
        created_at=now,
        expires_at=now + timedelta(seconds=app_settings.CONFIRMATION_SECONDS),
        portal_ref=portal_ref,
    )


def _own_weight(facts: OrderFacts | None) -> float:
    # No facts (no instrument data): counted in full by its amount, but nothing for the month to remember.
    if facts is None:
        return 0.0
    return facts.illiquidity if facts.own_illiquidity is None else facts.own_illiquidity


__all__ = [
    "Approval",
    "Confirmed",
    "ConfirmationError",
    "ConfirmationGone",
    "ConfirmationInvalid",
    "ConfirmationNotFound",
    "ConfirmationThrottled",
    "Executor",
    "GuardMisconfigured",
    "Held",
    "OrderDecision",
    "OrderDenied",
    "OrderIntent",
    "OrderNotExecutable",
    "Placed",
    "cancel",
    "challenge_for",
    "check_order",
    "confirm_with_passkey",
    "confirm_with_totp",
    "confirmation_json",
    "confirmation_methods",
    "confirmation_options",
    "expire_due",
    "pending_orders",
    "lock_customer",
    "owned_confirmation",
    "pending_for",
    "stored_approval",
    "stored_order",
    "submit_order",
]
