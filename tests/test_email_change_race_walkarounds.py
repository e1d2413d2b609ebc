"""Red team round forty-one (b): an e-mail change confirmed while the thief's passkey registration starts
the cooling-off, a moment later than the confirmation read its clock, stored her address as dropped *before*
the cooling-off began, and every later notice and reset link went to his address alone. Fixed:

* ``lifecycle.note_contact_changed`` stores the replaced address as dropped no earlier than the start of the
  cooling-off it belongs to (read under the security row's lock), so ``dropped_addresses`` keeps it.

The thief has hanako's password and relays the codes the e-mail change's two-factor path needs (one phishing
page relaying an authenticator code and a recovery code: accepted in docs/factor-lifecycle.md); he owns his
own mailbox, not hers, not her passkey. Real API calls, real TOTP codes and passkeys, time-machine for time;
the PostgreSQL test holds her row's lock from a second connection.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core import mail
from django.test import Client

from authguard.factors import inventory
from authguard.models import Notification, PasskeyDevice, PreviousEmail

from .conftest import HANAKO_PASSWORD, IP_OSAKA, IP_TOKYO, UA_CHROME_WIN, of_long_standing, totp_token
from .factor_scenarios import her_recovery_codes, new_key, old_totp

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]

UA_THIEF = "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0"
HERS = "hanako@example.com"
HIS = "thief@evil.example"
LINK = re.compile(r"/password/reset/([^/\s]+)/([^/\s]+)/")


def _mailed_code(to: str) -> str:
    """The eight-digit code of the last confirmation mail to ``to`` (the thief's own mailbox)."""
    message = [m for m in mail.outbox if to in m.to][-1]
    return next(word for word in message.body.split() if word.isdigit() and len(word) == 8)


def _reset_links_for(entered: str) -> set[str]:
    """Where a password reset asked for with ``entered`` mailed a link."""
    mail.outbox.clear()
    Client(REMOTE_ADDR=IP_TOKYO, HTTP_USER_AGENT=UA_CHROME_WIN).post("/password/reset/", {"email": entered})
    return {
        to.lower()
        for message in mail.outbox
        if any(token not in ("sent", "complete") for _uid, token in LINK.findall(message.body))
        for to in message.to
    }


def _hanako_with_app_and_codes(brokerage_customer: Any, totp_factory: Any) -> tuple[Any, Any, list[str]]:
    """hanako, a customer of years: her authenticator app of a year and printed recovery codes, no passkey."""
    hanako = of_long_standing(brokerage_customer(holdings={"7203": 100}))
    app = old_totp(hanako, totp_factory, days=365)
    codes = her_recovery_codes(hanako)
    assert hanako.email == HERS
    return hanako, app, codes


def _thief_two_factor_session(new_browser_api: Any, app: Any, code: str, clock: Any) -> Any:
    """The thief signs in with her password and relays one code of her app and one recovery code."""
    thief = new_browser_api(IP_OSAKA)
    thief.login("hanako", HANAKO_PASSWORD)
    assert thief.post("/authguard/api/step-up/totp", {"code": totp_token(app)}).status_code == 200
    first = thief.post("/authguard/api/email", {"email": HIS})
    assert first.status_code == 403 and first.json()["code"] == "second_factor_required", first.content
    clock.shift(20)
    assert thief.post("/authguard/api/step-up/recovery-code", {"code": code}).status_code == 200
    return thief


@pytest.mark.battery(24)
def test_an_e_mail_change_that_read_the_clock_before_his_passkey_registration_forgets_her_address(
    brokerage_customer: Any, totp_factory: Any, new_browser_api: Any, clock: Any
) -> None:
    """Secure: during the cooling-off an e-mail change starts, the address it replaced hears of everything
    and gets the password-reset link (docs/factor-lifecycle.md: "her reset by e-mail ends his sessions and
    revokes what he added"; ``reset_addresses``, ``notice_addresses``).

    The thief, with the two relayed codes the two-factor path needs, sends two requests of his session
    together: the confirmation of his e-mail change (code from his own mailbox) and the registration of a
    passkey of his own. ``confirm_email_change`` reads ``now`` *before* it takes the user's row lock (and
    then the security row's in ``note_contact_changed``); ``record_enrollment`` reads its own ``now`` and
    starts the account's cooling-off. When the registration reads the clock a moment after the confirmation
    did but reaches the security row first (the confirmation waits for her row's lock, or runs on a web node
    one second behind: within ``AUTHGUARD_CLOCK`` tolerance, uncorrected), the cooling-off starts at the
    registration's time and the old address is stored with ``dropped_at`` one second *before* that start.
    ``dropped_addresses`` keeps only ``dropped_at >= cooling_off_started_at``: her address is forgotten.
    From then on every notice (held orders, sign-ins, sessions ended, the unlock reference) goes to his
    address alone, her reset request with her own address mails nothing, and his reset mails him the link.
    Simulated here without mocks: the registration runs at T, the confirmation at T - 1 s (the time it read
    before it waited)."""
    hanako, app, codes = _hanako_with_app_and_codes(brokerage_customer, totp_factory)
    assert not inventory.in_cooling_off(hanako)
    thief = _thief_two_factor_session(new_browser_api, app, codes[0], clock)
    begun = thief.post("/authguard/api/email", {"email": HIS})
    assert begun.status_code == 202, begun.content
    code = _mailed_code(HIS)
    key = new_key()
    options = thief.post("/authguard/api/passkeys/options")
    assert options.status_code == 200, options.content
    clock.shift(2)
    # The two requests in flight. The confirmation read the clock (T - 1 s) and waits for her row's lock;
    # the registration reads T, starts the account's cooling-off at T and commits.
    added = thief.post("/authguard/api/passkeys", key.create(options.json()))
    assert added.status_code == 201, added.content
    clock.shift(-1)
    done = thief.post("/authguard/api/email/confirm", {"code": code})
    assert done.status_code == 200, done.content
    hanako.refresh_from_db()
    clock.shift(60)
    assert hanako.email == HIS and inventory.in_cooling_off(hanako)
    remembered = list(PreviousEmail.objects.filter(account_id=hanako.pk).values_list("email", flat=True))
    notices = inventory.notice_addresses(hanako)
    resets = inventory.reset_addresses(hanako)
    her_request = _reset_links_for(HERS)
    his_request = _reset_links_for(HIS)
    # A notice after the change (he signs out her other sessions, say): where does it go?
    from authguard.notifications.outbox import notify_customer

    Notification.objects.all().delete()
    notify_customer(hanako, "sessions_ended", context={"count": 1})
    told = sorted(Notification.objects.values_list("to_email", flat=True))
    assert HERS in notices and HERS in her_request and HIS not in his_request, (
        f"her address is stored ({remembered}) but outside the cooling-off it started: notices go to "
        f"{notices} (a notice now reached {told}); reset links: {resets or '[current]'}; her request with "
        f"{HERS} mailed {sorted(her_request) or 'nothing'}; his request mailed {sorted(his_request)}; his "
        f"passkey: {PasskeyDevice.objects.filter(user=hanako).count()}"
    )


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_on_postgres_the_confirmation_waiting_for_her_row_lock_forgets_her_address(
    brokerage_customer: Any, totp_factory: Any, new_browser_api: Any
) -> None:
    """Secure: as above, with real threads and row locks, no clock moved. While another request of the
    account writes the customer's row (a sign-in stamping ``last_login``, a portal's own update of the
    user in a longer transaction; here a thread that does that UPDATE), the thief's e-mail confirmation
    reads the clock and waits for that lock; his passkey registration (which takes no user-row lock) runs
    meanwhile, starts the cooling-off later than the confirmation's ``now`` and commits. The lock is
    released, the confirmation stores her address as dropped before the cooling-off began: nothing reaches
    her any more."""
    import threading
    import time

    from django.db import connection, transaction

    hanako, app, codes = _hanako_with_app_and_codes(brokerage_customer, totp_factory)
    thief = new_browser_api(IP_OSAKA)
    thief.login("hanako", HANAKO_PASSWORD)
    assert thief.post("/authguard/api/step-up/totp", {"code": totp_token(app)}).status_code == 200
    assert thief.post("/authguard/api/email", {"email": HIS}).status_code == 403
    time.sleep(1)
    assert thief.post("/authguard/api/step-up/recovery-code", {"code": codes[0]}).status_code == 200
    assert thief.post("/authguard/api/email", {"email": HIS}).status_code == 202
    code = _mailed_code(HIS)
    key = new_key()
    options = thief.post("/authguard/api/passkeys/options")
    assert options.status_code == 200, options.content

    locked, release = threading.Event(), threading.Event()
    results: dict[str, Any] = {}

    def hold_her_row() -> None:
        try:
            with transaction.atomic():
                # A sign-in of the account in flight stamps last_login in its transaction (an UPDATE of
                # the user's row: the confirmation's SELECT ... FOR UPDATE waits for it).
                type(hanako).objects.filter(pk=hanako.pk).update(last_login=hanako.last_login)
                locked.set()
                release.wait(30)
        finally:
            connection.close()

    def confirm() -> None:
        try:
            results["confirm"] = thief.post("/authguard/api/email/confirm", {"code": code})
        finally:
            connection.close()

    holder = threading.Thread(target=hold_her_row)
    holder.start()
    assert locked.wait(10)
    confirming = threading.Thread(target=confirm)
    confirming.start()
    # Wait until the confirmation is blocked on the row lock (it read its clock before).
    for _ in range(200):
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE wait_event_type = 'Lock' AND datname = current_database()"
            )
            if cursor.fetchone()[0]:
                break
        time.sleep(0.05)
    else:
        pytest.fail("the confirmation never waited for the row lock")
    time.sleep(0.2)
    second = OrderApiCopy(thief)
    added = second.post("/authguard/api/passkeys", key.create(options.json()))
    release.set()
    holder.join(30)
    confirming.join(30)
    assert added.status_code == 201, added.content
    assert results["confirm"].status_code == 200, results["confirm"].content
    hanako.refresh_from_db()
    assert hanako.email == HIS and inventory.in_cooling_off(hanako)
    notices = inventory.notice_addresses(hanako)
    her_request = _reset_links_for(HERS)
    assert HERS in notices and HERS in her_request, (
        f"notices go to {notices}; her reset request with {HERS} mailed {sorted(her_request) or 'nothing'}; "
        f"reset links go to {inventory.reset_addresses(hanako) or '[current: his]'}"
    )


class OrderApiCopy:
    """A second request of the same browser session (its cookies and CSRF token), from another thread."""

    def __init__(self, original: Any) -> None:
        import json

        from django.test import Client

        self.client = Client(enforce_csrf_checks=True, **original.client.defaults)
        for name, morsel in original.client.cookies.items():
            self.client.cookies[name] = morsel.value
        self.token = original.token
        self._json = json

    def post(self, path: str, body: Any = None) -> Any:
        return self.client.post(
            path,
            data=self._json.dumps(body or {}),
            content_type="application/json",
            HTTP_X_CSRFTOKEN=self.token,
        )


def test_held_after_his_two_code_change_the_codes_unlock_reference_and_her_reset_reach_her_old_address(
    brokerage_customer: Any, totp_factory: Any, new_browser_api: Any, clock: Any, settings: Any
) -> None:
    """The thief changes her address by the two-factor path (real API, the code from his mailbox), then twice
    more (letter case of hers, then another of his), locks the account with wrong passwords and asks for the
    codes unlock with two more relayed codes: the cancel reference is mailed to her old address too, and her
    reset request with her own address mails her the link."""
    from authguard.login import lockout, unlocking

    settings.AUTHGUARD_LOCKOUT_FAILURES = 10
    hanako, app, codes = _hanako_with_app_and_codes(brokerage_customer, totp_factory)
    thief = _thief_two_factor_session(new_browser_api, app, codes[0], clock)
    for target in (HIS, HERS.upper().replace("EXAMPLE.COM", "example.com"), "thief2@evil.example"):
        begun = thief.post("/authguard/api/email", {"email": target})
        assert begun.status_code == 202, begun.content
        assert thief.post("/authguard/api/email/confirm", {"code": _mailed_code(target)}).status_code == 200
        clock.shift(5)
    hanako.refresh_from_db()
    assert hanako.email == "thief2@evil.example"
    for _ in range(10):
        lockout.record_failure(hanako, kind="password")
    assert lockout.is_locked(hanako)
    clock.shift(40)
    unlocking.request_unlock_with_codes(hanako, totp_code=totp_token(app), recovery_code=codes[1])
    told = {
        address.lower()
        for address in Notification.objects.filter(kind="unlock_requested", staff=False).values_list(
            "to_email", flat=True
        )
    }
    assert HERS in told, told
    assert HERS in _reset_links_for(HERS)
