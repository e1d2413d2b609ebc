"""Shared fixtures: real GeoIP databases (mmdb-writer), user factories, login helpers, service legs.

Service legs (CONTRACTS section 1): tests marked ``postgres``, ``redis`` or ``browser`` need their service;
without it they skip, except under ``CI=true`` where they fail, so CI can never pass by skipping.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import cache
from django.db import connection

from authguard.testing import GeoNetwork, mail_settings, write_geoip_databases

UA_CHROME_WIN = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
UA_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Mobile/15E148 Safari/604.1"
)
UA_FIREFOX_LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
UA_CURL = "curl/8.5.0"

#: The networks of the tests' GeoIP databases (RFC 5737 and RFC 3849 documentation ranges).
TEST_NETWORKS = [
    GeoNetwork(
        "203.0.113.0/26",
        country="JP",
        city="Tokyo",
        latitude=35.6895,
        longitude=139.6917,
        accuracy_km=10,
        time_zone="Asia/Tokyo",
        asn=4713,
        as_org="NTT Communications (OCN)",
    ),
    GeoNetwork(
        "203.0.113.64/26",
        country="JP",
        city="Osaka",
        latitude=34.6937,
        longitude=135.5023,
        accuracy_km=20,
        time_zone="Asia/Tokyo",
        asn=2516,
        as_org="KDDI CORPORATION",
    ),
    GeoNetwork(
        "203.0.113.128/26",
        country="JP",
        city="Tokyo",
        latitude=35.6895,
        longitude=139.6917,
        accuracy_km=200,
        time_zone="Asia/Tokyo",
        asn=9605,
        as_org="NTT DOCOMO",
    ),
    GeoNetwork(
        "203.0.113.192/26",
        country="JP",
        city="Nagoya",
        latitude=35.1815,
        longitude=136.9066,
        accuracy_km=20,
        time_zone="Asia/Tokyo",
        asn=17676,
        as_org="SoftBank Corp.",
        residential_proxy=True,
    ),
    GeoNetwork(
        "198.51.100.0/26",
        country="SG",
        city="Singapore",
        latitude=1.2897,
        longitude=103.8501,
        accuracy_km=10,
        time_zone="Asia/Singapore",
        asn=14061,
        as_org="DIGITALOCEAN-ASN",
        hosting=True,
    ),
    GeoNetwork(
        "198.51.100.64/26",
        country="US",
        city="Los Angeles",
        latitude=34.0522,
        longitude=-118.2437,
        accuracy_km=20,
        time_zone="America/Los_Angeles",
        asn=7922,
        as_org="Comcast Cable",
    ),
    GeoNetwork(
        "198.51.100.128/26",
        country="DE",
        city="Frankfurt",
        latitude=50.1109,
        longitude=8.6821,
        accuracy_km=50,
        time_zone="Europe/Berlin",
        asn=60729,
        as_org="Tor exit relays",
        tor_exit=True,
    ),
    GeoNetwork(
        "198.51.100.192/26",
        country="NL",
        city="Amsterdam",
        latitude=52.3676,
        longitude=4.9041,
        accuracy_km=50,
        time_zone="Europe/Amsterdam",
        asn=9009,
        as_org="M247 Europe",
        anonymous_vpn=True,
    ),
    GeoNetwork(
        "192.0.2.0/24",
        country="US",
        city="Ashburn",
        latitude=39.0438,
        longitude=-77.4874,
        accuracy_km=100,
        time_zone="America/New_York",
        asn=16509,
        as_org="AMAZON-02",
    ),
    GeoNetwork(
        "2001:db8::/48",
        country="JP",
        city="Fukuoka",
        latitude=33.5902,
        longitude=130.4017,
        accuracy_km=20,
        time_zone="Asia/Tokyo",
        asn=17676,
        as_org="SoftBank Corp.",
    ),
    GeoNetwork(
        "2001:db8:1::/48",
        country="JP",
        city="Sapporo",
        latitude=43.0618,
        longitude=141.3545,
        accuracy_km=20,
        time_zone="Asia/Tokyo",
        asn=17676,
        as_org="SoftBank Corp.",
    ),
    GeoNetwork(  # the Fukuoka line's ISP 90 km away: one region, apart (a dual-stack line's other family)
        "2001:db8:3::/48",
        country="JP",
        city="Kumamoto",
        latitude=32.8032,
        longitude=130.7079,
        accuracy_km=10,
        time_zone="Asia/Tokyo",
        asn=17676,
        as_org="SoftBank Corp.",
    ),
    GeoNetwork(  # placed in the country only (no city), as MaxMind does for some blocks
        "2001:db8:2::/48",
        country="JP",
        latitude=35.69,
        longitude=139.69,
        accuracy_km=100,
        time_zone="Asia/Tokyo",
        asn=17676,
        as_org="SoftBank Corp.",
    ),
]

# Handy addresses by place.
IP_TOKYO = "203.0.113.10"
IP_TOKYO_2 = "203.0.113.20"
IP_OSAKA = "203.0.113.70"
IP_DOCOMO = "203.0.113.140"
IP_JP_PROXY = "203.0.113.200"
IP_SG_VPS = "198.51.100.10"
IP_US_HOME = "198.51.100.70"
IP_TOR = "198.51.100.130"
IP_VPN = "198.51.100.200"
IP_AWS = "192.0.2.10"
IP_V6_FUKUOKA = "2001:db8::1"
IP_V6_SAPPORO = "2001:db8:1::1"
IP_V6_JAPAN_ONLY = "2001:db8:2::1"
IP_V6_KUMAMOTO = "2001:db8:3::1"


@pytest.fixture(scope="session")
def geoip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with real City, ASN and Anonymous-IP databases for :data:`TEST_NETWORKS`."""
    return write_geoip_databases(tmp_path_factory.mktemp("geoip"), TEST_NETWORKS)


@pytest.fixture
def geoip(settings: Any, geoip_dir: Path) -> Path:
    """Point authguard at the test GeoIP databases for one test."""
    settings.AUTHGUARD_GEOIP_PATH = str(geoip_dir)
    return geoip_dir


@pytest.fixture(params=[None, "jsda-2025"], ids=["default", "jsda-2025"])
def both_presets(request: pytest.FixtureRequest, settings: Any) -> str | None:
    """Run a battery test under the default settings and under the ``jsda-2025`` preset: an attack must
    fail under both (issue 10, acceptance 2). ``preset`` reads which one in the test."""
    settings.AUTHGUARD_PRESET = request.param
    return request.param


@pytest.fixture(autouse=True)
def _clear_cache() -> Iterator[None]:
    """Velocity counters live in the cache: every test starts with none."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def clock() -> Iterator[Any]:
    """Time stands still at now; ``clock.shift(seconds)`` moves it (time-machine)."""
    import time_machine
    from django.utils import timezone

    with time_machine.travel(timezone.now(), tick=False) as traveller:
        yield traveller


@pytest.fixture
def user_factory(db: Any) -> Callable[..., Any]:
    """Create users: ``user_factory("alice", password="...", email=...)``."""
    from django.contrib.auth import get_user_model

    def make(username: str = "alice", *, password: str = "correct horse battery", **extra: Any) -> Any:
        extra.setdefault("email", f"{username}@example.jp")
        return get_user_model().objects.create_user(username=username, password=password, **extra)

    return make


@pytest.fixture
def login_as(client: Any) -> Callable[..., Any]:
    """Log in through the real login form from a given IP and browser; returns the response."""

    def do(
        username: str,
        password: str = "correct horse battery",
        *,
        ip: str = IP_TOKYO,
        ua: str = UA_CHROME_WIN,
        follow: bool = False,
    ) -> Any:
        return client.post(
            "/login/",
            {"username": username, "password": password},
            REMOTE_ADDR=ip,
            HTTP_USER_AGENT=ua,
            follow=follow,
        )

    return do


# -- the security battery's marker ------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--battery",
        action="append",
        type=int,
        default=[],
        metavar="N",
        help="run only the tests marked @pytest.mark.battery(N) (repeatable)",
    )


def pytest_configure(config: pytest.Config) -> None:
    from .battery import MARKER_HELP

    config.addinivalue_line("markers", MARKER_HELP)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Refuse a malformed battery marker (it would drop a case from the map) and apply ``--battery N``."""
    from .battery import LAST_CASE

    wanted = set(config.getoption("battery"))
    kept, dropped = [], []
    for item in items:
        cases: set[int] = set()
        for marker in item.iter_markers("battery"):
            if (
                not marker.args
                or marker.kwargs
                or not all(isinstance(case, int) and 1 <= case <= LAST_CASE for case in marker.args)
            ):
                raise pytest.UsageError(f"{item.nodeid}: battery marker needs case numbers 1-{LAST_CASE}")
            cases.update(marker.args)
        (kept if not wanted or cases & wanted else dropped).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


# -- service legs ------------------------------------------------------------------------------------


def _service_missing(item: pytest.Item, reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and {reason}: service legs are mandatory in CI", pytrace=False)
    pytest.skip(reason)


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("postgres") and os.environ.get("AUTHGUARD_TEST_DB") != "postgres":
        _service_missing(item, "not running on PostgreSQL (set AUTHGUARD_TEST_DATABASE_URL)")
    if item.get_closest_marker("redis") and not os.environ.get("AUTHGUARD_TEST_REDIS_URL"):
        _service_missing(item, "AUTHGUARD_TEST_REDIS_URL is not set")
    if item.get_closest_marker("browser") and not (shutil.which("chromium") and shutil.which("chromedriver")):
        _service_missing(item, "chromium and chromedriver are not on PATH")


@pytest.fixture
def on_postgres() -> bool:
    return connection.vendor == "postgresql"


# -- step-up and factors fixtures (owner: stepup, factors) ---------------------------------------------------


def use_mail_backend(settings: Any, backend: str, **options: Any) -> None:
    """Send this test's mail through ``backend`` (``settings`` of pytest-django), ``MAILERS`` on 6.1+."""
    for name, value in mail_settings(backend, **options).items():
        setattr(settings, name, value)


def totp_token(device: Any, *, steps: int = 0) -> str:
    """The code an authenticator app shows now (or ``steps`` time steps away) for a django-otp TOTPDevice."""
    import time

    from django_otp.oath import TOTP

    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time() + steps * device.step
    return f"{totp.token():0{device.digits}d}"


def wrong_code(device: Any) -> str:
    """A code that is valid for none of the steps the device would accept."""
    valid = {totp_token(device, steps=s) for s in (-1, 0, 1)}
    candidate = int(totp_token(device))
    while f"{candidate:06d}" in valid:
        candidate = (candidate + 137_911) % 1_000_000
    return f"{candidate:06d}"


HANAKO_PASSWORD = "hanako-test-2025"


@pytest.fixture
def hanako(brokerage_customer: Callable[..., Any]) -> Any:
    """A demo brokerage customer: ¥1,000,000 cash; 100 Toyota (¥285,000), 2,000 NTT (¥305,000) and 10 Apple
    (¥345,000)."""
    return brokerage_customer(holdings={"7203": 100, "9432": 2000, "AAPL": 10})


@pytest.fixture
def totp_factory(db: Any) -> Callable[..., Any]:
    """Give a user a confirmed TOTP device with a random key: ``totp_factory(user)``."""

    def make(user: Any, *, name: str = "phone") -> Any:
        from django_otp.plugins.otp_totp.models import TOTPDevice

        return TOTPDevice.objects.create(user=user, name=name, confirmed=True)

    return make


@pytest.fixture
def browser_at() -> Callable[..., Any]:
    """A test client that acts as one browser at one place: ``browser_at(IP_SG_VPS, UA_FIREFOX_LINUX)``.

    Its ``sign_in(username, password)`` posts the real login form and returns the response.
    """
    from django.test import Client

    def make(ip: str = IP_TOKYO, ua: str = UA_CHROME_WIN, **kwargs: Any) -> Any:
        client = Client(REMOTE_ADDR=ip, HTTP_USER_AGENT=ua, **kwargs)

        def sign_in(username: str, password: str = "correct horse battery", **extra: Any) -> Any:
            client.get("/login/")  # the device cookie is issued here, as in a browser
            return client.post("/login/", {"username": username, "password": password, **extra})

        client.sign_in = sign_in  # type: ignore[attr-defined]
        return client

    return make


# factors (passkeys, TOTP, recovery codes): a real software authenticator and JSON API helpers.


@pytest.fixture
def authenticator(settings: Any) -> Any:
    """A :class:`~authguard.testing.SoftAuthenticator` for the test RP (``localhost``, its origin)."""
    from authguard.testing import SoftAuthenticator

    settings.AUTHGUARD_WEBAUTHN_RP_ID = "localhost"
    settings.AUTHGUARD_WEBAUTHN_ORIGINS = ["http://localhost:8000"]
    return SoftAuthenticator(origin="http://localhost:8000", rp_id="localhost")


def api_post(
    client: Any, name: str, body: Any = None, *, raw: bytes | str | None = None, **extra: Any
) -> Any:
    """POST JSON to ``authguard:<name>`` (``body`` serialised, or ``raw`` as is); returns the response."""
    import json

    from django.urls import reverse

    data = raw if raw is not None else json.dumps(body if body is not None else {})
    return client.post(reverse(f"authguard:{name}"), data=data, content_type="application/json", **extra)


def enter_desk_code(client: Any, grant: Any) -> Any:
    """Enter the desk code of ``grant`` (``lifecycle.grant_rebind``'s answer) in this session, as the customer
    who got it by letter does (``POST api/rebind-code``); ``client`` a test client or an :class:`OrderApi`."""
    if isinstance(client, OrderApi):
        entered = client.post("/authguard/api/rebind-code", {"code": grant.code})
    else:
        entered = api_post(client, "api-rebind-code", {"code": grant.code})
    assert entered.status_code == 200, entered.content
    return entered


def register_passkey(client: Any, authenticator: Any, **overrides: Any) -> Any:
    """Register a passkey through the JSON API (options, then the authenticator's answer); the response."""
    options = api_post(client, "api-passkeys-options")
    assert options.status_code == 200, options.content
    return api_post(client, "api-passkeys", authenticator.create(options.json(), **overrides))


def bind_passkey(user: Any, authenticator: Any, **overrides: Any) -> Any:
    """Give ``user`` a passkey bound earlier (no login needed): a real registration verified by py_webauthn,
    stored as authguard stores it. For tests that start from an account which already has a passkey."""
    from webauthn import generate_registration_options, verify_registration_response
    from webauthn.helpers import options_to_json_dict
    from webauthn.helpers.structs import CredentialDeviceType

    from authguard.factors.passkey_ceremony import b64url_decode, b64url_encode
    from authguard.factors.passkeys import user_handle_for
    from authguard.models import PasskeyDevice

    handle = user_handle_for(user)
    options = options_to_json_dict(
        generate_registration_options(
            rp_id="localhost", rp_name="test", user_name=user.get_username(), user_id=handle
        )
    )
    credential = authenticator.create(options, **overrides)
    verified = verify_registration_response(
        credential=credential,
        expected_challenge=b64url_decode(options["challenge"]),
        expected_rp_id="localhost",
        expected_origin="http://localhost:8000",
        require_user_verification=True,
    )
    return PasskeyDevice.objects.create(
        user=user,
        name=overrides.get("name", "laptop"),
        credential_id=credential["id"],
        public_key=verified.credential_public_key,
        user_handle=b64url_encode(handle),
        sign_count=verified.sign_count,
        backup_eligible=verified.credential_device_type == CredentialDeviceType.MULTI_DEVICE,
        backup_state=verified.credential_backed_up,
        user_verified=verified.user_verified,
        transports=credential["response"]["transports"],
    )


def passkey_step_up(client: Any, authenticator: Any, **overrides: Any) -> Any:
    """Step up (or re-verify) with a passkey through the JSON API; the response of the verification."""
    options = api_post(client, "api-step-up-passkey-options")
    assert options.status_code == 200, options.content
    return api_post(client, "api-step-up-passkey", authenticator.get(options.json(), **overrides))


# -- users: one fixture per recipe ---------------------------------------------------------------------
# Every module that needs "alice with an authenticator app" asks for the same recipe here; a module whose
# tests say ``alice`` for one of them aliases it (``def alice(alice_with_totp)``). The recipes build from
# ``user_factory`` (replaced in tests/portal2 by portal two's), never from ``alice``, so an alias cannot loop.


@pytest.fixture
def alice(user_factory: Callable[..., Any]) -> Any:
    """A customer with a password ("correct horse battery", alice@example.jp) and no factor yet."""
    return user_factory("alice")


@pytest.fixture
def low_risk(alice: Any, browser_at: Callable[..., Any]) -> Any:
    """alice signed in, low-risk, from the browser she has used for weeks (her usual one): a factor she adds
    there is vouched for (authguard.factors.lifecycle)."""
    client = browser_at(IP_TOKYO, UA_CHROME_WIN)
    client.sign_in("alice")
    assert client.session["_authguard"]["lr"] is True
    settle_device(client.cookies["authguard_device"].value, alice)
    return client


@pytest.fixture
def alice_with_totp(user_factory: Callable[..., Any], totp_factory: Callable[..., Any]) -> Any:
    """alice with a confirmed authenticator app, as ``alice.totp``; no sign-in yet."""
    user = user_factory("alice")
    user.totp = totp_factory(user)
    return user


@pytest.fixture
def alice_with_totp_and_passkey(
    user_factory: Callable[..., Any], totp_factory: Callable[..., Any], authenticator: Any
) -> Any:
    """alice with an authenticator app (``alice.totp``) and a passkey bound earlier in ``authenticator``
    (``alice.passkey``); no sign-in yet."""
    user = user_factory("alice")
    user.totp = totp_factory(user)
    user.passkey = bind_passkey(user, authenticator)
    return user


@pytest.fixture
def bob(user_factory: Callable[..., Any]) -> Any:
    """A second customer with a password ("correct horse battery", bob@example.jp) and no factor yet."""
    return user_factory("bob")


@pytest.fixture
def brokerage_customer(db: Any, totp_factory: Callable[..., Any]) -> Callable[..., Any]:
    """Open hanako's demo brokerage account: ``brokerage_customer(holdings={"7203": 100}, totp=True)``.

    hanako@example.com with ¥1,000,000 cash (``cash=``) and password :data:`HANAKO_PASSWORD` (``password=``).
    ``passkey=authenticator`` binds a passkey earlier in that authenticator (``user.passkey``), then
    ``totp=True`` a confirmed authenticator app (``user.totp``). ``sync_instruments=False`` when the test
    has loaded the demo's instruments already.
    """
    from decimal import Decimal

    from demo_site.brokerage import services

    def make(
        *,
        holdings: dict[str, int],
        password: str = HANAKO_PASSWORD,
        cash: Decimal = Decimal("1000000"),
        totp: bool = False,
        passkey: Any = None,
        sync_instruments: bool = True,
    ) -> Any:
        if sync_instruments:
            services.sync_instruments()
        user = services.open_account(
            "hanako", password, email="hanako@example.com", cash=cash, holdings=holdings
        )
        if passkey is not None:
            user.passkey = bind_passkey(user, passkey)
        if totp:
            user.totp = totp_factory(user)
        return user

    return make


# -- order guard fixtures (owner: orders) ------------------------------------------------------------------


class OrderApi:
    """A browser-like client of the demo's JSON API and authguard's confirmation API (CSRF enforced)."""

    def __init__(self, **client_kwargs: Any) -> None:
        import json

        from django.test import Client

        client_kwargs.setdefault("HTTP_USER_AGENT", UA_CHROME_WIN)
        self.client = Client(enforce_csrf_checks=True, **client_kwargs)
        self.token = self.client.get("/api/csrf").json()["csrf_token"]
        self._json = json

    def post(self, path: str, body: Any = None, **headers: Any) -> Any:
        response = self.client.post(
            path,
            data=self._json.dumps(body or {}),
            content_type="application/json",
            HTTP_X_CSRFTOKEN=self.token,
            **headers,
        )
        if response.get("Content-Type") == "application/json":
            self.token = response.json().get("csrf_token", self.token)
        return response

    def get(self, path: str) -> Any:
        return self.client.get(path)

    def login(self, username: str, password: str) -> Any:
        response = self.post("/api/login", {"username": username, "password": password})
        assert response.status_code == 200, response.content
        return response

    def login_usual(self, username: str, password: str, *, days: int = 40) -> Any:
        """Sign in from this browser as from the customer's usual one: the account has known it for ``days``
        days, so a factor enrolled here is vouched for (authguard.factors.lifecycle)."""
        from django.contrib.auth import get_user_model

        response = self.login(username, password)
        settle_device(
            self.client.cookies["authguard_device"].value,
            get_user_model().objects.get(username=username),
            days=days,
        )
        return response

    def login_known(self, username: str, password: str) -> Any:
        """Sign in from this browser a second time, so the session is on a known device (not risky)."""
        self.login(username, password)
        self.post("/api/logout")
        return self.login(username, password)

    def order(self, side: str, symbol: str, quantity: int, **headers: Any) -> Any:
        return self.post("/api/orders", {"side": side, "symbol": symbol, "quantity": quantity}, **headers)

    def register_passkey(self, authenticator: Any) -> Any:
        options = self.post("/authguard/api/passkeys/options").json()
        response = self.post("/authguard/api/passkeys", authenticator.create(options))
        assert response.status_code == 201, response.content
        return response.json()["passkey"]

    def confirm_with_passkey(self, confirmation_id: str, authenticator: Any, **overrides: Any) -> Any:
        options = self.post(f"/authguard/api/confirmations/{confirmation_id}/passkey/options")
        assert options.status_code == 200, options.content
        assertion = authenticator.get(options.json(), **overrides)
        return self.post(f"/authguard/api/confirmations/{confirmation_id}/passkey", assertion)


@pytest.fixture
def new_browser_api(order_api: Any, settings: Any) -> Callable[..., OrderApi]:
    """``new_browser_api(ip)``: a new browser on the demo portal whose password logins are allowed outright
    (no account lock in the way: the thief of the lifecycle cases has the password)."""
    settings.AUTHGUARD_LOCKOUT_FAILURES = None
    settings.AUTHGUARD_WEBAUTHN_RP_ID = "localhost"
    settings.AUTHGUARD_WEBAUTHN_ORIGINS = ["http://localhost:8000"]

    def make(ip: str = IP_OSAKA) -> OrderApi:
        return order_api(REMOTE_ADDR=ip)

    return make


def settle_device(cookie: str, user: Any, *, days: int = 40, verified: bool = True) -> None:
    """Make the browser holding the device cookie ``cookie`` one ``user`` has signed in from for ``days`` days
    (their usual browser): backdate the known-device row its allowed sign-in created. ``verified``: a factor
    of theirs verified a step-up there that long ago too (``KnownDevice.factor_verified_at``: what lets the
    browser vouch for a new factor); False: every sign-in there was the password alone."""
    from django.utils import timezone

    from authguard.models import KnownDevice
    from authguard.risk.context import device_hash, device_id_from_cookie

    since = timezone.now() - timedelta(days=days)
    known = KnownDevice.objects.filter(user=user, cookie_hash=device_hash(device_id_from_cookie(cookie)))
    assert (
        known.update(first_seen_at=since, learned_at=since, factor_verified_at=since if verified else None)
        == 1
    ), "sign in from this browser (allowed) first"


def of_long_standing(user: Any, *, days: int = 400) -> Any:
    """Make ``user`` a customer for ``days`` days (``date_joined``): no new account's first-browser rule."""
    user.date_joined -= timedelta(days=days)
    user.save(update_fields=["date_joined"])
    return user


@pytest.fixture
def order_api(db: Any, settings: Any) -> Callable[..., OrderApi]:
    """``order_api()``: a new browser on the demo portal; logins are allowed (no risk signal scores them)."""
    settings.AUTHGUARD_RISK_SIGNALS = []
    return OrderApi


@pytest.fixture
def tanaka(db: Any) -> Any:
    """The seed's victim: ¥1.2 million cash and 30 holdings worth about ¥10 million (seed_demo.TANAKA)."""
    from demo_site.brokerage import services
    from demo_site.brokerage.management.commands.seed_demo import TANAKA

    services.sync_instruments()
    return services.open_account(
        TANAKA.username, TANAKA.password, email=TANAKA.email, cash=TANAKA.cash, holdings=dict(TANAKA.holdings)
    )


# -- operations fixtures (owner: ops, console) ---------------------------------------------------------------


@pytest.fixture
def atomic_requests() -> Iterator[None]:
    """The portal runs every view in a transaction (``DATABASES["default"]["ATOMIC_REQUESTS"] = True``)."""
    from django.db import connections

    saved = connections.settings["default"]["ATOMIC_REQUESTS"]
    connections.settings["default"]["ATOMIC_REQUESTS"] = True
    try:
        yield
    finally:
        connections.settings["default"]["ATOMIC_REQUESTS"] = saved
