"""Round thirty-one (c), the legitimate customer's advocate: round thirty's contact-change rule (a
``contact_change`` is never confirmed with one TOTP code in the sensitive-action flow,
``actions.methods.confirmation_methods``) and what is left for a customer without a passkey: authguard's own
e-mail change, which asks her for two different factors (``factors.contact.require_contact_change_allowed``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from .conftest import HANAKO_PASSWORD, IP_TOKYO, UA_CHROME_WIN, OrderApi, of_long_standing, totp_token

NEW_MAIL = "hanako.new@example.jp"


def _mailed_code() -> str:
    return next(word for word in mail.outbox[-1].body.split() if word.isdigit() and len(word) == 8)


def _her_app_of_a_year(customer: Any, totp_factory: Any) -> Any:
    app = totp_factory(customer)
    TOTPDevice.objects.filter(pk=app.pk).update(created_at=timezone.now() - timedelta(days=365))
    app.refresh_from_db()
    return app


@pytest.mark.django_db
@pytest.mark.usefixtures("geoip")
@pytest.mark.parametrize("codes", ["printed-long-ago", "never-printed"])
def test_held_her_e_mail_change_without_a_passkey_goes_through_at_her_usual_pc(
    brokerage_customer: Any, totp_factory: Any, order_api: Any, clock: Any, codes: str
) -> None:
    """HELD (a way through that a one-code phisher does not have): hanako, a customer of years, has her
    authenticator app of a year and no passkey; she changes her e-mail address at her PC of months. The
    portal's action flow no longer offers her the code for a ``contact_change`` (round thirty); authguard's
    own e-mail page asks for two different factors: her app, then one of her printed recovery codes. With
    no codes printed, she prints a set there; it cools off for a day (her usual PC: the vouched 24 hours,
    not 14 days), so she changes the address the next day (documented, docs/factor-lifecycle.md). Each
    step is a code of hers; the address changes after the mailed code."""
    from authguard.actions import flow as actions

    from .factor_scenarios import her_recovery_codes

    customer = of_long_standing(brokerage_customer(holdings={"7203": 100}))
    app = _her_app_of_a_year(customer, totp_factory)
    printed = her_recovery_codes(customer) if codes == "printed-long-ago" else None
    assert actions.confirmation_methods(customer, kind="contact_change") == []
    pc = OrderApi(REMOTE_ADDR=IP_TOKYO, HTTP_USER_AGENT=UA_CHROME_WIN)
    pc.login_usual("hanako", HANAKO_PASSWORD)
    pc.post("/api/logout")
    pc.login("hanako", HANAKO_PASSWORD)
    assert pc.post("/authguard/api/step-up/totp", {"code": totp_token(app)}).status_code == 200
    first = pc.post("/authguard/api/email", {"email": NEW_MAIL})
    assert first.status_code == 403 and first.json()["code"] == "second_factor_required", first.content
    if printed is None:
        made = pc.post("/authguard/api/recovery-codes")
        assert made.status_code == 201, made.content
        printed = made.json()["codes"]
        clock.shift(30)
        assert pc.post("/authguard/api/step-up/recovery-code", {"code": printed[1]}).status_code == 200
        early = pc.post("/authguard/api/email", {"email": NEW_MAIL})
        # The new set cools off for a day (documented: "neither of them cooling off"): tomorrow.
        assert early.status_code == 403, early.content
        clock.shift(25 * 3600)
        pc.post("/api/logout")
        pc.login("hanako", HANAKO_PASSWORD)
        assert pc.post("/authguard/api/step-up/totp", {"code": totp_token(app)}).status_code == 200
        assert pc.post("/authguard/api/email", {"email": NEW_MAIL}).status_code == 403
    clock.shift(30)
    second = pc.post("/authguard/api/step-up/recovery-code", {"code": printed[0]})
    assert second.status_code == 200, second.content
    begun = pc.post("/authguard/api/email", {"email": NEW_MAIL})
    assert begun.status_code == 202, (begun.status_code, begun.content[:300])
    done = pc.post("/authguard/api/email/confirm", {"code": _mailed_code()})
    customer.refresh_from_db()
    assert done.status_code == 200 and customer.email == NEW_MAIL, done.content
