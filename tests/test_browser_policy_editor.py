"""The policy editor in a real Chromium, in English and in Japanese (issue 16, acceptance 2).

A security analyst signs in, verifies the console session with a passkey (real WebAuthn through Chromium's
virtual authenticator), opens the policy editor, changes the step-up threshold, previews the backtest and
sees the change listed beside it (old → new), and asks for the policy: with four eyes it waits for a second
staff member; without, it is in force at once. Enter in a field only reviews: it never asks for anything.

Selectors are ids and field names, so the same steps run in both languages; the Japanese run checks that
the page is served in Japanese (the admin's own strings come from Django's catalogue).
"""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone, translation

from authguard.models import PolicyVersion, StaffApproval
from authguard.risk.policy import current_policy

from .browser import Browser, browser_site_fixture, chrome_fixture  # noqa: F401 (fixtures)
from .conftest import IP_TOKYO
from .console_data import build_history

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ADD = "/admin/authguard/policyversion/add/"


@pytest.fixture
def analyst(django_user_model: Any) -> Any:
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user(
        "analyst", email="analyst@example.jp", password="correct horse battery", is_staff=True
    )
    for codename in ("add_policyversion", "view_policyversion", "view_loginevent", "view_staffapproval"):
        user.user_permissions.add(Permission.objects.get(codename=codename))
    return user


def verified_console(browser: Browser, *, language: str) -> None:
    """Sign in as the analyst, add a passkey, and verify the console session with it."""
    browser.add_authenticator()
    browser.get("/login/")
    browser.driver.add_cookie({"name": "django_language", "value": language, "path": "/"})
    browser.sign_in("analyst")
    browser.wait_for_path("/")
    browser.enroll_passkey("Analyst laptop")
    browser.get(ADD)
    browser.click("#verify-passkey")
    browser.wait_for_path_prefix("/authguard/step-up/passkey/")
    browser.click("[data-authguard-start]")
    browser.wait_for_path(ADD)
    assert browser.authguard_state()["sm"] == "passkey"


@pytest.mark.parametrize(("language", "four_eyes"), [("en", True), ("ja", False)])
def test_an_analyst_changes_the_step_up_threshold_with_a_backtest_preview(
    chrome: Any, analyst: Any, settings: Any, user_factory: Any, language: str, four_eyes: bool
) -> None:
    from selenium.webdriver.common.keys import Keys

    settings.AUTHGUARD_CONSOLE_NEW_PASSKEY_HOURS = 0  # a new desk passkey opens the console at once
    if not four_eyes:
        settings.AUTHGUARD_FOUR_EYES = {"ACTIONS": []}
    user_factory("alice")
    build_history({"alice": "correct horse battery"}, now=timezone.now())  # what the backtest replays

    browser: Browser = chrome(ip=IP_TOKYO)
    verified_console(browser, language=language)
    assert browser.find("html").get_attribute("lang") == language
    if language == "ja":
        with translation.override("ja"):
            home = translation.gettext("Home")
        assert home != "Home" and home in browser.visible_text(".breadcrumbs")

    # One fieldset per signal; the thresholds start from the policy in force.
    assert browser.visible("#signal-UnusualHour") and browser.visible("#signal-ImpossibleTravel")
    assert browser.find("#id_step_up").get_attribute("value") == "40"
    assert not browser.find_all('[name="_addanother"]') and not browser.find_all('[name="_continue"]')

    # Enter in a field reviews the change (nothing is asked for).
    browser.fill("#id_comment", "Tighten during the phishing campaign")
    browser.fill("#id_step_up", "30")
    browser.find("#id_step_up").send_keys(Keys.ENTER)
    browser.visible("#policy-diff tr.pe-change")
    assert not StaffApproval.objects.exists()

    # The backtest preview beside the list of changes.
    browser.click("#policy-backtest-button")
    browser.visible("#backtest-result")
    proposed = browser.visible_text('#backtest-result [data-metric="friction-proposed"]')
    assert proposed.isdigit()
    rows = [row.text for row in browser.find_all("#policy-diff tr.pe-change")]
    assert len(rows) == 1 and "40" in rows[0] and "30" in rows[0], rows
    assert browser.find("#id_step_up").get_attribute("value") == "30"
    assert not StaffApproval.objects.exists() and not PolicyVersion.objects.exists()

    browser.click("#policy-confirm-button")
    if four_eyes:
        browser.wait_for_path_prefix("/admin/authguard/staffapproval/")
        approval = StaffApproval.objects.get()
        assert approval.status == "pending" and approval.payload["thresholds"] == {"step_up": 30, "deny": 100}
        assert not PolicyVersion.objects.exists()
    else:
        browser.wait_for_path("/admin/authguard/policyversion/")
        version = PolicyVersion.objects.get()
        assert version.thresholds == {"step_up": 30, "deny": 100} and version.created_by == analyst
        assert current_policy().thresholds.step_up == 30
    assert not [e for e in browser.console_errors() if "403" not in e]
