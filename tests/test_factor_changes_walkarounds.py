"""One change per verification, against round eighteen's rule (red team, rounds nineteen to twenty-one).

The thief has the password and relays ONE code of the customer's; he has read the code and has days. Each
test failed on the code before :mod:`authguard.factors.changes` (docs/factor-lifecycle.md): the rule compared
wall-clock times of two web nodes, kept the account's last change as one mark that her own re-addition
cleared, let his own cooling-off passkey keep adding, took no lock when her password reset revoked what
cooled off, and counted a password form refused for a typo as a removal. Real TOTP codes, real WebAuthn
payloads, time-machine for time.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from authguard.factors import inventory, lifecycle, removal
from authguard.factors import passkeys as passkeys_module
from authguard.models import AccountSecurity, Notification, PasskeyDevice, RecoveryCodeDevice

from .conftest import HANAKO_PASSWORD, IP_OSAKA, IP_TOKYO, enter_desk_code, of_long_standing, totp_token
from .factor_scenarios import (
    change_password,
    her_new_passkey,
    her_only_app,
    new_key,
    old_totp,
    passkey_verify,
    register,
    thief_with_one_code,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]


# -- 1: counted, not timed: two web nodes a second apart -----------------------------------------------------
# Round nineteen: "one change per verification" compares wall-clock times written by different web nodes.
#
# ``require_verified_since_change`` orders the session's verification (``state["st"]``, the verifying node's
# ``clock.timestamp()``) against the account's last change (``AccountSecurity.factors_changed_at``, the
# changing node's ``clock.now()``). authguard.clock leaves a node within ``tolerance_seconds`` (2 s) of the
# database uncorrected and itself says two healthy nodes may disagree by twice that
# (``clock.is_from_the_future``). A relayed code verified on a node a second ahead is "after" a change a
# node on the true time makes a moment later: the same verification makes two changes.
#
# The two nodes are simulated with time-machine (in tests authguard.clock applies no correction): the step-up
# request is served at T+1.5 s, the next requests at T+0.1 s, T+0.2 s ... (the true time).


@pytest.mark.battery(63)
def test_a_relayed_code_verified_on_a_node_ahead_adds_his_passkey_and_removes_her_new_one(
    new_browser_api: Any, hanako: Any, totp_factory: Any, clock: Any
) -> None:
    """Round seventeen's case (his passkey added, her new passkey removed, one relayed code) across two
    healthy nodes 1.5 s apart: the step-up lands on the node ahead, so its ``st`` is later than the
    ``factors_changed_at`` the registration writes on the other node 0.1 s (true time) after it."""
    hers = her_new_passkey(new_browser_api, hanako, totp_factory)

    clock.shift(2 * 3600)
    thief = new_browser_api(IP_OSAKA)
    thief.login("hanako", HANAKO_PASSWORD)
    true_time = timezone.now()
    # The step-up is served by node A, whose clock is 1.5 s ahead (within the 2 s tolerance: uncorrected).
    clock.move_to(true_time + timedelta(seconds=1.5))
    assert thief.post("/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)}).status_code == 200
    # The next requests are served by node B, on the true time, a moment later.
    clock.move_to(true_time + timedelta(seconds=0.1))
    added = register(thief, new_key())
    assert added.status_code == 201, added.content  # one change: allowed
    clock.move_to(true_time + timedelta(seconds=0.2))
    removed = thief.post("/authguard/api/factors/remove", {"id": hers.persistent_id})

    kept = PasskeyDevice.objects.filter(pk=hers.pk).exists()
    his = PasskeyDevice.objects.filter(user=hanako).exclude(pk=hers.pk).exists()
    assert kept or not his, (
        f"one relayed code verified on a node 1.5 s ahead: his passkey added ({added.status_code}) and her "
        f"new passkey removed ({removed.status_code}) -- the second change passed because st > "
        "factors_changed_at across nodes"
    )


@pytest.mark.battery(63)
def test_a_relayed_code_verified_on_a_node_ahead_removes_her_new_passkey_then_adds_his(
    new_browser_api: Any, hanako: Any, totp_factory: Any, clock: Any
) -> None:
    """Round fifteen's order (remove hers, then add his) the same way."""
    hers = her_new_passkey(new_browser_api, hanako, totp_factory)

    clock.shift(2 * 3600)
    thief = new_browser_api(IP_OSAKA)
    thief.login("hanako", HANAKO_PASSWORD)
    true_time = timezone.now()
    clock.move_to(true_time + timedelta(seconds=1.5))  # node A, ahead
    assert thief.post("/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)}).status_code == 200
    clock.move_to(true_time + timedelta(seconds=0.1))  # node B, true time
    removed = thief.post("/authguard/api/factors/remove", {"id": hers.persistent_id})
    assert removed.status_code == 200, removed.content  # one change: allowed (her factor cools off)
    clock.move_to(true_time + timedelta(seconds=0.3))
    added = register(thief, new_key())

    assert not PasskeyDevice.objects.filter(user=hanako).exists(), (
        f"one relayed code verified on a node 1.5 s ahead: her new passkey removed ({removed.status_code}), "
        f"then his registered ({added.status_code})"
    )


# -- 2: her re-addition does not clear his removal -----------------------------------------------------------
# Round nineteen: the account's last change is one mark, last writer wins, and an *addition* clears
# "removed" for every session.
#
# ``require_verified_since_change(removing=False)`` only asks for a new verification when the account's last
# change was a removal (``factors_changed_how == "removed"``). The rule is "a session that removed a factor
# adds one only after a new verification", but the mark is the account's: once any other session adds a
# factor, the removing session -- still holding the one relayed code's fresh verification -- adds at once.
# The customer's natural answer to a "factor removed" notice (set her passkey up again) is that addition.


@pytest.mark.battery(63)
def test_her_re_adding_the_passkey_he_removed_lets_his_removing_session_add_his_own(
    new_browser_api: Any, hanako: Any, totp_factory: Any, clock: Any
) -> None:
    """hanako (authenticator app for years) adds a passkey on her usual PC; it cools off. Two hours later the
    thief relays ONE code of her app and removes her new passkey (lenient: it cools off). His session may not
    add now (403: one change per verification). hanako gets the "removed" notice, signs in, verifies with her
    app's next code and sets the passkey up again: the account's mark is now "added". The thief's session,
    verified once with the relayed code a minute ago, registers his passkey: round fifteen's "remove hers,
    then add his" with one relayed code."""
    hers = her_new_passkey(new_browser_api, hanako, totp_factory)

    clock.shift(2 * 3600)
    thief = new_browser_api(IP_OSAKA)
    thief.login("hanako", HANAKO_PASSWORD)
    assert thief.post("/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)}).status_code == 200
    removed = thief.post("/authguard/api/factors/remove", {"id": hers.persistent_id})
    assert removed.status_code == 200, removed.content  # one change: allowed (her factor cools off)
    assert Notification.objects.filter(user=hanako, kind="factor_removed").exists()
    refused = register(thief, new_key())
    assert refused.status_code == 403, refused.content  # the rule holds for his session alone

    # She reacts to the notice: signs in (her usual PC), verifies with her app's next code, adds her key.
    clock.shift(31)
    again = new_browser_api(IP_TOKYO)
    again.login_usual("hanako", HANAKO_PASSWORD)
    assert again.post("/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)}).status_code == 200
    assert register(again, new_key()).status_code == 201
    her_second = PasskeyDevice.objects.get(user=hanako)

    clock.shift(20)  # still within the thief's 5 fresh minutes
    added = register(thief, new_key())

    his = PasskeyDevice.objects.filter(user=hanako).exclude(pk=her_second.pk)
    assert not his.exists(), (
        f"his session removed her passkey ({removed.status_code}) and, once her own session added one, "
        f"registered his ({added.status_code}) with the same relayed code"
    )


# -- 3: his own cooling-off passkey adds nothing -------------------------------------------------------------
# Round nineteen: the thief's own cooling-off passkey keeps the account's mark moving, and the customer's
# documented answer to his passkey ("she removes a passkey she does not know with her authenticator app")
# never gets through.
#
# Adding after adding needs no new verification (``require_verified_since_change`` returns at once when the
# last change was an addition), and a cooling-off factor re-verifies a session (``require_can_change_factors``
# takes any fresh verification). So a session verified only with the thief's own cooling-off passkey adds a
# passkey whenever it likes, and each addition moves ``factors_changed_at`` past her last verification: her
# removal of his passkey asks her to verify again, and again.


@pytest.mark.battery(63)
def test_his_cooling_off_passkey_keeps_adding_and_she_can_never_remove_it_with_her_app(
    new_browser_api: Any, hanako: Any, totp_factory: Any, clock: Any
) -> None:
    """hanako has her authenticator app for years. The thief relays ONE code of it and registers his passkey
    (one change: allowed, it cools off, she is told). Hours later she signs in and verifies with her app to
    remove it. Between her verification and her click his script -- verified with *his own* cooling-off
    passkey, no code of hers -- registers one more passkey: her removal is refused (verify again). Three
    codes of her app later (a minute and a half), his passkey is still there."""
    of_long_standing(hanako)
    hanako.totp = old_totp(hanako, totp_factory)

    thief = new_browser_api(IP_OSAKA)
    thief.login("hanako", HANAKO_PASSWORD)
    assert thief.post("/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)}).status_code == 200
    key = new_key()
    assert register(thief, key).status_code == 201
    his_first = PasskeyDevice.objects.get(user=hanako)
    assert inventory.factor_is_cooling_off(his_first)

    clock.shift(3 * 3600)
    # His script signs in again with his own passkey alone (passwordless): no code of hers.
    thief = new_browser_api(IP_OSAKA)
    options = thief.post("/authguard/api/login/passkey/options")
    assert thief.post("/authguard/api/login/passkey", key.get(options.json())).status_code == 200
    thief.token = thief.client.get("/api/csrf").json()["csrf_token"]  # the sign-in rotated it
    her = new_browser_api(IP_TOKYO)
    her.login_usual("hanako", HANAKO_PASSWORD)
    answers, his_more = [], []
    for _attempt in range(3):
        clock.shift(31)  # her app's next code
        assert her.post("/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)}).status_code == 200
        clock.shift(1)
        # His script: keep the session fresh with his own passkey, add one more (no code of hers).
        assert passkey_verify(thief, key).status_code == 200
        # Refused since round nineteen: a verification with a factor cooling off adds nothing while the
        # account has one that is not.
        his_more.append(register(thief, new_key()).status_code)
        clock.shift(1)
        answers.append(her.post("/authguard/api/factors/remove", {"id": his_first.persistent_id}).status_code)
        if answers[-1] == 200:
            break

    assert set(his_more) == {403}, his_more
    assert not PasskeyDevice.objects.filter(pk=his_first.pk).exists(), (
        f"her removals of the thief's passkey, each right after a verification with her app, were refused "
        f"{answers}: his own cooling-off passkey re-verified his session and added one more passkey each "
        f"time ({PasskeyDevice.objects.filter(user=hanako).count()} passkeys of his now)"
    )


# -- 4: a registration in flight and her password reset ------------------------------------------------------
# Round nineteen: a password reset by e-mail does not serialise with an addition in flight.
#
# The reset (Django's PasswordResetConfirmView: ``user.save()`` -> authguard's receiver ->
# ``login.flow.password_changed(user)``) ends every session and revokes every factor cooling off
# (``removal.revoke_factors_added_in_cooling_off``), but takes no lock on ``AccountSecurity`` and, having no
# session of hers, writes no "removed" mark (``lifecycle.note_session_change`` returns for ``request=None``).
# A registration of the thief's that passed its checks before the reset and commits after it finds the
# account's last change to be his own addition ("adding after adding stays one verification") and binds his
# passkey: it outlives the reset that docs/factor-lifecycle.md names as her answer ("her reset by e-mail ends
# his sessions and revokes what he added"), and signs him in without any password.


def _reset_link() -> str:
    """Her reset request: the link mailed to her."""
    mail.outbox.clear()
    Client(REMOTE_ADDR=IP_TOKYO).post("/password/reset/", {"email": "hanako@example.com"})
    links = [
        m for message in mail.outbox for m in re.findall(r"https?://\S+/password/reset/\S+/", message.body)
    ]
    assert links, [message.body for message in mail.outbox]
    return "/" + links[0].split("/", 3)[3]


def _finish_reset(link: str, new_password: str) -> None:
    """She opens the link and sets a new password."""
    browser = Client(REMOTE_ADDR=IP_TOKYO)
    form = browser.get(link, follow=True)
    assert form.status_code == 200, form.status_code
    done = browser.post(
        form.redirect_chain[-1][0] if form.redirect_chain else link,
        {"new_password1": new_password, "new_password2": new_password},
    )
    assert done.status_code == 302, done.content[:500]


@pytest.mark.battery(63)
def test_a_passkey_registration_in_flight_outlives_her_password_reset(
    new_browser_api: Any, hanako: Any, totp_factory: Any, clock: Any, monkeypatch: Any
) -> None:
    """hanako (authenticator app for years). The thief relays ONE code and registers a passkey; she is told
    and resets her password by e-mail. His script keeps registering passkeys (adding after adding needs no
    new verification); the one whose checks passed just before her new password was saved commits just after
    the reset revoked the others. It is bound, cooling off, and signs him in without a password."""
    of_long_standing(hanako)
    hanako.totp = old_totp(hanako, totp_factory)

    thief = new_browser_api(IP_OSAKA)
    thief.login("hanako", HANAKO_PASSWORD)
    assert thief.post("/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)}).status_code == 200
    assert register(thief, new_key()).status_code == 201  # his first: she gets "passkey added"

    clock.shift(60)
    link = _reset_link()  # she asks for the reset at once

    real_verify = passkeys_module.verify_registration_response
    fired = []

    def reset_lands_meanwhile(*args: Any, **kwargs: Any) -> Any:
        # His registration has passed require_can_change_factors and require_verified_since_change; her new
        # password is saved (on another web node) before it reaches its transaction.
        if not fired:
            fired.append(True)
            _finish_reset(link, "her own new password 2026")
        return real_verify(*args, **kwargs)

    monkeypatch.setattr(passkeys_module, "verify_registration_response", reset_lands_meanwhile)
    key = new_key()
    in_flight = register(thief, key)
    monkeypatch.undo()
    assert fired

    hanako.refresh_from_db()
    assert hanako.check_password("her own new password 2026")
    survivors = list(PasskeyDevice.objects.filter(user=hanako).values_list("name", flat=True))

    # What he does with it: a passwordless sign-in.
    back = new_browser_api(IP_OSAKA)
    options = back.post("/authguard/api/login/passkey/options")
    signed_in = back.post("/authguard/api/login/passkey", key.get(options.json()))

    assert not survivors, (
        f"her password reset revoked his first passkey, but the registration in flight "
        f"({in_flight.status_code}) committed after it: {len(survivors)} passkey of his survives the reset "
        f"and signs him in without a password ({signed_in.status_code})"
    )


# -- 5: a refused password form changes nothing --------------------------------------------------------------
# Round nineteen (low): ``PasswordChangeView.dispatch`` writes the account's "removed" mark on every POST,
# before Django's form is even validated. A password form refused for a typo changed nothing, yet the account
# now counts a removal: her session (and every other one) must verify again before adding a factor.


@pytest.mark.battery(63)
def test_a_refused_password_form_counts_as_a_removal_and_her_next_passkey_is_refused(
    new_browser_api: Any, hanako: Any, totp_factory: Any, clock: Any
) -> None:
    of_long_standing(hanako)
    hanako.totp = old_totp(hanako, totp_factory)
    her = new_browser_api(IP_TOKYO)
    her.login_usual("hanako", HANAKO_PASSWORD)
    assert her.post("/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)}).status_code == 200
    typo = change_password(her, "hanako-test-2O25", "a new password of hers 2026")  # wrong old password
    assert typo.status_code == 200  # the form again, with its error: nothing changed
    hanako.refresh_from_db()
    assert hanako.check_password(HANAKO_PASSWORD)
    clock.shift(5)
    added = register(her, new_key())

    assert added.status_code == 201 and PasskeyDevice.objects.filter(user=hanako).exists(), (
        f"a password form refused for a typo counted as a removal: her passkey is refused "
        f"({added.status_code})"
    )


# -- 6: round twenty: after her removal, replaced sets, the desk's grant and a reset -------------------------
# Each failed on round nineteen's count: an addition read only the account's last change (a session verified
# before her removal added after her addition); a set replaced quietly left the sessions it verified adding;
# a session with nothing to verify with (the desk's grant, a new customer after a reset) was refused for good.


@pytest.mark.battery(63)
def test_his_adding_session_adds_again_after_she_removes_his_passkey_and_adds_her_own(
    new_browser_api: Any, hanako: Any, totp_factory: Any, clock: Any
) -> None:
    """The thief relays ONE code and registers his passkey (one change). hanako is told, verifies with her
    app and removes it (her verification is after his change: allowed). She then sets up a passkey of her
    own (a new verification: her first one is spent on the removal). His session -- verified with the one
    relayed code, *before* her removal -- registers another passkey: "an addition needs a verification made
    after the account's last removal" does not hold, because the rule only asks that the account's last
    change be an addition."""
    of_long_standing(hanako)
    hanako.totp = old_totp(hanako, totp_factory)

    thief = new_browser_api(IP_OSAKA)
    thief.login("hanako", HANAKO_PASSWORD)
    assert thief.post("/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)}).status_code == 200
    assert register(thief, new_key()).status_code == 201
    his_first = PasskeyDevice.objects.get(user=hanako)

    clock.shift(40)
    her = new_browser_api(IP_TOKYO)
    her.login_usual("hanako", HANAKO_PASSWORD)
    assert her.post("/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)}).status_code == 200
    removed = her.post("/authguard/api/factors/remove", {"id": his_first.persistent_id})
    assert removed.status_code == 200, removed.content
    assert not PasskeyDevice.objects.filter(user=hanako).exists()

    clock.shift(31)
    assert her.post("/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)}).status_code == 200
    assert register(her, new_key()).status_code == 201
    hers = PasskeyDevice.objects.get(user=hanako)

    clock.shift(20)  # 91 s after his step-up: still fresh
    again = register(thief, new_key())

    his = PasskeyDevice.objects.filter(user=hanako).exclude(pk=hers.pk)
    assert not his.exists(), (
        f"his session verified once, before her removal of his passkey, registered another "
        f"({again.status_code}) once her own addition made the account's last change an addition"
    )


def _spend_codes(new_browser_api: Any, codes: list[str]) -> list[Any]:
    """One session per code: password + one recovery code each (every code spent); returns the sessions."""
    sessions = []
    for code in codes:
        s = new_browser_api(IP_OSAKA)
        s.login("hanako", HANAKO_PASSWORD)
        ok = s.post("/authguard/api/step-up/recovery-code", {"code": code})
        assert ok.status_code == 200, ok.content
        sessions.append(s)
    return sessions


@pytest.mark.battery(63)
def test_sessions_verified_with_his_own_recovery_codes_add_once_the_set_is_quietly_replaced(
    new_browser_api: Any, hanako: Any, totp_factory: Any, clock: Any
) -> None:
    """hanako has only her authenticator app of years. The thief relays ONE code (session A) and mints a
    recovery-code set (one change, an addition; it cools off). He spends its ten codes in ten sessions of
    his: each is verified with *his cooling-off set*, and rightly adds nothing (403). Session A mints a new
    set: the spent one is deleted quietly (``delete_replaced``; no removal counted, the account's last change
    stays an addition). Now those ten sessions' verifier is gone (``session_device`` None), the cooling-off
    check of ``require_verified_since_change`` is skipped, and "the last change was an addition" passes
    them: each registers a passkey of his. "A verification with a cooling-off factor changes nothing while
    the account has a factor not cooling off" does not hold."""
    of_long_standing(hanako)
    hanako.totp = old_totp(hanako, totp_factory)

    a = new_browser_api(IP_OSAKA)
    a.login("hanako", HANAKO_PASSWORD)
    assert a.post("/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)}).status_code == 200
    minted = a.post("/authguard/api/recovery-codes")
    assert minted.status_code == 201, minted.content
    first_set = RecoveryCodeDevice.objects.get(user=hanako)
    assert inventory.factor_is_cooling_off(first_set)

    clock.shift(10)
    sessions = _spend_codes(new_browser_api, minted.json()["codes"])
    refused = register(sessions[-1], new_key())
    assert refused.status_code == 403, refused.content  # the rule holds while his set exists

    clock.shift(10)
    assert a.post("/authguard/api/recovery-codes").status_code == 201  # the spent set replaced, quietly
    assert not RecoveryCodeDevice.objects.filter(pk=first_set.pk).exists()

    clock.shift(5)
    added = [register(s, new_key()).status_code for s in sessions[:3]]

    assert set(added) == {403}, (
        f"sessions verified only with his own cooling-off recovery codes registered passkeys {added} once "
        f"the set was replaced: {PasskeyDevice.objects.filter(user=hanako).count()} passkeys of his"
    )


def _spend_in_one_session(new_browser_api: Any, codes: list[str]) -> Any:
    """One session of his steps up with each code in turn (every code spent); its last verification is with
    that set."""
    s = new_browser_api(IP_OSAKA)
    s.login("hanako", HANAKO_PASSWORD)
    for code in codes:
        ok = s.post("/authguard/api/step-up/recovery-code", {"code": code})
        assert ok.status_code == 200, ok.content
    return s


@pytest.mark.battery(63)
def test_his_recovery_code_relay_keeps_adding_past_the_relayed_code_and_she_can_never_remove_his_passkey(
    new_browser_api: Any, hanako: Any, totp_factory: Any, clock: Any
) -> None:
    """Round nineteen's "his own cooling-off factor keeps adding" again, through sets quietly replaced.

    ONE relayed code of her app (session A) mints a set. His sessions relay-race: each generation spends the
    current set (so it is "no factor to keep") and a session of the generation before, whose set was replaced
    (verifier gone, still fresh), mints the next one, which makes that generation's verifier gone in turn.
    Minutes after the relayed code is stale his sessions still register passkeys whenever they like; each
    time she verifies with her app to remove his passkey, his script adds one more in between and her removal
    asks her to verify again."""
    of_long_standing(hanako)
    hanako.totp = old_totp(hanako, totp_factory)

    a = new_browser_api(IP_OSAKA)
    a.login("hanako", HANAKO_PASSWORD)
    assert a.post("/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)}).status_code == 200
    codes = a.post("/authguard/api/recovery-codes").json()["codes"]
    clock.shift(10)
    previous = _spend_in_one_session(new_browser_api, codes)
    clock.shift(10)
    codes = a.post("/authguard/api/recovery-codes").json()["codes"]  # his first generation's verifier gone
    minted_by_generation = []
    for _generation in range(3):
        clock.shift(180)
        current = _spend_in_one_session(new_browser_api, codes)
        clock.shift(5)
        minted = previous.post("/authguard/api/recovery-codes")
        minted_by_generation.append(minted.status_code)
        if minted.status_code != 201:
            break  # since round twenty: the replaced set counts as removed, its sessions change nothing
        codes = minted.json()["codes"]
        previous = current
    assert register(a, new_key()).status_code == 403  # the relayed code's session is long stale
    added = [register(s, new_key()).status_code for s in (previous, current)]

    assert set(added) == {403} and not PasskeyDevice.objects.filter(user=hanako).exists(), (
        f"ten minutes after the one relayed code, sessions verified with his own (replaced) recovery codes "
        f"minted {minted_by_generation} and registered passkeys {added}"
    )


@pytest.mark.battery(63)
def test_a_day_later_his_session_verified_with_his_passkey_adds_once_she_removes_it_and_adds_her_own(
    new_browser_api: Any, hanako: Any, totp_factory: Any, clock: Any
) -> None:
    """The relayed code is a day old. His passkey (cooling off, 14 days) keeps a session of his freshly
    verified (his script re-verifies every few minutes); it adds nothing while the passkey exists. hanako
    removes the passkey she does not know with her app (docs: her answer), then sets up her own passkey.
    His session's verifier is gone, so the cooling-off check is skipped, and the account's last change is
    an addition: his session registers a new passkey of his."""
    of_long_standing(hanako)
    hanako.totp = old_totp(hanako, totp_factory)
    thief = new_browser_api(IP_OSAKA)
    thief.login("hanako", HANAKO_PASSWORD)
    assert thief.post("/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)}).status_code == 200
    key = new_key()
    assert register(thief, key).status_code == 201
    his_first = PasskeyDevice.objects.get(user=hanako)

    clock.shift(24 * 3600)
    b = new_browser_api(IP_OSAKA)
    options = b.post("/authguard/api/login/passkey/options")
    assert b.post("/authguard/api/login/passkey", key.get(options.json())).status_code == 200
    b.token = b.client.get("/api/csrf").json()["csrf_token"]
    assert passkey_verify(b, key).status_code == 200
    assert register(b, new_key()).status_code == 403  # his cooling-off passkey adds nothing

    clock.shift(30)
    her = new_browser_api(IP_TOKYO)
    her.login_usual("hanako", HANAKO_PASSWORD)
    assert her.post("/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)}).status_code == 200
    assert her.post("/authguard/api/factors/remove", {"id": his_first.persistent_id}).status_code == 200
    clock.shift(31)
    assert her.post("/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)}).status_code == 200
    assert register(her, new_key()).status_code == 201
    hers = PasskeyDevice.objects.get(user=hanako)

    clock.shift(5)
    again = register(b, new_key())
    assert not PasskeyDevice.objects.filter(user=hanako).exclude(pk=hers.pk).exists(), (
        f"a session verified only with his own passkey, which she removed, registered a new one "
        f"({again.status_code}) once she added her own"
    )


@pytest.mark.battery(63)
def test_the_desks_re_binding_grant_after_it_removed_her_lost_phone_lets_her_bind_a_new_app(
    alice: Any, user_factory: Any, totp_factory: Any, browser_at: Any, clock: Any
) -> None:
    """A legitimate sequence: alice lost her phone (her only factor, an authenticator app of months). The desk
    checks who she is, removes the app (staff removal: counted as a change) and grants her a re-binding
    (``lifecycle.grant_rebind``). She signs in on the browser she has used for weeks and sets up the app on
    her new phone. Her session has no verification of its own (she has no factor left to verify with), so
    ``require_verified_since_change`` finds no ``fv``/``fc`` and an account whose count is not 0: refused,
    "confirm it is you again with a security method you had before" -- she has none."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from authguard.factors import lifecycle, removal

    from .conftest import IP_TOKYO, UA_CHROME_WIN, api_post, enter_desk_code, settle_device

    old = totp_factory(alice)
    staff = user_factory("desk", is_staff=True)
    removal.remove_factor(None, user=alice, device=old, by_staff=staff, reason="lost phone, identity checked")
    grant = lifecycle.grant_rebind(alice, by_staff=staff)

    clock.shift(60)
    client = browser_at(IP_TOKYO, UA_CHROME_WIN)
    client.sign_in("alice")
    settle_device(client.cookies["authguard_device"].value, alice)
    enter_desk_code(client, grant)
    begun = api_post(client, "api-totp")
    assert begun.status_code == 200, begun.content
    new = TOTPDevice.objects.get(user=alice, confirmed=False)
    clock.shift(31)
    confirmed = api_post(client, "api-totp-confirm", {"code": totp_token(new)})
    assert confirmed.status_code == 201, (
        f"the desk removed her lost app and granted a re-binding; her own session on her usual browser "
        f"could not bind the new one: {confirmed.status_code} {confirmed.content[:200]!r}"
    )


@pytest.mark.battery(63)
def test_a_new_customer_who_reset_her_forgotten_password_can_still_add_her_first_factor(
    alice: Any, browser_at: Any, clock: Any
) -> None:
    """A legitimate sequence: alice (no factor yet) forgot her password and resets it by e-mail. The reset
    counts as a removal (``revoke_factors_added_in_cooling_off`` -> ``count_change(None)``), so the account's
    count is 1, last change "removed". She signs in on her usual browser and sets up her first factor, an
    authenticator app (the first-factor path: a low-risk session). Her session never verified with a factor
    -- she has none -- so it has no ``fv``: refused, with no method to verify with."""
    import re

    from django.core import mail
    from django.test import Client
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from .conftest import IP_TOKYO, UA_CHROME_WIN, api_post, settle_device

    client = browser_at(IP_TOKYO, UA_CHROME_WIN)
    client.sign_in("alice")
    settle_device(client.cookies["authguard_device"].value, alice)
    client.post("/logout/")

    mail.outbox.clear()
    Client(REMOTE_ADDR=IP_TOKYO).post("/password/reset/", {"email": alice.email})
    links = [
        m for message in mail.outbox for m in re.findall(r"https?://\S+/password/reset/\S+/", message.body)
    ]
    assert links, [message.body for message in mail.outbox]
    browser = Client(REMOTE_ADDR=IP_TOKYO)
    form = browser.get("/" + links[0].split("/", 3)[3], follow=True)
    new_password = "alice new pw 2026!"
    done = browser.post(
        form.redirect_chain[-1][0], {"new_password1": new_password, "new_password2": new_password}
    )
    assert done.status_code == 302
    assert AccountSecurity.objects.get(user=alice).factors_changes == 1

    clock.shift(60)
    client.sign_in("alice", "alice new pw 2026!")
    begun = api_post(client, "api-totp")
    assert begun.status_code == 200, (
        f"a new customer who reset her forgotten password cannot set up her first factor: {begun.content!r}"
    )
    new = TOTPDevice.objects.get(user=alice, confirmed=False)
    clock.shift(31)
    assert api_post(client, "api-totp-confirm", {"code": totp_token(new)}).status_code == 201


# -- 7: round twenty-one: where every factor of hers cools off, and a factor from before the records ---------
# Each failed on round twenty's code: with her only app cooling off (the desk had just bound it again), his
# own passkey kept adding and her app could not remove it; the desk's removal of an app from before
# authguard's records left an account that "never had a factor", and a password-only thief bound the first.


def _her_app_rebound_by_the_desk(
    new_browser_api: Any, hanako: Any, totp_factory: Any, user_factory: Any
) -> Any:
    """hanako (an app of years, her only factor) lost her phone: the desk removes the app, grants a
    re-binding, and she binds a new app from her usual browser. It is her only factor, and it cools off."""
    of_long_standing(hanako)
    lost = old_totp(hanako, totp_factory)
    assert lifecycle.ever_had_factor(hanako)  # remembered (first_factor_at), as for an app enrolled here
    staff = user_factory("desk", is_staff=True)
    removal.remove_factor(
        None, user=hanako, device=lost, by_staff=staff, reason="lost phone, identity checked"
    )
    grant = lifecycle.grant_rebind(hanako, by_staff=staff)
    her = new_browser_api(IP_TOKYO)
    her.login_usual("hanako", HANAKO_PASSWORD)
    enter_desk_code(her, grant)  # the code the desk sent her by letter
    return her_only_app(her, hanako)


def _his_passkey_session(new_browser_api: Any, key: Any) -> Any:
    """A session of the thief: her password, then a step-up with his own passkey."""
    s = new_browser_api(IP_OSAKA)
    s.login("hanako", HANAKO_PASSWORD)
    verified = passkey_verify(s, key)
    assert verified.status_code == 200, verified.content
    return s


# -- 1: every factor of hers cools off: his own cooling-off passkey keeps adding ---------------------------


@pytest.mark.battery(63)
def test_when_all_her_factors_cool_off_his_own_passkey_keeps_adding_long_after_the_relayed_code(
    new_browser_api: Any, hanako: Any, totp_factory: Any, user_factory: Any, clock: Any
) -> None:
    """The rule "a verification with a cooling-off factor changes nothing while the account has a factor
    that is not" has an exemption: an account whose every factor cools off (here: the desk re-bound her
    app after she lost her phone). ONE relayed code of her new app registers his passkey (one change);
    from then on every session he verifies with *his own* passkey passes ``require_verified_since_change``
    (no factor of hers is "not cooling off", and an addition only asks for a verification after the last
    removal): a day later, a week later, he adds one more passkey whenever he likes, each addition
    extending the account's cooling-off so that her app never stops cooling off."""
    her_app = _her_app_rebound_by_the_desk(new_browser_api, hanako, totp_factory, user_factory)

    clock.shift(2 * 3600)
    thief = thief_with_one_code(new_browser_api, her_app)
    key = new_key()
    assert register(thief, key).status_code == 201  # the one change of the one relayed code

    added = []
    for _day in range(3):
        clock.shift(20 * 3600)
        s = _his_passkey_session(new_browser_api, key)
        added.append(register(s, new_key()).status_code)

    assert set(added) == {403} and PasskeyDevice.objects.filter(user=hanako).count() == 1, (
        f"days after the one relayed code, sessions verified only with his own cooling-off passkey "
        f"registered more passkeys {added}: {PasskeyDevice.objects.filter(user=hanako).count()} of his; "
        f"her app cools off until {AccountSecurity.objects.get(user=hanako).cooling_off_until}"
    )


@pytest.mark.battery(63)
def test_when_all_her_factors_cool_off_she_cannot_remove_the_passkey_one_relayed_code_added(
    new_browser_api: Any, hanako: Any, totp_factory: Any, user_factory: Any, clock: Any
) -> None:
    """The documented answer to a thief's passkey is to remove it with a factor of hers ("a cooling-off
    factor yields to any older one"). Her only factor, the app the desk re-bound, is older than his passkey
    but cools off itself, and ``require_can_remove`` lets a session verified with a cooling-off factor remove
    nothing but that factor: she cannot remove his passkey. While he keeps adding (test above) the account
    never stops cooling off; her only way out, a password reset, revokes her own app with his."""
    her_app = _her_app_rebound_by_the_desk(new_browser_api, hanako, totp_factory, user_factory)

    clock.shift(2 * 3600)
    thief = thief_with_one_code(new_browser_api, her_app)
    assert register(thief, new_key()).status_code == 201
    his = PasskeyDevice.objects.get(user=hanako)

    clock.shift(3600)
    her = new_browser_api(IP_TOKYO)
    her.login_usual("hanako", HANAKO_PASSWORD)
    assert her.post("/authguard/api/step-up/totp", {"code": totp_token(her_app, steps=1)}).status_code == 200
    removed = her.post("/authguard/api/factors/remove", {"id": his.persistent_id})

    assert removed.status_code == 200 and not PasskeyDevice.objects.filter(pk=his.pk).exists(), (
        f"with her only app (older than his passkey, re-bound by the desk) she cannot remove the passkey one "
        f"relayed code added: {removed.status_code} {removed.content[:200]!r}"
    )


# -- 2: the desk's removal of a factor from before authguard's records: "never had a factor" --------------


@pytest.mark.battery(55)
def test_after_the_desk_removes_her_pre_authguard_app_a_password_only_thief_binds_a_first_factor(
    new_browser_api: Any, hanako: Any, totp_factory: Any, user_factory: Any, clock: Any
) -> None:
    """hanako's authenticator app predates authguard's records (the portal's own django-otp device: no
    FactorRecord, ``first_factor_at`` never written, which ``ever_had_factor`` only writes when asked while
    the device still exists). She lost her phone; the desk removes the app (``remove_factor(by_staff)``
    deletes the device and its record) and grants her a re-binding. The account now "never had a factor":
    a thief with the password alone, on a login the engine allows, gets the first-factor path
    (``low_risk_first_factor``, in UNCOUNTED_VIA) instead of ``rebind_required``, binds his app without any
    grant or verification, and her own re-binding through the desk's grant then asks her to step up with
    his factor."""
    of_long_standing(hanako)
    lost = old_totp(hanako, totp_factory)
    staff = user_factory("desk", is_staff=True)
    removal.remove_factor(
        None, user=hanako, device=lost, by_staff=staff, reason="lost phone, identity checked"
    )
    grant = lifecycle.grant_rebind(hanako, by_staff=staff)

    clock.shift(3600)
    thief = new_browser_api(IP_OSAKA)
    thief.login("hanako", HANAKO_PASSWORD)  # the password alone
    began = thief.post("/authguard/api/totp")
    confirmed = None
    if began.status_code == 200:
        his = TOTPDevice.objects.get(user=hanako, confirmed=False)
        confirmed = thief.post("/authguard/api/totp/confirm", {"code": totp_token(his)})

    clock.shift(600)
    her = new_browser_api(IP_TOKYO)
    her.login_usual("hanako", HANAKO_PASSWORD)
    enter_desk_code(her, grant)
    hers = her.post("/authguard/api/totp")

    assert began.status_code == 403 and not TOTPDevice.objects.filter(user=hanako, confirmed=True).exists(), (
        f"with the password alone the thief bound an app of his ({began.status_code}, "
        f"{getattr(confirmed, 'status_code', None)}) after the desk removed hers; her re-binding through the "
        f"desk's grant: {hers.status_code} {hers.content[:160]!r}"
    )


@pytest.mark.battery(63)
def test_one_relayed_code_of_her_desk_rebound_app_buys_one_passkey_and_no_more(
    new_browser_api: Any, hanako: Any, totp_factory: Any, user_factory: Any, clock: Any
) -> None:
    """The chain of the two tests above, to the end. Day 0: ONE relayed code of the app the desk re-bound
    registers his passkey P1 (14 days unvouched). Every 20 hours a session verified with his own passkey
    adds one more (allowed: no factor of hers is "not cooling off"), which keeps the account cooling off,
    so her app cools off too and removes nothing of his. After P1's 14 days he stops; 24 hours later the
    account's cooling-off ends and P1 and her app stop cooling off at the same instant: his script verifies
    with P1, a "fresh trusted passkey", which passes every rule, and removes her app. She was told of each
    passkey and could do nothing with her factor; he owns the account's factors."""
    her_app = _her_app_rebound_by_the_desk(new_browser_api, hanako, totp_factory, user_factory)

    clock.shift(2 * 3600)
    thief = thief_with_one_code(new_browser_api, her_app)
    key = new_key()
    assert register(thief, key).status_code == 201
    first = PasskeyDevice.objects.get(user=hanako)

    more = []
    for _step in range(16):  # 16 x 20 h: within P1's 14 days
        clock.shift(20 * 3600)
        more.append(register(_his_passkey_session(new_browser_api, key), new_key()).status_code)

    # Since round twenty-one his passkey, younger than her app, adds nothing: the account's cooling-off is not
    # kept running, and the one passkey the relayed code bought is hers to remove for its 14 days (the
    # "added" notice, and her older app: the test above). Outwaited untouched, it becomes trusted, by design.
    assert set(more) == {403} and PasskeyDevice.objects.filter(user=hanako).count() == 1, (
        f"one relayed code, then his own passkeys: {PasskeyDevice.objects.filter(user=hanako).count()} "
        f"passkeys of his ({more})"
    )
    assert first.pk == PasskeyDevice.objects.get(user=hanako).pk
