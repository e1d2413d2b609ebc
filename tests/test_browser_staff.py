"""The staff member's own path into the security console, in a real Chromium (issue 10, staff part).

A staff member signs in with the password, is held at the console's passkey page, adds a passkey on the
security page (a first factor, from a session the risk engine allowed outright), and then verifies with it:
the passkey step-up leads back to the console page asked for, with no loop and no error page.
"""

from __future__ import annotations

from typing import Any

import pytest

from .browser import Browser, browser_site_fixture, chrome_fixture  # noqa: F401 (fixtures)
from .conftest import IP_TOKYO

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def desk(django_user_model: Any) -> Any:
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user(
        "desk", email="desk@example.jp", password="correct horse battery", is_staff=True
    )
    user.user_permissions.add(Permission.objects.get(codename="view_heldorder"))
    return user


def test_staff_add_a_passkey_verify_with_it_and_reach_the_console(chrome: Any, desk: Any, settings: Any):
    settings.AUTHGUARD_CONSOLE_NEW_PASSKEY_HOURS = 0  # as in the demo: a new desk passkey opens it at once
    browser: Browser = chrome(ip=IP_TOKYO)
    browser.add_authenticator()
    browser.sign_in("desk")
    browser.wait_for_path("/")

    # The password alone: the console asks for a passkey, and there is none yet.
    browser.get("/admin/authguard/heldorder/")
    assert browser.find_all("#enroll-passkey") and not browser.find_all("#verify-passkey")
    browser.enroll_passkey("Desk laptop")

    # With a passkey: verify, and land on the page asked for.
    browser.get("/admin/authguard/heldorder/")
    browser.click("#verify-passkey")
    browser.wait_for_path_prefix("/authguard/step-up/passkey/")
    browser.click("[data-authguard-start]")
    browser.wait_for_path("/admin/authguard/heldorder/")
    assert browser.visible_text("#content h1") == "Select held order to view"
    assert browser.authguard_state()["sm"] == "passkey"
    # The only console errors are the two 403 answers of the passkey page itself (by design, never cached).
    errors = browser.console_errors()
    assert len(errors) == 2 and all("403" in error for error in errors), errors
