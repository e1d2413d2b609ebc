"""Red team, round twenty-six: bad input at the order confirmation API.

Round twenty-five made JSON nested past the recursion limit a 400 where it is *parsed*. A body nested just
under the limit parses at the view's shallow stack, then fails where it is *written*: the held order keeps the
customer's assertion in a JSON model field (``HeldOrder.assertion``), whose encoder runs deeper in the ORM's
stack.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from authguard.models import GuardedOrder, GuardStatus, HeldOrder
from demo_site.brokerage.models import Order, OrderStatus

from . import test_battery_exposure as battery
from .actions_support import *  # noqa: F403  (the actions_site fixture)
from .test_battery_exposure import PASSWORD, customer, value

start = battery.start
clock = battery.clock


def _with_deep_extensions(assertion: dict[str, Any], depth: int) -> str:
    """Her real assertion, as a JSON body whose ``clientExtensionResults`` (which WebAuthn lets a browser fill
    with whatever its extensions return, and py_webauthn does not read) is ``depth`` arrays deep."""
    head = json.dumps({key: value for key, value in assertion.items() if key != "clientExtensionResults"})
    return head[:-1] + ', "clientExtensionResults": {"x": ' + "[" * depth + "]" * depth + "}}"


@pytest.mark.battery(32)
@pytest.mark.django_db
def test_an_assertion_nested_just_under_the_limit_is_a_400_not_a_500(
    order_api: Any, clock: Any, authenticator: Any
) -> None:
    """The customer's sell is held; her browser (or a broken extension) answers the confirmation with her
    real passkey assertion whose ``clientExtensionResults`` is nested a few hundred levels deep. Around 900
    levels the body parses (``read_json``), the signature verifies, and saving the assertion on the held
    order raises ``RecursionError: maximum recursion depth exceeded while encoding a JSON object``: a 500
    with a traceback (the transaction rolls back; the order stays pending). Secure: every depth is answered
    with a 4xx and a message, or confirms; the held order is never left between the two, and her next plain
    assertion confirms it exactly once."""
    clock(0)
    victim = customer("rt26c_deep", cash=0, holdings={"7203": 1000}, authenticator=authenticator)
    clock(1)
    browser = order_api()
    browser.login(victim.username, PASSWORD)
    held = browser.order("sell", "7203", 1000).json()
    assert held["status"] == "held", held
    cid = held["confirmation"]["id"]
    answers = _deepest_answers(browser, authenticator, f"/authguard/api/confirmations/{cid}/passkey")
    # Secure: no depth is a server error.
    assert not [a for a in answers if isinstance(a[1], str)], answers
    status = HeldOrder.objects.get(pk=cid).status
    if status == HeldOrder.Status.PENDING:
        options = browser.post(f"/authguard/api/confirmations/{cid}/passkey/options").json()
        final = browser.post(f"/authguard/api/confirmations/{cid}/passkey", authenticator.get(options))
        assert final.status_code == 200, final.content
    assert HeldOrder.objects.get(pk=cid).status == HeldOrder.Status.CONFIRMED
    assert GuardedOrder.objects.get(user=victim).status == GuardStatus.PLACED
    assert Order.objects.filter(account__user=victim, status=OrderStatus.PLACED).count() == 1
    assert not value(victim).holdings


def _deepest_answers(client: Any, authenticator: Any, path: str) -> list[tuple[int, Any]]:
    """Send her real assertion with extension results 990, 988... arrays deep until one confirms."""
    answers: list[tuple[int, Any]] = []
    for depth in range(990, 790, -2):
        options = client.post(f"{path}/options")
        assert options.status_code == 200, options.content
        body = _with_deep_extensions(authenticator.get(options.json()), depth)
        try:
            response = client.client.post(
                path, data=body, content_type="application/json", HTTP_X_CSRFTOKEN=client.token
            )
        except RecursionError as exc:
            answers.append((depth, f"500: {exc}"))
            continue
        answers.append((depth, response.status_code))
        if response.status_code == 200:
            break
        assert response.status_code == 400 and response.json()["message"], (depth, response.content)
    return answers


@pytest.mark.battery(32)
@pytest.mark.django_db
@pytest.mark.usefixtures("actions_site")
def test_a_bank_account_confirmation_nested_just_under_the_limit_is_a_400_not_a_500(
    hanako: Any,
) -> None:
    """The same at the sensitive-action API (``/authguard/api/actions/<id>/passkey``): the customer adds a
    bank account, and her real assertion with deeply nested extension results reaches the encoder of
    ``HeldAction.assertion``: a 500. Secure: a 4xx with a message (or the confirmation); the account is
    registered once."""
    from authguard.testing import SoftAuthenticator
    from demo_site.brokerage.models import BankAccount

    from .actions_support import BANK
    from .conftest import HANAKO_PASSWORD
    from .conftest import OrderApi as Api

    authenticator = SoftAuthenticator(origin="http://localhost:8000", rp_id="localhost")
    client = Api()
    client.login_usual("hanako", HANAKO_PASSWORD)
    client.register_passkey(authenticator)
    added = client.post("/api/bank-accounts", BANK)
    assert added.status_code == 202, added.content
    action_id = added.json()["confirmation"]["id"]
    answers = _deepest_answers(client, authenticator, f"/authguard/api/actions/{action_id}/passkey")
    # Secure: no depth is a server error.
    assert not [a for a in answers if isinstance(a[1], str)], answers
    assert BankAccount.objects.filter(account__user=hanako, status="active").count() == 1


# -- held: every other JSON endpoint refuses a value nested just under the limit -----------------------------

_ENDPOINTS = (
    "/authguard/api/step-up/totp",
    "/authguard/api/step-up/recovery-code",
    "/authguard/api/step-up/passkey/options",
    "/authguard/api/step-up/passkey",
    "/authguard/api/login/passkey/options",
    "/authguard/api/login/passkey",
    "/authguard/api/unlock/options",
    "/authguard/api/unlock",
    "/authguard/api/passkeys/options",
    "/authguard/api/passkeys",
    "/authguard/api/totp",
    "/authguard/api/totp/confirm",
    "/authguard/api/recovery-codes",
    "/authguard/api/factors/remove",
    "/authguard/api/email",
    "/authguard/api/email/confirm",
    "/authguard/api/confirmations/batch/passkey/options",
    "/authguard/api/confirmations/batch/passkey",
    "/authguard/api/confirmations/CID/passkey/options",
    "/authguard/api/confirmations/CID/passkey",
    "/authguard/api/confirmations/CID/totp",
    "/authguard/api/confirmations/CID/cancel",
    "/api/login",
    "/api/unlock/codes",
    "/api/unlock/cancel",
    "/api/orders",
)
_KEYS = (
    "code",
    "username",
    "password",
    "side",
    "symbol",
    "quantity",
    "ids",
    "credential",
    "name",
    "email",
    "method",
    "id",
    "token",
    "recovery_code",
    "x",
)


@pytest.mark.django_db
def test_values_nested_just_under_the_limit_are_refused_everywhere_else(
    order_api: Any, clock: Any, authenticator: Any
) -> None:
    """HELD: each of the customer-facing JSON endpoints above (signed in, with a held order pending), sent one
    key at a time whose value is 880-920 arrays deep (parsed by ``read_json``, but deep enough to break any
    later encoder or recursive walk), answers below 500 and writes nothing. Only the two confirmation
    endpoints that store her verified assertion fail (the findings above)."""
    clock(0)
    victim = customer("rt26c_fuzz", cash=1_000_000, holdings={"7203": 1000}, authenticator=authenticator)
    clock(1)
    client = order_api()
    client.login(victim.username, PASSWORD)
    held = client.order("sell", "7203", 1000).json()
    cid = held["confirmation"]["id"]
    bad = []
    for depth in (880, 900, 920):
        nest = "[" * depth + "]" * depth
        for path in _ENDPOINTS:
            for key in _KEYS:
                try:
                    response = client.client.post(
                        path.replace("CID", cid),
                        data=f'{{"{key}": {nest}}}',
                        content_type="application/json",
                        HTTP_X_CSRFTOKEN=client.token,
                    )
                except RecursionError as exc:
                    bad.append((depth, path, key, str(exc)))
                    continue
                if response.status_code >= 500:
                    bad.append((depth, path, key, response.status_code))
    assert not bad, bad
    assert HeldOrder.objects.get(pk=cid).status == HeldOrder.Status.PENDING
    assert Order.objects.filter(account__user=victim, status=OrderStatus.PLACED).count() == 0
