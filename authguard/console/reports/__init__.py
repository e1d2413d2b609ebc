"""The numbers behind the security console: dashboard, compliance report and incident report.

Every figure is computed by a handful of aggregate queries (``GROUP BY`` in the database), never by looping
in Python over the login table. The views in :mod:`authguard.console.pages` only parse parameters, call one
function here and render; the CSV exports write the same rows the pages show.

* :func:`categorize` / :data:`CATEGORIES` — the one event taxonomy: what a recorded login event was
  (a password or passkey sign-in, a step-up and how it ended, a re-checked session, a denial, a lock, a
  wrong password...). The dashboard, the incident timeline and :mod:`authguard.risk.backtest` all count by it;
  :func:`category_q` is the same table as a database filter.
* :func:`dashboard` — sign-in attempts over time by category, score distribution, top reasons, step-up
  success, held orders, campaigns and the riskiest networks of a date range.
* :func:`customers_without_passkeys` — the JSDA 2025 compliance report: active customers who have no
  passkey yet (what they use instead, so the firm can publish and follow its migration schedule).
* :func:`incident_timeline` — everything that happened to one account, as sentences, in the site's time
  zone: logins (place, network, device, score, reasons), step-ups, re-checked sessions, factor changes
  (factors removed or replaced since stay, marked so), account locks, orders guarded, held, confirmed or
  cancelled, and notifications sent.

The package, by subject: :mod:`~.base` (date ranges, time zone, CSV), :mod:`~.categories` (the taxonomy),
:mod:`~.aggregates` (dashboard, compliance), :mod:`~.incident` with :mod:`~.timeline` and
:mod:`~.factor_history` (the incident report). Every public name is importable from here as before.
"""

from __future__ import annotations

from authguard.console.reports.aggregates import (
    Dashboard,
    NetworkRow,
    campaigns,
    compliance_rows,
    customers,
    customers_without_passkeys,
    dashboard,
    held_order_counts,
    riskiest_networks,
    step_up_outcomes,
    top_reasons,
)
from authguard.console.reports.base import (
    DEFAULT_RANGE_DAYS,
    MAX_RANGE_DAYS,
    DateRange,
    ReportError,
    csv_lines,
    parse_range,
    site_timezone,
)
from authguard.console.reports.incident import ORDER_SIDES, incident_timeline, timeline_rows
from authguard.console.reports.timeline import INCIDENT_COLUMNS, KIND_LABELS, STATUS_LABELS, TimelineEntry
from authguard.risk.event_categories import (
    CATEGORIES,
    DENIED,
    DENIED_WITHOUT_PASSWORD,
    LOCKED,
    OTHER,
    PASSKEY_SIGN_IN,
    RESCORED_PENDING,
    RESCORED_STEP_UP_FAILED,
    RESCORED_STEPPED_UP,
    SERIES,
    SERIES_CODES,
    SIGNED_IN,
    STEP_UP_FAILED,
    STEP_UP_PENDING,
    STEPPED_UP,
    THROTTLED,
    WRONG_PASSWORD,
    Category,
    categorize,
    category_of,
    category_q,
    codes_where,
)

__all__ = [
    "CATEGORIES",
    "Category",
    "DEFAULT_RANGE_DAYS",
    "DENIED",
    "DENIED_WITHOUT_PASSWORD",
    "Dashboard",
    "DateRange",
    "INCIDENT_COLUMNS",
    "KIND_LABELS",
    "LOCKED",
    "MAX_RANGE_DAYS",
    "NetworkRow",
    "ORDER_SIDES",
    "OTHER",
    "PASSKEY_SIGN_IN",
    "RESCORED_PENDING",
    "RESCORED_STEPPED_UP",
    "RESCORED_STEP_UP_FAILED",
    "ReportError",
    "SERIES",
    "SERIES_CODES",
    "SIGNED_IN",
    "STATUS_LABELS",
    "STEPPED_UP",
    "STEP_UP_FAILED",
    "STEP_UP_PENDING",
    "THROTTLED",
    "TimelineEntry",
    "WRONG_PASSWORD",
    "campaigns",
    "categorize",
    "category_of",
    "category_q",
    "codes_where",
    "compliance_rows",
    "csv_lines",
    "customers",
    "customers_without_passkeys",
    "dashboard",
    "held_order_counts",
    "incident_timeline",
    "parse_range",
    "riskiest_networks",
    "site_timezone",
    "step_up_outcomes",
    "timeline_rows",
    "top_reasons",
]
