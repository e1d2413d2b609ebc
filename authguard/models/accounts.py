"""accounts models (see the package docstring of authguard.models): the account-level security state.

* :class:`AccountSecurity` is one row per user: when the account first had a confirmed second factor (never
  cleared, so an account that ever had one never again gets a "first factor" path) and the account's
  cooling-off (start, end, reason), during which factors and recovery codes added in it cannot confirm
  anything sensitive. Written only by :mod:`authguard.factors.lifecycle`.
* :class:`PreviousEmail` is an address the account had before an e-mail change: while the cooling-off it was
  dropped in runs, notices and the password reset go there too.
* :class:`ContactChange` is a pending e-mail address change, confirmed by a code mailed to the new address.
* :class:`FactorThrottle` counts second-factor failures of sessions that are not the customer's, per session,
  network and account, with growing delays.
* :class:`TokenActivity` is when an API token (``authguard.drf``) was last used: a token is a session, and
  one idle longer than a browser session may be ends.
"""

from __future__ import annotations

from typing import ClassVar

from django.conf import settings
from django.db import models
from django.db.models.functions import Upper
from django.utils.translation import gettext_lazy as _

__all__ = ["AccountSecurity", "ContactChange", "FactorThrottle", "PreviousEmail", "TokenActivity"]


class AccountSecurity(models.Model):
    """A user's account-level factor state: first factor ever, and the cooling-off (one row per user)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        primary_key=True,
        on_delete=models.CASCADE,
        related_name="authguard_security",
        verbose_name=_("user"),
    )
    # SECURITY: set once, never cleared: disabling or removing every factor never reopens the first-factor
    # path.
    first_factor_at = models.DateTimeField(_("first factor confirmed"), null=True, blank=True)
    cooling_off_started_at = models.DateTimeField(_("cooling-off started"), null=True, blank=True)
    cooling_off_until = models.DateTimeField(_("cooling off until"), null=True, blank=True, db_index=True)
    # Why the (current or last) cooling-off started or was last extended: "factor_added", "email_changed"...
    cooling_off_reason = models.CharField(_("cooling-off reason"), max_length=40, blank=True)
    # The desk (staff, after its approvals) lets the customer bind a factor again once, until then.
    rebind_granted_until = models.DateTimeField(_("re-binding allowed until"), null=True, blank=True)
    rebind_granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("re-binding allowed by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    # The grant's one-time desk code (authguard.factors.desk_grant), as a keyed hash, and the wrong codes
    # entered for it.
    rebind_code_hash = models.CharField(_("desk code (hash)"), max_length=64, blank=True, default="")
    rebind_code_failures = models.PositiveSmallIntegerField(_("wrong desk codes"), default=0)
    # The last sign-in Django reported without a request (a websocket login, a script): nothing scored it,
    # so from then on a session of the account authguard finds without its state is held for a step-up
    # (authguard.sessions.state.adopt).
    unscored_login_at = models.DateTimeField(_("last sign-in without a request"), null=True, blank=True)
    # The account's changes of its factors (added, or removed: a password change or reset too), counted, the
    # count at the last removal, the last one's time and kind, and the session verifications they spent
    # ([id, "added"|"removed"], the last few): a change needs a verification made after the account's last
    # change, an addition one after its last removal (authguard.factors.changes, "one change per
    # verification"), read and written under this row's lock so that two requests in flight make one change.
    # Counted, not timed: two web nodes' clocks disagree by a second.
    factors_changes = models.PositiveIntegerField(_("factor changes"), default=0)
    factors_removed_count = models.PositiveIntegerField(_("factor changes at the last removal"), default=0)
    factors_changed_at = models.DateTimeField(_("factors last changed"), null=True, blank=True)
    factors_changed_how = models.CharField(_("how the factors last changed"), max_length=8, blank=True)
    factors_spent = models.JSONField(_("verifications spent on factor changes"), default=list, blank=True)
    # When the account's sessions were last ended (sign out everywhere, a lock, a password change, the desk):
    # a session whose key is renewed after its record went missing was ended only if it signed in before
    # (authguard.sessions.records.renew_record; a record can also go missing to the retention prune).
    sessions_ended_at = models.DateTimeField(_("sessions last ended"), null=True, blank=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    #: How many addresses one cooling-off remembers (:class:`PreviousEmail`): enough for the customer's own
    #: change and a thief's few after it; a bound, so changing the address in a loop fills no table.
    PREVIOUS_EMAILS_KEPT: ClassVar[int] = 5

    class Meta:
        verbose_name = _("account security state")
        verbose_name_plural = _("account security states")

    def __str__(self) -> str:
        return f"security state of {self.user_id}"


class PreviousEmail(models.Model):
    """An address the account had until an e-mail change (``dropped_at``). It counts only for the cooling-off
    running when it was dropped (an address dropped a year ago must not hear of the account), and one
    cooling-off remembers at most :attr:`AccountSecurity.PREVIOUS_EMAILS_KEPT` of them, the earliest."""

    account = models.ForeignKey(
        AccountSecurity,
        on_delete=models.CASCADE,
        related_name="previous_emails",
        verbose_name=_("account security state"),
    )
    email = models.EmailField(_("previous e-mail address"))
    dropped_at = models.DateTimeField(_("replaced"))
    #: The change that replaced it was confirmed with a passkey not cooling off: the customer's own choice.
    by_passkey = models.BooleanField(_("replaced with a passkey"), default=False)

    class Meta:
        verbose_name = _("previous e-mail address")
        verbose_name_plural = _("previous e-mail addresses")
        # The password reset looks an account up by any address it had (``email__iexact``).
        indexes = [models.Index(Upper("email"), name="authguard_prevemail_upper")]

    def __str__(self) -> str:
        return f"previous e-mail of {self.account_id}"


class ContactChange(models.Model):
    """An e-mail address change waiting for the code mailed to the new address (one pending per user)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        primary_key=True,
        on_delete=models.CASCADE,
        related_name="authguard_contact_change",
        verbose_name=_("user"),
    )
    new_email = models.EmailField(_("new e-mail address"))
    # A keyed digest of the mailed code, never the code itself.
    code_digest = models.CharField(max_length=64)
    created_at = models.DateTimeField(_("requested"))
    expires_at = models.DateTimeField(_("expires"))
    attempts = models.PositiveSmallIntegerField(_("wrong codes"), default=0)

    class Meta:
        verbose_name = _("pending e-mail change")
        verbose_name_plural = _("pending e-mail changes")

    def __str__(self) -> str:
        return f"e-mail change of {self.user_id}"


class FactorThrottle(models.Model):
    """Failed second-factor attempts of one scope (a session, a network or an account) and its back-off.

    ``key`` is ``"s:<digest of the session key>"``, ``"n:<network>"``, ``"a:<user id>"`` (browsers the account
    does not know well) or ``"d:<user id>:<device>"`` (one it has used for a month); only failures of
    sessions that could not be the customer's are counted here (see :mod:`authguard.factors.throttles`).
    """

    key = models.CharField(max_length=80, unique=True)
    failures = models.PositiveIntegerField(default=0)
    last_failure_at = models.DateTimeField()
    blocked_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("second-factor throttle")
        verbose_name_plural = _("second-factor throttles")

    def __str__(self) -> str:
        return f"{self.key}: {self.failures}"


class TokenActivity(models.Model):
    """When an API token was last used, on authguard's clock (DRF's ``Token`` has no such field).

    Written when the token is issued and at most once a minute while it is used
    (:class:`authguard.drf.TokenAuthentication`), with the context the token is bound to; deleted with the
    token. ``token_digest`` is the SHA-256 of the token's key: a second copy of a bearer secret would be one
    more place to steal it from."""

    token_digest = models.CharField(max_length=64, primary_key=True)
    last_used_at = models.DateTimeField()
    #: Where the token was issued (or last re-scored allowed): network, country, browser family, place, as a
    #: browser session's binding (:mod:`authguard.sessions.token_binding`); empty for a token issued before.
    binding = models.JSONField(_("binding"), default=dict, blank=True)

    class Meta:
        verbose_name = _("API token activity")
        verbose_name_plural = _("API token activity")

    def __str__(self) -> str:
        return f"token used {self.last_used_at:%Y-%m-%d %H:%M}"
