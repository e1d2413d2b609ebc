"""A device cookie's generations, attacked (red team, round eight; each test failed on the code before): a
copy from before generations laundered through the thief's own account, and an old copy shown in the minute
after her sign-in (round eight), or one sign-in old shown to another account in that minute (round nine).
Threat model: an infostealer's copy of her cookie jar, her password or only her username,
an account of the thief's own, days of time; real flows through the demo's JSON API, real TOTP codes."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.core import signing
from django_otp.plugins.otp_totp.models import TOTPDevice

from authguard.factors import throttles
from authguard.models import KnownDevice, RecoveryCode
from authguard.risk.context import device_hash, device_id_from_cookie
from authguard.sessions import device_generations

from . import test_device_cookie_generations as gen
from .conftest import HANAKO_PASSWORD, IP_OSAKA, IP_TOKYO, OrderApi, totp_token
from .test_battery_sessions import give_recovery_codes
from .test_factor_backoff_walkarounds import her_laptop_and_his_account, lock_and_siege_the_codes_unlock

pytestmark = pytest.mark.django_db


def _old_format(device_id: str) -> str:
    """A device cookie as every release before migration 0016 issued it: the id alone, signed."""
    return signing.Signer(salt="authguard.device-cookie").sign(device_id)


@pytest.mark.battery(71)
@pytest.mark.usefixtures("geoip")
def test_a_caught_copy_of_a_browser_from_before_generations_stays_her_browser_for_good(
    brokerage_customer: Any, user_factory: Any, settings: Any
) -> None:
    """The infostealer's stock: a copy of her cookie jar taken before the portal installed the release with
    cookie generations (migration 0016 left her browser's row with no generation, and her browser keeps its
    old cookie until it next signs in). The thief shows the copy once, to an account of his own (mallory):
    his row of her device id gets a generation. Her next sign-in is then behind, the id is retired and she
    gets a new id: the system has caught two holders. But her own row, with no generation, is neither
    retired (``cookie_generation < RETIRED`` is not true of NULL) nor compared (``holds_newest`` answers True
    for a row that never confirmed): the thief's copy stays "her browser of a year" at the factor throttle
    for good. His wrong codes at the codes unlock then go onto her authenticator's own back-off (never taken
    back off for "her browser") and her right codes, from her own browser, are refused."""
    with time_machine.travel(gen.START, tick=False) as clock:
        hanako = brokerage_customer(holdings={"7203": 100}, totp=True)
        codes = give_recovery_codes(hanako)
        user_factory("mallory", password=HANAKO_PASSWORD, email="mallory@example.jp")

        # Her browser as the upgrade found it: the old cookie, a row of a year with no generation.
        browser = gen._client()
        browser.get("/api/csrf")
        device_id = device_id_from_cookie(gen._cookie(browser))
        browser.cookies[gen.DEVICE] = _old_format(device_id)
        gen._sign_in_and_use(browser)
        gen._sign_out(browser)
        browser.cookies[gen.DEVICE] = _old_format(device_id)
        mine = KnownDevice.objects.filter(user=hanako, cookie_hash=device_hash(device_id))
        assert mine.update(
            cookie_generation=None,
            cookie_generation_at=None,
            previous_generation=None,
            first_seen_at=gen.START - timedelta(days=365),
            learned_at=gen.START - timedelta(days=365),
        )
        stolen = _old_format(device_id)  # the malware's copy, taken before the upgrade

        clock.shift(timedelta(days=2))
        thief = gen._copy(stolen, IP_OSAKA)
        assert gen._login(thief, "mallory")["status"] == "ok"  # his own account, a browser new to it
        assert thief.get("/api/portfolio").status_code == 200  # the generation mallory's row now holds
        gen._sign_out(thief)

        # A day later she signs in from her browser: it is behind mallory's row; the id is retired.
        clock.shift(timedelta(days=1))
        gen._login(browser)
        assert set(gen._last_event().reasons) & device_generations.LEFT_BEHIND_CODES
        her_new_cookie = gen._cookie(browser)
        assert device_id_from_cookie(her_new_cookie) != device_id  # the system caught two holders
        gen._sign_out(browser)

        his = OrderApi(REMOTE_ADDR=IP_OSAKA)
        his.client.cookies[gen.DEVICE] = gen._cookie(thief)
        request = his.get("/api/csrf").wsgi_request
        caught = throttles.established_device(request, user=hanako) is None

        answers = lock_and_siege_the_codes_unlock(hanako, codes[2], clock, settings, thief=his)
        assert 400 in answers

        assert caught, "a caught copy of a retired id passed for her browser of a year"
        # His wrong codes were a stranger's: none stays on her authenticator's own back-off. (Her browser's
        # new id has no month of standing yet, so until then it waits in the strangers' scope he keeps
        # shut: the documented cost of a retirement, docs/factor-lifecycle.md; her passkey or the desk.)
        assert TOTPDevice.objects.get(pk=hanako.totp.pk).throttling_failure_count == 0
        assert not KnownDevice.objects.filter(
            user=hanako, cookie_hash=device_hash(device_id), cookie_generation__lt=device_generations.RETIRED
        ).exists(), "her row from before generations was not retired with the id"
        assert not RecoveryCode.objects.filter(used_at__isnull=False).exists()


@pytest.mark.battery(71)
@pytest.mark.usefixtures("geoip")
def test_an_old_copy_shown_in_the_minute_after_her_sign_in_becomes_a_sibling_of_her_newest(
    brokerage_customer: Any, user_factory: Any, settings: Any
) -> None:
    """docs/dbsc.md: "a generation confirmed less than 60 s ago does not yet leave *the one before it*
    behind". The rule (``_judge_row``, ``left_behind_sql``) leaves *every* older one current in that minute:
    a copy three sign-ins old, shown to the thief's own account in the minute after her browser confirmed
    its new cookie (she signs in at nine every morning), is current: no finding, no retirement, and the
    answer re-issues her device id to him at a generation within sibling distance of hers. From then on
    his cookie is her browser of a year at the factor throttle (``holds_newest``) and at her sign-ins
    (``left_behind`` is 0 for both holders), until she next signs in: the superseded copy was laundered into
    a current one."""
    with time_machine.travel(gen.START, tick=False) as clock:
        hanako = brokerage_customer(holdings={"7203": 100}, totp=True)
        user_factory("mallory", password=HANAKO_PASSWORD, email="mallory@example.jp")
        browser = gen._browser_in_use()
        KnownDevice.objects.filter(user=hanako).update(
            first_seen_at=gen.START - timedelta(days=365), learned_at=gen.START - timedelta(days=365)
        )
        stolen = gen._cookie(browser)  # the malware's copy
        gen._later_sign_ins(browser, clock, 3)  # three sign-ins later: two or more generations behind

        thief, flagged = shown_to_his_account_in_her_minute(stolen, browser, clock)
        thief.get("/api/portfolio")
        his = OrderApi(REMOTE_ADDR=IP_OSAKA)
        his.client.cookies[gen.DEVICE] = gen._cookie(thief)
        clock.shift(timedelta(hours=2))
        request = his.get("/api/csrf").wsgi_request

        assert flagged, "a copy three sign-ins old was judged current"
        assert throttles.established_device(request, user=hanako) is None


@pytest.mark.battery(71)
@pytest.mark.usefixtures("geoip")
def test_a_copy_one_sign_in_old_shown_in_the_minute_after_her_sign_in_is_laundered_into_her_browser(
    brokerage_customer: Any, user_factory: Any, settings: Any
) -> None:
    """Round eight narrowed the grace after a fresh confirmation to "the one before it", but the one before
    it is exactly what an infostealer's copy holds once she has signed in again (the most common copy of
    all: taken some day after one sign-in, used after the next). She signs in at nine every morning; twenty
    seconds after her browser confirms its new cookie the thief shows the copy, one sign-in old, to his own
    account (mallory). In the grace minute it is CURRENT: no finding, no retirement, and mallory's sign-in
    re-issues her device id to him at a generation within sibling distance of her newest. From then on his
    cookie is "her browser of a year" at the factor throttle, and neither holder is ever behind the other
    (siblings): his wrong codes at the codes unlock go into her browser's own scope and onto her
    authenticator's own back-off, and her right codes from her own browser are refused."""
    with her_laptop_and_his_account(brokerage_customer, user_factory) as (hanako, codes, browser, clock):
        stolen = gen._cookie(browser)  # the malware's copy, taken after her last sign-in

        thief, flagged = shown_to_his_account_in_her_minute(stolen, browser, clock)
        thief.get("/api/portfolio")  # his browser confirms what mallory's sign-in gave it
        laundered = gen._cookie(thief)
        clock.shift(timedelta(hours=2))
        browser.get("/api/portfolio")  # her live session is checked: is her browser behind his?

        his = OrderApi(REMOTE_ADDR=IP_OSAKA)
        his.client.cookies[gen.DEVICE] = laundered
        request = his.get("/api/csrf").wsgi_request
        passes_for_hers = throttles.established_device(request, user=hanako) is not None

        answers = lock_and_siege_the_codes_unlock(hanako, codes[2], clock, settings, thief=his)
        assert 400 in answers and 429 in answers  # he was held back, and kept at it

        mine = OrderApi(REMOTE_ADDR=IP_TOKYO)
        mine.client.cookies[gen.DEVICE] = gen._cookie(browser)
        body = {"username": "hanako", "totp_code": totp_token(hanako.totp), "recovery_code": codes[0]}
        hers = mine.post("/api/unlock/codes", body)
        back_off = TOTPDevice.objects.get(pk=hanako.totp.pk).throttling_failure_count

        assert hers.status_code == 202, (hers.status_code, hers.content[:200])  # 429: his failures, hers
        assert back_off == 0, f"his wrong codes went onto her authenticator's own back-off ({back_off})"
        assert not passes_for_hers, "the laundered copy passes for her browser of a year at the throttle"
        assert flagged, "a copy one sign-in old, shown in the grace minute, was judged current"
        assert RecoveryCode.objects.filter(used_at__isnull=False).count() == 1


def shown_to_his_account_in_her_minute(stolen: str, browser: Any, clock: Any) -> tuple[Any, set[str]]:
    """A day later she signs in (her browser confirms its new cookie); twenty seconds on the thief shows
    the ``stolen`` copy to his own account (mallory). Returns his browser and the left-behind findings of
    his sign-in."""
    clock.shift(timedelta(days=1))
    gen._sign_out(browser)
    gen._sign_in_and_use(browser)
    clock.shift(timedelta(seconds=20))
    thief = gen._copy(stolen, IP_OSAKA)
    gen._login(thief, "mallory")
    return thief, set(gen._last_event().reasons) & device_generations.LEFT_BEHIND_CODES
