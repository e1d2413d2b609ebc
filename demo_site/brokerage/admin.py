"""Admin of the demo brokerage: instruments are editable; money moves only through services, so accounts,
positions and orders are read-only here."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from .models import Account, Instrument, Order, Position


@admin.register(Instrument)
class InstrumentAdmin(admin.ModelAdmin):
    list_display = ["symbol", "name", "market", "currency", "price", "avg_daily_volume", "is_small_cap"]
    list_filter = ["market", "currency", "is_small_cap"]
    search_fields = ["symbol", "name"]


class ReadOnlyAdmin(admin.ModelAdmin):
    """Viewable, never edited: a balance changed by hand would bypass every check in ``services``."""

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


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
    search_fields = ["user__username", "user__email"]
    inlines = [PositionInline]


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
