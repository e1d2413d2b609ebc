"""Population counts off the login path (issue 15): a login appends, a periodic fold aggregates.

A successful login used to increment shared ``PopulationCount`` rows (the per-feature totals above all)
inside its own transaction, so every login in the site waited on the same few rows. Now a login only
inserts one :class:`PopulationDelta` row per feature value it showed (an append, no lock on anything
shared), and :func:`authguard.risk.history.fold_population` adds them into ``PopulationCount`` in one batch,
deriving the totals and the distinct counts there. Scoring reads ``PopulationCount`` as of the last fold:
a snapshot, refreshed every ``AUTHGUARD_POPULATION_FOLD_SECONDS``.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class PopulationDelta(models.Model):
    """One value seen in one successful login, not yet added into the population counts."""

    id = models.BigAutoField(primary_key=True)
    key = models.CharField(max_length=255)

    class Meta:
        app_label = "authguard"
        verbose_name = _("population count increment")
        verbose_name_plural = _("population count increments")

    def __str__(self) -> str:
        return self.key


class PopulationFold(models.Model):
    """The one row whose lock serialises folds (so a new value's distinct count is added exactly once), and
    when the last fold ran: the age of the snapshot scoring reads."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    folded_at = models.DateTimeField(_("last fold"), null=True)
    folded = models.PositiveBigIntegerField(_("values folded so far"), default=0)

    class Meta:
        app_label = "authguard"
        verbose_name = _("population fold")
        verbose_name_plural = _("population folds")

    def __str__(self) -> str:
        return f"population folded at {self.folded_at}"


__all__ = ["PopulationDelta", "PopulationFold"]
