"""An incident report's entries: :class:`TimelineEntry`, its labels and CSV columns, the report's window."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy, pgettext_lazy

from authguard.console.reports.base import site_timezone

# -- incident report -----------------------------------------------------------------------------------


#: How each kind of timeline entry is named on the page (the CSV keeps the codes).
KIND_LABELS: dict[str, Any] = {
    "login": gettext_lazy("sign-in"),
    "step_up": gettext_lazy("step-up"),
    "session": gettext_lazy("session re-check"),
    "factor": gettext_lazy("sign-in method"),
    "lock": gettext_lazy("account lock"),
    "order": gettext_lazy("order"),
    "notification": gettext_lazy("notification"),
    "staff": gettext_lazy("staff action"),
}

#: How a timeline entry's ``status`` is shown: a factor that is no longer on the account stays in the
#: report (evidence), marked so.
STATUS_LABELS: dict[str, Any] = {
    "removed": pgettext_lazy("factor status", "removed"),
    "replaced": pgettext_lazy("factor status", "replaced"),
    "disabled": pgettext_lazy("factor status", "disabled"),
}
_STATUS_SENTENCES: dict[str, Any] = {
    "removed": gettext_lazy("(Removed on %(time)s.)"),
    "replaced": gettext_lazy("(Replaced on %(time)s.)"),
    "disabled": gettext_lazy("(Disabled on %(time)s.)"),
}


@dataclass(frozen=True)
class TimelineEntry:
    """One thing that happened to an account, at one moment, told as a sentence (``summary``)."""

    at: datetime
    kind: str  # login | step_up | session | factor | lock | order | notification | staff
    summary: str
    place: str = ""
    network: str = ""
    ip: str = ""
    device: str = ""
    score: int | None = None
    reasons: tuple[str, ...] = ()
    detail: str = ""
    reference: str = ""
    category: str = ""  # a login event's CATEGORIES code
    status: str = ""  # a factor's: "", "removed", "replaced" or "disabled"

    @property
    def kind_label(self) -> str:
        return str(KIND_LABELS.get(self.kind, self.kind))

    @property
    def status_label(self) -> str:
        return str(STATUS_LABELS.get(self.status, self.status))

    @property
    def local_at(self) -> datetime:
        """``at`` in the site's time zone (``TIME_ZONE``), whatever zone the request activated."""
        return timezone.localtime(self.at, site_timezone())


INCIDENT_COLUMNS = (
    "time",
    "kind",
    "summary",
    "place",
    "network",
    "ip",
    "device",
    "score",
    "reasons",
    "detail",
    "reference",
    "status",
)


@dataclass(frozen=True)
class _Window:
    """The time window of an incident report (``None`` bounds: everything recorded)."""

    first: datetime | None
    after: datetime | None

    def filter(self, queryset: QuerySet[Any], field_name: str = "created_at") -> QuerySet[Any]:
        if self.first is None:
            return queryset
        return queryset.filter(**{f"{field_name}__gte": self.first, f"{field_name}__lt": self.after})

    def contains(self, at: datetime | None) -> bool:
        if at is None:
            return False
        return self.first is None or self.first <= at < self.after  # type: ignore[operator]
