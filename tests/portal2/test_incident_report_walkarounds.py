"""The desk's incident report after the gang moved the login name (portal two, where the e-mail address is
the login name; red team round 34 (a), fixed): during the cooling-off it finds the account by an address it
had before the change, as the password reset does."""

from __future__ import annotations

from typing import Any

import pytest
import time_machine
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from ..conftest import IP_TOKYO, IP_US_HOME, UA_CHROME_WIN, UA_IPHONE, api_post, totp_token
from .support import browser, staff_console

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]


def mailed_code() -> str:
    return next(word for word in mail.outbox[-1].body.split() if word.isdigit() and len(word) == 8)


def test_the_incident_report_finds_a_taken_over_account_by_the_customers_own_address(
    alice_with_totp: Any, user_factory: Any
) -> None:
    """A phishing page relays hanako's password, a TOTP code and one of her recovery codes and the gang
    moves her login name to its own mailbox. She calls the desk at once: "my account alice@example.jp was
    taken over". The incident report looked the account up by the login name only and answered "No account
    'alice@example.jp'".

    Fixed: during the cooling-off of an e-mail change the incident report (like the reset) also finds the
    account by a previous address (``PreviousEmail``), the customer's own; once the cooling-off is over
    the old address names no account any more.
    """
    alice = alice_with_totp
    desk = user_factory("desk", is_staff=True, is_superuser=True)
    with time_machine.travel(timezone.now(), tick=False) as clock:
        home = browser(IP_TOKYO, UA_CHROME_WIN)
        assert home.sign_in("alice@example.jp").url == "/"
        assert api_post(home, "api-step-up-totp", {"code": totp_token(alice.totp)}).status_code == 200
        codes = api_post(home, "api-recovery-codes").json()["codes"]
        clock.shift(3 * 24 * 3600)

        thief = browser(IP_US_HOME, UA_IPHONE)
        assert thief.sign_in("alice@example.jp").url.startswith("/authguard/step-up/")
        assert api_post(thief, "api-step-up-totp", {"code": totp_token(alice.totp)}).status_code == 200
        assert api_post(thief, "api-email", {"email": "gang@mailbox.example"}).status_code in (401, 403)
        assert api_post(thief, "api-step-up-recovery-code", {"code": codes[0]}).status_code == 200
        begun = api_post(thief, "api-email", {"email": "gang@mailbox.example"})
        assert begun.status_code == 202, begun.content
        assert api_post(thief, "api-email-confirm", {"code": mailed_code()}).status_code == 200
        alice.refresh_from_db()
        assert alice.email == "gang@mailbox.example"  # the premise: the login name moved

        clock.shift(600)
        console = staff_console(desk)
        page = console.get(reverse("admin:authguard_incident"), {"user": "alice@example.jp"})
        assert page.status_code == 200
        assert b"No account" not in page.content
        assert page.context["account"] == alice
        assert (
            console.get(reverse("admin:authguard_incident"), {"user": "ALICE@example.jp"}).context["account"]
            == alice
        )  # any case, as the reset matches it

        clock.shift(60 * 24 * 3600)  # long after the cooling-off: the dropped address hears of nothing
        late = staff_console(desk).get(reverse("admin:authguard_incident"), {"user": "alice@example.jp"})
        assert late.status_code == 200 and late.context["account"] is None
        assert b"No account" in late.content
