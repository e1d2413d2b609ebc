"""Red team, round seventy, against round sixty-eight's rule (a browser vouches for a new factor a month after
a factor of hers first verified there: ``KnownDevice.factor_verified_at``).

Fixed: the desk's grant took a browser learned a month ago on the password alone (the thief's parked browser
bound his passkey with the grant she asked for, no code at all): it now also needs her factor to have
verified there once; her re-verification in a new browser's first session was lost (no row yet): it lists
the browser now. Costs measured and kept (docs/factor-lifecycle.md): on a browser no factor of hers ever
verified, one factor cannot forget another browser or replace her recovery codes."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from authguard.factors import inventory, lifecycle, throttles
from authguard.models import AccountSecurity, FactorKind, FactorRecord, KnownDevice, PasskeyDevice
from authguard.testing import SoftAuthenticator

from .conftest import IP_TOKYO, totp_token
from .console_data import staff_user
from .test_console_walkarounds import START_OF_TIME, taken_over  # noqa: F401 (a fixture, used by name)
from .test_device_cookie_generations import START, _client, _login

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]

MONTH = timedelta(days=throttles.ESTABLISHED_DEVICE_DAYS + 1)


@pytest.fixture
def taken(taken_over: Any) -> Any:  # noqa: F811
    """hanako: an authenticator app of long standing and a laptop verified by it a year ago (at START,
    frozen; ``hanako.clock``)."""
    KnownDevice.objects.filter(user=taken_over).update(factor_verified_at=START - timedelta(days=365))
    return taken_over


def _post(client: Client, path: str, body: Any = None) -> Any:
    return client.post(path, json.dumps(body or {}), content_type="application/json")


def _key() -> SoftAuthenticator:
    return SoftAuthenticator(origin="http://localhost:8000", rp_id="localhost")


def _register(client: Client, key: SoftAuthenticator) -> Any:
    options = _post(client, "/authguard/api/passkeys/options")
    if options.status_code != 200:
        return options
    return _post(client, "/authguard/api/passkeys", key.create(options.json()))


def _park_a_browser(hanako: Any) -> Client:
    """Day 0: the thief's own browser (her line, her UA) signs in twice with the password alone, allowed
    outright and learned; nothing else. Then he parks it for a month."""
    thief = _client(IP_TOKYO)
    for _ in range(2):
        assert _login(thief)["status"] == "ok"
        _post(thief, "/api/logout")
        hanako.clock.shift(timedelta(hours=2))
    row = KnownDevice.objects.get(user=hanako, first_seen_at__gt=START)
    assert row.learned_at is not None and row.factor_verified_at is None
    hanako.clock.shift(MONTH)
    return thief


def _her_app_lost_and_the_desk_grants(hanako: Any) -> None:
    """She lost her phone: her app is disabled (no usable factor left); she phones the desk, which checks
    who she is and grants her a re-binding (72 h)."""
    FactorRecord.objects.update_or_create(
        device_id=hanako.totp.persistent_id,
        defaults={"user_id": hanako.pk, "kind": FactorKind.TOTP, "enrolled_at": START_OF_TIME},
    )
    FactorRecord.objects.filter(device_id=hanako.totp.persistent_id).update(disabled_at=timezone.now())
    assert not inventory.user_factors(hanako)
    lifecycle.grant_rebind(hanako, by_staff=staff_user("desk-a", perms=()))


def test_held_a_password_only_browser_parked_a_month_does_not_take_her_desk_grant(
    taken: Any,
) -> None:
    """Held since this round (the attack as found).

    Secure: a browser where no factor of hers ever verified (every sign-in the password alone) binds
    nothing through the desk's re-binding grant she asked for; her own browser of a year keeps the grant.
    Round 68's whole point is that "learned a month ago" is what a thief buys with the password alone.

    Attack: day 0, his own browser on her line signs in twice with the password alone (allowed outright,
    learned; her notice reads "a new browser in Tokyo, Chrome on Windows"). No code relayed at all. He
    parks it. A month later she loses her phone (app disabled) and the desk, having checked who she is,
    grants her a 72 h re-binding. He polls: his parked browser signs in (password alone: she has no usable
    factor), registers his passkey: require_strong_rebind accepts via="staff" because session_vouched says
    "staff and learned <= a month ago", the passkey is recorded enrolled_vouched (24 h cooling-off, not 14
    days), the grant is used up, and her own re-binding from her laptop of a year is refused.

    Root cause: authguard/factors/lifecycle.py:session_vouched: ``via == "staff" and learned <= since``
    keeps exactly the pre-round-68 standard (learning by password-only sign-ins) for the desk's path,
    which needs no verification at all (changes.UNCOUNTED_VIA).

    Fix: for via="staff" also require a factor of hers to have verified on that browser at some time
    (``factor_verified_at is not None``; its month need not have passed, her factor is gone now), or that
    the browser was learned before the factor the desk replaces was lost/disabled and before the grant;
    at least never a browser whose every sign-in was the password alone.
    """
    hanako = taken
    thief = _park_a_browser(hanako)
    _her_app_lost_and_the_desk_grants(hanako)
    hanako.clock.shift(timedelta(hours=1))
    assert _login(thief)["status"] == "ok"  # the password alone: no usable factor to step up with
    bound = _register(thief, _key())
    his = PasskeyDevice.objects.filter(user=hanako).first()
    record = FactorRecord.objects.filter(device_id=getattr(his, "persistent_id", "-")).first()
    grant = AccountSecurity.objects.get(user=hanako).rebind_granted_until
    assert bound.status_code == 403 and his is None and grant is not None, (
        f"his password-only parked browser took her desk grant: {bound.status_code}, "
        f"vouched={getattr(record, 'enrolled_vouched', None)}, cooling off until "
        f"{inventory.cooling_off_end(his) if his else None}, grant left={grant}"
    )


def test_held_a_password_only_browser_parked_a_month_and_one_relayed_code_does_not_vouch(taken: Any) -> None:
    """Round 68's attack, re-checked with the relayed code used on day 0 instead (it sets factor_verified_at
    then): a month later he has no fresh verification to add with, short of a second code."""
    hanako = taken
    thief = _client(IP_TOKYO)
    assert _login(thief)["status"] == "ok"
    _post(thief, "/api/logout")
    hanako.clock.shift(timedelta(hours=2))
    assert _login(thief)["status"] == "ok"
    assert _post(thief, "/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)}).status_code == 200
    assert KnownDevice.objects.get(user=hanako, first_seen_at__gt=START).factor_verified_at is not None
    _post(thief, "/api/logout")
    hanako.clock.shift(MONTH)
    assert _login(thief)["status"] == "ok"
    refused = _register(thief, _key())
    assert refused.status_code == 403, refused.content
    assert not PasskeyDevice.objects.filter(user=hanako).exists()


def test_held_her_re_verification_in_her_new_pcs_first_session_is_kept(taken: Any) -> None:
    """Held since this round (the cost as found): the documented way round round 68's cost is "verify once
    with her app on the new PC (a re-verification on the security page will do)". Done in the new PC's
    first session (the natural moment: she just set it up), it is lost: a browser's first allowed sign-in
    sets its cookie but lists no KnownDevice row yet, and note_factor_verified only UPDATEs an existing row
    (authguard/login/stepup.py:note_strong_verification -> note_factor_verified). Her next sign-ins create
    the row with factor_verified_at None; a month later her passkey there is unvouched (14 days).

    Secure/expected: her verification on a browser counts whenever it happens (create the row, or keep the
    time on the session and write it when the row is created)."""
    hanako, clock = taken, taken.clock
    pc = _client(IP_TOKYO)
    assert _login(pc)["status"] == "ok"  # her new PC, first sign-in, allowed outright
    verified = _post(pc, "/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)})
    assert verified.status_code == 200, verified.content  # "a re-verification on the security page"
    _post(pc, "/api/logout")
    for days in (1, 10, 10):  # her usual sign-ins over the month, password alone (the first lists the PC)
        clock.shift(timedelta(days=days))
        assert _login(pc)["status"] == "ok"
        _post(pc, "/api/logout")
    clock.shift(timedelta(days=12))  # 33 days after her verification, 32 after the PC's learning
    assert _login(pc)["status"] == "ok"
    clock.shift(timedelta(seconds=40))
    assert _post(pc, "/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)}).status_code == 200
    row = KnownDevice.objects.get(user=hanako, first_seen_at__gt=START)
    assert _register(pc, _key()).status_code == 201
    record = FactorRecord.objects.get(device_id=PasskeyDevice.objects.get(user=hanako).persistent_id)
    assert record.enrolled_vouched, (
        f"her verification 33 days ago in the PC's first session left factor_verified_at="
        f"{row.factor_verified_at} (row first seen {row.first_seen_at}); her passkey cools off 14 days"
    )


def _pc_of_two_months_verified_now(hanako: Any, clock: Any) -> Client:
    """Her PC, let in on the password alone three times over a month, then a month unused; signed in again
    and verified with her app now (its first verification there)."""
    pc = _client(IP_TOKYO)
    for _ in range(3):
        assert _login(pc)["status"] == "ok"
        _post(pc, "/api/logout")
        clock.shift(timedelta(days=10))
    clock.shift(timedelta(days=30))
    assert _login(pc)["status"] == "ok"
    assert _post(pc, "/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)}).status_code == 200
    return pc


def test_cost_her_pc_of_two_months_never_verified_cannot_forget_her_stolen_laptop_with_her_app_alone(
    taken: Any,
) -> None:
    """Cost measured and kept (docs/factor-lifecycle.md states it; the desk's containment forgets a stolen
    laptop): session_vouched also decides, through
    contact.require_strong_removal, whether ONE factor of hers may forget another browser, remove or replace
    her own app / recovery codes (factors.removal.require_can_remove), or count her spent last recovery code
    (lifecycle.factors_of_session). Her PC of two months (learned after the upgrade, every sign-in allowed
    outright, so never stepped up) was "her browser of a month" for all of those until round 68. Now, the
    morning her laptop is stolen, she verifies with her app on that PC and tries to forget the laptop: she
    is sent back to re-verify (a passkey or a second, different factor), which a customer with one app has
    not got; the thief's laptop stays remembered.

    Kept: that PC is, to authguard, exactly the parked browser of round sixty-eight; a browser she verified
    on a month ago (or a passkey, or two factors) forgets it."""
    hanako, clock = taken, taken.clock
    laptop = KnownDevice.objects.get(user=hanako)
    pc = _pc_of_two_months_verified_now(hanako, clock)
    answer = pc.post(f"/authguard/security/devices/{laptop.pk}/revoke/")
    laptop.refresh_from_db()
    assert laptop.revoked_at is None and "reverify" in answer.get("Location", ""), answer


def test_cost_her_pc_of_two_months_never_verified_cannot_replace_her_recovery_codes_with_her_app_alone(
    taken: Any,
) -> None:
    """Cost measured and kept, as above: replacing her (established) recovery-code set from her PC of two
    months, verified with her app, is a removal (require_strong_removal): refused since round 68 unless she
    has a passkey or verifies with a second, different factor (docs/factor-lifecycle.md)."""
    hanako, clock = taken, taken.clock
    first = _pc_of_two_months_verified_now(hanako, clock)
    made = _post(first, "/authguard/api/recovery-codes")
    assert made.status_code in (200, 201), made.content  # her first set: an addition
    clock.shift(timedelta(days=3))
    _post(first, "/api/logout")
    assert _login(first)["status"] == "ok"
    clock.shift(timedelta(seconds=40))
    assert _post(first, "/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)}).status_code == 200
    renewed = _post(first, "/authguard/api/recovery-codes")
    assert renewed.status_code == 403 and b"second_factor_required" in renewed.content, renewed.content
