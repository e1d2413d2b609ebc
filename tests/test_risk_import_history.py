"""Issue 13, "the first day": ``authguard import-history`` learns profiles from a portal's old sign-in log."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.utils import timezone

from authguard.models import KnownDevice, LoginEvent, PopulationCount, RiskProfile
from authguard.risk.import_history import import_history
from authguard.risk.replay import ReplayError

from .conftest import IP_SG_VPS, IP_TOKYO, IP_US_HOME, UA_CHROME_WIN, UA_CURL, OrderApi

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]

PASSWORD = "correct horse battery"


def log(start: datetime, user: str, days: int, **overrides: Any) -> list[str]:
    """``days`` daily sign-ins of ``user`` at 9:00 from home, in the replay format."""
    rows = []
    for day in range(days):
        row = {
            "ts": (start + timedelta(days=day)).isoformat(),
            "user": user,
            "ip": IP_TOKYO,
            "user_agent": UA_CHROME_WIN,
            "device_id": "portal-device-1",
            "password_ok": True,
            "second_factor_ok": None,
        }
        row.update(overrides)
        rows.append(json.dumps(row))
    return rows


def test_imported_accounts_sign_in_on_the_first_day_as_returning_customers(
    user_factory: Any, geoip: Any
) -> None:
    alice, bob = user_factory("alice"), user_factory("bob")
    now = timezone.now()
    start = now - timedelta(days=60)
    lines = log(start, "alice", 40) + log(start, "ghost", 3)  # ghost: not a customer of this portal
    lines.sort(key=lambda text: json.loads(text)["ts"])
    summary = import_history(lines, geoip_path=str(geoip))
    assert summary.lines == 43 and summary.imported_profiles == 1 and summary.unknown_users == 1
    assert (
        RiskProfile.objects.filter(user=alice).exists() and not RiskProfile.objects.filter(user=bob).exists()
    )
    assert PopulationCount.objects.get(key="#users").count == 2
    assert not KnownDevice.objects.exists()  # the portal's device ids are not authguard's cookies
    assert RiskProfile.objects.get(user=alice).data["imp"] > 0  # marked: its devices are the portal's ids
    with time_machine.travel(now, tick=False):
        OrderApi(REMOTE_ADDR=IP_TOKYO, HTTP_USER_AGENT=UA_CHROME_WIN).login("alice", PASSWORD)
        OrderApi(REMOTE_ADDR=IP_TOKYO, HTTP_USER_AGENT=UA_CHROME_WIN).login("bob", PASSWORD)
    alice_event = LoginEvent.objects.get(user=alice)
    bob_event = LoginEvent.objects.get(user=bob)
    # Same place, same browser, both new cookies: alice is a returning customer (no "no history"); her own
    # browser with its first authguard cookie is a new device but not a "copied user agent".
    assert alice_event.action == "allow" and "no_history" not in alice_event.reasons
    assert "new_device" in alice_event.reasons and "copied_user_agent" not in alice_event.reasons
    assert "no_history" in bob_event.reasons


def test_after_the_first_authguard_cookie_a_copied_user_agent_counts_again(
    user_factory: Any, geoip: Any, totp_factory: Any
) -> None:
    totp_factory(user_factory("alice"))  # she can be stepped up (without a factor she would be refused)
    now = timezone.now()
    import_history(log(now - timedelta(days=60), "alice", 40), geoip_path=str(geoip))
    with time_machine.travel(now, tick=False):
        # Before her first sign-in after the install, her user agent from a network she never used is a
        # new device on a new network (the import kept how many devices she had), not yet a "copy".
        OrderApi(REMOTE_ADDR=IP_US_HOME, HTTP_USER_AGENT=UA_CHROME_WIN).login("alice", PASSWORD)
        before = LoginEvent.objects.latest("pk")
        assert {"new_device", "new_device_new_network"} <= set(before.reasons)
        assert "copied_user_agent" not in before.reasons
    with time_machine.travel(now + timedelta(hours=12), tick=False):
        OrderApi(REMOTE_ADDR=IP_TOKYO, HTTP_USER_AGENT=UA_CHROME_WIN).login("alice", PASSWORD)  # her own
    with time_machine.travel(now + timedelta(days=1), tick=False):
        OrderApi(REMOTE_ADDR=IP_US_HOME, HTTP_USER_AGENT=UA_CHROME_WIN).login("alice", PASSWORD)
        after = LoginEvent.objects.latest("pk")
    assert "copied_user_agent" in after.reasons and after.action != "allow"


def test_a_thiefs_line_in_the_old_log_teaches_nothing(user_factory: Any, geoip: Any) -> None:
    user_factory("alice")
    start = timezone.now() - timedelta(days=60)
    home = log(start, "alice", 30)
    thief = log(start + timedelta(days=30, hours=3), "alice", 1, ip=IP_SG_VPS, user_agent=UA_CURL)
    thief_row = json.loads(thief[0])
    thief_row["second_factor_ok"] = False
    summary = import_history([*home, json.dumps(thief_row)], geoip_path=str(geoip))
    assert summary.imported_profiles == 1
    profile = json.dumps(RiskProfile.objects.get().data)
    assert "14061" not in profile and "DIGITALOCEAN" not in profile.upper()  # the VPS's ASN is not learned


def test_existing_profiles_are_kept_unless_replaced_and_a_dry_run_writes_nothing(
    user_factory: Any, geoip: Any
) -> None:
    alice = user_factory("alice")
    RiskProfile.objects.create(user=alice, data={"live": True})
    lines = log(timezone.now() - timedelta(days=30), "alice", 10)
    dry = import_history(lines, geoip_path=str(geoip), dry_run=True, replace=True)
    assert dry.imported_profiles == 1 and dry.population_keys > 0
    assert RiskProfile.objects.get().data == {"live": True} and not PopulationCount.objects.exists()
    kept = import_history(lines, geoip_path=str(geoip))
    assert kept.kept_profiles == 1 and RiskProfile.objects.get().data == {"live": True}
    replaced = import_history(lines, geoip_path=str(geoip), replace=True)
    assert replaced.imported_profiles == 1 and "live" not in RiskProfile.objects.get().data


def test_a_malformed_log_stops_before_anything_is_written(user_factory: Any, geoip: Any) -> None:
    user_factory("alice")
    lines = [*log(timezone.now() - timedelta(days=5), "alice", 3), "{not json"]
    with pytest.raises(ReplayError, match="line 4"):
        import_history(lines, geoip_path=str(geoip))
    assert not RiskProfile.objects.exists() and not PopulationCount.objects.exists()


def test_the_management_command_imports_and_says_what_it_did(
    user_factory: Any, geoip: Any, tmp_path: Any, settings: Any
) -> None:
    from io import StringIO

    from django.core.management import CommandError, call_command

    settings.AUTHGUARD_GEOIP_PATH = str(geoip)
    user_factory("alice")
    source = tmp_path / "old-logins.jsonl"
    source.write_text("\n".join(log(timezone.now() - timedelta(days=20), "alice", 10)) + "\n")
    out = StringIO()
    call_command("authguard", "import-history", str(source), "--dry-run", "--quiet", stdout=out)
    assert "would import 1 profiles" in out.getvalue() and not RiskProfile.objects.exists()
    call_command("authguard", "import-history", str(source), "--quiet", stdout=out)
    assert "imported 1 profiles" in out.getvalue() and RiskProfile.objects.count() == 1
    source.write_text("not json\n")
    with pytest.raises(CommandError, match="line 1.*nothing was imported"):
        call_command("authguard", "import-history", str(source), "--quiet")
    with pytest.raises(CommandError):
        call_command("authguard", "import-history", str(tmp_path / "missing.jsonl"), "--quiet")
