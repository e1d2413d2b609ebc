"""containment models (see the package docstring of authguard.models): the security desk's network blocks.

* :class:`NetworkBlock` blocks sign-ins from one IP network (CIDR) or one autonomous system (ASN) until a
  time; the risk signal :class:`authguard.risk_signals.NetworkLists` treats an active block like the
  configured deny list. A block is never edited: it ends at ``until``, or earlier when a second record
  (``ends`` pointing at it) is written. Written only by :mod:`authguard.console.containment`, through the
  four-eyes flow (:mod:`authguard.console.approvals`).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from authguard.choices import NetworkBlockKind as NetworkBlockKind

__all__ = ["NetworkBlock", "NetworkBlockKind"]


class NetworkBlock(models.Model):
    """A block of sign-ins from a network until ``until``, or the record that ended one earlier.

    ``network`` is canonical: ``"203.0.113.0/24"`` (host bits cleared) or ``"AS64500"``. ``reason`` is an
    internal note. A block record has ``ends`` empty; the record that ends a block early has ``ends`` set
    (one at most per block), its own ``until`` equal to its ``created_at``, and is never itself active.
    """

    network = models.CharField(_("network"), max_length=64, db_index=True)
    kind = models.CharField(_("kind"), max_length=4, choices=NetworkBlockKind.choices)
    until = models.DateTimeField(_("blocked until"), db_index=True)
    reason = models.CharField(_("reason (internal)"), max_length=500)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("requested by"),
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("approved by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(_("created"), db_index=True)
    # SECURITY: one ending per block (a OneToOne), so ending twice is a no-op, not a second record.
    ends = models.OneToOneField(
        "self",
        verbose_name=_("ends the block"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="ended_by",
    )

    class Meta:
        verbose_name = _("network block")
        verbose_name_plural = _("network blocks")
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        if self.ends_id is not None:
            return f"end of block #{self.ends_id} ({self.network})"
        return f"{self.network} until {self.until:%Y-%m-%d %H:%M}"

    @classmethod
    def active(cls, *, now: Any) -> models.QuerySet[NetworkBlock]:
        """The blocks in force at ``now``: not expired, not an ending, not ended by one."""
        return cls.objects.filter(ends__isnull=True, until__gt=now, ended_by__isnull=True)
