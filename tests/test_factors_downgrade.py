"""A relayed one-time code must not trade the customer's passkey for TOTP (found in review, 2026-12-01).

The chain: a phisher with the password steps up with one relayed TOTP code, removes the customer's passkey,
and from then on every held order would accept TOTP, which a relay can forward as well.
"""

from __future__ import annotations

from typing import Any

import pytest
from django_otp.plugins.otp_totp.models import TOTPDevice

from authguard.models import PasskeyDevice
from authguard.testing import SoftAuthenticator

from .conftest import HANAKO_PASSWORD as PASSWORD
from .conftest import IP_SG_VPS, OrderApi, totp_token

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]


@pytest.fixture
def hanako(brokerage_customer: Any, authenticator: Any) -> Any:
    """hanako with ¥1,000,000 cash, 10 Apple, a passkey (``hanako.passkey``) and an authenticator app."""
    return brokerage_customer(holdings={"AAPL": 10}, passkey=authenticator, totp=True)


@pytest.mark.battery(23)
def test_battery_23_a_totp_verified_session_cannot_remove_the_passkey(hanako: Any) -> None:
    thief = OrderApi(REMOTE_ADDR=IP_SG_VPS)
    login = thief.post("/api/login", {"username": "hanako", "password": PASSWORD})
    assert login.json()["status"] == "step_up_required"
    assert thief.post("/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)}).status_code == 200
    removal = thief.post("/authguard/api/factors/remove", {"id": hanako.passkey.persistent_id})
    assert removal.status_code in (401, 403) and removal.json()["status"] == "step_up_required"
    assert removal.json()["methods"] == ["passkey"]
    assert PasskeyDevice.objects.filter(pk=hanako.passkey.pk).exists()
    # So a held sale still asks for the passkey, which the thief does not have.
    held = thief.order("sell", "AAPL", 10).json()
    assert held["status"] == "held" and held["confirmation"]["methods"] == ["passkey"]


@pytest.mark.battery(23)
def test_battery_23_a_passkey_verification_whose_passkey_is_gone_removes_nothing(hanako: Any) -> None:
    """Red team, 2026-12-04: with one relayed code the thief adds a passkey of his own (cooling off), verifies
    with it, removes it, and the session still says "a fresh passkey verification"."""
    thief_key = SoftAuthenticator(origin="http://localhost:8000", rp_id="localhost")
    thief = OrderApi(REMOTE_ADDR=IP_SG_VPS)
    login = thief.post("/api/login", {"username": "hanako", "password": PASSWORD})
    assert login.json()["status"] == "step_up_required"
    assert thief.post("/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)}).status_code == 200
    own = thief.register_passkey(thief_key)
    assert own["cooling_off"] is True
    options = thief.post("/authguard/api/step-up/passkey/options").json()
    assert thief.post("/authguard/api/step-up/passkey", thief_key.get(options)).status_code == 200
    refused = thief.post("/authguard/api/factors/remove", {"id": hanako.passkey.persistent_id})
    assert refused.status_code == 400 and refused.json()["code"] == "cooling_off"
    assert thief.post("/authguard/api/factors/remove", {"id": own["id"]}).status_code == 200

    removal = thief.post("/authguard/api/factors/remove", {"id": hanako.passkey.persistent_id})

    assert 400 <= removal.status_code < 500 and removal.json()["message"]
    assert PasskeyDevice.objects.filter(pk=hanako.passkey.pk).exists()
    assert TOTPDevice.objects.filter(user=hanako).exists()
    held = thief.order("sell", "AAPL", 10).json()
    assert held["status"] == "held" and held["confirmation"]["methods"] == ["passkey"]


def test_the_customers_own_passkey_may_remove_a_passkey(hanako: Any, authenticator: Any) -> None:
    owner = OrderApi(REMOTE_ADDR=IP_SG_VPS)
    assert owner.post("/api/login", {"username": "hanako", "password": PASSWORD}).status_code == 200
    options = owner.post("/authguard/api/step-up/passkey/options").json()
    assert owner.post("/authguard/api/step-up/passkey", authenticator.get(options)).status_code == 200
    removal = owner.post("/authguard/api/factors/remove", {"id": hanako.passkey.persistent_id})
    assert removal.status_code == 200, removal.content
    assert not PasskeyDevice.objects.filter(pk=hanako.passkey.pk).exists()


def test_a_persistent_id_of_a_model_that_is_no_device_answers_4xx(hanako: Any) -> None:
    owner = OrderApi(REMOTE_ADDR=IP_SG_VPS)
    owner.post("/api/login", {"username": "hanako", "password": PASSWORD})
    owner.post("/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)})
    for bogus in ("auth.user/1", "nosuchapp.model/1", "brokerage.order/1"):
        response = owner.post("/authguard/api/factors/remove", {"id": bogus})
        assert 400 <= response.status_code < 500 and response.json()["message"], bogus
