"""Red team, round twenty-three: one relayed code of the customer's only factor, while it cools off.

A factor that is cooling off "may be removed with any older factor (or itself)" and the last-factor guard of
``removal.require_can_remove`` is skipped for a target that is cooling off; round twenty-one's
``changes._oldest_of_new`` lets a cooling-off factor change things when it is the account's oldest and none is
established. Where the customer's only factor cools off (her first app, set up on her new phone; the app the
desk bound again), the thief's one relayed code of it removes it: the account "ever had a factor", so neither
she nor anybody gets a first-factor path again, and only the desk brings her back. Fixed: a factor that
cools off goes only where another strong factor remains (``removal.require_can_remove``).

Found alongside: her first app, in its 14 days, could not add her passkey once the account's own day of
cooling off was over (the passkey, saved before its record, counted as established); now
``changes._oldest_of_new`` leaves out the factor being added. Round twenty-four: recovery codes count as
what remains, so her printed codes still drop the passkey one relayed code of them added.
"""

from __future__ import annotations

from typing import Any

import pytest
from django_otp.plugins.otp_totp.models import TOTPDevice

from authguard.factors import inventory, lifecycle
from authguard.models import PasskeyDevice

from .conftest import HANAKO_PASSWORD, IP_OSAKA, IP_TOKYO, of_long_standing, totp_token
from .factor_scenarios import (
    disabled_totp,
    her_only_app,
    her_recovery_codes,
    new_key,
    register,
    thief_with_one_code,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]


def _her_first_app_on_her_new_phone(new_browser_api: Any, hanako: Any) -> Any:
    """hanako, a customer of years who never had a second factor, sets up her first authenticator app from
    the browser of her new phone (allowed outright, but not a month old): the first-factor path, unvouched,
    so it cools off for 14 days (docs/factor-lifecycle.md: "a customer who adds her first passkey on a
    brand-new phone meets the same wait"). It is her only factor."""
    of_long_standing(hanako)
    phone = new_browser_api(IP_TOKYO)
    phone.login("hanako", HANAKO_PASSWORD)
    return her_only_app(phone, hanako)


def _her_new_session(new_browser_api: Any) -> Any:
    her = new_browser_api(IP_TOKYO)
    her.login_usual("hanako", HANAKO_PASSWORD)
    return her


@pytest.mark.battery(63)
@pytest.mark.parametrize("how", ["first_app_on_new_phone", "app_rebound_by_the_desk"])
def test_one_relayed_code_of_her_only_cooling_off_app_removes_it_for_good(
    new_browser_api: Any, hanako: Any, totp_factory: Any, user_factory: Any, clock: Any, how: str
) -> None:
    """Two hours after she set up her first app on her new phone, the thief signs in with her password and
    relays ONE code of that app. He removes the app itself: ``require_can_remove`` (a cooling-off
    target, "itself", no last-factor check for a target that cools off) and
    ``require_verified_since_change`` (her app is the oldest of all-new factors) let it through. The
    account now has no factor and "ever had" one: she cannot set up another (``rebind_required``), from
    her usual browser or any other; only the desk can. The same with round twenty-one's app the desk
    bound again after she lost her phone: one relayed code sends her back to the desk, every time. Now
    refused as her last method; she signs in and adds another (below)."""
    if how == "first_app_on_new_phone":
        app = _her_first_app_on_her_new_phone(new_browser_api, hanako)
    else:
        from .test_factor_changes_walkarounds import _her_app_rebound_by_the_desk

        app = _her_app_rebound_by_the_desk(new_browser_api, hanako, totp_factory, user_factory)

    clock.shift(2 * 3600)
    thief = thief_with_one_code(new_browser_api, app)
    removed = thief.post("/authguard/api/factors/remove", {"id": app.persistent_id})

    clock.shift(3600)
    her = _her_new_session(new_browser_api)
    again = her.post("/authguard/api/totp")

    assert removed.status_code == 400 and removed.json()["code"] == "last_factor", removed.content
    assert TOTPDevice.objects.filter(pk=app.pk, confirmed=True).exists(), (
        f"one relayed code of her only (cooling-off) app removed it: {removed.status_code}; her own attempt "
        f"to set up an app again: {again.status_code} {again.content[:160]!r}; factors left: "
        f"{inventory.user_factors(hanako)}; ever had one: {lifecycle.ever_had_factor(hanako)}"
    )


@pytest.mark.battery(63)
def test_held_her_only_cooling_off_app_relayed_adds_his_passkey_then_removes_nothing(
    new_browser_api: Any, hanako: Any, clock: Any
) -> None:
    """Evidence that held (passes): the same relayed code spent on his passkey first cannot also remove her
    app (additions, then a removal: refused by the count), and his younger passkey cannot remove it later."""
    from authguard.models import PasskeyDevice

    from .factor_scenarios import passkey_verify

    app = _her_first_app_on_her_new_phone(new_browser_api, hanako)
    clock.shift(2 * 3600)
    thief = thief_with_one_code(new_browser_api, app)
    key = new_key()
    assert register(thief, key).status_code == 201
    assert thief.post("/authguard/api/factors/remove", {"id": app.persistent_id}).status_code == 403

    clock.shift(3600)
    later = new_browser_api()
    later.login("hanako", HANAKO_PASSWORD)
    assert passkey_verify(later, key).status_code == 200
    refused = later.post("/authguard/api/factors/remove", {"id": app.persistent_id})
    assert refused.status_code in (400, 403)
    assert TOTPDevice.objects.filter(pk=app.pk, confirmed=True).exists()
    assert PasskeyDevice.objects.filter(user=hanako).count() == 1


def test_her_first_app_in_its_cooling_off_adds_her_passkey_after_the_first_day(
    new_browser_api: Any, hanako: Any, clock: Any
) -> None:
    """Two days after she set up her first app (the account's day of cooling off is over, the app's 14 days
    are not), she verifies with it and adds her passkey: the oldest of all-new factors may, and the passkey
    being added is not counted as an established factor that would stop it. Then her app, cooling off, may go
    (a strong factor remains)."""
    from authguard.models import PasskeyDevice

    app = _her_first_app_on_her_new_phone(new_browser_api, hanako)
    clock.shift(2 * 86400)
    assert inventory.factor_is_cooling_off(app)
    her = _her_new_session(new_browser_api)
    assert her.post("/authguard/api/step-up/totp", {"code": totp_token(app)}).status_code == 200
    added = register(her, new_key())
    assert added.status_code == 201, added.content
    assert PasskeyDevice.objects.filter(user=hanako).count() == 1


@pytest.mark.battery(63)
def test_her_recovery_codes_remove_the_passkey_one_relayed_code_of_them_added(
    new_browser_api: Any, hanako: Any, totp_factory: Any, clock: Any
) -> None:
    """Round twenty-four, against round twenty-three's rule: her app lost (disabled), her printed recovery
    codes her only usable factor; the thief's one relayed code of them adds his passkey. She removes it with
    a code of hers from her PC of months: what remains is what she had before (it was refused as "your last
    security method" when only passkeys and apps counted)."""
    of_long_standing(hanako)
    disabled_totp(hanako, totp_factory)  # her phone is lost: the app disabled
    codes = her_recovery_codes(hanako)  # printed 300 days ago: her only usable factor

    thief = new_browser_api(IP_OSAKA)
    thief.login("hanako", HANAKO_PASSWORD)
    assert thief.post("/authguard/api/step-up/recovery-code", {"code": codes[3]}).status_code == 200
    added = register(thief, new_key())
    assert added.status_code == 201, added.content  # one change for one relayed code: accepted, announced
    his = PasskeyDevice.objects.get(user=hanako)
    assert inventory.factor_is_cooling_off(his)

    clock.shift(1800)  # she reads the "passkey added" notice
    her = new_browser_api(IP_TOKYO)
    her.login_usual("hanako", HANAKO_PASSWORD)  # her PC of months
    assert her.post("/authguard/api/step-up/recovery-code", {"code": codes[0]}).status_code == 200
    removed = her.post("/authguard/api/factors/remove", {"id": his.persistent_id})

    assert PasskeyDevice.objects.filter(pk=his.pk).count() == 0, (
        f"hanako, verified from her PC of months with her own recovery code, cannot remove the passkey one "
        f"relayed code added 30 minutes ago: {removed.status_code} {removed.content[:200]!r}; it stays, "
        f"and when its cooling-off ends it is an established passkey in the thief's hands"
    )


@pytest.mark.battery(63)
def test_her_password_change_with_her_recovery_code_revokes_his_passkey_too(
    new_browser_api: Any, hanako: Any, totp_factory: Any, clock: Any
) -> None:
    """The other undo in the scenario above: a password change from her session verified with a recovery
    code revokes what cools off."""
    from .factor_scenarios import change_password

    of_long_standing(hanako)
    disabled_totp(hanako, totp_factory)
    codes = her_recovery_codes(hanako)
    thief = new_browser_api(IP_OSAKA)
    thief.login("hanako", HANAKO_PASSWORD)
    assert thief.post("/authguard/api/step-up/recovery-code", {"code": codes[3]}).status_code == 200
    assert register(thief, new_key()).status_code == 201
    his = PasskeyDevice.objects.get(user=hanako)
    clock.shift(1800)
    her = new_browser_api(IP_TOKYO)
    her.login_usual("hanako", HANAKO_PASSWORD)
    assert her.post("/authguard/api/step-up/recovery-code", {"code": codes[0]}).status_code == 200
    assert change_password(her, HANAKO_PASSWORD, "brand-new-pass-9876").status_code == 302
    assert not PasskeyDevice.objects.filter(pk=his.pk).exists()
