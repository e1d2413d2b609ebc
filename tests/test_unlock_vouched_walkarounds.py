"""Red team round forty-five: the day's newest rules (rounds forty-three and forty-four, review 2f7f922)
read by a thief. Fixed:

* ``FactorRecord.enrolled_vouched`` was written as the enrollment's ``vouched``, which is also true when the
  portal set ``AUTHGUARD_UNVOUCHED_FACTOR_DAYS = 0`` (the launch weeks docs/integration.md recommends it
  for): round forty-four's lock shield was gone for those factors, and stayed gone after the setting was
  restored. It now keeps what the session was (``session_vouched``); the setting only shortens the
  cooling-off.
* Migration 0030 marked a row vouched by a fixed fourteen days: on a portal with a seven-day rule the thief's
  passkey, still cooling off at the upgrade, became vouched. It now reads the portal's setting and leaves a
  factor still cooling off unvouched.

Held: a portal view that renews the key by flushing and restoring the session (no key until the session is
saved) is still recorded before the answer.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, JsonResponse
from django.urls import include, path

from authguard.factors import inventory
from authguard.login import lockout
from authguard.models import FactorRecord, PasskeyDevice
from authguard.sessions.decorators import step_up_required

from .conftest import HANAKO_PASSWORD, IP_OSAKA, IP_TOKYO, OrderApi, of_long_standing, totp_token
from .factor_scenarios import new_key, old_totp, register, thief_with_one_code
from .test_unlock_lock_shield_walkarounds import _passkey_unlock

pytestmark = pytest.mark.django_db


@pytest.mark.battery(66)
def test_in_the_launch_weeks_his_passkey_ends_the_lock_he_made_while_it_cooled_off(
    new_browser_api: Any, hanako: Any, totp_factory: Any, clock: Any, settings: Any
) -> None:
    """Secure: a lock the thief made while his own passkey (a password and one relayed code behind it) was
    cooling off is not ended by that passkey, also on a portal in the weeks docs/integration.md tells to set
    ``AUTHGUARD_UNVOUCHED_FACTOR_DAYS = 0`` (no ``import-history`` yet). The setting shortens how long his
    factor cools off; it does not make his session vouched for.

    ``record_enrollment`` computed ``vouched = ... or not UNVOUCHED_FACTOR_DAYS or session_vouched(...)``
    and kept it as ``enrolled_vouched``: with 0, his passkey was recorded as enrolled vouched for. He adds
    it from Osaka with one relayed code, locks her out a minute later with wrong passwords (she cannot sign
    in to remove it within its day), and the day after, his passkey ends his lock: the round-forty-four
    attack with one day's wait instead of fifteen. The record stayed true after the portal restored 14."""
    settings.AUTHGUARD_UNVOUCHED_FACTOR_DAYS = 0  # launch weeks, as docs/integration.md advises
    of_long_standing(hanako)
    hanako.totp = totp_factory(hanako)
    thief = thief_with_one_code(new_browser_api, hanako.totp)
    key = new_key()
    assert register(thief, key).status_code == 201
    his = PasskeyDevice.objects.get(user=hanako)
    assert inventory.factor_is_cooling_off(his)
    # The root of it was here: recorded as enrolled vouched for. It is recorded as what his session was.
    assert not FactorRecord.objects.get(device_id=his.persistent_id).enrolled_vouched

    settings.AUTHGUARD_LOCKOUT_FAILURES = 10
    clock.shift(60)
    for _ in range(10):
        OrderApi(REMOTE_ADDR=IP_OSAKA).post("/api/login", {"username": "hanako", "password": "guess"})
    assert lockout.is_locked(hanako)
    her = OrderApi(REMOTE_ADDR=IP_TOKYO)
    answer = her.post("/api/login", {"username": "hanako", "password": HANAKO_PASSWORD})
    assert answer.status_code == 403 and answer.json().get("code") == "locked", answer.content[:300]

    settings.AUTHGUARD_UNVOUCHED_FACTOR_DAYS = 14  # the launch weeks are over
    clock.shift(timedelta(days=2))
    assert not inventory.factor_is_cooling_off(PasskeyDevice.objects.get(pk=his.pk))
    status = _passkey_unlock(key)
    assert lockout.is_locked(hanako), f"his passkey ended the lock he made during its cooling-off ({status})"


# -- a portal that renews the key by flush-and-restore ------------------------------------------------------


@login_required
@step_up_required(max_age=300)
def flush_and_restore(request: HttpRequest) -> JsonResponse:
    """A portal's hand-made renewal: copy the session, flush it, restore it (the new key exists only once the
    session is saved, after authguard's middleware)."""
    data = dict(request.session.items())
    request.session.flush()
    request.session.update(data)
    return JsonResponse({"status": "ok"})


urlpatterns = [
    path("portal/flush-restore", flush_and_restore),
    path("", include("demo_site.urls")),
]


def test_held_a_key_renewed_by_flush_and_restore_ends_with_her_sign_out_everywhere(
    hanako: Any, totp_factory: Any, clock: Any, settings: Any, geoip: Any
) -> None:
    """The thief (password, one relayed code) passes through the portal's flush-and-restore renewal and
    waits; hanako signs out everywhere else; his next request is signed out."""
    settings.ROOT_URLCONF = __name__
    settings.AUTHGUARD_LOCKOUT_FAILURES = None
    of_long_standing(hanako)
    hanako.totp = old_totp(hanako, totp_factory)
    thief = OrderApi(REMOTE_ADDR=IP_OSAKA)
    thief.post("/api/login", {"username": "hanako", "password": HANAKO_PASSWORD})
    assert thief.post("/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)}).status_code == 200
    before = thief.client.cookies["sessionid"].value
    assert thief.client.get("/portal/flush-restore").status_code == 200
    assert thief.client.cookies["sessionid"].value != before

    clock.shift(10 * 60)
    her = OrderApi(REMOTE_ADDR=IP_TOKYO)
    her.post("/api/login", {"username": "hanako", "password": HANAKO_PASSWORD})
    assert her.post("/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)}).status_code == 200
    ended = her.client.post("/authguard/security/sessions/end-others/", HTTP_X_CSRFTOKEN=her.token)
    assert ended.status_code == 302, ended
    clock.shift(10 * 60)
    assert thief.get("/api/portfolio").status_code == 401


@pytest.mark.battery(66)
def test_migration_0030_marks_his_passkey_vouched_on_a_portal_with_a_shorter_rule(
    new_browser_api: Any, hanako: Any, totp_factory: Any, clock: Any, settings: Any
) -> None:
    """Secure: migration 0030 fills ``enrolled_vouched`` for rows written before it only for factors that were
    enrolled vouched for. It reads a row as vouched "when its own cooling-off was shorter than fourteen days"
    (the default, hard-coded): on a portal that ran ``AUTHGUARD_UNVOUCHED_FACTOR_DAYS = 7``, every unvouched
    factor cooling off at the upgrade (the thief's passkey behind the lock he made) is marked vouched, and
    ends that lock the day its seven days are over.

    (The pre-0030 row is the current row with ``enrolled_vouched`` at the column's default, False, which is
    what the AddField gave it; the data migration's own function is then run on it.)"""
    import importlib

    from django.apps import apps as global_apps

    fill = importlib.import_module("authguard.migrations.0030_factor_record_enrolled_vouched")
    settings.AUTHGUARD_UNVOUCHED_FACTOR_DAYS = 7
    of_long_standing(hanako)
    hanako.totp = totp_factory(hanako)
    thief = thief_with_one_code(new_browser_api, hanako.totp)
    key = new_key()
    assert register(thief, key).status_code == 201
    his = PasskeyDevice.objects.get(user=hanako)
    record = FactorRecord.objects.get(device_id=his.persistent_id)
    assert not record.enrolled_vouched  # unvouched: seven days of cooling-off

    settings.AUTHGUARD_LOCKOUT_FAILURES = 10
    clock.shift(60)
    for _ in range(10):
        OrderApi(REMOTE_ADDR=IP_OSAKA).post("/api/login", {"username": "hanako", "password": "guess"})
    assert lockout.is_locked(hanako)

    clock.shift(timedelta(days=1))  # the portal upgrades to 0030 while the account stands locked
    fill.fill_enrolled_vouched(global_apps, None)
    clock.shift(timedelta(days=7))
    assert not inventory.factor_is_cooling_off(PasskeyDevice.objects.get(pk=his.pk))
    status = _passkey_unlock(key)
    assert lockout.is_locked(hanako), f"his passkey ended the lock he made during its cooling-off ({status})"
