"""Red team, round seventy-four (held since): a customer who only ever signs in through the portal's app,
whose HTTP client keeps no cookie jar (Android's OkHttp/Retrofit default ``CookieJar.NO_COOKIES``, Flutter's
``http``, a plain ``requests.post``), against a thief with her password in his own browser.

Facts established first (``test_held_*`` below): an app that *keeps* its cookie jar records its device id in
the risk profile from its second token sign-in on (``"dev"``), and a thief's browser is then ``new_device``
(a notice at home, a step-up on another network). An app *without* a jar never does: the profile's ``"dev"``
stays empty, and ``DeviceCookie._judge`` makes no device finding at all on such an account, also for a
browser that presents a brand-new authguard cookie, the one thing the account never showed.

Real views (authguard's DRF token endpoint, the demo's HTML login, its JSON order API), the real risk engine,
the test GeoIP databases (Tokyo: NTT OCN fixed line; Osaka: KDDI), time-machine for time; no mocks.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from datetime import timezone as dt_tz
from decimal import Decimal
from typing import Any

import pytest
import time_machine

# isort: split
from .test_drf import api  # skips this module without djangorestframework

# isort: split
from django.test import Client

from authguard.models import LoginEvent, Notification, Outcome, RiskProfile
from authguard.risk.import_history import import_history
from authguard.risk.profile import Profile

from .conftest import (
    HANAKO_PASSWORD,
    IP_OSAKA,
    IP_TOKYO,
    IP_TOKYO_2,
    UA_CHROME_WIN,
    OrderApi,
    of_long_standing,
)

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.urls("tests.drf_urlconf"),
    pytest.mark.usefixtures("geoip"),
]

#: Her broker's iPhone app (a native client: its own agent, no browser engine).
UA_APP = "HanakoSec/5.2.0 (iPhone; iOS 18.1; Scale/3.00)"
#: 20:00 in Tokyo, her usual hour.
START = datetime(2026, 3, 2, 11, 0, tzinfo=dt_tz.utc)
DAYS = 30
#: The thief comes the evening after her last app sign-in, at her hour.
THIEF_AT = START + timedelta(days=DAYS, minutes=5)


def _app_sign_in(client: Any) -> Any:
    return client.post("/api/auth/token", {"username": "hanako", "password": HANAKO_PASSWORD}, format="json")


def _app_history(*, jar: bool, days: int = DAYS) -> Any:
    """A month of her app's token sign-ins at home in Tokyo at 20:00; ``jar``: the app keeps its cookies."""
    kept = api(IP_TOKYO, UA_APP)
    for day in range(days):
        with time_machine.travel(START + timedelta(days=day), tick=False):
            response = _app_sign_in(kept if jar else api(IP_TOKYO, UA_APP))
            assert response.status_code == 200, response.content
    return kept


def _hanako(brokerage_customer: Any) -> Any:
    """Hanako of long standing: 1,000 Toyota (¥2.85 million) and ¥1 million cash, an authenticator app."""
    return of_long_standing(brokerage_customer(holdings={"7203": 1000}, totp=True))


def _browser_sign_in(ip: str, ua: str = UA_CHROME_WIN) -> tuple[Any, Any]:
    """The HTML login form in a browser of its own (the device cookie is issued with the login page)."""
    browser = Client(REMOTE_ADDR=ip, HTTP_USER_AGENT=ua)
    browser.get("/login/")
    response = browser.post("/login/", {"username": "hanako", "password": HANAKO_PASSWORD})
    return browser, response


def _home_then_away(user: Any, home_ip: str) -> tuple[LoginEvent, LoginEvent]:
    """A browser's sign-in from ``home_ip`` at the thief's hour, and another's from Osaka (KDDI) half an hour
    later: the two sign-in events."""
    with time_machine.travel(THIEF_AT, tick=False):
        _browser_sign_in(home_ip)
    home = _latest(user)
    with time_machine.travel(THIEF_AT + timedelta(minutes=30), tick=False):
        _browser_sign_in(IP_OSAKA)
    return home, _latest(user)


def _dev_total(user: Any) -> int:
    profile = RiskProfile.objects.get(user=user)
    return Profile.at(profile.data, THIEF_AT, 180).total("dev")


def _notices(user: Any) -> list[str]:
    return sorted(Notification.objects.filter(user=user).values_list("kind", flat=True))


def _latest(user: Any) -> LoginEvent:
    return LoginEvent.objects.filter(user=user).latest("pk")


# -- the attacks ---------------------------------------------------------------------------------------------


def test_a_thiefs_browser_on_another_isp_in_another_city_signs_into_a_cookieless_app_account_with_no_step_up(
    brokerage_customer: Any,
) -> None:
    """**Secure**: a browser the account never used, on a network and in a city it never used, is stepped
    up (a second factor) and its customer told, whatever door her own sign-ins come through. The same
    customer whose app keeps its cookie jar is: ``new_device`` 25 + ``new_device_new_network`` 15 + the
    statistical model = 48, step-up (``test_held_..._a_jar_...`` below).

    **Attack**: Hanako's app (no cookie jar: OkHttp's default) signs in at home in Tokyo (NTT OCN) every
    evening for a month. The thief has her password (phished) and nothing else: no relayed code, no copy of
    any cookie. The evening after, at her hour, he opens the portal's website in his own Chrome on a KDDI
    line in Osaka, 400 km away (another ISP, another city), and signs in with the HTML form. Scored 8
    (``unfamiliar_login`` only): allowed outright, no step-up, no "new sign-in" notice (nor "new country":
    Japan). He then sells 24 % of her holdings (240 Toyota, ¥684,000) under the risky-session limit: placed,
    no hold, and she hears of nothing until the fill.

    **Root cause**: ``authguard/risk/signals_device.py:DeviceCookie._judge``: ``if profile.total("dev") ==
    0: return []``. "A missing cookie says nothing here" is right for *her* cookie-less app; but his
    browser does not miss the cookie, it presents one (issued with the login page), and a device id on an
    account that never carried any is the newest thing about the login. The same guard drops
    ``new_device_new_network`` and ``new_device_new_fixed_address``, and ``signals_profile._new_browser``
    (same test) lets his familiar-network discount through. ``notifications/outbox.notify_login`` notices
    only ``new_device``/``copied_user_agent``, so nothing tells her. docs/drf.md promises the opposite ("A
    client should keep the authguard_device cookie ...: without it every login is from a new device, scored
    and notified as such"): it is neither scored nor notified.

    **Fix**: in ``_judge``, when ``profile.total("dev") == 0`` but this login *presents* a device cookie
    (``evidence.ctx.device_hash`` is set) on an account with history, score it as ``new_device`` (maybe a
    separate code ``first_browser`` with fewer points, e.g. 15, but never 0, and in ``NEW_DEVICE_CODES``
    so it is notified), and keep ``new_device_new_network`` / ``new_device_new_fixed_address`` for it; let
    ``_new_browser`` say True for it too. Keep "a missing cookie says nothing" only for a login that
    presents none (her app). Better still: learn cookie-less sign-ins as a device class of their own
    (``dev`` = ``"-|" + uac``, say), so the account's profile says "only ever an app, never a browser".
    """
    user = _hanako(brokerage_customer)
    _app_history(jar=False)
    assert _dev_total(user) == 0  # the fact the suspicion rests on
    with time_machine.travel(THIEF_AT, tick=False):
        thief = OrderApi(REMOTE_ADDR=IP_OSAKA)  # the demo's JSON API in his browser, CSRF and all
        thief.post("/api/login", {"username": "hanako", "password": HANAKO_PASSWORD})
        event = _latest(user)
        sold = thief.order("sell", "7203", 240)
    found = (event.outcome, event.action, event.score, event.reasons, _notices(user), sold.status_code)
    assert event.action != "allow", (
        f"his browser on KDDI in Osaka, never used by her app-only account, is allowed outright: {found}; "
        f"then sells 240 Toyota (¥684,000, 24 %): {sold.status_code} {sold.json().get('status')}"
    )


def test_a_thiefs_browser_at_her_isp_in_her_city_is_never_told_to_the_cookieless_app_customer(
    brokerage_customer: Any,
) -> None:
    """**Secure**: a sign-in from a browser the account never used tells its customer ("new sign-in",
    ``new_device_login``), as it tells the customer whose app keeps its jar (``test_held_...`` below).

    **Attack**: as above, from the /24 of her home line (her ISP's neighbourhood: a residential proxy there,
    or her neighbour's wifi), at her hour, through the HTML form. Allowed at 8 (``unfamiliar_login``), and
    no notice of any kind: she never learns a browser signed into her account. (The jar customer: 33,
    ``new_device``, a ``new_device_login`` notice.)

    **Root cause**: ``DeviceCookie._judge`` returns no finding when ``profile.total("dev") == 0``, and
    ``outbox.notify_login`` notifies a new device only by the ``new_device``/``copied_user_agent`` codes.

    **Fix**: as in the test above: a login presenting a device cookie on an account that never carried one
    is a new device (a finding in ``NEW_DEVICE_CODES``, so notified), at home too.
    """
    user = _hanako(brokerage_customer)
    _app_history(jar=False)
    with time_machine.travel(THIEF_AT, tick=False):
        _browser_sign_in(IP_TOKYO_2)
    event = _latest(user)
    assert event.outcome == Outcome.SIGNED_IN  # allowed (the score is not the point here)
    assert "new_device_login" in _notices(user), (
        f"a new browser signed into her app-only account unannounced: {event.score} {event.reasons}, "
        f"notices {_notices(user)}"
    )


# -- what holds ---------------------------------------------------------------------------------------------


def test_held_an_app_that_keeps_its_jar_records_its_device_so_a_thiefs_browser_is_new_and_stepped_up_away(
    brokerage_customer: Any,
) -> None:
    """The suspicion is void for an app that keeps its cookies: its token sign-ins carry the device cookie
    their answers gave (from the second on), the profile learns ``dev``, and a thief's browser is a new
    device: a notice at her ISP in her city, a step-up on another network."""
    user = _hanako(brokerage_customer)
    _app_history(jar=True)
    assert _dev_total(user) == DAYS - 1  # all but the first, which had no cookie yet
    home, away = _home_then_away(user, IP_TOKYO_2)
    assert home.outcome == Outcome.SIGNED_IN and "new_device" in home.reasons
    assert "new_device_login" in _notices(user)
    assert away.action == "step_up" and {"new_device", "new_device_new_network"} <= set(away.reasons)


def test_held_the_order_guard_still_holds_a_mass_sale_from_the_thiefs_browser_on_the_cookieless_account(
    brokerage_customer: Any,
) -> None:
    """The order guard's session facts do not depend on the finding: the thief's browser is not a known
    device (``sessions.state`` ``n``), and the account has a browser first seen today. So a sale of 60 %
    from his session is held for her second factor, as on any new browser."""
    user = _hanako(brokerage_customer)
    _app_history(jar=False)
    with time_machine.travel(THIEF_AT, tick=False):
        thief = OrderApi(REMOTE_ADDR=IP_TOKYO_2)
        thief.post("/api/login", {"username": "hanako", "password": HANAKO_PASSWORD})
        assert _latest(user).outcome == Outcome.SIGNED_IN
        sold = thief.order("sell", "7203", 600)
    assert sold.status_code == 202 and sold.json()["status"] == "held", sold.content


# -- what a fix must keep cheap ------------------------------------------------------------------------------


def test_cost_her_cookieless_app_keeps_signing_in_at_home_without_step_up_or_notices(
    brokerage_customer: Any,
) -> None:
    """Her app without a jar never presents a cookie: a fix must leave "a missing cookie says nothing" for
    it (no ``new_device`` at each of its sign-ins, no notice each evening, no step-up)."""
    user = _hanako(brokerage_customer)
    _app_history(jar=False)
    with time_machine.travel(THIEF_AT, tick=False):
        response = _app_sign_in(api(IP_TOKYO, UA_APP))
    assert response.status_code == 200, response.content
    event = _latest(user)
    assert event.action == "allow" and "new_device" not in event.reasons
    assert _notices(user) == []


def test_cost_her_first_visit_to_the_website_at_home_is_allowed_and_at_most_announced(
    brokerage_customer: Any,
) -> None:
    """The legitimate app-only customer opens the website for the first time, in her own browser at home
    (her very address, her hour). With the fix this is a new device: it should cost her a "new sign-in"
    notice about herself (and her browser's ``new_device`` 25 points), never a step-up or a refusal: 25 +
    her familiar network stays under 40. From her home address only: at another address of her ISP the
    thief's residential proxy looks the same, and she would be asked for her app's code there, as a jar
    customer is."""
    user = _hanako(brokerage_customer)
    _app_history(jar=False)
    with time_machine.travel(THIEF_AT, tick=False):
        browser, response = _browser_sign_in(IP_TOKYO)
    event = _latest(user)
    assert event.outcome == Outcome.SIGNED_IN and event.action == "allow", (event.score, event.reasons)
    assert response.status_code == 302 and "step-up" not in response["Location"]
    assert set(_notices(user)) <= {"new_device_login"}
    # And the browser is hers from then on: her second visit is a known device, no notice.
    with time_machine.travel(THIEF_AT + timedelta(days=1), tick=False):
        browser.post("/logout/")
        browser.get("/login/")
        browser.post("/login/", {"username": "hanako", "password": HANAKO_PASSWORD})
    again = _latest(user)
    assert again.action == "allow" and "known_device" in {f.get("code") for f in again.findings}, (
        again.findings
    )
    assert Decimal(len(_notices(user))) <= 1


@pytest.mark.parametrize("jar", [False, True], ids=["no_jar", "jar"])
def test_cost_her_first_visit_away_from_home_is_stepped_up_as_a_jar_customers_is(
    brokerage_customer: Any, jar: bool
) -> None:
    """Her first visit to the website from her office in Osaka (another ISP, another city) is asked for her
    app's code: the price of the fix, the same as a customer whose app keeps its jar pays (the same device
    findings), and what stops the thief there."""
    user = _hanako(brokerage_customer)
    _app_history(jar=jar)
    with time_machine.travel(THIEF_AT, tick=False):
        _browser_sign_in(IP_OSAKA)
    event = _latest(user)
    assert event.action == "step_up", (event.score, event.reasons)
    assert {code for code in event.reasons if code.startswith("new_device")} == {
        "new_device",
        "new_device_new_network",
    }


def test_cost_a_log_imported_without_device_ids_makes_her_first_browser_after_the_install_new(
    brokerage_customer: Any, geoip: Any
) -> None:
    """``import-history`` of a portal log without device ids leaves an account whose sign-ins never carried a
    device cookie: her first browser sign-in after the install is a new browser, as the thief's would be. At
    home it is allowed and announced (one notice), never a "copied user agent" (her own user agent, with no
    cookie the account ever carried to be missing); on a network the log never showed it is stepped up."""
    user = _hanako(brokerage_customer)
    rows = [
        {
            "ts": (START + timedelta(days=day)).isoformat(),
            "user": "hanako",
            "ip": IP_TOKYO,
            "user_agent": UA_CHROME_WIN,
            "device_id": None,
            "password_ok": True,
            "second_factor_ok": None,
        }
        for day in range(DAYS)
    ]
    import_history([json.dumps(row) for row in rows], geoip_path=str(geoip))
    assert _dev_total(user) == 0
    home, away = _home_then_away(user, IP_TOKYO)
    assert home.action == "allow" and "new_device" in home.reasons, (home.score, home.reasons)
    assert "copied_user_agent" not in home.reasons
    assert _notices(user) == ["new_device_login"]
    assert away.action == "step_up" and {"new_device", "new_device_new_network"} <= set(away.reasons)


def test_cost_an_app_that_keeps_its_jar_is_a_new_device_once_on_an_account_without_one(
    brokerage_customer: Any,
) -> None:
    """Trade kept: an app that keeps its jar presents no cookie at its first sign-in (it has none yet), and at
    its second the cookie that answer gave it. On an account whose sign-ins carried no cookie before (a new
    account, or the first sign-ins after an install without device ids), that second sign-in is the
    account's first cookie: a new device, told once ("new sign-in"). It is then known. (On an account whose
    sign-ins carry cookies, a new app with a jar is already a new device twice: without a cookie, then with
    its first.) Telling the answer's own cookie apart from a browser's fresh one needs the given id kept with
    the account, which the profile does not hold today."""
    user = brokerage_customer(holdings={"7203": 1000}, totp=True)
    _app_history(jar=True, days=3)
    events = list(LoginEvent.objects.filter(user=user).order_by("pk"))
    assert [event.action for event in events] == ["allow", "allow", "allow"]
    assert "new_device" not in events[0].reasons and "new_device" in events[1].reasons
    assert not {"new_device", "new_device_new_network"} & set(events[2].reasons)
    assert _notices(user) == ["new_device_login"]
