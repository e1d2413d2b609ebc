"""A throttled factor answers 429 ``throttled`` with ``Retry-After``, on every path that verifies a code.

On the customer's own browser (one the account has known for a month) django-otp backs a TOTP device off
after a wrong code (1 s, doubling); a session on any other browser waits in authguard's own scopes instead,
after ``AUTHGUARD_FACTOR_THROTTLE``'s free failures (5 per session), and never sets the device's back-off
(tests/test_factor_backoff_walkarounds.py). While either waits, even the right code is refused: the JSON APIs
answer 429 ``throttled`` (CONTRACTS section 4's shape for ``step-up/totp``, now also for a held order's TOTP
confirmation, which used to answer 400 ``invalid``) with a ``Retry-After`` header and a message that says how
long to wait; the HTML pages answer 429 with the same header. Nothing is confirmed, executed or enrolled
meanwhile, and once the wait is over the same code works.
"""

from __future__ import annotations

import base64
import re
from typing import Any

import pytest
import time_machine
from django.test import Client
from django.utils import timezone, translation
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from authguard.exceptions import Throttled, wait_message
from authguard.models import FactorRecord, GuardStatus, HeldOrder, LoginEvent, Outcome
from demo_site.brokerage.models import Account, Order, OrderStatus

from .conftest import HANAKO_PASSWORD as PASSWORD
from .conftest import IP_SG_VPS, IP_TOKYO, UA_CHROME_WIN, OrderApi, api_post, totp_token, wrong_code

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]


@pytest.fixture(autouse=True)
def _restore_language() -> Any:
    """Requests here activate Japanese (LocaleMiddleware does not deactivate it): leave no trace."""
    before = translation.get_language()
    yield
    translation.activate(before) if before else translation.deactivate_all()


@pytest.fixture
def clock() -> Any:
    """Frozen time, moved on by hand, so django-otp's back-off is exactly one second after one failure."""
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        yield traveller


def failures(device: TOTPDevice) -> int:
    return FactorRecord.objects.get(device_id=device.persistent_id).failures


def assert_throttled_json(response: Any, *, retry_after: str = "1") -> dict[str, Any]:
    assert response.status_code == 429, response.content
    assert response["Content-Type"] == "application/json"
    assert response["Retry-After"] == retry_after
    body = response.json()
    assert body["status"] == "throttled" and body["code"] == "throttled"
    return body


# -- held-order confirmation with TOTP ------------------------------------------------------------------


@pytest.fixture
def totp(hanako: Any, totp_factory: Any) -> TOTPDevice:
    return totp_factory(hanako)


@pytest.fixture
def held(hanako: Any, totp: TOTPDevice, order_api: Any, clock: Any) -> tuple[OrderApi, str]:
    """hanako signed in on her usual browser; "sell all Apple" is held for a TOTP confirmation."""
    client = order_api()
    client.login_usual("hanako", PASSWORD)
    response = client.order("sell", "AAPL", 10)
    assert response.status_code == 202, response.content
    confirmation = response.json()["confirmation"]
    assert confirmation["methods"] == ["totp"]
    return client, confirmation["id"]


def holdings(user: Any) -> dict[str, int]:
    account = Account.objects.get(user=user)
    return dict(account.positions.values_list("instrument__symbol", "quantity"))


def assert_still_held(confirmation_id: str, hanako: Any) -> None:
    held = HeldOrder.objects.get(pk=confirmation_id)
    assert held.status == HeldOrder.Status.PENDING and held.confirmed_at is None
    assert held.guarded.status == GuardStatus.HELD
    assert Order.objects.get(account__user=hanako).status == OrderStatus.HELD
    assert holdings(hanako)["AAPL"] == 10  # nothing was sold


def test_a_throttled_totp_confirmation_answers_429_with_retry_after_and_executes_nothing(
    held: tuple[OrderApi, str], hanako: Any, totp: TOTPDevice, clock: Any
) -> None:
    client, confirmation_id = held
    path = f"/authguard/api/confirmations/{confirmation_id}/totp"
    wrong = client.post(path, {"code": wrong_code(totp)})
    assert wrong.status_code == 400 and wrong.json()["code"] == "wrong_code"

    # The back-off refuses even the right code for a second: 429, not 400 "invalid".
    body = assert_throttled_json(client.post(path, {"code": totp_token(totp)}))
    assert body["message"] == "Too many attempts. Please wait 1 second and try again."
    assert_still_held(confirmation_id, hanako)
    assert failures(totp) == 2  # the throttled attempt still counts towards the failure limit

    clock.shift(2)
    confirmed = client.post(path, {"code": totp_token(totp)})
    assert confirmed.status_code == 200 and confirmed.json()["status"] == "confirmed"
    assert HeldOrder.objects.get(pk=confirmation_id).status == HeldOrder.Status.CONFIRMED
    assert "AAPL" not in holdings(hanako)
    assert failures(totp) == 0


def test_the_throttled_confirmation_answer_is_in_the_customers_language(
    held: tuple[OrderApi, str], totp: TOTPDevice
) -> None:
    client, confirmation_id = held
    path = f"/authguard/api/confirmations/{confirmation_id}/totp"
    client.post(path, {"code": wrong_code(totp)}, HTTP_ACCEPT_LANGUAGE="ja")
    body = assert_throttled_json(client.post(path, {"code": totp_token(totp)}, HTTP_ACCEPT_LANGUAGE="ja"))
    assert body["message"] == "試行回数が多すぎます。1秒後に再度お試しください。"


def test_the_confirmation_page_answers_a_throttled_code_with_429(
    held: tuple[OrderApi, str], hanako: Any, totp: TOTPDevice, clock: Any
) -> None:
    client, confirmation_id = held
    page = f"/authguard/confirmations/{confirmation_id}/"

    def post_code(code: str) -> Any:
        data = {"action": "totp", "code": code, "csrfmiddlewaretoken": client.token}
        return client.client.post(page, data)

    assert post_code(wrong_code(totp)).status_code == 400
    throttled = post_code(totp_token(totp))
    assert throttled.status_code == 429 and throttled["Retry-After"] == "1"
    error = re.search(r'id="confirm-error">([^<]*)<', throttled.content.decode())
    assert error and error.group(1) == "Too many attempts. Please wait 1 second and try again."
    assert_still_held(confirmation_id, hanako)

    clock.shift(2)
    done = post_code(totp_token(totp))
    assert done.status_code == 302
    assert HeldOrder.objects.get(pk=confirmation_id).status == HeldOrder.Status.CONFIRMED


# -- step-up and enrollment ---------------------------------------------------------------------------------


@pytest.fixture
def alice(alice_with_totp: Any) -> Any:
    """alice with an authenticator app (the recipe ``alice_with_totp`` of tests/conftest.py)."""
    return alice_with_totp


@pytest.fixture
def pending(alice: Any, browser_at: Any, clock: Any) -> Client:
    """alice signed in with her password from a hosting network: pending until she steps up."""
    client = browser_at(IP_SG_VPS, UA_CHROME_WIN)
    client.sign_in("alice")
    assert client.session["_authguard"]["s"] == "pending"
    return client


#: Wrong codes a session on a browser the account does not know well may send before it waits.
FREE = 5


def test_the_step_up_api_says_when_to_try_again(pending: Client, alice: Any, clock: Any) -> None:
    for _ in range(FREE + 1):
        assert api_post(pending, "api-step-up-totp", {"code": wrong_code(alice.totp)}).status_code == 400
    clock.shift(1)
    assert api_post(pending, "api-step-up-totp", {"code": wrong_code(alice.totp)}).status_code == 400
    # Two failures beyond the free ones: two seconds of back-off, and the answer says so.
    body = assert_throttled_json(
        api_post(pending, "api-step-up-totp", {"code": totp_token(alice.totp)}), retry_after="2"
    )
    assert body["message"] == "Too many attempts. Please wait 2 seconds and try again."
    assert pending.session["_authguard"]["s"] == "pending"
    assert LoginEvent.objects.get(user=alice).outcome == Outcome.STEP_UP_FAILED
    clock.shift(2)
    assert api_post(pending, "api-step-up-totp", {"code": totp_token(alice.totp)}).status_code == 200
    assert pending.session["_authguard"]["s"] == "verified"


def test_the_step_up_page_sends_retry_after_with_its_429(pending: Client, alice: Any) -> None:
    for _ in range(FREE + 1):
        assert pending.post("/authguard/step-up/totp/", {"code": wrong_code(alice.totp)}).status_code == 400
    throttled = pending.post("/authguard/step-up/totp/", {"code": totp_token(alice.totp)})
    assert throttled.status_code == 429 and throttled["Retry-After"] == "1"
    assert "Please wait 1 second" in throttled.content.decode()
    assert pending.session["_authguard"]["s"] == "pending"


def test_a_throttled_first_code_on_the_authenticator_app_page_answers_429(
    user_factory: Any, browser_at: Any, clock: Any
) -> None:
    carol = user_factory("carol")
    client = browser_at(IP_TOKYO, UA_CHROME_WIN)
    assert client.sign_in("carol").url == "/"  # allowed outright: may add a first factor
    page = client.get("/authguard/security/totp/")
    secret = re.search(rb'class="authguard-secret">([A-Z2-7]+)<', page.content).group(1).decode()
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    code = f"{TOTP(key).token():06d}"
    wrong = f"{(int(code) + 500_000) % 1_000_000:06d}"

    assert client.post("/authguard/security/totp/", {"code": wrong}).status_code == 400
    throttled = client.post("/authguard/security/totp/", {"code": code})
    assert throttled.status_code == 429 and throttled["Retry-After"] == "1"
    assert "Please wait 1 second" in throttled.content.decode()
    assert not TOTPDevice.objects.filter(user=carol, confirmed=True).exists()

    clock.shift(2)
    done = client.post("/authguard/security/totp/", {"code": code})
    assert done.status_code == 302 and done.url == "/authguard/security/"
    assert TOTPDevice.objects.get(user=carol).confirmed


def test_the_enrollment_api_sends_retry_after_too(user_factory: Any, browser_at: Any, clock: Any) -> None:
    user_factory("carol")
    client = browser_at(IP_TOKYO, UA_CHROME_WIN)
    client.sign_in("carol")
    begun = api_post(client, "api-totp").json()
    key = base64.b32decode(begun["secret"] + "=" * (-len(begun["secret"]) % 8))
    code = f"{TOTP(key).token():06d}"
    wrong = f"{(int(code) + 500_000) % 1_000_000:06d}"
    assert api_post(client, "api-totp-confirm", {"code": wrong}).status_code == 400
    assert_throttled_json(api_post(client, "api-totp-confirm", {"code": code}))


# -- the message -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "english", "japanese"),
    [
        (1, "Please wait 1 second and try again.", "1秒後に再度お試しください。"),
        (45, "Please wait 45 seconds and try again.", "45秒後に再度お試しください。"),
        (61, "Please wait 2 minutes and try again.", "2分後に再度お試しください。"),
        (7200, "Please wait 2 hours and try again.", "2時間後に再度お試しください。"),
    ],
)
def test_the_wait_is_named_in_seconds_minutes_or_hours(seconds: int, english: str, japanese: str) -> None:
    with translation.override("en"):
        assert wait_message(seconds) == f"Too many attempts. {english}"
        assert Throttled(retry_after=seconds).message == f"Too many attempts. {english}"
    with translation.override("ja"):
        assert wait_message(seconds) == f"試行回数が多すぎます。{japanese}"


def test_without_a_known_delay_the_message_stays_general() -> None:
    error = Throttled()
    assert error.retry_after is None and error.code == "throttled"
    assert error.message == "Too many attempts. Please wait a moment and try again."
