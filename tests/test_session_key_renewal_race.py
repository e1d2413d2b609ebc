"""A session key renewed while the customer's "sign out everywhere" runs on another node (round forty-five's
open question).

"Sign out everywhere" ends the keys ``SessionRecord`` lists. A request that renewed its session key (the
portal's own ``cycle_key()`` after its step-up, or authguard's step-up) recorded the new key after her ending
had read the records: the thief's renewed session outlived her sign-out. Now a renewal moves the record under
the account's row lock and finds the old key's record gone when her ending came first: the session ends
(``authguard.sessions.records.renew_record``).

Her request is made from inside his (the moment between his renewal and its recording) through a session
engine that runs a hook right after ``cycle_key()``: the same database, another request, as another web node.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.sessions.backends.db import SessionStore as DatabaseStore
from django.urls import include, path

from authguard.models import SessionRecord

from .conftest import HANAKO_PASSWORD, IP_OSAKA, IP_TOKYO, OrderApi, of_long_standing, totp_token
from .factor_scenarios import old_totp
from .test_session_key_renewal_walkarounds import enter_trading_mode

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]

#: Run once, right after the next ``cycle_key()`` of any session (what another node does meanwhile).
AFTER_RENEWAL: list[Callable[[], None]] = []


#: Threads whose next session deletion pauses first (``BEFORE_DELETE``: the events to set and to wait for).
PAUSE_IN: set[str] = set()
BEFORE_DELETE: list[tuple[threading.Event, threading.Event]] = []


class SessionStore(DatabaseStore):
    """Django's database sessions, with a moment between a key's renewal and the rest of the request, and
    (in the threads of ``PAUSE_IN``) one before a session's deletion."""

    def cycle_key(self) -> None:
        super().cycle_key()
        while AFTER_RENEWAL:
            AFTER_RENEWAL.pop()()

    def delete(self, session_key: str | None = None) -> None:
        if threading.current_thread().name in PAUSE_IN and BEFORE_DELETE:
            paused, go = BEFORE_DELETE.pop()
            paused.set()
            go.wait(10)
        super().delete(session_key)


urlpatterns = [
    path("portal/trading-mode", enter_trading_mode),
    path("", include("demo_site.urls")),
]


@pytest.fixture
def portal(settings: Any) -> Any:
    settings.ROOT_URLCONF = __name__
    settings.SESSION_ENGINE = __name__
    settings.AUTHGUARD_LOCKOUT_FAILURES = None
    AFTER_RENEWAL.clear()
    yield
    AFTER_RENEWAL.clear()
    PAUSE_IN.clear()
    BEFORE_DELETE.clear()


def _her_verified_session(hanako: Any) -> OrderApi:
    her = OrderApi(REMOTE_ADDR=IP_TOKYO)
    her.post("/api/login", {"username": "hanako", "password": HANAKO_PASSWORD})
    assert her.post("/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)}).status_code == 200
    return her


def _she_signs_out_everywhere(her: OrderApi) -> Callable[[], None]:
    def sign_out_everywhere() -> None:
        ended = her.client.post("/authguard/security/sessions/end-others/", HTTP_X_CSRFTOKEN=her.token)
        assert ended.status_code == 302 and ended["Location"].endswith("/authguard/security/"), ended

    return sign_out_everywhere


@pytest.mark.battery(21)
def test_a_key_the_portal_renews_while_her_sign_out_everywhere_runs_is_ended_with_the_others(
    portal: None, hanako: Any, totp_factory: Any, clock: Any
) -> None:
    """Secure: a session whose key the portal renews while her "sign out everywhere" runs is ended too.

    The thief (her password, one relayed code) keeps his session busy on the portal's trading page, which
    renews his key. Her "sign out everywhere" on another node lands between his renewal and its record:
    it deletes his old key's record and his old key; his new key was recorded after her read and lived on."""
    of_long_standing(hanako)
    hanako.totp = old_totp(hanako, totp_factory)
    her = _her_verified_session(hanako)
    her_key = her.client.cookies["sessionid"].value
    clock.shift(60)
    thief = OrderApi(REMOTE_ADDR=IP_OSAKA)
    thief.post("/api/login", {"username": "hanako", "password": HANAKO_PASSWORD})
    assert thief.post("/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)}).status_code == 200

    AFTER_RENEWAL.append(_she_signs_out_everywhere(her))
    during = thief.client.get("/portal/trading-mode", HTTP_ACCEPT="application/json")
    assert not AFTER_RENEWAL, "her sign-out ran inside his renewal"
    assert during.status_code == 401 and during.json()["code"] == "session_ended", during.content

    clock.shift(60)
    assert thief.get("/api/portfolio").status_code == 401
    assert list(SessionRecord.objects.filter(user=hanako).values_list("session_key", flat=True)) == [her_key]
    assert her.get("/api/portfolio").status_code == 200


def test_a_step_up_whose_key_renewal_meets_her_sign_out_everywhere_verifies_nothing(
    portal: None, hanako: Any, totp_factory: Any, clock: Any
) -> None:
    """Secure: authguard's own step-up renews the key too; a pending session ended while it passes the
    relayed code is not verified.

    The thief signs in with her password (pending), she signs in at home and presses "sign out everywhere"
    just as his relayed code is being checked: his step-up renewed his pending key before her ending read
    the records, and recorded the new one after it, a verified session her sign-out never saw."""
    of_long_standing(hanako)
    hanako.totp = old_totp(hanako, totp_factory)
    her = _her_verified_session(hanako)
    clock.shift(60)
    thief = OrderApi(REMOTE_ADDR=IP_OSAKA)
    assert thief.post("/api/login", {"username": "hanako", "password": HANAKO_PASSWORD}).json()["status"] == (
        "step_up_required"
    )

    AFTER_RENEWAL.append(_she_signs_out_everywhere(her))
    relayed = thief.post("/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)})
    assert not AFTER_RENEWAL, "her sign-out ran inside his step-up"
    assert relayed.status_code == 403, relayed.content

    clock.shift(60)
    assert thief.get("/api/portfolio").status_code == 401
    assert SessionRecord.objects.filter(user=hanako).count() == 1
    assert her.get("/api/portfolio").status_code == 200


def test_held_a_key_renewed_before_her_sign_out_everywhere_is_ended_by_it(
    portal: None, hanako: Any, totp_factory: Any, clock: Any
) -> None:
    """The control: a renewal recorded before her sign-out is ended by it, and her own renewals go on."""
    of_long_standing(hanako)
    hanako.totp = old_totp(hanako, totp_factory)
    thief = OrderApi(REMOTE_ADDR=IP_OSAKA)
    thief.post("/api/login", {"username": "hanako", "password": HANAKO_PASSWORD})
    assert thief.post("/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)}).status_code == 200
    assert thief.client.get("/portal/trading-mode").status_code == 200
    clock.shift(10 * 60)
    her = _her_verified_session(hanako)
    _she_signs_out_everywhere(her)()
    assert her.client.get("/portal/trading-mode").status_code == 200  # her own renewal is recorded
    clock.shift(60)
    assert thief.get("/api/portfolio").status_code == 401
    assert her.get("/api/portfolio").status_code == 200
    assert SessionRecord.objects.filter(user=hanako).count() == 1


def test_held_his_password_change_renews_his_key_and_her_reset_by_email_still_ends_it(
    portal: None, hanako: Any, totp_factory: Any, clock: Any, mailoutbox: Any
) -> None:
    """Round forty-five's second question: Django's password change view ends every other session, then
    renews its own key (``update_session_auth_hash``). One relayed code may change the password (a documented
    limit, docs/factor-lifecycle.md): the renewed key is recorded before the answer, so her reset by e-mail
    ends the thief's session, and she is the one signed in afterwards."""
    import re

    from django.test import Client

    from .conftest import UA_CHROME_WIN
    from .factor_scenarios import change_password

    of_long_standing(hanako)
    hanako.totp = old_totp(hanako, totp_factory)
    thief = OrderApi(REMOTE_ADDR=IP_OSAKA)
    thief.post("/api/login", {"username": "hanako", "password": HANAKO_PASSWORD})
    assert thief.post("/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)}).status_code == 200
    before = thief.client.cookies["sessionid"].value
    changed = change_password(thief, HANAKO_PASSWORD, "the thief's own password 2026")
    assert changed.status_code == 302, changed
    renewed = thief.client.cookies["sessionid"].value
    assert renewed != before and SessionRecord.objects.filter(session_key=renewed, user=hanako).exists()
    assert thief.get("/api/portfolio").status_code == 200

    clock.shift(10 * 60)  # she reads the "password changed" notice and resets it by e-mail
    customer = Client(REMOTE_ADDR=IP_TOKYO, HTTP_USER_AGENT=UA_CHROME_WIN)
    assert customer.post("/password/reset/", {"email": "hanako@example.com"}).status_code == 302
    link = re.search(r"http://testserver(/password/reset/\S+/)", mailoutbox[-1].body)
    assert link, mailoutbox[-1].body
    form = customer.get(link.group(1), follow=True)
    new = "her own better password 2026"
    done = customer.post(form.redirect_chain[-1][0], {"new_password1": new, "new_password2": new})
    assert done.status_code == 302 and done.url == "/password/reset/complete/"
    assert thief.get("/api/portfolio").status_code == 401
    assert not SessionRecord.objects.filter(user=hanako).exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_on_postgres_a_renewal_while_her_ending_holds_the_account_waits_and_ends(
    portal: None, hanako: Any, totp_factory: Any, clock: Any
) -> None:
    """Secure: as above, with real threads and row locks. Her "sign out everywhere" has read the records
    (his old key among them) and is about to delete the sessions from the store when his request renews its
    key: the renewal waits for her ending to commit, finds his old key's record gone and ends his session.
    (Without the account's lock the renewal moved his record to the new key before her ending deleted the
    old one: checked by making ``lock_account`` a no-op.)"""
    import threading
    import time

    from django.db import connection

    of_long_standing(hanako)
    hanako.totp = old_totp(hanako, totp_factory)
    her = _her_verified_session(hanako)
    clock.shift(60)
    thief = OrderApi(REMOTE_ADDR=IP_OSAKA)
    thief.post("/api/login", {"username": "hanako", "password": HANAKO_PASSWORD})
    assert thief.post("/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)}).status_code == 200

    paused, go = threading.Event(), threading.Event()
    results: dict[str, Any] = {}
    PAUSE_IN.add("her-sign-out")

    def her_sign_out() -> None:
        try:
            _she_signs_out_everywhere(her)()
        finally:
            connection.close()

    def his_renewal() -> None:
        try:
            results["his"] = thief.client.get("/portal/trading-mode", HTTP_ACCEPT="application/json")
        finally:
            connection.close()

    BEFORE_DELETE.append((paused, go))
    ending = threading.Thread(target=her_sign_out, name="her-sign-out")
    ending.start()
    assert paused.wait(10), "her ending never reached the session store"
    renewing = threading.Thread(target=his_renewal, name="his-renewal")
    renewing.start()
    for _ in range(60):  # until his renewal waits for a lock, or has finished without waiting
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE wait_event_type = 'Lock' AND datname = current_database()"
            )
            if cursor.fetchone()[0] or not renewing.is_alive():
                break
        time.sleep(0.05)
    go.set()
    ending.join(30)
    renewing.join(30)
    assert results["his"].status_code == 401, results["his"].content
    assert thief.get("/api/portfolio").status_code == 401
    assert her.get("/api/portfolio").status_code == 200
