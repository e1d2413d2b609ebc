"""A long-standing customer's authenticator app from before django-otp's timestamps (red team, round
twenty-two; each test failed on the code before ``inventory.unrecorded_confirmed_at``): from before its
timestamps (``TOTPDevice.created_at`` NULL: django-otp's migration ``otp_totp.0003_add_timestamps`` added the
column ``null=True`` and left every existing device without a time) and from before authguard's records (no
FactorRecord).

``inventory.factor_is_cooling_off`` counts such a factor as cooling off whenever the account cools off ("no
time means we cannot prove it is older"), and round twenty-one's ``changes._oldest_of_new`` and
``removal.require_can_remove``'s ``older`` leave a factor without a time out of the comparison. So once the
thief's one relayed code of her app adds his passkey (which starts the account's cooling-off), every factor
"cools off", his passkey is the oldest *dated* one, and:

* his own passkey keeps adding (each addition extends the account's cooling-off, so her app never stops
  "cooling off");
* her app of years cannot remove the passkey she was told of (not "older": it has no time);
* after his passkey's 14 days he stops, the account's cooling-off ends, his passkey is a trusted one and
  removes her app: he owns the account's factors.

Such a factor now counts as confirmed at :data:`~authguard.factors.inventory.LONG_STANDING`: older than
anything authguard recorded, established, never cooling off.
"""

from __future__ import annotations

from typing import Any

import pytest
from django_otp.plugins.otp_totp.models import TOTPDevice

from authguard.factors import inventory
from authguard.models import AccountSecurity, FactorRecord, PasskeyDevice

from .conftest import HANAKO_PASSWORD, IP_OSAKA, IP_TOKYO, of_long_standing, totp_token
from .factor_scenarios import new_key, passkey_verify, register, thief_with_one_code

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]


def _legacy_app(hanako: Any, totp_factory: Any) -> Any:
    """hanako's authenticator app of years: made before django-otp had timestamps and before authguard."""
    of_long_standing(hanako)
    app = totp_factory(hanako)
    TOTPDevice.objects.filter(pk=app.pk).update(created_at=None)
    app.refresh_from_db()
    assert not FactorRecord.objects.filter(device_id=app.persistent_id).exists()
    assert not inventory.factor_is_cooling_off(app)  # an established factor of hers
    return app


def _his_passkey_session(new_browser_api: Any, key: Any) -> Any:
    s = new_browser_api(IP_OSAKA)
    s.login("hanako", HANAKO_PASSWORD)
    assert passkey_verify(s, key).status_code == 200
    return s


@pytest.mark.battery(63)
def test_legacy_app_cannot_remove_the_passkey_one_relayed_code_added(
    new_browser_api: Any, hanako: Any, totp_factory: Any, clock: Any
) -> None:
    """ONE relayed code of her app of years adds his passkey (one change, by design: she is told and can
    undo). She signs in on her usual browser an hour later, verifies with the same app and removes the
    passkey she does not know (docs: "she removes a passkey she does not know with her authenticator app").
    Refused: her app now counts as cooling off (no time, account cooling off) and is not "older" than his
    passkey (no time)."""
    app = _legacy_app(hanako, totp_factory)
    thief = thief_with_one_code(new_browser_api, app)
    assert register(thief, new_key()).status_code == 201
    his = PasskeyDevice.objects.get(user=hanako)

    clock.shift(3600)
    her = new_browser_api(IP_TOKYO)
    her.login_usual("hanako", HANAKO_PASSWORD)
    assert her.post("/authguard/api/step-up/totp", {"code": totp_token(app)}).status_code == 200
    removed = her.post("/authguard/api/factors/remove", {"id": his.persistent_id})

    assert removed.status_code == 200 and not PasskeyDevice.objects.filter(pk=his.pk).exists(), (
        f"her authenticator app of years (created_at NULL, no record) cannot remove the passkey one relayed "
        f"code added: {removed.status_code} {removed.content[:200]!r}; her app cooling off: "
        f"{inventory.factor_is_cooling_off(app)}"
    )


@pytest.mark.battery(63)
def test_legacy_app_his_own_passkey_keeps_adding_days_after_the_relayed_code(
    new_browser_api: Any, hanako: Any, totp_factory: Any, clock: Any
) -> None:
    """After the one relayed code added his passkey, sessions verified only with *his own* cooling-off
    passkey add one more passkey a day: ``_oldest_of_new`` finds every factor cooling off (hers has no time)
    and his passkey the oldest of those with a time."""
    app = _legacy_app(hanako, totp_factory)
    thief = thief_with_one_code(new_browser_api, app)
    key = new_key()
    assert register(thief, key).status_code == 201

    added = []
    for _day in range(3):
        clock.shift(20 * 3600)
        added.append(register(_his_passkey_session(new_browser_api, key), new_key()).status_code)

    assert set(added) == {403} and PasskeyDevice.objects.filter(user=hanako).count() == 1, (
        f"days after the one relayed code, sessions verified with his own cooling-off passkey registered "
        f"{added}: {PasskeyDevice.objects.filter(user=hanako).count()} passkeys of his; account cools off "
        f"until {AccountSecurity.objects.get(user=hanako).cooling_off_until}"
    )


@pytest.mark.battery(63)
def test_legacy_app_one_relayed_code_buys_one_passkey_and_no_more(
    new_browser_api: Any, hanako: Any, totp_factory: Any, clock: Any
) -> None:
    """The chain to the end: one relayed code adds his passkey P1; every 20 h a session verified with P1 adds
    one more, which keeps the account cooling off (and so her app "cooling off": she can remove none of
    them, test above). After P1's 14 days he stops; 24 h later the account's cooling-off ends, P1 is a
    trusted passkey and removes her app of years. She was told of every passkey and could do nothing with
    her app; a password reset, her remaining answer, would revoke her own app with his passkeys."""
    app = _legacy_app(hanako, totp_factory)
    thief = thief_with_one_code(new_browser_api, app)
    key = new_key()
    assert register(thief, key).status_code == 201

    more = []
    for _step in range(16):  # 16 x 20 h: within P1's 14 days
        clock.shift(20 * 3600)
        more.append(register(_his_passkey_session(new_browser_api, key), new_key()).status_code)

    # Since round twenty-two her app of years stands as established: his passkey adds nothing, the account's
    # cooling-off is not kept running, and his one passkey is hers to remove for its 14 days (the test
    # above). Outwaited untouched, it becomes trusted, by design.
    assert set(more) == {403} and PasskeyDevice.objects.filter(user=hanako).count() == 1, (
        f"one relayed code of her app of years: his passkeys kept adding ({more}); the account's factors: "
        f"{[d.persistent_id for d in inventory.user_factors(hanako)]}"
    )
    assert TOTPDevice.objects.filter(pk=app.pk).exists()


@pytest.mark.battery(63)
def test_legacy_app_her_password_reset_revokes_her_own_app_with_his_passkey(
    new_browser_api: Any, hanako: Any, totp_factory: Any, clock: Any
) -> None:
    """Her remaining answer to the passkey she cannot remove: she cannot change her password from her
    session (her app "cools off", ``require_password_change_allowed``), so she resets it by e-mail.
    ``revoke_factors_added_in_cooling_off`` revokes every factor cooling off: his passkey, and her app of
    years with it. The account "had a factor": only the desk binds one again."""
    import re

    from django.core import mail
    from django.test import Client

    app = _legacy_app(hanako, totp_factory)
    thief = thief_with_one_code(new_browser_api, app)
    assert register(thief, new_key()).status_code == 201

    clock.shift(3600)
    mail.outbox.clear()
    Client(REMOTE_ADDR=IP_TOKYO).post("/password/reset/", {"email": "hanako@example.com"})
    links = [
        m for message in mail.outbox for m in re.findall(r"https?://\S+/password/reset/\S+/", message.body)
    ]
    assert links
    browser = Client(REMOTE_ADDR=IP_TOKYO)
    link = "/" + links[0].split("/", 3)[3]
    form = browser.get(link, follow=True)
    new_password = "hanako new pw 2026!"
    done = browser.post(
        form.redirect_chain[-1][0] if form.redirect_chain else link,
        {"new_password1": new_password, "new_password2": new_password},
    )
    assert done.status_code == 302
    assert not PasskeyDevice.objects.filter(user=hanako).exists()  # his passkey revoked, rightly

    assert TOTPDevice.objects.filter(pk=app.pk).exists(), (
        "her password reset, her answer to a passkey she did not add, revoked her own authenticator app of "
        "years (created_at NULL: 'cooling off' while the account cools off) along with his passkey; "
        f"factors left: {inventory.user_factors(hanako)}"
    )


@pytest.mark.battery(63)
def test_legacy_app_her_own_recovery_codes_then_a_forgotten_password_lose_her_app(
    new_browser_api: Any, hanako: Any, totp_factory: Any, clock: Any
) -> None:
    """A legitimate sequence, no thief: hanako (her app of years, from before django-otp's timestamps) prints
    recovery codes from her usual browser, verified with the app. That evening she forgets her password and
    resets it by e-mail. The reset revokes what cools off: her new codes (as documented) and her app of years
    (no time: "cooling off" while the account does). She has no factor left and the account "had one": only
    the desk binds one again."""
    import re

    from django.core import mail
    from django.test import Client

    app = _legacy_app(hanako, totp_factory)
    her = new_browser_api(IP_TOKYO)
    her.login_usual("hanako", HANAKO_PASSWORD)
    assert her.post("/authguard/api/step-up/totp", {"code": totp_token(app)}).status_code == 200
    assert her.post("/authguard/api/recovery-codes").status_code == 201

    clock.shift(6 * 3600)
    mail.outbox.clear()
    Client(REMOTE_ADDR=IP_TOKYO).post("/password/reset/", {"email": "hanako@example.com"})
    links = [
        m for message in mail.outbox for m in re.findall(r"https?://\S+/password/reset/\S+/", message.body)
    ]
    assert links
    browser = Client(REMOTE_ADDR=IP_TOKYO)
    link = "/" + links[0].split("/", 3)[3]
    form = browser.get(link, follow=True)
    new_password = "hanako new pw 2026!"
    done = browser.post(
        form.redirect_chain[-1][0] if form.redirect_chain else link,
        {"new_password1": new_password, "new_password2": new_password},
    )
    assert done.status_code == 302

    assert TOTPDevice.objects.filter(pk=app.pk).exists(), (
        "her own new recovery codes, then a forgotten-password reset: her authenticator app of years was "
        f"revoked as 'cooling off'; factors left: {inventory.user_factors(hanako)}"
    )
