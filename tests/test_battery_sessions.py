"""Issue 10, the session side: locks that protect, password resets, re-scoring, remembered devices.

Battery cases (../shared/research/security-battery.md, section 5b): 59 (a lock by wrong passwords while the
thief's session trades), 61 (a stolen session moved where a fresh login would be refused), and the session
side of 56 (one relayed TOTP code buys one session, nothing that lasts) and 58 (a password reset ends every
session and revokes the factors added during a cooling-off). Each test goes end to end through the demo's
JSON API or pages with the in-process client, and fails on the code before issue 10.
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime, timedelta
from importlib import import_module
from typing import Any

import pytest
import time_machine
from django.conf import settings as django_settings
from django.contrib.auth.hashers import make_password
from django.core import mail
from django.test import Client

from authguard.conf import app_settings
from authguard.factors import methods as factor_methods
from authguard.factors.recovery import RECOVERY_CODE_LENGTH, format_recovery_code
from authguard.login import lockout, unlocking
from authguard.login.flow import locked_message, password_changed
from authguard.models import (
    AccountLock,
    KnownDevice,
    LoginEvent,
    Notification,
    Outcome,
    PasskeyDevice,
    RecoveryCode,
    RecoveryCodeDevice,
    SessionRecord,
    StaffApproval,
)
from authguard.models.factors import recovery_digest as _recovery_digest
from authguard.sessions import state as sessions_state
from demo_site.brokerage.models import Order

from .conftest import (
    HANAKO_PASSWORD,
    IP_DOCOMO,
    IP_JP_PROXY,
    IP_OSAKA,
    IP_SG_VPS,
    IP_TOKYO,
    IP_TOKYO_2,
    UA_CHROME_WIN,
    UA_FIREFOX_LINUX,
    OrderApi,
    bind_passkey,
    passkey_step_up,
    totp_token,
    wrong_code,
)

#: Every attack runs twice: under the default settings and under the ``jsda-2025`` preset (issue 10,
#: acceptance 2). Where the preset refuses an attack's first step, the test asserts that refusal and ends;
#: where it gives the customer another way back (passkey or the desk only), the test asserts that way.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("both_presets")]

SessionStore = import_module(django_settings.SESSION_ENGINE).SessionStore
WRONG = "not-the-password"
START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
#: What the preset tells a customer whose account cannot be unlocked with codes (passkey or the desk only).
CODES_REFUSED = "This account cannot be unlocked this way. Use your passkey or call customer support."


@pytest.fixture
def preset(both_presets: str | None) -> str | None:
    """The leg this test runs in: ``None`` (the default settings) or ``"jsda-2025"``."""
    return both_presets


def give_recovery_codes(user: Any, count: int = 3) -> list[str]:
    """Recovery codes the customer printed long ago (stored as authguard stores them)."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    codes = ["".join(secrets.choice(alphabet) for _ in range(RECOVERY_CODE_LENGTH)) for _ in range(count)]
    device = RecoveryCodeDevice.objects.create(user=user, name="Recovery codes", confirmed=True)
    RecoveryCode.objects.bulk_create(
        RecoveryCode(device=device, digest=_recovery_digest(device.pk, code), hashed=make_password(code))
        for code in codes
    )
    return [format_recovery_code(code) for code in codes]


def login_answer(ip: str, password: str) -> Any:
    """One sign-in attempt through the demo's JSON API from a fresh browser at ``ip``."""
    return OrderApi(REMOTE_ADDR=ip).post("/api/login", {"username": "hanako", "password": password})


def lock_state(user: Any) -> tuple[Any, ...]:
    """Everything an unlock request could change: the lock, the recovery codes, the TOTP code's use, the
    messages about an unlock."""
    lock = AccountLock.objects.get(user=user)
    user.totp.refresh_from_db()
    return (
        lock.locked_at,
        lock.failures,
        lock.unlock_due_at,
        lock.unlock_reference_digest,
        RecoveryCode.objects.filter(device__user=user, used_at__isnull=True).count(),
        user.totp.last_t,
        Notification.objects.filter(kind__startswith="unlock_").count(),
    )


def codes_unlock_refused(api: OrderApi, user: Any, body: dict[str, Any]) -> None:
    """Under the ``jsda-2025`` preset a locked account is unlocked only by its passkey or the desk: asking
    with an authenticator code plus a recovery code is refused before either code is checked, and nothing
    changes (no waiting unlock, no code spent, nothing counted, no message)."""
    before = lock_state(user)
    refused = api.post("/api/unlock/codes", body)
    assert refused.status_code == 403, refused.content
    assert refused.json() == {"status": "denied", "message": CODES_REFUSED}
    assert lock_state(user) == before
    assert before[0] is not None and before[2] is None  # still locked, no unlock waiting
    assert lockout.is_locked(user)


def lock_hanako(settings: Any, *, failures: int = 3) -> None:
    """Lock hanako with wrong passwords from anywhere, as a thief (or a prankster) can."""
    settings.AUTHGUARD_LOCKOUT_FAILURES = failures
    for _ in range(failures):
        assert login_answer(IP_JP_PROXY, WRONG).status_code == 401
    assert AccountLock.objects.get(user__username="hanako").is_locked


@pytest.fixture
def totp_hanako(hanako: Any, totp_factory: Any) -> Any:
    """The demo customer with an authenticator app (no passkey)."""
    hanako.totp = totp_factory(hanako)
    return hanako


# -- case 59: locks that protect -------------------------------------------------------------------------


@pytest.mark.battery(59)
def test_battery_59_a_lock_ends_every_session_the_thiefs_open_one_included(
    hanako: Any, order_api: Any, settings: Any
) -> None:
    customer = order_api(REMOTE_ADDR=IP_TOKYO)
    customer.login("hanako", HANAKO_PASSWORD)
    thief = order_api(REMOTE_ADDR=IP_OSAKA)
    thief.login("hanako", HANAKO_PASSWORD)
    assert thief.get("/api/portfolio").status_code == 200
    lock_hanako(settings)
    for browser in (thief, customer):
        answer = browser.get("/api/portfolio")
        assert answer.status_code == 401 and answer.json()["status"] == "login_required"
    order = thief.order("sell", "7203", 100)
    assert order.status_code == 401 and not Order.objects.exists()
    assert not SessionRecord.objects.filter(user=hanako).exists()
    customer_notice = Notification.objects.get(kind="account_locked", staff=False)
    assert customer_notice.context["ended"] == 2


@pytest.mark.battery(59)
@pytest.mark.usefixtures("geoip")
def test_battery_59_the_session_whose_guesses_lock_the_account_ends_with_its_answer(
    totp_hanako: Any, settings: Any, preset: Any
) -> None:
    settings.AUTHGUARD_LOCKOUT_FAILURES = 3
    thief = OrderApi(REMOTE_ADDR=IP_DOCOMO, HTTP_USER_AGENT=UA_FIREFOX_LINUX)
    assert thief.post("/api/login", {"username": "hanako", "password": HANAKO_PASSWORD}).status_code == 200
    key = thief.client.cookies[django_settings.SESSION_COOKIE_NAME].value
    if preset:
        # The preset accepts no TOTP code at step-up: each guess is refused before it is checked, so the
        # thief learns nothing and counts nothing; there is no run of failures for this session to end.
        for _ in range(3):
            answer = thief.post("/authguard/api/step-up/totp", {"code": wrong_code(totp_hanako.totp)})
            assert answer.status_code == 400 and answer.json()["code"] == "method_unavailable"
        assert not lockout.is_locked(totp_hanako) and not AccountLock.objects.exists()
        assert not Notification.objects.filter(kind__in=("account_locked", "step_up_failures")).exists()
        return
    for _ in range(3):
        if lockout.is_locked(totp_hanako):
            break
        answer = thief.post("/authguard/api/step-up/totp", {"code": wrong_code(totp_hanako.totp)})
        assert answer.status_code in (400, 429)
    assert lockout.is_locked(totp_hanako)
    assert not SessionStore().exists(key)
    assert thief.client.cookies[django_settings.SESSION_COOKIE_NAME].value in ("", key)
    follow = thief.get("/api/portfolio")
    assert follow.status_code == 401 and follow.json()["status"] == "login_required"


@pytest.mark.battery(59)
def test_battery_59_a_locked_account_answers_the_same_for_a_right_and_a_wrong_password(
    hanako: Any, order_api: Any, settings: Any, browser_at: Any, preset: Any
) -> None:
    lock_hanako(settings)
    right, wrong = login_answer(IP_TOKYO, HANAKO_PASSWORD), login_answer(IP_TOKYO, WRONG)
    assert right.status_code == wrong.status_code == 403
    assert right.json() == wrong.json()
    body = right.json()
    assert body["status"] == "denied" and body["code"] == "locked"
    assert body["unlock"]["passkey"]["verify"] == "/authguard/api/unlock"
    if preset:
        # The preset's ways back are the passkey and the desk only: no word of codes, no codes path.
        assert "passkey" in body["message"] and "support" in body["message"]
        assert "recovery code" not in body["message"] and "authenticator" not in body["message"]
        assert body["unlock"]["codes"] is None and body["unlock"]["desk"] is True
    else:
        assert "passkey" in body["message"] and "recovery code" in body["message"]
        assert body["unlock"]["codes"] == "/api/unlock/codes"
    # The HTML login page: the same page for both, telling the customer how to get back in.
    pages = [browser_at(IP_TOKYO).sign_in("hanako", password) for password in (HANAKO_PASSWORD, WRONG)]
    assert [page.status_code for page in pages] == [200, 200]
    errors = [
        re.search(rb'<div class="form-errors" role="alert">(.*?)</div>', p.content, re.S) for p in pages
    ]
    assert errors[0] and errors[1] and errors[0].group(1) == errors[1].group(1)
    if preset:
        assert "recovery code" not in errors[0].group(1).decode()
        assert "passkey" in errors[0].group(1).decode() and "support" in errors[0].group(1).decode()
    else:
        assert "recovery code" in errors[0].group(1).decode()
    # Nothing was checked, so nothing was counted or signed in.
    assert AccountLock.objects.get(user=hanako).failures == 3
    assert not SessionRecord.objects.filter(user=hanako).exists()
    assert LoginEvent.objects.filter(outcome=Outcome.REFUSED, password_ok=False).count() == 4


@pytest.mark.battery(59)
def test_battery_59_a_fresh_password_sign_in_does_not_reset_the_failure_run(
    hanako: Any, order_api: Any, settings: Any
) -> None:
    settings.AUTHGUARD_LOCKOUT_FAILURES = 3
    for _ in range(2):
        login_answer(IP_JP_PROXY, WRONG)
    order_api(REMOTE_ADDR=IP_TOKYO).login("hanako", HANAKO_PASSWORD)  # allowed, password only
    assert AccountLock.objects.get(user=hanako).failures == 2
    login_answer(IP_JP_PROXY, WRONG)
    assert lockout.is_locked(hanako)


@pytest.mark.battery(59)
def test_battery_59_a_passkey_step_up_resets_the_run_and_old_failures_expire(
    hanako: Any, settings: Any, browser_at: Any, authenticator: Any, geoip: Any
) -> None:
    settings.AUTHGUARD_LOCKOUT_FAILURES = 3
    bind_passkey(hanako, authenticator)
    with time_machine.travel(START, tick=False) as clock:
        for _ in range(2):
            login_answer(IP_JP_PROXY, WRONG)
        pending = browser_at(IP_SG_VPS, UA_CHROME_WIN)
        assert pending.sign_in("hanako", HANAKO_PASSWORD).url.startswith("/authguard/step-up/")
        assert passkey_step_up(pending, authenticator).status_code == 200
        assert AccountLock.objects.get(user=hanako).failures == 0
        for _ in range(2):
            login_answer(IP_JP_PROXY, WRONG)
        clock.shift(timedelta(hours=25))  # a run older than AUTHGUARD_LOCKOUT_FAILURE_WINDOW_HOURS is over
        login_answer(IP_JP_PROXY, WRONG)
        assert not lockout.is_locked(hanako)
        assert AccountLock.objects.get(user=hanako).failures == 1


@pytest.mark.battery(59)
@pytest.mark.usefixtures("geoip")  # IP_TOKYO is in Tokyo: her first sign-in after the unlock is from home
def test_battery_59_a_totp_customer_unlocks_with_two_codes_after_the_waiting_period(
    totp_hanako: Any, settings: Any, preset: Any
) -> None:
    codes = give_recovery_codes(totp_hanako)
    with time_machine.travel(START, tick=False) as clock:
        lock_hanako(settings)
        api = OrderApi(REMOTE_ADDR=IP_TOKYO)
        body = {"username": "hanako", "totp_code": totp_token(totp_hanako.totp), "recovery_code": codes[0]}
        if preset:
            # The preset unlocks only with the passkey or at the desk: the two codes are refused (told so),
            # and no waiting period ever unlocks the account.
            codes_unlock_refused(api, totp_hanako, body)
            clock.shift(timedelta(days=3))
            assert login_answer(IP_TOKYO, HANAKO_PASSWORD).json()["code"] == "locked"
            assert not Notification.objects.filter(kind="account_unlocked").exists()
            return
        asked = api.post("/api/unlock/codes", body)
        assert asked.status_code == 202 and asked.json()["status"] == "unlock_requested", asked.content
        # Not yet: the customer is told, on the old contact, and can cancel meanwhile.
        assert login_answer(IP_TOKYO, HANAKO_PASSWORD).json()["code"] == "locked"
        notice = Notification.objects.get(kind="unlock_requested", staff=False)
        assert notice.to_email == "hanako@example.com" and notice.context["reference"]
        clock.shift(timedelta(hours=23))
        assert login_answer(IP_TOKYO, HANAKO_PASSWORD).json()["code"] == "locked"
        clock.shift(timedelta(hours=1, minutes=1))
        assert login_answer(IP_TOKYO, HANAKO_PASSWORD).json()["status"] == "ok"
    lock = AccountLock.objects.get(user=totp_hanako)
    assert not lock.is_locked and lock.unlocked_by is None and "totp+recovery_code" in lock.unlock_reason
    assert Notification.objects.filter(kind="account_unlocked", user=totp_hanako).exists()


@pytest.mark.battery(59)
def test_battery_59_an_unlock_asked_for_before_the_preset_does_not_complete_under_it(
    totp_hanako: Any, settings: Any, preset: Any
) -> None:
    settings.AUTHGUARD_PRESET = None
    codes = give_recovery_codes(totp_hanako)
    with time_machine.travel(START, tick=False) as clock:
        lock_hanako(settings)
        api = OrderApi(REMOTE_ADDR=IP_TOKYO)
        body = {"username": "hanako", "totp_code": totp_token(totp_hanako.totp), "recovery_code": codes[0]}
        assert api.post("/api/unlock/codes", body).status_code == 202
        # The portal turns the codes path off (the JSDA preset, or the setting) while the request waits.
        if preset:
            settings.AUTHGUARD_PRESET = preset
        else:
            settings.AUTHGUARD_UNLOCK_WAIT_HOURS = None
        clock.shift(timedelta(days=2))
        assert lockout.is_locked(totp_hanako)
        assert login_answer(IP_TOKYO, HANAKO_PASSWORD).json()["code"] == "locked"
    assert AccountLock.objects.get(user=totp_hanako).is_locked
    assert not Notification.objects.filter(kind="account_unlocked").exists()


@pytest.mark.battery(59)
def test_battery_59_a_thief_with_the_password_and_one_relayed_code_cannot_unlock(
    totp_hanako: Any, settings: Any, preset: Any
) -> None:
    give_recovery_codes(totp_hanako)
    lock_hanako(settings)
    api = OrderApi(REMOTE_ADDR=IP_OSAKA)
    relayed = totp_token(totp_hanako.totp)
    guess = {"username": "hanako", "totp_code": relayed, "recovery_code": "AAAA-BBBB-CCCC-DDDD"}
    if preset:
        # The preset has no codes path to unlock: refused before the relayed code or the guess is checked.
        codes_unlock_refused(api, totp_hanako, guess)
        with time_machine.travel(datetime.now(UTC) + timedelta(days=3)):
            assert lockout.is_locked(totp_hanako)
        return
    answer = api.post("/api/unlock/codes", guess)
    assert answer.status_code == 400 and answer.json()["status"] == "invalid"
    no_code = api.post("/api/unlock/codes", {"username": "hanako", "totp_code": relayed})
    assert no_code.status_code == 400
    unknown = api.post("/api/unlock/codes", {**guess, "username": "nobody"})
    assert unknown.status_code == 400 and unknown.json()["message"] == answer.json()["message"]
    lock = AccountLock.objects.get(user=totp_hanako)
    assert lock.is_locked and lock.unlock_due_at is None
    with time_machine.travel(datetime.now(UTC) + timedelta(days=3)):
        assert lockout.is_locked(totp_hanako)


@pytest.mark.battery(59)
def test_battery_59_the_customer_cancels_an_unlock_someone_else_asked_for(
    totp_hanako: Any, settings: Any, preset: Any
) -> None:
    codes = give_recovery_codes(totp_hanako)
    with time_machine.travel(START, tick=False) as clock:
        lock_hanako(settings)
        api = OrderApi(REMOTE_ADDR=IP_OSAKA)
        body = {"username": "hanako", "totp_code": totp_token(totp_hanako.totp), "recovery_code": codes[1]}
        if preset:
            # Under the preset nobody can ask for an unlock with codes: there is nothing to cancel.
            codes_unlock_refused(api, totp_hanako, body)
            none_waiting = OrderApi(REMOTE_ADDR=IP_TOKYO).post(
                "/api/unlock/cancel", {"username": "hanako", "reference": "0000-0000-0000"}
            )
            # Without the reference nothing about the account is told (round eleven): as a wrong reference.
            assert none_waiting.status_code == 400 and none_waiting.json()["status"] == "invalid"
            return
        assert api.post("/api/unlock/codes", body).status_code == 202
        reference = Notification.objects.get(kind="unlock_requested", staff=False).context["reference"]
        customer = OrderApi(REMOTE_ADDR=IP_TOKYO)
        wrong = customer.post("/api/unlock/cancel", {"username": "hanako", "reference": "0000-0000-0000"})
        assert wrong.status_code == 400
        cancelled = customer.post(
            "/api/unlock/cancel", {"username": "hanako", "reference": reference.lower()}
        )
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "ok"
        clock.shift(timedelta(days=2))
        assert login_answer(IP_TOKYO, HANAKO_PASSWORD).json()["code"] == "locked"
    assert Notification.objects.filter(kind="unlock_cancelled", user=totp_hanako).exists()


@pytest.mark.battery(59)
def test_battery_59_codes_from_a_cooling_off_or_under_the_preset_cannot_unlock(
    totp_hanako: Any, settings: Any
) -> None:
    from authguard.factors import lifecycle

    lifecycle.start_cooling_off(
        totp_hanako, reason="recovery_codes", at=datetime.now(UTC) - timedelta(minutes=1)
    )
    codes = give_recovery_codes(totp_hanako)  # minted by the thief during the cooling-off
    lock_hanako(settings)
    api = OrderApi(REMOTE_ADDR=IP_OSAKA)
    body = {"username": "hanako", "totp_code": totp_token(totp_hanako.totp), "recovery_code": codes[0]}
    refused = api.post("/api/unlock/codes", body)
    assert refused.status_code == 403 and refused.json()["status"] == "denied"
    assert AccountLock.objects.get(user=totp_hanako).unlock_due_at is None
    settings.AUTHGUARD_PRESET = "jsda-2025"  # passkey or the desk only
    body["recovery_code"] = codes[1]
    assert api.post("/api/unlock/codes", body).status_code == 403
    assert login_answer(IP_TOKYO, HANAKO_PASSWORD).json()["unlock"]["codes"] is None


@pytest.mark.battery(59)
def test_battery_59_the_unlock_pages_work_without_javascript(
    totp_hanako: Any, settings: Any, preset: Any
) -> None:
    codes = give_recovery_codes(totp_hanako)
    lock_hanako(settings)
    client = Client(REMOTE_ADDR=IP_TOKYO, HTTP_USER_AGENT=UA_CHROME_WIN)
    if preset:
        # The preset's ways back are the passkey and the desk: the codes page refuses and says so.
        before = lock_state(totp_hanako)
        refused = client.post(
            "/unlock/codes/",
            {"username": "hanako", "totp_code": totp_token(totp_hanako.totp), "recovery_code": codes[2]},
        )
        assert refused.status_code == 403 and CODES_REFUSED in refused.content.decode()
        assert lock_state(totp_hanako) == before and lockout.is_locked(totp_hanako)
        assert AccountLock.objects.get(user=totp_hanako).unlock_due_at is None
        page = client.get("/login/").content
        # The login page offers the passkey and the desk, not the codes path it would refuse.
        assert b"unlock-with-passkey" in page and b"/unlock/codes/" not in page
        return
    login_page = client.get("/login/")
    assert b"/unlock/codes/" in login_page.content and b"/unlock/cancel/" in login_page.content
    incomplete = client.post("/unlock/codes/", {"username": "hanako", "totp_code": "123456"})
    assert incomplete.status_code == 400 and lockout.is_locked(totp_hanako)
    good = client.post(
        "/unlock/codes/",
        {"username": "hanako", "totp_code": totp_token(totp_hanako.totp), "recovery_code": codes[2]},
        follow=True,
    )
    assert good.status_code == 200 and good.redirect_chain[-1][0] == "/login/"
    assert b"will be unlocked" in good.content
    assert AccountLock.objects.get(user=totp_hanako).unlock_due_at is not None
    page = client.get("/unlock/cancel/")
    assert page.status_code == 200 and b'name="reference"' in page.content


@pytest.mark.battery(59)
def test_battery_59_a_passkey_added_in_the_cooling_off_cannot_unlock(
    hanako: Any, settings: Any, authenticator: Any, rf: Any
) -> None:
    from django.contrib.sessions.backends.db import SessionStore as DbSessionStore

    from authguard.factors import lifecycle, passkeys

    lifecycle.start_cooling_off(hanako, reason="factor_added", at=datetime.now(UTC) - timedelta(minutes=5))
    bind_passkey(hanako, authenticator)  # the thief's, added during the cooling-off
    lock_hanako(settings)
    request = rf.post("/", HTTP_HOST="localhost:8000")
    request.session = DbSessionStore()
    options = passkeys.authentication_options(request, purpose="unlock", user=None)
    with pytest.raises(lockout.PermissionDenied):
        unlocking.unlock_with_passkey(request, credential=authenticator.get(options))
    assert lockout.is_locked(hanako)


def test_the_locked_message_names_every_way_back(settings: Any, preset: Any) -> None:
    if preset:
        # The preset's ways back: the passkey and the desk, never the codes.
        assert "recovery code" not in locked_message() and "passkey" in locked_message()
        assert "support" in locked_message()
        return
    assert "recovery code" in locked_message() and "support" in locked_message()
    settings.AUTHGUARD_PRESET = "jsda-2025"  # passkey or the desk only
    assert "recovery code" not in locked_message() and "passkey" in locked_message()


# -- case 61: re-scoring is never gentler than a fresh sign-in -------------------------------------------


class Browser(OrderApi):
    """A JSON API browser at one place whose cookies can be stolen."""

    def __init__(self, ip: str = IP_TOKYO, ua: str = UA_CHROME_WIN) -> None:
        super().__init__(REMOTE_ADDR=ip, HTTP_USER_AGENT=ua)

    def steal(self, *, ip: str, ua: str) -> Browser:
        thief = Browser(ip, ua)
        for name in (django_settings.SESSION_COOKIE_NAME, django_settings.CSRF_COOKIE_NAME):
            thief.client.cookies[name] = self.client.cookies[name].value
        thief.token = self.token
        return thief


@pytest.mark.battery(61)
@pytest.mark.usefixtures("geoip")
def test_battery_61_a_session_moved_where_a_fresh_login_is_refused_is_ended_not_stepped_up(
    totp_hanako: Any,
) -> None:
    victim = Browser(IP_TOKYO)
    victim.client.get("/api/csrf")
    victim.login("hanako", HANAKO_PASSWORD)
    assert victim.get("/api/portfolio").status_code == 200
    thief = victim.steal(ip=IP_SG_VPS, ua=UA_FIREFOX_LINUX)
    answer = thief.get("/api/portfolio")
    assert answer.status_code == 401 and answer.json() == {**answer.json(), "code": "session_ended"}
    # A relayed one-time code buys nothing: there is no session left to step up.
    relayed = thief.post("/authguard/api/step-up/totp", {"code": totp_token(totp_hanako.totp)})
    assert relayed.status_code == 401 and relayed.json()["status"] == "login_required"
    assert thief.get("/api/portfolio").status_code == 401
    assert thief.order("sell", "7203", 100).status_code in (401, 403) and not Order.objects.exists()
    assert not SessionStore().exists(victim.client.cookies[django_settings.SESSION_COOKIE_NAME].value)
    event = LoginEvent.objects.filter(ip=IP_SG_VPS).order_by("-id").first()
    assert event.outcome == Outcome.REFUSED and event.action == "deny" and event.user == totp_hanako


@pytest.mark.battery(61)
@pytest.mark.usefixtures("geoip")
def test_battery_61_the_html_answer_sends_to_the_login_page_with_a_message(totp_hanako: Any) -> None:
    victim = Client(REMOTE_ADDR=IP_TOKYO, HTTP_USER_AGENT=UA_CHROME_WIN)
    victim.get("/login/")
    assert victim.post("/login/", {"username": "hanako", "password": HANAKO_PASSWORD}).url == "/"
    thief = Client(REMOTE_ADDR=IP_SG_VPS, HTTP_USER_AGENT=UA_FIREFOX_LINUX)
    thief.cookies[django_settings.SESSION_COOKIE_NAME] = victim.cookies[
        django_settings.SESSION_COOKIE_NAME
    ].value
    answer = thief.get("/orders/")
    assert answer.status_code == 302 and answer.url == "/login/?session_ended=1"
    page = thief.get(answer.url)
    assert b"signed you out" in page.content


@pytest.mark.battery(61)
@pytest.mark.usefixtures("geoip")
def test_battery_61_a_session_moved_where_step_up_is_asked_still_steps_up(
    totp_hanako: Any, preset: Any
) -> None:
    victim = Browser(IP_TOKYO)
    victim.client.get("/api/csrf")
    victim.login("hanako", HANAKO_PASSWORD)
    thief = victim.steal(ip=IP_DOCOMO, ua=UA_FIREFOX_LINUX)
    answer = thief.get("/api/portfolio")
    if preset:
        # A TOTP-only customer has nothing the preset steps up with (passkeys only), so a fresh login from
        # there would be refused: the moved session is ended, never left one relayed code away.
        assert answer.status_code == 401 and answer.json()["code"] == "session_ended"
        assert answer.json()["status"] == "login_required"
        relayed = thief.post("/authguard/api/step-up/totp", {"code": totp_token(totp_hanako.totp)})
        assert relayed.status_code == 401 and relayed.json()["status"] == "login_required"
        assert not SessionStore().exists(victim.client.cookies[django_settings.SESSION_COOKIE_NAME].value)
        event = LoginEvent.objects.filter(ip=IP_DOCOMO).order_by("-id").first()
        assert event.outcome == Outcome.REFUSED and event.user == totp_hanako
        return
    assert answer.status_code == 401 and answer.json()["status"] == "step_up_required"


# -- case 56 (session side): one relayed code buys one session, nothing that lasts --------------------------


@pytest.fixture
def known_customer(totp_hanako: Any, browser_at: Any) -> Any:
    """hanako signs in from home twice, so the risk engine knows her (and her home browser)."""
    home = browser_at(IP_TOKYO, UA_CHROME_WIN)
    for _ in range(2):
        assert home.sign_in("hanako", HANAKO_PASSWORD).url == "/"
        home.post("/logout/")
    return totp_hanako


@pytest.mark.battery(56)
@pytest.mark.usefixtures("geoip")
def test_battery_56_relayed_totp_does_not_remember_the_device(
    known_customer: Any, browser_at: Any, preset: Any
) -> None:
    thief = browser_at(IP_TOKYO_2, UA_FIREFOX_LINUX)  # a residential line in Tokyo
    first = thief.sign_in("hanako", HANAKO_PASSWORD)
    if preset:
        # A TOTP-only customer has nothing the preset steps up with (passkeys only): the risky sign-in is
        # refused outright, so there is no step-up to relay a code into and nothing to remember.
        assert first.status_code == 302 and first.url == "/authguard/denied/"
        relayed = thief.post("/authguard/step-up/totp/", {"code": totp_token(known_customer.totp)})
        assert relayed.status_code == 302 and relayed.url.startswith("/login/")
        assert thief.get("/api/portfolio").status_code == 401
        assert not KnownDevice.objects.filter(user=known_customer, trusted_until__isnull=False).exists()
        event = LoginEvent.objects.order_by("-id").first()
        assert event.outcome == Outcome.REFUSED and event.ip == IP_TOKYO_2
        return
    assert first.status_code == 302 and first.url.startswith("/authguard/step-up/")
    relayed = thief.post("/authguard/step-up/totp/", {"code": totp_token(known_customer.totp)})
    assert relayed.status_code == 302 and thief.get("/api/portfolio").status_code == 200  # one session
    thief.post("/logout/")
    again = thief.sign_in("hanako", HANAKO_PASSWORD)
    assert again.status_code == 302 and again.url.startswith("/authguard/step-up/")  # stepped up again
    assert not KnownDevice.objects.filter(user=known_customer, trusted_until__isnull=False).exists()
    # The thief's browser is listed on the customer's security page (to revoke), but nothing was learned.
    assert KnownDevice.objects.filter(user=known_customer, last_ip=IP_TOKYO_2, trusted_until=None).exists()
    event = LoginEvent.objects.order_by("-id").first()
    assert "remembered_device" not in [f["code"] for f in event.findings]
    assert "new_device" in event.reasons


@pytest.mark.battery(56)
@pytest.mark.usefixtures("geoip")
def test_battery_56_a_passkey_step_up_still_remembers_the_device(
    known_customer: Any, browser_at: Any, authenticator: Any
) -> None:
    bind_passkey(known_customer, authenticator)
    traveller = browser_at(IP_TOKYO_2, UA_FIREFOX_LINUX)
    assert traveller.sign_in("hanako", HANAKO_PASSWORD).url.startswith("/authguard/step-up/")
    assert passkey_step_up(traveller, authenticator).status_code == 200
    assert KnownDevice.objects.filter(user=known_customer, trusted_until__gt=datetime.now(UTC)).count() == 1
    traveller.post("/logout/")
    traveller.sign_in("hanako", HANAKO_PASSWORD)
    event = LoginEvent.objects.order_by("-id").first()
    assert "remembered_device" in [f["code"] for f in event.findings]


@pytest.mark.battery(56)
@pytest.mark.usefixtures("geoip")
def test_battery_56_a_device_verified_during_a_cooling_off_is_not_remembered(
    known_customer: Any, browser_at: Any, authenticator: Any
) -> None:
    from authguard.factors import lifecycle

    bind_passkey(known_customer, authenticator)
    lifecycle.start_cooling_off(known_customer, reason="email_changed")
    traveller = browser_at(IP_TOKYO_2, UA_FIREFOX_LINUX)
    assert traveller.sign_in("hanako", HANAKO_PASSWORD).url.startswith("/authguard/step-up/")
    assert passkey_step_up(traveller, authenticator).status_code == 200
    assert not KnownDevice.objects.filter(user=known_customer, trusted_until__isnull=False).exists()
    assert (
        factor_methods.remembers_device(known_customer, device=PasskeyDevice.objects.get(), method="passkey")
        is False
    )


# -- case 58 (session side): a password reset ends every session and revokes cooling-off factors ------------


def _thief_with_own_passkey(hanako: Any, authenticator: Any) -> OrderApi | None:
    """The thief signs in with the password, relays one TOTP code and registers his own passkey.

    Under the ``jsda-2025`` preset no TOTP code steps up (passkeys only): the relayed code is refused before
    it is checked, the session gains nothing and no passkey can be added; then None (the attack ends).
    """
    thief = OrderApi(REMOTE_ADDR=IP_OSAKA)
    thief.login("hanako", HANAKO_PASSWORD)
    session_key = thief.client.session.session_key
    relayed = thief.post("/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)})
    if app_settings.JSDA:
        assert relayed.status_code == 400 and relayed.json()["code"] == "method_unavailable"
        session = thief.client.session
        assert session.session_key == session_key and session.get("otp_device_id") is None
        assert session[sessions_state.STATE_KEY].get("st") is None  # no strong verification
        hanako.totp.refresh_from_db()
        assert hanako.totp.last_t == -1  # the code was not even checked (django-otp's "never used")
        added = thief.post("/authguard/api/passkeys/options")
        assert added.status_code == 403 and added.json()["status"] == "step_up_required"
        assert not PasskeyDevice.objects.filter(user=hanako).exists()
        return None
    assert relayed.status_code == 200
    passkey = thief.register_passkey(authenticator)
    assert passkey["cooling_off"] is True
    return thief


@pytest.mark.battery(58)
def test_battery_58_password_reset_ends_sessions_and_revokes_cooling_off_factors(
    totp_hanako: Any, order_api: Any, authenticator: Any, preset: Any
) -> None:
    thief = _thief_with_own_passkey(totp_hanako, authenticator)
    if preset:
        return  # the preset refused the relayed code: the thief has no passkey of his own to revoke
    customer = Client(REMOTE_ADDR=IP_TOKYO, HTTP_USER_AGENT=UA_CHROME_WIN)
    sent = customer.post("/password/reset/", {"email": "hanako@example.com"})
    assert sent.status_code == 302 and sent.url == "/password/reset/sent/"
    link = re.search(r"http://testserver(/password/reset/\S+/)", mail.outbox[-1].body)
    assert link, mail.outbox[-1].body
    form = customer.get(link.group(1), follow=True)
    assert form.status_code == 200 and b"new_password1" in form.content
    new = "a much better password 2026"
    done = customer.post(form.redirect_chain[-1][0], {"new_password1": new, "new_password2": new})
    assert done.status_code == 302 and done.url == "/password/reset/complete/"
    # The thief's session is gone, and so is his passkey; the customer's own factor stays.
    answer = thief.get("/api/portfolio")
    assert answer.status_code == 401 and answer.json()["status"] == "login_required"
    assert not PasskeyDevice.objects.filter(user=totp_hanako).exists()
    assert type(totp_hanako.totp).objects.filter(pk=totp_hanako.totp.pk).exists()
    assert not SessionRecord.objects.filter(user=totp_hanako).exists()
    notice = Notification.objects.get(kind="password_changed", user=totp_hanako)
    assert notice.context["revoked"] == 1


@pytest.mark.battery(58)
def test_battery_58_password_change_ends_the_other_sessions_and_keeps_this_one(
    totp_hanako: Any, order_api: Any, authenticator: Any, preset: Any
) -> None:
    thief = _thief_with_own_passkey(totp_hanako, authenticator)
    if preset:
        return  # the preset refused the relayed code: the thief has no passkey of his own to revoke
    customer = Client(REMOTE_ADDR=IP_TOKYO, HTTP_USER_AGENT=UA_CHROME_WIN)
    customer.get("/login/")
    assert customer.post("/login/", {"username": "hanako", "password": HANAKO_PASSWORD}).url == "/"
    # A password-only session changes no password (red team, 2026-12-05): first a fresh verification with a
    # factor she had before the cooling-off, then the form.
    assert customer.get("/password/change/").url == "/authguard/reverify/?next=/password/change/"
    code = totp_token(totp_hanako.totp, steps=1)  # the next step: the thief spent this one's code
    verified = customer.post("/authguard/step-up/totp/?next=/password/change/", {"code": code})
    assert verified.status_code == 302 and verified.url == "/password/change/", verified
    page = customer.get("/password/change/")
    assert page.status_code == 200 and b"old_password" in page.content
    new = "a much better password 2026"
    changed = customer.post(
        "/password/change/", {"old_password": HANAKO_PASSWORD, "new_password1": new, "new_password2": new}
    )
    assert changed.status_code == 302 and changed.url == "/password/change/done/"
    assert customer.get("/api/portfolio").status_code == 200
    assert thief.get("/api/portfolio").status_code == 401
    assert not PasskeyDevice.objects.filter(user=totp_hanako).exists()
    assert SessionRecord.objects.filter(user=totp_hanako).count() <= 1


@pytest.mark.battery(58)
def test_battery_58_any_password_write_ends_the_sessions(totp_hanako: Any, order_api: Any) -> None:
    browser = order_api(REMOTE_ADDR=IP_TOKYO)
    browser.login("hanako", HANAKO_PASSWORD)
    totp_hanako.refresh_from_db()
    totp_hanako.save(update_fields=["last_login"])  # not a password change
    totp_hanako.save()  # a full save of the same hash: not a change either
    assert browser.get("/api/portfolio").status_code == 200
    totp_hanako.password = make_password("set by a portal script")
    totp_hanako.save()
    assert browser.get("/api/portfolio").status_code == 401
    browser.login("hanako", "set by a portal script")
    totp_hanako.set_password("and again 2026")
    totp_hanako.save(update_fields=["password"])
    assert browser.get("/api/portfolio").status_code == 401
    assert Notification.objects.filter(kind="password_changed", user=totp_hanako).count() == 2


def test_password_changed_keeps_the_callers_session_and_notifies_once(
    totp_hanako: Any, order_api: Any, rf: Any
) -> None:
    first, second = order_api(REMOTE_ADDR=IP_TOKYO), order_api(REMOTE_ADDR=IP_TOKYO)
    first.login("hanako", HANAKO_PASSWORD)
    second.login("hanako", HANAKO_PASSWORD)
    request = rf.post("/")
    request.user = totp_hanako
    request.session = SessionStore(first.client.cookies[django_settings.SESSION_COOKIE_NAME].value)
    assert password_changed(totp_hanako, request=request) == 1
    assert password_changed(totp_hanako, request=request) == 0
    assert first.get("/api/portfolio").status_code == 200
    assert second.get("/api/portfolio").status_code == 401
    assert Notification.objects.filter(kind="password_changed").count() == 1


def test_malformed_unlock_bodies_are_4xx(db: Any) -> None:
    api = OrderApi()
    for body in ({}, {"username": 5}, {"username": "hanako", "totp_code": ["x"]}, {"username": "x" * 500}):
        assert api.post("/api/unlock/codes", body).status_code == 400
        assert api.post("/api/unlock/cancel", body).status_code == 400
    raw = api.client.post(
        "/api/unlock/codes", data="{", content_type="application/json", HTTP_X_CSRFTOKEN=api.token
    )
    assert raw.status_code == 400
    assert api.get("/api/unlock/codes").status_code == 405


@pytest.mark.parametrize(
    ("setting", "value", "code"),
    [
        ("AUTHGUARD_LOCKOUT_FAILURE_WINDOW_HOURS", 0, "authguard.E110"),
        ("AUTHGUARD_LOCKOUT_FAILURE_WINDOW_HOURS", None, "authguard.E110"),
        ("AUTHGUARD_UNLOCK_WAIT_HOURS", "24", "authguard.E110"),
        ("AUTHGUARD_UNLOCK_WAIT_HOURS", True, "authguard.E110"),
        ("AUTHENTICATION_BACKENDS", ["django.contrib.auth.backends.ModelBackend"], "authguard.W110"),
        ("SESSION_ENGINE", "django.contrib.sessions.backends.signed_cookies", "authguard.W111"),
    ],
)
def test_misconfigured_lock_settings_fail_the_checks(
    settings: Any, setting: str, value: Any, code: str
) -> None:
    from authguard.checks import check_locks

    assert check_locks(None) == []
    settings.AUTHGUARD_UNLOCK_WAIT_HOURS = None  # turning the codes path off is fine
    assert check_locks(None) == []
    setattr(settings, setting, value)
    assert [m.id for m in check_locks(None)] == [code]


@pytest.mark.battery(59)
def test_battery_59_the_desk_cancels_a_waiting_unlock_alone_and_the_account_stays_locked(
    totp_hanako: Any, settings: Any, preset: Any
) -> None:
    from .console_data import staff_client, staff_user

    codes = give_recovery_codes(totp_hanako)
    lock_hanako(settings)
    api = OrderApi(REMOTE_ADDR=IP_OSAKA)
    body = {"username": "hanako", "totp_code": totp_token(totp_hanako.totp), "recovery_code": codes[1]}
    if preset:
        # Under the preset nobody can ask for an unlock with codes: no unlock ever waits for the desk.
        codes_unlock_refused(api, totp_hanako, body)
        assert not StaffApproval.objects.exists()
        return
    assert api.post("/api/unlock/codes", body).status_code == 202
    lock = AccountLock.objects.get(user=totp_hanako)
    assert lock.unlock_due_at is not None
    desk = staff_client(staff_user("desk", perms=("authguard.view_accountlock", "authguard.unlock_account")))
    answer = desk.post(
        "/admin/authguard/accountlock/",
        {"action": "cancel_unlock_request", "_selected_action": [str(lock.pk)]},
    )
    assert answer.status_code == 302
    lock.refresh_from_db()
    # Keeping the account locked needs no second approval, and nothing else changed.
    assert lock.unlock_due_at is None and lock.locked_at is not None
    assert Notification.objects.filter(kind="unlock_cancelled", user=totp_hanako).exists()
    assert not StaffApproval.objects.exists()
