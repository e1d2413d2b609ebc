"""The ways back into an account, attacked (red team, 2026-12-05; each test failed on the code before): the
desk's re-bind grant used by a password-only session, the thief's cooling-off passkey outwaiting the desk's
containment lock, a password reset during the cooling-off of an e-mail change; round eight: a refused codes
unlock that spent a recovery code. Threat model: the thief has the password (or only the username), may relay
one code, not the customer's mailbox, and days of time."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.test import Client
from django.urls import include, path
from django.utils import timezone

from authguard.login import lockout
from authguard.models import AccountLock, AccountSecurity, Notification, PasskeyDevice, RecoveryCode

from .conftest import (
    HANAKO_PASSWORD,
    IP_OSAKA,
    IP_TOKYO,
    OrderApi,
    enter_desk_code,
    of_long_standing,
    totp_token,
    wrong_code,
)
from .factor_scenarios import disabled_totp, new_key, register, thief_with_one_code
from .test_battery_sessions import totp_hanako as totp_hanako  # noqa: F401 (a fixture)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]


@pytest.mark.battery(66)
def test_a_password_only_thief_binds_nothing_with_the_desks_re_bind_grant(
    new_browser_api: Any, hanako: Any, totp_factory: Any, user_factory: Any, clock: Any
) -> None:
    """hanako lost her authenticator app; she calls the desk, which grants her a re-binding for 72 hours
    (lifecycle.grant_rebind). The grant sits on the *account*, and an account without usable factors gets
    a verified session from a password alone: the thief's passkey, bound through the grant, counted as a
    vouched re-bind (24 h of cooling-off) and used up her grant; once it was made to cool off for 14 days
    instead (round two), it was the account's only factor, and her own re-binding through the still open
    grant asked her to step up with *his* key (round three). Now a stranger's session binds nothing through
    the grant; her own browser of long standing does. docs/factor-lifecycle.md: re-binding is "never from a
    password session"."""
    from authguard.factors import inventory, lifecycle
    from authguard.models import FactorRecord, KnownDevice

    of_long_standing(hanako)
    disabled_totp(hanako, totp_factory)
    assert lifecycle.ever_had_factor(hanako) and not inventory.user_factors(hanako)
    her = new_browser_api(IP_TOKYO)  # her computer: the account has known its browser for a year
    her.login("hanako", HANAKO_PASSWORD)
    year = timezone.now() - timedelta(days=365)
    # ... and her app verified her there when she set it up (the grant needs that since round seventy:
    # tests/test_factor_vouching_round70_walkarounds.py has the browser it never verified).
    known = KnownDevice.objects.filter(user=hanako)
    known.update(first_seen_at=year, learned_at=year, factor_verified_at=year)
    grant = lifecycle.grant_rebind(hanako, by_staff=user_factory("desk", is_staff=True))

    thief = new_browser_api(IP_OSAKA)
    thief.login("hanako", HANAKO_PASSWORD)  # password only: she has no usable factor to step up with
    refused = register(thief, new_key())
    assert refused.status_code == 403, refused.content
    assert not PasskeyDevice.objects.filter(user=hanako).exists()
    assert AccountSecurity.objects.get(user=hanako).rebind_granted_until is not None

    # Her own re-binding through the grant, from her browser of long standing with the desk's code: vouched,
    # and the grant used.
    enter_desk_code(her, grant)
    mine = register(her, new_key())
    assert mine.status_code == 201, mine.content
    record = FactorRecord.objects.get(device_id=PasskeyDevice.objects.get(user=hanako).persistent_id)
    assert record.enrolled_via == "staff"
    assert AccountSecurity.objects.get(user=hanako).rebind_granted_until is None


@pytest.mark.battery(66)
def test_the_thiefs_passkey_outwaits_the_desks_containment_lock_and_unlocks_it_at_once(
    new_browser_api: Any, hanako: Any, totp_factory: Any, clock: Any
) -> None:
    """With one relayed TOTP code the thief adds a passkey of his own (unvouched: it cools off for 14 days).
    hanako gets the "factor added" notice and reports it; the desk contains the account at once
    (lockout.lock). The lock keeps *her* out (she cannot sign in to remove his passkey), but his passkey's
    cooling-off keeps running: on day 15 it is "her own passkey, not cooling off" and unlock_with_passkey
    (discoverable, no username, no password, no waiting period, no cancel) ends the desk's containment on
    the spot. He then signs in with the password and the same passkey."""
    from authguard.factors import inventory

    from .console_data import staff_user

    of_long_standing(hanako)
    hanako.totp = totp_factory(hanako)
    thief = thief_with_one_code(new_browser_api, hanako.totp)
    key = new_key()
    assert register(thief, key).status_code == 201  # one relayed code buys a (cooling-off) factor: accepted
    his = PasskeyDevice.objects.get(user=hanako)
    clock.shift(2 * 3600)
    assert inventory.factor_is_cooling_off(his)  # when the desk locks, his passkey is still cooling off
    desk = staff_user("desk", perms=("authguard.contain_account",))
    assert lockout.lock(hanako, by=desk, reason="customer reports a passkey she never added")

    clock.shift(15 * 24 * 3600)  # the thief's passkey is past its 14 days; the account is still contained
    api = OrderApi(REMOTE_ADDR=IP_OSAKA)
    options = api.post("/authguard/api/unlock/options")
    assert options.status_code == 200, options.content
    api.post("/authguard/api/unlock", key.get(options.json()))

    # SECURE: a factor that was still cooling off when the account was locked cannot end that lock: the
    # desk's containment stands, and nothing tells hanako her account was unlocked.
    assert lockout.is_locked(hanako), "the thief's own passkey ended the desk's containment lock"
    lock = AccountLock.objects.get(user=hanako)
    assert lock.locked_reason.startswith("security desk") and lock.unlocked_at is None
    assert not Notification.objects.filter(kind="account_unlocked", user=hanako).exists()


@pytest.mark.battery(66)
def test_during_the_email_cooling_off_her_password_reset_reaches_only_the_thiefs_address(
    user_factory: Any, browser_at: Any, settings: Any
) -> None:
    """The e-mail change is the two-factor path (one phishing page that relays an authenticator code and a
    recovery code meets it: docs/factor-lifecycle.md accepts that). Its answer is the cooling-off: for 24 h
    the old address hears of everything, and the customer's remedy is "her reset by e-mail ends his sessions
    and revokes what he added". But the portal's reset (Django's PasswordResetView) looks the account up by
    its *current* address and mails only that: hanako, told on her old address, asks for a reset with it and
    gets nothing; the thief asks with his and gets the link, resets, and her password is gone for good (her
    next reset mail goes to him too). The cooling-off lets her read about the takeover, not undo it."""
    from django.core import mail

    from .test_email_change import verified_customer
    from .test_previous_addresses import _changed

    user, session = verified_customer(user_factory, browser_at, settings, "alice")
    # The thief's two-factor change (accepted), confirmed without her passkey (a passkey-confirmed change is
    # hers and closes the addresses before it for resets: round thirty-nine).
    _changed(user, "thief@evil.example")
    user.refresh_from_db()
    assert user.email == "thief@evil.example"
    mail.outbox.clear()

    customer = browser_at(IP_TOKYO, "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/131.0")
    customer.post("/password/reset/", {"email": "alice@example.jp"})
    thief = browser_at(IP_OSAKA, "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0")
    thief.post("/password/reset/", {"email": "thief@evil.example"})
    links = {
        tuple(m.to): m.body
        for m in mail.outbox
        if "/password/reset/" in m.body or "reset" in m.subject.lower()
    }

    # SECURE: during the cooling-off of an e-mail change the reset link goes to the address from before it
    # (the customer's), never only to the address the change just brought in.
    assert ("alice@example.jp",) in links, f"no reset link reached her previous address: {sorted(links)}"
    assert ("thief@evil.example",) not in links, "the new address alone got a reset link in the cooling-off"


#: A portal with Django's stock auth URLs (its own PasswordResetView), for the system check below.
urlpatterns = [path("accounts/", include("django.contrib.auth.urls"))]


def test_a_portal_with_djangos_own_password_reset_view_is_warned_and_the_demo_is_not(settings: Any) -> None:
    """authguard.W013: the reset above protects only a portal that routes ``password_reset`` to authguard's
    view (or form); the demo does."""
    from django.core import checks
    from django.urls import clear_url_caches

    def w013(urlconf: str) -> list[str]:
        settings.ROOT_URLCONF = urlconf
        clear_url_caches()
        try:
            return [m.id for m in checks.run_checks(tags=[checks.Tags.security]) if m.id == "authguard.W013"]
        finally:
            clear_url_caches()

    assert w013(__name__) == ["authguard.W013"]
    assert w013("demo_site.urls") == []


# -- red team, round eight: a refusal that spends a recovery code ------------------------------------------


@pytest.mark.battery(66)
def test_a_codes_unlock_it_will_refuse_does_not_spend_her_recovery_code(
    totp_hanako: Any, order_api: Any, settings: Any
) -> None:
    """With her username only. She prints her first recovery codes from her own browser (freshly verified
    with her authenticator app of a year): they cool off, as every new factor does. That evening the thief
    locks her account with three wrong passwords (anyone can). She does what the lock's notice says: her
    authenticator code and one of her new recovery codes at the codes unlock. The unlock is refused (403:
    codes cooling off when the account was locked never unlock it, documented), but only after
    ``verify_recovery_code`` has spent her code and told her it was used; ``codes_unlock_available`` never
    asked about cooling-off. Each try, today or a month later, burns one more of her ten codes for nothing
    (the lock's ``locked_at`` never moves), until she has none left for the day she needs them."""
    settings.AUTHGUARD_LOCKOUT_FAILURES = 3
    with time_machine.travel(timezone.now(), tick=False) as clock:
        mine = OrderApi(REMOTE_ADDR=IP_TOKYO)
        mine.login("hanako", HANAKO_PASSWORD)
        fresh = mine.post("/authguard/api/step-up/totp", {"code": totp_token(totp_hanako.totp)})
        assert fresh.status_code == 200, fresh.content
        minted = mine.post("/authguard/api/recovery-codes")
        assert minted.status_code == 201, minted.content
        codes = minted.json()["codes"]
        mine.post("/api/logout")

        clock.shift(timedelta(hours=3))
        thief = OrderApi(REMOTE_ADDR=IP_OSAKA)
        for _ in range(3):
            assert thief.post("/api/login", {"username": "hanako", "password": "guess"}).status_code == 401

        tries = []
        for days in (0, 30):  # that evening, and again a month later (her codes long out of cooling-off)
            clock.shift(timedelta(days=days, minutes=5))
            code = totp_token(totp_hanako.totp)
            body = {"username": "hanako", "totp_code": code, "recovery_code": codes[0]}
            tries.append(OrderApi(REMOTE_ADDR=IP_TOKYO).post("/api/unlock/codes", body).status_code)
            codes = codes[1:]

        spent = RecoveryCode.objects.filter(used_at__isnull=False).count()
        assert 202 not in tries  # refused: that part is the documented rule
        assert spent == 0, f"{spent} of her recovery codes spent by unlocks that were refused ({tries})"


@pytest.mark.battery(66)
def test_with_only_her_username_the_codes_unlock_says_whether_her_factors_are_cooling_off(
    hanako: Any, totp_factory: Any, settings: Any
) -> None:
    """Round eight moved the cooling-off refusal before any code is verified (``_codes_could_unlock``): the
    403 "cannot be unlocked this way" now answers a request with no right code at all. Whoever has her
    username locks her account (three wrong passwords) and sends two made-up codes: 403 tells him she minted
    new recovery codes (or added an app, or an account cooling-off runs) within the cooling-off before the
    lock, i.e. that she has noticed, and that her own way back without a passkey is closed for this lock;
    400 tells him the opposite. The probe is free: refused before ``verify_code``, it is neither throttled
    nor counted, so he can ask as often as he likes. Before round eight a wrong authenticator code got the
    same 400 either way (the cooling-off was asked only after both codes verified). The answer to wrong codes
    must not depend on her factors' state."""
    hanako.totp = totp_factory(hanako)  # her authenticator app of a year
    settings.AUTHGUARD_LOCKOUT_FAILURES = 3
    with time_machine.travel(timezone.now(), tick=False) as clock:
        mine = OrderApi(REMOTE_ADDR=IP_TOKYO)
        mine.login("hanako", HANAKO_PASSWORD)
        assert mine.post("/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)}).status_code == 200
        assert mine.post("/authguard/api/recovery-codes").status_code == 201  # new codes: they cool off
        mine.post("/api/logout")

        clock.shift(timedelta(hours=3))
        thief = OrderApi(REMOTE_ADDR=IP_OSAKA)
        for _ in range(3):
            assert thief.post("/api/login", {"username": "hanako", "password": "guess"}).status_code == 401
        assert AccountLock.objects.get(user=hanako).is_locked

        made_up = {"username": "hanako", "totp_code": wrong_code(hanako.totp), "recovery_code": "A" * 16}
        answers = []
        for _ in range(30):
            clock.shift(1)
            answers.append(thief.post("/api/unlock/codes", made_up).status_code)

        assert set(answers) <= {400, 429}, f"made-up codes learnt her factors' state: {sorted(set(answers))}"


def _lock_and_probe(clock: Any, thief: OrderApi) -> list[int]:
    made_up = {"username": "hanako", "totp_code": "123456", "recovery_code": "A" * 16}
    answers = []
    for _ in range(5):
        clock.shift(1)
        answers.append(thief.post("/api/unlock/codes", made_up).status_code)
    return answers


@pytest.mark.battery(66)
def test_with_only_her_username_the_codes_unlock_does_not_tell_which_factors_she_has(
    hanako: Any, totp_factory: Any, settings: Any
) -> None:
    """Round nine: "the answer to wrong codes must not depend on her factors' state" (the cooling-off
    refusal moved after the authenticator code). ``codes_unlock_available`` still answers before any code is
    verified: made-up codes get 403 "cannot be unlocked this way" while she has an authenticator app but no
    recovery codes, and 400 "the codes are not correct" once she has printed some. Whoever has her username
    locks the account (three wrong passwords, anyone can) and probes for free (refused before
    ``verify_code``: neither throttled nor counted) whether she has recovery codes, whether she has an
    authenticator app at all (a passkey-only customer is 403), and sees the day she prints her first codes:
    that she has noticed. SECURE: wrong codes get one answer whatever factors she has."""
    hanako.totp = totp_factory(hanako)  # her authenticator app of a year, no recovery codes yet
    settings.AUTHGUARD_LOCKOUT_FAILURES = 3
    with time_machine.travel(timezone.now(), tick=False) as clock:
        thief = OrderApi(REMOTE_ADDR=IP_OSAKA)
        for _ in range(3):
            assert thief.post("/api/login", {"username": "hanako", "password": "guess"}).status_code == 401
        assert AccountLock.objects.get(user=hanako).is_locked
        before = _lock_and_probe(clock, thief)

        # The desk unlocks her; she prints her first recovery codes from her own browser.
        lockout.unlock(hanako, by=None, reason="desk")
        clock.shift(timedelta(hours=1))
        mine = OrderApi(REMOTE_ADDR=IP_TOKYO)
        mine.login("hanako", HANAKO_PASSWORD)
        assert mine.post("/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)}).status_code == 200
        assert mine.post("/authguard/api/recovery-codes").status_code == 201
        mine.post("/api/logout")

        clock.shift(timedelta(days=30))  # long after: her codes are out of cooling-off
        for _ in range(3):
            assert thief.post("/api/login", {"username": "hanako", "password": "guess"}).status_code == 401
        assert AccountLock.objects.get(user=hanako).is_locked
        after = _lock_and_probe(clock, thief)

    assert set(before) == set(after), (
        f"made-up codes tell whether she has recovery codes: {sorted(set(before))} then {sorted(set(after))}"
    )


def _probe_codes_unlock(username: str, ip: str, times: int) -> list[int]:
    """Lock ``username`` with wrong passwords (anyone can), then send made-up codes to the codes unlock."""
    thief = OrderApi(REMOTE_ADDR=ip)
    for _ in range(3):
        assert thief.post("/api/login", {"username": username, "password": "guess"}).status_code == 401
    made_up = {"username": username, "totp_code": "123456", "recovery_code": "A" * 16}
    return [thief.post("/api/unlock/codes", made_up).status_code for _ in range(times)]


@pytest.mark.battery(66)
def test_with_only_her_username_the_codes_unlock_does_not_tell_whether_she_has_an_authenticator_app(
    hanako: Any, tanaka: Any, totp_factory: Any, settings: Any
) -> None:
    """Round ten: "every factor question now follows the authenticator code", so that made-up codes get
    "one answer whatever factors she has". But the first question, ``verify_totp``, is itself a factor
    question: for an account without an authenticator app ``verify_code`` returns None at once (no device:
    nothing checked, nothing counted, no throttle), while for one with an app every made-up code is counted
    in the strangers' scopes and the eleventh is refused 429. Whoever has a username locks the account with
    three wrong passwords and sends a dozen made-up codes: 400 for ever means "no authenticator app"
    (a passkey-only customer, or none: the one to phish for a TOTP code is not her), a 429 means she has
    one. SECURE: the same answers, in the same order, whatever factors she has."""
    settings.AUTHGUARD_LOCKOUT_FAILURES = 3
    hanako.totp = totp_factory(hanako)  # hanako has an authenticator app; tanaka has none
    with time_machine.travel(timezone.now(), tick=False):
        # From two networks: every failure counts in the network's scope too (both accounts' alike now).
        without_app = _probe_codes_unlock(tanaka.get_username(), "198.51.100.71", 14)
        with_app = _probe_codes_unlock("hanako", "192.0.2.72", 14)
    assert AccountLock.objects.get(user=hanako).is_locked and AccountLock.objects.get(user=tanaka).is_locked
    assert with_app == without_app, (
        f"made-up codes tell whether she has an authenticator app: {without_app} (none) vs {with_app} (one)"
    )


@pytest.mark.battery(66)
def test_the_codes_unlock_does_not_tell_who_is_a_customer(hanako: Any) -> None:
    """docs/demo.md: the login answers "the same for an unknown user and a wrong password", and the codes
    unlock's docstring: "400 invalid (also for an unknown username)". But an existing account that is not
    locked answers 409 ``not_locked`` *before* any code is looked at, and an unknown username 400: a free,
    unthrottled, unrecorded oracle of which usernames are customers (and which of them are locked right
    now: whether the desk contained the account he took over). The cancel endpoint answers the same way.
    SECURE: the made-up codes of an unknown username and of a customer's unlocked account get one answer."""
    stranger = OrderApi(REMOTE_ADDR="203.0.113.73")
    made_up = {"totp_code": "123456", "recovery_code": "A" * 16}
    customer = stranger.post("/api/unlock/codes", {"username": "hanako", **made_up})
    nobody = stranger.post("/api/unlock/codes", {"username": "no-such-customer", **made_up})
    assert (customer.status_code, customer.json().get("status")) == (
        nobody.status_code,
        nobody.json().get("status"),
    ), f"hanako: {customer.status_code}, an unknown name: {nobody.status_code}"


# -- round twelve: an unlocked account's codes are neither verified nor counted -------------------------


@pytest.mark.battery(66)
def test_made_up_codes_at_the_codes_unlock_tell_a_customer_from_an_unknown_username(
    brokerage_customer: Any, settings: Any
) -> None:
    """Round eleven made a customer's unlocked account answer made-up codes 400, as an unknown username does,
    and counts a factor she lacks like a wrong code. But only the customer's answers are counted: her
    account's throttle scope (``a:<pk>``, ten free failures) fills, and the eleventh made-up code is
    refused 429, while an unknown username is answered 400 for ever, counted nowhere
    (``demo_site/brokerage/api.py`` ``unlock_with_codes``: ``if user is None: raise wrong``). From a
    fresh /24 per request (the network scope never fills), a dozen requests per name tell which usernames
    are customers, on a portal with the failure lock turned off (``AUTHGUARD_LOCKOUT_FAILURES = None``)
    where there is no lock to enumerate by, with nothing but the username. SECURE: one sequence of
    answers for a customer and for a name nobody has."""
    from .conftest import OrderApi

    settings.AUTHGUARD_LOCKOUT_FAILURES = None  # no failure lock: the documented lock oracle is gone
    brokerage_customer(holdings={"7203": 100}, totp=True)  # hanako, an authenticator app

    def probe(username: str, first_octet: int) -> list[int]:
        answers = []
        for n in range(12):
            stranger = OrderApi(REMOTE_ADDR=f"{first_octet}.0.{n}.9")  # a new /24 each time
            made_up = {"username": username, "totp_code": "123456", "recovery_code": "A" * 16}
            answers.append(stranger.post("/api/unlock/codes", made_up).status_code)
        return answers

    with time_machine.travel(timezone.now(), tick=False):
        customer = probe("hanako", 100)
        nobody = probe("no-such-customer", 101)
    assert customer == nobody, f"made-up codes tell a customer ({customer}) from nobody ({nobody})"


@pytest.mark.battery(71)
def test_with_only_her_username_a_stranger_holds_back_her_own_step_up_through_the_codes_unlock(
    brokerage_customer: Any, settings: Any
) -> None:
    """Before round eleven the codes unlock answered an unlocked account ``not_locked`` before any code was
    looked at: free, and counted nowhere. Now every made-up code for an unlocked account is verified and
    counted in her account's throttle scope (``a:<pk>``), the scope her own step-up shares on any browser
    without a month of *learned* standing (after round eleven: every browser she only ever verified with
    her app). On a portal without the failure lock, a stranger with nothing but her username sends eleven
    made-up codes to ``/api/unlock/codes``; hanako then signs in from her browser and types the right code
    from her app: refused 429, and the wait doubles with every further made-up code (up to an hour), for
    as long as he keeps it up. SECURE: her right code signs her in."""
    from django.test import Client

    from .conftest import UA_CHROME_WIN, of_long_standing
    from .test_device_cookie_generations import START, _browser_in_use, _later_sign_ins

    settings.AUTHGUARD_LOCKOUT_FAILURES = None
    hanako = of_long_standing(brokerage_customer(holdings={"7203": 100}, totp=True))
    with time_machine.travel(START, tick=False) as clock:
        _later_sign_ins(_browser_in_use(), clock, 3)  # her laptop at home in Tokyo
        clock.shift(timedelta(days=1))
        made_up = {"username": "hanako", "totp_code": "123456", "recovery_code": "A" * 16}
        for n in range(22):  # ten free, then one each time the account's wait ends: it doubles each time
            OrderApi(REMOTE_ADDR=f"100.0.{n}.9").post("/api/unlock/codes", made_up)
            if 10 <= n < 21:
                clock.shift(2 ** (n - 10) + 1)
        her = Client(REMOTE_ADDR=IP_OSAKA, HTTP_USER_AGENT=UA_CHROME_WIN)
        login = her.post(
            "/api/login", {"username": "hanako", "password": HANAKO_PASSWORD}, content_type="application/json"
        )
        assert login.status_code == 200 and login.json()["status"] == "step_up_required", login.content
        right = her.post("/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)}, "application/json")
    assert right.status_code == 200, (
        f"her right code, held back by a stranger's made-up codes: {right.status_code} "
        f"Retry-After {right.get('Retry-After')} {right.content!r}"
    )


# -- round thirteen: a way turned off for everyone answers everyone alike ------------------------------


@pytest.mark.battery(66)
@pytest.mark.parametrize("preset", ["jsda", "wait_hours_none"])
def test_with_the_codes_unlock_turned_off_made_up_codes_do_not_tell_a_customer_from_nobody(
    brokerage_customer: Any, settings: Any, preset: str
) -> None:
    """The JSDA preset (and ``AUTHGUARD_UNLOCK_WAIT_HOURS = None``) turns the codes unlock off, but its
    routes stay: ``/api/unlock/codes`` answers an unknown username 400 (``if user is None: raise wrong``,
    before authguard is asked) and an existing one 403 ``denied`` (``request_unlock_with_codes`` raises
    ``UnlockUnavailable`` before anything else). With made-up codes, nothing counted or throttled, from one
    address, a stranger learns which usernames are customers (locked or not): the one answer docs/
    interfaces.md promises ("an unknown username ... an account that is not locked: one answer") is broken
    on exactly the portals that run the brokerage preset. The HTML page (``/unlock/codes/``) does the same."""
    if preset == "jsda":
        settings.AUTHGUARD_PRESET = "jsda-2025"
    else:
        settings.AUTHGUARD_UNLOCK_WAIT_HOURS = None
    settings.AUTHGUARD_LOCKOUT_FAILURES = None  # no failure lock: the documented lock oracle is gone
    brokerage_customer(holdings={"7203": 100}, totp=True)  # hanako, not locked

    with time_machine.travel(timezone.now(), tick=False):
        stranger = OrderApi(REMOTE_ADDR="203.0.113.131")
        made_up = {"totp_code": "123456", "recovery_code": "A" * 16}
        customer = [
            stranger.post("/api/unlock/codes", {"username": "hanako", **made_up}).status_code
            for _ in range(3)
        ]
        nobody = [
            stranger.post("/api/unlock/codes", {"username": "no-such-customer", **made_up}).status_code
            for _ in range(3)
        ]
        page = Client(REMOTE_ADDR="203.0.113.132")
        html_customer = page.post("/unlock/codes/", {"username": "hanako", **made_up}).status_code
        html_nobody = page.post("/unlock/codes/", {"username": "no-such-customer", **made_up}).status_code

    assert customer == nobody, f"the codes unlock tells a customer ({customer}) from nobody ({nobody})"
    assert html_customer == html_nobody, f"the page: customer {html_customer}, nobody {html_nobody}"


# -- round fourteen ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [{}, {"username": "hanako"}, {"username": "x" * 151, "totp_code": "123456", "recovery_code": "A" * 16}],
    ids=["empty", "no-codes", "username-too-long"],
)
@pytest.mark.battery(66)
def test_with_the_codes_unlock_turned_off_a_malformed_form_is_still_a_400(
    brokerage_customer: Any, settings: Any, body: dict[str, str]
) -> None:
    """Round thirteen: with ``AUTHGUARD_UNLOCK_WAIT_HOURS = None`` every name gets the same answer, and "a
    malformed body is a 400 whatever the settings" (``demo_site/brokerage/api.py``: the username and codes
    are read before the setting). The HTML page (``demo_site/brokerage/views.py:143``) checks the setting
    *before* the form: a form with no fields, no codes or a 151-character username answers 403 "cannot be
    unlocked this way" where the API, and the page itself with the way on, answer 400 for the input."""
    settings.AUTHGUARD_UNLOCK_WAIT_HOURS = None
    brokerage_customer(holdings={"7203": 100}, totp=True)

    api_answer = Client(REMOTE_ADDR="203.0.113.133").post("/api/unlock/codes", body, "application/json")
    page_answer = Client(REMOTE_ADDR="203.0.113.134").post("/unlock/codes/", body)

    assert api_answer.status_code == 400, api_answer.content
    assert page_answer.status_code == 400, f"the page answered a malformed form {page_answer.status_code}"
