"""Variants of issue 10's attacks found by the red team of 2026-12-05, each failing on the code before it.

With the password alone: forgetting the customer's first browser made the thief's "the account's first" (his
passkey vouched for, no cooling-off); a password change from a password-only session revoked her new passkey
and ended her sessions. With one relayed code: her recovery codes regenerated, her authenticator app replaced
by his. The second round, against those fixes: forgetting her browser without a verification took her vouched
path away for good; the desk's re-bind grant let a password session change the password; a spent recovery-code
set could not be renewed; an imported history made her own browser "not the first"; Django's own password view
needs a system check (W012). The rules: docs/factor-lifecycle.md.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from authguard.factors import inventory
from authguard.models import KnownDevice, Notification, PasskeyDevice, RecoveryCode, RecoveryCodeDevice
from authguard.testing import SoftAuthenticator

from .conftest import (
    HANAKO_PASSWORD,
    IP_OSAKA,
    IP_TOKYO,
    OrderApi,
    bind_passkey,
    of_long_standing,
    totp_token,
)
from .factor_scenarios import (
    change_password,
    disabled_totp,
    her_new_app,
    her_recovery_codes,
    her_renewed_recovery_codes,
    new_key,
    old_totp,
    register,
    thief_with_one_code,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]


def holding(user: Any, symbol: str) -> int:
    from demo_site.brokerage.models import Account

    position = Account.objects.get(user=user).positions.filter(instrument__symbol=symbol).first()
    return int(position.quantity) if position is not None else 0


def form_post(client: OrderApi, path: str, data: dict[str, Any] | None = None) -> Any:
    """A form POST from the thief's browser (the security page's buttons), with its CSRF token."""
    return client.client.post(path, data or {}, HTTP_X_CSRFTOKEN=client.token)


# -- 1: forgetting her first browser makes the thief's browser "the account's first" ------------------------


@pytest.mark.battery(63)
@pytest.mark.usefixtures("both_presets")
def test_password_only_thief_forgets_her_first_browser_and_his_first_passkey_confirms_at_once(
    new_browser_api: Any, hanako: Any, clock: Any
) -> None:
    """A new account (younger than ESTABLISHED_DEVICE_DAYS) without a factor yet. `_vouched` counts "the
    browser the account was first used from" among *non-revoked* known devices, and forgetting a remembered
    device needs no verification at all. With the password alone the thief forgets hanako's browser on the
    security page; his own browser is then "the first", his first passkey is vouched for and, being the
    account's first factor from a low-risk session, starts no cooling-off: it sells her whole NTT position
    at once (a held order confirmed), with nothing but the password."""
    her = new_browser_api(IP_TOKYO)
    her.login("hanako", HANAKO_PASSWORD)  # her first browser: the one a new account's first factor trusts
    her.post("/api/logout")
    clock.shift(2 * 24 * 3600)
    thief = new_browser_api(IP_OSAKA)
    thief.login("hanako", HANAKO_PASSWORD)  # password only, allowed outright (a clean line)
    hers = KnownDevice.objects.filter(user=hanako).order_by("first_seen_at", "pk").first()
    assert hers is not None
    # The security page lists her device with its id; the form needs no fresh verification.
    assert str(hers.pk) in thief.get("/authguard/security/").content.decode()
    form_post(thief, f"/authguard/security/devices/{hers.pk}/revoke/")
    key = new_key()
    added = register(thief, key)
    assert added.status_code == 201, added.content
    device = PasskeyDevice.objects.get(user=hanako)
    clock.shift(60)
    # Now the payoff: a held liquidation confirmed with the thief's brand-new passkey.
    held = thief.order("sell", "9432", 2000)
    if held.status_code == 202:
        confirmation = held.json()["confirmation"]
        options = thief.post(f"/authguard/api/confirmations/{confirmation['id']}/passkey/options")
        if options.status_code == 200:
            thief.post(f"/authguard/api/confirmations/{confirmation['id']}/passkey", key.get(options.json()))
    # What must hold: a factor enrolled with a password alone from a browser that came after hers is not
    # vouched for, whatever the thief forgot: it cools off for days and confirms nothing.
    assert holding(hanako, "9432") == 2000
    assert inventory.factor_is_cooling_off(device)
    assert not inventory.may_confirm_sensitive(hanako, device)


# -- 2: one relayed TOTP code replaces the customer's recovery codes ----------------------------------------


@pytest.mark.battery(63)
def test_one_relayed_totp_code_replaces_the_customers_recovery_codes(
    new_browser_api: Any, hanako: Any, totp_factory: Any, clock: Any
) -> None:
    """hanako has her authenticator app and the recovery codes she printed long ago (no passkey). The thief
    relays one TOTP code and mints a new recovery-code set: hers die and he reads the new ten, which sign in
    (and re-verify) for him from then on, become active after the unvouched wait, and leave her without a
    backup factor (nor the codes path out of a lock: the TOTP and an *active* recovery code). The accepted
    rule: one relayed code must not remove, replace or regenerate the customer's factors."""
    of_long_standing(hanako)
    hanako.totp = totp_factory(hanako)
    codes = her_recovery_codes(hanako)
    hers = RecoveryCodeDevice.objects.get(user=hanako)
    thief = new_browser_api()
    thief.login("hanako", HANAKO_PASSWORD)
    relayed = thief.post("/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)})
    assert relayed.status_code == 200, relayed.content
    minted = thief.post("/authguard/api/recovery-codes")
    # Her set must survive a session bought with one relayed code, and the thief must see no codes.
    assert minted.status_code in (400, 401, 403), minted.content
    assert "codes" not in minted.json()
    assert RecoveryCodeDevice.objects.filter(pk=hers.pk, confirmed=True).exists()
    assert RecoveryCode.objects.filter(device_id=hers.pk, used_at__isnull=True).count() == len(codes)


# -- 3: the thief's password change turns "a password change revokes cooling-off factors" against her -------


@pytest.mark.battery(63)
@pytest.mark.usefixtures("both_presets")
def test_password_only_thief_changes_the_password_and_revokes_the_customers_new_passkey(
    new_browser_api: Any, hanako: Any, totp_factory: Any, clock: Any
) -> None:
    """hanako (authenticator app for years) adds a passkey from her usual browser: vouched, it cools off
    with the account for a day. The password change hook revokes every factor cooling off, assuming whoever
    changes the password is the customer. A thief with the password alone, on an allowed login, opens
    Django's password-change form (no fresh verification is asked for), changes the password: her new
    passkey is deleted, every session of hers is ended, and only he knows the password now."""
    of_long_standing(hanako)
    hanako.totp = totp_factory(hanako)
    her = new_browser_api(IP_TOKYO)
    her.login_usual("hanako", HANAKO_PASSWORD)
    from authguard.conf import app_settings

    if app_settings.JSDA:
        # The preset: no TOTP step-up. Give her the passkey bound from her usual browser another way: the
        # staff-free path is the same (record_enrollment), so bind one directly and start her cooling-off.
        from authguard.factors import lifecycle

        device = bind_passkey(hanako, new_key())
        lifecycle.start_cooling_off(hanako, reason="factor_added")
        PasskeyDevice.objects.filter(pk=device.pk).update(created_at=timezone.now())
    else:
        assert her.post("/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)}).status_code == 200
        added = register(her, new_key())
        assert added.status_code == 201, added.content
    hers = PasskeyDevice.objects.get(user=hanako)
    assert inventory.factor_is_cooling_off(hers)
    clock.shift(3600)
    thief = new_browser_api(IP_OSAKA)
    thief.login("hanako", HANAKO_PASSWORD)  # password only, allowed outright
    page = thief.get("/password/change/")
    new = "thief chose this 2026"
    changed = thief.client.post(
        "/password/change/",
        {"old_password": HANAKO_PASSWORD, "new_password1": new, "new_password2": new},
        HTTP_X_CSRFTOKEN=thief.token,
    )
    # A password session changes no password: the customer's passkey, password and sessions stay.
    hanako.refresh_from_db()
    assert PasskeyDevice.objects.filter(pk=hers.pk).exists(), (page.status_code, changed.status_code)
    assert hanako.check_password(HANAKO_PASSWORD)
    assert her.get("/api/portfolio").status_code == 200


@pytest.mark.battery(63)
def test_one_relayed_totp_code_replaces_the_customers_authenticator_app(
    new_browser_api: Any, hanako: Any, totp_factory: Any, clock: Any
) -> None:
    """hanako has a passkey and her authenticator app, both for years. The thief relays one code from her
    app and then replaces the app with his own (begin + confirm): ``require_can_remove`` only stops a
    relayable code from removing a *passkey*, so her authenticator is deleted and his is bound, and it turns
    active after the unvouched wait. One relayed code must not remove or replace her factors."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    of_long_standing(hanako)
    bind_passkey(hanako, new_key())
    hanako.totp = totp_factory(hanako)
    thief = new_browser_api()
    thief.login("hanako", HANAKO_PASSWORD)
    assert thief.post("/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)}).status_code == 200
    begun = thief.post("/authguard/api/totp")
    if begun.status_code == 200:
        his = TOTPDevice.objects.get(user=hanako, confirmed=False)
        thief.post("/authguard/api/totp/confirm", {"code": totp_token(his)})
    assert TOTPDevice.objects.filter(pk=hanako.totp.pk, confirmed=True).exists()
    assert list(TOTPDevice.objects.filter(user=hanako, confirmed=True)) == [hanako.totp]


# -- the second round (2026-12-05): walks around the fixes above, and what they broke ----------------------


@pytest.mark.battery(63)
def test_password_only_thief_forgetting_her_usual_browser_takes_away_her_vouched_path_for_good(
    new_browser_api: Any, hanako: Any, totp_factory: Any, clock: Any
) -> None:
    """hanako (authenticator app + recovery codes, no passkey) has used her PC for months: from it, one
    verification renews her recovery codes (the "vouched session" path of require_strong_removal). She lost
    her phone. A thief with the password alone forgets her PC on the security page (no verification asked).
    A forgotten KnownDevice row is never un-forgotten (history.learn updates it, keeps revoked_at), and
    session_vouched only counts rows with revoked_at NULL: her own month-old browser is now, and forever,
    "new". With her phone lost she cannot show two different factors: her recovery codes can no longer be
    renewed, nor would her next passkey from this PC be vouched for. The thief turned her browser against
    her with the password alone, exactly the class of the first-browser fix, one step over."""
    of_long_standing(hanako)
    hanako.totp = totp_factory(hanako)
    codes = her_recovery_codes(hanako)
    her = new_browser_api(IP_TOKYO)
    her.login_usual("hanako", HANAKO_PASSWORD)
    her.post("/api/logout")
    clock.shift(3600)
    thief = new_browser_api(IP_OSAKA)
    thief.login("hanako", HANAKO_PASSWORD)  # password only
    hers = KnownDevice.objects.filter(user=hanako).order_by("first_seen_at", "pk").first()
    form_post(thief, f"/authguard/security/devices/{hers.pk}/revoke/")
    clock.shift(3600)
    # She is back on her own PC of months, with a recovery code (the phone is gone).
    her.login("hanako", HANAKO_PASSWORD)
    assert her.post("/authguard/api/step-up/recovery-code", {"code": codes[0]}).status_code == 200
    renewed = her.post("/authguard/api/recovery-codes")
    assert renewed.status_code == 201, renewed.content


# -- 2: an exhausted recovery-code set can no longer be renewed with the only factor she has --------------


@pytest.mark.battery(63)
def test_a_customer_whose_recovery_codes_are_used_up_cannot_get_new_ones_with_her_authenticator(
    new_browser_api: Any, hanako: Any, totp_factory: Any, clock: Any
) -> None:
    """hanako has her authenticator app and a recovery-code set with no code left (none in user_factors).
    Without any set, one TOTP verification would mint one (adding is allowed). With the spent set, minting
    "replaces" it, so require_can_remove -> require_strong_removal asks for a passkey, a vouched session or a
    second, different factor: she has none (the methods list is empty) and a new laptop. Replacing nothing of
    value locks her out of recovery codes, while the thief gains nothing by the stricter rule (he could mint
    a set the same way had she none)."""
    of_long_standing(hanako)
    hanako.totp = totp_factory(hanako)
    her_recovery_codes(hanako, used=True)
    her = new_browser_api(IP_TOKYO)
    her.login("hanako", HANAKO_PASSWORD)
    assert her.post("/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)}).status_code == 200
    renewed = her.post("/authguard/api/recovery-codes")
    assert renewed.status_code == 201, renewed.content
    assert len(renewed.json()["codes"]) == 10


# -- 3: the security page's "new recovery codes" never leads to the second factor it asks for --------------


@pytest.mark.battery(63)
def test_the_security_page_sends_a_customer_asked_for_a_second_factor_to_re_verify(
    new_browser_api: Any, hanako: Any, totp_factory: Any, clock: Any
) -> None:
    """The HTML flow of require_strong_removal: hanako (authenticator app + recovery codes) on a browser that
    is not vouched asks for new recovery codes after a TOTP re-verification. The e-mail change answers
    StepUpRequired with a redirect to the re-verification page (and back); the factor pages catch it as any
    AuthguardError and drop her on the security page with a message, with no way to the second factor."""
    of_long_standing(hanako)
    hanako.totp = totp_factory(hanako)
    her_recovery_codes(hanako)
    her = new_browser_api(IP_TOKYO)
    her.login("hanako", HANAKO_PASSWORD)
    assert her.post("/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)}).status_code == 200
    answer = form_post(her, "/authguard/security/recovery-codes/")
    assert answer.status_code == 302
    assert "/authguard/reverify/" in answer["Location"], answer["Location"]


# -- 4: the password-change rule is opt-in, unchecked and missing from the integration guide -----------------

from django.urls import include, path  # noqa: E402

#: A portal that mounts authguard as docs/integration.md says and Django's stock auth views for the rest.
urlpatterns = [
    path("authguard/", include("authguard.urls")),
    path("accounts/", include("django.contrib.auth.urls")),
]


@pytest.mark.battery(63)
def test_a_portal_with_djangos_own_password_change_view_is_warned(settings: Any) -> None:
    """authguard.views.PasswordChangeView only protects a portal that routes ``password_change`` to it; the
    demo does, docs/integration.md says nothing, and no system check looks. A portal with Django's stock
    ``django.contrib.auth.urls`` (the common setup) keeps the hole the fix closed: a password-only session
    changes the password, ends her sessions and revokes her cooling-off passkey (the password-change hook
    revokes whatever is cooling off, whichever view saved the hash). A deployment-visible check is the
    least: the hook cannot tell a reset from a session's change."""
    from django.core import checks
    from django.urls import clear_url_caches

    settings.ROOT_URLCONF = __name__
    clear_url_caches()
    try:
        messages = checks.run_checks(tags=[checks.Tags.security])
    finally:
        clear_url_caches()
    assert any("password_change" in str(m.msg) or "PasswordChangeView" in str(m.msg) for m in messages), [
        m.id for m in messages
    ]


# -- 5: during a desk re-binding grant, a password-only session changes the password -------------------------


@pytest.mark.battery(63)
def test_a_password_only_thief_changes_the_password_while_the_desk_grant_of_a_rebind_is_open(
    new_browser_api: Any, hanako: Any, totp_factory: Any, user_factory: Any, clock: Any
) -> None:
    """hanako's authenticator app was disabled (the failure limit) and the desk granted her a re-binding for
    72 hours (lifecycle.grant_rebind). require_password_change_allowed only checks the verifier when
    require_can_change_factors answers "fresh_verification"; for an account without usable factors that
    ever had one it answers require_strong_rebind's "staff" for *any* verified session, password-only
    included. So within the grant, a thief with the password alone opens /password/change/ and changes the
    password: her sessions end, only he knows the password, and the grant (not consumed by a password
    change) is still open for him to bind his own factor. The fix's rule was "never a password-only
    session's decision"."""
    from authguard.factors import lifecycle

    of_long_standing(hanako)
    disabled_totp(hanako, totp_factory)
    assert lifecycle.ever_had_factor(hanako)
    her = new_browser_api(IP_TOKYO)
    her.login("hanako", HANAKO_PASSWORD)
    lifecycle.grant_rebind(hanako, by_staff=user_factory("desk", is_staff=True))
    thief = new_browser_api(IP_OSAKA)
    thief.login("hanako", HANAKO_PASSWORD)  # password only
    new = "thief chose this 2026"
    thief.get("/password/change/")
    changed = thief.client.post(
        "/password/change/",
        {"old_password": HANAKO_PASSWORD, "new_password1": new, "new_password2": new},
        HTTP_X_CSRFTOKEN=thief.token,
    )
    hanako.refresh_from_db()
    assert hanako.check_password(HANAKO_PASSWORD), changed.status_code
    assert her.get("/api/portfolio").status_code == 200


# -- 6: regression of fix 1: a young account's first browser taken over from the portal's history ------------


@pytest.mark.battery(63)
def test_a_new_customers_first_browser_taken_over_from_imported_history_vouches_for_her_first_passkey(
    user_factory: Any, geoip: Any, settings: Any
) -> None:
    """A portal installs authguard with ``import-history`` and ``AUTHGUARD_LEGACY_DEVICE_COOKIE``. alice
    opened her account three weeks ago and has signed in from her PC since (passkey step-ups in the old
    log, so the import remembers the PC). On the first day her PC presents the portal's cookie:
    authguard's own cookie takes the device over (history._move_trust copies first_seen_at, revokes the
    portal's entry). Fix 1 made "the account's first browser" count revoked rows too, ordered by
    (first_seen_at, pk): the revoked portal entry has the same first_seen_at and the lower pk, so it is
    "first" forever and her own PC is not. Her first passkey, from her first and only browser on a low-
    risk login, is unvouched and cools off for AUTHGUARD_UNVOUCHED_FACTOR_DAYS (14 days) instead of
    confirming at once (before the fix it did)."""
    from authguard.factors import inventory
    from authguard.models import FactorRecord, PasskeyDevice
    from authguard.risk.import_history import import_history

    from .conftest import OrderApi
    from .test_risk_legacy_device import COOKIE, PORTAL_ID, _asking, _stepped_up_log

    settings.AUTHGUARD_WEBAUTHN_RP_ID = "localhost"
    settings.AUTHGUARD_WEBAUTHN_ORIGINS = ["http://localhost:8000"]
    alice = user_factory("alice")
    alice.date_joined = timezone.now() - timedelta(days=22)
    alice.save(update_fields=["date_joined"])
    now = timezone.now()
    lines = _stepped_up_log(now - timedelta(days=21), 20, second_factor="passkey")
    import_history(lines, geoip_path=str(geoip), policy=_asking())
    settings.AUTHGUARD_LEGACY_DEVICE_COOKIE = COOKIE
    api = OrderApi(REMOTE_ADDR=IP_TOKYO)
    api.client.cookies[COOKIE] = PORTAL_ID
    api.login("alice", "correct horse battery")
    assert KnownDevice.objects.filter(user=alice, revoked_at__isnull=True).count() == 1  # taken over
    key = SoftAuthenticator(origin="http://localhost:8000", rp_id="localhost")
    options = api.post("/authguard/api/passkeys/options")
    assert options.status_code == 200, options.content
    added = api.post("/authguard/api/passkeys", key.create(options.json()))
    assert added.status_code == 201, added.content
    device = PasskeyDevice.objects.get(user=alice)
    record = FactorRecord.objects.get(device_id=device.persistent_id)
    assert record.enrolled_low_risk, "the login was low-risk"
    assert not inventory.factor_is_cooling_off(device), record.cooling_off_until


# -- round fourteen: a factor of hers that is cooling off is replaced by no relayed code --------------


@pytest.mark.battery(63)
def test_one_relayed_code_regenerates_her_freshly_renewed_recovery_codes_and_shows_him_the_new_ones(
    new_browser_api: Any, hanako: Any, totp_factory: Any, clock: Any
) -> None:
    """hanako (authenticator app for years) used up some recovery codes and renews the set from her new
    laptop: the new set cools off (unvouched, 14 days). During those days a thief who relays ONE code of her
    authenticator app asks for new recovery codes: removal.require_can_remove skips every check for a target
    that is cooling off (removal.py: ``target_cooling``), so her new codes die and he reads ten fresh ones
    (cooling off for him, then his). docs/factor-lifecycle.md: "one relayed code neither regenerates her
    recovery codes (and shows him the new ones) nor replaces her authenticator app with his"."""
    of_long_standing(hanako)
    hanako.totp = old_totp(hanako, totp_factory)
    her_recovery_codes(hanako, used=True)
    her = new_browser_api(IP_TOKYO)  # her new laptop
    her.login("hanako", HANAKO_PASSWORD)
    assert her.post("/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)}).status_code == 200
    renewed = her.post("/authguard/api/recovery-codes")
    assert renewed.status_code == 201, renewed.content
    her_codes = renewed.json()["codes"]
    hers = RecoveryCodeDevice.objects.get(user=hanako)
    assert inventory.factor_is_cooling_off(hers)  # her own new set, cooling off

    clock.shift(2 * 3600)
    thief = new_browser_api(IP_OSAKA)
    thief.login("hanako", HANAKO_PASSWORD)
    relayed = thief.post("/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)})
    assert relayed.status_code == 200, relayed.content  # the one relayed code
    minted = thief.post("/authguard/api/recovery-codes")

    # SECURE: one relayed code regenerates none of her recovery codes, and shows the thief no codes.
    assert "codes" not in minted.json(), "the thief read a fresh set of her recovery codes"
    assert minted.status_code in (400, 401, 403), minted.content
    assert RecoveryCodeDevice.objects.filter(pk=hers.pk, confirmed=True).exists()
    assert RecoveryCode.objects.filter(device_id=hers.pk, used_at__isnull=True).count() == len(her_codes)


@pytest.mark.battery(63)
def test_one_relayed_code_of_her_new_authenticator_app_replaces_it_with_the_thiefs_unannounced(
    new_browser_api: Any, hanako: Any, clock: Any
) -> None:
    """hanako (a passkey for years) sets up an authenticator app from her PC of months: vouched, it cools off
    with the account for a day. Two hours later a thief phishes ONE code of it and replaces it with an app of
    his own: her cooling-off app yields to any verification (removal.py ``target_cooling`` skips
    ``require_strong_removal``), ``confirm_totp_enrollment`` deletes it without a "factor_removed" notice, and
    the only notice she gets reads "authenticator app added" -- the very notice her own set-up gave her two
    hours before. Her phone's codes are refused from now on and, 14 days on, his app is an established
    factor of her account (with a set of recovery codes he mints the same way: the two different factors an
    e-mail change asks for)."""
    of_long_standing(hanako)
    key = new_key()
    hanako.passkey = bind_passkey(hanako, key)
    PasskeyDevice.objects.filter(pk=hanako.passkey.pk).update(created_at=timezone.now() - timedelta(days=300))
    her = new_browser_api(IP_TOKYO)
    her.login_usual("hanako", HANAKO_PASSWORD)  # her PC of months: a vouched session
    options = her.post("/authguard/api/step-up/passkey/options")
    assert options.status_code == 200, options.content
    assert her.post("/authguard/api/step-up/passkey", key.get(options.json())).status_code == 200
    began = her.post("/authguard/api/totp")
    assert began.status_code == 200, began.content
    her_app = TOTPDevice.objects.get(user=hanako, confirmed=False)
    confirmed = her.post("/authguard/api/totp/confirm", {"code": totp_token(her_app)})
    assert confirmed.status_code == 201, confirmed.content
    her_app.refresh_from_db()
    assert inventory.factor_is_cooling_off(her_app)

    clock.shift(2 * 3600)
    from authguard.models import Notification

    notices_before = set(Notification.objects.filter(user=hanako).values_list("pk", flat=True))
    thief = new_browser_api(IP_OSAKA)
    thief.login("hanako", HANAKO_PASSWORD)
    relayed = thief.post("/authguard/api/step-up/totp", {"code": totp_token(her_app)})
    assert relayed.status_code == 200, relayed.content  # the one relayed code (her new app signs in)
    began = thief.post("/authguard/api/totp")
    if began.status_code == 200:
        his = TOTPDevice.objects.get(user=hanako, confirmed=False)
        thief.post("/authguard/api/totp/confirm", {"code": totp_token(his)})

    # SECURE: one relayed code replaces none of her factors; and whatever of hers goes, she is told so.
    her_app_kept = TOTPDevice.objects.filter(pk=her_app.pk, confirmed=True).exists()
    new_notices = Notification.objects.filter(user=hanako).exclude(pk__in=notices_before)
    told_removed = new_notices.filter(kind="factor_removed").exists()
    assert her_app_kept, (
        "one relayed code of her new authenticator app replaced it with the thief's; she was told "
        f"{sorted(set(new_notices.values_list('kind', flat=True)))}"
    )
    assert not told_removed


def test_her_own_replacement_of_her_authenticator_app_is_announced_as_a_removal(
    new_browser_api: Any, hanako: Any, totp_factory: Any
) -> None:
    """A replacement deletes the old app: she is told it was removed, not only that an app was added, so a
    replacement never reads like one more "added" (round fourteen)."""
    from authguard.models import Notification

    of_long_standing(hanako)
    key = new_key()
    hanako.passkey = bind_passkey(hanako, key)
    PasskeyDevice.objects.filter(pk=hanako.passkey.pk).update(created_at=timezone.now() - timedelta(days=300))
    old_app = old_totp(hanako, totp_factory)
    her = new_browser_api(IP_TOKYO)
    her.login_usual("hanako", HANAKO_PASSWORD)
    options = her.post("/authguard/api/step-up/passkey/options")
    assert her.post("/authguard/api/step-up/passkey", key.get(options.json())).status_code == 200

    assert her.post("/authguard/api/totp").status_code == 200
    new_app = TOTPDevice.objects.get(user=hanako, confirmed=False)
    assert her.post("/authguard/api/totp/confirm", {"code": totp_token(new_app)}).status_code == 201

    assert list(TOTPDevice.objects.filter(user=hanako).values_list("pk", flat=True)) == [new_app.pk]
    kinds = list(Notification.objects.filter(user=hanako).values_list("kind", flat=True))
    assert "factor_removed" in kinds and "factor_added" in kinds
    assert old_app.pk not in TOTPDevice.objects.values_list("pk", flat=True)


# -- round fifteen: removing her factor that cools off, then adding one in its place, is a replacement -----


@pytest.mark.battery(63)
def test_one_relayed_code_removes_her_renewed_recovery_codes_then_mints_a_set_for_the_thief(
    new_browser_api: Any, hanako: Any, totp_factory: Any, clock: Any
) -> None:
    """Round fourteen made *replacing* her cooling-off recovery-code set strict (removal.require_can_remove
    ``replacing=True``), but *removing* it stays lenient (``lenient = target_cooling and not replacing``), and
    generate_recovery_codes only checks a set that still exists. So the thief who relays one code of her
    authenticator app removes her freshly renewed set (api/factors/remove), then mints a set over nothing:
    he reads ten codes, exactly what test_one_relayed_code_regenerates_her_freshly_renewed_recovery_codes...
    forbids, in two requests instead of one."""
    of_long_standing(hanako)
    hanako.totp = old_totp(hanako, totp_factory)
    her_recovery_codes(hanako, used=True)
    her = new_browser_api(IP_TOKYO)
    her.login("hanako", HANAKO_PASSWORD)
    assert her.post("/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)}).status_code == 200
    renewed = her.post("/authguard/api/recovery-codes")
    assert renewed.status_code == 201, renewed.content
    hers = RecoveryCodeDevice.objects.get(user=hanako)
    assert inventory.factor_is_cooling_off(hers)

    clock.shift(2 * 3600)
    thief = thief_with_one_code(new_browser_api, hanako.totp)
    removed = thief.post("/authguard/api/factors/remove", {"id": hers.persistent_id})
    minted = thief.post("/authguard/api/recovery-codes")

    assert "codes" not in minted.json(), (
        f"removing her set first ({removed.status_code}), the thief read ten fresh recovery codes"
    )
    assert minted.status_code in (400, 401, 403), minted.content
    # A factor cooling off still yields to any older one (authguard cannot tell her new set from one a
    # thief added): the removal stands, she is told, and nothing takes its place until its cooling-off
    # would have ended.
    assert removed.status_code == 200, removed.content
    assert not RecoveryCodeDevice.objects.filter(user=hanako).exists()
    assert Notification.objects.filter(user=hanako, kind="factor_removed").exists()


@pytest.mark.battery(63)
def test_one_relayed_code_of_her_new_app_removes_it_then_binds_the_thiefs_app(
    new_browser_api: Any, hanako: Any, clock: Any
) -> None:
    """The same walk-around for the authenticator app: hanako (a passkey for years) sets up an app from her
    PC of months; it cools off for a day. A thief phishes ONE code of it, removes it (a cooling-off target is
    removed with any verification, even its own, and the last-factor rule skips cooling-off targets), then
    begins and confirms an app of his own: no app is left to "replace", so nothing strict is asked. Her
    phone's codes are refused from now on; 14 days on his app is an established factor of hers."""
    her_app = her_new_app(new_browser_api, hanako)

    clock.shift(2 * 3600)
    thief = thief_with_one_code(new_browser_api, her_app)
    removed = thief.post("/authguard/api/factors/remove", {"id": her_app.persistent_id})
    began = thief.post("/authguard/api/totp")
    if began.status_code == 200:
        his = TOTPDevice.objects.get(user=hanako, confirmed=False)
        thief.post("/authguard/api/totp/confirm", {"code": totp_token(his)})

    assert list(TOTPDevice.objects.filter(user=hanako, confirmed=True).values_list("pk", flat=True)) in (
        [her_app.pk],
        [],
    ), f"one relayed code put the thief's authenticator app in place of hers (removal {removed.status_code})"


def test_after_removing_a_factor_her_session_adds_one_once_she_verifies_again(
    new_browser_api: Any, hanako: Any, totp_factory: Any, clock: Any
) -> None:
    """One change per verification, then a verification with a factor of hers that is not cooling off: a
    session that added a factor removes one, and one that removed a factor adds one, only after it (it may
    take back what it added itself). One relayed code is spent (rounds fifteen to seventeen)."""
    of_long_standing(hanako)
    hanako.totp = old_totp(hanako, totp_factory)
    her_recovery_codes(hanako)
    hers = RecoveryCodeDevice.objects.get(user=hanako)
    her = new_browser_api(IP_TOKYO)
    her.login("hanako", HANAKO_PASSWORD)
    assert her.post("/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)}).status_code == 200
    assert register(her, new_key()).status_code == 201  # a change: her new passkey
    taken_back = PasskeyDevice.objects.get(user=hanako)
    refused = her.post("/authguard/api/factors/remove", {"id": hers.persistent_id})
    assert refused.status_code == 403, refused.content
    assert her.post("/authguard/api/factors/remove", {"id": taken_back.persistent_id}).status_code == 200
    again = register(her, new_key())
    assert again.status_code == 403 and not PasskeyDevice.objects.filter(user=hanako).exists(), again.content

    clock.shift(31)  # her app's next code
    assert her.post("/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)}).status_code == 200
    assert register(her, new_key()).status_code == 201
    assert RecoveryCodeDevice.objects.filter(pk=hers.pk).exists()


# -- round sixteen: a password change revokes what cools off; removing, then adding, asks again ---------


# -- a password change revokes what cools off: the session adds a factor only after a new verification --


@pytest.mark.battery(63)
def test_one_relayed_code_revokes_her_renewed_codes_by_a_password_change_then_mints_a_set_for_the_thief(
    new_browser_api: Any, hanako: Any, totp_factory: Any, clock: Any
) -> None:
    """Her freshly renewed recovery codes cool off. A thief with one relayed code of her app changes the
    password (a verifier not cooling off is all the form asks), which revokes every factor cooling off; then
    he asks for new codes: there is nothing left to "replace". Round fifteen's marker was written by the
    remove button only, so he read ten fresh codes. The session that changed the password now adds a factor
    only after a new verification (removal.note_removal), which one relayed code is not."""
    her_renewed_recovery_codes(new_browser_api, hanako, totp_factory)

    clock.shift(2 * 3600)
    thief = thief_with_one_code(new_browser_api, hanako.totp)
    changed = change_password(thief, HANAKO_PASSWORD, "thief chose this 2026")
    minted = thief.post("/authguard/api/recovery-codes")

    assert "codes" not in minted.json(), (
        f"after a password change ({changed.status_code}) revoked her renewed set, the thief read ten "
        "fresh recovery codes"
    )


# -- she removes the thief's passkey, verifies again, and adds her own --------------------------------


@pytest.mark.battery(63)
def test_a_totp_only_customer_who_removed_the_thiefs_passkey_verifies_again_and_adds_her_own(
    new_browser_api: Any, hanako: Any, totp_factory: Any, clock: Any
) -> None:
    """The documented answer to a thief's passkey: a TOTP-only customer removes it with her app. Round
    fifteen's marker then made her own new passkey a "replacement" for two weeks (she had no second factor,
    no browser of a month). Now she verifies once more with her app's next code and adds it."""
    of_long_standing(hanako)
    hanako.totp = old_totp(hanako, totp_factory)

    thief = thief_with_one_code(new_browser_api, hanako.totp)
    assert register(thief, new_key()).status_code == 201
    his = PasskeyDevice.objects.get(user=hanako)
    assert inventory.factor_is_cooling_off(his)

    clock.shift(3 * 3600)
    her = new_browser_api(IP_TOKYO)
    her.login("hanako", HANAKO_PASSWORD)
    assert (
        her.post("/authguard/api/step-up/totp", {"code": totp_token(hanako.totp, steps=1)}).status_code == 200
    )
    removed = her.post("/authguard/api/factors/remove", {"id": his.persistent_id})
    assert removed.status_code == 200, removed.content
    # After a removal her session verifies once more (her app's next code), then adds her passkey.
    assert register(her, new_key()).status_code in (401, 403)
    clock.shift(31)
    assert (
        her.post("/authguard/api/step-up/totp", {"code": totp_token(hanako.totp, steps=1)}).status_code == 200
    )
    mine = register(her, new_key())

    assert mine.status_code == 201, (
        f"after removing the thief's passkey she cannot add her own: {mine.status_code} {mine.content!r}"
    )


@pytest.mark.battery(63)
def test_one_relayed_recovery_code_revokes_her_new_app_by_a_password_change_then_binds_the_thiefs_app(
    new_browser_api: Any, hanako: Any, clock: Any
) -> None:
    """The same through the password form for the authenticator app: a passkey and printed recovery codes
    for years, a new app from her PC of months, cooling off. One relayed recovery code, a password change
    (her app revoked), then his app begun and confirmed: it stood where hers was. Now the session asks for a
    verification after the change before any factor is added."""
    her_app = her_new_app(new_browser_api, hanako)
    codes = her_recovery_codes(hanako)

    clock.shift(2 * 3600)
    thief = new_browser_api(IP_OSAKA)
    thief.login("hanako", HANAKO_PASSWORD)
    assert thief.post("/authguard/api/step-up/recovery-code", {"code": codes[3]}).status_code == 200
    changed = change_password(thief, HANAKO_PASSWORD, "thief chose this 2026")
    began = thief.post("/authguard/api/totp")
    if began.status_code == 200:
        his = TOTPDevice.objects.get(user=hanako, confirmed=False)
        thief.post("/authguard/api/totp/confirm", {"code": totp_token(his)})

    assert list(TOTPDevice.objects.filter(user=hanako, confirmed=True).values_list("pk", flat=True)) in (
        [her_app.pk],
        [],
    ), f"a password change ({changed.status_code}) and one relayed code put the thief's app in place of hers"
