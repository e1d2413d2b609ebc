"""Every password login (HTML form, JSON API, admin) and every failed one is scored and recorded."""

from __future__ import annotations

import json

import pytest
from django.test import Client, override_settings

from authguard.models import KnownDevice, LoginEvent, Outcome, RiskProfile

from .conftest import IP_SG_VPS, IP_TOKYO, IP_TOR, UA_CHROME_WIN, UA_CURL

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]


def api_login(client: Client, username: str, password: str, *, ip: str = IP_TOKYO, ua: str = UA_CHROME_WIN):
    client.get("/api/csrf", REMOTE_ADDR=ip, HTTP_USER_AGENT=ua)
    return client.post(
        "/api/login",
        json.dumps({"username": username, "password": password}),
        content_type="application/json",
        REMOTE_ADDR=ip,
        HTTP_USER_AGENT=ua,
        HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value,
    )


def test_allowed_html_login_is_recorded_and_learned(user_factory, login_as, client):
    user = user_factory("alice")
    client.get(
        "/login/", REMOTE_ADDR=IP_TOKYO, HTTP_USER_AGENT=UA_CHROME_WIN
    )  # the device cookie is issued here
    assert "authguard_device" in client.cookies
    response = login_as("alice")
    assert response.status_code == 302 and response.url == "/"
    event = LoginEvent.objects.get()
    assert (event.user, event.password_ok, event.action, event.outcome) == (
        user,
        True,
        "allow",
        Outcome.SIGNED_IN,
    )
    assert (event.ip, event.country, event.city, event.asn) == (IP_TOKYO, "JP", "Tokyo", 4713)
    assert event.device_summary == "Chrome 131 on Windows 10" and len(event.device_hash) == 64
    assert "no_history" in event.reasons and event.findings[0]["reason"]
    assert RiskProfile.objects.get(user=user).data["n"] == [0, 1]
    device = KnownDevice.objects.get(user=user)
    assert device.cookie_hash == event.device_hash and device.last_place == "Tokyo, JP"
    assert client.get("/", REMOTE_ADDR=IP_TOKYO, HTTP_USER_AGENT=UA_CHROME_WIN).status_code == 200


def test_the_device_cookie_is_httponly_lax_and_long_lived(client):
    response = client.get("/login/")
    morsel = response.cookies["authguard_device"]
    assert morsel["httponly"] and morsel["samesite"] == "Lax" and int(morsel["max-age"]) > 300 * 86400
    assert not morsel["secure"]  # plain http here; Secure under HTTPS
    assert "authguard_device" not in client.get("/login/", secure=True).cookies  # a valid cookie is kept


def test_risky_html_login_is_refused_and_leaves_no_session(user_factory, login_as, client):
    user_factory("alice")
    response = login_as("alice", ip=IP_TOR, ua=UA_CURL)
    assert response.status_code == 302 and response.url == "/authguard/denied/"
    assert "_auth_user_id" not in client.session
    event = LoginEvent.objects.get()
    assert event.action in ("step_up", "deny") and event.outcome == Outcome.REFUSED
    assert {"anonymous_tor", "automation_client"} <= set(event.reasons)
    assert not RiskProfile.objects.exists()  # a refused login teaches the profile nothing
    assert client.get("/").status_code == 302
    assert client.get("/authguard/denied/").status_code == 403


def test_failed_logins_are_recorded_for_known_and_unknown_users(user_factory, login_as):
    user = user_factory("alice")
    login_as("alice", "wrong")
    login_as("nobody", "wrong")
    events = list(LoginEvent.objects.order_by("id"))
    assert [(e.user, e.username, e.password_ok, e.outcome) for e in events] == [
        (user, "alice", False, Outcome.BAD_PASSWORD),
        (None, "nobody", False, Outcome.BAD_PASSWORD),
    ]


def test_api_login_statuses(user_factory, client):
    user_factory("alice")
    ok = api_login(client, "alice", "correct horse battery")
    assert ok.status_code == 200 and ok.json()["status"] == "ok"
    wrong = api_login(Client(enforce_csrf_checks=True), "alice", "nope")
    unknown = api_login(Client(enforce_csrf_checks=True), "mallory", "nope")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    risky = api_login(
        Client(enforce_csrf_checks=True), "alice", "correct horse battery", ip=IP_TOR, ua=UA_CURL
    )
    assert risky.status_code == 403 and risky.json()["status"] == "denied"


def test_api_login_is_throttled_after_many_failures_from_one_ip(user_factory, settings):
    settings.AUTHGUARD_LOGIN_THROTTLE = {"ip_failures": 3}
    user_factory("alice")
    for i in range(3):
        assert api_login(Client(enforce_csrf_checks=True), f"user{i}", "x", ip=IP_SG_VPS).status_code == 401
    blocked = api_login(Client(enforce_csrf_checks=True), "alice", "correct horse battery", ip=IP_SG_VPS)
    assert blocked.status_code == 429 and blocked.json()["status"] == "throttled"
    assert LoginEvent.objects.filter(outcome=Outcome.THROTTLED).count() == 1
    # Another IP is not affected.
    assert api_login(Client(enforce_csrf_checks=True), "alice", "correct horse battery").status_code == 200


def test_html_and_admin_logins_are_throttled_too(user_factory, settings, login_as, client):
    settings.AUTHGUARD_LOGIN_THROTTLE = {"ip_failures": 2}
    user_factory("admin", is_staff=True, is_superuser=True)
    login_as("x", "y", ip=IP_SG_VPS)
    login_as("x", "y", ip=IP_SG_VPS)
    response = client.post(
        "/admin/login/?next=/admin/",
        {"username": "admin", "password": "correct horse battery"},
        REMOTE_ADDR=IP_SG_VPS,
    )
    assert response.status_code == 200  # the form again: the password was never checked
    assert "_auth_user_id" not in client.session


def test_admin_login_is_scored(user_factory, client):
    user_factory("admin", is_staff=True, is_superuser=True)
    response = client.post(
        "/admin/login/?next=/admin/",
        {"username": "admin", "password": "correct horse battery"},
        REMOTE_ADDR=IP_TOKYO,
        HTTP_USER_AGENT=UA_CHROME_WIN,
    )
    assert response.status_code == 302
    assert LoginEvent.objects.get().user.username == "admin"


def test_force_login_outside_a_request_is_not_scored(user_factory, client):
    client.force_login(user_factory("alice"))
    assert client.get("/").status_code == 200
    assert not LoginEvent.objects.exists()


def test_login_event_is_readable_in_the_admin_with_its_explanation(user_factory, login_as, client):
    user_factory("alice")
    login_as("alice", ip=IP_TOR, ua=UA_CURL)
    event = LoginEvent.objects.get()
    from .staff_fixtures import staff_client

    admin = user_factory("sec", is_staff=True, is_superuser=True)
    staff = staff_client(admin)  # the console asks staff for their passkey (issue 10, staff part)
    listing = staff.get("/admin/authguard/loginevent/?reason=anonymous_tor")
    assert listing.status_code == 200 and b"alice" in listing.content
    detail = staff.get(f"/admin/authguard/loginevent/{event.pk}/change/")
    assert detail.status_code == 200
    assert b"anonymous_tor" in detail.content and b"Signed in through the Tor network" in detail.content
    assert staff.post(f"/admin/authguard/loginevent/{event.pk}/delete/").status_code == 403
    assert staff.get("/admin/authguard/loginevent/add/").status_code == 403


def test_a_risky_admin_login_is_held_at_step_up(user_factory, client):
    from django_otp.plugins.otp_totp.models import TOTPDevice

    admin = user_factory("admin", is_staff=True, is_superuser=True)
    TOTPDevice.objects.create(user=admin, name="phone", confirmed=True)
    response = client.post(
        "/admin/login/?next=/admin/",
        {"username": "admin", "password": "correct horse battery", "next": "/admin/"},
        REMOTE_ADDR=IP_SG_VPS,
        HTTP_USER_AGENT=UA_CHROME_WIN,
    )
    assert response.status_code == 302 and response.url == "/authguard/step-up/?next=/admin/"
    assert LoginEvent.objects.get().outcome == Outcome.STEP_UP_PENDING
    held = client.get("/admin/", REMOTE_ADDR=IP_SG_VPS, HTTP_USER_AGENT=UA_CHROME_WIN)
    assert held.status_code == 302 and held.url.startswith("/authguard/step-up/")


@pytest.mark.parametrize(
    "populated_again", [False, True], ids=["registry-as-loaded", "registry-populated-again"]
)
def test_a_refused_login_leaves_last_login_alone_and_an_allowed_one_sets_it(
    user_factory, login_as, settings, populated_again
):
    """Issue 14, item 7: ``last_login`` (a portal's "your last sign-in") never records the thief's refusal.

    Also after INSTALLED_APPS is overridden (it runs every ``ready()`` again and Django's auth app
    reconnects its ``update_last_login``), even while django-otp is out: CI found that one."""
    if populated_again:
        without_otp = [app for app in settings.INSTALLED_APPS if not app.startswith("django_otp")]
        with override_settings(INSTALLED_APPS=without_otp):
            pass
    user = user_factory("alice")
    assert user.last_login is None
    assert login_as("alice", ip=IP_TOR, ua=UA_CURL).url == "/authguard/denied/"
    user.refresh_from_db()
    assert user.last_login is None
    assert login_as("alice").url == "/"
    user.refresh_from_db()
    assert user.last_login is not None


def test_force_login_outside_a_request_still_sets_last_login(user_factory, client):
    user = user_factory("alice")
    client.force_login(user)
    user.refresh_from_db()
    assert user.last_login is not None and not LoginEvent.objects.exists()


def _portfolio(client: Client) -> int:
    return client.get("/api/portfolio", REMOTE_ADDR=IP_TOKYO, HTTP_USER_AGENT=UA_CHROME_WIN).status_code


def test_signing_in_again_through_a_live_session_gives_a_new_key_and_ends_every_copy(brokerage_customer):
    """Red team, 2026-12-04: Django's login() keeps the key when the same user signs in again through a
    live session, so a copy of the session cookie (an infostealer takes the whole jar) survived the
    customer's new sign-in, and a thief's re-login through the copy restarted the timeouts of both."""
    from django.conf import settings

    from authguard.models import SessionRecord

    from .conftest import HANAKO_PASSWORD

    brokerage_customer(holdings={"7203": 100})
    home = Client()
    assert api_login(home, "hanako", HANAKO_PASSWORD).json()["status"] == "ok"
    first = home.cookies[settings.SESSION_COOKIE_NAME].value
    copy = Client()
    for name, morsel in home.cookies.items():
        copy.cookies[name] = morsel.value
    assert _portfolio(copy) == 200

    assert api_login(home, "hanako", HANAKO_PASSWORD).json()["status"] == "ok"

    second = home.cookies[settings.SESSION_COOKIE_NAME].value
    assert second != first
    assert _portfolio(home) == 200
    assert _portfolio(copy) == 401  # the copy of the old key is signed out
    assert list(SessionRecord.objects.values_list("session_key", flat=True)) == [second]
