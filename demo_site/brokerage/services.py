"""The brokerage's business logic: the one place that moves money and shares.

The HTML views, the JSON API and the management commands all call these functions; none of them touches the
models' money fields directly. Every function that writes runs in one transaction, so a failure halfway
leaves nothing half-written.

This module places an order through authguard's order guard (:func:`submit_order`: HTML and JSON order entry
both go through it) and re-exports, under the names callers use (``services.X``, and the hooks' paths in
``demo_site/settings.py``), the rest of the business logic from the modules that hold it:

- :mod:`~demo_site.brokerage.yen`: the fixed demo rate :data:`USD_JPY` and yen amounts (:func:`to_jpy`,
  :func:`format_money`);
- :mod:`~demo_site.brokerage.market_data`: the instruments, and :func:`sync_instruments` with the code
  changes and splits a day's rows bring (``_create_instrument``, ``_update_instrument``, ``_apply_split``);
- :mod:`~demo_site.brokerage.accounts`: opening and resetting an account, its portfolio and order history;
- :mod:`~demo_site.brokerage.orders`: validating, executing (under row locks), holding and placing an order;
- :mod:`~demo_site.brokerage.guard_hooks`: the order guard's portfolio, instrument and executor hooks.

Cash is in yen. US stocks are priced in dollars and converted at the fixed demo rate :data:`USD_JPY`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _

from authguard.models import HeldOrder
from authguard.orders import guard as guard_orders
from authguard.orders.guard import OrderIntent

from .accounts import MAX_CASH as MAX_CASH
from .accounts import AccountError as AccountError
from .accounts import Holding as Holding
from .accounts import Portfolio as Portfolio
from .accounts import open_account as open_account
from .accounts import order_history as order_history
from .accounts import portfolio as portfolio
from .accounts import reset_portfolio as reset_portfolio
from .code_change import CodeChangeError as CodeChangeError
from .code_change import CorporateActionError as CorporateActionError
from .guard_hooks import HeldOrderExecutor as HeldOrderExecutor
from .guard_hooks import guard_instrument as guard_instrument
from .guard_hooks import guard_portfolio as guard_portfolio
from .guard_hooks import held_order_executor as held_order_executor
from .guard_hooks import instrument_info
from .market_data import history_days as history_days
from .market_data import list_instruments as list_instruments
from .market_data import sync_instruments as sync_instruments
from .models import Account, Order, OrderStatus
from .models import Instrument as Instrument
from .orders import MAX_ORDER_QUANTITY as MAX_ORDER_QUANTITY
from .orders import OrderDraft as OrderDraft
from .orders import OrderRejected as OrderRejected
from .orders import PriceMoved as PriceMoved
from .orders import SharesChanged as SharesChanged
from .orders import execute_order, hold_order, validate_order
from .orders import place_order as place_order
from .yen import CENTS as CENTS
from .yen import JPY_PER_UNIT as JPY_PER_UNIT
from .yen import USD_JPY as USD_JPY
from .yen import format_money as format_money
from .yen import to_jpy as to_jpy

# -- order entry through the order guard (authguard.orders.guard)
# -----------------------------------------------------------------
#
# The one call that places an order through the guard: HTML and JSON order entry both go through
# :func:`submit_order`. It reads :func:`order_intent` from this module, where the tests replace it to move
# the market between the quote and the fill (tests/test_orders_fill_walkarounds.py), so the two stay here.

#: Longest ``Idempotency-Key`` accepted (the column is 64 wide).
MAX_IDEMPOTENCY_KEY = 64
_IDEMPOTENCY_RE = re.compile(r"[A-Za-z0-9_.:\-]{1,64}")


def order_intent(user: AbstractBaseUser | AnonymousUser, draft: OrderDraft) -> OrderIntent:
    """The guard's description of a validated order."""
    account_id = Account.objects.filter(user_id=user.pk).values_list("pk", flat=True).first()
    return OrderIntent(
        account=str(account_id),
        side=draft.side,
        symbol=draft.symbol,
        quantity=draft.quantity,
        price=draft.price,
        currency=draft.currency,
        market=draft.market,
    )


def idempotency_key(value: object) -> str | None:
    """A usable ``Idempotency-Key`` header value, ``None`` when absent; raises for a malformed one."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not _IDEMPOTENCY_RE.fullmatch(value):
        raise OrderRejected(
            {"idempotency_key": [_("The Idempotency-Key must be 1 to 64 letters, digits or ._:-")]}
        )
    return value


@dataclass(frozen=True)
class Submitted:
    """What :func:`submit_order` did: ``order`` is ``placed`` or ``held`` (then ``confirmation`` is set)."""

    order: Order
    confirmation: HeldOrder | None = None
    replayed: bool = False

    @property
    def held(self) -> bool:
        return self.confirmation is not None


def submit_order(
    request: HttpRequest,
    *,
    side: object,
    symbol: object,
    quantity: object,
    idempotency_key: str | None = None,
) -> Submitted:
    """Validate an order and submit it through authguard's order guard: placed at once, or held until the
    customer confirms it. The same ``idempotency_key`` answers with the first order, never a second one.

    Raises :class:`OrderRejected` (invalid, unaffordable) or ``authguard.orders.guard.OrderDenied``.
    """
    user = request.user
    draft = validate_order(user, side=side, symbol=symbol, quantity=quantity)
    intent = order_intent(user, draft)
    with transaction.atomic():
        guard_orders.lock_customer(user)
        if idempotency_key is not None:
            # SECURITY: checked under the customer's lock, so parallel retries find the first order.
            existing = Order.objects.filter(account__user_id=user.pk, idempotency_key=idempotency_key).first()
            if existing is not None:
                held = HeldOrder.objects.filter(user_id=user.pk, portal_ref=str(existing.pk)).first()
                return Submitted(existing, held, replayed=True)
        outcome = guard_orders.submit_order(
            request,
            user=user,
            intent=intent,
            instrument=instrument_info(draft),
            # The guard's approval: executed as a limit order at the price it checked.
            place=lambda approval: execute_order(
                user, draft, approval=approval, idempotency_key=idempotency_key
            ),
            hold=lambda decision: hold_order(
                user, draft, reason=", ".join(decision.reasons), idempotency_key=idempotency_key
            ),
        )
    if isinstance(outcome, guard_orders.Held):
        return Submitted(outcome.portal_result, outcome.confirmation)
    return Submitted(outcome.result)


def pending_confirmations(
    user: AbstractBaseUser | AnonymousUser, orders: Iterable[Order]
) -> dict[int, HeldOrder]:
    """The pending authguard confirmation of each held order in ``orders``, by order id (none past its
    deadline: those are expired here first)."""
    if user.pk is not None:
        guard_orders.expire_due(user=user)
    refs = [str(o.pk) for o in orders if o.status == OrderStatus.HELD]
    if not refs or user.pk is None:
        return {}
    rows = HeldOrder.objects.filter(
        user_id=user.pk, portal_ref__in=refs, status=HeldOrder.Status.PENDING, expires_at__gt=timezone.now()
    )
    return {int(h.portal_ref): h for h in rows}
