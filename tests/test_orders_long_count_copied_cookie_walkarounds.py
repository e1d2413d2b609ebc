"""The long count per browser against a copy of her device cookie, with the real risk engine (issue 8; red
team, round sixty; docs/order-guard.md, the long count).

An infostealer copy of her cookie jar gives the thief her browser's device id, so his ledger rows carry her
browser's ``device_hash``. The device cookie's generations (:mod:`authguard.sessions.device_generations`)
find the two holders as soon as the one left behind shows its cookie, and retire the id; a retired id's rows
are forgiven by no confirmation (``vouching._sums_sql``), whenever the retirement comes.

Real sign-ins through the demo's JSON API with the default risk signals, real passkeys (a software
authenticator), the real order guard; time_machine for time.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.test import override_settings
from django.urls import reverse

from authguard.models import GuardedOrder, KnownDevice
from authguard.sessions.device_generations import RETIRED

from . import test_battery_exposure as battery
from .conftest import IP_TOKYO, IP_TOKYO_2, OrderApi, settle_device
from .test_battery_exposure import customer, placed_buys, value
from .test_orders_long_count_limits_walkarounds import CASH, HER_WEEKLY, HERS, LARGE, PUMP

start = battery.start
clock = battery.clock

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]


def _passkey_step_up(client: OrderApi, authenticator: Any) -> None:
    options = client.post(reverse("authguard:api-step-up-passkey-options"))
    assert options.status_code == 200, options.content
    verified = client.post(reverse("authguard:api-step-up-passkey"), authenticator.get(options.json()))
    assert verified.status_code == 200, verified.content


def _her_browser(user: Any, authenticator: Any) -> OrderApi:
    """Her usual browser of a year (first verified with her passkey), signed in with her password."""
    her = OrderApi(REMOTE_ADDR=IP_TOKYO)
    her.login(user.username, battery.PASSWORD)
    _passkey_step_up(her, authenticator)
    settle_device(her.client.cookies["authguard_device"].value, user, days=400)
    battery.sign_in(her, user.username)  # her everyday sign-in: password only
    assert her.get("/api/portfolio").status_code == 200  # her browser confirms its cookie's generation
    return her


def _copy_of(her: OrderApi, ip: str) -> OrderApi:
    """The thief's browser: her user agent and a copy of her device cookie (an infostealer's)."""
    thief = OrderApi(REMOTE_ADDR=ip)
    thief.client.cookies["authguard_device"] = her.client.cookies["authguard_device"].value
    return thief


def _retired(user: Any, device: str) -> bool:
    return KnownDevice.objects.filter(user=user, cookie_hash=device, cookie_generation__gte=RETIRED).exists()


def _device(api: OrderApi) -> str:
    from authguard.risk.context import device_hash, device_id_from_cookie

    return device_hash(device_id_from_cookie(api.client.cookies["authguard_device"].value)) or ""


def test_held_round_sixtys_copy_with_the_risk_engine_on_her_confirmation_comes_from_a_new_id(
    clock: Any, authenticator: Any
) -> None:
    """Round sixty's attack (``test_her_confirmation_forgives_the_buys_he_placed_with_her_copied_device_
    cookie``, whose fixture scores no sign-in) with the default risk signals. On day 9 the thief signs in
    with her password and a copy of her device cookie from her own line (her browser: allowed) and fills
    9.6 % of her portfolio with the gang's stock. On day 40 her sign-in presents the cookie his sign-in
    left behind: the id is retired and her browser gets a new one, so her confirmation of her weekly buy
    forgives only that id's buys, never his. The next day the engine misses the thief once more (a new
    browser let in, modelled by scoring nothing): his buy is held and the pump stays under 10 %."""
    user = customer("rt63_kudo", cash=CASH, holdings=LARGE, authenticator=authenticator)
    clock(0)
    total = value(user).total_value
    her = _her_browser(user, authenticator)
    clock(9)
    thief = _copy_of(her, IP_TOKYO)
    thief.login(user.username, battery.PASSWORD)
    first = thief.order("buy", PUMP, int(Decimal("0.096") * total / 1050)).json()
    assert first["status"] == "placed", first
    his_device = GuardedOrder.objects.get(user=user, symbol=PUMP).device_hash
    assert his_device == _device(her)  # his row carries her browser
    clock(40)
    battery.sign_in(her, user.username)
    assert _retired(user, his_device)
    mine = her.order("buy", HERS, HER_WEEKLY).json()
    assert GuardedOrder.objects.get(user=user, symbol=HERS).device_hash not in ("", his_device)
    if mine["status"] == "held":
        ok = her.confirm_with_passkey(mine["confirmation"]["id"], authenticator)
        assert ok.status_code == 200, ok.content
    clock(41)
    with override_settings(AUTHGUARD_RISK_SIGNALS=[]):
        fresh = OrderApi(REMOTE_ADDR=IP_TOKYO_2)
        fresh.login(user.username, battery.PASSWORD)
        second = fresh.order("buy", PUMP, int(Decimal("0.09") * total / 1050)).json()
    assert second["status"] == "held", second
    bought = placed_buys(user, PUMP)
    assert bought <= Decimal("0.101") * total, f"{bought / total:.1%} in {PUMP}"


def test_held_a_copy_that_throws_away_the_generation_its_sign_in_gave_it(
    clock: Any, authenticator: Any
) -> None:
    """The thief signs in with a copy of her *current* cookie and throws away the next generation his
    sign-in gave him, so that his requests keep presenting hers: nothing ever confirmed his, her browser
    was never left behind, the id was never retired, and his session was never held (red team, round
    sixty-three: a 5 % buy of the gang's stock placed minutes later). A session presenting an older
    generation than it was given, a minute after, is held and the id retired; her next sign-in gets a new
    id, so nothing she confirms from it forgives what he placed in that minute."""
    user = customer("rt63_mori", cash=CASH, holdings=LARGE, authenticator=authenticator)
    clock(0)
    total = value(user).total_value
    her = _her_browser(user, authenticator)
    copied = her.client.cookies["authguard_device"].value
    clock(9)
    thief = _copy_of(her, IP_TOKYO)
    thief.login(user.username, battery.PASSWORD)
    assert thief.client.cookies["authguard_device"].value != copied  # the next generation, his...
    thief.client.cookies["authguard_device"] = copied  # ...thrown away
    within = thief.order("buy", PUMP, int(Decimal("0.04") * total / 1050)).json()  # inside the minute
    assert within["status"] == "placed", within
    his_device = _device(her)
    # A session that never confirmed its generation places with no browser (round sixty-four).
    assert GuardedOrder.objects.get(user=user, symbol=PUMP).device_hash == ""
    seconds = 1 / 3600
    answers = []
    for n in range(1, 4):
        clock(9, hours=n * 90 * seconds)
        answers.append(thief.get("/api/portfolio").status_code)
    assert answers[0] != 200, answers
    later = thief.order("buy", PUMP, int(Decimal("0.05") * total / 1050))
    assert later.status_code != 201, later.content[:300]
    assert placed_buys(user, PUMP) <= Decimal("0.041") * total
    assert _retired(user, his_device)
    clock(10)
    battery.sign_in(her, user.username)
    her.get("/api/portfolio")
    assert _device(her) != his_device  # her browser's next id: his minute's buy is no longer "hers"
