"""The customer's side of a factor change, and one relayed code against her factors (red team, round
fifty-three).

The thief has hanako's password and relays ONE code of her authenticator app (a real-time phishing proxy);
he reads this code and has days. Real TOTP codes, real WebAuthn payloads (SoftAuthenticator).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core import mail
from django_otp.plugins.otp_totp.models import TOTPDevice

from authguard.factors import inventory
from authguard.models import Notification, PasskeyDevice
from authguard.notifications.messages import build_message

from .conftest import HANAKO_PASSWORD, IP_OSAKA, IP_TOKYO, of_long_standing, totp_token, wrong_code
from .factor_scenarios import new_key, old_totp, thief_with_one_code

pytestmark = pytest.mark.django_db

#: A callback number of the thief's vishing desk, chosen as the passkey's "name".
VISHING_NAME = "Hanako iPhone - if not you, call our desk 0120-987-654 now"
PHONE = re.compile(r"0120[-\s]?987[-\s]?654")


def _register_named(client: Any, key: Any, name: str) -> Any:
    options = client.post("/authguard/api/passkeys/options")
    assert options.status_code == 200, options.content
    return client.post("/authguard/api/passkeys", {**key.create(options.json()), "name": name})


def test_a_passkey_named_with_a_callback_number_puts_neither_name_nor_number_in_her_notice(
    new_browser_api: Any, hanako: Any, totp_factory: Any
) -> None:
    """Secure: the "a sign-in method was added" notice is the customer's one defence for the two weeks his
    passkey cools off, and it tells her "if you did not add it ... call us". authguard must not put text the
    thief chose (the passkey's name) into that genuine mail where it can read as the brokerage's own words:
    a name carrying a phone number (defang strips links and domains, not numbers) sends her to the thief's
    vishing desk, who talks her into reading out her next code or leaving his passkey alone. Show a name
    the thief chose only as quoted, marked data, or leave it out of the notice (the security page names
    it), and strip phone-number-like runs as links are stripped."""
    of_long_standing(hanako)
    hanako.totp = old_totp(hanako, totp_factory)
    thief = thief_with_one_code(new_browser_api, hanako.totp)
    mail.outbox.clear()
    added = _register_named(thief, new_key(), VISHING_NAME)
    assert added.status_code == 201, added.content
    notice = Notification.objects.filter(user=hanako, kind="factor_added").latest("pk")
    assert notice.to_email == "hanako@example.com"
    body = build_message(notice).body  # the mail as the outbox sends it
    assert "passkey" in body.lower()
    assert not PHONE.search(body), body
    assert "Hanako iPhone" not in body, body  # his name for it, which reads as hers
    # What tells her it was not her: where and on what it was added (authguard's own findings).
    assert IP_OSAKA in body, body
    assert notice.context["name"].startswith("Hanako iPhone") and "0120" not in notice.context["name"]


def test_a_removal_notice_names_her_factor_without_a_number_in_it(hanako: Any, totp_factory: Any) -> None:
    """Secure: the removal notice names the factor (the name she gave hers), phone numbers taken out, in any
    width: a thief's factor she removes carries his name, and his desk's number must not reach her."""
    from authguard.factors.removal import remove_factor

    from .console_data import staff_user

    device = totp_factory(hanako)
    device.name = "work phone call ０１２０－９８７－６５４ or 03 1234 5678"
    device.save()
    remove_factor(None, user=hanako, device=device, by_staff=staff_user("desk"), reason="she lost it")
    notice = Notification.objects.filter(user=hanako, kind="factor_removed").latest("pk")
    body = build_message(notice).body
    assert "work phone" in body, body
    assert "654" not in body and "5678" not in body, body


def test_held_one_relayed_code_is_accepted_once_across_two_of_the_thiefs_sessions(
    new_browser_api: Any, hanako: Any, totp_factory: Any
) -> None:
    """Held: the one code the phishing proxy relays verifies one session; a second browser (or a second
    sign-in of the same kit) posting the same code in the same 30-second step is refused (last_t)."""
    of_long_standing(hanako)
    hanako.totp = old_totp(hanako, totp_factory)
    code = totp_token(hanako.totp)
    first = new_browser_api(IP_OSAKA)
    first.login("hanako", HANAKO_PASSWORD)
    second = new_browser_api(IP_OSAKA)
    second.login("hanako", HANAKO_PASSWORD)
    assert first.post("/authguard/api/step-up/totp", {"code": code}).status_code == 200
    assert second.post("/authguard/api/step-up/totp", {"code": code}).status_code != 200
    # The second session changes nothing with the spent code.
    assert second.post("/authguard/api/passkeys/options").status_code in (401, 403)


def test_held_a_relayed_code_does_not_replace_her_app_or_mint_over_it_from_another_front(
    new_browser_api: Any, hanako: Any, totp_factory: Any
) -> None:
    """Held: one relayed code neither begins an app enrollment that would replace hers (JSON or the HTML
    page) nor removes her app through the JSON API."""
    of_long_standing(hanako)
    hanako.totp = old_totp(hanako, totp_factory)
    thief = thief_with_one_code(new_browser_api, hanako.totp)
    assert thief.post("/authguard/api/totp").status_code in (400, 401, 403)
    page = thief.client.get("/authguard/security/totp/")
    assert page.status_code == 302
    assert not TOTPDevice.objects.filter(user=hanako, confirmed=False).exists()
    removed = thief.post("/authguard/api/factors/remove", {"id": hanako.totp.persistent_id})
    assert removed.status_code in (400, 401, 403)
    assert TOTPDevice.objects.filter(pk=hanako.totp.pk, confirmed=True).exists()


def test_held_two_passkeys_added_with_one_code_both_cool_off_for_days_and_she_drops_both(
    new_browser_api: Any, hanako: Any, totp_factory: Any, clock: Any
) -> None:
    """Held: a second passkey registered with the first on one relayed code cools off as long as the first
    (two weeks: nothing vouched for his browser), and her app, re-verified, removes each of them."""
    of_long_standing(hanako)
    hanako.totp = old_totp(hanako, totp_factory)
    thief = thief_with_one_code(new_browser_api, hanako.totp)
    assert _register_named(thief, new_key(), "a").status_code == 201
    assert _register_named(thief, new_key(), "b").status_code == 201
    his = list(PasskeyDevice.objects.filter(user=hanako))
    assert len(his) == 2
    clock.shift(3 * 24 * 3600)
    assert all(inventory.factor_is_cooling_off(p) for p in his)
    her = new_browser_api(IP_TOKYO)
    her.login("hanako", HANAKO_PASSWORD)
    for passkey in his:
        # one change per verification: she verifies before each removal (a fresh step each time)
        clock.shift(31)
        assert her.post("/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)}).status_code == 200
        removed = her.post("/authguard/api/factors/remove", {"id": passkey.persistent_id})
        assert removed.status_code == 200, removed.content
    assert not PasskeyDevice.objects.filter(user=hanako).exists()
    assert wrong_code(hanako.totp)  # her app is untouched


def test_held_his_registration_reusing_her_passkeys_credential_id_does_not_take_her_passkey_over(
    new_browser_api: Any, hanako: Any, totp_factory: Any, clock: Any
) -> None:
    """Held: her passkey's credential id is no secret (the step-up options list it to anyone with her
    password); his authenticator registering a credential under that id with his own key is refused, and
    her passkey keeps its public key."""
    of_long_standing(hanako)
    hanako.totp = old_totp(hanako, totp_factory)
    her_key = new_key()
    her = new_browser_api(IP_TOKYO)
    her.login_usual("hanako", HANAKO_PASSWORD)
    assert her.post("/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)}).status_code == 200
    assert _register_named(her, her_key, "mine").status_code == 201
    hers = PasskeyDevice.objects.get(user=hanako)
    key_before = bytes(hers.public_key)
    clock.shift(31)  # her code of this step is spent; the proxy relays the next one
    thief = thief_with_one_code(new_browser_api, hanako.totp)
    options = thief.post("/authguard/api/passkeys/options")
    assert options.status_code == 200, options.content  # one relayed code may add a passkey
    forged = new_key().create(options.json(), credential_id=her_key.credentials[0].credential_id)
    assert thief.post("/authguard/api/passkeys", forged).status_code == 400
    hers.refresh_from_db()
    assert bytes(hers.public_key) == key_before
    assert PasskeyDevice.objects.filter(user=hanako).count() == 1
