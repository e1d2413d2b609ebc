"""Red team, round thirty (c): factors and the step-up on every front end (HTML, JSON API, DRF, sensitive
actions), with her password alone, her password and ONE relayed code, or her copied cookie jar.

Each test not marked ``held`` failed on c7e3316 (the round's base): the first-factor forget ran only when
her reset itself revoked a factor, so after the desk's removal or containment she was sent back to the
desk; and a ``contact_change`` was confirmed with one relayed app code where authguard's own e-mail change
asks two different factors. ``test_held_...`` tests are attempts the product withstood.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from authguard.actions import flow as actions
from authguard.factors import inventory, removal
from authguard.models import AccountSecurity, HeldAction, PasskeyDevice

from .actions_support import actions_site  # noqa: F401 (fixture)
from .conftest import HANAKO_PASSWORD, IP_OSAKA, IP_TOKYO, of_long_standing, totp_token
from .factor_scenarios import new_key, register

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]

HER_NEW_PASSWORD = "hanako-own-new-2030!"
THIEF_MAIL = "hanako.secure@mule-mail.example"


@pytest.fixture
def hanako(brokerage_customer: Any) -> Any:
    return brokerage_customer(holdings={"7203": 100})


def _reset_password_by_mail(new_password: str, *, email: str = "hanako@example.com") -> None:
    """hanako's reset by e-mail from her PC: the link mailed to her, opened, a new password set."""
    mail.outbox.clear()
    Client(REMOTE_ADDR=IP_TOKYO).post("/password/reset/", {"email": email})
    links = [
        m for message in mail.outbox for m in re.findall(r"https?://\S+/password/reset/\S+/", message.body)
    ]
    assert links, [message.body for message in mail.outbox]
    browser = Client(REMOTE_ADDR=IP_TOKYO)
    form = browser.get("/" + links[0].split("/", 3)[3], follow=True)
    assert form.status_code == 200
    done = browser.post(
        form.redirect_chain[-1][0], {"new_password1": new_password, "new_password2": new_password}
    )
    assert done.status_code == 302, done.content[:300]


def _her_app_set_up_after_her_reset(new_browser_api: Any, clock: Any) -> Any:
    """A minute after her reset, hanako on her PC of months signs in and starts setting up her app."""
    clock.shift(60)
    her = new_browser_api(IP_TOKYO)
    her.login_usual("hanako", HER_NEW_PASSWORD)
    return her.post("/authguard/api/totp")


# -- 1. the first-factor forget after a password reset, once the desk has helped ---------------------------


@pytest.mark.battery(63)
def test_her_reset_gives_back_the_first_factor_after_the_desk_removed_the_one_a_password_only_thief_bound(
    new_browser_api: Any, hanako: Any, clock: Any, user_factory: Any
) -> None:
    """hanako, a customer of years, never set up a second factor. A thief with her password alone, on a line
    the engine allows, registers his passkey as the account's first factor (unvouched, 14 days). She reads
    the "passkey added" notice and calls the desk, who removes it (staff removal, as the console's revoke
    does; a containment's own revoke of what cools off is the same), then resets her password by e-mail as
    told. Her reset alone would have given her the first-factor path back
    (``removal._forget_a_first_factor_never_established``), but the forget runs only ``if reason ==
    "password_reset" and removed``: the desk removed the thief's factor first, so her reset removes nothing
    and forgets nothing. The account "ever had a factor" and has none: from her PC of months she can set up
    no factor of her own (``rebind_required``), her reset is no remedy, and the desk's grant is needed again
    (or identity proofing; a new customer's every browser is "new" after a containment, so not even that).

    Secure: a reset that leaves the account without any factor whose first factor is younger than
    ``AUTHGUARD_UNVOUCHED_FACTOR_DAYS`` forgets it, whoever removed the factors before
    (docs/factor-lifecycle.md:
    "When that leaves the account without any factor ... the account has no first factor again")."""
    of_long_standing(hanako)
    her = new_browser_api(IP_TOKYO)
    her.login_usual("hanako", HANAKO_PASSWORD)  # her PC of months (no second factor, ever)
    her.post("/api/logout")

    thief = new_browser_api(IP_OSAKA)
    thief.login("hanako", HANAKO_PASSWORD)
    assert register(thief, new_key()).status_code == 201  # his passkey: the account's first factor
    his = PasskeyDevice.objects.get(user=hanako)
    assert inventory.factor_is_cooling_off(his)

    clock.shift(1800)  # she calls the desk, who checks who she is and removes the passkey she does not know
    desk = user_factory("desk", is_staff=True)
    removal.remove_factor(None, user=hanako, device=his, by_staff=desk, reason="not the customer's")
    _reset_password_by_mail(HER_NEW_PASSWORD)  # ...and, as the desk tells her, resets her password
    begun = _her_app_set_up_after_her_reset(new_browser_api, clock)
    assert begun.status_code == 200, (
        f"the desk removed the first factor a password-only thief bound, then her reset forgot nothing "
        f"(it removed nothing itself): hanako on her PC of months cannot set up her own authenticator app: "
        f"{begun.status_code} {begun.content[:200]!r}; first_factor_at="
        f"{AccountSecurity.objects.get(user=hanako).first_factor_at}"
    )


@pytest.mark.battery(63)
def test_her_reset_gives_back_the_first_factor_after_the_desks_end_sessions_containment(
    new_browser_api: Any, hanako: Any, clock: Any
) -> None:
    """The same, through the desk's documented answer to a takeover: the incident page's "end sessions"
    containment (one analyst, at once), which revokes every factor still cooling off "as the customer's own
    password reset revokes them" (``staff_actions._containing``: ``reason=f"contained: {approval.reason}"``).
    Not ``"password_reset"``: nothing is forgotten there, and her own reset afterwards removes nothing, so
    nothing is forgotten then either. From her PC of months she can set up no factor.

    Secure: after the containment and her reset, the account that never had a factor of hers has no first
    factor again and she binds her own from a session the risk engine allows."""
    from .console_data import staff_user
    from .staff_fixtures import staff_client
    from .test_containment import DESK_PERMS, contain

    of_long_standing(hanako)
    her = new_browser_api(IP_TOKYO)
    her.login_usual("hanako", HANAKO_PASSWORD)
    her.post("/api/logout")
    thief = new_browser_api(IP_OSAKA)
    thief.login("hanako", HANAKO_PASSWORD)
    assert register(thief, new_key()).status_code == 201
    clock.shift(1800)
    desk = staff_user("desk-a", perms=DESK_PERMS)
    answer = contain(staff_client(desk), hanako, "end_sessions", reason="passkey the customer does not know")
    assert answer.status_code == 303
    assert not PasskeyDevice.objects.filter(user=hanako).exists()  # revoked by the containment
    _reset_password_by_mail(HER_NEW_PASSWORD)
    begun = _her_app_set_up_after_her_reset(new_browser_api, clock)
    assert begun.status_code == 200, (
        f"after the desk's end-sessions containment revoked the passkey a password-only thief bound as the "
        f"account's first factor, and her reset by e-mail, hanako on her PC of months cannot set up her own "
        f"factor: {begun.status_code} {begun.json().get('code')}; first_factor_at="
        f"{AccountSecurity.objects.get(user=hanako).first_factor_at}"
    )


# -- 2. a contact change through the sensitive-action flow vs the e-mail change of the security page -----


class ContactExecutor:
    """A portal executor that carries out a confirmed e-mail change (``contact_change``/``email``) from the
    stored action, and the demo's money actions otherwise."""

    def execute(self, action: HeldAction) -> str:
        from demo_site.brokerage.money import action_executor

        if action.kind != "contact_change":
            return action_executor.execute(action)
        params = actions.stored_action(action)["params"]
        user = get_user_model().objects.select_for_update().get(pk=action.user_id)
        if params["field"] == "email":
            user.email = params["value"]
            user.save(update_fields=["email"])
        return f"contact-{user.pk}"

    def release(self, action: HeldAction, *, status: str) -> None:
        from demo_site.brokerage.money import action_executor

        if action.kind != "contact_change":
            action_executor.release(action, status=status)


contact_executor = ContactExecutor()


def _totp_customer(hanako: Any, totp_factory: Any) -> TOTPDevice:
    """hanako's authenticator app of a month (established) and her printed recovery codes: no passkey."""
    from datetime import timedelta

    from authguard.models import RecoveryCodeDevice

    app = totp_factory(hanako)
    TOTPDevice.objects.filter(pk=app.pk).update(created_at=timezone.now() - timedelta(days=30))
    app.refresh_from_db()
    RecoveryCodeDevice.objects.create(
        user=hanako, name="Recovery codes", confirmed=True, created_at=timezone.now() - timedelta(days=30)
    )
    return app


def test_one_relayed_app_code_changes_her_e_mail_through_the_action_flow_the_security_page_asks_two_for(
    hanako: Any,
    actions_site: Any,  # noqa: F811
    totp_factory: Any,
    order_api: Any,
    clock: Any,
) -> None:
    """A portal that lets customers without a passkey confirm sensitive actions with their authenticator app
    (``AUTHGUARD_ACTION_CONFIRMATION_METHODS = ["passkey", "totp"]``) and changes contacts through the
    documented ``contact_change`` kind. hanako has her app and printed recovery codes, no passkey. The thief
    is signed in on a login the engine allows (a clean line; or her copied cookie jar). authguard's own
    e-mail change asks a customer without a passkey for TWO different factors (docs/factor-lifecycle.md,
    "Changing the e-mail address"; one relayed code gets ``second_factor_required``). The action flow asks
    for ONE code of her app, never considering the kind: his phishing page relays one code and her e-mail
    address is his. From there his password reset reaches him once the cooling-off ends.

    Secure: a ``contact_change`` of the e-mail address is confirmed with nothing weaker than authguard's own
    e-mail change (a passkey, or two different factors), or is not offered the code at all."""
    from .actions_support import guard_in_session

    actions_site.AUTHGUARD_ACTION_CONFIRMATION_METHODS = ["passkey", "totp"]
    actions_site.AUTHGUARD_ACTION_EXECUTOR = "tests.test_factor_fronts_walkarounds.contact_executor"
    app = _totp_customer(hanako, totp_factory)

    thief = order_api(REMOTE_ADDR=IP_OSAKA)
    thief.login("hanako", HANAKO_PASSWORD)
    assert actions.confirmation_methods(hanako, kind="withdrawal") == ["totp"]  # the setting is in force
    # Not offered the code for a contact change: refused with a clear message, and nothing is held.
    with pytest.raises(actions.NoConfirmationMethod):
        guard_in_session(
            thief,
            hanako,
            kind="contact_change",
            params={"account": "1", "field": "email", "value": THIEF_MAIL},
        )
    assert not HeldAction.objects.filter(user=hanako).exists()
    hanako.refresh_from_db()
    assert hanako.email != THIEF_MAIL
    assert app.pk  # her app stays hers, unused


def test_a_contact_change_held_with_the_code_offered_before_the_rule_is_not_confirmed_by_a_code(
    hanako: Any,
    actions_site: Any,  # noqa: F811
    totp_factory: Any,
    order_api: Any,
    clock: Any,
) -> None:
    """A ``contact_change`` held (``methods`` ``["totp"]``) before the rule, or by another node still on the
    old code: the code path checks the kind again when the code arrives, and the address stays hers."""
    from importlib import import_module

    from django.conf import settings as django_settings
    from django.test import RequestFactory

    actions_site.AUTHGUARD_ACTION_CONFIRMATION_METHODS = ["passkey", "totp"]
    actions_site.AUTHGUARD_ACTION_EXECUTOR = "tests.test_factor_fronts_walkarounds.contact_executor"
    app = _totp_customer(hanako, totp_factory)
    thief = order_api(REMOTE_ADDR=IP_OSAKA)
    thief.login("hanako", HANAKO_PASSWORD)
    # Held as the flow held it before the rule: the code offered (the flow's own writer of a held action).
    request = RequestFactory().post("/")
    request.user = hanako
    store = import_module(django_settings.SESSION_ENGINE).SessionStore
    request.session = store(session_key=thief.client.cookies[django_settings.SESSION_COOKIE_NAME].value)
    params = {"account": "1", "field": "email", "value": THIEF_MAIL}
    held = actions._create_held(request, user=hanako, kind="contact_change", params=params, payee=None,
                                methods=["totp"], portal_ref="", now=timezone.now())  # fmt: skip
    request.session.save()
    clock.shift(60)  # her app's code of the next step: confirmed after the action was asked for
    confirmed = thief.post(f"/authguard/api/actions/{held.pk}/totp", {"code": totp_token(app)})
    hanako.refresh_from_db()
    assert confirmed.status_code in (400, 403), confirmed.content
    assert hanako.email != THIEF_MAIL
    assert HeldAction.objects.get(pk=held.pk).status == HeldAction.Status.PENDING


def test_held_one_relayed_app_code_is_not_enough_for_authguards_own_e_mail_change(
    hanako: Any,
    actions_site: Any,  # noqa: F811
    totp_factory: Any,
    order_api: Any,
) -> None:
    """The comparison for the test above: the same thief, the same one relayed code, at ``POST
    /authguard/api/email``: refused with ``second_factor_required``."""
    app = _totp_customer(hanako, totp_factory)
    thief = order_api(REMOTE_ADDR=IP_OSAKA)
    thief.login("hanako", HANAKO_PASSWORD)
    assert thief.post("/authguard/api/step-up/totp", {"code": totp_token(app)}).status_code == 200
    refused = thief.post("/authguard/api/email", {"email": THIEF_MAIL})
    assert refused.status_code == 403 and refused.json()["code"] == "second_factor_required", refused.content
    hanako.refresh_from_db()
    assert hanako.email == "hanako@example.com"


# -- 3. her last printed code, relayed: every front end that ends her access asks the same ---------------


def test_held_her_last_printed_code_relayed_ends_none_of_her_sessions_and_forgets_none_of_her_browsers(
    new_browser_api: Any, hanako: Any, totp_factory: Any
) -> None:
    """Her phone lost (the app disabled), one printed code left, her PC of months signed in. The thief relays
    her last code from Osaka (a session nobody vouched for) and posts "sign out everywhere else" and "forget
    this device" for her PC: both refused (``lifecycle.verified_by_usable_factor``), her session lives on
    and her PC keeps its month of standing; the password form refuses too."""
    from authguard.models import KnownDevice, RecoveryCode, RecoveryCodeDevice

    from .factor_scenarios import disabled_totp, her_recovery_codes

    of_long_standing(hanako)
    disabled_totp(hanako, totp_factory)
    codes = her_recovery_codes(hanako)
    the_set = RecoveryCodeDevice.objects.get(user=hanako)
    rows = list(RecoveryCode.objects.filter(device=the_set).order_by("pk"))
    RecoveryCode.objects.filter(pk__in=[r.pk for r in rows[:9]]).update(used_at=the_set.created_at)
    her = new_browser_api(IP_TOKYO)
    her.login_usual("hanako", HANAKO_PASSWORD)
    her_pc = KnownDevice.objects.get(user=hanako, revoked_at__isnull=True)

    thief = new_browser_api(IP_OSAKA)
    thief.login("hanako", HANAKO_PASSWORD)
    assert thief.post("/authguard/api/step-up/recovery-code", {"code": codes[9]}).status_code == 200
    thief.post("/authguard/security/sessions/end-others/")
    thief.post(f"/authguard/security/devices/{her_pc.pk}/revoke/")
    changed = thief.client.get("/password/change/")

    assert her.get("/api/portfolio").status_code == 200, "her session was ended"
    her_pc.refresh_from_db()
    assert her_pc.revoked_at is None, "her PC of months was forgotten"
    assert changed.status_code == 302, changed.status_code  # sent to re-verify, no password form
