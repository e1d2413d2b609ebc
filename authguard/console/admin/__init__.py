"""The security console: authguard's Django admin for a brokerage's security staff.

What staff see and may do, each behind Django's model permissions (``view_*`` to look, ``change_*`` /
``delete_*`` to act; superusers everything):

* **Login events** — read-only evidence, filterable by action, outcome, reason, country, ASN and time,
  searchable by user or IP, each with its findings explained. Staff with ``change_loginevent`` mark events
  as confirmed fraud or legitimate (audited in the admin log); the marks feed the backtests.
* **Security dashboard**, **backtest**, **compliance report** (JSDA 2025: customers without passkeys),
  **incident report** (one account's timeline) and the **network lists**: the pages of
  :mod:`authguard.console.pages`, mounted under the login events (``get_urls``), CSV exports included.
* **Customers' devices and factors** (known devices, TOTP devices, and the passkeys and recovery codes of
  the factors part): list and revoke; revoking notifies the customer.
* **Run-time policy**, **notifications**, **account locks**, and the order guard's records.
* **Staff actions** (four eyes): releasing a held order, revoking a factor, unlocking an account and saving
  a policy version go through :mod:`authguard.console.approvals`; above ``AUTHGUARD_FOUR_EYES``'s severity
  they wait for a second staff member's approval on the staff actions page.
* **Containment** (issue 16): staff with ``authguard.contain_account`` lock the accounts of selected login
  events or held orders, end their sessions or force a password reset (one staff action per customer,
  through the same flow); network blocks are listed under *Network blocks* and made on the network lists
  page.

The whole console is behind a passkey check of the staff session
(:class:`authguard.console.guard.StaffPasskeyMiddleware`): a staff password alone opens no page.

# SECURITY: nothing here can edit a security record in place. Events, notifications and policy versions
# are never changed through the admin (a new policy is a new version); revocations and verdicts are
# actions that leave an audit trail.

The admins, by subject: :mod:`~.events` (login events and the console pages), :mod:`~.factors` (known
devices and factors), :mod:`~.accounts` (account locks, notifications), :mod:`~.orders` (the order guard's
records), :mod:`~.staff` (staff actions, network blocks), :mod:`~.tokens` (DRF's API tokens, without their
keys); what they share is
:mod:`authguard.console.admin_base`. Importing this package registers every one of them.
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

from authguard.checks import Codes
from authguard.validators import missing_otp_apps

if missing_otp_apps():
    # The console (and the modules below) build on django-otp's models; without its apps Django would stop
    # on "TOTPDevice doesn't declare an explicit app_label", before any system check could say why.
    raise ImproperlyConfigured(
        f"{Codes.OTP_NOT_INSTALLED}: {' and '.join(missing_otp_apps())} must be in INSTALLED_APPS. "
        'Add "django_otp" and "django_otp.plugins.otp_totp" before "authguard".'
    )

# Registering: each module registers its admins when imported (below the check above, on purpose).
from authguard.console.admin.accounts import AccountLockAdmin, NotificationAdmin  # noqa: E402
from authguard.console.admin.events import (  # noqa: E402
    AsnFilter,
    CountryFilter,
    FeedbackFilter,
    LoginEventAdmin,
    ReasonFilter,
)
from authguard.console.admin.factors import (  # noqa: E402
    FactorAdmin,
    FactorRecordAdmin,
    KnownDeviceAdmin,
    PasskeyAdmin,
    RecoveryCodesAdmin,
    TOTPFactorAdmin,
)
from authguard.console.admin.orders import (  # noqa: E402
    CampaignFlagAdmin,
    GuardedOrderAdmin,
    HeldOrderAdmin,
)
from authguard.console.admin.staff import NetworkBlockAdmin, StaffApprovalAdmin  # noqa: E402
from authguard.console.admin.tokens import ApiTokenAdmin  # noqa: E402  (replaces DRF's TokenAdmin)
from authguard.console.admin_base import (  # noqa: E402
    PENDING,
    LockAccountsMixin,
    ReadOnlyAdmin,
    ReasonForm,
    contain_selected,
    staff_request,
    with_reason,
)
from authguard.console.mixins import UserSearchMixin, ValidSelectionMixin, user_search_fields  # noqa: E402
from authguard.orders.guard import staff_cancel, staff_release  # noqa: E402  (the order guard's flow)

# isort: split
# Last: other apps' admins and the policy editor register theirs (authguard.actions.admin builds on
# authguard.console.admin_base; until its imports move there it takes them from this package's re-exports).
from authguard.actions import admin as actions_admin  # noqa: E402  (registers the held actions)
from authguard.console import policy_editor  # noqa: E402  (registers PolicyVersion)

__all__ = [
    "AccountLockAdmin",
    "ApiTokenAdmin",
    "AsnFilter",
    "CampaignFlagAdmin",
    "CountryFilter",
    "FactorAdmin",
    "FactorRecordAdmin",
    "FeedbackFilter",
    "GuardedOrderAdmin",
    "HeldOrderAdmin",
    "KnownDeviceAdmin",
    "LockAccountsMixin",
    "LoginEventAdmin",
    "NetworkBlockAdmin",
    "NotificationAdmin",
    "PENDING",
    "PasskeyAdmin",
    "ReadOnlyAdmin",
    "ReasonFilter",
    "ReasonForm",
    "RecoveryCodesAdmin",
    "StaffApprovalAdmin",
    "TOTPFactorAdmin",
    "UserSearchMixin",
    "ValidSelectionMixin",
    "actions_admin",
    "contain_selected",
    "policy_editor",
    "staff_cancel",
    "staff_release",
    "staff_request",
    "user_search_fields",
    "with_reason",
]
