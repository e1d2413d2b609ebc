"""Red team api71: a copied API token re-scored while Redis is unreachable (docs/faults.md: a login decided
without its counters is stepped up unless it comes from a known device with nothing unusual; "nothing is
allowed *because* the counters were missing")."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

# isort: split
from .test_drf import api, with_token

# isort: split
from rest_framework.authtoken.models import Token

from authguard.login.flow import COUNTERS_UNAVAILABLE
from authguard.models import LoginEvent, Outcome

from .conftest import HANAKO_PASSWORD, IP_TOKYO, UA_CHROME_WIN
from .test_faults_token_strength_walkarounds import redis_down
from .test_sessions_binding_anchor import (  # noqa: F401
    OCN_NAGOYA,
    OSAKA_2,
    _client,
    _jar,
    _state,
    commuter,
    hanako,
    rt_geoip,
    rt_geoip_dir,
)

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.drf_urlconf")]

PORTFOLIO = "/drf/portfolio"
#: The thief's residential proxy on her office's ISP in Osaka (KDDI), which his crew also stuffs from.
THIEF_IP = OSAKA_2


def _her_app(ip: str, device_cookie: str | None) -> Any:
    client = api(ip, UA_CHROME_WIN)
    if device_cookie is not None:
        client.cookies["authguard_device"] = device_cookie
    return client


def _her_token(t: Any, home: Any) -> str:
    device = home.cookies["authguard_device"].value
    answer = _her_app(IP_TOKYO, device).post(
        "/api/auth/token", {"username": "hanako", "password": HANAKO_PASSWORD}, format="json"
    )
    assert answer.status_code == 200, answer.content
    token = answer.json()["token"]
    for _ in range(4):
        t.shift(timedelta(minutes=30))
        assert with_token(_her_app(IP_TOKYO, device), token).get(PORTFOLIO).status_code == 200
    return str(token)


def _stuffing_from(ip: str, count: int = 5) -> None:
    """The crew's credential stuffing from the proxy in the last hour: wrong passwords for other names."""
    for n in range(count):
        api(ip, UA_CHROME_WIN).post(
            "/api/auth/token", {"username": f"someone{n}", "password": "Summer2026!"}, format="json"
        )


def _copy_call(t: Any, token: str, *, down: bool) -> tuple[int, Any]:
    t.shift(timedelta(minutes=50))
    before = LoginEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    if down:
        with redis_down():
            code = with_token(api(THIEF_IP, UA_CHROME_WIN), token).get(PORTFOLIO).status_code
    else:
        code = with_token(api(THIEF_IP, UA_CHROME_WIN), token).get(PORTFOLIO).status_code
    event = LoginEvent.objects.filter(pk__gt=before, ip=THIEF_IP).order_by("-pk").first()
    return code, event


def test_held_a_copied_token_re_scored_while_redis_is_down_is_not_allowed_without_its_counters(
    commuter: Any,  # noqa: F811
    hanako: Any,  # noqa: F811
) -> None:
    """Held since: round seventy-one's fix (``login_flow.score_request`` applies ``fail_safe`` to every
    enforced score).
    Secure: docs/faults.md, "Nothing is allowed *because* the counters were missing": a sign-in decided
    without the velocity counters is stepped up unless it comes from a known device with nothing else unusual
    (``login.flow.fail_safe``). A token's re-score is "scored as a sign-in from there" (docs/drf.md) and a
    step-up ends the token.
    Attack: an infostealer's copy of her app's token (her agent, no device cookie) is used from a KDDI proxy
    in Osaka (her office's ISP) that the crew also stuffs other accounts from (5 names in the hour). With
    Redis up the re-score is 65 (velocity_ip_users 30 + new_device 25 + unusual_hour 10): step-up, the token
    ends (the control below). During a Redis outage the same call's re-score misses velocity_ip_users, scores
    35, is *allowed* (no counters_unavailable rule on re-scores), the token is rebound and anchored at the
    proxy, and it keeps serving there once Redis is back (every later call is "same": nothing is re-scored
    again).
    Root cause: authguard/sessions/token_binding.py:_check_once uses ``login_flow.score_request`` directly;
    ``login_flow.fail_safe`` (the counters-missing rule) is applied only in ``after_password_login``. The
    same holds for a session's re-score (sessions.rescoring.check_binding) and the step-up's
    ``stepup.refused_where_posted``.
    Fix: apply ``fail_safe`` (or its rule: counters unavailable and not a known device with no other
    finding -> at least step_up) to every ``score_request`` whose outcome is enforced: token re-scores,
    session re-scores, the step-up's place check, the passkey sign-in; simplest inside ``score_request``
    itself."""
    t, home = commuter
    token = _her_token(t, home)
    _stuffing_from(THIEF_IP)
    code, event = _copy_call(t, token, down=True)
    t.shift(timedelta(minutes=5))  # Redis is back
    later = with_token(api(THIEF_IP, UA_CHROME_WIN), token).get(PORTFOLIO).status_code
    assert code in (401, 403) and not Token.objects.filter(key=token).exists(), (
        f"the copy's re-score without counters was allowed ({code}, event {event}); after the outage the "
        f"copy is still served at the proxy: {later}"
    )


def test_held_with_redis_up_the_same_copy_is_stepped_up_and_its_token_ends(
    commuter: Any,  # noqa: F811
    hanako: Any,  # noqa: F811
) -> None:
    t, home = commuter
    token = _her_token(t, home)
    _stuffing_from(THIEF_IP)
    code, event = _copy_call(t, token, down=False)
    assert code in (401, 403) and not Token.objects.filter(key=token).exists()
    assert event is not None and event.outcome == Outcome.REFUSED and "velocity_ip_users" in event.reasons
    assert event.score >= 40


# -- the session's re-score (sessions.rescoring.check_binding), on the HTML pages --------------------------


def _stuffing_at_the_login_page(ip: str, count: int = 6) -> None:
    """The crew's credential stuffing from ``ip`` minutes ago, through the portal's JSON login."""
    for n in range(count):
        _client(ip).post(
            "/api/login",
            {"username": f"someone{n}", "password": "Summer2026!"},
            content_type="application/json",
        )


def _session_copy(t: Any, home: Any, *, down: bool) -> tuple[Any, LoginEvent | None]:
    """A copy of her browser's whole jar (her device cookie too) opens the portfolio page from her ISP in
    Nagoya (240 km from her binding in Tokyo: a material move, re-scored) minutes after the crew's stuffing
    there."""
    _stuffing_at_the_login_page(OCN_NAGOYA)
    t.shift(timedelta(minutes=5))
    before = LoginEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    copy = _jar(home, OCN_NAGOYA)
    if down:
        with redis_down():
            answer = copy.get("/")
    else:
        answer = copy.get("/")
    event = LoginEvent.objects.filter(pk__gt=before, ip=OCN_NAGOYA, rescore=True).order_by("-pk").first()
    return answer, event


@pytest.mark.urls("demo_site.urls")
def test_held_a_copied_session_re_scored_while_redis_is_down_is_held_at_step_up(
    commuter: Any,  # noqa: F811
    hanako: Any,  # noqa: F811
) -> None:
    """Secure: the same rule for a browser session's re-score (docs/step-up.md: a re-scored session is never
    treated more gently than a fresh sign-in; docs/faults.md: nothing is allowed because the counters were
    missing).
    Attack: a copy of her whole jar (her known device cookie) opens the portfolio page from her ISP in
    Nagoya, where the crew stuffs other accounts from. With Redis up its re-score is 40 (device_new_city 10 +
    velocity_ip_users 30): held at step-up (the control below). During a Redis outage the re-score misses
    velocity_ip_users and scored 10: allowed, rebound and anchored there, and served once Redis was back.
    Root cause: sessions.rescoring.check_binding called ``score_request`` without ``fail_safe``.
    Held since: round seventy-one's fix: a known device with another finding (a new city) is not "low-risk
    on every other signal", so the re-score without counters asks for a step-up."""
    t, home = commuter
    answer, event = _session_copy(t, home, down=True)
    assert answer.status_code == 302 and "step-up" in answer["Location"], (answer.status_code, answer)
    assert event is not None and event.outcome == Outcome.RESCORED and event.action == "step_up"
    assert COUNTERS_UNAVAILABLE in {f["code"] for f in event.findings}
    assert _state(home)["s"] == "pending"  # her session, shared with the copy, steps up again


@pytest.mark.urls("demo_site.urls")
def test_held_with_redis_up_the_same_session_copy_is_held_at_step_up(
    commuter: Any,  # noqa: F811
    hanako: Any,  # noqa: F811
) -> None:
    t, home = commuter
    answer, event = _session_copy(t, home, down=False)
    assert answer.status_code == 302 and "step-up" in answer["Location"], (answer.status_code, answer)
    assert event is not None and "velocity_ip_users" in event.reasons and event.action == "step_up"


@pytest.mark.urls("demo_site.urls")
def test_cost_her_own_browser_at_her_office_during_an_outage_steps_up(
    commuter: Any,  # noqa: F811
    hanako: Any,  # noqa: F811
) -> None:
    """The cost side: her own browser (known device) at her office in Osaka, a place and network of her
    history, re-scored with nothing unusual while Redis is down. Round seventy-one served it (low-risk on
    every other signal); since round seventy-two a known device keeps its "allow" while its activity cannot
    be read only where the account last signed in with it, and her last sign-in was at home: she steps up
    once (her factor passes it), because a copy of her jar at her office while she is active at home looks
    the same without that activity (tests/test_faults_device_activity_walkarounds.py)."""
    t, home = commuter
    for _ in range(2):  # the morning at home, then the train to Osaka
        t.shift(timedelta(minutes=25))
        assert home.get("/").status_code == 200
    t.shift(timedelta(minutes=50))
    with redis_down():
        answer = _jar(home, OSAKA_2).get("/")
    assert answer.status_code == 302 and "/step-up/" in answer["Location"], answer.status_code
