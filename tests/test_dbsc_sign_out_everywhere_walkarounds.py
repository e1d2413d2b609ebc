"""A thief's "sign out everywhere" from a session verified with one relayed code (a known limit of
round thirty-seven, closed in round forty-one). Fixed:

* "Sign out everywhere" verified with a factor a phishing page can relay (an app code, a recovery code)
  ends the bindings registered within the month (``ESTABLISHED_DEVICE_DAYS``), this browser's included, and
  keeps the older ones, as a password reset does: her browser's binding of months had ended and his key,
  registered minutes before on his own browser, stayed. Verified with a passkey it ends every binding but
  this browser's, as before.

Real sign-ins through the demo's JSON API and pages, real DBSC keys and proofs (test_sessions_dbsc's
helpers), real TOTP codes and passkeys, the real middleware, GeoIP test databases, time-machine for time.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from authguard.models import DbscSession, SessionRecord

from .conftest import IP_TOKYO_2, UA_CHROME_WIN
from .staff_fixtures import give_passkey, passkey_verify
from .test_dbsc_copies_walkarounds import _her_refresh, _last, _login, _summary
from .test_dbsc_moves_walkarounds import _assert_ended, _refresh, _thief_binds_his_own_browser
from .test_dbsc_session_rebind_walkarounds import _her_bound_history
from .test_sessions_dbsc import dbsc_on, urlpatterns  # noqa: F401
from .test_stepup_security import reverify

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__), pytest.mark.usefixtures("geoip", "dbsc_on")]

END_OTHERS = "/authguard/security/sessions/end-others/"


@pytest.fixture
def clock() -> Any:
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        yield traveller


@pytest.mark.battery(65)
def test_his_sign_out_everywhere_with_one_relayed_code_ends_his_new_binding_and_keeps_her_browsers(
    clock: Any, user_factory: Any, totp_factory: Any
) -> None:
    """Secure: with her password and one relayed app code, "sign out everywhere" from his own browser
    (bound to his key minutes before) does not end her browser's binding of months and keep his: his
    binding ends, hers stays and her key's refresh answers."""
    her, her_key, her_binding, totp = _her_bound_history(clock, user_factory, totp_factory, days=31)
    thief = Client(REMOTE_ADDR=IP_TOKYO_2, HTTP_USER_AGENT=UA_CHROME_WIN)
    key, binding = _thief_binds_his_own_browser(thief, totp)

    clock.shift(timedelta(minutes=5))
    reverify(thief, totp)  # the code she typed into his page
    # His browser refreshes with its key: the step-up's answer ended the bound cookie from before it.
    assert _refresh(thief, key, binding).status_code == 200
    ended = thief.post(END_OTHERS)
    assert ended.status_code == 302 and "reverify" not in ended["Location"], ended
    assert her.get("/api/portfolio").status_code != 200  # her session ends: that much he can do

    _assert_ended(binding, "signed_out_everywhere", thief, key)
    kept = DbscSession.objects.get(session_id=her_binding)
    assert kept.ended_at is None and kept.end_reason == "", (kept.ended_at, kept.end_reason)
    clock.shift(timedelta(minutes=11))
    assert _her_refresh(her, her_key, her_binding).status_code == 200


def test_her_sign_out_everywhere_with_her_code_ends_the_bindings_of_the_month_her_own_included(
    clock: Any, user_factory: Any, totp_factory: Any
) -> None:
    """The cost, as at a password reset: a customer without a passkey who signs out everywhere with her app
    code ends the bindings registered within the month, her own browser's too when it is that young (the
    server cannot tell her code from a relayed one); her session stays signed in."""
    her, her_key, her_binding, totp = _her_bound_history(clock, user_factory, totp_factory, days=3)
    thief = Client(REMOTE_ADDR=IP_TOKYO_2, HTTP_USER_AGENT=UA_CHROME_WIN)
    key, binding = _thief_binds_his_own_browser(thief, totp)

    clock.shift(timedelta(minutes=5))
    reverify(her, totp)
    assert _her_refresh(her, her_key, her_binding).status_code == 200  # as her browser does after it
    ended = her.post(END_OTHERS)
    assert ended.status_code == 302 and "reverify" not in ended["Location"], ended
    assert thief.get("/api/portfolio").status_code != 200
    _assert_ended(binding, "signed_out_everywhere", thief, key)
    mine = DbscSession.objects.get(session_id=her_binding)
    assert mine.end_reason == "signed_out_everywhere"
    assert SessionRecord.objects.filter(user__username="hanako").count() == 1
    assert her.get("/api/portfolio").status_code == 200


def test_her_sign_out_everywhere_with_her_passkey_keeps_her_young_binding(
    clock: Any, user_factory: Any, totp_factory: Any
) -> None:
    """Verified with her passkey (which no page can relay), "sign out everywhere" ends every binding but
    this browser's, however young it is."""
    her, her_key, her_binding, totp = _her_bound_history(clock, user_factory, totp_factory, days=3)
    thief = Client(REMOTE_ADDR=IP_TOKYO_2, HTTP_USER_AGENT=UA_CHROME_WIN)
    key, binding = _thief_binds_his_own_browser(thief, totp)

    clock.shift(timedelta(minutes=5))
    authenticator, _device = give_passkey(DbscSession.objects.get(session_id=binding).user)
    her.post("/api/logout")
    assert _login(her).json()["status"] == "ok", _summary(None)
    assert passkey_verify(her, authenticator).status_code == 200
    assert _her_refresh(her, her_key, her_binding).status_code == 200  # as her browser does after it
    ended = her.post(END_OTHERS)
    assert ended.status_code == 302 and "reverify" not in ended["Location"], ended
    _assert_ended(binding, "signed_out_everywhere", thief, key)
    assert DbscSession.objects.get(session_id=her_binding).ended_at is None
    clock.shift(timedelta(minutes=11))
    assert _her_refresh(her, her_key, her_binding).status_code == 200


@pytest.mark.battery(65)
def test_his_sign_out_everywhere_with_a_relayed_code_does_not_free_her_young_browsers_cookie(
    clock: Any, user_factory: Any, totp_factory: Any
) -> None:
    """Secure: a binding "sign out everywhere" ended keeps its device cookie held without a proof, as a
    password reset's does (``device_binding.HOLDING_END_REASONS``). The thief has her password, one relayed
    code and the jar of her browser (bound three weeks ago); from his own browser he signs out everywhere,
    which ends her young binding. A later sign-in with her copied device cookie and her password alone is
    stepped up (``device_binding_missing``), not let in as her trusted, unbound browser."""
    her, _her_key, her_binding, totp = _her_bound_history(clock, user_factory, totp_factory, days=21)
    stolen = her.cookies["authguard_device"].value
    thief = Client(REMOTE_ADDR=IP_TOKYO_2, HTTP_USER_AGENT=UA_CHROME_WIN)
    key, binding = _thief_binds_his_own_browser(thief, totp)
    clock.shift(timedelta(minutes=5))
    reverify(thief, totp)
    assert _refresh(thief, key, binding).status_code == 200  # his browser refreshes after his step-up
    assert thief.post(END_OTHERS).status_code == 302
    assert DbscSession.objects.get(session_id=her_binding).end_reason == "signed_out_everywhere"

    clock.shift(timedelta(hours=2))
    copy = Client(REMOTE_ADDR=IP_TOKYO_2, HTTP_USER_AGENT=UA_CHROME_WIN)
    copy.cookies["authguard_device"] = stolen
    copy.get("/api/csrf")
    answer = _login(copy)
    assert answer.json()["status"] != "ok", _summary(_last())
    assert "device_binding_missing" in _last().reasons
