"""The portal's own admin: customers searched by their e-mail address (there is no username)."""

from __future__ import annotations

from django.contrib import admin

from .models import Account, Order, User


@admin.register(User)
class UserAdmin(admin.ModelAdmin):
    list_display = ("email", "full_name", "is_staff", "is_active")
    search_fields = ("email", "full_name")
    exclude = ("password",)


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    list_display = ("user", "cash")
    search_fields = ("user__email",)


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ("account", "side", "symbol", "quantity", "status", "created_at")
    search_fields = ("account__user__email", "symbol")
