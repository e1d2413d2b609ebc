"""The order guard: hold liquidations and illiquid pivots until the customer confirms, bound to the order.

A portal describes an order as an :class:`OrderIntent` and submits it through :func:`submit_order`, giving a
``place`` callable (and, for holds, a ``hold`` callable)::

    outcome = orders.submit_order(request, user=request.user, intent=intent,
                                  place=lambda: services.execute_order(user, draft),
                                  hold=lambda decision: services.hold_order(user, draft).pk)
    if isinstance(outcome, orders.Held):
        return JsonResponse({"status": "held", "confirmation": outcome.as_json()}, status=202)

The portal's data reaches the guard through three hooks named by dotted paths in settings:
``AUTHGUARD_ORDER_PORTFOLIO`` (``user -> PortfolioSnapshot``), ``AUTHGUARD_ORDER_INSTRUMENT``
(``symbol -> InstrumentInfo | None``) and ``AUTHGUARD_ORDER_EXECUTOR`` (an object with
``execute(held) -> str`` that executes a held order's *stored* canonical order, and
``release(held, *, status)`` that closes the portal's copy of an order that will never execute).

Held orders use dynamic linking: the exact canonical order JSON and its SHA-256 ``digest`` are stored with a
random ``nonce``, and the passkey challenge is ``sha256(nonce || digest)``, so an assertion confirms this
order and no other. A confirmation is single-use, expires (``AUTHGUARD_CONFIRMATION_SECONDS``), is bound to
the session that placed the order, and executes the stored order exactly once, under row locks.

Concurrency: :func:`submit_order` locks the customer's user row (``SELECT ... FOR UPDATE``; on SQLite the
``IMMEDIATE`` transaction mode serialises writers) before it reads the rolling window, so parallel orders
queue up and cannot all slip under the limit.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import secrets
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Generic, Protocol, TypeVar

from django.contrib.auth import SESSION_KEY, get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone, translation
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from authguard.conf import app_settings
from authguard.exceptions import AuthguardError, InvalidCredential, Throttled
from authguard.models import CampaignFlag, GuardedOrder, GuardStatus, HeldOrder
from authguard.orders.exposure import illiquid_buy_facts, ledger_totals
from authguard.orders.rules import (
    DEFAULT_ILLIQUID_VALUE,
    DEFAULT_LIQUID_VALUE,
    DEFAULT_LIQUIDITY_FLOOR,
    DEFAULT_RISKY_SESSION_HOURS,
    DEFAULT_TRUST_DAYS,
    DENY,
    HIGH,
    HOLD,
    ILLIQUID_WEIGHT,
    IlliquidBuy,
    InstrumentInfo,
    OrderFacts,
    OrderRule,
    PortfolioSnapshot,
    RiskySession,
    RuleFinding,
    SessionFacts,
    configured_rules,
    illiquidity,
    rule_option,
)
from authguard.orders.rules import Campaign as CampaignRule
from authguard.orders.rules import Exposure as ExposureRule

logger = logging.getLogger(__name__)

T = TypeVar("T")

ALLOW = "allow"
#: Session key of the random token that binds held orders to the session that placed them. It lives in
#: the session's data, so it survives the key rotation of a step-up (``cycle_key``) but no other session
#: (or a new login, which flushes the session) ever has it.
BINDING_SESSION_KEY = "_authguard_order_binding"
#: Largest canonical order accepted back from the database (a tampered row is refused, not parsed).
CANONICAL_VERSION = 1


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
    """The order was allowed and placed: ``result`` is what the portal's ``place()`` returned."""

    result: T
    decision: OrderDecision


@dataclass(frozen=True)
class Held:
    """The order is held until the customer confirms it; ``portal_result`` is what ``hold()`` returned."""

    confirmation: HeldOrder
    decision: OrderDecision
    portal_result: Any = None

    def as_json(self) -> dict[str, Any]:
        """CONTRACTS section 3: ``{id, summary, methods, expires_at}`` (plus ``reasons``)."""
        return confirmation_json(self.confirmation)


@dataclass(frozen=True)
class Confirmed:
    """A held order was confirmed and executed exactly once; ``result_ref`` is the portal's reference."""

    confirmation: HeldOrder
    result_ref: str


class Executor(Protocol):
    """What ``AUTHGUARD_ORDER_EXECUTOR`` names."""

    def execute(self, held: HeldOrder) -> str:
        """Execute the held order's stored canonical order; return the portal's reference. Raise
        :class:`OrderNotExecutable` to refuse (nothing the executor wrote is kept)."""

    def release(self, held: HeldOrder, *, status: str) -> None:
        """The held order was cancelled, expired or failed: close the portal's copy of it."""


# -- exceptions ---------------------------------------------------------------------------------------------


class OrderDenied(AuthguardError):
    """The guard refused the order outright (a rule configured with ``"action": "deny"``)."""

    default_code = "denied"
    default_message = gettext_lazy("This order cannot be placed from this session.")

    def __init__(self, decision: OrderDecision) -> None:
        super().__init__()
        self.decision = decision


class OrderNotExecutable(AuthguardError):
    """Raised by the portal's executor: the stored order can no longer be executed (funds, holdings...)."""

    default_code = "not_executable"
    default_message = gettext_lazy("This order can no longer be executed.")


class ConfirmationError(AuthguardError):
    """A confirmation attempt failed; ``http_status`` is the answer of CONTRACTS section 4."""

    http_status = 400


class ConfirmationNotFound(ConfirmationError):
    """No such pending confirmation for this customer in this session (also for another session's)."""

    http_status = 404
    default_code = "not_found"
    default_message = gettext_lazy("There is no such order waiting for your confirmation.")


class ConfirmationGone(ConfirmationError):
    """The confirmation expired, was cancelled, or was already used."""

    http_status = 410
    default_code = "gone"
    default_message = gettext_lazy("This order is no longer waiting for confirmation.")


class ConfirmationInvalid(ConfirmationError):
    """The passkey or code did not verify, the method is not allowed, or the factor is cooling off."""

    http_status = 400
    default_code = "invalid"
    default_message = gettext_lazy("The confirmation failed.")


class ConfirmationThrottled(ConfirmationError):
    """The factor's back-off refuses attempts for now (a wrong code was just tried): 429 ``throttled``."""

    http_status = 429
    default_code = "throttled"
    default_message = gettext_lazy("Too many attempts. Please wait a moment and try again.")

    def __init__(
        self, message: str | None = None, *, code: str | None = None, retry_after: int | None = None
    ) -> None:
        super().__init__(message, code=code)
        #: Whole seconds until the factor takes an attempt again (``Retry-After``); None: unknown.
        self.retry_after: int | None = retry_after


class GuardMisconfigured(ImproperlyConfigured):
    """A portal hook setting is missing or does not import."""


# -- hooks --------------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def _import(path: str) -> Any:
    try:
        return import_string(path)
    except ImportError as exc:
        raise GuardMisconfigured(f"authguard order guard: cannot import {path!r} ({exc})") from exc


def _hook(name: str) -> Any:
    path = getattr(app_settings, name)
    if not path:
        raise GuardMisconfigured(f"AUTHGUARD_{name} is not set: the order guard needs the portal's hook.")
    return _import(path)


def _executor() -> Executor:
    target = _hook("ORDER_EXECUTOR")
    return target() if isinstance(target, type) else target


def _settings_changed(*, setting: str, **kwargs: Any) -> None:
    if setting.startswith("AUTHGUARD_ORDER_"):
        _import.cache_clear()


setting_changed.connect(_settings_changed)


# -- gathering the facts -------------------------------------------------------------------------------


def _session_facts(request: HttpRequest | None) -> SessionFacts:
    from authguard.sessions.stepup import session_state

    state = session_state(request) if request is not None else None
    if state is None:
        return SessionFacts(known=False)
    return SessionFacts(
        known=True,
        login_action=state.login_action,
        stepped_up=state.stepped_up,
        rescored=state.rescored,
        new_device=state.new_device,
        low_risk=state.low_risk,
        login_at=state.login_at,
    )


def _window_hours(rules: Sequence[OrderRule]) -> list[int]:
    hours = {h for h in (rule.window_hours() for rule in rules) if h is not None}
    for rule in rules:
        if isinstance(rule, ExposureRule):
            hours.update(rule.horizons())
    return sorted(hours or {24})


def gather_facts(
    request: HttpRequest | None,
    intent: OrderIntent,
    *,
    user: Any,
    rules: Sequence[OrderRule],
    now: datetime | None = None,
    instrument: InstrumentInfo | None = None,
) -> OrderFacts | None:
    """Everything the rules read about ``intent``; ``None`` when the portal does not know the instrument.

    Costs one ledger query plus the portal's hooks; buys of illiquid instruments add the campaign lookups.
    A portal that has just read the instrument to validate the order passes it as ``instrument``, and the
    ``AUTHGUARD_ORDER_INSTRUMENT`` hook is not asked again.
    """
    now = now or timezone.now()
    if instrument is None:
        instrument = _hook("ORDER_INSTRUMENT")(intent.symbol)
    elif instrument.symbol != intent.symbol:
        raise ValueError("the instrument given does not match the order's symbol")
    if instrument is None:
        return None
    portfolio: PortfolioSnapshot = _hook("ORDER_PORTFOLIO")(user)
    session = _session_facts(request)
    risky_hours = int(rule_option(rules, RiskySession, "hours", DEFAULT_RISKY_SESSION_HOURS))
    session_risky = session.risky(now=now, hours=risky_hours)
    trust_days = int(rule_option(rules, ExposureRule, "trust_days", DEFAULT_TRUST_DAYS))
    windows, held_due, trust = ledger_totals(
        user,
        now=now,
        hours=_window_hours(rules),
        symbol=intent.symbol,
        held_seconds=app_settings.CONFIRMATION_SECONDS,
        trust_days=trust_days,
    )
    floor = Decimal(rule_option(rules, IlliquidBuy, "liquidity_floor", DEFAULT_LIQUIDITY_FLOOR))
    home = str(rule_option(rules, IlliquidBuy, "home_country", "JP"))
    weight = illiquidity(
        instrument,
        liquid_value=float(rule_option(rules, ExposureRule, "liquid_value", DEFAULT_LIQUID_VALUE)),
        illiquid_value=float(rule_option(rules, ExposureRule, "illiquid_value", DEFAULT_ILLIQUID_VALUE)),
        small_cap_weight=float(rule_option(rules, ExposureRule, "small_cap_weight", 0.5)),
        home_country=home,
    )
    daily = instrument.daily_value
    # SECURITY: liquidity is a scale (case 53): a stock just above the floor still weighs, and anything
    # weighing at least ILLIQUID_WEIGHT gets the pivot, risky-session and campaign rules too.
    illiquid = instrument.is_small_cap or daily is None or daily < floor or weight >= ILLIQUID_WEIGHT
    amount = instrument.value_of(intent.quantity)
    account_risky = session_risky or trust.changed
    first_trade = None
    campaign = None
    if intent.side == "buy" and illiquid:
        campaign_rule = next((r for r in rules if isinstance(r, CampaignRule)), None)
        campaign, never_bought = illiquid_buy_facts(
            user,
            intent.symbol,
            now=now,
            hours=campaign_rule.campaign_hours() if campaign_rule else None,
            risky=account_risky,
            amount=amount,
            volume_hours=campaign_rule.volume_hours() if campaign_rule else [],
            daily_value=daily,
        )
        first_trade = never_bought and portfolio.holding(intent.symbol) is None
    return OrderFacts(
        side=intent.side,
        symbol=intent.symbol,
        quantity=intent.quantity,
        amount=amount,
        instrument=instrument,
        portfolio=portfolio,
        windows=windows,
        session=session,
        now=now,
        illiquid=illiquid,
        session_risky=session_risky,
        home_country=home,
        first_trade=first_trade,
        campaign=campaign,
        illiquidity=weight,
        trust=trust,
        held_due=held_due,
    )


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
    rules = configured_rules()
    facts = gather_facts(request, intent, user=user, rules=rules, now=now, instrument=instrument)
    if facts is None:
        # SECURITY: an instrument the guard cannot value is never waved through.
        finding = RuleFinding(
            "instrument_unknown", HIGH, gettext_lazy("The order guard has no data on this instrument.")
        )
        return OrderDecision(HOLD, (finding,), None)
    return decide(facts, rules)


# -- placing ----------------------------------------------------------------------------------------------


def lock_customer(user: Any) -> None:
    """``SELECT ... FOR UPDATE`` on the customer's row: one order (or confirmation) of theirs at a time."""
    model = get_user_model()
    # SECURITY: every read of the rolling window that leads to a placement happens under this lock.
    model._default_manager.select_for_update().filter(pk=user.pk).values_list("pk", flat=True).first()


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
    place: Callable[[], T],
    hold: Callable[[OrderDecision], Any] | None = None,
    now: datetime | None = None,
    instrument: InstrumentInfo | None = None,
) -> Placed[T] | Held:
    """Check, record and place ``intent``, or hold it for confirmation; all in one transaction.

    ``place()`` places the order in the portal (its exceptions roll everything back). ``hold(decision)``
    stores the portal's copy of a held order and returns its reference (e.g. a primary key). Raises
    :class:`OrderDenied` for a denied order (nothing is recorded). ``instrument`` as for
    :func:`check_order`.

    With ``"orders"`` in ``AUTHGUARD_REPORT_ONLY`` an order that would be held or denied is placed: the
    ledger row is ``placed`` with :data:`REPORT_ONLY_WOULD_HOLD` (or ``..._DENY``) after the reasons, and
    ``Placed.decision`` keeps the decision (``action`` ``hold`` or ``deny``). No hold, notice or campaign
    flag is made.
    """
    now = now or timezone.now()
    with transaction.atomic():
        lock_customer(user)
        decision = check_order(request, intent, user=user, now=now, instrument=instrument)
        if decision.facts is not None and decision.facts.held_due:
            # Held orders expire on time without a periodic task: in the order path, before they count.
            expire_due(user=user, now=now)
            decision = check_order(request, intent, user=user, now=now, instrument=instrument)
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
            risky_session=bool(facts.account_changed) if facts else True,
            reasons=[*decision.reasons, report_only_code(decision)] if reported else decision.reasons,
            illiquidity=facts.illiquidity if facts else 1.0,
            illiquid_amount=facts.weighted_amount if facts else amount,
        )
        if decision.allowed:
            return Placed(place(), decision)
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
            return Placed(place(), decision)
        _flag_campaign(decision, now=now)
        portal_result = hold(decision) if hold is not None else None
        ref = getattr(portal_result, "pk", portal_result)
        held = _create_held(
            request,
            user=user,
            intent=intent,
            decision=decision,
            ledger=ledger,
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


def _flag_campaign(decision: OrderDecision, *, now: datetime) -> None:
    finding = next((f for f in decision.findings if f.code == "campaign_detected"), None)
    if finding is None or decision.facts is None:
        return
    symbol = decision.facts.symbol
    flag, created = CampaignFlag.objects.get_or_create(
        symbol=symbol,
        defaults={
            "flagged_at": now,
            "accounts": finding.evidence.get("accounts", 0),
            "risky_accounts": finding.evidence.get("risky_accounts", 0),
            "window_hours": finding.evidence.get("hours", 0),
        },
    )
    if not created and not flag.active:
        flag.active, flag.flagged_at, flag.cleared_at = True, now, None
        flag.save(update_fields=["active", "flagged_at", "cleared_at"])
    elif not created:
        return
    logger.warning("authguard campaign flagged symbol=%s accounts=%s", symbol, flag.accounts)
    _notify_staff(
        "campaign_flagged",
        context={
            "summary": _(
                "%(accounts)s accounts bought %(symbol)s within %(hours)s hours; further buys are held."
            )
            % {"accounts": flag.accounts, "symbol": symbol, "hours": flag.window_hours},
            "accounts": flag.accounts,
            "time": now,
        },
        dedupe_key=f"campaign:{symbol}:{now.isoformat()}",
    )


def _notify(user: Any, kind: str, *, context: dict[str, Any], dedupe_key: str) -> None:
    # SECURITY: held-order notices also reach the address a thief replaced during its cooling-off.
    from authguard.notifications.outbox import notify_customer

    notify_customer(user, kind, context=context, dedupe_key=dedupe_key)


def _notify_staff(kind: str, *, context: dict[str, Any], dedupe_key: str) -> None:
    from authguard.notifications.outbox import notify_staff

    notify_staff(kind, context=context, dedupe_key=dedupe_key)


# -- held orders ----------------------------------------------------------------------------------------


def canonical_json(data: dict[str, Any]) -> str:
    """The one serialisation of an order that is hashed: sorted keys, no spaces, UTF-8 kept."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def order_digest(canonical: str) -> str:
    """SHA-256 (hex) of the canonical order."""
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def challenge_for(held: HeldOrder) -> bytes:
    """The WebAuthn challenge of a held order: ``sha256(nonce || digest)`` (dynamic linking).

    The nonce is renewed by every :func:`confirmation_options`, so each attempt signs a new challenge that
    still names this exact order; the nonce of the successful attempt stays on the row with the assertion.
    """
    return hashlib.sha256(bytes.fromhex(held.nonce) + bytes.fromhex(held.digest)).digest()


def _session_binding(request: HttpRequest | None, *, create: bool) -> str | None:
    session = getattr(request, "session", None)
    if session is None:
        return None
    token = session.get(BINDING_SESSION_KEY)
    if not isinstance(token, str) or len(token) < 32:
        # SECURITY: only a signed-in session carries a binding. A token client's request comes with an
        # anonymous session: a binding written there would create a session (and a cookie) that no sign-in
        # can ever satisfy; without one the order can only be cancelled or expire.
        if not create or session.get(SESSION_KEY) is None:
            return None
        token = secrets.token_urlsafe(32)
        session[BINDING_SESSION_KEY] = token
    return hashlib.sha256(token.encode()).hexdigest()


def factor_cooling_off(device: Any, *, at: datetime | None = None) -> bool:
    """Whether ``device`` is in its cooling-off and may not confirm anything sensitive.

    The factor lifecycle's one rule (:func:`authguard.factors.lifecycle.factor_is_cooling_off`, through
    :func:`authguard.factors.base.in_cooling_off`): the factor's own cooling-off has not ended, or it was
    confirmed during the account's running cooling-off (after a factor or contact change).
    """
    from authguard.factors.base import in_cooling_off

    return bool(in_cooling_off(device, at=at))


def _usable_devices(user: Any) -> tuple[list[Any], list[Any], list[Any]]:
    """The user's usable passkeys (not disabled), those of them not cooling off, and the TOTP device that
    may confirm orders (not cooling off)."""
    from authguard.factors.base import totp_device
    from authguard.factors.passkeys import usable_passkeys

    passkeys = usable_passkeys(user)
    ready = [d for d in passkeys if not factor_cooling_off(d)]
    totp = totp_device(user)
    return passkeys, ready, [totp] if totp is not None and not factor_cooling_off(totp) else []


def confirmation_methods(user: Any) -> list[str]:
    """How ``user`` may confirm a held order: ``["passkey"]``, ``["totp"]``, both, or none.

    SECURITY: a customer with a passkey must use it unless ``AUTHGUARD_CONFIRMATION_TOTP_WITH_PASSKEY`` says
    otherwise, even while every passkey of theirs is in its cooling-off (then nothing confirms until it ends):
    otherwise a relayed one-time code would confirm for exactly the customer whose passkey is new. Factors in
    their cooling-off are not offered, and cooling-off is checked again when a factor confirms.
    """
    allowed = app_settings.CONFIRMATION_METHODS
    passkeys, ready, totps = _usable_devices(user)
    methods = []
    if "passkey" in allowed and ready:
        methods.append("passkey")
    if "totp" in allowed and totps and (not passkeys or app_settings.CONFIRMATION_TOTP_WITH_PASSKEY):
        methods.append("totp")
    return methods


def _create_held(
    request: HttpRequest | None,
    *,
    user: Any,
    intent: OrderIntent,
    decision: OrderDecision,
    ledger: GuardedOrder,
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


def stored_order(held: HeldOrder) -> dict[str, Any]:
    """The held order's canonical order, after checking it still hashes to its digest.

    Executors read the order from here, never from the client. Raises :class:`ConfirmationInvalid` for a
    row whose canonical order was changed after it was held.
    """
    # SECURITY: recomputed on every use: a changed order voids the confirmation.
    if not secrets.compare_digest(order_digest(held.canonical), held.digest):
        raise ConfirmationInvalid(_("This order was changed after it was held."), code="order_changed")
    data = json.loads(held.canonical)
    if not isinstance(data, dict) or data.get("confirmation") != str(held.pk):
        raise ConfirmationInvalid(_("This order was changed after it was held."), code="order_changed")
    return data


# -- summary -----------------------------------------------------------------------------------------------


def _summary_hours(facts: OrderFacts) -> int:
    """The window the summary speaks of by default: the shortest the guard summed (24 hours by
    default); :func:`summary_data` prefers the one the most severe finding names."""
    return min(facts.windows)


def summary_data(
    user: Any,
    intent: OrderIntent,
    facts: OrderFacts | None,
    *,
    ledger: GuardedOrder,
    now: datetime,
    findings: Sequence[RuleFinding] = (),
) -> dict[str, Any]:
    """The numbers of the plain summary, kept so the page renders it in the reader's language.

    Sells already placed and sells waiting for confirmation are kept apart (``placed_amount``,
    ``held_amount``, this order included in the held ones), so the customer is never told "you sold 99 %"
    when most of it is held.
    """
    data: dict[str, Any] = {
        "side": intent.side,
        "symbol": intent.symbol,
        "name": facts.instrument.name if facts else "",
        "quantity": intent.quantity,
        "amount": str(ledger.amount),
        "currency": ledger.currency,
    }
    if facts is None:
        return data
    hours = _summary_hours(facts)
    for finding in sorted(findings, key=lambda f: -f.severity):
        named = finding.evidence.get("hours")
        if isinstance(named, int) and named in facts.windows:
            hours = named
            break
    share, sold, base = facts.sold_share(hours)
    window = facts.window(hours)
    held = window.sells_held + (facts.amount if facts.is_sell else Decimal(0))
    placed_share = window.sells_placed / base if base > 0 else Decimal(0)
    data.update(
        hours=hours,
        sold_share=round(float(share), 4),
        sold_amount=str(sold.quantize(Decimal(1))),
        placed_amount=str(window.sells_placed.quantize(Decimal(1))),
        placed_share=round(float(placed_share), 4),
        held_amount=str(held.quantize(Decimal(1))),
    )
    sold_symbols = set(
        GuardedOrder.objects.filter(
            user_id=user.pk,
            side="sell",
            status__in=[GuardStatus.PLACED, GuardStatus.HELD],
            created_at__gte=now - timedelta(hours=hours),
        ).values_list("symbol", flat=True)
    )
    held_now = {h.symbol for h in facts.portfolio.holdings}
    data.update(sold_holdings=len(sold_symbols), holdings=len(held_now | sold_symbols))
    return data


def _period(hours: int) -> str:
    """``24 hours`` / ``7 days`` in the active language."""
    if hours % 24 == 0 and hours > 24:
        return _("%(days)s days") % {"days": hours // 24}
    return _("%(hours)s hours") % {"hours": hours}


def format_amount(amount: Decimal | str, currency: str) -> str:
    """``¥9.7 million`` / ``970万円`` for yen, ``12,345.00 USD`` otherwise, in the active language."""
    value = Decimal(amount)
    japanese = (translation.get_language() or "").startswith("ja")
    if currency != "JPY":
        return f"{value:,.2f} {currency}"
    if japanese:
        if value >= 100_000_000:
            return f"{(value / 100_000_000).quantize(Decimal('0.1'), ROUND_HALF_UP)}億円"
        if value >= 10_000:
            return f"{(value / 10_000).quantize(Decimal(1), ROUND_HALF_UP):,}万円"
        return f"{value.quantize(Decimal(1), ROUND_HALF_UP):,}円"
    if value >= 1_000_000:
        return _("¥%(millions)s million") % {
            "millions": (value / 1_000_000).quantize(Decimal("0.1"), ROUND_HALF_UP)
        }
    return f"¥{value.quantize(Decimal(1), ROUND_HALF_UP):,}"


def render_summary(data: dict[str, Any]) -> str:
    """The plain summary, e.g. "Sell 100 of 7203 Toyota Motor (¥285,000). With it you would sell 27 of
    your 30 holdings within 24 hours: 92 % of your portfolio, ¥9.7 million." in the active language."""
    params = {
        "quantity": f"{int(data['quantity']):,}",
        "symbol": data["symbol"],
        "name": data.get("name") or "",
        "amount": format_amount(data["amount"], data["currency"]),
    }
    if data["side"] == "sell":
        text = _("Sell %(quantity)s of %(symbol)s %(name)s (%(amount)s).") % params
    else:
        text = _("Buy %(quantity)s of %(symbol)s %(name)s (%(amount)s).") % params
    share = data.get("sold_share")
    if share and data.get("holdings") and "placed_amount" in data:
        split = {
            "period": _period(int(data["hours"])),
            "sold": data["sold_holdings"],
            "holdings": data["holdings"],
            "share": round(share * 100),
            "amount": format_amount(data["sold_amount"], data["currency"]),
            "placed": format_amount(data["placed_amount"], data["currency"]),
            "placed_share": round(float(data.get("placed_share") or 0) * 100),
            "held": format_amount(data["held_amount"], data["currency"]),
        }
        if data["side"] == "sell":
            text += " " + (
                _(
                    "With it you would sell %(sold)s of your %(holdings)s holdings within %(period)s: "
                    "%(share)s %% of your portfolio, %(amount)s. Of that, %(placed)s is sold already and "
                    "%(held)s, this order included, is waiting for your confirmation."
                )
                % split
            )
        elif float(data.get("placed_share") or 0) >= 0.3:
            text += " " + (
                _("Within %(period)s you have sold %(placed)s: %(placed_share)s %% of your portfolio.")
                % split
            )
        return " ".join(text.split())
    if share and data.get("holdings"):
        window = {
            "sold": data["sold_holdings"],
            "holdings": data["holdings"],
            "hours": data["hours"],
            "share": round(share * 100),
            "amount": format_amount(data["sold_amount"], data["currency"]),
        }
        if data["side"] == "sell":
            text += (
                " "
                + _(
                    "With it you would sell %(sold)s of your %(holdings)s holdings within %(hours)s hours: "
                    "%(share)s %% of your portfolio, %(amount)s."
                )
                % window
            )
        elif share >= 0.3:
            text += (
                " "
                + _(
                    "Within %(hours)s hours you sold %(sold)s of your %(holdings)s holdings: %(share)s %% of "
                    "your portfolio, %(amount)s."
                )
                % window
            )
    return " ".join(text.split())


def confirmation_json(held: HeldOrder) -> dict[str, Any]:
    """CONTRACTS section 3's ``confirmation``: ``{id, summary, methods, expires_at}`` (plus ``reasons``)."""
    return {
        "id": str(held.pk),
        "summary": render_summary(held.summary_data) if held.summary_data else held.summary,
        "methods": list(held.methods),
        "expires_at": held.expires_at,
        "reasons": [r.get("code") for r in held.reasons],
    }


# -- confirming ---------------------------------------------------------------------------------------------


def _parse_id(confirmation_id: object) -> uuid.UUID:
    try:
        return uuid.UUID(str(confirmation_id))
    except (ValueError, TypeError, AttributeError):
        raise ConfirmationNotFound() from None


def pending_for(request: HttpRequest, confirmation_id: object) -> HeldOrder:
    """The held order ``confirmation_id`` of the signed-in customer *in this session*, still pending.

    Raises :class:`ConfirmationNotFound` (unknown, another customer's, another session's) or
    :class:`ConfirmationGone` (confirmed, cancelled, expired).
    """
    held = owned_confirmation(request, confirmation_id)
    binding = _session_binding(request, create=False)
    # SECURITY: only the session that placed the order may confirm it; others cannot even see it exists.
    if not binding or not held.session_binding or not secrets.compare_digest(binding, held.session_binding):
        raise ConfirmationNotFound()
    if held.status != HeldOrder.Status.PENDING:
        raise ConfirmationGone()
    if held.expires_at <= timezone.now():
        _close(held.pk, HeldOrder.Status.EXPIRED)
        raise ConfirmationGone(_("This order expired before it was confirmed."), code="expired")
    return held


def owned_confirmation(request: HttpRequest, confirmation_id: object) -> HeldOrder:
    """The signed-in customer's held order ``confirmation_id`` in any state, from any of their sessions
    (to show or cancel it). Raises :class:`ConfirmationNotFound` for anyone else's or a malformed id."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        raise ConfirmationNotFound()
    held = HeldOrder.objects.filter(pk=_parse_id(confirmation_id), user_id=user.pk).first()
    if held is None:
        raise ConfirmationNotFound()
    return held


def confirmation_options(request: HttpRequest, *, confirmation_id: object) -> dict[str, Any]:
    """WebAuthn request options whose challenge is ``sha256(nonce || digest)`` of this held order."""
    from authguard.factors.passkeys import authentication_options

    held = pending_for(request, confirmation_id)
    if "passkey" not in held.methods:
        raise ConfirmationInvalid(_("This order cannot be confirmed with a passkey."), code="method")
    stored_order(held)
    # A fresh nonce per attempt: every challenge is single-use, and a failed try must not burn the order.
    held.nonce = secrets.token_hex(16)
    HeldOrder.objects.filter(pk=held.pk, status=HeldOrder.Status.PENDING).update(nonce=held.nonce)
    try:
        return authentication_options(
            request, purpose=f"confirm:{held.pk}", user=request.user, challenge=challenge_for(held)
        )
    except InvalidCredential as exc:
        raise ConfirmationInvalid(exc.message, code=exc.code) from None


def _signed_challenge(credential: object) -> bytes | None:
    """The challenge inside the assertion's ``clientDataJSON``, or ``None`` when unreadable."""
    from authguard.factors.passkeys import b64url_decode

    try:
        if isinstance(credential, str):
            credential = json.loads(credential)
        raw = credential["response"]["clientDataJSON"]  # type: ignore[index]
        client_data = json.loads(b64url_decode(raw, max_chars=8 * 1024))
        return b64url_decode(client_data["challenge"], max_chars=256)
    except (InvalidCredential, ValueError, TypeError, KeyError, AttributeError):
        return None


def confirm_with_passkey(request: HttpRequest, *, confirmation_id: object, credential: object) -> Confirmed:
    """Confirm with the customer's passkey and execute the stored order exactly once."""
    from authguard.factors.base import note_account_failure
    from authguard.factors.passkeys import verify_authentication

    held = pending_for(request, confirmation_id)
    if "passkey" not in held.methods:
        raise ConfirmationInvalid(_("This order cannot be confirmed with a passkey."), code="method")
    stored_order(held)
    # SECURITY: dynamic linking: the signed challenge must be the one derived from this exact order.
    signed = _signed_challenge(credential)
    if signed is None or not secrets.compare_digest(signed, challenge_for(held)):
        raise ConfirmationInvalid(_("This passkey response is not for this order."), code="challenge")
    if not isinstance(credential, dict | str):
        raise ConfirmationInvalid(code="malformed")
    try:
        device = verify_authentication(
            request, purpose=f"confirm:{held.pk}", credential=credential, user=request.user
        )
    except InvalidCredential as exc:
        # Like a failed step-up, a failed confirmation counts towards the account's lock.
        note_account_failure(request.user, kind="passkey")
        raise ConfirmationInvalid(exc.message, code=exc.code) from None
    if factor_cooling_off(device):
        raise ConfirmationInvalid(
            _("This passkey was added too recently to confirm orders."), code="cooling_off"
        )
    _require_older_than(device, held)
    evidence = json.loads(credential) if isinstance(credential, str) else credential
    return _execute(request.user, held.pk, method="passkey", device=device, assertion=evidence)


def confirm_with_totp(request: HttpRequest, *, confirmation_id: object, code: object) -> Confirmed:
    """Confirm with a TOTP code, where this confirmation's ``methods`` allow it.

    Raises :class:`ConfirmationThrottled` while django-otp's back-off refuses attempts (after a wrong code),
    and the other :class:`ConfirmationError` kinds as :func:`confirm_with_passkey` does.
    """
    from authguard.factors.base import verify_totp

    held = pending_for(request, confirmation_id)
    if "totp" not in held.methods:
        raise ConfirmationInvalid(_("This order must be confirmed with your passkey."), code="method")
    stored_order(held)
    if not isinstance(code, str) or not code.strip().isdigit() or len(code.strip()) > 10:
        raise ConfirmationInvalid(_("Enter the code from your authenticator app."), code="malformed")
    try:
        device = verify_totp(request.user, code.strip(), request=request)
    except Throttled as exc:
        raise ConfirmationThrottled(exc.message, code=exc.code, retry_after=exc.retry_after) from None
    except AuthguardError as exc:
        raise ConfirmationInvalid(exc.message, code=exc.code) from None
    if device is None:
        raise ConfirmationInvalid(_("The code is not correct."), code="wrong_code")
    if factor_cooling_off(device):
        raise ConfirmationInvalid(
            _("This authenticator was added too recently to confirm orders."), code="cooling_off"
        )
    _require_older_than(device, held)
    return _execute(request.user, held.pk, method="totp", device=device, assertion=None)


def _require_older_than(device: Any, held: HeldOrder) -> None:
    """SECURITY: only a factor the customer had before the order was held may confirm it. Whoever holds a
    hijacked session (and relays one-time codes) must not add a passkey of their own and confirm with it.
    The factor's age is when it was *confirmed*: an enrollment begun before the hold and finished after it
    is younger than the order."""
    from authguard.factors.lifecycle import factor_confirmed_at

    confirmed = factor_confirmed_at(device)
    if confirmed is None or confirmed >= held.created_at:
        raise ConfirmationInvalid(
            _("Confirm with a passkey or authenticator you had before this order was placed."),
            code="factor_too_new",
        )


def _execute(user: Any, held_id: uuid.UUID, *, method: str, device: Any, assertion: Any) -> Confirmed:
    """Under the customer's and the held order's row locks: recheck, mark used, execute once."""
    failure: ConfirmationError | None = None
    with transaction.atomic():
        lock_customer(user)
        held = HeldOrder.objects.select_for_update().select_related("guarded").get(pk=held_id)
        now = timezone.now()
        # SECURITY: single use: whoever takes the lock second finds it no longer pending.
        if held.status != HeldOrder.Status.PENDING:
            raise ConfirmationGone()
        if held.expires_at <= now:
            _close_locked(held, HeldOrder.Status.EXPIRED, now=now)
            failure = ConfirmationGone(_("This order expired before it was confirmed."), code="expired")
        else:
            try:
                stored_order(held)  # SECURITY: rechecked under the lock (battery case 36)
            except ConfirmationInvalid as exc:
                _close_locked(held, HeldOrder.Status.FAILED, now=now, reason=exc.message)
                failure = exc
        if failure is None:
            held.confirmed_at = now
            held.confirmed_method = method
            held.confirmed_device = str(getattr(device, "persistent_id", ""))[:255]
            held.assertion = assertion
            try:
                with transaction.atomic():  # the executor's writes are undone if it refuses
                    ref = _executor().execute(held)
            except OrderNotExecutable as exc:
                _close_locked(held, HeldOrder.Status.FAILED, now=now, reason=exc.message)
                failure = ConfirmationInvalid(exc.message, code="not_executable")
            else:
                held.status = HeldOrder.Status.CONFIRMED
                held.closed_at = now
                held.result_ref = "" if ref is None else str(ref)[:64]
                held.save()
                GuardedOrder.objects.filter(pk=held.guarded_id).update(status=GuardStatus.PLACED)
    if failure is not None:
        raise failure
    logger.info("authguard held order %s confirmed with %s", held.pk, method)
    return Confirmed(held, held.result_ref)


# -- closing ----------------------------------------------------------------------------------------------

# Keyed by the plain status string the close functions take (equal to the members).
_LEDGER_STATUS: dict[str, GuardStatus] = {
    HeldOrder.Status.CANCELLED: GuardStatus.CANCELLED,
    HeldOrder.Status.EXPIRED: GuardStatus.EXPIRED,
    HeldOrder.Status.FAILED: GuardStatus.FAILED,
}


def staff_cancel(held: HeldOrder, *, by: Any, reason: str) -> bool:
    """Cancel a pending held order for the security desk; False if it was no longer pending.

    The same closing path as expiry (under the held order's row lock, ledger and portal updated). Who and
    why go to the admin log; the customer is told that the security desk cancelled the order, never who
    or why. SECURITY: staff names and internal notes never reach the customer's pages or mail.
    """
    from authguard.console.approvals import audit

    now = timezone.now()
    with transaction.atomic():
        if not _close(held.pk, HeldOrder.Status.CANCELLED):
            return False
        audit(by, held, f"cancelled: {reason}")
        _notify(
            held.user,
            "staff_action",
            context={
                "action": "cancel_order",
                "stage": "executed",
                "what": str(held.summary)[:120],
                "four_eyes": False,
                "time": now,
            },
            dedupe_key=f"staff:cancel_order:{held.pk}",
        )
    return True


def staff_release(held: HeldOrder, *, by: Any, reason: str) -> Confirmed:
    """Execute a pending held order on the desk's word (the customer confirmed it to the desk out of band).

    The customer's own execution path (the customer's and the held order's row locks, the stored order
    re-checked, executed exactly once), recorded as confirmed with method ``staff``. Raises
    :class:`ConfirmationError` when the order is no longer pending or cannot be executed, and always under
    the JSDA preset.
    """
    if app_settings.JSDA:
        # SECURITY: under the JSDA preset only the customer's own passkey confirms an order; a phone call to
        # the desk is exactly the channel a social engineer would use.
        raise ConfirmationInvalid(
            _("Under the JSDA 2025 preset only the customer's passkey can confirm a held order."),
            code="preset",
        )
    logger.info("authguard held order %s released by staff %s: %s", held.pk, by.get_username(), reason)
    return _execute(held.user, held.pk, method="staff", device=None, assertion=None)


def _close_locked(held: HeldOrder, status: str, *, now: datetime, reason: str = "") -> None:
    held.status = status
    held.closed_at = now
    held.failure = str(reason)[:300]
    held.save(
        update_fields=[
            "status",
            "closed_at",
            "failure",
            "confirmed_at",
            "confirmed_method",
            "confirmed_device",
            "assertion",
        ]
    )
    GuardedOrder.objects.filter(pk=held.guarded_id).update(status=_LEDGER_STATUS[status])
    _executor().release(held, status=status)


def _close(held_id: uuid.UUID, status: str, *, reason: str = "") -> bool:
    """Close a pending held order (cancelled, expired, failed) under its lock; False if it was not pending."""
    with transaction.atomic():
        held = HeldOrder.objects.select_for_update().filter(pk=held_id).first()
        if held is None or held.status != HeldOrder.Status.PENDING:
            return False
        _close_locked(held, status, now=timezone.now(), reason=reason)
    return True


def cancel(request: HttpRequest, *, confirmation_id: object) -> None:
    """The customer cancels a held order (from any of their sessions). Raises if it is not pending."""
    held = owned_confirmation(request, confirmation_id)
    if not _close(held.pk, HeldOrder.Status.CANCELLED):
        raise ConfirmationGone()


def expire_due(*, now: datetime | None = None, user: Any = None) -> int:
    """Expire every pending held order past its ``expires_at`` (only ``user``'s when given); return how many.

    The periodic task calls it for everyone; the order path and the pages that list held orders call it for
    one customer, so held orders expire on time even where no Celery beat runs.
    """
    now = now or timezone.now()
    due_rows = HeldOrder.objects.filter(status=HeldOrder.Status.PENDING, expires_at__lte=now)
    if user is not None:
        due_rows = due_rows.filter(user_id=user.pk)
    due = list(due_rows.values_list("pk", flat=True))
    return sum(1 for pk in due if _close(pk, HeldOrder.Status.EXPIRED))


def pending_orders(user: Any, *, now: datetime | None = None) -> list[HeldOrder]:
    """The customer's held orders still waiting for confirmation, oldest first (those past their deadline
    are expired first, so a page listing them never shows one that can no longer be confirmed)."""
    if user is None or getattr(user, "pk", None) is None:
        return []
    now = now or timezone.now()
    expire_due(user=user, now=now)
    rows = HeldOrder.objects.filter(user_id=user.pk, status=HeldOrder.Status.PENDING, expires_at__gt=now)
    return list(rows.order_by("created_at"))


__all__ = [
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
    "stored_order",
    "submit_order",
]
