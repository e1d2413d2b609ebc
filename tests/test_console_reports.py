"""Reports: date ranges, aggregate figures, the compliance rows and the incident report of an attack."""

from __future__ import annotations

import csv
import io
import os
from datetime import date

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from authguard.console import reports
from authguard.models import HeldOrder, LoginEvent
from authguard.orders import guard as orders

from .console_data import demo_story, staff_client, staff_user

INCIDENT = "/admin/authguard/loginevent/incident/"


# -- date ranges ---------------------------------------------------------------------------------------


def test_default_range_is_the_last_30_days():
    span = reports.parse_range({}, today=date(2026, 12, 1))
    assert (span.start, span.end) == (date(2026, 11, 2), date(2026, 12, 1)) and len(span.days) == 30


@pytest.mark.parametrize(
    "params",
    [
        {"start": "2026-13-01"},
        {"end": "01/12/2026"},
        {"start": ["2026-11-01"]},
        {"start": "2026-11-02", "end": "2026-11-01"},
    ],
)
def test_bad_ranges_raise_a_report_error(params):
    with pytest.raises(reports.ReportError):
        reports.parse_range(params, today=date(2026, 12, 1))


def test_range_bounds_are_whole_local_days(settings):
    settings.TIME_ZONE = "Asia/Tokyo"
    first, after = reports.DateRange(date(2026, 11, 1), date(2026, 11, 1)).bounds()
    assert first.isoformat() == "2026-11-01T00:00:00+09:00" and (after - first).days == 1


def test_csv_cells_never_start_formulas():
    lines = list(reports.csv_lines([["=1+1", "+81", "-", "@SUM", "plain"]]))
    assert lines == ["'=1+1,'+81,'-,'@SUM,plain\r\n"]


# -- the demo's attack ---------------------------------------------------------------------------------


def demo_attack():
    """The demo story (tests/console_data.demo_story), after which the held order expires unconfirmed."""
    built = demo_story()
    assert orders.expire_due() == 1
    return get_user_model().objects.get(username="tanaka"), built


@pytest.mark.django_db
@pytest.mark.usefixtures("geoip")
def test_incident_timeline_shows_the_whole_attack():
    tanaka, built = demo_attack()
    entries = reports.incident_timeline(tanaka)
    assert [e.at for e in entries] == sorted(e.at for e in entries)
    logins = [e for e in entries if e.reference.startswith("login event")]
    assert len(logins) == LoginEvent.objects.filter(user=tanaka).count() == 16 + 1 + 2 + 3
    by_event = {int(e.reference.split()[-1]): e for e in logins}

    vps, tor, takeover = (by_event[pk] for pk in built.attacks)
    assert vps.place == "Singapore, SG" and "AS14061" in vps.network and vps.score == 100
    assert "automation_client" in vps.reasons and "confirmed fraud" in vps.summary
    assert tor.place == "Frankfurt, DE" and "anonymous_tor" in tor.reasons
    assert takeover.kind == "step_up" and "passed step-up" in takeover.summary
    assert takeover.place == "Nagoya, JP" and takeover.device == "Firefox 133 on Linux"
    assert "anonymous_residential_proxy" in takeover.reasons
    # Plain sentences since issue 16 (was "failed login: wrong password or unknown user").
    assert all(by_event[pk].summary == "Failed login: wrong password." for pk in built.wrong_passwords)

    after = [e for e in entries if e.at >= takeover.at]
    order_lines = [e.summary for e in after if e.kind == "order"]
    assert any("sell 250 7203: placed" in s for s in order_lines)
    assert any("sell 150 6758: placed" in s for s in order_lines)
    assert any("buy 5000 3Z3A" in s for s in order_lines)
    held = HeldOrder.objects.get(user=tanaka)
    assert any(e.summary == "held order expired" and str(held.pk) in e.reference for e in after)
    assert any(
        e.kind == "notification"
        and "(order_held)" in e.reference
        and "An order is waiting for your confirmation" in e.summary
        for e in after
    )
    assert any(
        e.kind == "notification"
        and "(new_device_login)" in e.reference
        and "device we did not recognise" in e.summary
        for e in entries
    )
    assert any(e.kind == "factor" and "TOTP" in e.summary for e in entries)


@pytest.mark.django_db
@pytest.mark.usefixtures("geoip")
def test_incident_timeline_in_japanese_names_the_side_of_each_order():
    from django.utils import translation

    tanaka, _ = demo_attack()
    with translation.override("ja"):
        order_lines = [e.summary for e in reports.incident_timeline(tanaka) if e.kind == "order"]
    assert any(s.startswith("注文 7203 250株 売却：") for s in order_lines), order_lines
    assert any(s.startswith("注文 3Z3A 5000株 買付：") for s in order_lines), order_lines
    assert not any(" sell" in s or " buy" in s for s in order_lines)


@pytest.mark.django_db
@pytest.mark.usefixtures("geoip")
def test_incident_page_is_printable_and_its_csv_has_every_entry():
    tanaka, _built = demo_attack()
    desk = staff_client(staff_user("desk", perms=("authguard.view_loginevent", "auth.view_user")))
    page = desk.get(INCIDENT, {"user": "tanaka"})
    assert page.status_code == 200
    html = page.content.decode()
    assert "@media print" in html and 'id="timeline"' in html and "Singapore, SG" in html
    entries = page.context["entries"]
    assert "/admin/authguard/knowndevice/?q=tanaka" in html and "/admin/authguard/heldorder/?q=tanaka" in html
    export = desk.get(INCIDENT, {"user": str(tanaka.pk), "format": "csv"})
    rows = list(csv.reader(io.StringIO(b"".join(export.streaming_content).decode())))
    assert rows[0] == list(reports.INCIDENT_COLUMNS) and len(rows) == len(entries) + 1
    assert any(row[1] == "order" and "3Z3A" in row[2] for row in rows)
    # A date range narrows it to the attack day.
    narrow = desk.get(INCIDENT, {"user": "tanaka", "start": "2026-11-27", "end": "2026-11-28"})
    assert 0 < len(narrow.context["entries"]) < len(entries)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"user": "nobody"}, "No account"),
        ({"user": "x" * 5000}, "No account"),
        ({"user": "tanaka", "start": "soon"}, "must look like"),
    ],
)
def test_incident_page_bad_input_gets_a_message(params, message, user_factory):
    user_factory("tanaka")
    desk = staff_client(staff_user("desk", perms=("authguard.view_loginevent", "auth.view_user")))
    response = desk.get(INCIDENT, params)
    assert response.status_code == 200 and message in response.content.decode()
    assert response.context["entries"] == []
    assert desk.get(INCIDENT, {**params, "format": "csv"}).status_code == 200  # the page, not a CSV


@pytest.mark.django_db
def test_incident_report_needs_permissions(user_factory):
    user_factory("tanaka")
    viewer = staff_client(staff_user("viewer", perms=("authguard.view_loginevent",)))
    assert viewer.get(INCIDENT, {"user": "tanaka"}).status_code == 403


@pytest.mark.django_db
def test_simulate_attack_incident_report(settings, tmp_path):
    """Acceptance 7: after ``simulate_attack`` the report holds the attack's whole timeline."""
    call_command("build_demo_geoip", path=str(tmp_path), stdout=open(os.devnull, "w"))  # noqa: SIM115
    settings.AUTHGUARD_GEOIP_PATH = str(tmp_path)
    call_command("seed_demo", stdout=open(os.devnull, "w"))  # noqa: SIM115
    call_command("simulate_attack", stdout=open(os.devnull, "w"))  # noqa: SIM115
    tanaka = get_user_model().objects.get(username="tanaka")
    entries = reports.incident_timeline(tanaka)
    logins = [e for e in entries if e.reference.startswith("login event")]
    places = {e.place for e in logins}
    assert "Singapore, SG" in places  # the thief's VPS
    denied = [e for e in logins if e.ip == "203.0.113.1"]
    assert denied and all(e.score >= 40 and e.reasons for e in denied)
    proxy = [e for e in logins if e.ip == "198.51.100.65"]
    assert proxy and "anonymous_residential_proxy" in proxy[-1].reasons  # the phishing kit's proxy
    assert proxy[-1].place == "Tokyo, JP" and "KDDI" in proxy[-1].network
    orders_seen = [e for e in entries if e.kind == "order"]
    assert any(": placed" in e.summary for e in orders_seen)
    assert any("7Z2A" in e.summary for e in orders_seen)  # the pump-and-dump buy, held
    assert (
        sum(1 for e in orders_seen if e.summary == "held order expired")
        == HeldOrder.objects.filter(user=tanaka, status=HeldOrder.Status.EXPIRED).count()
        > 0
    )
    assert any(e.kind == "factor" and "passkey" in e.summary for e in entries)
    assert any(
        e.kind == "notification"
        and "(order_held)" in e.reference
        and "An order is waiting for your confirmation" in e.summary
        for e in entries
    )
    # Oldest first: Tanaka's own sign-in at home comes before the thief's.
    assert logins[0].ip == "192.0.2.1" or logins[0].at <= denied[0].at
