"""The demo brokerage's data: instruments, cash accounts, positions and orders.

Money is always a ``Decimal``. Cash is held in yen; an instrument's price is in its own currency (yen for
Tokyo listings, US dollars for US listings) and :mod:`demo_site.brokerage.yen` converts at a fixed demo rate.
All business rules live in ``services`` and the modules it gathers; these models only hold data and
database-level invariants.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Market(models.TextChoices):
    """Where an instrument is listed."""

    TSE_PRIME = "TSE Prime", _("TSE Prime")
    TSE_STANDARD = "TSE Standard", _("TSE Standard")
    TSE_GROWTH = "TSE Growth", _("TSE Growth")
    NASDAQ = "NASDAQ", _("NASDAQ")
    NYSE = "NYSE", _("NYSE")


class Currency(models.TextChoices):
    """Currencies an instrument can be priced in."""

    JPY = "JPY", _("Japanese yen")
    USD = "USD", _("US dollar")


class Side(models.TextChoices):
    """Direction of an order."""

    BUY = "buy", _("Buy")
    SELL = "sell", _("Sell")


class OrderStatus(models.TextChoices):
    """Life cycle of an order: placed (executed) at once, or held for confirmation first."""

    PLACED = "placed", _("Placed")
    HELD = "held", _("Held for confirmation")
    CANCELLED = "cancelled", _("Cancelled")
    EXPIRED = "expired", _("Expired")


class Instrument(models.Model):
    """A listed stock the portal trades, with a demo price and its average daily volume."""

    symbol = models.CharField(_("symbol"), max_length=16, unique=True)
    name = models.CharField(_("name"), max_length=200)
    market = models.CharField(_("market"), max_length=16, choices=Market.choices)
    currency = models.CharField(_("currency"), max_length=3, choices=Currency.choices)
    price = models.DecimalField(_("price"), max_digits=14, decimal_places=2)
    avg_daily_volume = models.PositiveBigIntegerField(
        _("average daily volume"), help_text=_("Shares traded on an average day.")
    )
    listing_country = models.CharField(_("listing country"), max_length=2, help_text=_("ISO 3166 code."))
    is_small_cap = models.BooleanField(
        _("illiquid small cap"),
        default=False,
        help_text=_("Thinly traded: the kind of stock hijacked accounts are made to buy."),
    )
    # SECURITY: a pump lifts the price and the volume of the day; the long-run value it cannot lift keeps a
    # pumped stock that no customer traded in the month before thin (red team, round nineteen).
    baseline_daily_value = models.DecimalField(
        _("long-run daily traded value"),
        max_digits=20,
        decimal_places=2,
        null=True,
        blank=True,
        help_text=_(
            "Yen traded on an average day over the long run (for example the median of the last 250 trading "
            "days, from market data). The order guard reads the lower of this and the current daily value."
        ),
    )
    # SECURITY: in a thin stock the gang is the market for the day and its trades set the day's price; the
    # long-run price they cannot move lets the guard hold a sell into its crash or a buy into its pump (red
    # team, round twenty-three).
    reference_price = models.DecimalField(
        _("long-run price"),
        max_digits=14,
        decimal_places=2,
        null=True,
        blank=True,
        help_text=_(
            "The usual price per share over the long run, in the instrument's currency (for example the "
            "median close of the last 20 trading days, from market data). The order guard holds an order of "
            "a thinly traded stock whose price is far from it."
        ),
    )
    # SECURITY: a new listing's (or a new code's) long run is its first days, which a gang's wash trades can
    # print: the order guard weighs it as illiquid until its data cover a month (red team, round fifty-seven).
    history_since = models.DateField(
        _("long-run data since"),
        null=True,
        blank=True,
        help_text=_(
            "The first trading day of the long-run figures (its listing, or the first day of market data "
            "under this or a former code). Empty: long listed. Until they cover 20 trading days the order "
            "guard treats the stock as thinly traded."
        ),
    )
    # SECURITY: a code change is no new instrument: the order guard reads the orders and the campaign flag of
    # the codes it traded under before as this one's (red team, round sixty-six).
    former_symbols = models.CharField(
        _("former codes"),
        max_length=64,
        blank=True,
        help_text=_("The codes it traded under before, newest first, separated by spaces."),
    )
    # SECURITY: a former code trades no more: orders for it are refused, and a later listing on the same code
    # is a new company with no history (red team, round sixty-nine: the old code stayed tradable beside the
    # new one, and a reused code took over Toyota's long run).
    succeeded_by = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("code changed to"),
    )
    # SECURITY: an order's quantity is in the shares of the day it was checked; a split or consolidation
    # changes what a share is, so every one synced counts here and an order checked before it executes
    # nothing (red team, round seventy-one: a held sell of 500 confirmed after a ten-into-one consolidation
    # sold 500 new shares, ten times the amount she confirmed).
    share_basis = models.PositiveIntegerField(
        _("share basis"),
        default=0,
        help_text=_("How many splits and consolidations the demo has applied to it."),
    )
    # SECURITY: a corporate action applies once: the same day's sync run a second time split every position
    # and the long-run price a second time (red team, round seventy-four). The day's are kept, and a row
    # that repeats one of them on that day rescales nothing.
    corporate_actions_on = models.DateField(
        _("corporate actions on"),
        null=True,
        blank=True,
        help_text=_(
            "The day of the last splits, consolidations and code changes (a plain one as x 1) applied to it."
        ),
    )
    corporate_actions = models.TextField(
        _("corporate actions"),
        blank=True,
        help_text=_(
            "Those of that day, one a line: a split or consolidation ('split 1/10': new shares per old "
            "share) or a code change with its ratio ('7Z2A x 13/60': shares of this code per former share)."
        ),
    )

    class Meta:
        ordering = ["symbol"]
        verbose_name = _("instrument")
        verbose_name_plural = _("instruments")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(price__gt=0), name="brokerage_instrument_price_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.symbol} {self.name}"


class Account(models.Model):
    """A customer's trading account: one per user, holding yen cash."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="brokerage_account",
        verbose_name=_("user"),
    )
    cash = models.DecimalField(_("cash (JPY)"), max_digits=18, decimal_places=2, default=0)
    created_at = models.DateTimeField(_("opened at"), auto_now_add=True)

    class Meta:
        verbose_name = _("account")
        verbose_name_plural = _("accounts")
        constraints = [
            # SECURITY: the database itself refuses an overdrawn account, whatever the code above it does.
            models.CheckConstraint(
                condition=models.Q(cash__gte=0), name="brokerage_account_cash_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return str(self.user)


class Position(models.Model):
    """How many shares of one instrument an account holds. A position sold down to zero is deleted."""

    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, related_name="positions", verbose_name=_("account")
    )
    instrument = models.ForeignKey(
        Instrument, on_delete=models.PROTECT, related_name="positions", verbose_name=_("instrument")
    )
    quantity = models.PositiveBigIntegerField(_("quantity"))

    class Meta:
        ordering = ["account", "instrument__symbol"]
        verbose_name = _("position")
        verbose_name_plural = _("positions")
        constraints = [
            models.UniqueConstraint(fields=["account", "instrument"], name="brokerage_position_unique"),
            models.CheckConstraint(
                condition=models.Q(quantity__gt=0), name="brokerage_position_quantity_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.account}: {self.quantity} × {self.instrument.symbol}"


class Order(models.Model):
    """A market order. ``placed`` orders are executed; ``held`` ones wait for the customer's confirmation.

    ``price`` and ``amount_jpy`` are the execution price and the yen amount for a placed order, and the quote
    at the time of holding for a held one (replaced on execution).
    """

    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, related_name="orders", verbose_name=_("account")
    )
    side = models.CharField(_("side"), max_length=4, choices=Side.choices)
    instrument = models.ForeignKey(
        Instrument, on_delete=models.PROTECT, related_name="orders", verbose_name=_("instrument")
    )
    quantity = models.PositiveBigIntegerField(_("quantity"))
    price = models.DecimalField(_("price"), max_digits=14, decimal_places=2)
    currency = models.CharField(_("currency"), max_length=3, choices=Currency.choices)
    amount_jpy = models.DecimalField(_("amount (JPY)"), max_digits=18, decimal_places=2)
    status = models.CharField(_("status"), max_length=16, choices=OrderStatus.choices, db_index=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)
    # Filled in by later work (the order guard, confirmations, idempotent submission); empty until then.
    executed_at = models.DateTimeField(_("executed at"), null=True, blank=True)
    status_changed_at = models.DateTimeField(_("status changed at"), null=True, blank=True)
    status_reason = models.CharField(_("status reason"), max_length=200, blank=True, default="")
    idempotency_key = models.CharField(_("idempotency key"), max_length=64, null=True, blank=True)
    # SECURITY: the instrument's share basis when the order was checked: it executes in those shares only.
    share_basis = models.PositiveIntegerField(_("share basis"), default=0)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("order")
        verbose_name_plural = _("orders")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(quantity__gt=0), name="brokerage_order_quantity_positive"
            ),
            # SECURITY: a resubmitted request with the same key can never create a second order.
            models.UniqueConstraint(
                fields=["account", "idempotency_key"],
                condition=models.Q(idempotency_key__isnull=False),
                name="brokerage_order_idempotency_key_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.side} {self.quantity} × {self.instrument.symbol} ({self.status})"


# -- money movements: bank accounts and withdrawals (owner: actions; guarded by authguard.actions.flow)
# ----------


class BankAccountType(models.TextChoices):
    """Kinds of Japanese bank deposit account."""

    ORDINARY = "ordinary", _("Ordinary (futsū)")
    CURRENT = "current", _("Current (tōza)")
    SAVINGS = "savings", _("Savings (chochiku)")


class BankAccountStatus(models.TextChoices):
    """A bank account is ``pending`` until its registration is confirmed with the customer's passkey."""

    PENDING = "pending", _("Waiting for confirmation")
    ACTIVE = "active", _("Registered")
    CANCELLED = "cancelled", _("Not registered")


class BankAccount(models.Model):
    """A bank account of the customer that withdrawals are paid to (Japanese format: 4-digit bank code,
    3-digit branch code, 7-digit account number, holder name)."""

    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, related_name="bank_accounts", verbose_name=_("account")
    )
    bank_code = models.CharField(_("bank code"), max_length=4)
    bank_name = models.CharField(_("bank"), max_length=60)
    branch_code = models.CharField(_("branch code"), max_length=3)
    account_type = models.CharField(
        _("account type"), max_length=10, choices=BankAccountType.choices, default=BankAccountType.ORDINARY
    )
    account_number = models.CharField(_("account number"), max_length=7)
    holder_name = models.CharField(_("account holder"), max_length=60)
    status = models.CharField(
        _("status"), max_length=10, choices=BankAccountStatus.choices, default=BankAccountStatus.PENDING
    )
    created_at = models.DateTimeField(_("requested at"), auto_now_add=True)
    activated_at = models.DateTimeField(_("registered at"), null=True, blank=True)
    # authguard's held action (a UUID) that registers this account.
    confirmation_id = models.CharField(_("confirmation"), max_length=36, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("bank account")
        verbose_name_plural = _("bank accounts")

    def __str__(self) -> str:
        return f"{self.bank_name} {self.branch_code} {self.masked_number}"

    @property
    def masked_number(self) -> str:
        """The account number with all but its last three digits hidden: ``****567``."""
        return "*" * max(len(self.account_number) - 3, 0) + self.account_number[-3:]


class WithdrawalStatus(models.TextChoices):
    """A withdrawal is ``held`` until the customer confirms it; ``completed`` once the cash left."""

    HELD = "held", _("Waiting for confirmation")
    COMPLETED = "completed", _("Completed")
    CANCELLED = "cancelled", _("Cancelled")
    EXPIRED = "expired", _("Expired")
    FAILED = "failed", _("Failed")


class Withdrawal(models.Model):
    """Cash paid out of the trading account to one of the customer's registered bank accounts."""

    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, related_name="withdrawals", verbose_name=_("account")
    )
    bank_account = models.ForeignKey(
        BankAccount, on_delete=models.PROTECT, related_name="withdrawals", verbose_name=_("bank account")
    )
    amount = models.DecimalField(_("amount (JPY)"), max_digits=18, decimal_places=2)
    status = models.CharField(_("status"), max_length=10, choices=WithdrawalStatus.choices, db_index=True)
    created_at = models.DateTimeField(_("requested at"), auto_now_add=True)
    executed_at = models.DateTimeField(_("paid at"), null=True, blank=True)
    status_reason = models.CharField(_("status reason"), max_length=200, blank=True, default="")
    confirmation_id = models.CharField(_("confirmation"), max_length=36, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("withdrawal")
        verbose_name_plural = _("withdrawals")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(amount__gt=0), name="brokerage_withdrawal_amount_positive"
            )
        ]

    def __str__(self) -> str:
        return f"#{self.pk} ¥{self.amount:,.0f} → {self.bank_account} ({self.status})"
