"""Red team, round thirty-seven (d): during the cooling-off of an e-mail change every notice to the customer
reaches every address the account had in it (``notify_customer``), not only the current one.

docs/factor-lifecycle.md: "During it the customer is told about every change on the current address and,
after an e-mail change, on every address the account had during the cooling-off as well". The e-mail change
itself is accepted as reachable by one phishing page that relays an authenticator code *and* a recovery
code (the two-factor path). The security page's "sign out everywhere" and "forget this browser", the desk's
re-binding grant and removals, the desk's staff-action notices and the new-browser sign-in notice had been
queued with ``notify``: for the current address only, the thief's.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.core import mail

from authguard.factors import lifecycle
from authguard.models import KnownDevice, Notification

from .conftest import HANAKO_PASSWORD, IP_OSAKA, IP_TOKYO, UA_FIREFOX_LINUX, of_long_standing, totp_token
from .console_data import staff_user
from .factor_scenarios import her_recovery_codes, old_totp
from .test_previous_addresses import _changed

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]

HER_MAIL = "hanako@example.com"
THIEF_MAIL = "hanako.secure@mule-mail.example"


def _mailed_code() -> str:
    return next(word for word in mail.outbox[-1].body.split() if word.isdigit() and len(word) == 8)


def _to(user: Any, kind: str) -> set[str]:
    return {n.to_email.lower() for n in Notification.objects.filter(user=user, kind=kind)}


def test_after_his_e_mail_change_signing_her_out_and_forgetting_her_pc_are_told_only_to_his_address(
    new_browser_api: Any, hanako: Any, totp_factory: Any, clock: Any
) -> None:
    """Secure: during the cooling-off of an e-mail change every removed factor and every "signed out" is told
    to the addresses the account had in it too. The thief had her password and one phishing page relaying
    an app code and a recovery code (the two-factor path, which the docs accept for an e-mail change: her
    old address is told of the change and keeps hearing of everything for a day). He changes the address
    to his, then signs her PC out and forgets it (her month of standing lost for good: her next passkey
    cools off for two weeks, her own throttle scope is gone). Both notices
    (``authguard.sessions.own_devices``) are queued with ``notify`` for the current address only: his.
    Her old address, the one the docs promise keeps hearing, is told neither."""
    of_long_standing(hanako)
    hanako.totp = old_totp(hanako, totp_factory)
    codes = her_recovery_codes(hanako)
    her = new_browser_api(IP_TOKYO)
    her.login_usual("hanako", HANAKO_PASSWORD)  # her PC of months, signed in
    her_pc = KnownDevice.objects.get(user=hanako, revoked_at__isnull=True)

    thief = new_browser_api(IP_OSAKA)
    thief.login("hanako", HANAKO_PASSWORD)
    assert thief.post("/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)}).status_code == 200
    first = thief.post("/authguard/api/email", {"email": THIEF_MAIL})
    assert first.status_code == 403 and first.json()["code"] == "second_factor_required", first.content
    clock.shift(30)
    assert thief.post("/authguard/api/step-up/recovery-code", {"code": codes[0]}).status_code == 200
    assert thief.post("/authguard/api/email", {"email": THIEF_MAIL}).status_code == 202
    assert thief.post("/authguard/api/email/confirm", {"code": _mailed_code()}).status_code == 200
    hanako.refresh_from_db()
    assert hanako.email == THIEF_MAIL
    assert HER_MAIL in _to(hanako, "email_changed")  # the change itself reached her (documented)

    thief.client.post("/authguard/security/sessions/end-others/", HTTP_X_CSRFTOKEN=thief.token)
    thief.client.post(f"/authguard/security/devices/{her_pc.pk}/revoke/", HTTP_X_CSRFTOKEN=thief.token)
    her_pc.refresh_from_db()
    assert her_pc.revoked_at is not None  # it went through (the two-factor path)
    assert her.get("/api/portfolio").status_code != 200  # and she was signed out

    told_out = _to(hanako, "sessions_ended")
    told_forgot = {
        n.to_email.lower()
        for n in Notification.objects.filter(user=hanako, kind="factor_removed")
        if n.dedupe_key.endswith(f"forget-device:{her_pc.pk}") or f"forget-device:{her_pc.pk}" in n.dedupe_key
    }
    assert HER_MAIL in told_out, f"'signed out everywhere' told only to {told_out}"
    assert HER_MAIL in told_forgot, f"'your PC was forgotten' told only to {told_forgot}"


def test_the_desks_re_binding_grant_is_told_to_her_previous_address_too(
    user_factory: Any, clock: Any
) -> None:
    """Secure: a grant the thief talked the desk into after changing the address reaches her old address."""
    alice = user_factory("alice", email=HER_MAIL)
    _changed(alice, THIEF_MAIL)
    clock.shift(600)
    lifecycle.grant_rebind(alice, by_staff=staff_user("desk-a", perms=()))
    assert _to(alice, "rebind_granted") == {HER_MAIL, THIEF_MAIL}


def test_a_new_browsers_sign_in_is_told_to_her_previous_address_too(
    user_factory: Any, browser_at: Any, clock: Any
) -> None:
    """Secure: after the address changed, a sign-in from a new browser is told to the previous address during
    the cooling-off (the thief signing in again from his next proxy), and to the current one only after."""
    alice = user_factory("alice", email=HER_MAIL)
    home = browser_at(IP_TOKYO)
    for _day in range(12):  # her months at home
        home.sign_in("alice", "correct horse battery")
        clock.shift(86400 * 7)
    _changed(alice, THIEF_MAIL)
    clock.shift(600)
    answer = browser_at(IP_TOKYO, UA_FIREFOX_LINUX).sign_in("alice", "correct horse battery")
    assert answer.status_code == 302  # a new browser at home: allowed, and told
    told = _to(alice, "new_device_login") | _to(alice, "new_country_login")
    assert HER_MAIL in told, told


def test_no_customer_notice_is_queued_for_the_current_address_alone() -> None:
    """Every notice to a customer goes through ``notify_customer`` (or names its one address, ``to_email``):
    a call of the outbox's bare ``notify`` anywhere else is the gap this file's cases found, five times."""
    import ast
    from pathlib import Path

    import authguard

    root = Path(authguard.__file__).parent
    bare = []
    for path in sorted(root.rglob("*.py")):
        if path.relative_to(root).as_posix() == "notifications/outbox.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (
                isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "notify"
            ):
                continue
            context = next((k.value for k in node.keywords if k.arg == "context"), None)
            named = isinstance(context, ast.Dict) and any(
                isinstance(key, ast.Constant) and key.value == "to_email" for key in context.keys
            )
            if not named and "to_email" not in ast.unparse(node):
                bare.append(f"{path.relative_to(root)}:{node.lineno}")
    # factors.base.tell_user calls it only on its branch for a context that names ``to_email``.
    tree = ast.parse((root / "factors" / "base.py").read_text(encoding="utf-8"))
    tell = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "tell_user")
    inside = {f"factors/base.py:{line}" for line in range(tell.lineno, (tell.end_lineno or tell.lineno) + 1)}
    bare = [where for where in bare if where not in inside]
    assert bare == [], bare
