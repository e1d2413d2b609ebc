"""Red team round thirty-five (f): the step-up and session rules of rounds thirty to thirty-three.

``refused_where_posted`` scores a step-up posted away from the pending login's context, one event per
context (``ep``), and refuses past ``MAX_POSTED_CONTEXTS`` (``step_up_too_many_places``); a session remembers
the browsers it has shown (``bs``) and holds a return to one it left (``session_in_two_browsers``); a relayed
code buys one session, never her contact or her established factors.

The one test not named ``test_held_...`` was a customer cost, fixed (an office's proxy pool is one context);
the ``test_held_...`` ones are attempts the product withstood. Real GeoIP test databases, real TOTP codes,
time-machine for time.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.core import mail
from django_otp.plugins.otp_totp.models import TOTPDevice

from authguard.models import ContactChange, LoginEvent, RecoveryCode, RecoveryCodeDevice
from authguard.models.factors import recovery_digest as _recovery_digest
from demo_site.brokerage.management.commands.seed_demo import TANAKA

from . import test_battery_exposure as battery
from .conftest import (
    IP_OSAKA,
    IP_TOKYO,
    IP_TOKYO_2,
    UA_CHROME_WIN,
    OrderApi,
    of_long_standing,
    totp_token,
    wrong_code,
)
from .factor_scenarios import old_totp, thief_with_one_code
from .test_battery_exposure import sign_in
from .test_orders_copied_browser_os_walkarounds import UA_CHROME_MAC, _home_browser
from .test_sessions_browser_list_walkarounds import FILLERS
from .test_sessions_browser_release_walkarounds import _session_state
from .test_sessions_release_change_walkarounds import _her_session_copied
from .test_stepup_event_booking_walkarounds import _events

start = battery.start
clock = battery.clock

PORTFOLIO = "/api/portfolio"
STEP_UP_TOTP = "/authguard/api/step-up/totp"
#: Her employer's outbound proxy pool in Osaka (KDDI): one network, one city, a new address per connection.
OFFICE_POOL = ["203.0.113.71", "203.0.113.72", "203.0.113.73", "203.0.113.74", "203.0.113.75"]
UA_EDGE_WIN = UA_CHROME_WIN + " Edg/131.0.2903.86"


def _outcomes(user: Any, since: int) -> list[tuple[str, str, list[str]]]:
    rows = LoginEvent.objects.filter(user=user).order_by("pk")[since:]
    return [(e.ip, e.outcome, list(e.reasons)) for e in rows]


# -- finding (customer cost) ---------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.usefixtures("geoip")
@pytest.mark.battery(61)
def test_her_right_code_through_her_offices_proxy_pool_is_not_refused_as_too_many_places(
    clock: Any, tanaka: Any, totp_factory: Any
) -> None:
    """Customer cost: Tanaka (home PC for a year) signs in from her work laptop at the office in Osaka,
    whose outbound proxy hands each connection another address of one pool (one network, one city; round
    thirty-one names such pools as a real case). New browser on a new network: a step-up. Her phone's
    clock has drifted, so her first three codes are rejected; she fixes the clock and types the right one.
    Each post came through another address of the pool. ``ep`` keys a context by the *exact* address
    (``SCORED_KEYS``: ip, dev, br), so the same browser, same device cookie, same office was "four places":
    the right code was answered ``403 denied``, her sign-in ends, and her history carries a ``refused``
    event with ``step_up_too_many_places`` and three ``step_up_failed`` "re-scores" of her own office.
    Fixed (``sessions.pending._one_context``: the same cookie and browser in one /24 or /64 is one context).
    Secure: a step-up posted from another address of the scored context's network and place (same ASN,
    same /24 or under ``SAME_PLACE_KM``), with the same device cookie and browser, is the same context for
    ``ep`` and the cap; only other networks, places, cookies or browsers count as more places."""
    _home_browser(clock, tanaka)
    device = totp_factory(tanaka)
    clock(0)
    before = LoginEvent.objects.filter(user=tanaka).count()
    office = OrderApi(REMOTE_ADDR=OFFICE_POOL[0], HTTP_USER_AGENT=UA_CHROME_MAC)
    login = office.post("/api/login", {"username": TANAKA.username, "password": TANAKA.password})
    assert login.json()["status"] == "step_up_required", login.content
    for i, ip in enumerate(OFFICE_POOL[1:4]):
        clock(0, hours=0.01 + 0.003 * i)
        wrong = office.post(STEP_UP_TOTP, {"code": wrong_code(device)}, REMOTE_ADDR=ip)
        assert wrong.status_code == 400, wrong.content
    clock(0, hours=0.025)
    right = office.post(STEP_UP_TOTP, {"code": totp_token(device)}, REMOTE_ADDR=OFFICE_POOL[4])
    served = office.client.get(PORTFOLIO, REMOTE_ADDR=OFFICE_POOL[4]).status_code
    outcome = (f"her right code answered {right.status_code}: {right.content!r}", _outcomes(tanaka, before))
    assert right.status_code == 200 and served == 200, outcome
    assert not any("step_up_too_many_places" in e.reasons for e in LoginEvent.objects.filter(user=tanaka))


# -- held ---------------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.usefixtures("geoip")
def test_held_the_cap_used_against_her_step_up_costs_her_no_more_than_a_logout_and_kills_the_copy(
    clock: Any, tanaka: Any, totp_factory: Any
) -> None:
    """HELD: the copy of her jar (Chrome on a Mac, her /24) goes first (allowed), then comes back as her
    Windows Chrome: held at *his* context. From there it posts three empty codes under three other user
    agents, so her step-up at home is the fourth context: refused, her session ends. That is what the copy's
    POST to logout could do anyway: the copy's cookie is dead too, and she signs in again at home, allowed."""
    home, copy, events = _her_session_copied(clock, tanaka, ip=IP_TOKYO_2, ua=UA_CHROME_MAC)
    device = totp_factory(tanaka)
    clock(0, hours=1)
    assert copy.get(PORTFOLIO).status_code == 200
    clock(0, hours=1.005)
    assert copy.client.get(PORTFOLIO, HTTP_USER_AGENT=UA_CHROME_WIN).status_code == 401
    assert _session_state(copy)["sc"]["ip"] == IP_TOKYO_2
    for i, ua in enumerate(FILLERS[:3]):
        clock(0, hours=1.01 + i * 0.001)
        assert copy.post(STEP_UP_TOTP, {"code": ""}, HTTP_USER_AGENT=ua).status_code == 400
    clock(0, hours=1.02)
    assert home.post(STEP_UP_TOTP, {"code": totp_token(device)}).status_code == 403
    assert copy.client.get(PORTFOLIO, HTTP_USER_AGENT=UA_CHROME_MAC).status_code == 401
    clock(0, hours=1.05)
    home.token = home.client.get("/api/csrf").json()["csrf_token"]
    sign_in(home, TANAKA.username, TANAKA.password)
    assert home.get(PORTFOLIO).status_code == 200
    assert _events(tanaka, events)[-1][2] == "signed_in"


@pytest.mark.django_db
@pytest.mark.usefixtures("geoip")
def test_held_an_edge_copy_of_her_chrome_jar_is_held_and_her_step_up_shuts_it_out(
    clock: Any, tanaka: Any, totp_factory: Any
) -> None:
    """HELD: the user-agent game "Edge is Chromium too": the copy replays her jar in Edge on Windows (same
    OS, same engine, same release) from another address of her /24. Its turn is re-scored (another browser
    family than the device's) and held at a step-up; the copy has no code. Her own next request is held too
    (the same session); her step-up at home is scored and booked at home, rotates the key, and shuts the
    Edge copy out; Edge is never listed as a browser she vouched for."""
    home, copy, events = _her_session_copied(clock, tanaka, ip=IP_TOKYO_2, ua=UA_EDGE_WIN)
    device = totp_factory(tanaka)
    clock(0, hours=1)
    assert copy.get(PORTFOLIO).status_code == 401
    assert _session_state(copy)["sc"]["br"] == "Edge|Windows|desktop"
    clock(0, hours=1.02)
    assert home.get(PORTFOLIO).status_code == 401
    clock(0, hours=1.03)
    assert home.post(STEP_UP_TOTP, {"code": totp_token(device)}).status_code == 200
    assert home.get(PORTFOLIO).status_code == 200
    assert copy.get(PORTFOLIO).status_code == 401
    passed = [(ip, o) for _, ip, o, *_ in _events(tanaka, events) if o == "step_up_passed"]
    assert passed == [(IP_TOKYO, "step_up_passed")], _events(tanaka, events)
    vouched = {b for b, v in _session_state(home)["bs"] if v}
    assert "Edge|Windows|desktop" not in vouched, _session_state(home)["bs"]


@pytest.mark.django_db
@pytest.mark.usefixtures("geoip")
def test_held_one_relayed_code_changes_neither_her_email_nor_her_established_factors_on_any_front_end(
    new_browser_api: Any, hanako: Any, totp_factory: Any, settings: Any
) -> None:
    """HELD: hanako has an authenticator app of years and a recovery-code set, no passkey. The phishing kit
    signs in with her password from Osaka and relays ONE code. From that session: the JSON e-mail change
    asks for a second, different factor (nothing mailed, nothing pending); the HTML e-mail form sends it to
    re-verify; new recovery codes and a replacement app are refused; her app stays, her e-mail stays."""
    of_long_standing(hanako)
    hanako.totp = old_totp(hanako, totp_factory)
    codes = RecoveryCodeDevice.objects.create(user=hanako, name="Recovery codes", confirmed=True)
    for i in range(10):
        code = f"HERCODE{i:09d}"
        RecoveryCode.objects.create(device=codes, digest=_recovery_digest(codes.pk, code), hashed="")
    RecoveryCodeDevice.objects.filter(pk=codes.pk).update(created_at=hanako.totp.created_at)
    thief = thief_with_one_code(new_browser_api, hanako.totp)
    mail.outbox.clear()
    json_change = thief.post("/authguard/api/email", {"email": "kit@evil.example"})
    assert json_change.status_code in (401, 403), json_change.content
    assert json_change.json()["status"] == "step_up_required"
    html_change = thief.client.post(
        "/authguard/security/email/", {"email": "kit@evil.example"}, HTTP_X_CSRFTOKEN=thief.token
    )
    assert html_change.status_code == 302 and "email/confirm" not in html_change["Location"]
    assert not ContactChange.objects.filter(user=hanako).exists()
    assert not any("kit@evil.example" in m.to for m in mail.outbox)
    assert thief.post("/authguard/api/recovery-codes").status_code in (401, 403)
    assert thief.post("/authguard/api/totp").status_code in (401, 403)
    hanako.refresh_from_db()
    assert hanako.email != "kit@evil.example"
    assert TOTPDevice.objects.filter(pk=hanako.totp.pk, confirmed=True).exists()
    assert RecoveryCodeDevice.objects.filter(pk=codes.pk).exists()


@pytest.mark.django_db
@pytest.mark.usefixtures("geoip")
def test_held_a_kit_cycling_contexts_on_its_own_pending_login_gets_three_events_then_the_end(
    clock: Any, tanaka: Any, totp_factory: Any
) -> None:
    """HELD: the kit's own pending sign-in (her password, a new browser in Osaka) posts empty codes from
    eight user agents to flood her sign-in history: three ``rescored`` events, then the step-up is refused
    and the pending sign-in ends; the relayed code posted after that verifies nothing."""
    _home_browser(clock, tanaka)
    device = totp_factory(tanaka)
    clock(0)
    before = LoginEvent.objects.filter(user=tanaka).count()
    kit = OrderApi(REMOTE_ADDR=IP_OSAKA, HTTP_USER_AGENT=UA_CHROME_MAC)
    login = kit.post("/api/login", {"username": TANAKA.username, "password": TANAKA.password})
    assert login.json()["status"] == "step_up_required", login.content
    for i, ua in enumerate(FILLERS):
        clock(0, hours=0.01 + 0.001 * i)
        kit.post(STEP_UP_TOTP, {"code": ""}, HTTP_USER_AGENT=ua)
    clock(0, hours=0.02)
    relayed = kit.post(STEP_UP_TOTP, {"code": totp_token(device)})
    assert relayed.status_code in (401, 403), relayed.content
    assert kit.get(PORTFOLIO).status_code == 401
    written = _outcomes(tanaka, before)
    assert len(written) <= 5, written
    assert [o for _, o, _ in written].count("refused") == 1, written
