"""Red team, round twenty-five (b): the customer's factors, with her password and one relayed code.

Each test asserts the SECURE outcome; a failing one is a finding on the current code.
"""

from __future__ import annotations

from typing import Any

import pytest
from django_otp.plugins.otp_totp.models import TOTPDevice

from authguard.factors import inventory, lifecycle
from authguard.models import PasskeyDevice, RecoveryCodeDevice

from .conftest import HANAKO_PASSWORD, IP_OSAKA, IP_TOKYO, of_long_standing, totp_token
from .factor_scenarios import (
    disabled_totp,
    her_recovery_codes,
    new_key,
    register,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]


def _her_renewed_codes_her_only_factor(new_browser_api: Any, hanako: Any, totp_factory: Any) -> list[str]:
    """hanako lost her phone (the app disabled); her printed recovery codes of 300 days are what she has. From
    her PC of months she verifies with one and renews the set (a vouched session: allowed). The new set, her
    only usable factor, cools off. Returns its codes."""
    of_long_standing(hanako)
    disabled_totp(hanako, totp_factory)
    old = her_recovery_codes(hanako)
    her = new_browser_api(IP_TOKYO)
    her.login_usual("hanako", HANAKO_PASSWORD)
    assert her.post("/authguard/api/step-up/recovery-code", {"code": old[0]}).status_code == 200
    minted = her.post("/authguard/api/recovery-codes")
    assert minted.status_code == 201, minted.content
    new_set = RecoveryCodeDevice.objects.get(user=hanako)
    assert inventory.factor_is_cooling_off(new_set)
    assert inventory.user_factors(hanako) == [new_set]
    return minted.json()["codes"]


@pytest.mark.battery(63)
def test_one_relayed_code_of_her_only_cooling_off_recovery_set_does_not_remove_it(
    new_browser_api: Any, hanako: Any, totp_factory: Any, clock: Any
) -> None:
    """Round twenty-three's finding, with recovery codes: her renewed set is her only usable factor and cools
    off. A phishing page asks her for "one recovery code"; the thief relays it and removes the set itself
    (a cooling-off target, "itself"; the last-factor guard of ``removal.require_can_remove`` skips recovery
    codes; ``_oldest_of_new`` passes). The account then has no factor and "ever had" one: from her PC of
    months she cannot set up an app again (``rebind_required``): only the desk brings her back."""
    codes = _her_renewed_codes_her_only_factor(new_browser_api, hanako, totp_factory)

    clock.shift(2 * 3600)
    thief = new_browser_api(IP_OSAKA)
    thief.login("hanako", HANAKO_PASSWORD)
    assert thief.post("/authguard/api/step-up/recovery-code", {"code": codes[4]}).status_code == 200
    the_set = RecoveryCodeDevice.objects.get(user=hanako)
    removed = thief.post("/authguard/api/factors/remove", {"id": the_set.persistent_id})

    clock.shift(3600)
    her = new_browser_api(IP_TOKYO)
    her.login_usual("hanako", HANAKO_PASSWORD)
    again = her.post("/authguard/api/totp")

    assert removed.status_code == 400 and removed.json().get("code") == "last_factor", removed.content
    assert RecoveryCodeDevice.objects.filter(pk=the_set.pk).exists(), (
        f"one relayed code of her only (cooling-off) recovery-code set removed it: {removed.status_code}; "
        f"her own attempt to set up an app from her PC of months: {again.status_code} "
        f"{again.content[:160]!r}; factors left: {inventory.user_factors(hanako)}; ever had one: "
        f"{lifecycle.ever_had_factor(hanako)}"
    )


def _spend_all_but(hanako: Any, left: int) -> None:
    """Her printed set as it is after years: all but ``left`` codes used (the last ones in the list)."""
    from authguard.models import RecoveryCode

    the_set = RecoveryCodeDevice.objects.get(user=hanako)
    rows = list(RecoveryCode.objects.filter(device=the_set).order_by("pk"))
    RecoveryCode.objects.filter(pk__in=[r.pk for r in rows[: len(rows) - left]]).update(
        used_at=the_set.created_at
    )


@pytest.mark.battery(63)
def test_her_last_printed_code_drops_the_passkey_one_relayed_code_of_them_added(
    new_browser_api: Any, hanako: Any, totp_factory: Any, clock: Any
) -> None:
    """Round twenty-four's promise ("her printed codes must still drop the passkey one relayed code of them
    added"), with her last code. Her phone is lost (the app disabled); her printed set has two codes left. The
    thief relays one and adds his passkey (one change, announced). From her PC of months she steps up with
    her last code and removes his passkey: refused as "your last security method". The step-up spent her
    last code, so ``removal.require_can_remove`` no longer counts her set among what remains (the set is not
    in ``user_factors`` any more) and his cooling-off passkey is the account's only usable factor. It stays,
    and after its 14 days it is an established passkey in the thief's hands."""
    of_long_standing(hanako)
    disabled_totp(hanako, totp_factory)
    codes = her_recovery_codes(hanako)
    _spend_all_but(hanako, 2)  # codes[8] and codes[9] are left

    thief = new_browser_api(IP_OSAKA)
    thief.login("hanako", HANAKO_PASSWORD)
    assert thief.post("/authguard/api/step-up/recovery-code", {"code": codes[8]}).status_code == 200
    assert register(thief, new_key()).status_code == 201
    his = PasskeyDevice.objects.get(user=hanako)
    assert inventory.factor_is_cooling_off(his)

    clock.shift(1800)  # she reads the "passkey added" notice
    her = new_browser_api(IP_TOKYO)
    her.login_usual("hanako", HANAKO_PASSWORD)  # her PC of months
    assert her.post("/authguard/api/step-up/recovery-code", {"code": codes[9]}).status_code == 200
    removed = her.post("/authguard/api/factors/remove", {"id": his.persistent_id})

    assert not PasskeyDevice.objects.filter(pk=his.pk).exists(), (
        f"hanako, verified from her PC of months with her last printed recovery code, cannot remove the "
        f"passkey the thief added 30 minutes ago with one relayed code of the same set: "
        f"{removed.status_code} {removed.content[:200]!r}; his passkey is now her only usable factor"
    )


@pytest.mark.battery(63)
def test_her_last_printed_code_verifies_her_and_adds_her_passkey(
    new_browser_api: Any, hanako: Any, totp_factory: Any, clock: Any
) -> None:
    """The same root: her phone lost (the app disabled), one printed code left (the thief's relay spent the
    other). From her PC of months she steps up with it (accepted) and registers a new passkey: refused
    ``rebind_required`` ("disabled after too many failed attempts... another passkey, or the desk"), because
    ``lifecycle.require_can_change_factors`` asks ``user_factors`` *after* her step-up spent the code and
    finds none: the account "never has a factor" path, then the strong re-bind. With two codes left the same
    session adds it. Her last code proves her and buys nothing; only the desk brings her back."""
    of_long_standing(hanako)
    disabled_totp(hanako, totp_factory)
    codes = her_recovery_codes(hanako)
    _spend_all_but(hanako, 1)

    her = new_browser_api(IP_TOKYO)
    her.login_usual("hanako", HANAKO_PASSWORD)
    assert her.post("/authguard/api/step-up/recovery-code", {"code": codes[9]}).status_code == 200
    added = register(her, new_key())

    assert added.status_code == 201, (
        f"hanako verified with her last printed recovery code from her PC of months and could not add a "
        f"passkey: {added.status_code} {added.content[:220]!r}"
    )


@pytest.mark.battery(63)
def test_held_her_last_printed_code_still_revokes_his_passkey_through_a_password_change(
    new_browser_api: Any, hanako: Any, totp_factory: Any, clock: Any
) -> None:
    """Evidence that held (passes), beside the finding above: the other undo works with her last code. A
    password change from her session verified with it (``contact.require_password_change_allowed`` asks
    ``may_confirm_sensitive`` of the spent set, which still exists) revokes his cooling-off passkey; she is
    then left with no factor, for the desk to re-bind."""
    from .factor_scenarios import change_password

    of_long_standing(hanako)
    disabled_totp(hanako, totp_factory)
    codes = her_recovery_codes(hanako)
    _spend_all_but(hanako, 2)
    thief = new_browser_api(IP_OSAKA)
    thief.login("hanako", HANAKO_PASSWORD)
    assert thief.post("/authguard/api/step-up/recovery-code", {"code": codes[8]}).status_code == 200
    assert register(thief, new_key()).status_code == 201
    his = PasskeyDevice.objects.get(user=hanako)

    clock.shift(1800)
    her = new_browser_api(IP_TOKYO)
    her.login_usual("hanako", HANAKO_PASSWORD)
    assert her.post("/authguard/api/step-up/recovery-code", {"code": codes[9]}).status_code == 200
    assert change_password(her, HANAKO_PASSWORD, "brand-new-pass-9876").status_code == 302
    assert not PasskeyDevice.objects.filter(pk=his.pk).exists()
    assert thief.post("/authguard/api/factors").status_code in (401, 403)  # his session ended


def _reset_password_by_mail(new_password: str) -> None:
    """hanako's reset by e-mail from her PC: the link mailed to her, opened, a new password set."""
    import re

    from django.core import mail
    from django.test import Client

    mail.outbox.clear()
    Client(REMOTE_ADDR=IP_TOKYO).post("/password/reset/", {"email": "hanako@example.com"})
    links = [
        m for message in mail.outbox for m in re.findall(r"https?://\S+/password/reset/\S+/", message.body)
    ]
    assert links, [message.body for message in mail.outbox]
    browser = Client(REMOTE_ADDR=IP_TOKYO)
    form = browser.get("/" + links[0].split("/", 3)[3], follow=True)
    assert form.status_code == 200
    done = browser.post(
        form.redirect_chain[-1][0], {"new_password1": new_password, "new_password2": new_password}
    )
    assert done.status_code == 302, done.content[:300]


@pytest.mark.battery(63)
def test_her_reset_after_a_password_only_thief_bound_her_accounts_first_factor_lets_her_bind_her_own(
    new_browser_api: Any, hanako: Any, clock: Any
) -> None:
    """hanako, a customer of years, never set up a second factor. The thief, with her password alone on a
    line the engine allows, binds the account's first factor (an authenticator app: the first-factor path,
    unvouched, 14 days). She gets the "factor added" notice; she has no factor of her own to verify with, so
    she cannot remove his: her answer is the one the docs name, her reset by e-mail, which ends his sessions
    and revokes what he added. But ``removal._delete_factor`` first records ``ever_had_factor``: from her PC
    of months she can now never set up her own first factor (``rebind_required``: "disabled after too many
    failed attempts... contact the desk"). A password alone, no relayed code, shuts her out of every factor
    until the desk acts (her own reset during her own first app's 14 days ends the same way)."""
    of_long_standing(hanako)
    her = new_browser_api(IP_TOKYO)
    her.login_usual("hanako", HANAKO_PASSWORD)  # her PC of months (no second factor, ever)
    her.post("/api/logout")

    thief = new_browser_api(IP_OSAKA)
    thief.login("hanako", HANAKO_PASSWORD)
    assert thief.post("/authguard/api/totp").status_code == 200
    his = TOTPDevice.objects.get(user=hanako, confirmed=False)
    assert thief.post("/authguard/api/totp/confirm", {"code": totp_token(his)}).status_code == 201
    his.refresh_from_db()
    assert inventory.factor_is_cooling_off(his)

    clock.shift(1800)  # she reads the notice and resets her password by e-mail
    _reset_password_by_mail("hanako-own-new-2026!")
    assert not TOTPDevice.objects.filter(pk=his.pk).exists()  # his app revoked by her reset

    clock.shift(60)
    her = new_browser_api(IP_TOKYO)
    her.login_usual("hanako", "hanako-own-new-2026!")
    begun = her.post("/authguard/api/totp")

    assert begun.status_code == 200, (
        f"after her reset revoked the app a password-only thief bound as her account's first factor, hanako "
        f"on her PC of months cannot set up her own: {begun.status_code} {begun.content[:220]!r}; ever had "
        f"a factor: {lifecycle.ever_had_factor(hanako)}"
    )


@pytest.mark.battery(63)
def test_held_one_relayed_code_of_her_only_cooling_off_recovery_set_does_not_renew_it(
    new_browser_api: Any, hanako: Any, totp_factory: Any, clock: Any
) -> None:
    """Evidence that held (passes), beside the first finding: the same relayed code spent on *renewing* the
    set (which would show him ten fresh codes of hers) is refused: a replacement follows the rules of a factor
    that is not cooling off (``require_strong_removal``), and the set as its own verifier is no vouched
    session or second factor. Her set stays, he sees no codes."""
    codes = _her_renewed_codes_her_only_factor(new_browser_api, hanako, totp_factory)
    the_set = RecoveryCodeDevice.objects.get(user=hanako)

    clock.shift(2 * 3600)
    thief = new_browser_api(IP_OSAKA)
    thief.login("hanako", HANAKO_PASSWORD)
    assert thief.post("/authguard/api/step-up/recovery-code", {"code": codes[4]}).status_code == 200
    renewed = thief.post("/authguard/api/recovery-codes")

    assert renewed.status_code == 403 and "codes" not in renewed.json(), renewed.content
    assert list(RecoveryCodeDevice.objects.filter(user=hanako)) == [the_set]
