"""Containment from the incident page in a real Chromium, in English and in Japanese (issue 16, acceptance 2).

A customer is signed in in her own browser. A security analyst signs in to the console in another browser,
verifies the session with her own passkey (a real WebAuthn ceremony with Chromium's virtual authenticator),
opens the customer's incident report, ends all of the customer's sessions and then locks the account. The
customer's open browser is signed out at its next page, and her right password no longer opens the account.

Expected texts are the catalogue's translations of the templates' strings (whatever they are at the time),
so the test checks that the pages use the catalogue, not any particular wording.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import translation
from django.utils.text import capfirst

from authguard.login import lockout
from authguard.models import AccountLock, StaffApproval

from .browser import PASSWORD, Browser, browser_site_fixture, chrome_fixture  # noqa: F401 (fixtures)
from .conftest import IP_OSAKA, IP_TOKYO
from .test_browser_japanese import choose_japanese

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

INCIDENT = "/admin/authguard/loginevent/incident/"
ANALYST_PERMS = ("view_user", "view_loginevent", "contain_account")


def in_language(text: str, language: str) -> str:
    with translation.override(language):
        return translation.gettext(text)


def label(text: str, language: str) -> str:
    """A staff action's name as a message starts with it (capitalised, as Django's ``capfirst``)."""
    return capfirst(in_language(text, language))


@pytest.fixture
def hanako(user_factory: Any) -> Any:
    """A customer with the browser tests' password (hanako@example.jp), no brokerage account."""
    return user_factory("hanako", password=PASSWORD)


@pytest.fixture
def analyst(django_user_model: Any) -> Any:
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user(
        "analyst", email="analyst@example.jp", password=PASSWORD, is_staff=True
    )
    for codename in ANALYST_PERMS:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    return user


def passkey_verified_console(chrome: Any, language: str) -> Browser:
    """The analyst's browser: password sign-in, a passkey added and then used to open the console."""
    browser: Browser = chrome(ip=IP_OSAKA)
    browser.add_authenticator()
    browser.sign_in("analyst")
    browser.wait_for_path("/")
    if language == "ja":
        choose_japanese(browser)
    browser.enroll_passkey("Desk laptop")
    browser.get(INCIDENT)
    browser.click("#verify-passkey")
    browser.wait_for_path_prefix("/authguard/step-up/passkey/")
    browser.click("[data-authguard-start]")
    browser.wait_for_path(INCIDENT)
    assert browser.authguard_state()["sm"] == "passkey"
    return browser


@pytest.mark.parametrize("language", ["en", "ja"])
def test_an_analyst_ends_the_sessions_and_locks_the_account_from_the_incident_page(
    chrome: Any, hanako: Any, analyst: Any, settings: Any, language: str
) -> None:
    settings.AUTHGUARD_CONSOLE_NEW_PASSKEY_HOURS = 0  # as in the demo: a new desk passkey opens it at once

    customer: Browser = chrome(ip=IP_TOKYO)
    customer.sign_in("hanako")
    customer.wait_for_path("/")
    assert customer.signed_in_user_id() == str(hanako.pk)

    desk = passkey_verified_console(chrome, language)
    desk.get(f"{INCIDENT}?user=hanako")
    assert desk.find("html").get_attribute("lang") == language
    assert desk.visible_text("#content h1") == in_language("Incident report", language)
    assert desk.visible_text("#contain-lock") == in_language("Lock account", language)
    assert desk.visible_text("#contain-end-sessions") == in_language("End all sessions", language)

    # End all sessions: the customer's open browser is signed out at its next page.
    desk.fill("#id_containment_reason", "phishing report from the customer")
    desk.click("#contain-end-sessions")
    message = desk.wait_for_text(
        ".messagelist .success", "1 session(s)"
    )  # the stored result, in any sentence
    assert message.startswith(label("end every session of an account", language))
    customer.get("/")
    customer.wait(lambda _d: customer.signed_in_user_id() is None, "the customer's session to be gone")
    assert not lockout.is_locked(hanako)

    # Lock the account: at once (only takes access away), and the right password no longer opens it.
    desk.fill("#id_containment_reason", "phishing report from the customer")
    desk.click("#contain-lock")
    message = desk.wait_for_text(".messagelist .success", "locked")
    assert message.startswith(label("lock an account", language))
    assert AccountLock.objects.get(user=hanako).is_locked
    assert desk.find("#containment-state").get_attribute("data-locked") == "1"
    customer.sign_in("hanako")
    assert customer.signed_in_user_id() is None
    assert list(StaffApproval.objects.order_by("pk").values_list("action", "status", "four_eyes")) == [
        ("end_sessions", "executed", False),
        ("lock_account", "executed", False),
    ]
    # Nothing but the passkey page's two deliberate 403 answers went wrong in the analyst's browser.
    errors = [e for e in desk.console_errors() if "403" not in e]
    assert not errors, errors
