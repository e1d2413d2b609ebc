"""The security settings page and its changes: each factor or email change needs a fresh strong verification.

Battery cases 20 (a step-up older than 5 minutes), 21 (ending other sessions), 22 (enrolling from a
password-only session), 23 (email change) and 42 (``next`` open redirects).
"""

from __future__ import annotations

import base64
import re
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.test import Client
from django.utils import timezone
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from authguard.models import Notification
from authguard.sessions import state as sessions_state
from authguard.sessions.middleware import safe_next

from .conftest import IP_OSAKA, IP_SG_VPS, IP_TOKYO, UA_CHROME_WIN, UA_IPHONE, totp_token

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]


@pytest.fixture
def alice(alice_with_totp: Any) -> Any:
    """alice with an authenticator app (the recipe ``alice_with_totp`` of tests/conftest.py)."""
    return alice_with_totp


@pytest.fixture
def home(alice: Any, browser_at: Any) -> Client:
    """alice signed in from home (allowed outright: verified, but without a strong verification yet)."""
    client = browser_at(IP_TOKYO, UA_CHROME_WIN)
    assert client.sign_in("alice").url == "/"
    return client


def reverify(client: Client, device: Any) -> Any:
    """Confirm it is you again with a real TOTP code (a new time step each time: codes are single use)."""
    response = client.post(
        "/authguard/step-up/totp/?next=/authguard/security/",
        {"code": totp_token(device), "next": "/authguard/security/"},
    )
    assert response.status_code == 302 and response.url == "/authguard/security/", response
    return response


def test_the_security_page_lists_factors_devices_and_recent_logins(home: Client) -> None:
    page = home.get("/authguard/security/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Authenticator app" in html and "phone" in html
    assert "Chrome 131 on Windows 10" in html and "Tokyo, JP" in html  # the remembered device
    assert "NTT Communications (OCN)" in html  # the recent login's network
    assert 'action="/authguard/security/sessions/end-others/"' in html


@pytest.mark.battery(23)
def test_battery_23_the_email_changes_only_after_a_fresh_verification(
    home: Client, alice: Any, authenticator: Any
) -> None:
    from authguard.models import ContactChange

    from .conftest import bind_passkey, passkey_step_up

    stale = home.post("/authguard/security/email/", {"email": "new@example.jp"})
    assert stale.status_code == 302 and stale.url.startswith("/authguard/reverify/?next=/authguard/security/")
    alice.refresh_from_db()
    assert alice.email == "alice@example.jp"
    # Issue 10: one relayed TOTP code is not enough any more; a fresh passkey (or two factors) is.
    reverify(home, alice.totp)
    one_code = home.post("/authguard/security/email/", {"email": "new@example.jp"})
    assert one_code.status_code == 302 and one_code.url.startswith("/authguard/reverify/")
    assert not ContactChange.objects.exists()
    bind_passkey(alice, authenticator)
    assert passkey_step_up(home, authenticator).status_code == 200
    changed = home.post("/authguard/security/email/", {"email": "new@example.jp"})
    assert changed.status_code == 302 and changed.url == "/authguard/security/email/confirm/"
    # The new address must be verified first (a code mailed to it); the address is unchanged until then.
    assert ContactChange.objects.get(user=alice).new_email == "new@example.jp"
    alice.refresh_from_db()
    assert alice.email == "alice@example.jp"


@pytest.mark.battery(20)
def test_battery_20_a_verification_older_than_five_minutes_does_not_allow_changes(
    home: Client, alice: Any
) -> None:
    start = timezone.now()
    reverify(home, alice.totp)
    with time_machine.travel(start + timedelta(minutes=4)):
        assert home.get("/authguard/security/passkeys/add/").status_code == 200
    with time_machine.travel(start + timedelta(minutes=6)):
        response = home.post("/authguard/security/email/", {"email": "late@example.jp"})
        assert response.status_code == 302 and response.url.startswith("/authguard/reverify/")
        assert home.get("/authguard/security/passkeys/add/").status_code == 302
    alice.refresh_from_db()
    assert alice.email == "alice@example.jp"


def test_an_invalid_email_is_refused_with_a_message(home: Client, alice: Any) -> None:
    reverify(home, alice.totp)
    response = home.post("/authguard/security/email/", {"email": "not an address"}, follow=True)
    assert response.status_code == 200 and b"valid email" in response.content
    alice.refresh_from_db()
    assert alice.email == "alice@example.jp"


@pytest.mark.battery(22)
def test_battery_22_adding_a_factor_needs_the_existing_factor(home: Client, alice: Any) -> None:
    for path in ("/authguard/security/passkeys/add/", "/authguard/security/totp/"):
        response = home.get(path)
        assert response.status_code == 302 and response.url.startswith("/authguard/reverify/"), path
    assert list(TOTPDevice.objects.filter(user=alice)) == [alice.totp]
    api = home.post("/authguard/api/passkeys/options", "{}", content_type="application/json")
    assert api.status_code in (401, 403) and api.json()["status"] == "step_up_required"


@pytest.mark.battery(22)
def test_battery_22_a_first_factor_only_from_a_low_risk_session(user_factory: Any, browser_at: Any) -> None:
    carol = user_factory("carol")
    # A session that was not allowed outright by the risk engine (here: force_login, adopted as verified
    # but not low-risk) cannot enroll a first factor.
    adopted = Client(REMOTE_ADDR=IP_TOKYO, HTTP_USER_AGENT=UA_CHROME_WIN)
    adopted.force_login(carol)
    refused = adopted.get("/authguard/security/totp/", follow=True)
    assert b"device and place you have used before" in refused.content
    assert not TOTPDevice.objects.filter(user=carol).exists()
    # From a session the risk engine allowed outright: yes, and the session is not upgraded by it.
    client = browser_at(IP_TOKYO, UA_CHROME_WIN)
    assert client.sign_in("carol").url == "/"
    page = client.get("/authguard/security/totp/")
    assert page.status_code == 200 and b"<svg" in page.content
    secret = re.search(rb'class="authguard-secret">([A-Z2-7]+)<', page.content).group(1).decode()
    padded = secret + "=" * (-len(secret) % 8)
    code = f"{TOTP(base64.b32decode(padded)).token():06d}"
    done = client.post("/authguard/security/totp/", {"code": code})
    assert done.status_code == 302 and done.url == "/authguard/security/"
    assert TOTPDevice.objects.get(user=carol).confirmed
    assert client.session[sessions_state.STATE_KEY]["st"] is None  # enrolling is not a verification


def test_a_wrong_first_code_shows_the_same_secret_again(user_factory: Any, browser_at: Any) -> None:
    user_factory("carol")
    client = browser_at(IP_TOKYO, UA_CHROME_WIN)
    client.sign_in("carol")
    first = client.get("/authguard/security/totp/")
    secret = re.search(rb'class="authguard-secret">([A-Z2-7]+)<', first.content).group(1)
    wrong = client.post("/authguard/security/totp/", {"code": "12345"})
    assert wrong.status_code == 400 and secret in wrong.content


def test_removing_a_factor_needs_a_fresh_verification(home: Client, alice: Any, totp_factory: Any) -> None:
    totp_factory(alice, name="tablet")  # the last strong factor is never removed (issue 10, lifecycle)
    path = f"/authguard/security/factors/totp/{alice.totp.pk}/remove/"
    stale = home.post(path)
    assert stale.status_code == 302 and stale.url.startswith("/authguard/reverify/")
    assert TOTPDevice.objects.filter(pk=alice.totp.pk).exists()
    reverify(home, alice.totp)
    assert home.post(path).url == "/authguard/security/"
    assert not TOTPDevice.objects.filter(pk=alice.totp.pk).exists()
    assert Notification.objects.filter(kind="factor_removed", user=alice).exists()


def test_another_users_factor_cannot_be_removed(
    home: Client, alice: Any, user_factory: Any, totp_factory: Any
):
    bob = user_factory("bob")
    theirs = totp_factory(bob)
    reverify(home, alice.totp)
    home.post(f"/authguard/security/factors/totp/{theirs.pk}/remove/")
    assert TOTPDevice.objects.filter(pk=theirs.pk).exists()


@pytest.mark.battery(21)
def test_battery_21_ending_other_sessions_needs_a_factor(home: Client, alice: Any, browser_at: Any) -> None:
    other = browser_at(IP_TOKYO, UA_CHROME_WIN)
    assert other.sign_in("alice").status_code == 302
    assert other.get("/").status_code == 200
    refused = home.post("/authguard/security/sessions/end-others/")
    assert refused.status_code == 302 and refused.url.startswith("/authguard/reverify/")
    assert other.get("/").status_code == 200  # still signed in
    reverify(home, alice.totp)
    done = home.post("/authguard/security/sessions/end-others/")
    assert done.status_code == 302 and done.url == "/authguard/security/"
    assert other.get("/api/portfolio").json()["status"] == "login_required"
    assert home.get("/").status_code == 200  # this session stays


def test_recovery_codes_are_shown_once_and_step_up_with_one(
    home: Client, alice: Any, browser_at: Any
) -> None:
    start = timezone.now()
    reverify(home, alice.totp)
    shown = home.post("/authguard/security/recovery-codes/")
    assert shown.status_code == 200 and "no-store" in shown["Cache-Control"]
    codes = re.findall(r"<code>([A-Z2-7-]{19})</code>", shown.content.decode())
    assert len(codes) == 10
    page = home.get("/authguard/security/").content.decode()
    assert codes[0] not in page and "10 unused recovery codes" in page
    # A risky login two days later: the chooser offers the recovery code, which works once.
    with time_machine.travel(start + timedelta(days=2)):
        away = browser_at(IP_OSAKA, UA_IPHONE)
        assert away.sign_in("alice").url.startswith("/authguard/step-up/")
        chooser = away.get("/authguard/step-up/").content.decode()
        assert "step-up/recovery-code/" in chooser
        response = away.post("/authguard/step-up/recovery-code/", {"code": codes[0]})
        assert response.status_code == 302 and response.url == "/"
        assert away.session[sessions_state.STATE_KEY]["sm"] == "recovery_code"
    assert Notification.objects.filter(kind="recovery_code_used", user=alice).exists()


@pytest.mark.battery(42)
@pytest.mark.parametrize(
    "target",
    [
        "//evil.example/",
        "/\\evil.example",
        "javascript:alert(1)",
        "https://evil.example/",
        "/\t/evil.example",
        "\\\\evil.example",
        "/%0a/evil.example",
    ],
)
def test_battery_42_next_never_leaves_the_site(target: str, alice: Any, browser_at: Any) -> None:
    assert safe_next(None, target) in (None, "/%0a/evil.example")  # an encoded newline is just a path
    client = browser_at(IP_SG_VPS, UA_CHROME_WIN)
    login = client.get("/login/")
    assert login.status_code == 200
    response = client.post(
        "/login/?next=" + target, {"username": "alice", "password": "correct horse battery", "next": target}
    )
    assert "evil" not in response.url or response.url.startswith("/authguard/step-up/?next=/%250a")
    done = client.post(
        "/authguard/step-up/totp/?next=" + target, {"code": totp_token(alice.totp), "next": target}
    )
    assert done.status_code == 302
    assert done.url.startswith("/") and not done.url.startswith(("//", "/\\"))
    assert "evil" not in done.url or done.url == "/%0a/evil.example"


def test_safe_next_keeps_same_site_paths() -> None:
    assert safe_next(None, "/orders/?page=2") == "/orders/?page=2"
    assert safe_next(None, "") is None and safe_next(None, None) is None
    assert safe_next(None, "/" + "a" * 3000) is None
