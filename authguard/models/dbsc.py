"""dbsc models (see the package docstring of authguard.models): Device Bound Session Credentials.

* :class:`DbscSession` is one device-bound session (W3C webappsec-dbsc): the public key a browser created for
  it, bound to the hash of authguard's device cookie. Written only by :mod:`authguard.sessions.dbsc`.
* :class:`DbscChallenge` is one challenge issued for a registration or a refresh proof: single use, short
  lived, kept as a digest.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

__all__ = ["DbscChallenge", "DbscSession"]


class DbscSession(models.Model):
    """A device-bound session: the browser proves possession of ``public_jwk``'s private key on refresh.

    The binding is to the device cookie (``device_hash``), not to one sign-in: it outlives signing out and in
    again, so a device cookie copied off the device (an infostealer) is recognised as a copy at any later
    sign-in, because it arrives without the short-lived bound cookie only the key holder can refresh.
    """

    #: The DBSC session identifier the browser sends in ``Sec-Secure-Session-Id`` (random, not a secret).
    session_id = models.CharField(_("session identifier"), max_length=64, unique=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="authguard_dbsc_sessions",
        verbose_name=_("registered by"),
    )
    # The keyed hash of the device cookie (authguard.risk.context.device_hash), never the cookie itself.
    device_hash = models.CharField(_("device"), max_length=64, db_index=True)
    #: The device cookie (keyed hash) the binding was registered on; ``device_hash`` is where its key's
    #: refreshes moved it since. "Forget this browser" ends the bindings registered on the forgotten browser
    #: too (red team, round forty-one).
    registered_device_hash = models.CharField(
        _("browser"), max_length=64, blank=True, default="", db_index=True
    )
    algorithm = models.CharField(_("algorithm"), max_length=8)
    #: The public key as a JWK (RFC 7517); only public members are ever stored.
    public_jwk = models.JSONField(_("public key"))
    #: RFC 7638 thumbprint of the public key: a key is registered once.
    key_thumbprint = models.CharField(_("key thumbprint"), max_length=64, unique=True)
    created_at = models.DateTimeField(_("registered"))
    last_refreshed_at = models.DateTimeField(_("last proof"), null=True, blank=True)
    #: Sliding end of the binding: each proof pushes it further.
    expires_at = models.DateTimeField(_("expires"))
    ended_at = models.DateTimeField(_("ended"), null=True, blank=True)
    end_reason = models.CharField(_("end reason"), max_length=40, blank=True)

    class Meta:
        verbose_name = _("device-bound session")
        verbose_name_plural = _("device-bound sessions")

    def __str__(self) -> str:
        return f"device-bound session {self.session_id[:8]} of {self.user_id}"


class DbscChallenge(models.Model):
    """A challenge for a DBSC proof (the proof's ``jti``): single use until ``expires_at``."""

    class Kind(models.TextChoices):
        REGISTRATION = "registration", _("registration")
        REFRESH = "refresh", _("refresh")

    #: SHA-256 of the challenge value: a database leak reveals no usable challenge.
    digest = models.CharField(max_length=64, unique=True)
    kind = models.CharField(max_length=12, choices=Kind.choices)
    # Registration: the signed-in user, the device and the Django session (a keyed digest of a nonce kept
    # in that session) it was issued to. Refresh: the session it was issued for.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    device_hash = models.CharField(max_length=64, blank=True)
    session_binding = models.CharField(max_length=64, blank=True)
    session = models.ForeignKey(
        DbscSession, null=True, blank=True, on_delete=models.CASCADE, related_name="challenges"
    )
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("device-bound session challenge")
        verbose_name_plural = _("device-bound session challenges")

    def __str__(self) -> str:
        return f"{self.kind} challenge {self.digest[:8]}"
