"""Order guard acceptance 6: ``simulate_attack`` on a fresh demo database tells the story, loses nothing."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from authguard.models import GuardedOrder, GuardStatus, HeldOrder, LoginEvent
from demo_site.brokerage import services
from demo_site.brokerage.management.commands.seed_demo import TANAKA


@pytest.fixture
def demo(db: Any, settings: Any, tmp_path: Path) -> Path:
    """The demo as ``make demo`` leaves it: its GeoIP databases, its seed, loopback as the trusted proxy."""
    geoip = tmp_path / "geoip"
    settings.AUTHGUARD_GEOIP_PATH = str(geoip)
    settings.AUTHGUARD_TRUSTED_PROXIES = ["127.0.0.1/32", "::1/128"]
    call_command("build_demo_geoip", path=str(geoip), stdout=io.StringIO())
    call_command("seed_demo", stdout=io.StringIO())
    return geoip


def test_simulate_attack_tells_the_story_and_the_customer_loses_nothing(demo: Path) -> None:
    out = io.StringIO()
    call_command("simulate_attack", stdout=out)
    text = out.getvalue()
    # The steps, in order, with authguard's reasons.
    for line in (
        "Tanaka signs in at home in Tokyo",
        "The thief signs in from a VPS in Singapore",
        "anonymous_hosting",
        "phishing proxy in Tokyo",
        "The thief sells nearly everything",
        "held (mass_liquidation",
        "liquidate_and_pivot",
        "This order must be confirmed with your passkey.",
        # The passkey the thief adds through the relayed session starts its cooling-off (no low-risk
        # session behind a residential proxy) and cannot confirm.
        "registers a passkey of their own: ok (cooling-off: True)",
        "lost ¥0",
        "Tanaka lost nothing.",
    ):
        assert line in text, line
    # The thief's own passkey cannot confirm: too new (or, while Tanaka's own passkey still cools off too,
    # the held order offers no method at all: a relayed one-time code is no way around it).
    assert (
        "This passkey was added too recently to confirm orders." in text
        or "This order cannot be confirmed with a passkey." in text
    )
    assert text.index("VPS in Singapore") < text.index("sells nearly everything") < text.index("lost ¥0")
    # The database agrees: logins from the VPS denied, nothing confirmed, everything held expired.
    assert LoginEvent.objects.filter(ip="203.0.113.1", action="deny").exists()
    assert not HeldOrder.objects.filter(status=HeldOrder.Status.CONFIRMED).exists()
    assert HeldOrder.objects.filter(status=HeldOrder.Status.EXPIRED).count() >= 10
    assert not GuardedOrder.objects.filter(side="buy", status=GuardStatus.PLACED).exists()
    tanaka = services.portfolio(services.Account.objects.get(user__username=TANAKA.username).user)
    assert tanaka.total_value == TANAKA.cash + sum(
        services.to_jpy(i.price * q, i.currency)
        for i, q in ((services.Instrument.objects.get(symbol=s), q) for s, q in TANAKA.holdings.items())
    )
    assert "7Z2A" not in {h.symbol for h in tanaka.holdings}


def test_simulate_attack_dry_run_leaves_the_demo_as_it_was(demo: Path) -> None:
    call_command("simulate_attack", "--dry-run", stdout=io.StringIO())
    assert not HeldOrder.objects.exists() and not GuardedOrder.objects.exists()


def test_simulate_attack_patient_adds_up_the_exposure_over_days_and_holds_it(demo: Path) -> None:
    out = io.StringIO()
    call_command("simulate_attack", patient=True, dry_run=True, stdout=out)
    text = out.getvalue()
    for line in (
        "The patient attacker",
        "clean home line in Tokyo",
        "Day 1",
        "Day 4",
        "held (exposure_instrument_volume)",
        "held (exposure_liquidation)",
        "authguard held the patient attack",
        "--dry-run",
    ):
        assert line in text, line
    # Under 10 % of the portfolio went into the pumped stock; the rest of the four days was held.
    share = float(text.split("In 7Z2A: ")[1].split(", ")[1].split(" %")[0])
    assert share <= 10.0
    assert not GuardedOrder.objects.exists()  # --dry-run rolled everything back
