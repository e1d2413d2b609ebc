"""Red team round forty-four (a): round forty-three's "only the desk's lock keeps the cooling-off-when-locked
rule". The thief added his own passkey with one relayed code (unvouched: it cools off for two weeks), locked
her out with wrong passwords a minute later (she could not sign in to remove it), and his passkey ended the
lock the day its cooling-off was over. Fixed: at a lock a stranger's failures made, only a factor enrolled
vouched for (from her browser of a month: a day's cooling-off) is excused for cooling off when the account
was locked (``unlocking._enrolled_vouched``); the desk's lock excuses none."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from authguard.factors import inventory
from authguard.login import lockout
from authguard.models import AccountLock, PasskeyDevice

from .conftest import HANAKO_PASSWORD, IP_OSAKA, IP_TOKYO, OrderApi, of_long_standing
from .factor_scenarios import new_key, register, thief_with_one_code

pytestmark = pytest.mark.django_db


def _passkey_unlock(key: Any) -> int:
    api = OrderApi(REMOTE_ADDR=IP_OSAKA)
    options = api.post("/authguard/api/unlock/options")
    assert options.status_code == 200, options.content
    return int(api.post("/authguard/api/unlock", key.get(options.json())).status_code)


@pytest.mark.battery(66)
def test_the_thief_locks_her_out_for_his_passkeys_cooling_off_and_his_passkey_then_ends_the_lock(
    new_browser_api: Any, hanako: Any, totp_factory: Any, clock: Any, settings: Any
) -> None:
    """Secure: a lock the thief made himself while his own passkey was cooling off is not ended by that
    passkey. The cooling-off exists so that she can find and remove a factor she never added (her
    authenticator app removes a cooling-off passkey: docs/factor-lifecycle.md); a lock keeps her from
    signing in at all, so a lock he makes at the start of his passkey's 14 days takes that window from her.

    With her password and one relayed code the thief adds his passkey (unvouched: 14 days). At once he
    locks the account with ten wrong passwords (ending her sessions). Whenever hanako tries to sign in in
    the next two weeks she is told the account is locked: her app alone does not unlock it, and a codes
    unlock he cancels from her mailbox. On day 15 his passkey, "not cooling off" now, ends the lock
    usernameless and at once, and it is a passkey of hers of long standing from then on (held orders,
    removals). Before round forty-three the lock stood until the desk; now the lock is his shield."""
    of_long_standing(hanako)
    hanako.totp = totp_factory(hanako)
    thief = thief_with_one_code(new_browser_api, hanako.totp)
    key = new_key()
    assert register(thief, key).status_code == 201
    his = PasskeyDevice.objects.get(user=hanako)
    assert inventory.factor_is_cooling_off(his)

    settings.AUTHGUARD_LOCKOUT_FAILURES = 10
    clock.shift(60)
    for _ in range(10):
        OrderApi(REMOTE_ADDR=IP_OSAKA).post("/api/login", {"username": "hanako", "password": "guess"})
    assert lockout.is_locked(hanako)

    clock.shift(timedelta(days=3))
    her = OrderApi(REMOTE_ADDR=IP_TOKYO)
    answer = her.post("/api/login", {"username": "hanako", "password": HANAKO_PASSWORD})
    assert answer.status_code == 403 and answer.json().get("code") == "locked", answer.content[:300]

    clock.shift(timedelta(days=12))
    assert not inventory.factor_is_cooling_off(PasskeyDevice.objects.get(pk=his.pk))
    status = _passkey_unlock(key)
    assert lockout.is_locked(hanako), (
        f"the thief's passkey ended the lock he made during its cooling-off ({status})"
    )


def test_held_wrong_passwords_on_a_desk_locked_account_keep_the_desks_mark(
    new_browser_api: Any, hanako: Any, totp_factory: Any, clock: Any, settings: Any
) -> None:
    """The desk contains; the thief then piles wrong passwords and wrong unlock assertions on the locked
    account (no new lock is made, so the mark stays) and tries his passkey on day 15: refused."""
    from .console_data import staff_user

    of_long_standing(hanako)
    hanako.totp = totp_factory(hanako)
    thief = thief_with_one_code(new_browser_api, hanako.totp)
    key = new_key()
    assert register(thief, key).status_code == 201
    settings.AUTHGUARD_LOCKOUT_FAILURES = 10
    desk = staff_user("desk", perms=("authguard.contain_account",))
    clock.shift(3600)
    assert lockout.lock(hanako, by=desk, reason="customer reports a passkey she never added")
    for _ in range(25):
        OrderApi(REMOTE_ADDR=IP_OSAKA).post("/api/login", {"username": "hanako", "password": "guess"})
    assert AccountLock.objects.get(user=hanako).locked_by_desk
    clock.shift(timedelta(days=15))
    assert _passkey_unlock(key) == 403
    assert lockout.is_locked(hanako) and AccountLock.objects.get(user=hanako).locked_by_desk


def test_his_passkey_stays_unvouched_when_the_portal_lengthens_the_rule_later(
    new_browser_api: Any, hanako: Any, totp_factory: Any, clock: Any, settings: Any
) -> None:
    """Secure (review, round forty-four): whether a factor was enrolled vouched for is kept at enrollment,
    not read off its dates with today's ``AUTHGUARD_UNVOUCHED_FACTOR_DAYS``: the portal lengthening the rule
    to 30 days after his passkey (two weeks' cooling-off) was added does not turn it into one that may end
    the lock he made."""
    of_long_standing(hanako)
    hanako.totp = totp_factory(hanako)
    thief = thief_with_one_code(new_browser_api, hanako.totp)
    key = new_key()
    assert register(thief, key).status_code == 201
    settings.AUTHGUARD_LOCKOUT_FAILURES = 10
    clock.shift(60)
    for _ in range(10):
        OrderApi(REMOTE_ADDR=IP_OSAKA).post("/api/login", {"username": "hanako", "password": "guess"})
    assert lockout.is_locked(hanako)
    settings.AUTHGUARD_UNVOUCHED_FACTOR_DAYS = 30
    clock.shift(timedelta(days=15))
    assert not inventory.factor_is_cooling_off(PasskeyDevice.objects.get(user=hanako))
    assert _passkey_unlock(key) == 403
    assert lockout.is_locked(hanako)
