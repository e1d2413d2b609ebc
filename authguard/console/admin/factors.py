"""Customers' known devices and second factors in the console: listed, never shown or edited; revoking a
factor goes through the four-eyes flow and :func:`authguard.factors.removal.remove_factor`.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.contrib import admin, messages
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils import translation
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _
from django_otp.plugins.otp_totp.models import TOTPDevice

from authguard import clock
from authguard.console.admin_base import (
    ReadOnlyAdmin,
    audit_change,
    staff_request,
    with_reason,
)
from authguard.console.mixins import UserSearchMixin, ValidSelectionMixin
from authguard.console.mixins import (
    user_search_fields as user_search_fields,  # re-exported: public since issue 14
)
from authguard.factors.inventory import unused_recovery_codes
from authguard.models import (
    FactorRecord,
    KnownDevice,
    PasskeyDevice,
    RecoveryCodeDevice,
    StaffAction,
)
from authguard.notifications.lures import shown_name
from authguard.notifications.messages import user_language
from authguard.notifications.outbox import notify_customer
from authguard.templatetags.authguard_display import device_label


def _notify_revoked(user: AbstractBaseUser, *, factor: Any, name: str, dedupe_key: str) -> None:
    """Tell the customer that staff removed a sign-in method or a remembered device (outbox, same tx)."""

    with translation.override(user_language(user) or None):
        label = str(factor)
    notify_customer(
        user,
        "factor_removed",
        context={"factor": label, "name": name, "time": clock.now(), "by_staff": True},
        dedupe_key=dedupe_key,
    )


# -- known devices and factors -----------------------------------------------------------------------------


@admin.register(KnownDevice)
class KnownDeviceAdmin(UserSearchMixin, ValidSelectionMixin, admin.ModelAdmin):
    """Browsers customers signed in from. Staff may forget (revoke) one; the customer is told."""

    list_display = (
        "user",
        "shown_label",
        "first_seen_at",
        "last_seen_at",
        "last_place",
        "trusted_until",
        "revoked_at",
    )
    list_filter = ("revoked_at", "last_seen_at")
    search_fields = ("label", "=last_ip")
    list_select_related = ("user",)

    @admin.display(description=_("browser"), ordering="label")
    def shown_label(self, obj: KnownDevice) -> str:
        """The browser's summary as pages show it (:func:`device_label`): his User-Agent's number is no one's
        to call (red team, round fifty-five)."""
        return device_label(obj.label)

    readonly_fields = (
        "cookie_hash",
        "first_seen_at",
        "last_seen_at",
        "last_ip",
        "last_place",
        "label",
        "user",
        "trusted_until",
        "revoked_at",
    )
    actions = ("revoke",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Viewable, never edited field by field: revoking is the one change, through the action.
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # SECURITY: Django's "Delete selected" forgot her browsers without a word to her; revoking is the
        # way, and she is told (red team, round thirty-three).
        return False

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("authguard.change_knowndevice")

    @admin.action(
        description=_("Revoke: forget the device (next login from it is new)"), permissions=["revoke"]
    )
    def revoke(self, request: HttpRequest, queryset: QuerySet[KnownDevice]) -> None:
        now = clock.now()
        n = 0
        with transaction.atomic():
            for device in queryset.select_for_update().select_related("user").filter(revoked_at__isnull=True):
                # SECURITY: a revoked device loses its remembered status at once; the risk engine treats
                # its cookie as unknown from the next login on.
                KnownDevice.objects.filter(pk=device.pk).update(revoked_at=now, trusted_until=None)
                audit_change(request, device, "revoked the known device")
                _notify_revoked(
                    device.user,
                    factor=_("remembered device"),
                    name=device.label,
                    dedupe_key=f"revoke-device:{device.pk}",
                )
                n += 1
        self.message_user(request, gettext("%(n)d device(s) revoked.") % {"n": n}, messages.SUCCESS)


class FactorAdmin(UserSearchMixin, ValidSelectionMixin, admin.ModelAdmin):
    """A customer's second factor: listed, never shown (no secrets), never edited; staff may revoke it."""

    # Sequences of any length: each factor's admin lists its own columns.
    list_display: tuple[str, ...] = ("user", "shown_name", "confirmed", "created_at", "last_used_at")
    list_filter: ClassVar[tuple[str, ...]] = ("confirmed", "created_at", "last_used_at")
    search_fields = ("name",)
    list_select_related = ("user",)
    fields: ClassVar[tuple[str, ...]] = ("user", "name", "confirmed", "created_at", "last_used_at")
    readonly_fields: ClassVar[tuple[str, ...]] = fields
    actions = ("revoke",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        # SECURITY: factors are enrolled by the customer, bound to them; staff never create one.
        return False

    @admin.display(description=pgettext_lazy("factor", "name"), ordering="name")
    def shown_name(self, obj: Any) -> str:
        """The name whoever added it chose, without phone numbers or domains: "Hanako iPhone - verified,
        unlock OK, call 0120-987-654" handed the desk a thief's number (red team, round fifty-four)."""
        return shown_name(obj.name)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Deleting goes through the revoke action, which notifies the customer.
        return False

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        opts = self.model._meta
        return request.user.has_perm(f"{opts.app_label}.delete_{opts.model_name}")

    @admin.action(
        description=_("Revoke: delete the factor and tell the customer (with a reason)"),
        permissions=["revoke"],
    )
    def revoke(self, request: HttpRequest, queryset: QuerySet[Any]) -> TemplateResponse | None:
        # SECURITY: through the four-eyes flow (authguard.console.approvals): above AUTHGUARD_FOUR_EYES's
        # severity a second staff member approves before the factor is removed (battery case 60).
        return with_reason(
            self,
            request,
            queryset.select_related("user"),
            action="revoke",
            title=gettext("Revoke sign-in methods"),
            apply=staff_request(self, request, StaffAction.REVOKE_FACTOR),
            done=gettext("%(n)d factor(s) revoked."),
        )


class TOTPFactorAdmin(FactorAdmin):
    """TOTP devices, replacing django-otp's admin: no secret key, no QR code, no editing."""


# SECURITY: django-otp's own TOTP admin shows the secret key and its QR code to any staff member who may
# view devices; replace it with one that never shows secrets.
if admin.site.is_registered(TOTPDevice):
    admin.site.unregister(TOTPDevice)
admin.site.register(TOTPDevice, TOTPFactorAdmin)


@admin.register(PasskeyDevice)
class PasskeyAdmin(FactorAdmin):
    """Customers' passkeys (public keys only: nothing secret is stored)."""

    list_display = ("user", "shown_name", "confirmed", "backup_state", "created_at", "last_used_at")
    list_filter = ("confirmed", "backup_eligible", "backup_state", "created_at", "last_used_at")
    fields = (
        "user",
        "name",
        "confirmed",
        "aaguid",
        "transports",
        "backup_eligible",
        "backup_state",
        "user_verified",
        "sign_count",
        "created_at",
        "last_used_at",
    )
    readonly_fields = fields


@admin.register(RecoveryCodeDevice)
class RecoveryCodesAdmin(FactorAdmin):
    """Customers' recovery-code sets: how many are left, never the codes (only their hashes exist)."""

    list_display = ("user", "name", "confirmed", "codes_left", "created_at", "last_used_at")
    fields = ("user", "name", "confirmed", "codes_left", "created_at", "last_used_at")
    readonly_fields = fields

    @admin.display(description=_("codes left"))
    def codes_left(self, obj: RecoveryCodeDevice) -> int:
        return unused_recovery_codes(obj)  # 0 for a set the failure limit disabled (issue 12)


@admin.register(FactorRecord)
class FactorRecordAdmin(UserSearchMixin, ReadOnlyAdmin):
    list_display = (
        "user",
        "kind",
        "device_id",
        "enrolled_at",
        "enrolled_via",
        "cooling_off_until",
        "failures",
    )
    list_filter = ("kind", "enrolled_low_risk", "enrolled_at")
    search_fields = ("device_id",)
    list_select_related = ("user",)
