"""Real-browser helpers: headless Chromium driven by chromedriver, with a CDP virtual authenticator.

The browser tests (``tests/test_browser_*.py``, marked ``browser``) run the demo portal in pytest-django's
``live_server`` on ``localhost`` (the WebAuthn RP ID of the test settings) and drive it through a real
Chromium: real pages, the real ``authguard/passkeys.js``, real WebAuthn ceremonies answered by Chromium's
virtual authenticator (the WebAuthn domain of the DevTools protocol, through WebDriver's extension).

Where a login comes from is set the way a reverse proxy would: loopback is trusted as a proxy for the test
and Chromium sends ``X-Forwarded-For`` on every request (``Network.setExtraHTTPHeaders``), so a test can sign
in "from Tokyo" and then "from a VPS in Singapore" with the tests' GeoIP databases. Chromium presents an
ordinary desktop Chrome user agent: the headless one is, rightly, an automation client to the risk engine.

Use the ``chrome`` fixture (a factory of :class:`Browser`); ``browser_site`` configures the site for it.
Test modules import them with ``from .browser import browser_site_fixture, chrome_fixture  # noqa: F401``:
pytest finds fixtures among a module's globals, and the ``_fixture`` names keep test parameters from
shadowing the imports.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import import_module
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings

from .conftest import IP_TOKYO, UA_CHROME_WIN

#: Where the Debian packages put them (``chromium``, ``chromium-driver``); PATH is searched first.
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
#: Longest wait for a page to reach an expected state (the CI machine may be slow and busy).
WAIT_SECONDS = 20
#: The password every browser-test account has.
PASSWORD = "correct horse battery"

CHROME_ARGUMENTS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-extensions",
    "--window-size=1280,1024",
    "--lang=en-US",
]


def session_store() -> Any:
    return import_module(django_settings.SESSION_ENGINE).SessionStore


class Browser:
    """One Chromium profile on the live server: navigation, waits, context headers and the authenticator."""

    def __init__(self, driver: Any, base_url: str) -> None:
        self.driver = driver
        self.base_url = base_url.rstrip("/")
        self.authenticator_id: str | None = None

    # -- navigation and waits ----------------------------------------------------------------------

    def url(self, path: str) -> str:
        return self.base_url + path

    def get(self, path: str) -> None:
        self.driver.get(self.url(path))

    @property
    def path(self) -> str:
        """The current URL's path and query, without the live server's origin."""
        current = str(self.driver.current_url)
        return current[len(self.base_url) :] if current.startswith(self.base_url) else current

    def wait(self, condition: Callable[[Any], Any], what: str, *, seconds: float = WAIT_SECONDS) -> Any:
        """Wait until ``condition(driver)`` is truthy; on timeout fail with the page and the console log."""
        from selenium.common.exceptions import (
            NoSuchElementException,
            StaleElementReferenceException,
            TimeoutException,
            WebDriverException,
        )
        from selenium.webdriver.support.ui import WebDriverWait

        def polled(driver: Any) -> Any:
            try:
                return condition(driver)
            except WebDriverException as error:
                # Chromium sometimes reports an element detached by the page being replaced as an
                # inspector error rather than a stale element (CI, 2026-12-04): the same race, so poll
                # again. Any other driver error still fails the test.
                if "does not belong to the document" in str(error.msg or ""):
                    return None
                raise

        # Elements go stale or missing while a page is replaced by the next: keep polling through that.
        ignored = (NoSuchElementException, StaleElementReferenceException)
        try:
            waiter = WebDriverWait(self.driver, seconds, poll_frequency=0.1, ignored_exceptions=ignored)
            return waiter.until(polled)
        except TimeoutException:
            pytest.fail(f"timed out waiting for {what}\n{self.diagnostics()}", pytrace=False)

    def wait_for_path(self, expected: str, **kwargs: Any) -> None:
        """Wait until the browser shows ``expected`` (a path, with its query if it has one)."""
        self.wait(lambda _d: self.path == expected, f"the page {expected!r}", **kwargs)

    def wait_for_path_prefix(self, prefix: str, **kwargs: Any) -> None:
        self.wait(lambda _d: self.path.startswith(prefix), f"a page under {prefix!r}", **kwargs)

    def find(self, css: str) -> Any:
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, css)

    def find_all(self, css: str) -> list[Any]:
        from selenium.webdriver.common.by import By

        return list(self.driver.find_elements(By.CSS_SELECTOR, css))

    def visible(self, css: str, **kwargs: Any) -> Any:
        """Wait until an element matching ``css`` is displayed; return it."""

        def shown(_driver: Any) -> Any:
            for element in self.find_all(css):
                if element.is_displayed():
                    return element
            return None

        return self.wait(shown, f"a visible {css!r}", **kwargs)

    def visible_text(self, css: str, **kwargs: Any) -> str:
        """Wait until an element matching ``css`` is displayed with some text; return the text."""

        def shown(_driver: Any) -> str | None:
            for element in self.find_all(css):
                if element.is_displayed() and element.text.strip():
                    return str(element.text.strip())
            return None

        return str(self.wait(shown, f"visible text in {css!r}", **kwargs))

    def wait_for_text(self, css: str, fragment: str, **kwargs: Any) -> str:
        """Wait until a displayed element matching ``css`` contains ``fragment``; return its text (an
        earlier message in the same place, from a request that lost a race, does not count)."""

        def shown(_driver: Any) -> str | None:
            for element in self.find_all(css):
                if element.is_displayed() and fragment in element.text:
                    return str(element.text.strip())
            return None

        return str(self.wait(shown, f"{fragment!r} in {css!r}", **kwargs))

    def click(self, css: str) -> None:
        """Click the element matching ``css`` that is displayed, found again when the page replaced it between
        finding and clicking (a script re-rendering it as it starts; CI, 2026-12-07: a stale element)."""

        def clicked(_driver: Any) -> bool | None:
            for element in self.find_all(css):
                if element.is_displayed():
                    element.click()
                    return True
            return None

        self.wait(clicked, f"a clickable {css!r}")

    def link(self, href_prefix: str) -> None:
        """Click the visible link whose ``href`` starts with ``href_prefix`` (a path)."""
        self.click(f'a[href^="{href_prefix}"]')

    def fill(self, css: str, value: str) -> None:
        element = self.visible(css)
        element.clear()
        element.send_keys(value)

    def text(self) -> str:
        return str(self.find("body").text)

    # -- diagnostics -------------------------------------------------------------------------------

    def console(self) -> list[dict[str, Any]]:
        """The browser console entries since the last call (needs ``goog:loggingPrefs``)."""
        return list(self.driver.get_log("browser"))

    def console_errors(self) -> list[str]:
        """Console errors since the last call, except the browser's own favicon miss."""
        return [
            entry["message"]
            for entry in self.console()
            if entry.get("level") == "SEVERE" and "favicon.ico" not in entry.get("message", "")
        ]

    def diagnostics(self) -> str:
        try:
            logs = "\n".join(f"  {e.get('level')}: {e.get('message')}" for e in self.console()) or "  (none)"
            body = self.text()[:3000]
        except Exception as exc:  # the browser itself may be gone
            return f"(no diagnostics: {exc!r})"
        return f"URL: {self.driver.current_url}\nconsole:\n{logs}\npage text:\n{body}"

    # -- where the browser is -------------------------------------------------------------------------

    def come_from(self, ip: str) -> None:
        """Send ``X-Forwarded-For: ip`` on every further request (loopback is the trusted proxy)."""
        self.driver.execute_cdp_cmd("Network.enable", {})
        self.driver.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {"X-Forwarded-For": ip}})

    # -- the server side of this browser's session ----------------------------------------------------------

    def session_key(self) -> str | None:
        cookie = self.driver.get_cookie(django_settings.SESSION_COOKIE_NAME)
        return None if cookie is None else str(cookie["value"])

    def session(self) -> dict[str, Any]:
        """The Django session data of this browser (empty when it has none)."""
        key = self.session_key()
        return {} if key is None else dict(session_store()(session_key=key).load())

    def authguard_state(self) -> dict[str, Any] | None:
        """authguard's step-up state of this browser's session (``s`` status, ``sm`` strong method, ...)."""
        from authguard.sessions.state import STATE_KEY

        return self.session().get(STATE_KEY)

    def signed_in_user_id(self) -> str | None:
        from django.contrib.auth import SESSION_KEY

        return self.session().get(SESSION_KEY)

    # -- pages ---------------------------------------------------------------------------------------------

    def sign_in(self, username: str, password: str = PASSWORD) -> None:
        """Fill in and submit the real login form (the device cookie is issued by its GET, as usual).

        The person types a password and ignores the passkey autofill: the authenticator is idle meanwhile
        (a virtual authenticator would otherwise answer the page's conditional request at once).
        """
        with self.authenticator_idle():
            self.get("/login/")
            self.fill("#id_username", username)
            self.fill("#id_password", password)
            self.find("#id_password").submit()
            self.wait(
                lambda d: "/login/" not in d.current_url or self.find_all(".form-errors"), "the login answer"
            )

    def sign_out(self) -> None:
        """Press the page's sign-out button (a CSRF-protected POST) and wait for the session to end.

        The browser is left on a blank page: the login page that follows a sign-out would otherwise have
        the authenticator answer its autofill request, signing the person straight back in.
        """
        button = 'form[action="/logout/"] button[type="submit"]'
        with self.authenticator_idle():
            if not any(element.is_displayed() for element in self.find_all(button)):
                self.get("/")  # a page with the header (a pending session lands on step-up: it has one too)
            self.click(button)
            self.wait(lambda _d: self.signed_in_user_id() is None, "the session to end")
            self.wait(lambda d: "/logout/" not in d.current_url, "the page after signing out")
            self.driver.get("about:blank")

    # -- the virtual authenticator ---------------------------------------------------------------------

    def add_authenticator(self, *, user_verified: bool = True, can_verify: bool = True) -> str:
        """Attach a CTAP2 authenticator with resident keys that always consents.

        ``can_verify``: it verifies the user (biometrics or a PIN), and the verification succeeds when
        ``user_verified``; without it, it is a security key with no PIN (presence only). Replaces the
        authenticator attached before, if any (its credentials go with it).
        """
        from selenium.webdriver.common.virtual_authenticator import (
            Protocol,
            Transport,
            VirtualAuthenticatorOptions,
        )

        if self.authenticator_id is not None:
            self.driver.remove_virtual_authenticator()
        options = VirtualAuthenticatorOptions(
            protocol=Protocol.CTAP2,
            transport=Transport.INTERNAL if can_verify else Transport.USB,
            has_resident_key=True,
            has_user_verification=can_verify,
            is_user_consenting=True,
            is_user_verified=user_verified and can_verify,
        )
        self.driver.add_virtual_authenticator(options)
        self.authenticator_id = self.driver.virtual_authenticator_id
        return str(self.authenticator_id)

    def set_presence(self, present: bool) -> None:
        """Whether the authenticator answers requests at once (a person touching it) or leaves them waiting,
        as a real one does while the person ignores it (CDP ``WebAuthn.setAutomaticPresenceSimulation``)."""
        self.driver.execute_cdp_cmd("WebAuthn.enable", {})
        self.driver.execute_cdp_cmd(
            "WebAuthn.setAutomaticPresenceSimulation",
            {"authenticatorId": self.authenticator_id, "enabled": present},
        )

    @contextmanager
    def authenticator_idle(self) -> Iterator[None]:
        """Within the block the authenticator (if any) answers nothing."""
        if self.authenticator_id is None:
            yield
            return
        self.set_presence(False)
        try:
            yield
        finally:
            self.set_presence(True)

    def set_user_verified(self, verified: bool) -> None:
        """From now on the authenticator's user verification succeeds (or fails)."""
        self.driver.set_user_verified(verified)

    def credentials(self) -> list[Any]:
        """The credentials the virtual authenticator holds."""
        return list(self.driver.get_credentials())

    # -- security settings ------------------------------------------------------------------------------

    def open_passkey_page(self) -> None:
        """From the security settings to "Add a passkey"."""
        self.get("/authguard/security/")
        self.link("/authguard/security/passkeys/add/")
        self.wait_for_path("/authguard/security/passkeys/add/")

    def settle(self, *, days: int = 40) -> None:
        """Make this browser one the signed-in user has used for ``days`` days (their usual computer), so
        a factor enrolled here is vouched for (authguard.factors.lifecycle); it must have signed in here."""
        from django.contrib.auth import get_user_model

        from .conftest import settle_device

        user = get_user_model().objects.get(pk=self.signed_in_user_id())
        settle_device(self.driver.get_cookie("authguard_device")["value"], user, days=days)

    def enroll_passkey(self, name: str, *, usual: bool = True) -> Any:
        """Add a passkey named ``name`` on the security page; returns the stored ``PasskeyDevice``.
        ``usual``: from the person's usual browser (:meth:`settle`), as customers and staff do; False: from a
        browser the account has not used before, whose new factor cools off for days."""
        from authguard.models import PasskeyDevice

        if usual:
            self.settle()
        self.open_passkey_page()
        self.fill("#passkey-name", name)
        self.click("[data-authguard-start]")
        self.wait_for_path("/authguard/security/")
        user_id = self.signed_in_user_id()
        return PasskeyDevice.objects.get(user_id=user_id, name=name)


def b64url(value: str | None) -> str | None:
    """selenium's padded base64url of a credential's bytes, as WebAuthn's JSON (and authguard) spell it."""
    return None if value is None else value.rstrip("=")


def make_driver(profile_dir: Path) -> Any:
    """A headless Chromium with its own profile, console logging on, and nothing phoning home."""
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in CHROME_ARGUMENTS:
        options.add_argument(argument)
    options.add_argument(f"--user-data-dir={profile_dir}")
    # SECURITY (of the test): the headless user agent is an automation client to the risk engine; present
    # the desktop Chrome that the other tests use.
    options.add_argument(f"--user-agent={UA_CHROME_WIN}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = webdriver.ChromeService(executable_path=CHROMEDRIVER)
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(WAIT_SECONDS * 2)
    driver.set_script_timeout(WAIT_SECONDS)
    return driver


@pytest.fixture(name="browser_site")
def browser_site_fixture(live_server: Any, settings: Any, geoip: Path) -> str:
    """The live server configured for real browsers: the WebAuthn RP is ``localhost`` at the live server's
    origin, loopback is the trusted proxy (so ``X-Forwarded-For`` places the browser), the tests' GeoIP
    databases are on. Returns the base URL."""
    settings.AUTHGUARD_WEBAUTHN_RP_ID = "localhost"
    settings.AUTHGUARD_WEBAUTHN_ORIGINS = [live_server.url]
    settings.AUTHGUARD_TRUSTED_PROXIES = ["127.0.0.1/32", "::1/128"]
    settings.LANGUAGE_CODE = "en"
    return str(live_server.url)


@pytest.fixture(name="chrome")
def chrome_fixture(browser_site: str, tmp_path: Path) -> Iterator[Callable[..., Browser]]:
    """``chrome(ip=IP_TOKYO)``: a new Chromium (fresh profile) on the live server, coming from ``ip``."""
    drivers: list[Any] = []

    def make(*, ip: str = IP_TOKYO) -> Browser:
        profile = tmp_path / f"chrome-profile-{len(drivers)}"
        profile.mkdir()
        driver = make_driver(profile)
        drivers.append(driver)
        browser = Browser(driver, browser_site)
        browser.come_from(ip)
        return browser

    yield make
    for driver in drivers:
        driver.quit()
