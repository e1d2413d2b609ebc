"""Red team, round twenty-six: round twenty-five's factor fixes (commit 855fa36), with her password and
one relayed code.

Each test asserts the SECURE outcome; a failing one is a finding on the current code.
"""

from __future__ import annotations

from typing import Any

import pytest
from django_otp.plugins.otp_totp.models import TOTPDevice

from authguard.factors import inventory, lifecycle
from authguard.models import PasskeyDevice, RecoveryCode, RecoveryCodeDevice

from .conftest import HANAKO_PASSWORD, IP_OSAKA, IP_TOKYO, of_long_standing, totp_token
from .factor_scenarios import disabled_totp, her_recovery_codes, new_key, register

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]


def _spend_all_but(hanako: Any, left: int) -> None:
    """Her printed set as it is after years: all but ``left`` codes used (the last ones in the list)."""
    the_set = RecoveryCodeDevice.objects.get(user=hanako)
    rows = list(RecoveryCode.objects.filter(device=the_set).order_by("pk"))
    RecoveryCode.objects.filter(pk__in=[r.pk for r in rows[: len(rows) - left]]).update(
        used_at=the_set.created_at
    )


def _her_new_app_with_her_second_last_code(new_browser_api: Any, hanako: Any, totp_factory: Any) -> tuple:
    """hanako lost her phone (her app of years disabled); her printed set has two codes left. From her PC of
    months she verifies with codes[8] and registers a passkey on her new phone: it cools off.
    Returns (her codes, her new app)."""
    of_long_standing(hanako)
    disabled_totp(hanako, totp_factory)
    codes = her_recovery_codes(hanako)
    _spend_all_but(hanako, 2)  # codes[8] and codes[9] left
    her = new_browser_api(IP_TOKYO)
    her.login_usual("hanako", HANAKO_PASSWORD)
    assert her.post("/authguard/api/step-up/recovery-code", {"code": codes[8]}).status_code == 200
    added = register(her, new_key())
    assert added.status_code == 201, added.content
    app = PasskeyDevice.objects.get(user=hanako)
    assert inventory.factor_is_cooling_off(app)
    her.post("/api/logout")
    return codes, app


@pytest.mark.battery(63)
def test_her_last_printed_code_relayed_does_not_remove_her_only_usable_cooling_off_passkey(
    new_browser_api: Any, hanako: Any, totp_factory: Any, clock: Any
) -> None:
    """Round twenty-three's rule ("a cooling-off factor goes only while another usable factor remains"),
    undone by round twenty-five's ``factors_of_session``. Her phone lost, she registered a new passkey with
    her second-last printed code: the passkey (cooling off) and one printed code are what she has. A phishing
    page asks her for "a recovery code"; the thief relays her last one from Osaka and removes her new
    passkey. The
    set his step-up just spent counts as "another usable factor" in ``removal.require_can_remove`` (it is
    the session's verifier), so the last-factor guard passes: she is left with a disabled app and a spent
    set, no usable factor, "ever had" one: only the desk brings her back."""
    codes, her_app = _her_new_app_with_her_second_last_code(new_browser_api, hanako, totp_factory)

    clock.shift(2 * 3600)
    thief = new_browser_api(IP_OSAKA)
    thief.login("hanako", HANAKO_PASSWORD)
    assert thief.post("/authguard/api/step-up/recovery-code", {"code": codes[9]}).status_code == 200
    removed = thief.post("/authguard/api/factors/remove", {"id": her_app.persistent_id})

    clock.shift(3600)
    her = new_browser_api(IP_TOKYO)
    her.login_usual("hanako", HANAKO_PASSWORD)
    again = register(her, new_key())

    assert PasskeyDevice.objects.filter(pk=her_app.pk).exists(), (
        f"her last printed code, relayed, removed her only usable factor (her new passkey, cooling off): "
        f"{removed.status_code} {removed.content[:160]!r}; usable factors left: "
        f"{inventory.user_factors(hanako)}; her own set-up from her PC of months: {again.status_code} "
        f"{again.content[:160]!r}"
    )
    assert removed.status_code == 400 and removed.json().get("code") == "last_factor", removed.content


@pytest.mark.battery(63)
def test_held_a_relayed_code_of_her_cooling_off_first_app_changes_no_password_and_forgets_nothing(
    new_browser_api: Any, hanako: Any, clock: Any
) -> None:
    """Evidence that held (passes): the thief cannot trigger round twenty-five's "forget the first factor"
    himself. hanako binds her account's first factor (an app) from a browser of days (unvouched: it cools off
    for 14 days). Thirteen days later the thief, with her password and one relayed code of that app, asks
    for a password change (which would revoke every cooling-off factor, her only one, and clear
    ``first_factor_at``, giving his new password the first-factor path): refused, a cooling-off verifier
    changes no password (``contact.require_password_change_allowed``). Her app and the account's record
    of a first factor stay."""
    from django.contrib.auth import get_user_model

    from authguard.models import AccountSecurity

    from .factor_scenarios import change_password

    of_long_standing(hanako)
    her = new_browser_api(IP_TOKYO)
    her.login("hanako", HANAKO_PASSWORD)
    assert her.post("/authguard/api/totp").status_code == 200
    her_app = TOTPDevice.objects.get(user=hanako, confirmed=False)
    assert her.post("/authguard/api/totp/confirm", {"code": totp_token(her_app)}).status_code == 201
    her_app.refresh_from_db()
    assert inventory.factor_is_cooling_off(her_app)
    first = AccountSecurity.objects.get(user=hanako).first_factor_at
    assert first is not None

    clock.shift(13 * 24 * 3600 + 23 * 3600)  # an hour before her app's 14 days end
    thief = new_browser_api(IP_OSAKA)
    thief.login("hanako", HANAKO_PASSWORD)
    clock.shift(31)
    assert thief.post("/authguard/api/step-up/totp", {"code": totp_token(her_app)}).status_code == 200
    changed = change_password(thief, HANAKO_PASSWORD, "thief-owns-it-2026!")

    assert changed.status_code != 302 or "reverify" in changed.url, changed.content[:200]
    assert get_user_model().objects.get(pk=hanako.pk).check_password(HANAKO_PASSWORD)
    assert TOTPDevice.objects.filter(pk=her_app.pk).exists()
    assert AccountSecurity.objects.get(user=hanako).first_factor_at == first
    assert lifecycle.ever_had_factor(hanako)


@pytest.mark.battery(63)
def test_her_last_printed_code_relayed_does_not_renew_the_spent_set_for_him(
    new_browser_api: Any, hanako: Any, totp_factory: Any, clock: Any
) -> None:
    """Her phone lost (the app disabled), one printed code left. A phishing page asks for "a recovery code";
    the thief relays her last one from Osaka and asks for a new set: 201, ten fresh codes shown to him, her
    set replaced. ``factors_of_session`` counts the set his step-up spent as hers (so the session may change
    factors: ``require_can_change_factors`` answers ``fresh_verification``), while
    ``recovery.generate_recovery_codes`` skips the same set as "spent, no factor to keep", so the rule that
    one relayed code never replaces her set (``require_can_remove(replacing=True)`` ->
    ``require_strong_removal``) is never asked. Before round twenty-five the session had "no factor" and got
    ``rebind_required``. She is left with no usable factor; his codes become established after their
    cooling-off."""
    of_long_standing(hanako)
    disabled_totp(hanako, totp_factory)
    codes = her_recovery_codes(hanako)
    _spend_all_but(hanako, 1)
    the_set = RecoveryCodeDevice.objects.get(user=hanako)

    thief = new_browser_api(IP_OSAKA)
    thief.login("hanako", HANAKO_PASSWORD)
    assert thief.post("/authguard/api/step-up/recovery-code", {"code": codes[9]}).status_code == 200
    renewed = thief.post("/authguard/api/recovery-codes")

    assert renewed.status_code == 403 and "codes" not in renewed.json(), (
        f"her last printed code, relayed, renewed her recovery codes for the thief: {renewed.status_code} "
        f"{renewed.content[:120]!r}; sets now: {list(RecoveryCodeDevice.objects.filter(user=hanako))}"
    )
    assert list(RecoveryCodeDevice.objects.filter(user=hanako)) == [the_set]
