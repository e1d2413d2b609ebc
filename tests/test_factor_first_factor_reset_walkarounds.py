"""Red team, round twenty-seven (c): the customer's factors and contact details after round twenty-six
(commits 855fa36, 3a148bd), with her password and one relayed code, or her password alone.

Each test asserts the SECURE outcome; a failing one is a finding on the current code.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core import mail
from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice

from authguard.factors import inventory
from authguard.models import AccountSecurity, PasskeyDevice, RecoveryCodeDevice

from .conftest import HANAKO_PASSWORD, IP_OSAKA, IP_TOKYO, of_long_standing, totp_token
from .factor_scenarios import new_key, register

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]

HER_NEW_PASSWORD = "hanako-own-new-2026!"


@pytest.fixture
def hanako(brokerage_customer: Any) -> Any:
    return brokerage_customer(holdings={"7203": 100})


def _reset_password_by_mail(new_password: str, *, email: str = "hanako@example.com") -> list[str]:
    """hanako's reset by e-mail from her PC: the link mailed to her, opened, a new password set. Returns the
    addresses the link was mailed to."""
    mail.outbox.clear()
    Client(REMOTE_ADDR=IP_TOKYO).post("/password/reset/", {"email": email})
    sent = [
        (message.to, m)
        for message in mail.outbox
        for m in re.findall(r"https?://\S+/password/reset/\S+/", message.body)
    ]
    assert sent, [message.body for message in mail.outbox]
    browser = Client(REMOTE_ADDR=IP_TOKYO)
    form = browser.get("/" + sent[0][1].split("/", 3)[3], follow=True)
    assert form.status_code == 200
    done = browser.post(
        form.redirect_chain[-1][0], {"new_password1": new_password, "new_password2": new_password}
    )
    assert done.status_code == 302, done.content[:300]
    return [address for to, _link in sent for address in to]


def _her_pc_of_months(new_browser_api: Any, hanako: Any) -> None:
    of_long_standing(hanako)
    her = new_browser_api(IP_TOKYO)
    her.login_usual("hanako", HANAKO_PASSWORD)  # her PC of months (no second factor, ever)
    her.post("/api/logout")


@pytest.mark.battery(63)
def test_her_reset_gives_back_the_first_factor_despite_an_app_enrollment_the_thief_left_unfinished(
    new_browser_api: Any, hanako: Any, clock: Any
) -> None:
    """Round twenty-five's fix (``removal._forget_a_first_factor_never_established``) undone by one abandoned
    enrollment. hanako, a customer of years, never set up a second factor. The thief, with her password
    alone on a line the engine allows, first opens the authenticator-app set-up (the QR code: an unconfirmed
    ``TOTPDevice`` row) and leaves it, then registers his passkey as the account's first factor (unvouched,
    14 days). She resets her password by e-mail: his passkey is revoked, but the rule "forget the first
    factor only if no device row at all is left" sees his abandoned enrollment, so ``first_factor_at`` stays:
    from her PC of months she can set up no factor of her own ("rebind_required", the desk)."""
    _her_pc_of_months(new_browser_api, hanako)

    thief = new_browser_api(IP_OSAKA)
    thief.login("hanako", HANAKO_PASSWORD)
    assert thief.post("/authguard/api/totp").status_code == 200  # QR code shown, never confirmed
    assert register(thief, new_key()).status_code == 201  # his passkey: the account's first factor
    his = PasskeyDevice.objects.get(user=hanako)
    assert inventory.factor_is_cooling_off(his)
    assert TOTPDevice.objects.filter(user=hanako, confirmed=False).exists()

    clock.shift(1800)  # she reads the "passkey added" notice and resets her password by e-mail
    _reset_password_by_mail(HER_NEW_PASSWORD)
    assert not PasskeyDevice.objects.filter(pk=his.pk).exists()  # his passkey revoked by her reset

    clock.shift(60)
    her = new_browser_api(IP_TOKYO)
    her.login_usual("hanako", HER_NEW_PASSWORD)
    begun = her.post("/authguard/api/totp")

    assert begun.status_code == 200, (
        f"after her reset revoked the passkey a password-only thief bound as her account's first factor, "
        f"his abandoned app set-up keeps 'ever had a factor': hanako on her PC of months cannot set up her "
        f"own: {begun.status_code} {begun.content[:220]!r}; first_factor_at="
        f"{AccountSecurity.objects.get(user=hanako).first_factor_at}; rows left: "
        f"{list(TOTPDevice.objects.filter(user=hanako).values_list('confirmed', flat=True))}"
    )


@pytest.mark.battery(63)
def test_her_reset_gives_back_the_first_factor_after_the_thief_swapped_his_first_for_a_younger_one(
    new_browser_api: Any, hanako: Any, clock: Any
) -> None:
    """The same rule, undone by the thief's own removal. ``_forget_a_first_factor_never_established`` forgets
    only if ``first_factor_at`` is no earlier than the oldest factor the reset revoked. The thief, with her
    password alone, binds his app as the account's first factor, adds his passkey with it (his app is the
    oldest of all-new factors), then removes his app with itself (another usable factor, his passkey,
    remains). Her reset revokes his passkey, the only factor left; but ``first_factor_at`` is his app's
    time, earlier than the passkey's, so the account "ever had a factor" for good: from her PC of months she
    can set up none of her own, only the desk brings her back. No relayed code was needed at all."""
    _her_pc_of_months(new_browser_api, hanako)

    thief = new_browser_api(IP_OSAKA)
    thief.login("hanako", HANAKO_PASSWORD)
    assert thief.post("/authguard/api/totp").status_code == 200
    app = TOTPDevice.objects.get(user=hanako, confirmed=False)
    assert thief.post("/authguard/api/totp/confirm", {"code": totp_token(app)}).status_code == 201
    clock.shift(60)
    assert thief.post("/authguard/api/step-up/totp", {"code": totp_token(app)}).status_code == 200
    added = register(thief, new_key())
    assert added.status_code == 201, added.content
    his_key = PasskeyDevice.objects.get(user=hanako)
    clock.shift(60)
    assert thief.post("/authguard/api/step-up/totp", {"code": totp_token(app)}).status_code == 200
    removed = thief.post("/authguard/api/factors/remove", {"id": app.persistent_id})
    assert removed.status_code == 200, removed.content
    assert list(inventory.user_factors(hanako)) == [his_key]

    clock.shift(1800)  # she reads the notices and resets her password by e-mail
    _reset_password_by_mail(HER_NEW_PASSWORD)
    assert not PasskeyDevice.objects.filter(user=hanako).exists()  # his passkey revoked by her reset

    clock.shift(60)
    her = new_browser_api(IP_TOKYO)
    her.login_usual("hanako", HER_NEW_PASSWORD)
    begun = her.post("/authguard/api/totp")

    assert begun.status_code == 200, (
        f"after her reset revoked every factor the password-only thief had bound, hanako on her PC of months "
        f"cannot set up her own: {begun.status_code} {begun.content[:220]!r}; first_factor_at="
        f"{AccountSecurity.objects.get(user=hanako).first_factor_at}"
    )


@pytest.mark.battery(63)
def test_held_one_relayed_code_and_his_own_new_passkey_are_not_the_two_factors_an_email_change_needs(
    new_browser_api: Any, hanako: Any, totp_factory: Any, clock: Any
) -> None:
    """Evidence that held (passes). hanako has an authenticator app of years and no passkey, so an e-mail
    change takes two different factors. The thief relays one code of her app, adds his own passkey with it
    (cooling off, unvouched) and offers it as the "second, different" factor, in either order (the second
    order even with a second relayed code): refused; no code is mailed, her address stays, and no change is
    pending."""
    from .factor_scenarios import old_totp, passkey_verify

    of_long_standing(hanako)
    hanako.totp = old_totp(hanako, totp_factory)
    thief = new_browser_api(IP_OSAKA)
    thief.login("hanako", HANAKO_PASSWORD)
    assert thief.post("/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)}).status_code == 200
    key = new_key()
    assert register(thief, key).status_code == 201
    mail.outbox.clear()

    first = thief.post("/authguard/api/email", {"email": "gang@example.net"})  # TOTP, then his passkey
    assert passkey_verify(thief, key).status_code == 200
    second = thief.post("/authguard/api/email", {"email": "gang@example.net"})
    clock.shift(40)
    stepped = thief.post("/authguard/api/step-up/totp", {"code": totp_token(hanako.totp, steps=1)})
    assert stepped.status_code == 200
    third = thief.post("/authguard/api/email", {"email": "gang@example.net"})  # his passkey, then TOTP

    assert {first.status_code, second.status_code, third.status_code} <= {401, 403}, (
        first.content,
        second.content,
        third.content,
    )
    hanako.refresh_from_db()
    assert hanako.email == "hanako@example.com"
    assert not any("gang@example.net" in message.to for message in mail.outbox)
    from authguard.models import ContactChange

    assert not ContactChange.objects.filter(user=hanako).exists()


@pytest.mark.battery(63)
def test_her_last_printed_code_relayed_changes_no_password_that_revokes_her_only_usable_passkey(
    new_browser_api: Any, hanako: Any, totp_factory: Any, clock: Any
) -> None:
    """Round twenty-six closed the *removal* of her only usable factor with her last printed code relayed
    (``factors_of_session``), not the password change, which revokes every cooling-off factor. hanako lost
    her phone (her app of years disabled); from her PC of months she registered a passkey on her new phone
    with her second-last printed code: the passkey (cooling off) and one printed code are what she has. A
    phishing page relays her last code; from Osaka the thief asks for a password change: the spent set is
    his verifier, "not cooling off", and the change goes through: her new passkey is revoked. She resets by
    e-mail, gets her account back, and has no usable factor at all (a disabled app, a spent set), "ever had"
    one: she cannot bind a passkey from her PC of months: only the desk brings her back."""
    from django.contrib.auth import get_user_model

    from .factor_scenarios import change_password, disabled_totp, her_recovery_codes

    of_long_standing(hanako)
    disabled_totp(hanako, totp_factory)
    codes = her_recovery_codes(hanako)
    the_set = RecoveryCodeDevice.objects.get(user=hanako)
    from authguard.models import RecoveryCode

    rows = list(RecoveryCode.objects.filter(device=the_set).order_by("pk"))
    RecoveryCode.objects.filter(pk__in=[r.pk for r in rows[:8]]).update(used_at=the_set.created_at)
    her = new_browser_api(IP_TOKYO)
    her.login_usual("hanako", HANAKO_PASSWORD)
    assert her.post("/authguard/api/step-up/recovery-code", {"code": codes[8]}).status_code == 200
    assert register(her, new_key()).status_code == 201
    her_key = PasskeyDevice.objects.get(user=hanako)
    assert inventory.factor_is_cooling_off(her_key)
    her.post("/api/logout")

    clock.shift(2 * 3600)
    thief = new_browser_api(IP_OSAKA)
    thief.login("hanako", HANAKO_PASSWORD)
    assert thief.post("/authguard/api/step-up/recovery-code", {"code": codes[9]}).status_code == 200
    changed = change_password(thief, HANAKO_PASSWORD, "thief-owns-it-2026!")

    still_hers = get_user_model().objects.get(pk=hanako.pk).check_password(HANAKO_PASSWORD)
    assert PasskeyDevice.objects.filter(pk=her_key.pk).exists() and still_hers, (
        f"her last printed code, relayed, changed her password ({changed.status_code}) and so revoked her "
        f"only usable factor, her new passkey: usable factors left {inventory.user_factors(hanako)}; after "
        f"her reset by e-mail she has a disabled app and a spent set: the desk"
    )
    assert changed.status_code != 302 or "reverify" in changed.url, changed.content[:200]
