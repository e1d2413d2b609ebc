"""authguard's models: what it remembers about logins, devices and factors.

* :class:`LoginEvent` is the audit record of every password login, with its explained decision.
* :class:`RiskProfile` and :class:`PopulationCount` are the bounded aggregates the risk engine scores against,
  so scoring costs the same whatever the length of a user's history.
* :class:`KnownDevice` is a browser recognised by its device cookie (only the cookie's hash is kept).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from authguard.choices import (
    Action as Action,
)
from authguard.choices import (
    FactorKind as FactorKind,
)
from authguard.choices import (
    Feedback as Feedback,
)
from authguard.choices import (
    GuardStatus as GuardStatus,
)
from authguard.choices import (
    NotificationStatus as NotificationStatus,
)
from authguard.choices import (
    Outcome as Outcome,
)


class LoginEvent(models.Model):
    """One password login attempt, successful or not, with its score and the reasons for it."""

    created_at = models.DateTimeField(_("time"), db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="authguard_login_events",
    )
    # The username as typed, so failed attempts against unknown names are still visible to admins.
    username = models.CharField(_("username tried"), max_length=150, blank=True)
    password_ok = models.BooleanField(_("password correct"))
    # A signed-in session's or API token's re-score (its password_ok is false, like a wrong password's): the
    # order guard reads it as a change of the account's context, never a stranger's failed attempt.
    rescore = models.BooleanField(_("re-score of a signed-in session"), default=False)
    ip = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    country = models.CharField(_("country"), max_length=2, blank=True, db_index=True)
    city = models.CharField(_("city"), max_length=100, blank=True)
    asn = models.PositiveBigIntegerField(_("ASN"), null=True, blank=True, db_index=True)
    as_org = models.CharField(_("network"), max_length=200, blank=True)
    user_agent = models.CharField(_("user agent"), max_length=512, blank=True)
    device_summary = models.CharField(_("device"), max_length=200, blank=True)
    device_hash = models.CharField(_("device cookie hash"), max_length=64, blank=True)
    score = models.PositiveSmallIntegerField(_("risk score"), default=0)
    action = models.CharField(_("decision"), max_length=10, choices=Action.choices, db_index=True)
    reasons = models.JSONField(_("reason codes"), default=list, blank=True)
    findings = models.JSONField(_("findings"), default=list, blank=True)
    outcome = models.CharField(_("what happened next"), max_length=20, choices=Outcome.choices)
    feedback = models.CharField(_("analyst verdict"), max_length=12, choices=Feedback.choices, blank=True)

    class Meta:
        verbose_name = _("login event")
        verbose_name_plural = _("login events")
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user", "-created_at"], name="authguard_event_user_time")]

    def __str__(self) -> str:
        who = self.user or self.username or "?"
        return f"{who} {self.created_at:%Y-%m-%d %H:%M} {self.action} ({self.score})"


class RiskProfile(models.Model):
    """A user's login history as bounded, aggregated counts (see :mod:`authguard.risk.profile`)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, primary_key=True, on_delete=models.CASCADE, related_name="authguard_profile"
    )
    data = models.JSONField(default=dict)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("risk profile")
        verbose_name_plural = _("risk profiles")

    def __str__(self) -> str:
        return f"risk profile of {self.user}"


class PopulationCount(models.Model):
    """How often a feature value (an ASN, a browser, ...) was seen across all users' successful logins."""

    key = models.CharField(max_length=255, primary_key=True)
    count = models.PositiveBigIntegerField(default=0)

    class Meta:
        verbose_name = _("population count")
        verbose_name_plural = _("population counts")

    def __str__(self) -> str:
        return f"{self.key}={self.count}"


class KnownDevice(models.Model):
    """A browser a user signed in from, recognised by the hash of its long-lived device cookie."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="authguard_devices",
        verbose_name=_("user"),
    )
    cookie_hash = models.CharField(max_length=64)
    label = models.CharField(_("browser"), max_length=200, blank=True)
    first_seen_at = models.DateTimeField(_("first seen"))
    # When the risk engine first learned the browser (an allowed sign-in, a step-up with a factor a phishing
    # page cannot relay, an imported log); None while it is only listed (a relayed code:
    # history.note_device). A browser's standing ("known for a month") counts from here.
    learned_at = models.DateTimeField(_("learned"), null=True, blank=True)
    last_seen_at = models.DateTimeField(_("last seen"))
    last_ip = models.GenericIPAddressField(_("last IP address"), null=True, blank=True)
    last_place = models.CharField(_("last place"), max_length=120, blank=True)
    # When a factor of the user (neither it nor the account cooling off) first verified a step-up or a
    # re-verification here: a browser's month of standing for vouching a new factor counts from here, not
    # from a sign-in the password alone allowed (factors.lifecycle.session_vouched; red team round 68).
    factor_verified_at = models.DateTimeField(_("first verified with a factor"), null=True, blank=True)
    # Set after a successful step-up: the risk engine treats the device as remembered until then.
    trusted_until = models.DateTimeField(_("remembered until"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)
    # The newest generation of the device cookie this browser presented in a verified session of the user,
    # when, and the one before it (authguard.sessions.device_generations): an older one is a copy.
    cookie_generation = models.BigIntegerField(_("cookie generation"), null=True, blank=True)
    cookie_generation_at = models.DateTimeField(_("cookie generation confirmed"), null=True, blank=True)
    previous_generation = models.BigIntegerField(_("previous cookie generation"), null=True, blank=True)
    # The oldest generation (at least) given to a browser sign-in of the user with this cookie that no request
    # presented since: a cookie older than it, shown over a minute after, was left behind by a copy that
    # threw its new cookie away and signed in again (device_generations, red team round sixty-four).
    issued_generation = models.BigIntegerField(_("cookie generation given"), null=True, blank=True)

    class Meta:
        verbose_name = _("known device")
        verbose_name_plural = _("known devices")
        constraints = [
            models.UniqueConstraint(fields=["user", "cookie_hash"], name="authguard_device_unique")
        ]
        # A device cookie's generations are judged over every account's row of it (device_generations).
        indexes = [models.Index(fields=["cookie_hash"], name="authguard_device_cookie_idx")]

    def __str__(self) -> str:
        return f"{self.label or 'device'} of {self.user}"


# -- step-up: session-level records (owner: stepup) ------------------------------------------------------


class SessionRecord(models.Model):
    """A signed-in session of a user, by session key, so that the user can sign out their other sessions.

    Written at sign-in and at every rotation of the session key (step-up, re-verification); the session
    data itself stays in Django's session store.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="authguard_sessions",
        verbose_name=_("user"),
    )
    session_key = models.CharField(_("session key"), max_length=40, unique=True)
    created_at = models.DateTimeField(_("signed in"), auto_now_add=True)
    place = models.CharField(_("place"), max_length=120, blank=True)
    device_summary = models.CharField(_("device"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("signed-in session")
        verbose_name_plural = _("signed-in sessions")

    def __str__(self) -> str:
        return f"session of {self.user} since {self.created_at:%Y-%m-%d %H:%M}"


# -- models of the feature packages, one module each (issue 12's models/ layout) ----------------------------
from authguard.models.accounts import *  # noqa: E402,F403
from authguard.models.actions import *  # noqa: E402,F403
from authguard.models.approvals import *  # noqa: E402,F403
from authguard.models.containment import *  # noqa: E402,F403
from authguard.models.dbsc import *  # noqa: E402,F403
from authguard.models.exposure import *  # noqa: E402,F403
from authguard.models.factors import *  # noqa: E402,F403
from authguard.models.operations import *  # noqa: E402,F403
from authguard.models.orders import *  # noqa: E402,F403
from authguard.models.population import *  # noqa: E402,F403
