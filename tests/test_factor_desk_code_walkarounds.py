"""Red team, round seventy-one: the desk's re-binding grant and a browser's standing (factor_verified_at).

Found: round seventy's rule (the grant is used from a browser learned a month ago where her factor verified
once) was met by one relayed code on the thief's parked browser, before or after the grant, in the very
session, or months earlier; a containment kept that browser. Fixed: the grant opens nothing until the
session enters the one-time desk code the desk gives her out of band (``authguard.factors.desk_grant``).
Each attack test below is the attacker's, renamed to what holds now."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from authguard.factors import desk_grant, inventory, lifecycle, throttles
from authguard.models import AccountSecurity, FactorKind, FactorRecord, KnownDevice, PasskeyDevice
from authguard.testing import SoftAuthenticator

from .conftest import IP_TOKYO, enter_desk_code, totp_token
from .console_data import staff_user
from .test_console_walkarounds import START_OF_TIME, taken_over  # noqa: F401 (a fixture, used by name)
from .test_device_cookie_generations import START, _client, _login

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]

MONTH = timedelta(days=throttles.ESTABLISHED_DEVICE_DAYS + 1)


@pytest.fixture
def taken(taken_over: Any) -> Any:  # noqa: F811
    KnownDevice.objects.filter(user=taken_over).update(factor_verified_at=START - timedelta(days=365))
    return taken_over


def _post(client: Client, path: str, body: Any = None) -> Any:
    return client.post(path, json.dumps(body or {}), content_type="application/json")


def _key() -> SoftAuthenticator:
    return SoftAuthenticator(origin="http://localhost:8000", rp_id="localhost")


def _register(client: Client, key: SoftAuthenticator) -> Any:
    options = _post(client, "/authguard/api/passkeys/options")
    if options.status_code != 200:
        return options
    return _post(client, "/authguard/api/passkeys", key.create(options.json()))


def _park_a_browser(hanako: Any) -> Client:
    thief = _client(IP_TOKYO)
    for _ in range(2):
        assert _login(thief)["status"] == "ok"
        _post(thief, "/api/logout")
        hanako.clock.shift(timedelta(hours=2))
    row = KnownDevice.objects.get(user=hanako, first_seen_at__gt=START)
    assert row.learned_at is not None and row.factor_verified_at is None
    hanako.clock.shift(MONTH)
    return thief


def _her_app_lost_and_the_desk_grants(hanako: Any, *, codes_left: bool = False) -> Any:
    FactorRecord.objects.update_or_create(
        device_id=hanako.totp.persistent_id,
        defaults={"user_id": hanako.pk, "kind": FactorKind.TOTP, "enrolled_at": START_OF_TIME},
    )
    FactorRecord.objects.filter(device_id=hanako.totp.persistent_id).update(disabled_at=timezone.now())
    assert bool(inventory.user_factors(hanako)) == codes_left
    return lifecycle.grant_rebind(hanako, by_staff=staff_user("desk-a", perms=()))


def test_held_parked_browser_and_one_relayed_code_do_not_take_her_desk_grant(taken: Any) -> None:
    """Secure: "one relayed code buys him one session, nothing that lasts" (docs/factor-lifecycle.md); the
    desk's grant, given to HER after the desk checked who she is, binds nothing for a browser whose only
    link to her factors is one code relayed by a phishing page.

    Attack: day 0 his own browser on her line signs in twice with the password alone (learned). Day 31 his
    phishing page relays ONE authenticator code: he steps up on the parked browser (one session: what the
    docs concede). That verification writes KnownDevice.factor_verified_at on HIS browser
    (login/stepup.py:note_factor_verified: "a relayed code counts"). Day 33 she loses her phone (app
    disabled, no usable factor), phones the desk, the desk grants her a 72 h re-binding. He polls from the
    parked browser: password alone signs in (no usable factor), registers his passkey: session_vouched(
    via="staff") is true because the browser was learned >30 days ago and "her factor verified there once".
    His passkey is enrolled_vouched (24 h, not 14 days), the grant is spent, she is shut out; a day later
    it is the account's trusted passkey. No second code, no month between code and use.

    Root cause: authguard/factors/lifecycle.py:session_vouched: ``via == "staff" and learned <= since`` with
    ``verified is not None``: the verification that satisfies it may be a relayed code at any time, on a
    browser learned by password-only sign-ins; authguard/login/stepup.py:note_factor_verified counts a
    relayed TOTP/recovery code.

    Fix: for the grant, require the browser's factor_verified_at itself to be >= ESTABLISHED_DEVICE_DAYS old
    AND before the loss of the factor/the grant (as for adding), or record on the row whether the
    verification was made in a session that was already vouched (a phishing-resistant or established
    session) and accept only those; better, bind the grant to a one-time code the desk gives her.
    Held since round seventy-one: the grant opens nothing until the session enters the desk's one-time code,
    which the desk gives her by letter or by phone, never to the caller (``desk_grant.redeem_code``).
    """
    hanako = taken
    thief = _park_a_browser(hanako)
    assert _login(thief)["status"] == "ok"
    relayed = _post(thief, "/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)})
    assert relayed.status_code == 200, relayed.content  # ONE relayed code: one session
    _post(thief, "/api/logout")
    assert KnownDevice.objects.get(user=hanako, first_seen_at__gt=START).factor_verified_at is not None
    hanako.clock.shift(timedelta(days=2))
    _her_app_lost_and_the_desk_grants(hanako)
    hanako.clock.shift(timedelta(minutes=5))
    assert _login(thief)["status"] == "ok"  # password alone: no usable factor
    bound = _register(thief, _key())
    his = PasskeyDevice.objects.filter(user=hanako).first()
    record = FactorRecord.objects.filter(device_id=getattr(his, "persistent_id", "-")).first()
    grant = AccountSecurity.objects.get(user=hanako).rebind_granted_until
    assert bound.status_code == 403 and his is None and grant is not None, (
        f"one relayed code 2 days earlier + parked browser took her desk grant: {bound.status_code}, "
        f"vouched={getattr(record, 'enrolled_vouched', None)}, cooling off until "
        f"{inventory.cooling_off_end(his) if his else None}, grant left={grant}"
    )


def test_held_the_browser_kept_by_a_containment_after_the_relay_does_not_take_her_grant(taken: Any) -> None:
    """Secure: once the desk has contained an account after a relayed code (she reports the phishing),
    the thief's browser that the relayed code verified binds nothing through the grant the desk then gives
    her.

    Attack: his browser parked a month (learned by two password-only sign-ins), then one relayed code on it
    (day 31). She reports it and that she cannot find her phone; the desk runs the containment "end all
    sessions" and, having checked who she is, grants her a re-binding. The containment forgets only
    browsers *learned* in the last 30 days (console/staff_actions.py:_forget_young_browsers): his was
    learned a month ago, so it stays, with the factor_verified_at the relayed code wrote yesterday. He signs
    in again with the password (no usable factor) and binds his passkey through her grant (enrolled_vouched,
    24 h), shutting her out.

    Root cause: authguard/console/staff_actions.py:_forget_young_browsers judges standing by learned_at,
    while since round 68 a browser's standing for vouching counts from factor_verified_at; and
    authguard/factors/lifecycle.py:session_vouched lets the grant take a browser verified at any time.

    Fix: _forget_young_browsers should also forget browsers whose factor_verified_at is younger than
    ESTABLISHED_DEVICE_DAYS (or null) — the same standard session_vouched uses — and the grant should need a
    verification there older than the month (see the test above).
    Held since round seventy-one: the grant opens nothing until the session enters the desk's one-time code,
    which the desk gives her by letter or by phone, never to the caller (``desk_grant.redeem_code``).
    """
    from .test_console_walkarounds import contain

    hanako = taken
    thief = _park_a_browser(hanako)
    assert _login(thief)["status"] == "ok"
    assert _post(thief, "/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)}).status_code == 200
    hanako.clock.shift(timedelta(hours=3))
    contain(hanako, "end_sessions")
    his_row = KnownDevice.objects.get(user=hanako, first_seen_at__gt=START)
    assert his_row.revoked_at is None  # the containment kept it: learned a month ago
    _her_app_lost_and_the_desk_grants(hanako)
    hanako.clock.shift(timedelta(minutes=5))
    assert _login(thief)["status"] == "ok"
    bound = _register(thief, _key())
    his = PasskeyDevice.objects.filter(user=hanako).first()
    grant = AccountSecurity.objects.get(user=hanako).rebind_granted_until
    assert bound.status_code == 403 and his is None and grant is not None, (
        f"after the containment, the browser his relayed code verified took her new grant: "
        f"{bound.status_code}, grant left={grant}"
    )


def test_held_one_relayed_code_on_day_zero_takes_no_desk_grant_months_later(taken: Any) -> None:
    """Secure: as above. Attack: the phishing session itself (day 0, his new browser, challenged, ONE
    relayed code) writes factor_verified_at; one later password-only sign-in learns the browser. He does
    nothing more. Whenever, months later, the desk grants her a re-binding (a lost phone), his browser
    binds his passkey through it within the 72 h by polling. The docs' "two relayed codes a month apart"
    holds only for adding with a fresh verification; the grant needs none.

    Root cause: authguard/factors/lifecycle.py:session_vouched (here even its ordinary rule: the one
    relayed code's factor_verified_at is > 30 days old and the browser is learned; the grant, unlike an
    addition, needs no fresh verification, so the "second relayed code a month later" never comes) with
    authguard/login/stepup.py:note_factor_verified counting a relayed code.
    Fix: a relayed code's verification must not give a browser standing for the desk's grant (record on
    KnownDevice whether the first verification was phishing-resistant or made in an already vouched
    session, and let only that count for via="staff"); better, bind the grant to a desk one-time code.
    Held since round seventy-one: the grant opens nothing until the session enters the desk's one-time code,
    which the desk gives her by letter or by phone, never to the caller (``desk_grant.redeem_code``).
    """
    hanako = taken
    thief = _client(IP_TOKYO)
    assert _login(thief)["status"] == "ok"
    assert _post(thief, "/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)}).status_code == 200
    _post(thief, "/api/logout")
    hanako.clock.shift(timedelta(hours=2))
    assert _login(thief)["status"] == "ok"
    _post(thief, "/api/logout")
    hanako.clock.shift(timedelta(days=120))
    _her_app_lost_and_the_desk_grants(hanako)
    hanako.clock.shift(timedelta(minutes=5))
    assert _login(thief)["status"] == "ok"
    bound = _register(thief, _key())
    his = PasskeyDevice.objects.filter(user=hanako).first()
    assert bound.status_code == 403 and his is None, (
        f"day-0 relayed code took a grant 4 months later: {bound}"
    )


def test_held_a_relayed_code_during_the_accounts_cooling_off_gives_his_browser_no_standing(
    taken: Any,
) -> None:
    """Held: a code relayed while the account cools off (she just changed her e-mail) writes no
    factor_verified_at on his parked browser, so the desk's grant later is not his."""
    hanako = taken
    thief = _park_a_browser(hanako)
    lifecycle.start_cooling_off(hanako, reason=lifecycle.REASON_EMAIL_CHANGED)
    assert _login(thief)["status"] == "ok"
    assert _post(thief, "/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)}).status_code == 200
    _post(thief, "/api/logout")
    assert KnownDevice.objects.get(user=hanako, first_seen_at__gt=START).factor_verified_at is None
    hanako.clock.shift(timedelta(days=2))
    _her_app_lost_and_the_desk_grants(hanako)
    assert _login(thief)["status"] == "ok"
    assert _register(thief, _key()).status_code == 403
    assert not PasskeyDevice.objects.filter(user=hanako).exists()


def test_held_a_forgotten_browser_relearned_loses_the_standing_its_relayed_code_gave(taken: Any) -> None:
    """Held: his parked browser, verified by a relayed code, is forgotten (revoked); his next allowed
    sign-in learns it again with factor_verified_at cleared (risk/history.py:learn), so the grant is not his;
    her laptop of a year still takes it."""
    hanako = taken
    thief = _park_a_browser(hanako)
    assert _login(thief)["status"] == "ok"
    assert _post(thief, "/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)}).status_code == 200
    _post(thief, "/api/logout")
    KnownDevice.objects.filter(user=hanako, first_seen_at__gt=START).update(
        revoked_at=timezone.now(), trusted_until=None
    )
    hanako.clock.shift(timedelta(days=40))
    grant = _her_app_lost_and_the_desk_grants(hanako)
    assert _login(thief)["status"] == "ok"
    row = KnownDevice.objects.get(
        user=hanako,
        cookie_hash__in=KnownDevice.objects.filter(user=hanako, first_seen_at__gt=START).values(
            "cookie_hash"
        ),
    )
    assert row.revoked_at is None and row.factor_verified_at is None
    assert _register(thief, _key()).status_code == 403
    assert not PasskeyDevice.objects.filter(user=hanako).exists()
    # Her laptop of a year keeps the grant, with the desk's code.
    assert _login(hanako.laptop)["status"] == "ok"
    enter_desk_code(hanako.laptop, grant)
    assert _register(hanako.laptop, _key()).status_code == 201


def test_held_her_pc_verified_once_last_week_takes_her_grant_with_the_desk_code(taken: Any) -> None:
    """What the code buys her: her PC, used with the password alone for two months and verified with her app
    for the first time a week ago, looks to authguard exactly like the thief's parked browser with one
    relayed code; with the desk's code it takes the grant (a browser rule could not tell the two apart)."""
    hanako, clock = taken, taken.clock
    pc = _client(IP_TOKYO)
    for _ in range(3):
        assert _login(pc)["status"] == "ok"
        _post(pc, "/api/logout")
        clock.shift(timedelta(days=20))
    assert _login(pc)["status"] == "ok"
    assert _post(pc, "/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)}).status_code == 200
    _post(pc, "/api/logout")
    clock.shift(timedelta(days=7))
    grant = _her_app_lost_and_the_desk_grants(hanako)
    assert _login(pc)["status"] == "ok"
    refused = _register(pc, _key())
    assert refused.status_code == 403 and refused.json()["code"] == "desk_code_required"
    enter_desk_code(pc, grant)
    assert _register(pc, _key()).status_code == 201
    assert AccountSecurity.objects.get(user=hanako).rebind_granted_until is None  # used up


def test_held_a_relayed_recovery_code_in_the_grants_session_binds_nothing(taken: Any) -> None:
    """Secure: the desk's grant to bind her authenticator app again (hers was disabled: lost phone; she
    keeps her printed recovery codes) is not usable by a session whose only proof is one relayed code.

    Attack: his browser parked a month (two password-only sign-ins). During the grant's 72 h his phishing
    page relays ONE of her recovery codes; on the parked browser that code is the session's fresh
    verification (require_can_change_factors) AND, through note_factor_verified, the "her factor verified
    there once" that session_vouched(via="staff") asks of a browser learned a month ago: begin/confirm
    TOTP enrollment (which demands require_strong_rebind because her app is disabled) bind HIS
    authenticator app as hers, enrolled_vouched (24 h), and spend her grant.

    Root cause: authguard/factors/lifecycle.py:session_vouched (``via == "staff" and learned <= since`` with
    any factor_verified_at, including one written moments ago by the session's own relayed code in
    authguard/login/stepup.py:note_factor_verified).
    Fix: for via="staff" ignore a factor_verified_at written after the grant (or by this session), and
    require it to be older than ESTABLISHED_DEVICE_DAYS; better, a desk one-time code.
    Held since round seventy-one: the grant opens nothing until the session enters the desk's one-time code,
    which the desk gives her by letter or by phone, never to the caller (``desk_grant.redeem_code``).
    """
    from django_otp.oath import TOTP
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from .factor_scenarios import her_recovery_codes

    hanako = taken
    codes = her_recovery_codes(hanako)
    thief = _park_a_browser(hanako)
    _her_app_lost_and_the_desk_grants(hanako, codes_left=True)  # her printed codes remain
    hanako.clock.shift(timedelta(hours=5))
    assert _login(thief)["status"] == "ok"
    relayed = _post(thief, "/authguard/api/step-up/recovery-code", {"code": codes[0]})
    assert relayed.status_code == 200, relayed.content  # ONE relayed code
    begun = _post(thief, "/authguard/api/totp")
    if begun.status_code == 200:
        device = TOTPDevice.objects.get(user=hanako, confirmed=False)
        totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
        totp.time = timezone.now().timestamp()
        confirmed = _post(thief, "/authguard/api/totp/confirm", {"code": f"{totp.token():06d}"})
    else:
        confirmed = begun
    his = TOTPDevice.objects.filter(user=hanako, confirmed=True).exclude(pk=hanako.totp.pk).first()
    record = FactorRecord.objects.filter(device_id=getattr(his, "persistent_id", "-")).first()
    assert his is None, (
        f"one relayed recovery code on the parked browser used her grant: begin={begun.status_code} "
        f"confirm={confirmed.status_code}, vouched={getattr(record, 'enrolled_vouched', None)}, "
        f"via={getattr(record, 'enrolled_via', None)}, grant left="
        f"{AccountSecurity.objects.get(user=hanako).rebind_granted_until}"
    )


# -- the desk code itself ------------------------------------------------------------------------------------


def test_held_her_new_phone_binds_her_passkey_with_the_desk_code(taken: Any) -> None:
    """She lost the phone with her app and has no browser of standing at hand: her new phone's browser,
    signed in at home with the password (no usable factor), enters the desk's code and binds her new passkey;
    the grant is used up and the factor cools off like any new one."""
    hanako = taken
    grant = _her_app_lost_and_the_desk_grants(hanako)
    phone = _client(IP_TOKYO)
    assert _login(phone)["status"] == "ok"
    enter_desk_code(phone, grant)
    bound = _register(phone, _key())
    assert bound.status_code == 201, bound.content
    record = FactorRecord.objects.get(device_id=PasskeyDevice.objects.get(user=hanako).persistent_id)
    assert record.enrolled_via == "staff" and record.cooling_off_until is not None
    assert AccountSecurity.objects.get(user=hanako).rebind_granted_until is None
    # Used up: a second factor through the same code is refused.
    assert _register(phone, _key()).status_code == 403


def test_held_the_code_is_the_sessions_own_and_the_grants_own(taken: Any) -> None:
    """The code she entered on her laptop opens nothing in the thief's session, and a code of a grant the
    desk has since replaced opens nothing at all."""
    hanako = taken
    first = _her_app_lost_and_the_desk_grants(hanako)
    thief = _client(IP_TOKYO)
    assert _login(thief)["status"] == "ok"
    assert _login(hanako.laptop)["status"] == "ok"
    enter_desk_code(hanako.laptop, first)
    assert _register(thief, _key()).status_code == 403
    # The desk gives a new grant (a letter lost in the post): the first code, entered or not, is void.
    second = lifecycle.grant_rebind(hanako, by_staff=staff_user("desk-b", perms=()))
    assert second.code != first.code
    assert _register(hanako.laptop, _key()).status_code == 403
    stale = _post(hanako.laptop, "/authguard/api/rebind-code", {"code": first.code})
    assert stale.status_code == 400 and stale.json()["code"] == "wrong_code"
    enter_desk_code(hanako.laptop, second)
    assert _register(hanako.laptop, _key()).status_code == 201
    assert PasskeyDevice.objects.filter(user=hanako).count() == 1


def test_held_wrong_codes_are_counted_per_session_and_tell_her(taken: Any) -> None:
    """The thief with her password guesses at the code: a session gets five wrong codes, then 429
    ``desk_code_tries``; the grant stays hers (round seventy-two: five wrong codes had withdrawn it with
    nobody told) and the first wrong code tells her someone with her password is at it."""
    from authguard.models import Notification

    hanako = taken
    grant = _her_app_lost_and_the_desk_grants(hanako)
    thief = _client(IP_TOKYO)
    assert _login(thief)["status"] == "ok"
    answers = [_post(thief, "/authguard/api/rebind-code", {"code": f"0000{n}-00000"}) for n in range(6)]
    assert [a.status_code for a in answers] == [400, 400, 400, 400, 400, 429], [a.content for a in answers]
    assert answers[-1].json()["code"] == "desk_code_tries"
    # Even the right code is refused in that session.
    assert _post(thief, "/authguard/api/rebind-code", {"code": grant.code}).status_code == 429
    row = AccountSecurity.objects.get(user=hanako)
    assert row.rebind_granted_until is not None and row.rebind_code_failures == 5
    told = Notification.objects.filter(user=hanako, kind="desk_code_wrong")
    assert told.count() == 1 and told.get().context["withdrawn"] is False
    assert _login(hanako.laptop)["status"] == "ok"
    enter_desk_code(hanako.laptop, grant)
    assert _register(hanako.laptop, _key()).status_code == 201


def test_held_fifty_wrong_codes_in_all_withdraw_the_grant_and_tell_her(taken: Any) -> None:
    """Ten sessions of five wrong codes each: the fiftieth withdraws the grant (429 ``grant_withdrawn``), she
    is told that too, and her code opens nothing (the desk gives a new one)."""
    from authguard.models import Notification

    hanako = taken
    grant = _her_app_lost_and_the_desk_grants(hanako)
    last = None
    for session in range(desk_grant.DESK_CODE_TRIES // desk_grant.DESK_CODE_SESSION_TRIES):
        thief = _client(IP_TOKYO)
        assert _login(thief)["status"] == "ok"
        for n in range(desk_grant.DESK_CODE_SESSION_TRIES):
            last = _post(thief, "/authguard/api/rebind-code", {"code": f"{session:05d}-0000{n}"})
        _post(thief, "/api/logout")
    assert last is not None and last.status_code == 429 and last.json()["code"] == "grant_withdrawn"
    assert AccountSecurity.objects.get(user=hanako).rebind_granted_until is None
    kinds = [n.context["withdrawn"] for n in Notification.objects.filter(user=hanako, kind="desk_code_wrong")]
    assert sorted(kinds) == [False, True]
    assert _login(hanako.laptop)["status"] == "ok"
    late = _post(hanako.laptop, "/authguard/api/rebind-code", {"code": grant.code})
    assert late.status_code == 400 and late.json()["code"] == "wrong_code"


@pytest.mark.parametrize(
    "typed",
    ["{code}", "{lower}", "{fullwidth}", " {plain} "],
    ids=["as-given", "lower", "full-width", "spaces"],
)
def test_held_her_code_typed_as_people_type_it_on_the_page(taken: Any, typed: str) -> None:
    """The HTML page takes the code however she types it (lower case, full-width from a Japanese input
    method, without the hyphen, with spaces) and sends her back to her security settings."""
    hanako = taken
    grant = _her_app_lost_and_the_desk_grants(hanako)
    plain = grant.code.replace("-", "")
    fullwidth = "".join(chr(ord(c) + 0xFEE0) for c in grant.code)
    value = typed.format(code=grant.code, lower=grant.code.lower(), fullwidth=fullwidth, plain=plain)
    laptop = hanako.laptop
    assert _login(laptop)["status"] == "ok"
    page = laptop.get("/authguard/security/")
    assert b"/authguard/security/rebind-code/" in page.content
    entered = laptop.post("/authguard/security/rebind-code/", {"code": value})
    assert entered.status_code == 302 and entered["Location"].endswith("/authguard/security/"), entered
    assert _register(laptop, _key()).status_code == 201


def test_held_the_grants_notice_carries_no_code(taken: Any) -> None:
    """The e-mail that tells her of the grant never carries the code (her mailbox may be the thief's); it
    tells her the code comes by letter or by phone."""
    from authguard.models import Notification
    from authguard.notifications.messages import render

    hanako = taken
    grant = _her_app_lost_and_the_desk_grants(hanako)
    notices = list(Notification.objects.filter(user=hanako, kind="rebind_granted"))
    assert notices, "she is told of the grant"
    for notice in notices:
        subject, body = render(notice)
        assert "by letter or by phone" in body
        for text in (subject, body, str(notice.context)):
            assert grant.code not in text and grant.code.replace("-", "") not in text
