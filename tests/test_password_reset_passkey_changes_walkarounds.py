"""Red team round thirty-nine (b): the recovery paths as a takeover route.

Attacker model C: the thief controls one of the customer's mailboxes (a phished webmail password), not her
phone or passkey. He may also know the password (model A), and may relay one code (model B).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core import mail
from django.test import Client

from authguard.models import Notification, PasskeyDevice
from authguard.testing import SoftAuthenticator

from .conftest import IP_OSAKA, IP_TOKYO, UA_CHROME_WIN, register_passkey
from .test_email_change import _change_email, verified_customer
from .test_previous_addresses import _changed

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]

UA_THIEF = "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0"
LINK = re.compile(r"/password/reset/([^/\s]+)/([^/\s]+)/")


def _reset_links() -> dict[str, list[tuple[str, str]]]:
    """The reset links in the mail outbox, by recipient."""
    found: dict[str, list[tuple[str, str]]] = {}
    for message in mail.outbox:
        for uid, token in LINK.findall(message.body):
            if token in ("sent", "complete"):
                continue
            for to in message.to:
                found.setdefault(to.lower(), []).append((uid, token))
    return found


def _use_link(client: Client, uid: str, token: str, password: str) -> int:
    """Follow a reset link (Django swaps the token for a session marker) and set ``password``."""
    first = client.get(f"/password/reset/{uid}/{token}/")
    if first.status_code != 302:
        return first.status_code
    answer = client.post(first["Location"], {"new_password1": password, "new_password2": password})
    return answer.status_code


def test_after_she_moves_off_her_phished_mailbox_only_the_old_mailbox_gets_reset_links(
    user_factory: Any, browser_at: Any, settings: Any
) -> None:
    """Secure: a customer whose webmail was phished moves her account to a new address, confirming the change
    with her own passkey of long standing (the phishing-resistant path; model C's thief cannot make it). For
    the whole cooling-off that follows (24 h, moved later by every factor she adds to secure herself),
    authguard's reset form mails the link *only* to the dropped address (``send_mail``: ``previous_addresses(
    user) or [to_email]``): her own request with her new address mails the thief's inbox, never hers, and the
    thief's request with the old address hands him a link. He sets a new password: every session of hers
    ends, the passkey she added on her new phone after the move (cooling off) is revoked, and she cannot get a
    link herself. What should have happened: a change confirmed with a trusted passkey makes the new address
    the one reset links go to (at least hers, when she asks with it), and the address she dropped gets none.
    The attacker had: her old mailbox only (no password, no factor)."""
    user, her = verified_customer(user_factory, browser_at, settings, "alice")
    assert user.email == "alice@example.jp"  # the phished webmail
    _change_email(her, "alice.new@example.jp")  # confirmed with her passkey of long standing
    user.refresh_from_db()
    assert user.email == "alice.new@example.jp"
    # She also adds a passkey on her new phone (from her verified session): it cools off with the account.
    phone = SoftAuthenticator(origin="http://localhost:8000", rp_id="localhost")
    added = register_passkey(her, phone)
    mail.outbox.clear()

    # She asks for a reset with her new address; the thief asks with the old one.
    Client(REMOTE_ADDR=IP_TOKYO, HTTP_USER_AGENT=UA_CHROME_WIN).post(
        "/password/reset/", {"email": "alice.new@example.jp"}
    )
    thief = Client(REMOTE_ADDR=IP_OSAKA, HTTP_USER_AGENT=UA_THIEF)
    thief.post("/password/reset/", {"email": "alice@example.jp"})
    links = _reset_links()

    taken = False
    if links.get("alice@example.jp"):
        uid, token = links["alice@example.jp"][-1]
        taken = _use_link(thief, uid, token, "thief-chose-this-1") == 302
    user.refresh_from_db()
    revoked = added.status_code == 201 and PasskeyDevice.objects.filter(user=user).count() == 1
    told = Notification.objects.filter(kind="password_changed").values_list("to_email", flat=True)
    assert "alice.new@example.jp" in links and not taken, (
        f"reset links went to {sorted(links)}; her own request with her current address reached "
        f"{'it' if 'alice.new@example.jp' in links else 'only the dropped (phished) mailbox'}; the thief set "
        f"her password with the link from her old mailbox: {taken}; the passkey she added after the move "
        f"revoked by his reset: {revoked}; notices of his reset to "
        f"{sorted(set(told))}"
    )


def test_after_she_takes_her_address_back_the_thiefs_dropped_address_still_gets_reset_links(
    user_factory: Any, browser_at: Any, settings: Any
) -> None:
    """Secure: the thief moved her account to his address (the e-mail change's two-factor path, which one
    phishing page relaying two codes meets: docs/factor-lifecycle.md accepts it and promises "her reset by
    e-mail ends his sessions and revokes what he added"). hanako, told on her old address, does more than
    that: she signs in with her passkey of long standing, takes her address back (confirmed with that
    passkey) and adds a new passkey. Her change only *extends* the cooling-off (its start stays), and every
    address dropped in it, his included, stays among ``previous_addresses``: for the next 24 h the reset form
    mails *his* address a link whenever he asks (``get_users`` matches it, ``send_mail`` mails every previous
    address). He resets her password: her sessions end and the passkey she just added is revoked. What
    should have happened: once her address is back, confirmed with her own trusted passkey, the address she
    replaced (his) gets no reset link. The attacker had: the password, two relayed codes once (for his
    change, stood in here by her session), his own mailbox."""
    user, her = verified_customer(user_factory, browser_at, settings, "alice")
    _change_email(her, "thief@evil.example")  # stands for the thief's two-factor change (accepted)
    _change_email(her, "alice@example.jp")  # she takes it back, confirmed with her passkey of long standing
    user.refresh_from_db()
    assert user.email == "alice@example.jp"
    phone = SoftAuthenticator(origin="http://localhost:8000", rp_id="localhost")
    added = register_passkey(her, phone)  # she secures the account with a new passkey
    assert added.status_code == 201, added.content
    mail.outbox.clear()

    thief = Client(REMOTE_ADDR=IP_OSAKA, HTTP_USER_AGENT=UA_THIEF)
    thief.post("/password/reset/", {"email": "thief@evil.example"})
    links = _reset_links()
    taken = False
    if links.get("thief@evil.example"):
        uid, token = links["thief@evil.example"][-1]
        taken = _use_link(thief, uid, token, "thief-chose-this-2") == 302
    passkeys = PasskeyDevice.objects.filter(user=user).count()
    assert "thief@evil.example" not in links and not taken, (
        f"after she took her address back, the thief's dropped address got reset links ({sorted(links)}); "
        f"he set her password with it: {taken}; her passkeys left: {passkeys} of 2"
    )


def test_held_the_password_his_reset_set_signs_him_in_only_to_a_step_up_with_her_passkey(
    user_factory: Any, browser_at: Any, settings: Any
) -> None:
    """The thief of the first test (her old mailbox) resets her password in the cooling-off, then signs in
    with it from his own browser: the reset link signed nothing in by itself (no ``post_reset_login``), and
    his login is held at a step-up only her passkey passes, so no order goes through."""
    user, her = verified_customer(user_factory, browser_at, settings, "alice")
    # Moved off without her passkey (the two-factor path): the old mailbox still gets the links (the design).
    _changed(user, "alice.new@example.jp")
    mail.outbox.clear()
    thief = Client(REMOTE_ADDR=IP_OSAKA, HTTP_USER_AGENT=UA_THIEF)
    thief.post("/password/reset/", {"email": "alice@example.jp"})
    uid, token = _reset_links()["alice@example.jp"][-1]
    assert _use_link(thief, uid, token, "thief-chose-this-3") == 302
    assert "_auth_user_id" not in thief.session
    login = thief.post(
        "/api/login",
        {"username": "alice", "password": "thief-chose-this-3"},
        content_type="application/json",
    )
    body = login.json() if login.headers.get("Content-Type", "").startswith("application/json") else {}
    assert body.get("status") != "ok", login.content
    order = thief.post(
        "/api/orders", {"side": "sell", "symbol": "7203", "quantity": 1}, content_type="application/json"
    )
    assert order.status_code in (401, 403), order.content


def test_held_with_her_mailbox_the_thiefs_reset_deletes_her_first_app_but_he_binds_none_of_his_own(
    user_factory: Any, browser_at: Any, clock: Any
) -> None:
    """Held: hanako (a customer for a year, no factor until now) sets up her first authenticator app on a
    low-risk sign-in from a browser the account has not known for a month: it cools off for 14 days. Two days
    later the thief, with her password and her phished webmail (model C), resets the password by e-mail. The
    reset revokes her app (cooling off) and, no factor being left, forgets the account's first factor
    (``_forget_a_first_factor_never_established``). He then signs in with the new password from a new
    browser in her city to bind the account's first factor himself: the sign-in is scored "password
    changed" and "factor changed" and, with no factor to step up with, refused; nothing of his is bound.
    (Her app is gone all the same: the reset proves the mailbox, not the customer.)"""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from .conftest import api_post, of_long_standing, totp_token

    alice = of_long_standing(user_factory("alice"))
    her = browser_at(IP_TOKYO, UA_CHROME_WIN)
    her.sign_in("alice")
    assert her.session["_authguard"]["lr"] is True
    assert api_post(her, "api-totp").status_code == 200
    app = TOTPDevice.objects.get(user=alice)
    clock.shift(2)
    confirmed = api_post(her, "api-totp-confirm", {"code": totp_token(app)})
    assert confirmed.status_code == 201 and confirmed.json()["totp"]["cooling_off"] is True
    clock.shift(2 * 24 * 3600)

    mail.outbox.clear()
    thief = browser_at(IP_TOKYO, UA_THIEF)  # a residential proxy in her city, his own browser
    thief.post("/password/reset/", {"email": "alice@example.jp"})
    uid, token = _reset_links()["alice@example.jp"][-1]
    assert _use_link(thief, uid, token, "thief-chose-this-4") == 302
    clock.shift(60)
    thief.sign_in("alice", "thief-chose-this-4")
    begun = api_post(thief, "api-totp")
    bound = None
    if begun.status_code == 200:
        his = TOTPDevice.objects.filter(user=alice).exclude(pk=app.pk).first()
        clock.shift(2)
        bound = api_post(thief, "api-totp-confirm", {"code": totp_token(his)}).status_code if his else None
    left = list(TOTPDevice.objects.filter(user=alice).values_list("pk", flat=True))
    told = sorted(set(Notification.objects.filter(user=alice).values_list("to_email", flat=True)))
    assert bound != 201, (
        f"the thief's reset deleted her first app (hers left: {app.pk in left}) and he bound his own as the "
        f"account's first factor (begin {begun.status_code}, confirm {bound}); notices went to {told}"
    )
