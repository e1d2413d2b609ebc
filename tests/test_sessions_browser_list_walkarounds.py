"""Red team round thirty-one (a): ``session_in_two_browsers`` (4219f4f, ``places.returned_browser``, ``bs``).

A session remembers the browsers (``br``: family|OS|device type) it showed, at most eight unvouched ones
(the ones she vouched for by an allowed sign-in or a passed step-up are always kept). Tests not named
``test_held_...`` fail on 4219f4f when the attack works.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

import pytest
from django.conf import settings as django_settings

from authguard.models import LoginEvent

from . import test_battery_exposure as battery
from .conftest import IP_TOKYO_2, UA_CHROME_WIN
from .test_orders_copied_browser_os_walkarounds import UA_CHROME_MAC
from .test_sessions_browser_release_walkarounds import _copy_of, _session_state
from .test_sessions_release_change_walkarounds import _her_session_copied

start = battery.start
clock = battery.clock

PORTFOLIO = "/api/portfolio"
_WEBKIT = "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0"
#: Eight Chrome 131 desktop agents, each another ``br`` than hers and the copy's (family|OS|device type).
FILLERS = [
    f"Mozilla/5.0 ({platform}) {_WEBKIT} Safari/537.36"
    for platform in (
        "X11; Linux x86_64",
        "X11; CrOS x86_64 14541.0.0",
        "X11; FreeBSD amd64",
        "X11; Ubuntu; Linux x86_64",
        "X11; OpenBSD amd64",
        "X11; NetBSD amd64",
        "X11; Fedora; Linux x86_64",
        "X11; Debian; Linux x86_64",
    )
]


def _drop_browsers(home: Any) -> None:
    """The session as signed in before 4219f4f: its state has no ``bs`` (every live session on deploy day)."""
    store = import_module(django_settings.SESSION_ENGINE).SessionStore
    session = store(session_key=home.client.cookies[django_settings.SESSION_COOKIE_NAME].value)
    data = session.load()
    data["_authguard"].pop("bs", None)
    session.update(data)
    session.save()


@pytest.mark.django_db
@pytest.mark.usefixtures("geoip")
def test_held_the_copy_flushing_its_own_browser_out_of_bs_does_not_spare_her_return(
    clock: Any, tanaka: Any, totp_factory: Any
) -> None:
    """HELD: the copy (Chrome on a Mac, another address of her /24) goes first, then sends eight requests in
    eight other Chrome builds (Linux, ChromeOS, Android, FreeBSD...) so that its Mac falls out of the
    eight unvouched browsers ``bs`` keeps, and comes back as the Mac unseen. Her sign-in vouched for her
    Windows Chrome, which is never dropped: her return after any unvouched browser is held, her step-up
    rotates the key and the copy is out."""
    home, copy, events = _her_session_copied(clock, tanaka, ip=IP_TOKYO_2, ua=UA_CHROME_MAC)
    totp_factory(tanaka)
    clock(0, hours=1)
    assert copy.get(PORTFOLIO).status_code == 200
    served = []
    for i, ua in enumerate(FILLERS):
        clock(0, hours=1.001 + i * 0.001)
        served.append(_copy_of(copy, ip=IP_TOKYO_2, ua=ua).get(PORTFOLIO).status_code)
    clock(0, hours=1.01)
    back = copy.get(PORTFOLIO).status_code
    clock(0, hours=1.02)
    hers = home.get(PORTFOLIO).status_code
    bs = _session_state(home).get("bs")
    outcome = (served, f"copy back as the Mac {back}", f"her request {hers}", bs)
    assert hers == 401, outcome


@pytest.mark.django_db
@pytest.mark.usefixtures("geoip")
@pytest.mark.battery(61)
def test_a_session_signed_in_before_the_deploy_is_not_shared_by_flushing_bs(
    clock: Any, tanaka: Any, totp_factory: Any
) -> None:
    """Tanaka signed in before 4219f4f went live (her session's state has no ``bs``: nothing vouched in
    it) and sessions last up to 24 hours. The copy (Chrome on a Mac, another address of her /24) and her
    Windows Chrome at home take turns; before each of his turns the copy sends eight requests in eight other
    Chrome builds from his address: every one is a new browser (not "back"), re-scored and allowed with no
    event, and together they push both her browser and his Mac out of the eight unvouched ``bs`` keeps.
    Each turn, his Mac and her Windows are "new" again: never held, no event, all day. Secure: a browser
    the session showed is not forgotten while the session lives (or: a session whose ``bs`` starts empty
    notes its bound browser first; or more than a few new browsers in a session are held)."""
    home, copy, events = _her_session_copied(clock, tanaka, ip=IP_TOKYO_2, ua=UA_CHROME_MAC)
    totp_factory(tanaka)
    _drop_browsers(home)
    seen = []
    for turn in range(3):
        base = 1 + turn * 0.1
        for i, ua in enumerate(FILLERS):
            clock(0, hours=base + i * 0.001)
            _copy_of(copy, ip=IP_TOKYO_2, ua=ua).get(PORTFOLIO)
        clock(0, hours=base + 0.01)
        seen.append(("copy", copy.get(PORTFOLIO).status_code))
        clock(0, hours=base + 0.05)
        seen.append(("her", home.get(PORTFOLIO).status_code))
    new_events = [(e.ip, e.outcome) for e in LoginEvent.objects.filter(user=tanaka).order_by("pk")[events:]]
    outcome = (seen, new_events, _session_state(home).get("bs"))
    assert any(status != 200 for _, status in seen), outcome


@pytest.mark.django_db
@pytest.mark.usefixtures("geoip")
def test_held_a_copy_in_her_windows_chrome_after_its_mac_is_back_in_two_browsers(
    clock: Any, tanaka: Any, totp_factory: Any
) -> None:
    """HELD: the copy ends its Mac turn by switching to her exact Windows Chrome 131 from his address (so
    that her next request finds "her" browser bound): back in a vouched browser after an unvouched one,
    held; the kit never hands the binding back to her browser unseen."""
    home, copy, events = _her_session_copied(clock, tanaka, ip=IP_TOKYO_2, ua=UA_CHROME_MAC)
    totp_factory(tanaka)
    clock(0, hours=1)
    assert copy.get(PORTFOLIO).status_code == 200
    clock(0, hours=1.01)
    as_her = _copy_of(copy, ip=IP_TOKYO_2, ua=UA_CHROME_WIN).get(PORTFOLIO).status_code
    assert as_her == 401, as_her
