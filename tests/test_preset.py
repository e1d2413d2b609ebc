"""The JSDA 2025 preset: passkeys only for step-up and confirmations, the compliance report, its checks."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
import time_machine
from django.contrib import admin
from django.core.checks import run_checks
from django.utils import timezone

from authguard.models import HeldOrder, LoginEvent
from authguard.testing import SoftAuthenticator

from .conftest import (
    IP_JP_PROXY,
    IP_TOKYO,
    UA_CHROME_WIN,
    UA_FIREFOX_LINUX,
    OrderApi,
    bind_passkey,
    totp_token,
)
from .console_data import staff_client, staff_user

pytestmark = [pytest.mark.django_db]

PRESET = "jsda-2025"


def risky_login(username: str, password: str = "correct horse battery") -> tuple[OrderApi, dict]:
    """Sign in once from home, then from a new browser on a Japanese residential proxy: stepped up."""
    with time_machine.travel(timezone.now() - timedelta(days=3)):
        home = OrderApi(REMOTE_ADDR=IP_TOKYO, HTTP_USER_AGENT=UA_CHROME_WIN)
        home.login(username, password)
    proxy = OrderApi(REMOTE_ADDR=IP_JP_PROXY, HTTP_USER_AGENT=UA_FIREFOX_LINUX)
    answer = proxy.post("/api/login", {"username": username, "password": password})
    assert answer.status_code == 200, answer.content
    assert LoginEvent.objects.order_by("-pk").first().action == "step_up"
    return proxy, answer.json()


@pytest.mark.usefixtures("geoip")
@pytest.mark.parametrize("preset", [None, PRESET])
def test_step_up_accepts_only_passkeys_under_the_preset(
    settings, user_factory, totp_factory, authenticator, preset
):
    settings.AUTHGUARD_PRESET = preset
    alice = user_factory("alice")
    device = totp_factory(alice)
    bind_passkey(alice, authenticator)
    browser, answer = risky_login("alice")
    assert answer["status"] == "step_up_required"
    if preset is None:
        assert "totp" in answer["methods"]
        assert browser.post("/authguard/api/step-up/totp", {"code": totp_token(device)}).status_code == 200
        return
    assert answer["methods"] == ["passkey"]
    refused = browser.post("/authguard/api/step-up/totp", {"code": totp_token(device)})
    assert refused.status_code == 400 and refused.json()["status"] == "invalid"
    # Still pending: the portfolio is not reachable with a TOTP code.
    assert browser.get("/api/portfolio").status_code == 401
    options = browser.post("/authguard/api/step-up/passkey/options")
    assert options.status_code == 200
    assert (
        browser.post("/authguard/api/step-up/passkey", authenticator.get(options.json())).status_code == 200
    )
    assert browser.get("/api/portfolio").status_code == 200


@pytest.mark.parametrize("preset", [None, PRESET])
def test_confirmations_accept_only_passkeys_under_the_preset(
    settings, tanaka, totp_factory, order_api, preset
):
    settings.AUTHGUARD_PRESET = preset
    device = totp_factory(tanaka)  # an authenticator app, no passkey yet
    browser = order_api()
    browser.login("tanaka", "tanaka-demo-2025")
    held = browser.order("buy", "3Z3A", 5000)  # 12 % of what the small cap trades in a day
    assert held.status_code == 202, held.content
    confirmation = held.json()["confirmation"]
    answer = browser.post(
        f"/authguard/api/confirmations/{confirmation['id']}/totp", {"code": totp_token(device)}
    )
    stored = HeldOrder.objects.get(pk=confirmation["id"])
    if preset is None:
        assert confirmation["methods"] == ["totp"]
        assert answer.status_code == 200 and answer.json()["status"] == "confirmed"
        return
    # Under the preset only a passkey may confirm, and this customer has none: nothing is offered.
    assert confirmation["methods"] == [] and stored.methods == []
    assert answer.status_code == 400
    stored.refresh_from_db()
    assert stored.status == HeldOrder.Status.PENDING


def test_under_the_preset_a_confirmation_offers_and_takes_the_passkey(
    settings, tanaka, totp_factory, order_api, authenticator
):
    settings.AUTHGUARD_PRESET = PRESET
    device = totp_factory(tanaka)
    bind_passkey(tanaka, authenticator)
    browser = order_api()
    browser.login("tanaka", "tanaka-demo-2025")
    held = browser.order("buy", "3Z3A", 5000)
    confirmation = held.json()["confirmation"]
    assert held.status_code == 202 and confirmation["methods"] == ["passkey"]
    totp_answer = browser.post(
        f"/authguard/api/confirmations/{confirmation['id']}/totp", {"code": totp_token(device)}
    )
    assert totp_answer.status_code == 400
    assert HeldOrder.objects.get(pk=confirmation["id"]).status == HeldOrder.Status.PENDING
    confirmed = browser.confirm_with_passkey(confirmation["id"], authenticator)
    assert confirmed.status_code == 200 and confirmed.json()["status"] == "confirmed"
    stored = HeldOrder.objects.get(pk=confirmation["id"])
    assert stored.status == HeldOrder.Status.CONFIRMED and stored.confirmed_method == "passkey"


@pytest.fixture
def population(user_factory, totp_factory):
    """Customers with and without passkeys, and accounts the report must leave out."""
    auth = SoftAuthenticator(origin="http://localhost:8000", rp_id="localhost")
    with_passkey = user_factory("kato")
    bind_passkey(with_passkey, auth)
    totp_only = user_factory("sato")
    totp_factory(totp_only)
    user_factory("ito")  # nothing but a password
    half = user_factory("abe")
    unconfirmed = bind_passkey(half, SoftAuthenticator(origin="http://localhost:8000", rp_id="localhost"))
    unconfirmed.confirmed = False
    unconfirmed.save()
    user_factory("gone", is_active=False)  # closed account
    return {"without": {"abe", "ito", "sato"}}


def test_compliance_export_lists_exactly_the_customers_without_a_passkey(settings, population):
    settings.AUTHGUARD_PRESET = PRESET
    desk = staff_client(staff_user("desk", perms=("authguard.view_loginevent", "auth.view_user")))
    export = desk.get("/admin/authguard/loginevent/compliance/", {"format": "csv"})
    assert export.status_code == 200 and export["Content-Type"].startswith("text/csv")
    assert "attachment" in export["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(b"".join(export.streaming_content).decode())))
    assert rows[0][0] == "username"
    assert {row[0] for row in rows[1:]} == population["without"] and len(rows) == 4
    by_name = {row[0]: row for row in rows[1:]}
    assert by_name["sato"][4] == "authenticator app (TOTP)" and by_name["ito"][4] == "none"
    page = desk.get("/admin/authguard/loginevent/compliance/")
    assert page.status_code == 200
    assert page.context["total"] == 3 and page.context["customers"] == 4
    assert "The JSDA 2025 preset is on" in page.content.decode()


def test_compliance_report_needs_the_user_view_permission(population):
    desk = staff_client(staff_user("desk", perms=("authguard.view_loginevent",)))
    assert desk.get("/admin/authguard/loginevent/compliance/", {"format": "csv"}).status_code == 403


def test_a_csv_cell_never_starts_a_formula(user_factory):
    user_factory("=HYPERLINK(1)", email="x@example.jp")
    desk = staff_client(staff_user("desk", perms=("authguard.view_loginevent", "auth.view_user")))
    body = b"".join(desk.get("/admin/authguard/loginevent/compliance/", {"format": "csv"}).streaming_content)
    assert b"'=HYPERLINK(1)" in body


def ids(settings_overrides, settings) -> set[str]:
    for name, value in settings_overrides.items():
        setattr(settings, name, value)
    return {m.id for m in run_checks() if m.id and m.id.startswith("authguard.") and m.id[-3:-1] == "03"}


def test_preset_checks(settings):
    assert ids({"AUTHGUARD_PRESET": None}, settings) == set()
    assert ids({"AUTHGUARD_PRESET": "jsda2025"}, settings) == {"authguard.E035"}
    assert ids({"AUTHGUARD_PRESET": PRESET}, settings) == set()
    assert ids({"AUTHGUARD_STEP_UP_METHODS": ["passkey", "totp"]}, settings) == {"authguard.W035"}
    settings.AUTHGUARD_STEP_UP_METHODS = ["passkey"]
    assert ids({"AUTHGUARD_CONFIRMATION_METHODS": ["totp"]}, settings) == {"authguard.W035"}
    del settings.AUTHGUARD_CONFIRMATION_METHODS
    assert ids({"AUTHGUARD_LOCKOUT_FAILURES": None}, settings) == {"authguard.W036"}
    settings.AUTHGUARD_LOCKOUT_FAILURES = 5
    apps = [*settings.INSTALLED_APPS, "django_otp.plugins.otp_static"]
    registered = dict(admin.site._registry)
    try:
        assert ids({"INSTALLED_APPS": apps}, settings) == {"authguard.W037"}
    finally:
        # Installing the app for a moment registered its models with the admin; the app is gone again, so
        # must they be (else every later admin page asks for an app that is not installed).
        admin.site._registry.clear()
        admin.site._registry.update(registered)
