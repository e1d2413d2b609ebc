"""Issue 14, item 7: django-axes refusals do not count towards authguard's account lock.

A portal running django-axes next to authguard: once axes locks a guesser's address out, its backend
refuses every further attempt before any password is checked. Such a refusal is no wrong password, so it
must not count towards authguard's lock (which is the account's, wherever the customer signs in from); it
is recorded as ``throttled``, as authguard's own throttle records its refusals (battery case 45).

Axes installs receivers for Django's login signals when its app is loaded, so it runs in a new process
with its own settings (tests/axes_settings.py), its own test database and the real django-axes; the
scenario below runs there and reports what it saw, and the tests here assert on it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("axes", reason="django-axes is in the test extra")

REPO = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery"
IP_GUESSER = "198.51.100.10"  # the test GeoIP's Singapore VPS
IP_HOME = "203.0.113.10"  # Tokyo
UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0"
GUESSES = 15  # more than AXES_FAILURE_LIMIT (3) + AUTHGUARD_LOCKOUT_FAILURES (5) + the user throttle (10)
THROTTLED_TEXT = "Too many sign-in attempts. Please wait and try again."
WRONG_PASSWORD_TEXT = "Please enter a correct username and password"

MAIN = """
    import json
    import django

    django.setup()
    from django.db import connection
    from django.test.utils import setup_test_environment

    setup_test_environment()
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        from tests.test_axes import axes_portal

        print("RESULT " + json.dumps(axes_portal()))
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
"""


def axes_portal() -> dict[str, Any]:
    """In the process with axes: a guesser, then the customer, for each axes lockout mode."""
    from django.test import override_settings

    seen = {}
    for reset_cool_off in (True, False):  # axes' default, and refusals that do not extend the cool-off
        with override_settings(AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT=reset_cool_off):
            seen[f"reset_cool_off={reset_cool_off}"] = _guessed_then_signed_in(f"alice{int(reset_cool_off)}")
    return seen


def _guessed_then_signed_in(username: str) -> dict[str, Any]:
    from axes.utils import reset
    from django.conf import settings
    from django.contrib.auth import SESSION_KEY, get_user_model
    from django.test import Client, RequestFactory, override_settings
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from authguard.login.flow import password_login
    from authguard.models import AccountLock, LoginEvent

    user = get_user_model().objects.create_user(username, password=PASSWORD, email=f"{username}@example.jp")
    # An authenticator app, so a new device's sign-in is held at a step-up rather than refused outright.
    TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    guesser = Client(REMOTE_ADDR=IP_GUESSER, HTTP_USER_AGENT=UA)
    guesser.get("/login/")
    guesses = [
        guesser.post("/login/", {"username": username, "password": f"guess-{n}"}) for n in range(GUESSES)
    ]
    # The right password from the locked-out address: axes' middleware answers, and without it LoginView.
    refused = guesser.post("/login/", {"username": username, "password": PASSWORD})
    refused_signed_in = SESSION_KEY in guesser.session
    without_axes_page = [m for m in settings.MIDDLEWARE if not m.startswith("axes.")]
    with override_settings(MIDDLEWARE=without_axes_page):
        bare = Client(REMOTE_ADDR=IP_GUESSER, HTTP_USER_AGENT=UA)  # a client loads the middleware it meets
        form_page = bare.post("/login/", {"username": username, "password": PASSWORD})
    api_request = RequestFactory().post("/api/login", REMOTE_ADDR=IP_GUESSER, HTTP_USER_AGENT=UA)
    api_status = password_login(api_request, username=username, password=PASSWORD).status
    lock = AccountLock.objects.filter(user=user).first()
    events = [
        {"outcome": e.outcome, "password_ok": e.password_ok, "findings": {f["code"]: f for f in e.findings}}
        for e in LoginEvent.objects.filter(username=username).order_by("pk")
    ]
    # The customer at home (axes locked out the guesser's address only), then at the guesser's address
    # once axes lets it in again.
    home = Client(REMOTE_ADDR=IP_HOME, HTTP_USER_AGENT=UA)
    home.get("/login/")
    home_answer = home.post("/login/", {"username": username, "password": PASSWORD})
    reset(ip=IP_GUESSER)
    again = guesser.post("/login/", {"username": username, "password": PASSWORD})
    return {
        "guess_statuses": [r.status_code for r in guesses],
        "refused_status": refused.status_code,
        "refused_signed_in": refused_signed_in,
        "form_page_status": form_page.status_code,
        "form_page_says_wait": THROTTLED_TEXT in form_page.content.decode(),
        "form_page_says_wrong_password": WRONG_PASSWORD_TEXT in form_page.content.decode(),
        "api_status": api_status,
        "lock_failures": lock.failures if lock else 0,
        "locked": bool(lock and lock.locked_at),
        "events": events[: GUESSES + 3],
        "home": [home_answer.status_code, home.session.get(SESSION_KEY) == str(user.pk)],
        "after_axes_reset": [again.status_code, guesser.session.get(SESSION_KEY) == str(user.pk)],
        "last_events": [
            (e.outcome, e.password_ok)
            for e in LoginEvent.objects.filter(username=username).order_by("-pk")[:2]
        ],
    }


def _run_axes_portal(*, axes_app_first: bool) -> dict[str, Any]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.axes_settings",
        "AUTHGUARD_TEST_AXES_APP_FIRST": "1" if axes_app_first else "0",
        "PYTHONPATH": str(REPO),
    }
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(MAIN)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stderr[-4000:]
    return json.loads(lines[-1].removeprefix("RESULT "))


# Both orders of the apps: axes' user_login_failed receiver after authguard's, and before it.
@pytest.mark.parametrize("axes_app_first", [False, True], ids=["authguard-app-first", "axes-app-first"])
def test_issue_14_item_7_axes_refusals_do_not_lock_the_account(axes_app_first: bool) -> None:
    seen = _run_axes_portal(axes_app_first=axes_app_first)
    for mode, run in seen.items():
        events = run["events"]
        # Three wrong passwords (axes' limit), each checked and counted by both; then axes refuses.
        assert [(e["outcome"], e["password_ok"]) for e in events[:3]] == [("bad_password", False)] * 3, mode
        refusals = events[3:]
        assert len(refusals) == GUESSES - 3 + 3, mode  # the rest of the guesses, the right password x2, API
        assert {(e["outcome"], e["password_ok"]) for e in refusals} == {("throttled", False)}, mode
        upstream = [e["findings"].get("refused_before_password_check") for e in refusals]
        assert all(f and f["evidence"] == {"by": "django-axes"} and f["score"] == 0 for f in upstream), mode
        # SECURITY: authguard's lock saw the three wrong passwords only: not locked (threshold 5).
        assert (run["lock_failures"], run["locked"]) == (3, False), mode
        # What the guesser's address was told: axes' lockout answer, never a session, even for the right
        # password; LoginView without axes' middleware and the login API say "wait", not "wrong password".
        assert run["guess_statuses"][:2] == [200, 200], mode  # the form again, with its error
        assert set(run["guess_statuses"][2:]) == {429} and run["refused_status"] == 429, mode
        assert run["refused_signed_in"] is False, mode
        assert run["form_page_status"] == 200 and run["form_page_says_wait"], mode
        assert not run["form_page_says_wrong_password"], mode
        assert run["api_status"] == "throttled", mode
        # The customer signs in with the right password at home, and at that address once axes lets it:
        # the session is theirs, held at the step-up a new device meets (a locked account is refused).
        assert run["home"] == [302, True], mode
        assert run["after_axes_reset"] == [302, True], mode
        assert run["last_events"] == [["step_up_pending", True]] * 2, mode
