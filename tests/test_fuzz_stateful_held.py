"""Fuzz, round seventy-one: stateful fuzz of every endpoint family with REAL objects behind the ids.

The existing sweeps (test_url_walk_malformed, test_hostile_client_held) send garbage to sample ids and to
empty sessions, so most requests stop at the first check. Here every family is driven into its deep path
first (a real held order, a real held action, a real WebAuthn challenge, a real TOTP enrollment, a real
DBSC session), then ONE field at a time of an otherwise valid request is replaced by a hostile value, so
the value reaches the code that uses it. Every answer must be < 500 and a refused request must write no row.
Another customer's ids (held orders, held actions, passkeys, TOTP devices, known devices) must answer
404/403 and leave her objects as they were.
"""

from __future__ import annotations

import copy
import json
import traceback
from decimal import Decimal
from typing import Any

import pytest

from authguard.models import HeldAction, HeldOrder, KnownDevice, PasskeyDevice
from authguard.testing import SoftAuthenticator
from demo_site.brokerage import services
from demo_site.brokerage.models import BankAccount, Order, Withdrawal

from .conftest import HANAKO_PASSWORD, OrderApi

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]

BOB_PASSWORD = "bob-test-2025-secret"

#: Hostile values put, one at a time, in place of one field of a valid request.
VALUES: list[Any] = [
    None,
    True,
    0,
    -1,
    1.5,
    float("nan"),
    float("inf"),
    float("-inf"),
    10**30,
    -(10**30),
    "",
    " ",
    "\x00",
    "a\x00b",
    "\ud800",
    "a\udfffb",
    "\u0661\u0662\u0663",  # Arabic-Indic digits
    "１２３",
    "1e3",
    "NaN",
    "Infinity",
    "-0",
    "0.5",
    "AAAA====",
    "A",
    "!!!!",
    "x" * 300_000,
    [],
    {},
    [[[[[]]]]],
    {"a": {"b": {"c": None}}},
    ["a", 1, None],
]
VALUE_IDS = [repr(v)[:20] for v in VALUES]


def _dumps(body: Any) -> str:
    return json.dumps(body, allow_nan=True)


def crash_text(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "/authguard/" in f.filename or "/demo_site/" in f.filename] or frames
    frame = ours[-1]
    last = frames[-1]
    return (
        f"{type(exc).__name__}: {str(exc)[:160]} @ {frame.filename.rsplit('/', 3)[-2:]}:{frame.lineno}"
        f" (raised at {last.filename.rsplit('/', 2)[-1]}:{last.lineno}: {last.line})"
    )


class Probe:
    """Sends requests through an OrderApi's client and collects the server errors."""

    def __init__(self) -> None:
        self.crashes: list[str] = []

    def post(self, api: OrderApi, path: str, raw: str | bytes, label: str, **extra: Any) -> Any:
        try:
            response = api.client.post(
                path, data=raw, content_type="application/json", HTTP_X_CSRFTOKEN=api.token, **extra
            )
        except Exception as exc:  # the test client re-raises the view's exception
            self.crashes.append(f"{label}: {crash_text(exc)}")
            return None
        if response.status_code >= 500:
            self.crashes.append(f"{label}: HTTP {response.status_code} {response.content[:200]!r}")
        return response

    def get(self, api: OrderApi, path: str, label: str, **extra: Any) -> Any:
        try:
            response = api.client.get(path, **extra)
        except Exception as exc:
            self.crashes.append(f"{label}: {crash_text(exc)}")
            return None
        if response.status_code >= 500:
            self.crashes.append(f"{label}: HTTP {response.status_code}")
        return response


def paths_of(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path of a JSON object (dicts only), leaves and inner nodes."""
    out: list[tuple[Any, ...]] = []
    if isinstance(obj, dict):
        for key, value in obj.items():
            out.append(prefix + (key,))
            out.extend(paths_of(value, prefix + (key,)))
    return out


def mutated(obj: Any, path: tuple[Any, ...], value: Any) -> Any:
    out = copy.deepcopy(obj)
    node = out
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return out


def counts() -> dict[str, int]:
    return {
        "orders": Order.objects.count(),
        "withdrawals": Withdrawal.objects.count(),
        "banks": BankAccount.objects.count(),
        "held_orders": HeldOrder.objects.count(),
        "held_actions": HeldAction.objects.count(),
        "passkeys": PasskeyDevice.objects.count(),
    }


@pytest.fixture
def site(settings: Any) -> Any:
    settings.AUTHGUARD_WEBAUTHN_RP_ID = "localhost"
    settings.AUTHGUARD_WEBAUTHN_ORIGINS = ["http://localhost:8000"]
    settings.AUTHGUARD_RISK_SIGNALS = []
    settings.AUTHGUARD_LOCKOUT_FAILURES = None
    return settings


@pytest.fixture
def two_customers(site: Any, hanako: Any) -> dict[str, Any]:
    """Hanako and Bob, each signed in from a usual browser with a passkey, each with one held sale."""
    bob = services.open_account(
        "bob", BOB_PASSWORD, email="bob@example.com", cash=Decimal("1000000"), holdings={"AAPL": 10}
    )
    out: dict[str, Any] = {"hanako": hanako, "bob": bob}
    for name, password in (("hanako", HANAKO_PASSWORD), ("bob", BOB_PASSWORD)):
        auth = SoftAuthenticator(origin="http://localhost:8000", rp_id="localhost")
        api = OrderApi()
        api.login_usual(name, password)
        api.register_passkey(auth)
        held = api.order("sell", "AAPL", 10)
        assert held.status_code == 202, held.content
        out[f"{name}_api"] = api
        out[f"{name}_auth"] = auth
        out[f"{name}_held"] = held.json()["confirmation"]["id"]
    return out


# -- other customers' ids ---------------------------------------------------------------------------------


def test_held_another_customers_held_order_is_404_on_every_confirmation_endpoint(
    two_customers: dict[str, Any],
) -> None:
    """Held: Bob (verified, with his own passkey) names Hanako's held order on every confirmation URL."""
    bob = two_customers["bob_api"]
    target = two_customers["hanako_held"]
    probe = Probe()
    before = HeldOrder.objects.get(pk=target).status
    base = f"/authguard/api/confirmations/{target}"
    answers = []
    answers.append(probe.get(bob, f"/authguard/confirmations/{target}/", "page GET"))
    answers.append(
        probe.post(bob, f"/authguard/confirmations/{target}/", "", "page POST")
    )  # JSON body to a form view
    for action in ("confirm", "cancel"):
        try:
            r = bob.client.post(f"/authguard/confirmations/{target}/", {"action": action, "code": "123456"})
            answers.append(r)
        except Exception as exc:
            probe.crashes.append(f"form {action}: {crash_text(exc)}")
    answers.append(probe.post(bob, f"{base}/passkey/options", "{}", "options"))
    # His own valid assertion against options for his own order, replayed to hers.
    own = bob.post(f"/authguard/api/confirmations/{two_customers['bob_held']}/passkey/options").json()
    assertion = two_customers["bob_auth"].get(own)
    answers.append(probe.post(bob, f"{base}/passkey", _dumps(assertion), "passkey"))
    answers.append(probe.post(bob, f"{base}/totp", _dumps({"code": "123456"}), "totp"))
    answers.append(probe.post(bob, f"{base}/cancel", "{}", "cancel"))
    for ids in ([target], [target, two_customers["bob_held"]], [two_customers["bob_held"], target]):
        answers.append(
            probe.post(
                bob, "/authguard/api/confirmations/batch/passkey/options", _dumps({"ids": ids}), "batch opt"
            )
        )
    assert not probe.crashes, "\n".join(probe.crashes)
    leaked = [
        (r.status_code, r.content[:120])
        for r in answers
        if r is not None
        and (
            r.status_code < 400
            or (r.get("Content-Type") == "application/json" and target.encode() in r.content)
        )
    ]
    assert not leaked, leaked
    assert HeldOrder.objects.get(pk=target).status == before


def test_held_another_customers_factor_and_device_ids_are_refused(two_customers: dict[str, Any]) -> None:
    """Held: Bob names Hanako's passkey (persistent id and pk), TOTP-less pk and known device on the removal
    and revoke URLs, JSON and form; her passkey and devices stay."""
    from authguard.factors import inventory

    bob = two_customers["bob_api"]
    hanako = two_customers["hanako"]
    her_passkey = PasskeyDevice.objects.get(user=hanako)
    her_device = KnownDevice.objects.filter(user=hanako).first()
    persistent = inventory.user_factors(hanako)[0].persistent_id
    probe = Probe()
    answers = []
    for value in (persistent, her_passkey.pk, str(her_passkey.pk), her_passkey.credential_id):
        answers.append(probe.post(bob, "/authguard/api/factors/remove", _dumps({"id": value}), f"rm {value}"))
    for path in (
        f"/authguard/security/factors/passkey/{her_passkey.pk}/remove/",
        f"/authguard/security/factors/{persistent.split('/')[0]}/{her_passkey.pk}/remove/",
        f"/authguard/security/devices/{her_device.pk}/revoke/",
    ):
        try:
            answers.append(bob.client.post(path, {}))
        except Exception as exc:
            probe.crashes.append(f"{path}: {crash_text(exc)}")
    assert not probe.crashes, "\n".join(probe.crashes)
    assert all(r is None or r.status_code >= 300 for r in answers), [r.status_code for r in answers]
    assert PasskeyDevice.objects.filter(pk=her_passkey.pk, user=hanako).exists()
    assert KnownDevice.objects.filter(pk=her_device.pk, user=hanako).exists()


# -- a real confirmation challenge, one field of a real assertion replaced --------------------------------


def test_held_confirmation_assertion_fields_one_at_a_time(two_customers: dict[str, Any]) -> None:
    """Every field (and inner field) of Hanako's real assertion for her held order, replaced by each hostile
    value after a real options call: < 500 and the order stays pending."""
    api = two_customers["hanako_api"]
    auth = two_customers["hanako_auth"]
    target = two_customers["hanako_held"]
    base = f"/authguard/api/confirmations/{target}"
    options = api.post(f"{base}/passkey/options").json()
    template = auth.get(options)
    probe = Probe()
    before = counts()
    for path in paths_of(template):
        for value in VALUES:
            api.post(f"{base}/passkey/options")
            body = mutated(template, path, value)
            probe.post(api, f"{base}/passkey", _dumps(body), f"{'.'.join(map(str, path))}={value!r:.20}")
    assert not probe.crashes, "\n".join(sorted(set(probe.crashes)))
    assert HeldOrder.objects.get(pk=target).status == HeldOrder.Status.PENDING
    assert counts() == before


def test_held_batch_confirmation_bodies_one_field_at_a_time(two_customers: dict[str, Any]) -> None:
    """The batch confirmation's ``ids`` and ``credential``, each replaced by each hostile value."""
    api = two_customers["hanako_api"]
    auth = two_customers["hanako_auth"]
    target = two_customers["hanako_held"]
    probe = Probe()
    before = counts()
    opt = probe.post(
        api, "/authguard/api/confirmations/batch/passkey/options", _dumps({"ids": [target]}), "o"
    )
    assert opt is not None and opt.status_code == 200, opt.content
    template = {"ids": [target], "credential": auth.get(opt.json())}
    for value in VALUES:
        probe.post(api, "/authguard/api/confirmations/batch/passkey/options", _dumps({"ids": value}), "ids")
        probe.post(
            api, "/authguard/api/confirmations/batch/passkey/options", _dumps({"ids": [value]}), "[id]"
        )
        for path in paths_of(template):
            api.post("/authguard/api/confirmations/batch/passkey/options", {"ids": [target]})
            body = mutated(template, path, value)
            probe.post(
                api, "/authguard/api/confirmations/batch/passkey", _dumps(body), f"{path}={value!r:.20}"
            )
    assert not probe.crashes, "\n".join(sorted(set(probe.crashes)))
    assert HeldOrder.objects.get(pk=target).status == HeldOrder.Status.PENDING
    assert counts() == before


# -- passkey registration ---------------------------------------------------------------------------------


def test_held_passkey_registration_fields_one_at_a_time(two_customers: dict[str, Any]) -> None:
    """Every field of a real registration response (and ``name``), replaced after real creation options."""
    api = two_customers["hanako_api"]
    probe = Probe()
    fresh = SoftAuthenticator(origin="http://localhost:8000", rp_id="localhost")
    step = api.post("/authguard/api/step-up/passkey/options").json()
    assert (
        api.post("/authguard/api/step-up/passkey", two_customers["hanako_auth"].get(step)).status_code == 200
    )
    options = api.post("/authguard/api/passkeys/options").json()
    template = {**fresh.create(options), "name": "laptop"}
    before = counts()
    accepted: list[str] = []
    for path in paths_of(template):
        for value in VALUES:
            api.post("/authguard/api/passkeys/options")
            body = mutated(template, path, value)
            r = probe.post(api, "/authguard/api/passkeys", _dumps(body), f"{path}={value!r:.20}")
            if r is not None and r.status_code == 201:
                accepted.append(f"{path}={value!r:.30}")
                PasskeyDevice.objects.filter(user=two_customers["hanako"]).order_by("-pk").first().delete()
    assert not _new(probe.crashes), "\n".join(_new(probe.crashes))
    print("accepted registrations:", accepted)
    assert counts() == before


# -- held actions (withdrawals, bank accounts) --------------------------------------------------------------


@pytest.fixture
def held_actions(two_customers: dict[str, Any]) -> dict[str, Any]:
    bank = {
        "bank_code": "0001",
        "bank_name": "Mizuho Bank",
        "branch_code": "123",
        "account_type": "ordinary",
        "account_number": "1234567",
        "holder_name": "YAMADA HANAKO",
    }
    for name in ("hanako", "bob"):
        r = two_customers[f"{name}_api"].post("/api/bank-accounts", bank)
        assert r.status_code == 202, r.content
        two_customers[f"{name}_action"] = r.json()["confirmation"]["id"]
    return two_customers


def test_held_another_customers_held_action_is_404_everywhere(held_actions: dict[str, Any]) -> None:
    bob = held_actions["bob_api"]
    target = held_actions["hanako_action"]
    probe = Probe()
    base = f"/authguard/api/actions/{target}"
    answers = [
        probe.get(bob, f"/authguard/actions/{target}/", "page"),
        probe.post(bob, f"{base}/passkey/options", "{}", "opt"),
        probe.post(bob, f"{base}/totp", _dumps({"code": "123456"}), "totp"),
        probe.post(bob, f"{base}/cancel", "{}", "cancel"),
    ]
    own = bob.post(f"/authguard/api/actions/{held_actions['bob_action']}/passkey/options").json()
    answers.append(probe.post(bob, f"{base}/passkey", _dumps(held_actions["bob_auth"].get(own)), "pk"))
    for action in ("confirm", "cancel"):
        try:
            answers.append(bob.client.post(f"/authguard/actions/{target}/", {"action": action, "code": "1"}))
        except Exception as exc:
            probe.crashes.append(f"form {action}: {crash_text(exc)}")
    assert not probe.crashes, "\n".join(probe.crashes)
    assert all(r.status_code >= 400 for r in answers), [r.status_code for r in answers]
    assert HeldAction.objects.get(pk=target).status == "pending"


def test_held_action_assertion_fields_one_at_a_time(held_actions: dict[str, Any]) -> None:
    api = held_actions["hanako_api"]
    auth = held_actions["hanako_auth"]
    target = held_actions["hanako_action"]
    base = f"/authguard/api/actions/{target}"
    template = auth.get(api.post(f"{base}/passkey/options").json())
    probe = Probe()
    before = counts()
    for path in paths_of(template):
        for value in VALUES:
            api.post(f"{base}/passkey/options")
            probe.post(
                api, f"{base}/passkey", _dumps(mutated(template, path, value)), f"{path}={value!r:.20}"
            )
        probe.post(api, f"{base}/totp", _dumps({"code": VALUES[len(path) % len(VALUES)]}), "totp")
    for value in VALUES:
        probe.post(api, f"{base}/totp", _dumps({"code": value}), f"totp={value!r:.20}")
    assert not probe.crashes, "\n".join(sorted(set(probe.crashes)))
    assert HeldAction.objects.get(pk=target).status == "pending"
    assert counts() == before


# -- the demo's money and order APIs: NaN and other values the earlier sweep did not send ---------------


@pytest.mark.parametrize(
    "path,valid",
    [
        ("/api/orders", {"side": "buy", "symbol": "7203", "quantity": 1}),
        ("/api/orders", {"side": "sell", "symbol": "AAPL", "quantity": 1}),
        ("/api/withdrawals", {"bank_account_id": 1, "amount": 1000}),
        (
            "/api/bank-accounts",
            {
                "bank_code": "0005",
                "bank_name": "MUFG",
                "branch_code": "001",
                "account_type": "savings",
                "account_number": "7654321",
                "holder_name": "YAMADA HANAKO",
            },
        ),
        ("/authguard/api/email", {"email": "new@example.com"}),
        ("/authguard/api/email/confirm", {"code": "123456"}),
        ("/authguard/api/totp/confirm", {"code": "123456"}),
        ("/authguard/api/step-up/totp", {"code": "123456"}),
        ("/authguard/api/step-up/recovery-code", {"code": "abcd-efgh"}),
        ("/api/unlock/codes", {"username": "hanako", "code": "123456"}),
        ("/api/login", {"username": "hanako", "password": HANAKO_PASSWORD}),
    ],
)
def test_held_json_fields_one_at_a_time(
    two_customers: dict[str, Any], path: str, valid: dict[str, Any]
) -> None:
    api = two_customers["hanako_api"]
    probe = Probe()
    before = counts()
    for field in valid:
        for value in VALUES:
            probe.post(api, path, _dumps({**valid, field: value}), f"{path} {field}={value!r:.20}")
        probe.post(api, path, _dumps({**valid, "extra": {"x": [1]}}), "extra")
        probe.post(api, path, _dumps({k: v for k, v in valid.items() if k != field}), f"missing {field}")
    assert not probe.crashes, "\n".join(sorted(set(probe.crashes)))
    after = counts()
    # A garbage request writes nothing; a valid-looking one may hold (202) but the sweep only sends garbage.
    assert after["orders"] == before["orders"] and after["withdrawals"] == before["withdrawals"], after


def _new(crashes: list[str]) -> list[str]:
    # A lone surrogate in the assertion's id crashed here (tests/test_passkey_id_surrogate_held.py): no
    # crash is filtered out since it was fixed.
    return sorted(set(crashes))


@pytest.mark.parametrize("endpoint", ["login/passkey", "unlock", "step-up/passkey"])
def test_held_passkey_assertion_fields_one_at_a_time_fresh_sessions(
    site: Any, brokerage_customer: Any, endpoint: str
) -> None:
    """Every field of a real assertion replaced by each hostile value, each in a new session with a real
    challenge (anonymous for login and unlock; a pending password-only session for the step-up), so no
    throttle hides a later value. < 500; nothing signed in; no passkey's counter moved."""
    from django.contrib.auth import SESSION_KEY

    from .conftest import IP_SG_VPS, UA_CHROME_WIN

    auth = SoftAuthenticator(origin="http://localhost:8000", rp_id="localhost")
    brokerage_customer(holdings={"7203": 100}, totp=True, passkey=auth)
    probe = Probe()

    def start() -> tuple[OrderApi, dict[str, Any]]:
        api = OrderApi(REMOTE_ADDR=IP_SG_VPS, HTTP_USER_AGENT=UA_CHROME_WIN)
        if endpoint == "step-up/passkey":
            api.post("/api/login", {"username": "hanako", "password": HANAKO_PASSWORD})
        options = api.post(f"/authguard/api/{endpoint}/options")
        assert options.status_code == 200, options.content
        return api, options.json()

    api, options = start()
    template = auth.get(options)
    counter = PasskeyDevice.objects.get().sign_count
    for path in paths_of(template):
        for value in VALUES:
            api, _options = start()
            probe.post(
                api,
                f"/authguard/api/{endpoint}",
                _dumps(mutated(template, path, value)),
                f"{path}={value!r:.20}",
            )
            if endpoint != "step-up/passkey":
                assert SESSION_KEY not in api.client.session
    assert not _new(probe.crashes), "\n".join(_new(probe.crashes))
    assert PasskeyDevice.objects.get().sign_count == counter
