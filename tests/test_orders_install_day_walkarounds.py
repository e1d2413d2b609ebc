"""Red team, round twenty-four: round twenty-three's "first devices of a new account" and "a dormant
account" rules, walked around; each test failed before its fix.

* A portal that moves its customers into a new Django user table on the day it installs authguard has every
  ``date_joined`` on that day, and runs ``authguard import-history`` the same day. ``exposure.new_account``
  read only ``date_joined``, so for the week after the install every customer without a passkey-trusted
  device was a "new account" whose first devices are no change of context. Now an imported profile, or a
  device the profile remembers from before the window, says the account is not new.
* Round twenty-three made ``dormant_account`` (120 idle days) a change of context. The engine scores the same
  idle browser ``stale_device`` from 60 days, which the guard did not read: a copy used 60-119 days after her
  last sign-in got the full limits. ``stale_device`` is a change of context too.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from authguard.models import KnownDevice, LoginEvent, RiskProfile
from authguard.risk.import_history import import_history

from . import test_battery_exposure as battery
from .conftest import (
    IP_TOKYO,
    IP_TOKYO_2,
    UA_CHROME_WIN,
    OrderApi,
)
from .test_battery_exposure import value
from .test_orders_first_device_walkarounds import (
    LOWERED_SELL_SHARE,
    _buy_and_sell,
    _day_one,
    _paid_for,
    idle_browser_back,
)
from .test_risk_import_history import log

start = battery.start
clock = battery.clock


@pytest.mark.battery(64)
@pytest.mark.django_db
def test_an_imported_long_standing_customer_whose_date_joined_is_the_import_day_gets_the_lowered_limits(
    clock: Any, tanaka: Any, geoip: Any
) -> None:
    """Tanaka has signed in to the portal every day for half a year from his Chrome at home (OCN, Tokyo),
    never with a passkey. The portal migrated its users yesterday (``date_joined`` = the import day) and
    imported his sign-in log (``import-history``: a profile with 180 sign-ins, no device listed). Day 0 the
    thief signs in with the phished password from another OCN line in Tokyo in a Chrome on Windows: a new
    browser on his usual network, allowed (``new_device`` alone is no change of context). Day 1 he signs in
    again from that browser and buys 5Z4A for 9.9 % of the portfolio, then sells the largest holdings up to
    49 %. The account is half a year old by the guard's own imported records, so his browser, first seen
    yesterday, is a change (the week's lowered limits), as it is when ``date_joined`` is right."""
    now = clock(0)
    assert tanaka.date_joined > now - timedelta(days=7)  # the import day: the user row was created then
    lines = log(now - timedelta(days=200), tanaka.username, 180, ip=IP_TOKYO, user_agent=UA_CHROME_WIN)
    summary = import_history(lines, geoip_path=str(geoip))
    assert summary.imported_profiles == 1 and summary.remembered_devices == 0
    assert RiskProfile.objects.get(user=tanaka).data["imp"] > 0
    assert not KnownDevice.objects.filter(user=tanaka).exists()
    total = value(tanaka).total_value
    thief = OrderApi(REMOTE_ADDR=IP_TOKYO_2, HTTP_USER_AGENT=UA_CHROME_WIN)
    bought, sold_share, statuses = _day_one(clock, tanaka, thief)
    events = list(LoginEvent.objects.filter(user=tanaka).order_by("id").values_list("action", "reasons"))
    assert [a for a, _r in events] == ["allow", "allow"], events
    paid = _paid_for(tanaka, "5Z4A")
    share = f"{paid / total:.1%} of ¥{total:,.0f} in 5Z4A"
    outcome = (bought, share, f"sold {sold_share:.1%}", statuses, events)
    # Secure: a customer of half a year (by the guard's own import) is no new account.
    assert bought == "held" and paid == 0, outcome
    assert sold_share <= LOWERED_SELL_SHARE and "held" in statuses, outcome


@pytest.mark.django_db
@pytest.mark.usefixtures("geoip")
def test_a_copy_of_the_idle_browser_scored_stale_device_one_day_before_dormancy_lowers_the_limits(
    clock: Any, tanaka: Any, settings: Any
) -> None:
    """Round twenty-three's dormancy case, one day earlier: Tanaka last signed in 119 days ago, from the home
    browser he has used for a year. An infostealer's copy of that browser (cookies, address, user agent)
    signs in with his password after 119 idle days instead of 130: allowed, scored ``stale_device`` only
    (not ``dormant_account``: 119 < 120), which is no change of context to the guard. In one sitting the
    copy puts 9.9 % of the ¥11 million portfolio into the illiquid 5Z4A and sells 44 % of the holdings.
    Four months of silence and then a sign-in that trades half the portfolio is the same change at 119
    days as at 120."""
    browser, action, reasons = idle_browser_back(clock, tanaka, settings, idle_days=119)
    bought, sold_share, statuses = _buy_and_sell(browser, tanaka)
    assert action == "allow" and reasons == ["stale_device"], (action, reasons)
    outcome = (action, reasons, bought, f"sold {sold_share:.1%}", statuses)
    # Secure: the copy after four months of silence trades under the lowered limits.
    assert bought == "held" and sold_share <= LOWERED_SELL_SHARE and "held" in statuses, outcome
