"""Red team, round sixty-eight (issue 10's factor lifecycle): a browser of the thief's own, parked a month
after two sign-ins the password alone allowed, vouched for the passkey one relayed code then registered.

Fixed: a browser's month of standing for vouching counts from the first verification there with a factor
of hers (``KnownDevice.factor_verified_at``, written by ``login.stepup.note_factor_verified``), not from its
learning; the desk's grant still takes a browser learned a month ago; browsers learned before the upgrade
keep their month (migration 0035). A cost measured: her new PC, never stepped up, no longer vouches."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice

from authguard.factors import inventory, throttles
from authguard.models import FactorRecord, KnownDevice, Notification, PasskeyDevice
from authguard.testing import SoftAuthenticator

from .conftest import IP_TOKYO, totp_token
from .test_console_walkarounds import taken_over  # noqa: F401 (a fixture, used by name)
from .test_device_cookie_generations import START, _client, _login

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]


@pytest.fixture
def taken(taken_over: Any) -> Any:  # noqa: F811
    """hanako: an authenticator app of long standing and a laptop the account has known for a year (at
    START, frozen; ``hanako.clock``)."""
    return taken_over


def _post(client: Client, path: str, body: Any = None) -> Any:
    return client.post(path, json.dumps(body or {}), content_type="application/json")


def _register(client: Client, key: SoftAuthenticator) -> Any:
    options = _post(client, "/authguard/api/passkeys/options")
    assert options.status_code == 200, options.content
    return _post(client, "/authguard/api/passkeys", key.create(options.json()))


def _passkey_step_up(client: Client, key: SoftAuthenticator) -> Any:
    options = _post(client, "/authguard/api/step-up/passkey/options")
    assert options.status_code == 200, options.content
    return _post(client, "/authguard/api/step-up/passkey", key.get(options.json()))


def test_held_a_browser_he_parked_for_a_month_with_her_password_alone_does_not_vouch_for_his_passkey(
    taken: Any,
) -> None:
    """Held since this round (the attack as found).

    Secure: with her password and ONE relayed code, a thief's new passkey is never "vouched": it cools
    off for AUTHGUARD_UNVOUCHED_FACTOR_DAYS (14) and ends no lock; her app stays hers.

    Attack: day 0, from his own browser on a residential proxy of her ISP in her city with her user agent,
    he signs in twice with the password alone: the engine allows it outright (new_device on a familiar
    line scores 25) and *learns* his browser (KnownDevice.learned_at). Her notice says "a new browser
    signed in: Tokyo, Chrome on Windows", which reads as hers. He does nothing for 31 days. Then he signs
    in from that browser (allowed, low-risk), relays ONE authenticator code for the step-up and registers
    his passkey: session_vouched() says yes (a low-risk session on a browser learned 31 days ago), so the
    passkey is enrolled_vouched and cools off 24 h instead of 14 days. A day later his passkey is trusted:
    he removes her authenticator app with it (and could change the e-mail, release held orders).

    Root cause: authguard/factors/lifecycle.py:session_vouched (the month of standing is counted from an
    allowed password-only sign-in, which needs nothing but the password) with
    authguard/risk (a new browser on her line is allowed outright, learned on the second allowed sign-in).

    Fix: learn a browser (learned_at) only from a sign-in proven with a factor that is not cooling off (her
    passkey or a code *plus* an established browser), or count the month only from the first verification
    with a factor of hers on that browser that came before the vouching session's own verification;
    at least: a browser whose every sign-in was password-only (never stepped up with her factor before the
    session in question) is not "her browser of a month".
    """
    hanako, clock = taken, taken.clock
    thief = _client(IP_TOKYO)
    assert _login(thief)["status"] == "ok"  # the password alone, allowed outright
    _post(thief, "/api/logout")
    clock.shift(timedelta(hours=2))
    assert _login(thief)["status"] == "ok"
    _post(thief, "/api/logout")
    # What she heard of it: a new browser in Tokyo, Chrome on Windows, her own city and browser.
    told = list(Notification.objects.filter(user=hanako).values_list("kind", flat=True))
    assert set(told) == {"new_device_login"}, told
    his_rows = KnownDevice.objects.filter(user=hanako, first_seen_at__gt=START)
    assert his_rows.count() == 1 and his_rows.get().learned_at is not None, list(his_rows.values())

    clock.shift(timedelta(days=throttles.ESTABLISHED_DEVICE_DAYS + 1))  # he parks the browser
    assert _login(thief)["status"] == "ok"
    relayed = _post(thief, "/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)})
    assert relayed.status_code == 200, relayed.content  # ONE code, relayed by his phishing page
    key = SoftAuthenticator(origin="http://localhost:8000", rp_id="localhost")
    assert _register(thief, key).status_code == 201, "registration refused"
    his = PasskeyDevice.objects.get(user=hanako)
    record = FactorRecord.objects.get(device_id=his.persistent_id)
    end = inventory.cooling_off_end(his)
    assert not record.enrolled_vouched and end is not None and end >= clock_now() + timedelta(days=13), (
        f"his passkey from password + one relayed code is vouched={record.enrolled_vouched}, "
        f"cooling off until {end} (a day)"
    )


def clock_now() -> Any:
    from django.utils import timezone

    return timezone.now()


def test_held_his_parked_browser_does_not_remove_her_app_a_day_later(taken: Any) -> None:
    """Held since this round (the attack as found).

    Secure: one relayed code never leads to her authenticator app being removed by him.

    Attack: as above (two password-only sign-ins on day 0, 31 days parked, one relayed code, his passkey
    registered vouched). 25 hours later his passkey is no longer cooling off; a fresh step-up with it
    passes fresh_trusted_passkey and he removes her authenticator app of years. She is left with nothing
    but the desk.

    Root cause: authguard/factors/lifecycle.py:session_vouched (see the test above).
    Fix: as above.
    """
    hanako, clock = taken, taken.clock
    thief = _client(IP_TOKYO)
    assert _login(thief)["status"] == "ok"
    _post(thief, "/api/logout")
    clock.shift(timedelta(hours=2))
    assert _login(thief)["status"] == "ok"
    _post(thief, "/api/logout")
    clock.shift(timedelta(days=throttles.ESTABLISHED_DEVICE_DAYS + 1))
    assert _login(thief)["status"] == "ok"
    assert _post(thief, "/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)}).status_code == 200
    key = SoftAuthenticator(origin="http://localhost:8000", rp_id="localhost")
    assert _register(thief, key).status_code == 201
    clock.shift(timedelta(hours=25))
    _post(thief, "/api/logout")
    assert _login(thief)["status"] == "ok"
    assert _passkey_step_up(thief, key).status_code == 200
    gone = _post(thief, "/authguard/api/factors/remove", {"id": hanako.totp.persistent_id})
    assert gone.status_code != 200, "his passkey (password + one relayed code) removed her app of years"
    assert TOTPDevice.objects.filter(pk=hanako.totp.pk).exists()


def test_cost_her_new_pc_signed_in_by_password_alone_for_a_month_no_longer_vouches_her_passkey(
    taken: Any,
) -> None:
    """Cost of the fix above, measured (a deliberate trade-off): hanako buys a new PC, signs in on it with
    her password (allowed outright, never asked for a code) for a month, then adds a passkey there verified
    with her own app. Seen from authguard her steps are exactly the thief's in the two tests above: her
    passkey now cools off for the unvouched 14 days (it was one day), while her app stays her factor for
    everything. One step-up with her app on the new PC early in the month (a re-verification on the
    security page) makes it vouch a month later; her browsers from before the upgrade keep their month."""
    hanako, clock = taken, taken.clock
    pc = _client(IP_TOKYO)
    for _ in range(2):
        assert _login(pc)["status"] == "ok"
        _post(pc, "/api/logout")
        clock.shift(timedelta(hours=2))
    clock.shift(timedelta(days=throttles.ESTABLISHED_DEVICE_DAYS + 1))
    assert _login(pc)["status"] == "ok"
    assert _post(pc, "/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)}).status_code == 200
    assert (
        _register(pc, SoftAuthenticator(origin="http://localhost:8000", rp_id="localhost")).status_code == 201
    )
    record = FactorRecord.objects.get(device_id=PasskeyDevice.objects.get(user=hanako).persistent_id)
    assert not record.enrolled_vouched


@pytest.mark.django_db(transaction=True)
def test_the_migration_keeps_the_standing_of_browsers_learned_before_it(user_factory: Any) -> None:
    """Migration 0035: a browser learned before the upgrade keeps the month it had (counted from its
    learning), so customers adding a factor from their browser of years do not wait; a browser listed but
    never learned (a relayed code's) gets nothing."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor
    from django.utils import timezone

    before = [("authguard", "0034_known_device_issued_generation")]
    user = user_factory("kazue")
    learned = timezone.now() - timedelta(days=400)
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    try:
        old = executor.loader.project_state(before).apps.get_model("authguard", "KnownDevice")
        for name, at in (("a" * 64, learned), ("b" * 64, None)):
            old.objects.create(
                user_id=user.pk, cookie_hash=name, first_seen_at=learned, last_seen_at=learned, learned_at=at
            )
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
    rows = dict(KnownDevice.objects.filter(user=user).values_list("cookie_hash", "factor_verified_at"))
    assert rows == {"a" * 64: learned, "b" * 64: None}


def test_her_new_pc_verified_once_with_her_app_early_in_the_month_vouches_her_passkey(taken: Any) -> None:
    """The way around that cost: on her new PC's first day she verifies once with her app (a re-verification
    in her allowed session); a month later a passkey she adds there is vouched (a day's cooling-off)."""
    hanako, clock = taken, taken.clock
    pc = _client(IP_TOKYO)
    for _ in range(2):  # its first sign-in sets its cookie; the second lists it
        assert _login(pc)["status"] == "ok"
        _post(pc, "/api/logout")
        clock.shift(timedelta(hours=2))
    assert _login(pc)["status"] == "ok"
    assert _post(pc, "/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)}).status_code == 200
    row = KnownDevice.objects.get(user=hanako, first_seen_at__gt=START)
    assert row.factor_verified_at is not None
    _post(pc, "/api/logout")
    clock.shift(timedelta(days=throttles.ESTABLISHED_DEVICE_DAYS + 1))
    assert _login(pc)["status"] == "ok"
    clock.shift(timedelta(seconds=40))  # her app's next code: the first one is spent
    assert _post(pc, "/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)}).status_code == 200
    key = SoftAuthenticator(origin="http://localhost:8000", rp_id="localhost")
    assert _register(pc, key).status_code == 201
    record = FactorRecord.objects.get(device_id=PasskeyDevice.objects.get(user=hanako).persistent_id)
    assert record.enrolled_vouched


def test_held_a_forgotten_browser_gets_no_month_of_hers_back_with_the_thiefs_first_sign_in(
    taken: Any,
) -> None:
    """Review of round sixty-eight: a browser she forgot on her security page (her stolen laptop, where
    her app once verified her a year ago) is learned again by the thief's first allowed sign-in as a browser
    first seen then (round four); its ``factor_verified_at`` must go the same way, or one relayed code there
    vouches for his passkey at once."""
    from django.utils import timezone

    hanako, clock = taken, taken.clock
    laptop = KnownDevice.objects.get(user=hanako)
    KnownDevice.objects.filter(pk=laptop.pk).update(factor_verified_at=START - timedelta(days=365))
    KnownDevice.objects.filter(pk=laptop.pk).update(revoked_at=timezone.now())  # she forgot it
    clock.shift(timedelta(hours=1))
    thief = hanako.laptop  # the stolen laptop itself
    _post(thief, "/api/logout")
    assert _login(thief)["status"] in ("ok", "step_up_required")
    relayed = _post(thief, "/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)})
    assert relayed.status_code == 200, relayed.content
    laptop.refresh_from_db()
    assert laptop.revoked_at is None and laptop.factor_verified_at == clock_now(), laptop.factor_verified_at
    key = SoftAuthenticator(origin="http://localhost:8000", rp_id="localhost")
    assert _register(thief, key).status_code == 201
    record = FactorRecord.objects.get(device_id=PasskeyDevice.objects.get(user=hanako).persistent_id)
    assert not record.enrolled_vouched
