"""Red team round forty (a): where the password reset's link goes after an e-mail change made through the
sensitive-action flow (``contact_change``, always confirmed with a passkey not cooling off)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client
from django.urls import reverse

from authguard.actions import flow as actions
from authguard.factors import inventory
from authguard.models import HeldAction, PasskeyDevice
from authguard.testing import SoftAuthenticator

from .actions_support import *  # noqa: F403
from .actions_support import confirm_action, guard_in_session
from .conftest import IP_OSAKA

pytestmark = pytest.mark.django_db

UA_THIEF = "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0"
LINK = re.compile(r"/password/reset/([^/\s]+)/([^/\s]+)/")
NEW = "hanako.new@example.jp"


class EmailExecutor:
    """A portal's executor that carries out a confirmed ``contact_change`` of the e-mail address (what a
    portal using the sensitive-action flow for it does) and leaves every other kind to the demo's."""

    def execute(self, action: HeldAction) -> str:
        from demo_site.brokerage.money import action_executor

        params = actions.stored_action(action)["params"]
        if action.kind != "contact_change":
            return action_executor.execute(action)
        user = get_user_model().objects.get(pk=action.user_id)
        setattr(user, get_user_model().get_email_field_name(), params["value"])
        user.save()
        return f"contact-{action.pk}"

    def release(self, action: HeldAction, *, status: str) -> None:
        from demo_site.brokerage.money import action_executor

        action_executor.release(action, status=status)


email_executor = EmailExecutor()


def _reset_links() -> dict[str, list[tuple[str, str]]]:
    found: dict[str, list[tuple[str, str]]] = {}
    for message in mail.outbox:
        for uid, token in LINK.findall(message.body):
            if token in ("sent", "complete"):
                continue
            for to in message.to:
                found.setdefault(to.lower(), []).append((uid, token))
    return found


def _use_link(client: Client, uid: str, token: str, password: str) -> int:
    first = client.get(f"/password/reset/{uid}/{token}/")
    if first.status_code != 302:
        return first.status_code
    return client.post(first["Location"], {"new_password1": password, "new_password2": password}).status_code


def test_after_she_moves_off_her_phished_mailbox_through_the_action_flow_only_that_mailbox_gets_links(
    customer: Any, hanako: Any, settings: Any
) -> None:
    """Secure: hanako's webmail was phished. Her portal changes e-mail addresses through authguard's
    sensitive-action flow (``contact_change``, ``field: email``; docs/sensitive-actions.md), which only her
    passkey not cooling off can confirm (never a code, never a cooling-off passkey, never one newer than the
    action). She moves her account to a new address and confirms with her passkey of long standing, then
    adds a passkey on her new phone. ``_carried_out`` records the change with ``note_contact_changed(...,
    by_passkey=False)``, so ``reset_addresses`` treats it as a change by two relayed codes: for the whole
    cooling-off the reset link goes only to the mailbox she left. Her own request with her new address mails
    the thief's inbox, and the thief's request hands him a link: he sets her password, ending her sessions
    and revoking the passkey she just added. What should have happened: a change confirmed through the flow
    with her passkey counts as passkey-confirmed (round thirty-nine's rule): the link goes to her new address
    and the mailbox she left gets none. The attacker had: her old mailbox only."""
    settings.AUTHGUARD_ACTION_EXECUTOR = "tests.test_password_reset_action_flow_walkarounds.email_executor"
    client, authenticator = customer
    old = hanako.email
    held = guard_in_session(client, hanako, kind="contact_change",
                            params={"account": "1", "field": "email", "value": NEW})  # fmt: skip
    assert isinstance(held, actions.Held)
    done = confirm_action(client, str(held.action.pk), authenticator)
    assert done.status_code == 200, done.content
    hanako.refresh_from_db()
    assert hanako.email == NEW and inventory.in_cooling_off(hanako)
    # She adds a passkey on her new phone: it cools off with the account.
    phone = SoftAuthenticator(origin="http://localhost:8000", rp_id="localhost")
    options = client.post(reverse("authguard:api-step-up-passkey-options"))
    assert (
        client.post(reverse("authguard:api-step-up-passkey"), authenticator.get(options.json())).status_code
        == 200
    )
    added = client.post(
        "/authguard/api/passkeys", phone.create(client.post("/authguard/api/passkeys/options").json())
    )
    assert added.status_code == 201, added.content
    mail.outbox.clear()

    Client(HTTP_USER_AGENT=client.client.defaults.get("HTTP_USER_AGENT", "")).post(
        "/password/reset/", {"email": NEW}
    )
    her_request = _reset_links()
    thief = Client(REMOTE_ADDR=IP_OSAKA, HTTP_USER_AGENT=UA_THIEF)
    thief.post("/password/reset/", {"email": old})
    links = _reset_links()
    taken = False
    if links.get(old.lower()):
        uid, token = links[old.lower()][-1]
        taken = _use_link(thief, uid, token, "thief-chose-this-40a") == 302
    passkeys = PasskeyDevice.objects.filter(user=hanako).count()
    assert NEW in her_request and not taken, (
        f"reset_addresses={inventory.reset_addresses(hanako)}; "
        f"her request with {NEW} mailed {sorted(her_request)}; "
        f"all links went to {sorted(links)}; the thief set her password with the link from her old mailbox: "
        f"{taken}; her passkeys left: {passkeys} (added on her phone: {added.status_code})"
    )


def test_after_she_takes_her_address_back_through_the_action_flow_the_thiefs_address_still_gets_links(
    customer: Any, hanako: Any, settings: Any
) -> None:
    """Secure: the thief moved hanako's account to his address by authguard's two-factor e-mail change (stood
    in here by ``note_contact_changed`` as that confirmation calls it: round thirty-nine's own test does the
    same). Told on her address, she takes it back through her portal's e-mail form, which is the
    sensitive-action flow's ``contact_change`` confirmed with her passkey of long standing (never a code,
    never a cooling-off factor). The flow records it ``by_passkey=False``: for the rest of the cooling-off
    the reset form mails *his* dropped address a link whenever he asks (``reset_addresses`` = every address
    dropped without a passkey). He uses it: her password is his choice again and her sessions end. What
    should have happened: as on authguard's own e-mail page, her passkey-confirmed change closes the
    addresses before it; his gets no link. The attacker had: the password and two relayed codes once (his
    change), his own mailbox."""
    from authguard.factors import lifecycle

    settings.AUTHGUARD_ACTION_EXECUTOR = "tests.test_password_reset_action_flow_walkarounds.email_executor"
    client, authenticator = customer
    hers = hanako.email
    # The thief's change (two relayed codes, accepted in docs/factor-lifecycle.md).
    hanako.email = "thief@evil.example"
    hanako.save(update_fields=["email"])
    lifecycle.note_contact_changed(hanako, old_email=hers)
    hanako.refresh_from_db()
    held = guard_in_session(client, hanako, kind="contact_change",
                            params={"account": "1", "field": "email", "value": hers})  # fmt: skip
    assert isinstance(held, actions.Held)
    done = confirm_action(client, str(held.action.pk), authenticator)
    assert done.status_code == 200, done.content
    hanako.refresh_from_db()
    assert hanako.email == hers
    mail.outbox.clear()
    thief = Client(REMOTE_ADDR=IP_OSAKA, HTTP_USER_AGENT=UA_THIEF)
    thief.post("/password/reset/", {"email": "thief@evil.example"})
    links = _reset_links()
    taken = False
    if links.get("thief@evil.example"):
        uid, token = links["thief@evil.example"][-1]
        taken = _use_link(thief, uid, token, "thief-chose-this-40a2") == 302
    assert "thief@evil.example" not in links and not taken, (
        f"after she took her address back with her passkey (action flow), reset_addresses="
        f"{inventory.reset_addresses(hanako)}; links went to {sorted(links)}; he set her password: {taken}"
    )
