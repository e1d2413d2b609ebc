"""Analyst feedback on login events: confirmed fraud or legitimate, for backtests and (optionally) scoring.

* :func:`mark` records a verdict on a :class:`~authguard.models.LoginEvent` (``LoginEvent.feedback``).
* :func:`labels` / :func:`labelled_events` expose the marks, e.g. for a backtest's catches (events marked
  fraud) and friction (events marked legitimate, or logins known good).
* :class:`ConfirmedFraudNetworks` is an *optional* risk signal (not in the default list) that raises the
  risk of a login from a network where analysts confirmed fraud on other accounts.

Why so careful (``risk-model.md`` section 1 and Wiefling et al.): Freeman et al.'s model can use attack
data as p(A|x), but labelled attacks are few and biased towards what was caught, and Wiefling et al.
advise using them "only with caution or not at all". So the signal:

* counts *distinct accounts* with confirmed fraud on the network (one noisy account is not a pattern):
  at least ``min_accounts`` on the /24 (or /48), at least ``min_asn_accounts`` on the ASN;
* needs fraud to dominate the labelled events of an ASN (``min_asn_fraud_share``), so a large consumer
  ISP where fraud also happened is not marked as hostile for its millions of honest customers;
* never scores a network the account itself uses (the victim's own ISP is not evidence against them);
* adds a bounded contribution (``max_score``), the way keystone's ``p(A|ip) = 100c/101`` bounds the
  reputation ratio to about 10;
* uses only marks on events older than the login by ``embargo_hours``, and within ``days``: a backtest
  of a marked event can never "catch" it with its own label (no label leakage).

The marks are read from the database at most once per ``REFRESH_SECONDS`` per process (no query per
login), so the signal is not free of I/O as the built-in ones are, and ``authguard replay`` with it in
the signal list reads the marks once.
"""

from __future__ import annotations

import bisect
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from authguard.models import Feedback, LoginEvent
from authguard.risk.addresses import ip_prefix
from authguard.risk.findings import Finding, RiskSignal
from authguard.risk.history import Evidence

logger = logging.getLogger(__name__)

#: The permission an analyst needs to mark events.
FEEDBACK_PERMISSION = "authguard.change_loginevent"
#: How long one process keeps the marks before reading them again.
REFRESH_SECONDS = 60


def mark(event: LoginEvent, verdict: str, *, by: Any) -> LoginEvent:
    """Record an analyst's verdict (``"fraud"``, ``"legitimate"``, or ``""`` to clear) on ``event``.

    ``by`` must hold ``authguard.change_loginevent``. The signal's table is refreshed in this process at
    once, elsewhere within :data:`REFRESH_SECONDS`.
    """
    if verdict not in {"", *Feedback.values}:
        raise ValueError(f"unknown verdict {verdict!r}; one of {sorted(Feedback.values)} or ''")
    if by is None or not by.has_perm(FEEDBACK_PERMISSION):
        # SECURITY: a fraud mark changes how other customers' logins are scored.
        raise PermissionDenied("marking login events needs the authguard.change_loginevent permission")
    LoginEvent.objects.filter(pk=event.pk).update(feedback=verdict)
    event.feedback = verdict
    logger.info("authguard: event %s marked %r by %s", event.pk, verdict or "(cleared)", by.pk)
    refresh()
    transaction.on_commit(refresh)  # a login scored before the commit may have re-read the old marks
    return event


def labelled_events(*, since: datetime | None = None, until: datetime | None = None) -> QuerySet[LoginEvent]:
    """Events carrying a verdict, oldest first, optionally within ``[since, until)``."""
    events = LoginEvent.objects.exclude(feedback="")
    if since is not None:
        events = events.filter(created_at__gte=since)
    if until is not None:
        events = events.filter(created_at__lt=until)
    return events.order_by("created_at", "pk")


def labels(*, since: datetime | None = None, until: datetime | None = None) -> dict[int, str]:
    """``{event id: "fraud" | "legitimate"}``: the ground truth a backtest scores a policy against."""
    return dict(labelled_events(since=since, until=until).values_list("pk", "feedback"))


# -- the table of confirmed fraud, by network ----------------------------------------------------------------


@dataclass(frozen=True)
class Marks:
    """Verdicts by network: for each key, the (time, user id) of its fraud marks, sorted by time."""

    fraud_by_prefix: dict[str, tuple[tuple[float, int | None], ...]]
    fraud_by_asn: dict[int, tuple[tuple[float, int | None], ...]]
    legitimate_by_asn: dict[int, tuple[float, ...]]


def load_marks() -> Marks:
    """Read every marked event from the database (marks are few: they are set by people)."""
    prefix: dict[str, list[tuple[float, int | None]]] = defaultdict(list)
    asn: dict[int, list[tuple[float, int | None]]] = defaultdict(list)
    legit: dict[int, list[float]] = defaultdict(list)
    rows = labelled_events().values_list("created_at", "user_id", "ip", "asn", "feedback")
    for created_at, user_id, ip, asn_number, verdict in rows:
        when = created_at.timestamp()
        if verdict == Feedback.FRAUD:
            net = ip_prefix(ip) if ip else None
            if net:
                prefix[net].append((when, user_id))
            if asn_number is not None:
                asn[asn_number].append((when, user_id))
        elif verdict == Feedback.LEGITIMATE and asn_number is not None:
            legit[asn_number].append(when)
    return Marks(
        fraud_by_prefix={k: tuple(sorted(v, key=lambda m: m[0])) for k, v in prefix.items()},
        fraud_by_asn={k: tuple(sorted(v, key=lambda m: m[0])) for k, v in asn.items()},
        legitimate_by_asn={k: tuple(sorted(v)) for k, v in legit.items()},
    )


_lock = threading.Lock()
_memo: dict[str, Any] = {"marks": None, "loaded": 0.0}


def current_marks() -> Marks:
    """The marks, read at most once per :data:`REFRESH_SECONDS` in this process."""
    marks, loaded = _memo["marks"], _memo["loaded"]
    if marks is None or time.monotonic() - loaded > REFRESH_SECONDS:
        marks = load_marks()
        with _lock:
            _memo["marks"], _memo["loaded"] = marks, time.monotonic()
    return marks


def refresh() -> None:
    """Forget the marks held by this process (the next login reads them again)."""
    with _lock:
        _memo["marks"], _memo["loaded"] = None, 0.0


def _window(marks: Iterable[tuple[float, int | None]], start: float, end: float) -> set[int | None]:
    """Distinct accounts among marks in ``[start, end)`` (``marks`` sorted by time)."""
    items = tuple(marks)
    lo = bisect.bisect_left(items, start, key=lambda m: m[0])
    return {user for when, user in items[lo:] if when < end}


class ConfirmedFraudNetworks(RiskSignal):
    """A network (a /24 or /48, or an ASN) where analysts confirmed fraud on other accounts. Optional.

    Add ``{"NAME": "authguard.feedback.ConfirmedFraudNetworks"}`` to ``AUTHGUARD_RISK_SIGNALS`` (or try it
    first as a shadow signal of the run-time policy). See the module docstring for the precautions.
    """

    defaults = {
        "days": 90,
        "embargo_hours": 1,
        "min_accounts": 2,
        "prefix_score": 25,
        "min_asn_accounts": 3,
        "min_asn_fraud_share": 0.5,
        "asn_score": 15,
        "max_score": 30,
    }

    def evaluate(self, evidence: Evidence) -> Iterable[Finding]:
        o = self.options
        ctx = evidence.ctx
        end = (ctx.time - timedelta(hours=o["embargo_hours"])).timestamp()
        start = end - o["days"] * 86400
        marks = current_marks()
        own = ctx.user_id
        prefix = ctx.prefix
        findings: list[Finding] = []
        if prefix and evidence.profile.count("prefix", ctx.features["prefix"]) == 0:
            accounts = {a for a in _window(marks.fraud_by_prefix.get(prefix, ()), start, end) if a != own}
            if len(accounts) >= o["min_accounts"]:
                findings.append(
                    Finding(
                        "confirmed_fraud_network",
                        min(o["prefix_score"], o["max_score"]),
                        _("A network where fraud on other accounts was confirmed"),
                        {"prefix": prefix, "accounts": len(accounts)},
                    )
                )
        asn = ctx.geo.asn
        if not findings and asn is not None and evidence.profile.count("asn", str(asn)) == 0:
            accounts = {a for a in _window(marks.fraud_by_asn.get(asn, ()), start, end) if a != own}
            fraud = len(accounts)
            legit = sum(1 for when in marks.legitimate_by_asn.get(asn, ()) if start <= when < end)
            share = fraud / (fraud + legit) if fraud + legit else 0.0
            if fraud >= o["min_asn_accounts"] and share >= o["min_asn_fraud_share"]:
                findings.append(
                    Finding(
                        "confirmed_fraud_asn",
                        min(o["asn_score"], o["max_score"]),
                        _("A provider network where analysts confirmed fraud on several accounts"),
                        {"asn": asn, "accounts": fraud, "fraud_share": round(share, 3)},
                    )
                )
        return findings
