"""Red team round thirty-nine (a): the security console's date range at the edges of the calendar.

``authguard.console.reports.parse_range`` checks that ``start``/``end`` look like ``YYYY-MM-DD`` and that the
range is at most a year, but not that the days it then computes exist: ``end=0001-01-01`` makes the default
start ``end - 29 days`` (``OverflowError`` in ``parse_range`` itself), and ``end=9999-12-31`` makes
``DateRange.bounds`` compute the day after (``OverflowError``). Neither is a ``ReportError``, so the
dashboard and the incident report (page and CSV) answer 500 instead of the form's error message.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from .console_data import staff_client, staff_user

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]

BASE = "/admin/authguard/loginevent/"


def _desk(brokerage_customer: Any) -> Client:
    brokerage_customer(holdings={"7203": 100}, totp=True)
    client = staff_client(staff_user("root", superuser=True), raise_request_exception=False)
    assert client.get(BASE + "dashboard/").status_code == 200
    return client


@pytest.mark.parametrize(
    "query",
    [
        "dashboard/?end=0001-01-01",
        "incident/?user=hanako&end=0001-01-01",
        "incident/?user=hanako&format=csv&end=0001-01-02",
    ],
    ids=["dashboard", "incident", "incident-csv"],
)
def test_console_range_ending_0001_01_01_answers_its_error_not_a_500(
    brokerage_customer: Any, query: str
) -> None:
    """Secure: a staff member (or a script replaying a bookmarked console link) who types the first day of the
    calendar as the range's end gets the report page with "choose another range", not a server error.
    Had: a verified staff session with the console's view permissions (nothing else)."""
    response = _desk(brokerage_customer).get(BASE + query)
    assert response.status_code < 500, (response.status_code, query)


@pytest.mark.parametrize(
    "query",
    [
        "dashboard/?start=9999-12-31&end=9999-12-31",
        "dashboard/?end=9999-12-31",
        "incident/?user=hanako&start=9999-12-31&end=9999-12-31",
        "incident/?user=hanako&start=0001-01-01&end=0001-01-01",
    ],
    ids=["dashboard-last-day", "dashboard-end-only", "incident-last-day", "incident-first-day"],
)
def test_console_range_on_the_calendars_last_or_first_day_answers_its_error_not_a_500(
    brokerage_customer: Any, query: str
) -> None:
    """Secure: a range that parse_range accepted (a well-formed day at the calendar's edge) is reported on, or
    refused with the form's message; DateRange.bounds (the day after 9999-12-31) and the database's time zone
    conversion of 0001-01-01 00:00 must not turn it into a 500. Had: a verified staff session."""
    response = _desk(brokerage_customer).get(BASE + query)
    assert response.status_code < 500, (response.status_code, query)
