"""Red team, round nineteen: a hijacked session re-scored and stepped up with a relayed code is a change of
the account's context (now held).

docs/order-guard.md, trust over time: a login "stepped up (a relayable factor included), denied, re-scored"
lowers every limit of the account for the trust week. The ledger statement read only events with
``password_ok = TRUE``, but a mid-session re-score (and an API token's) writes its event with
``password_ok=False``, like a stranger's wrong password, so a re-scored session never counted. Re-score events
now carry ``LoginEvent.rescore`` and count; a stranger's failed attempts, which never carry it, still do not
(that would let anyone halve a customer's limits). The SQL of the ledger statement and the ORM of
``account_trust`` say the same on every combination.
"""

from __future__ import annotations

import itertools
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from authguard.choices import Action
from authguard.models import LoginEvent, Outcome
from authguard.orders import exposure
from demo_site.brokerage.management.commands.seed_demo import TANAKA

from . import test_battery_exposure as battery
from .conftest import (
    IP_DOCOMO,
    IP_SG_VPS,
    IP_TOKYO,
    UA_CHROME_WIN,
    UA_FIREFOX_LINUX,
    OrderApi,
    bind_passkey,
    settle_device,
    totp_token,
)
from .test_battery_exposure import home_pc, sign_in, value

start = battery.start
clock = battery.clock


def _trust_both_ways(user: Any, *, days: int = 7) -> tuple[Any, Any]:
    """The account's trust as the ledger statement (SQL) and :func:`exposure.account_trust` (ORM) read it."""
    now = timezone.now()
    _totals, _due, by_sql, _flagged, _peak = exposure.ledger_totals(
        user, now=now, hours=[24, 168, 720], symbol="7203", held_seconds=300, trust_days=days
    )
    by_orm = exposure.account_trust(user, now=now, days=days)
    return by_sql, by_orm


@pytest.mark.django_db
@pytest.mark.battery(64)
def test_a_session_hijack_stepped_up_with_a_relayed_code_lowers_the_accounts_limits_for_the_week(
    order_api: Any, authenticator: Any, clock: Any, tanaka: Any
) -> None:
    """The ledger statement's EXISTS required ``password_ok = TRUE``, but a mid-session re-score writes its
    LoginEvent with ``password_ok=False`` (sessions/rescoring.py), and the step-up that follows marks that
    same event ``step_up_passed`` (login/stepup.py): the ``outcome IN (step_up_passed, rescored)`` arm could
    never match a re-score, and neither could its context reasons (network_hop, anonymous...).

    The gang's proxy replays Tanaka's cookie jar from its own network: the session is re-scored and stepped
    up with a relayed one-time code. Next day the thief signs in again from Tanaka's (copied) browser: the
    account counted as unchanged, so 45 % of the holdings were sold in one go (a changed account: 25 %)."""
    bind_passkey(tanaka, authenticator)
    home_pc(tanaka)
    clock(-10)
    browser = order_api()
    browser.login_known(TANAKA.username, TANAKA.password)  # Tanaka's own browser, used for a year
    settle_device(browser.client.cookies["authguard_device"].value, tanaka, days=400)
    clock(0)
    # What rescoring.py and stepup.py write for the hijacked session: the re-score's event (password_ok
    # False, marked as a re-score), marked step_up_passed by the relayed code.
    LoginEvent.objects.create(
        created_at=timezone.now(), user=tanaka, username=tanaka.username, password_ok=False, rescore=True,
        ip="198.51.100.65", country="JP", as_org="KDDI CORPORATION", score=66, action=Action.STEP_UP,
        reasons=["network_hop", "anonymous_residential_proxy", "session_in_two_places"],
        outcome=Outcome.STEP_UP_PASSED,
    )  # fmt: skip
    clock(1)
    sign_in(browser, TANAKA.username, TANAKA.password)  # Tanaka's copied browser: an allowed sign-in
    before = value(tanaka)
    thief = browser
    sold = Decimal(0)
    answers = []
    for holding in sorted(value(tanaka).holdings, key=lambda h: -h.value_jpy):
        if holding.is_small_cap or sold + holding.value_jpy > Decimal("0.45") * before.holdings_value:
            continue
        answer = thief.order("sell", holding.symbol, holding.quantity).json()
        answers.append(answer["status"])
        if answer["status"] == "placed":
            sold += Decimal(answer["order"]["amount_jpy"])
    # Secure: within the trust week of a re-scored, stepped-up session the account's limits are lowered:
    # at most a quarter of the holdings sold without the passkey.
    assert sold <= Decimal("0.25") * before.holdings_value, (sold / before.holdings_value, answers)
    assert "held" in answers


@pytest.mark.django_db
@pytest.mark.usefixtures("geoip")
@pytest.mark.battery(64)
def test_a_real_session_hijack_stepped_up_with_a_relayed_code_is_no_change_of_the_accounts_context(
    brokerage_customer: Any, authenticator: Any, clock: Any
) -> None:
    """The same through the real flow (risk engine, GeoIP, re-scoring, the TOTP step-up API): Hanako's whole
    cookie jar (session and device cookie) is replayed from another Japanese network in another browser;
    the session is re-scored (device_user_agent_sideways, device_new_network), stepped up with a relayed
    one-time code and used. (With only the session cookie replayed, the step-up issues the thief's browser
    a device cookie of its own and the new-device arm catches it; with the device cookie copied there is
    no new device, and the re-score's event, password_ok=False, was not read.) The next day the gang signs
    in with her password from her own (copied) browser through a proxy on her own network: allowed, and
    the account's context counted as unchanged, so 37 % of her holdings (her Apple shares) were sold without
    a hold (a changed account: 25 %).
    """
    hanako = brokerage_customer(
        holdings={"7203": 100, "9432": 2000, "AAPL": 10}, passkey=authenticator, totp=True
    )
    clock(0)
    victim = OrderApi(REMOTE_ADDR=IP_TOKYO, HTTP_USER_AGENT=UA_CHROME_WIN)
    victim.login_known("hanako", "hanako-test-2025")
    settle_device(victim.client.cookies["authguard_device"].value, hanako, days=400)
    clock(1)
    sign_in(victim, "hanako", "hanako-test-2025")
    assert victim.get("/api/portfolio").status_code == 200
    # The gang's proxy replays her whole cookie jar from its own network.
    thief = OrderApi(REMOTE_ADDR=IP_DOCOMO, HTTP_USER_AGENT=UA_FIREFOX_LINUX)
    for name, morsel in victim.client.cookies.items():
        thief.client.cookies[name] = morsel.value
    thief.token = victim.token
    moved = thief.get("/api/portfolio")
    assert moved.status_code == 401 and moved.json()["status"] == "step_up_required", moved.content
    relayed = thief.post("/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)})
    assert relayed.status_code == 200, relayed.content
    assert thief.get("/api/portfolio").status_code == 200
    event = LoginEvent.objects.filter(user=hanako).order_by("-id").first()
    assert event.outcome == Outcome.STEP_UP_PASSED  # the hijack is on record...
    assert event.rescore and not event.password_ok  # ...as a re-score's event
    clock(2)
    by_sql, by_orm = _trust_both_ways(hanako)
    next_day = OrderApi(REMOTE_ADDR=IP_TOKYO, HTTP_USER_AGENT=UA_CHROME_WIN)
    next_day.client.cookies["authguard_device"] = victim.client.cookies["authguard_device"].value
    next_day.login("hanako", "hanako-test-2025")  # her own (copied) browser, her own network: allowed
    holdings = value(hanako).holdings_value
    answer = next_day.order("sell", "AAPL", 10).json()
    sold = Decimal(answer["order"]["amount_jpy"]) if answer["status"] == "placed" else Decimal(0)
    # Secure: within the trust week after a re-scored session stepped up with a relayed code the account's
    # limits are lowered (25 %), so selling 37 % of the holdings is held.
    assert sold <= Decimal("0.25") * holdings, (answer["status"], sold / holdings, by_sql, event.reasons)
    assert by_sql.changed and by_orm.changed and "risky_login" in by_sql.reasons, (by_sql, by_orm)


@pytest.mark.django_db
@pytest.mark.usefixtures("geoip")
@pytest.mark.urls("tests.drf_urlconf")
def test_a_copied_api_token_ended_on_its_re_score_lowers_the_accounts_limits(alice_with_totp: Any) -> None:
    """token_binding.py records a token's re-score as rescoring.py does (``password_ok=False``): an
    infostealer's copy of her API token, replayed from a hosting network abroad, is ended, and its event
    is a change of the account's context."""
    pytest.importorskip("rest_framework")
    from rest_framework.test import APIClient

    her_app = APIClient(REMOTE_ADDR=IP_TOKYO, HTTP_USER_AGENT=UA_CHROME_WIN)
    issued = her_app.post("/api/auth/token", {"username": "alice", "password": "correct horse battery"})
    assert issued.status_code == 200, issued.content
    token = issued.json()["token"]
    her_app.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert her_app.get("/drf/portfolio").status_code == 200
    assert not _trust_both_ways(alice_with_totp)[0].changed  # her own sign-in at home: no change
    copy = APIClient(REMOTE_ADDR=IP_SG_VPS, HTTP_USER_AGENT=UA_CHROME_WIN)
    copy.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert copy.get("/drf/portfolio").status_code in (401, 403)
    event = LoginEvent.objects.filter(user=alice_with_totp).latest("pk")
    assert (event.outcome, event.password_ok, event.rescore) == (Outcome.REFUSED, False, True)
    by_sql, by_orm = _trust_both_ways(alice_with_totp)
    assert by_sql.changed and by_orm.changed and by_sql.reasons == by_orm.reasons == ("risky_login",)


@pytest.mark.django_db
@pytest.mark.usefixtures("geoip")
def test_a_strangers_wrong_passwords_and_attempts_on_the_locked_account_change_nothing(
    brokerage_customer: Any, settings: Any
) -> None:
    """SECURITY (availability): anyone can type a customer's username with wrong passwords, from anywhere,
    and go on once the account is locked. Those events have ``password_ok=False`` like a re-score's, but no
    re-score mark: counted, they would let a stranger halve a customer's limits for a week at will."""
    hanako = brokerage_customer(holdings={"7203": 100})
    settings.AUTHGUARD_LOCKOUT_FAILURES = 3
    stranger = OrderApi(REMOTE_ADDR=IP_SG_VPS, HTTP_USER_AGENT=UA_FIREFOX_LINUX)
    for attempt in range(5):
        stranger.post("/api/login", {"username": "hanako", "password": f"guess-{attempt}"})
    events = list(LoginEvent.objects.filter(user=hanako))
    outcomes = {e.outcome for e in events}
    assert Outcome.BAD_PASSWORD in outcomes and Outcome.REFUSED in outcomes, outcomes
    assert any(e.action != Action.ALLOW for e in events)  # scored risky: they would count if read
    assert not any(e.password_ok or e.rescore for e in events)
    by_sql, by_orm = _trust_both_ways(hanako)
    assert "risky_login" not in by_sql.reasons and "risky_login" not in by_orm.reasons, (by_sql, by_orm)


@pytest.mark.django_db
def test_the_ledger_statement_and_account_trust_agree_on_every_kind_of_login_event(user_factory: Any) -> None:
    """The trust subquery is written twice (SQL in the ledger statement, the ORM in ``account_trust``): both
    read the same events. A re-score's event counts when it was not allowed (it is recorded only then); an
    event with neither the right password nor the re-score mark never counts."""
    user = user_factory("matrix")
    combinations = itertools.product(
        (True, False),
        (True, False),
        Outcome.values,
        Action.values,
        ([], ["network_hop"], ["new_device"], ["dormant_account"]),
    )
    for password_ok, rescore, outcome, action, reasons in combinations:
        LoginEvent.objects.filter(user=user).delete()
        LoginEvent.objects.create(
            created_at=timezone.now() - timedelta(days=1), user=user, username="matrix",
            password_ok=password_ok, rescore=rescore, outcome=outcome, action=action, reasons=reasons,
        )  # fmt: skip
        by_sql, by_orm = _trust_both_ways(user)
        case = (password_ok, rescore, outcome, action, reasons)
        assert by_sql.changed == by_orm.changed and by_sql.reasons == by_orm.reasons, case
        risky = (
            action != Action.ALLOW
            or outcome in (Outcome.STEP_UP_PASSED, Outcome.RESCORED)
            or bool(set(reasons) & {"network_hop", "dormant_account"})  # dormancy: round twenty-three
        )
        assert by_sql.changed == ((password_ok or rescore) and risky), case
    # Older than the trust days: no change.
    LoginEvent.objects.filter(user=user).update(created_at=timezone.now() - timedelta(days=8))
    assert not any(t.changed for t in _trust_both_ways(user))
