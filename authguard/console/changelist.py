"""The console's change list: what the query string may ask of a list beyond what its own filters take.

Django's :class:`~django.contrib.admin.views.main.ChangeList` answers a malformed filter with its "invalid
filter" page (``?e=1``, :class:`IncorrectLookupParameters`), but not every malformed one: a date drill-down
whose period ends after 9999-12-31 raises while Django computes it, a date filter on year 1 overflows in the
database's time-zone conversion, and any other lookup on a filtered field (``?created_at__year=0``) reaches
the query as it is. Each was a 500 (red team, fuzz round seventy-one), as was a NUL in any filter's value on
PostgreSQL.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

from django.contrib.admin.filters import FieldListFilter, ListFilter
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import ValidationError
from django.db.models import DateField
from django.http import HttpRequest

from authguard.console.reports.base import FIRST_DAY, LAST_DAY
from authguard.login.attempt import readable

#: The date drill-down's parts: ASCII digits within the console's calendar (the reports' own days).
_DRILL_DOWN = {"year": (FIRST_DAY.year, LAST_DAY.year), "month": (1, 12), "day": (1, 31)}
_DIGITS = re.compile(r"[0-9]{1,4}")


class ConsoleChangeList(ChangeList):
    """A change list that takes, for each filter of the page, only the parameters that filter declares
    (``expected_parameters()``), the date drill-down within 1970-9998, and the lookups its admin applies
    unfiltered (:meth:`~authguard.console.mixins.DeclaredFiltersMixin.unfiltered_lookup`, the customer
    filter); anything else is :class:`IncorrectLookupParameters`, the admin's ``?e=1`` page."""

    def get_filters(self, request: HttpRequest) -> Any:
        params = self.get_filters_params()
        for key, values in params.items():
            if not all(readable(value) for value in values):  # NUL: a DataError on PostgreSQL
                raise IncorrectLookupParameters(f"{key}: not text")
        drilled = self._check_drill_down(params)
        try:
            specs, has_filters, remaining, may_have_duplicates, has_active = super().get_filters(request)
        except (ValueError, OverflowError) as exc:  # the drill-down's period, computed by Django
            raise IncorrectLookupParameters(exc) from exc
        for spec in specs:
            _check_dates(spec)
        unfiltered = getattr(self.model_admin, "unfiltered_lookup", lambda lookup: False)
        for key in remaining:
            if key not in drilled and not unfiltered(key):
                raise IncorrectLookupParameters(f"{key}: not a parameter of this list's filters")
        return specs, has_filters, remaining, may_have_duplicates, has_active

    def _check_drill_down(self, params: dict[str, Any]) -> set[str]:
        """Refuse drill-down parts that are not ASCII digits in range; return the bounds Django puts in their
        place (``<field>__gte``/``__lt``) when there is a drill-down."""
        if not self.date_hierarchy:
            return set()
        field = self.date_hierarchy
        for part, (low, high) in _DRILL_DOWN.items():
            for raw in params.get(f"{field}__{part}", ()):
                if not (_DIGITS.fullmatch(str(raw)) and low <= int(raw) <= high):
                    raise IncorrectLookupParameters(f"{field}__{part}: not a {part} from {low} to {high}")
        return {f"{field}__gte", f"{field}__lt"} if f"{field}__year" in params else set()


def _check_dates(spec: ListFilter) -> None:
    """A date filter's bounds (``__gte``/``__lt`` of ``DateFieldListFilter``) must be days from 1970 to 9998:
    year 1 overflows in the database's conversion to UTC, after the filter's own check."""
    if not isinstance(spec, FieldListFilter) or not isinstance(spec.field, DateField):
        return
    for key, values in spec.used_parameters.items():
        if key.endswith("__isnull"):
            continue
        for raw in values if isinstance(values, list) else [values]:
            try:
                value = spec.field.to_python(raw)
            except ValidationError as exc:
                raise IncorrectLookupParameters(exc) from exc
            day = value.date() if isinstance(value, datetime) else value
            if not isinstance(day, date) or not FIRST_DAY <= day <= LAST_DAY:
                raise IncorrectLookupParameters(f"{key}: not a day from {FIRST_DAY} to {LAST_DAY}")


__all__ = ["ConsoleChangeList"]
