"""One relayed code is one change of her factors (red team, round seventeen, against round sixteen's "a
session that removed a factor adds one only after a new verification"): adding his factor first, removing
hers, then verifying with his own. Each test failed on the code it was written against. The rule now:
lifecycle.require_verified_since_change, with a factor that is not cooling off."""

from __future__ import annotations

from typing import Any

import pytest
from django_otp.plugins.otp_totp.models import TOTPDevice

from authguard.models import PasskeyDevice, RecoveryCodeDevice

from .conftest import HANAKO_PASSWORD, totp_token
from .factor_scenarios import (
    her_new_app,
    her_new_passkey,
    her_renewed_recovery_codes,
    new_key,
    passkey_verify,
    register,
    thief_with_one_code,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]


# -- 1: "add first": his own cooling-off passkey is the verification "made after the removal" -------------


@pytest.mark.battery(63)
def test_one_relayed_code_adds_his_passkey_removes_her_renewed_codes_and_his_passkey_mints_a_set(
    new_browser_api: Any, hanako: Any, totp_factory: Any, clock: Any
) -> None:
    """Her freshly renewed recovery codes cool off. The thief relays ONE code of her app; with it he first
    registers a passkey of his own (adding is allowed with any fresh verification), then removes her set
    (a cooling-off target is removed leniently), then re-verifies with *his own* cooling-off passkey:
    ``require_verified_since_change`` only compares times (st > rm), not what verified, so he mints and
    reads ten fresh recovery codes -- what round fifteen's test forbids, in four requests instead of two."""
    hers = her_renewed_recovery_codes(new_browser_api, hanako, totp_factory)

    clock.shift(2 * 3600)
    thief = thief_with_one_code(new_browser_api, hanako.totp)
    key = new_key()
    added = register(thief, key)
    assert added.status_code == 201, added.content  # his passkey, cooling off
    removed = thief.post("/authguard/api/factors/remove", {"id": hers.persistent_id})
    # Refused since round seventeen: after his addition, the next change needs a verification with a factor
    # of hers that is not cooling off (one relayed code is one change).
    assert removed.status_code == 403, removed.content
    clock.shift(5)
    again = passkey_verify(thief, key)  # his own passkey: no second code of hers
    minted = thief.post("/authguard/api/recovery-codes")

    assert "codes" not in minted.json(), (
        f"his own cooling-off passkey ({again.status_code}) re-verified after the removal: the thief read "
        "ten fresh recovery codes in place of her renewed set"
    )


@pytest.mark.battery(63)
def test_one_relayed_code_of_her_new_app_adds_his_passkey_removes_her_app_and_binds_his_app(
    new_browser_api: Any, hanako: Any, clock: Any
) -> None:
    """The same for her new authenticator app (cooling off): one relayed code of it, his passkey registered,
    her app removed, his passkey re-verifies, his app begun and confirmed in place of hers."""
    her_app = her_new_app(new_browser_api, hanako)

    clock.shift(2 * 3600)
    thief = thief_with_one_code(new_browser_api, her_app)
    key = new_key()
    # Refused since round nineteen: a code of her new app, cooling off, changes nothing while her passkey of
    # years stands (authguard.factors.changes); the steps below try the rest of the chain all the same.
    assert register(thief, key).status_code == 403
    removed = thief.post("/authguard/api/factors/remove", {"id": her_app.persistent_id})
    # Refused since round seventeen: after his addition, the next change needs a verification with a factor
    # of hers that is not cooling off (one relayed code is one change).
    assert removed.status_code == 403, removed.content
    clock.shift(5)
    assert not PasskeyDevice.objects.filter(user=hanako).exclude(pk=hanako.passkey.pk).exists()
    began = thief.post("/authguard/api/totp")
    if began.status_code == 200:
        his = TOTPDevice.objects.get(user=hanako, confirmed=False)
        thief.post("/authguard/api/totp/confirm", {"code": totp_token(his)})

    assert list(TOTPDevice.objects.filter(user=hanako, confirmed=True).values_list("pk", flat=True)) in (
        [her_app.pk],
        [],
    ), f"one relayed code of her new app ({began.status_code}): his app stands where hers was"


@pytest.mark.battery(63)
def test_one_relayed_code_adds_his_passkey_removes_her_app_then_his_passkey_sign_in_binds_his_app(
    new_browser_api: Any, hanako: Any, clock: Any
) -> None:
    """ "rm" lives in the session that removed: a new session has none. After adding his passkey and removing
    her new app with one relayed code, the thief signs out and signs in again with his own passkey (the
    passwordless sign-in marks the new session strong, stepup.complete_passwordless_login): no removal in
    this session, so his app is bound at once. A fix that only looks at what verified the removing session
    leaves this open: the mark must outlive the session (the account), or a cooling-off verifier must not
    add after any removal."""
    her_app = her_new_app(new_browser_api, hanako)

    clock.shift(2 * 3600)
    thief = thief_with_one_code(new_browser_api, her_app)
    key = new_key()
    # Refused since round nineteen: a code of her new app, cooling off, changes nothing while her passkey of
    # years stands (authguard.factors.changes); the steps below try the rest of the chain all the same.
    assert register(thief, key).status_code == 403
    removed = thief.post("/authguard/api/factors/remove", {"id": her_app.persistent_id})
    # Refused since round seventeen: after his addition, the next change needs a verification with a factor
    # of hers that is not cooling off (one relayed code is one change).
    assert removed.status_code == 403, removed.content
    thief.post("/api/logout")
    clock.shift(60)
    # Without his passkey the passwordless sign-in has nothing to sign with: his password sign-in instead.
    back = thief.login("hanako", HANAKO_PASSWORD)
    began = thief.post("/authguard/api/totp")
    if began.status_code == 200:
        his = TOTPDevice.objects.get(user=hanako, confirmed=False)
        thief.post("/authguard/api/totp/confirm", {"code": totp_token(his)})

    assert list(TOTPDevice.objects.filter(user=hanako, confirmed=True).values_list("pk", flat=True)) in (
        [her_app.pk],
        [],
    ), f"a new session ({back}) bound his app where hers was"


@pytest.mark.battery(63)
def test_one_relayed_code_mints_his_codes_removes_her_new_app_and_one_of_his_codes_binds_his_app(
    new_browser_api: Any, hanako: Any, clock: Any
) -> None:
    """No WebAuthn needed: hanako (a passkey for years, no recovery codes) sets up a new app that cools
    off. One relayed code of it: the thief mints a recovery-code set (she has none: an addition, not a
    replacement), removes her cooling-off app, re-verifies with one of *his* codes (after the removal),
    and binds his own app."""
    her_app = her_new_app(new_browser_api, hanako)
    assert not RecoveryCodeDevice.objects.filter(user=hanako).exists()

    clock.shift(2 * 3600)
    thief = thief_with_one_code(new_browser_api, her_app)
    minted = thief.post("/authguard/api/recovery-codes")
    # Refused since round nineteen: a code of her new app, cooling off, changes nothing while her passkey of
    # years stands (authguard.factors.changes); the steps below try the rest of the chain all the same.
    assert minted.status_code == 403, minted.content
    his_codes = minted.json().get("codes") or ["NOCODES"]
    removed = thief.post("/authguard/api/factors/remove", {"id": her_app.persistent_id})
    # Refused since round seventeen: after his addition, the next change needs a verification with a factor
    # of hers that is not cooling off (one relayed code is one change).
    assert removed.status_code == 403, removed.content
    clock.shift(5)
    again = thief.post("/authguard/api/step-up/recovery-code", {"code": his_codes[0]})
    began = thief.post("/authguard/api/totp")
    if began.status_code == 200:
        his = TOTPDevice.objects.get(user=hanako, confirmed=False)
        thief.post("/authguard/api/totp/confirm", {"code": totp_token(his)})

    assert list(TOTPDevice.objects.filter(user=hanako, confirmed=True).values_list("pk", flat=True)) in (
        [her_app.pk],
        [],
    ), f"one of his own recovery codes ({again.status_code}) re-verified after the removal; his app is bound"


# -- 2: "add first, then remove hers": his passkey in place of her new passkey, with one relayed code --------


@pytest.mark.battery(63)
def test_one_relayed_code_adds_his_passkey_then_removes_her_new_passkey(
    new_browser_api: Any, hanako: Any, totp_factory: Any, clock: Any
) -> None:
    """hanako (authenticator app for years) adds a passkey from her usual browser: it cools off. The thief
    relays ONE code of her app and does round fifteen's two steps in the other order: he registers his own
    passkey first (any fresh verification adds), then removes hers (a cooling-off target yields to any
    older factor). No rule looks at a session that *added* before it removes: his passkey stands where hers
    was, exactly the replacement of a cooling-off factor that round fourteen forbids (and she now has
    nothing but the app the thief phishes)."""
    hers = her_new_passkey(new_browser_api, hanako, totp_factory)

    clock.shift(2 * 3600)
    thief = thief_with_one_code(new_browser_api, hanako.totp)
    added = register(thief, new_key())
    removed = thief.post("/authguard/api/factors/remove", {"id": hers.persistent_id})

    kept = PasskeyDevice.objects.filter(pk=hers.pk).exists()
    his = PasskeyDevice.objects.filter(user=hanako).exclude(pk=hers.pk).exists()
    assert kept or not his, (
        f"one relayed code: his passkey added ({added.status_code}), her new passkey removed "
        f"({removed.status_code})"
    )


@pytest.mark.battery(63)
def test_his_younger_passkey_alone_removes_her_older_cooling_off_app_in_a_session_that_added_nothing(
    new_browser_api: Any, hanako: Any, clock: Any
) -> None:
    """removal.py says a cooling-off factor is removed "with any older factor (or itself)", but the lenient
    path checks no age: a session verified only with the thief's passkey, younger than her app, removes it.
    The thief adds his passkey with one relayed code, signs out, signs in with his passkey alone (a session
    that added nothing and removed nothing) and removes her new app: a fix that only marks the session that
    added must also make the lenient path ask for a verifier older than the target."""
    her_app = her_new_app(new_browser_api, hanako)

    clock.shift(2 * 3600)
    thief = thief_with_one_code(new_browser_api, her_app)
    key = new_key()
    # Refused since round nineteen: a code of her new app, cooling off, changes nothing while her passkey of
    # years stands (authguard.factors.changes); the steps below try the rest of the chain all the same.
    assert register(thief, key).status_code == 403
    thief.post("/api/logout")
    clock.shift(60)
    thief.login("hanako", HANAKO_PASSWORD)  # no passkey of his to sign in with
    removed = thief.post("/authguard/api/factors/remove", {"id": her_app.persistent_id})

    assert TOTPDevice.objects.filter(pk=her_app.pk, confirmed=True).exists(), (
        f"a session verified only with the thief's younger passkey removed her app ({removed.status_code})"
    )
