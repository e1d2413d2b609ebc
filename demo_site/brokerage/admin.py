"""Admin of the demo brokerage: viewed, never edited. Money moves only through services and market data only
through ``services.sync_instruments``, so instruments, accounts, positions and orders are read-only here."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import admin as auth_admin
from django.contrib.auth.models import Group, User
from django.http import HttpRequest

from authguard.console.mixins import DeclaredFiltersMixin, ValidSelectionMixin, may_view_users

from .models import Account, BankAccount, Instrument, Order, Position, Withdrawal


class ReadOnlyAdmin(DeclaredFiltersMixin, ValidSelectionMixin, admin.ModelAdmin):
    """Viewable, never edited nor deleted: a balance changed by hand would bypass every check in ``services``,
    and a deleted order or position would erase what was traded in her account. Filtered only as the page
    offers, as the console is (a bank account's number is not shown, so not searchable)."""

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        # SECURITY: one staff member's "Delete selected" removed all 30 of a customer's positions and the
        # order records of the trades (red team, round seventy-four).
        return False


@admin.register(Instrument)
class InstrumentAdmin(ReadOnlyAdmin):
    """Market data, written only by ``services.sync_instruments``.

    SECURITY: the long-run traded value and price are what the order guard weighs a thin stock by; a desk
    member who saved a pumped day's figures as the long run let a thief's buy of half the portfolio into
    the pump through unheld (red team, round seventy-four). A portal that corrects market data by hand does
    it in its market-data system, with its own approvals, never in the security desk's admin."""

    list_display = [
        "symbol", "name", "market", "currency", "price", "avg_daily_volume", "baseline_daily_value",
        "reference_price", "is_small_cap",
    ]  # fmt: skip
    list_filter = ["market", "currency", "is_small_cap"]
    search_fields = ["symbol", "name"]


class PositionInline(admin.TabularInline):
    model = Position
    fields = ["instrument", "quantity"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Account)
class AccountAdmin(ReadOnlyAdmin):
    list_display = ["user", "cash", "created_at"]
    search_fields = ["user__username"]
    inlines = [PositionInline]

    def get_search_fields(self, request: HttpRequest) -> list[str]:
        # SECURITY: a search is an oracle: only staff who may view users find a customer by e-mail, as on
        # authguard's lists (review of round seventy-four's fix).
        email = ["user__email"] if may_view_users(request) else []
        return [*super().get_search_fields(request), *email]


@admin.register(Position)
class PositionAdmin(ReadOnlyAdmin):
    list_display = ["account", "instrument", "quantity"]
    list_select_related = ["account__user", "instrument"]
    search_fields = ["account__user__username", "instrument__symbol"]


@admin.register(Order)
class OrderAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "created_at",
        "account",
        "side",
        "instrument",
        "quantity",
        "price",
        "amount_jpy",
        "status",
    ]
    list_filter = ["status", "side", "instrument__market"]
    list_select_related = ["account__user", "instrument"]
    search_fields = ["account__user__username", "instrument__symbol"]
    date_hierarchy = "created_at"


@admin.register(BankAccount)
class BankAccountAdmin(ReadOnlyAdmin):
    """Registered only through a registration the customer confirmed with the passkey
    (authguard.actions.flow)."""

    list_display = ["id", "account", "bank_name", "branch_code", "masked_number", "holder_name", "status"]
    list_filter = ["status"]
    list_select_related = ["account__user"]
    search_fields = ["account__user__username", "holder_name", "bank_name"]
    exclude = ["account_number"]


@admin.register(Withdrawal)
class WithdrawalAdmin(ReadOnlyAdmin):
    """Paid only after the customer confirmed it with the passkey (authguard.actions.flow)."""

    list_display = ["id", "created_at", "account", "bank_account", "amount", "status", "executed_at"]
    list_filter = ["status"]
    list_select_related = ["account__user", "bank_account"]
    search_fields = ["account__user__username"]
    date_hierarchy = "created_at"


class UserAdmin(DeclaredFiltersMixin, ValidSelectionMixin, auth_admin.UserAdmin):
    """Django's, filtered only as the page offers: its own takes any lookup on a user's fields
    (``?date_joined__year=0`` was a 500)."""


class GroupAdmin(DeclaredFiltersMixin, ValidSelectionMixin, auth_admin.GroupAdmin):
    """Django's, filtered only as the page offers: from Django 6.1 its own takes a lookup on the members
    (``?user=99999999999999999999`` was a 500)."""


for _model, _model_admin in ((User, UserAdmin), (Group, GroupAdmin)):
    if admin.site.is_registered(_model):  # imported above, so registered by django.contrib.auth first
        admin.site.unregister(_model)
        admin.site.register(_model, _model_admin)
