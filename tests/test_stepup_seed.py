"""``seed_demo`` gives each demo customer a confirmed TOTP factor with a fixed, documented demo key."""

from __future__ import annotations

import base64
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from demo_site.brokerage.management.commands.seed_demo import CUSTOMERS, DEMO_TOTP_NAME, TANAKA

from .conftest import IP_SG_VPS, UA_CHROME_WIN

pytestmark = pytest.mark.django_db


def seed() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def code_for(base32_key: str) -> str:
    return f"{TOTP(base64.b32decode(base32_key)).token():06d}"


def test_each_customer_gets_one_confirmed_totp_device_with_the_documented_key() -> None:
    output = seed()
    seed()  # idempotent
    for customer in CUSTOMERS:
        user = get_user_model().objects.get(username=customer.username)
        device = TOTPDevice.objects.get(user=user)
        assert device.name == DEMO_TOTP_NAME and device.confirmed
        assert bytes.fromhex(device.key) == f"{customer.username}-demo-totp-key".encode()
        assert base64.b32encode(device.bin_key).decode() == customer.totp_key
        assert customer.totp_key in output
        assert f"otpauth://totp/{customer.username}?secret={customer.totp_key}" in output


def test_seed_demo_repairs_a_changed_demo_key() -> None:
    seed()
    TOTPDevice.objects.filter(name=DEMO_TOTP_NAME).update(key="00" * 20, confirmed=False)
    seed()
    device = TOTPDevice.objects.get(user__username=TANAKA.username)
    assert device.confirmed and base64.b32encode(device.bin_key).decode() == TANAKA.totp_key


def test_a_code_computed_from_the_printed_key_passes_step_up(geoip: Any) -> None:
    seed()
    client = Client(REMOTE_ADDR=IP_SG_VPS, HTTP_USER_AGENT=UA_CHROME_WIN)
    client.get("/login/")
    response = client.post("/login/", {"username": TANAKA.username, "password": TANAKA.password})
    assert response.status_code == 302 and response.url.startswith("/authguard/step-up/")
    done = client.post("/authguard/step-up/totp/", {"code": code_for(TANAKA.totp_key)})
    assert done.status_code == 302 and done.url == "/"
    assert client.get("/").status_code == 200
