"""The customer's path, attacked: what she is shown, told and asked to confirm (red team, 2026-12-05; each
test failed on the code before). One passkey touch confirms exactly the batch her page showed; a notice
names every account it is about, in her language; a new account's number is shown in full; no invisible
characters in a name someone else chose.
"""

from __future__ import annotations

import re
from decimal import Decimal
from html import unescape
from typing import Any

import pytest

from authguard.models import HeldOrder, Notification
from authguard.notifications.messages import render
from demo_site.brokerage import services

from .actions_support import *  # noqa: F403
from .actions_support import BANK, guard_in_session, old_bank_account
from .conftest import HANAKO_PASSWORD, OrderApi, bind_passkey

pytestmark = pytest.mark.django_db

BATCH_PAGE = "/authguard/confirmations/batch/"
BATCH_OPTIONS = "/authguard/api/confirmations/batch/passkey/options"


def _copy_jar(victim: OrderApi) -> OrderApi:
    """The thief's browser with a copy of the customer's whole cookie jar (same network, same browser)."""
    thief = OrderApi()
    for name, morsel in victim.client.cookies.items():
        thief.client.cookies[name] = morsel.value
    thief.token = victim.token
    return thief


@pytest.mark.battery(70)
def test_batch_button_confirms_only_the_orders_her_page_showed(order_api: Any, authenticator: Any) -> None:
    """The batch page's button sent no ids: the server confirmed the set *remembered in the session* at the
    last GET of the page. Whoever shares the session (a copied live cookie jar, or a second tab) and loads
    the page after adding an order of his own silently swapped the set her one passkey touch confirmed.
    Now the page's URLs name the set it shows."""
    services.sync_instruments()
    holdings = {"7203": 1000, "6758": 500, "8306": 1000, "9432": 8000, "AAPL": 20}
    user = services.open_account(
        "kimura", "batch-seller-2025", email="kimura@example.jp", cash=Decimal(0), holdings=holdings
    )
    bind_passkey(user, authenticator)
    her = order_api()
    her.login("kimura", "batch-seller-2025")
    mine = [her.order("sell", s, q).json() for s, q in list(holdings.items())[:-1]]
    her_ids = {a["confirmation"]["id"] for a in mine if a["status"] == "held"}
    assert len(her_ids) >= 2
    page = her.get(BATCH_PAGE)
    assert page.status_code == 200
    shown = {i for i in her_ids if f'data-confirmation="{i}"' in page.content.decode()}
    assert shown == her_ids

    # The thief, with a copy of the live session, adds a sell of his own and loads the batch page once.
    thief = _copy_jar(her)
    his = thief.order("sell", "AAPL", 20).json()
    assert his["status"] == "held", his
    his_id = his["confirmation"]["id"]
    assert thief.get(BATCH_PAGE).status_code == 200

    # A post without the page's set confirms nothing (there is no set remembered in the session).
    assert her.post(BATCH_OPTIONS, {}).status_code == 400
    # She presses "Confirm all with passkey" on the page she is looking at (passkeys.js posts {} to the
    # URLs of its data attributes).
    urls = dict(re.findall(r'data-(options|verify)-url="([^"]+)"', page.content.decode()))
    options = her.post(unescape(urls["options"]), {})
    assert options.status_code == 200, options.content
    done = her.post(unescape(urls["verify"]), authenticator.get(options.json()))
    assert done.status_code == 200, done.content
    assert {c["id"] for c in done.json()["confirmed"]} == her_ids
    assert HeldOrder.objects.get(pk=his_id).status == HeldOrder.Status.PENDING, (
        "her passkey confirmed an order her page never showed"
    )
    assert any(h.symbol == "AAPL" for h in services.portfolio(user).holdings)


# -- notices and summaries of held sensitive actions ----------------------------------------------------


def japanese(user: Any) -> str:
    """``AUTHGUARD_NOTIFICATION_LANGUAGE``: this brokerage writes to its customers in Japanese."""
    return "ja"


@pytest.mark.battery(70)
def test_the_held_action_notice_speaks_the_customers_language_not_the_requesters(
    customer: Any, hanako: Any, settings: Any
) -> None:
    """The portal says its customers read Japanese (``AUTHGUARD_NOTIFICATION_LANGUAGE``). The thief's browser
    asks in English. The held-order notice is rendered from stored numbers in her language; the held-action
    notice carries a summary string pre-rendered in the *requester's* language, so her Japanese mail says
    "Withdraw ¥900,000 to ..." in English (and a portal with a language she does not read at all would tell
    her nothing she can read)."""
    settings.AUTHGUARD_NOTIFICATION_LANGUAGE = f"{__name__}.japanese"
    client, _authenticator = customer
    bank = old_bank_account(hanako)
    response = client.post(
        "/api/withdrawals", {"bank_account_id": bank.pk, "amount": "900000"}, HTTP_ACCEPT_LANGUAGE="en"
    )
    assert response.status_code == 202, response.content
    note = Notification.objects.get(kind="action_held", to_email="hanako@example.com")
    assert note.language == "ja"
    _subject, body = render(note)
    assert "出金" in body and "900,000円" in body, body
    assert "Withdraw" not in body, body


@pytest.mark.battery(70)
def test_the_held_notice_of_a_bank_account_change_names_the_new_account(customer: Any, hanako: Any) -> None:
    """The thief changes her registered account to his. Every notice is cut to 120 characters (``defang``),
    and the summary names the old account first: with a bank name of ordinary length the new account's
    code, number and holder never reach her mail. She is told "Change the bank account Mizuho Bank (0001)
    123 ****567 YAMADA HANAKO to Mizuho Bank Shinjuku Securities Settlement Cen[...]" and cannot tell it
    from a request of her own."""
    from demo_site.brokerage.models import Account

    client, _authenticator = customer
    bank = old_bank_account(hanako)
    his = {
        **BANK,
        "bank_code": "0005",
        "bank_name": "Mizuho Bank Shinjuku Securities Settlement Centre",
        "branch_code": "901",
        "account_number": "7654321",
        "holder_name": "SATO JIRO",
    }
    params = {"account": str(Account.objects.get(user=hanako).pk), "payee": str(bank.pk), **his}
    guard_in_session(client, hanako, kind="bank_account_change", params=params)
    note = Notification.objects.get(kind="action_held", to_email="hanako@example.com")
    _subject, body = render(note)
    # Every detail the passkey confirms about where the money will go from now on (the new number in full).
    for shown in ("(0005)", "901", "7654321", "SATO JIRO"):
        assert shown in body, (shown, body)


@pytest.mark.battery(70)
def test_a_changed_bank_account_is_told_apart_from_the_old_one_on_the_confirmation_page(
    customer: Any, hanako: Any
) -> None:
    """What the passkey confirms for a new or changed payee is shown masked (``****567``): the last three
    digits only. The thief (an account opened in her name at her own bank and branch, the commonest mule)
    changes her registered account to one whose number ends in the same three digits: the page asks her to
    confirm "Change the bank account Mizuho Bank (0001) 123 ****567 YAMADA HANAKO to Mizuho Bank (0001) 123
    ****567 YAMADA HANAKO." -- a no-op to her eyes, while the passkey signs the switch to his account. The
    number being confirmed was typed in this very session: masking it hides nothing from the requester."""
    import re
    from html import unescape

    from demo_site.brokerage.models import Account

    client, _authenticator = customer
    bank = old_bank_account(hanako)  # 1234567
    params = {
        "account": str(Account.objects.get(user=hanako).pk),
        "payee": str(bank.pk),
        **{**BANK, "account_number": "9994567"},
    }
    held = guard_in_session(client, hanako, kind="bank_account_change", params=params)
    page = client.client.get(f"/authguard/actions/{held.action.pk}/")
    assert page.status_code == 200
    summary = unescape(
        re.search(r'id="confirm-summary"[^>]*>(.*?)</p>', page.content.decode(), re.S).group(1)
    )
    summary = re.sub(r"<[^>]+>", "", summary).strip()
    match = re.fullmatch(r"Change the bank account (.*) to (.*)\.", summary)
    assert match, summary
    old, new = match.groups()
    assert old != new, f"the old and the new account read the same: {summary!r}"


@pytest.mark.battery(70)
def test_a_passkey_name_cannot_carry_bidi_overrides_into_the_customers_mail(
    hanako: Any, actions_site: Any
) -> None:
    """Action params refuse control and format characters ("bidi overrides would disguise the summary"), but
    a passkey's name, chosen by whoever registers it, keeps them; it is shown in the "a sign-in method was
    added" mail and on the security page where she picks the passkey to remove. U+202E (RIGHT-TO-LEFT
    OVERRIDE) makes "iPhone‮enohPi s'okanaH" display as "iPhone Hanako's iPhone"; zero-width characters
    make a name that looks like hers and is not."""
    import unicodedata

    from authguard.models import PasskeyDevice
    from authguard.testing import SoftAuthenticator

    authenticator = SoftAuthenticator(origin="http://localhost:8000", rp_id="localhost")
    client = OrderApi()
    client.login_usual("hanako", HANAKO_PASSWORD)
    options = client.post("/authguard/api/passkeys/options").json()
    body = authenticator.create(options)
    body["name"] = "Work\u202eenohPi s'okanaH\u200b"
    response = client.post("/authguard/api/passkeys", body)
    assert response.status_code in (201, 400), response.content
    names = list(PasskeyDevice.objects.filter(user=hanako).values_list("name", flat=True))
    mails = [render(n)[1] for n in Notification.objects.filter(kind="factor_added")]
    for text in names + mails:
        bad = [hex(ord(c)) for c in text if unicodedata.category(c) in ("Cc", "Cf") and c != "\n"]
        assert not bad, (bad, text)
