"""What every report shares: date ranges, the site's time zone, and CSV text safe for spreadsheets."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

MAX_RANGE_DAYS = 400
#: Default range of the dashboard: the last 30 days.
DEFAULT_RANGE_DAYS = 30
#: The days a range may name. The calendar's own edges are no report's: the day before 0001-01-01 (the default
#: start) or after 9999-12-31 (:meth:`DateRange.bounds`) does not exist, and the database's time-zone
#: conversion of year 1 overflows (red team, round thirty-nine).
FIRST_DAY = date(1970, 1, 1)
LAST_DAY = date(9998, 12, 31)


class ReportError(ValueError):
    """A report was asked for with parameters it cannot use; the message says why (shown to the admin)."""


# -- date ranges ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DateRange:
    """Whole days from ``start`` to ``end`` inclusive, in the site's time zone."""

    start: date
    end: date

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range((self.end - self.start).days + 1)]

    def bounds(self) -> tuple[datetime, datetime]:
        """The aware ``[first instant, instant after the last day)`` of the range."""
        tz = timezone.get_current_timezone()
        first = datetime.combine(self.start, time.min, tzinfo=tz)
        after = datetime.combine(self.end + timedelta(days=1), time.min, tzinfo=tz)
        return first, after


def parse_range(params: Mapping[str, Any], *, today: date | None = None) -> DateRange:
    """A :class:`DateRange` from ``start``/``end`` (``YYYY-MM-DD``) GET parameters; default last 30 days.

    Raises :class:`ReportError` with a message for malformed, reversed or too long ranges.
    """
    today = today or timezone.localdate()
    start = _parse_day(params.get("start"), _("start"))
    end = _parse_day(params.get("end"), _("end"))
    end = end or today
    start = start or end - timedelta(days=DEFAULT_RANGE_DAYS - 1)
    if start > end:
        raise ReportError(_("The start date must not be after the end date."))
    if (end - start).days + 1 > MAX_RANGE_DAYS:
        raise ReportError(_("Choose a range of at most %(days)d days.") % {"days": MAX_RANGE_DAYS})
    return DateRange(start, end)


def _parse_day(raw: Any, name: str) -> date | None:
    if raw in (None, ""):
        return None
    if not isinstance(raw, str) or len(raw) != 10:
        raise ReportError(_("The %(name)s date must look like 2026-12-01.") % {"name": name})
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        raise ReportError(_("The %(name)s date must look like 2026-12-01.") % {"name": name}) from None
    if not FIRST_DAY <= day <= LAST_DAY:
        raise ReportError(
            _("The %(name)s date must be from %(first)s to %(last)s.")
            % {"name": name, "first": FIRST_DAY.isoformat(), "last": LAST_DAY.isoformat()}
        )
    return day


def site_timezone() -> tzinfo:
    """The site's time zone (``TIME_ZONE``): every time in a report is written in it."""
    return timezone.get_default_timezone()


# -- CSV -------------------------------------------------------------------------------------------------


class _Echo:
    def write(self, value: str) -> str:
        return value


def csv_lines(rows: Iterable[Sequence[str]]) -> Iterator[str]:
    """Rows as CSV text lines, with spreadsheet formula injection neutralised."""
    writer = csv.writer(_Echo())
    for row in rows:
        yield writer.writerow([_safe_cell(cell) for cell in row])


def _safe_cell(value: Any) -> str:
    text = "" if value is None else str(value)
    # SECURITY: user-controlled text (usernames, user agents) must not run as a formula in a spreadsheet.
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


def _iso(value: datetime | None) -> str:
    """ISO 8601 with its offset, in the site's time zone (the CSV)."""
    return timezone.localtime(value, site_timezone()).isoformat() if value else ""


def _iso_text(value: datetime | str | None) -> str:
    """A time as a sentence shows it: ``2026-11-20 10:15 JST``, in the site's time zone."""
    if isinstance(value, str):
        value = parse_datetime(value)
    if value is None:
        return ""
    if timezone.is_naive(value):
        value = timezone.make_aware(value, site_timezone())
    return timezone.localtime(value, site_timezone()).strftime("%Y-%m-%d %H:%M %Z")
