"""Red team 36 (g): paths that take the account's one in-flight password check (round thirty-five) give it
back, so the customer's next sign-in is never refused for a check that already ended."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.core.cache import cache

from authguard.models import LoginEvent, Outcome
from authguard.risk.velocity import _IN_FLIGHT, _user_key

from ..conftest import IP_SG_VPS, IP_TOKYO
from .support import UA_REQUESTS, api, browser, home_customer, json_login
from .test_admin_login_walkarounds import admin_login
from .test_drf_tokens import obtain

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]

EMAIL = "alice@example.jp"


def _place_free(name: str = EMAIL) -> bool:
    return cache.get(f"{_IN_FLIGHT}{_user_key(name)}") is None


def _signs_in_at_home() -> Any:
    answer = json_login(browser(IP_TOKYO), EMAIL)
    assert answer.status_code == 200 and answer.json()["status"] in {"ok", "step_up_required"}, answer.content
    return answer


def test_held_her_password_checked_at_the_admin_login_gives_the_place_back(user_factory: Any) -> None:
    """The gang checks her right password at ``/admin/login/`` (refused: not staff); the place is free at
    once and her own sign-in from home a moment later is checked, not refused as throttled."""
    alice = home_customer(user_factory, "alice")
    admin_login(browser(IP_SG_VPS, UA_REQUESTS), EMAIL, "correct horse battery")
    assert _place_free()
    _signs_in_at_home()
    assert not LoginEvent.objects.filter(user=alice, outcome=Outcome.THROTTLED).exists()


def test_held_a_wrong_password_at_the_admin_login_gives_the_place_back(user_factory: Any) -> None:
    alice = home_customer(user_factory, "alice")
    admin_login(browser(IP_SG_VPS, UA_REQUESTS), EMAIL, "Summer2026!")
    assert _place_free()
    _signs_in_at_home()
    assert not LoginEvent.objects.filter(user=alice, outcome=Outcome.THROTTLED).exists()


@pytest.mark.parametrize("password", ["correct horse battery", "Summer2026!"], ids=["right", "wrong"])
def test_held_a_token_login_gives_the_place_back(user_factory: Any, password: str) -> None:
    """authguard's token endpoint (DRF request wrapping the HttpRequest): right or wrong, the place is given
    back with the answer, and her browser sign-in right after is checked."""
    alice = home_customer(user_factory, "alice")
    obtain(api(IP_SG_VPS), EMAIL, password)
    assert _place_free()
    _signs_in_at_home()
    assert not LoginEvent.objects.filter(user=alice, outcome=Outcome.THROTTLED).exists()


def test_held_the_html_form_and_the_json_login_share_one_place_across_case(user_factory: Any) -> None:
    """``ALICE@EXAMPLE.JP`` and ``alice@example.jp`` are one place (the key lower-cases, the lookup
    ignores ASCII case): a right password in upper case signs her in and frees the place."""
    home_customer(user_factory, "alice")
    answer = json_login(browser(IP_TOKYO), EMAIL.upper())
    assert answer.status_code == 200, answer.content
    assert _place_free() and _place_free(EMAIL.upper())


def test_her_double_submitted_check_waits_for_the_first_instead_of_being_refused() -> None:
    """Red team 36 (g), customer cost: her double-clicked "Sign in" sent a second check of her account while
    the first ran, and it was refused as throttled (the page her browser shows). A second check now waits
    for the place (a bounded wait) and is told it waited, so the lock is read again; a third that outwaits
    the bound is refused."""
    from django.test import RequestFactory

    from authguard.risk.velocity import release_in_flight, take_in_flight

    first, second, third = (RequestFactory().post("/login/") for _ in range(3))
    assert take_in_flight(cache, first, username="account:1") == "taken"
    freed = threading.Timer(0.3, release_in_flight, args=(cache, first))
    freed.start()
    try:
        assert take_in_flight(cache, second, username="account:1", wait_seconds=3) == "waited"
    finally:
        freed.join()
    assert take_in_flight(cache, third, username="account:1", wait_seconds=0.2) == "busy"
    release_in_flight(cache, second)
    assert take_in_flight(cache, third, username="account:1", wait_seconds=0) == "taken"
    release_in_flight(cache, third)
