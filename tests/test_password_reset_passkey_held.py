"""Red team round forty (a): held attacks on round thirty-nine's reset rule (a change confirmed with her
passkey is hers)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from authguard.factors import inventory
from authguard.models import PasskeyDevice, PreviousEmail
from authguard.testing import SoftAuthenticator

from .conftest import HANAKO_PASSWORD, IP_OSAKA, OrderApi, of_long_standing, totp_token
from .test_email_change import _change_email, verified_customer
from .test_previous_addresses import _changed

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]

UA_THIEF = "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0"
LINK = re.compile(r"/password/reset/([^/\s]+)/([^/\s]+)/")


def _links_for(entered: str) -> set[str]:
    mail.outbox.clear()
    Client(REMOTE_ADDR=IP_OSAKA, HTTP_USER_AGENT=UA_THIEF).post("/password/reset/", {"email": entered})
    return {
        to.lower()
        for message in mail.outbox
        if any(token not in ("sent", "complete") for _uid, token in LINK.findall(message.body))
        for to in message.to
    }


def test_held_the_thiefs_cooling_off_passkey_makes_no_e_mail_change_let_alone_a_by_passkey_one(
    brokerage_customer: Any, totp_factory: Any, clock: Any, settings: Any
) -> None:
    """Model C: hanako has her app of a year and no passkey. The thief with her password relays one code and
    adds a passkey of his own (it cools off). With a fresh verification by that passkey the e-mail change is
    refused; adding a second relayed code from her app does not make his passkey the "other factor" of the
    two-factor path either. Nothing is remembered as passkey-confirmed."""
    settings.AUTHGUARD_WEBAUTHN_RP_ID = "localhost"
    settings.AUTHGUARD_WEBAUTHN_ORIGINS = ["http://localhost:8000"]
    customer = of_long_standing(brokerage_customer(holdings={"7203": 100}))
    app = totp_factory(customer)
    TOTPDevice.objects.filter(pk=app.pk).update(created_at=timezone.now() - timedelta(days=365))
    app.refresh_from_db()
    thief = OrderApi(REMOTE_ADDR=IP_OSAKA, HTTP_USER_AGENT=UA_THIEF)
    thief.login("hanako", HANAKO_PASSWORD)
    assert thief.post("/authguard/api/step-up/totp", {"code": totp_token(app)}).status_code == 200
    his = SoftAuthenticator(origin="http://localhost:8000", rp_id="localhost")
    thief.register_passkey(his)
    assert PasskeyDevice.objects.filter(user=customer).count() == 1
    clock.shift(40)
    options = thief.post("/authguard/api/step-up/passkey/options")
    assert options.status_code == 200, options.content
    assert thief.post("/authguard/api/step-up/passkey", his.get(options.json())).status_code == 200
    refused = thief.post("/authguard/api/email", {"email": "thief@evil.example"})
    assert refused.status_code == 403, refused.content
    clock.shift(40)
    assert thief.post("/authguard/api/step-up/totp", {"code": totp_token(app)}).status_code == 200
    second = thief.post("/authguard/api/email", {"email": "thief@evil.example"})
    assert second.status_code == 403, second.content
    customer.refresh_from_db()
    assert customer.email != "thief@evil.example"
    assert not PreviousEmail.objects.filter(account_id=customer.pk, by_passkey=True).exists()


def test_held_back_and_forth_with_her_passkey_in_any_case_keeps_the_links_on_her_current_address(
    user_factory: Any, browser_at: Any, settings: Any, clock: Any
) -> None:
    """Model D: her A->B, B->a (A in another case), a->C, all with her passkey of long standing inside one
    cooling-off: every link goes to her current address only, whichever address is entered."""
    user, her = verified_customer(user_factory, browser_at, settings, "alice")
    clock.shift(timedelta(seconds=30))
    a = user.email
    b, c = "alice.b@example.jp", "alice.c@example.jp"
    _change_email(her, b)
    clock.shift(timedelta(minutes=1))
    _change_email(her, a.upper().replace("EXAMPLE.JP", "example.jp"))
    clock.shift(timedelta(minutes=1))
    _change_email(her, c)
    user.refresh_from_db()
    assert user.email == c
    for entered in (a, a.upper(), b, c):
        got = _links_for(entered)
        assert got <= {c}, (entered, got)
    assert _links_for(c) == {c}


def test_held_weak_changes_before_her_passkey_change_get_no_link_even_past_the_cap(
    user_factory: Any, browser_at: Any, settings: Any, clock: Any
) -> None:
    """Model D: five changes without a passkey (the bound) fill the running cooling-off; then she takes a new
    address with her passkey of long standing: the link goes to it alone, the five dropped addresses (a
    thief's) get none."""
    user, her = verified_customer(user_factory, browser_at, settings, "alice")
    clock.shift(timedelta(seconds=30))
    thiefs = [f"thief{n}@evil.example" for n in range(7)]
    for address in thiefs:
        _changed(user, address)
        clock.shift(timedelta(seconds=5))
    user.refresh_from_db()
    # Her passkey, older than the cooling-off, is established: she changes the address with it.
    from .conftest import passkey_step_up  # noqa: F401 (her session is already fresh)

    _change_email(her, "alice.safe@example.jp")
    user.refresh_from_db()
    assert user.email == "alice.safe@example.jp"
    assert inventory.reset_addresses(user) == ["alice.safe@example.jp"]
    for entered in thiefs:
        assert _links_for(entered) == set(), entered
    assert _links_for("alice.safe@example.jp") == {"alice.safe@example.jp"}
