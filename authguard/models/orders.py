"""The order guard's records: every guarded order, the holds waiting for confirmation, campaign flags."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from authguard.choices import GuardStatus

__all__ = [
    "CampaignFlag",
    "GuardedOrder",
    "HeldOrder",
    "OrderDayTotal",
]


class GuardedOrder(models.Model):
    """The order guard's ledger: every order it let through or held, valued in the portfolio's currency.

    One indexed query over ``(user, created_at)`` sums a rolling window, whatever the portal's own tables.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="authguard_guarded_orders",
        verbose_name=_("user"),
    )
    created_at = models.DateTimeField(_("time"), db_index=True)
    side = models.CharField(_("side"), max_length=4)
    symbol = models.CharField(_("symbol"), max_length=32, db_index=True)
    quantity = models.PositiveBigIntegerField(_("quantity"))
    amount = models.DecimalField(_("amount"), max_digits=20, decimal_places=2)
    currency = models.CharField(_("currency"), max_length=3)
    status = models.CharField(_("status"), max_length=10, choices=GuardStatus.choices, db_index=True)
    illiquid = models.BooleanField(_("illiquid instrument"), default=False)
    risky_session = models.BooleanField(_("from a risky session"), default=False)
    reasons = models.JSONField(_("reason codes"), default=list, blank=True)
    # How thinly traded the instrument was when the order was checked: 0 (liquid) to 1 (illiquid), and the
    # amount weighted by it, so one SUM over the ledger gives the account's illiquid exposure over days.
    illiquidity = models.FloatField(_("illiquidity (0 to 1)"), default=0.0)
    illiquid_amount = models.DecimalField(
        _("amount weighted by illiquidity"), max_digits=20, decimal_places=2, default=0
    )
    # SECURITY: set only by authguard.orders.rollup.roll_up, in the transaction that adds the row to its day's
    # OrderDayTotal: a rolled row is counted from there, an unrolled one from the ledger, never both.
    rolled = models.BooleanField(_("summed into its day's totals"), default=False)
    # Placed from a session a passkey vouched for (authguard.orders.vouching): the long count of thin buys
    # reads only the others. False for every row from before the count (migration 0032): counted.
    vouched = models.BooleanField(_("from a session a passkey vouched for"), default=False)
    # The keyed hash of the placing browser's device cookie ("" without one; "*" for rows from before it was
    # kept, migration 0033): a confirmation of the long count's hold forgives only its own browser's buys.
    device_hash = models.CharField(_("placing browser"), max_length=64, blank=True, default="")

    class Meta:
        verbose_name = _("guarded order")
        verbose_name_plural = _("guarded orders")
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["user", "created_at"], name="authguard_guarded_user_time"),
            models.Index(fields=["symbol", "created_at"], name="authguard_guarded_symbol_time"),
            # What a check reads of the ledger: the rows not yet in an OrderDayTotal.
            models.Index(
                fields=["user", "created_at"],
                condition=models.Q(rolled=False),
                name="authguard_guarded_unrolled",
            ),
            # How thinly an instrument traded this month (orders.exposure.ledger_totals): only the
            # rows that weighed at least 0.25, so a liquid stock's thousands of orders are never read.
            models.Index(
                fields=["symbol", "created_at"],
                condition=models.Q(illiquidity__gte=0.25),
                name="authguard_guarded_thin",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} {self.side} {self.quantity} {self.symbol} ({self.status})"


class OrderDayTotal(models.Model):
    """An account's placed orders of one UTC day, summed once the day is over.

    Written by :mod:`authguard.orders.rollup` only. A check then reads at most one row per day of its longest
    window, however many orders the account placed (issue 11, acceptance 3). ``symbol`` is empty on the
    account's row; a row per bought symbol holds that symbol's buys (``buys`` only).
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", verbose_name=_("user")
    )
    day = models.DateField(_("day (UTC)"))
    symbol = models.CharField(_("symbol"), max_length=32, blank=True)
    sells = models.DecimalField(_("sells"), max_digits=24, decimal_places=2, default=0)
    buys = models.DecimalField(_("buys"), max_digits=24, decimal_places=2, default=0)
    illiquid_buys = models.PositiveIntegerField(_("buys of illiquid instruments"), default=0)
    illiquid_amount = models.DecimalField(
        _("buys weighted by illiquidity"), max_digits=24, decimal_places=2, default=0
    )
    unvouched_illiquid_amount = models.DecimalField(
        _("of them from sessions no passkey vouched for"), max_digits=24, decimal_places=2, default=0
    )
    # What the sell limits' base takes out for the day's buys beyond ``buys`` (the account's row only): each
    # buy's ``illiquid_amount`` above its ``amount``, i.e. a thin stock bought below its long-run price at
    # that price (red team, round seventy-six), so a rolled-up day counts its buys as its ledger rows did.
    counted_extra = models.DecimalField(
        _("buys counted above their amount"), max_digits=24, decimal_places=2, default=0
    )

    class Meta:
        verbose_name = _("day of placed orders")
        verbose_name_plural = _("days of placed orders")
        constraints = [
            models.UniqueConstraint(fields=["user", "symbol", "day"], name="authguard_order_day_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.user} {self.day} {self.symbol or '*'}"


class HeldOrder(models.Model):
    """An order held until its customer confirms it: the exact canonical order, bound to one session.

    The passkey challenge is ``sha256(nonce || digest)`` (dynamic linking), so a signature confirms this
    order and nothing else; the signed assertion is kept as evidence.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("waiting for confirmation")
        CONFIRMED = "confirmed", _("confirmed and executed")
        CANCELLED = "cancelled", _("cancelled")
        EXPIRED = "expired", _("expired")
        FAILED = "failed", _("could not be executed")

    id = models.UUIDField(primary_key=True, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="authguard_held_orders",
        verbose_name=_("user"),
    )
    guarded = models.OneToOneField(
        GuardedOrder, on_delete=models.CASCADE, related_name="held", verbose_name=_("ledger entry")
    )
    canonical = models.TextField(_("canonical order (JSON)"))
    digest = models.CharField(_("SHA-256 of the canonical order"), max_length=64)
    nonce = models.CharField(_("nonce"), max_length=64)
    session_binding = models.CharField(_("session binding (hash)"), max_length=64)
    methods = models.JSONField(_("methods allowed"), default=list)
    summary = models.TextField(_("summary"))
    summary_data = models.JSONField(_("summary data"), default=dict)
    reasons = models.JSONField(_("reasons"), default=list)
    severity = models.PositiveSmallIntegerField(_("severity"), default=0)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, db_index=True)
    created_at = models.DateTimeField(_("held at"))
    expires_at = models.DateTimeField(_("expires at"), db_index=True)
    confirmed_at = models.DateTimeField(_("confirmed at"), null=True, blank=True)
    confirmed_method = models.CharField(_("confirmed with"), max_length=16, blank=True)
    confirmed_device = models.CharField(_("confirming device"), max_length=255, blank=True)
    assertion = models.JSONField(_("signed assertion (evidence)"), null=True, blank=True)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    portal_ref = models.CharField(_("portal's order reference"), max_length=64, blank=True)
    result_ref = models.CharField(_("portal's execution reference"), max_length=64, blank=True)
    failure = models.CharField(_("why it could not be executed"), max_length=300, blank=True)

    class Meta:
        verbose_name = _("held order")
        verbose_name_plural = _("held orders")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.summary} ({self.status})"


class CampaignFlag(models.Model):
    """An instrument that many accounts bought within a short window: further buys are held for everyone.

    Each flag keeps which arm of the ``Campaign`` rule raised it and what it showed of the instrument's
    month (the accounts, their placed buys and that value's share of a day's traded value), whichever arm
    raised it. An admin's clearing starts the month's count again only for a flag that showed the month over
    its share (``month_over``): from its ``flagged_at`` (``month_judged_until``), the buys it showed.
    """

    class Arm(models.TextChoices):
        COUNT = "count", _("accounts within hours")
        VOLUME = "volume", _("risky accounts' volume")
        SLOW = "slow", _("accounts' volume within the week")
        MONTH = "month", _("accounts' volume within the month")

    symbol = models.CharField(_("symbol"), max_length=32, unique=True)
    flagged_at = models.DateTimeField(_("flagged at"))
    accounts = models.PositiveIntegerField(_("accounts buying"))
    risky_accounts = models.PositiveIntegerField(_("of them from risky sessions"))
    window_hours = models.PositiveIntegerField(_("window (hours)"))
    arm = models.CharField(_("raised by"), max_length=16, choices=Arm.choices, blank=True)
    month_hours = models.PositiveIntegerField(_("month (hours)"), null=True, blank=True)
    month_accounts = models.PositiveIntegerField(_("accounts buying within the month"), null=True, blank=True)
    month_volume = models.DecimalField(
        _("bought within the month"), max_digits=24, decimal_places=2, null=True, blank=True
    )
    month_share = models.DecimalField(
        _("month's buys in days of traded value"), max_digits=20, decimal_places=4, null=True, blank=True
    )
    month_over = models.BooleanField(_("month over its share"), default=False)
    active = models.BooleanField(_("active"), default=True)
    cleared_at = models.DateTimeField(_("cleared at"), null=True, blank=True)
    cleared_by = models.CharField(_("cleared by"), max_length=150, blank=True)
    # SECURITY: the month's count starts here, not at any clearing: set by the clearing of a flag that showed
    # the month over its share only (red team, round seventy-five).
    month_judged_until = models.DateTimeField(_("month judged until"), null=True, blank=True)

    class Meta:
        verbose_name = _("campaign flag")
        verbose_name_plural = _("campaign flags")
        ordering = ["-flagged_at"]

    def __str__(self) -> str:
        return f"{self.symbol}: {self.accounts} accounts"
