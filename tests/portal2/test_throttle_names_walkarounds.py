"""Red team 36 (g): the per-account throttle and in-flight place keyed on ``name.lower()``
(``authguard.risk.velocity._user_key``), against the names the user manager actually finds."""

from __future__ import annotations

from typing import Any

import pytest

from authguard.login import lockout
from authguard.models import AccountLock, LoginEvent, Outcome

from ..conftest import IP_OSAKA, IP_SG_VPS, IP_TOKYO, IP_US_HOME, IP_VPN
from .support import browser, home_customer, json_login

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]

KELVIN = "\u212a"  # KELVIN SIGN: "\u212a".lower() == "k"


def test_held_kelvin_sign_does_not_throttle_her_silently(user_factory: Any) -> None:
    """Kenji (kenji@example.jp) signs in from home. The gang posts ten wrong passwords an hour for
    ``\u212aenji@example.jp`` (a Kelvin sign for the k), from a few addresses. The user manager
    (``email__iexact``) finds no account by that name, so nothing counts on kenji's lock, no event names
    him, nobody is told; but ``_user_key`` lower-cases the Kelvin sign to ``k``, so the ten failures fill
    *kenji's* per-account throttle bucket. His right password from his own browser at home is now refused
    "Too many attempts" (429), hour after hour, for ten requests an hour, with nothing on his account or in
    the console that says why (the real spelling would at least lock, notify and leave events on his
    account).

    Secure: attempts for a name that reaches no account never share the throttle bucket (or in-flight
    place) of one that does: key the account's counters on the account found (or on the name folded
    exactly as the lookup folds it), so kenji signs in from home.

    Held since the velocity signal's per-user counter is keyed like the throttle (``velocity._subject``):
    before, the ten failures on the lookalike were counted on ``kenji@example.jp`` folded and his own
    sign-in at home was denied (``velocity_user_failures``).
    """
    kenji = home_customer(user_factory, "kenji")
    fake = KELVIN + "enji@example.jp"
    assert fake.lower() == "kenji@example.jp"
    for n in range(10):
        ip = [IP_SG_VPS, IP_US_HOME, IP_VPN][n % 3]
        answer = json_login(browser(ip), fake, f"guess-{n}")
        assert answer.status_code == 401, answer.content
    # Nothing of it reached kenji's account.
    assert not AccountLock.objects.filter(user=kenji, failures__gt=0).exists()
    assert not LoginEvent.objects.filter(user=kenji, outcome=Outcome.BAD_PASSWORD).exists()
    assert not lockout.is_locked(kenji)

    at_home = json_login(browser(IP_TOKYO), "kenji@example.jp")
    assert at_home.status_code == 200 and at_home.json()["status"] in {"ok", "step_up_required"}, (
        at_home.status_code,
        at_home.content,
        LoginEvent.objects.filter(user=kenji).latest("pk").reasons,
    )
    assert not LoginEvent.objects.filter(user=kenji, outcome=Outcome.THROTTLED).exists()


def test_held_upper_case_spelling_shares_her_throttle_and_lock(user_factory: Any) -> None:
    """``ALICE@EXAMPLE.JP`` is alice's account and alice's bucket: ten failures in that spelling lock her
    account (the lock counts whatever the spelling) and the eleventh attempt is refused unchecked."""
    alice = user_factory("alice")
    for n in range(10):
        answer = json_login(browser([IP_SG_VPS, IP_OSAKA][n % 2]), "ALICE@EXAMPLE.JP", f"guess-{n}")
        assert answer.status_code == 401, answer.content
    assert lockout.is_locked(alice)
    again = json_login(browser(IP_VPN), "Alice@Example.jp")
    assert again.status_code in {403, 429}, again.content
    assert not LoginEvent.objects.filter(user=alice, password_ok=True).exists()
