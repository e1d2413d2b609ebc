"""The lure filter of round 54 (:mod:`authguard.notifications.lures`), its gaps and its cost (red team, round
fifty-five).

The thief has hanako's password and relays one code of her authenticator app; he names what he adds, writes
his User-Agent, and types the free text of the requests he makes. Real flows (the demo portal's JSON API,
real TOTP codes, SoftAuthenticator passkeys, mails as the outbox builds them, the console as staff see it).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

import pytest

from authguard.actions import ActionInvalid, clean_params
from authguard.models import HeldAction, Notification, PasskeyDevice
from authguard.notifications.messages import build_message

from .actions_support import BANK, OTHER_BROKER, actions_site, customer, guard_in_session  # noqa: F401
from .conftest import IP_TOKYO
from .factor_scenarios import new_key
from .test_injected_text_walkarounds import (  # noqa: F401 (fixtures)
    DIGITS,
    UA_VISHING,
    _her_removes,
    _her_verified,
    _register_named,
    _thief,
    _thief_with_one_code,
    alice,
    on_commit,
    thief_setup,
)

pytestmark = pytest.mark.django_db


def _her_security_page(new_browser_api: Any, hanako: Any, clock: Any) -> str:
    page = _her_verified(new_browser_api, hanako, clock).get("/authguard/security/")
    assert page.status_code == 200
    return re.sub(r"<[^>]+>", " ", page.content.decode())


# -- 1. numbers the digit shape does not see ------------------------------------------------------------

#: The callback number as Japanese customers write and read it every day.
JAPANESE_SPELLINGS = [
    # The katakana prolonged-sound mark: what a Japanese IME types for "-" in kana mode; it is a letter (Lm).
    ("Hanako iPhone 不審なら当社 0120ー987ー654 へ", re.compile(r"0120\D987\D654")),
    ("Hanako iPhone 不審なら当社 ０１２０ー９８７ー６５４ へ", re.compile(r"０１２０.９８７.６５４")),
    ("Hanako iPhone 不審なら当社 0120ｰ987ｰ654 へ", re.compile(r"0120\D987\D654")),  # half-width ｰ
    # Positional kanji numerals: 百 and 十 are letters, so 九百八十七 breaks the run.
    ("Hanako iPhone 当社窓口 〇一二〇 九百八十七 六五四", re.compile(r"九百八十七")),
    # Four separators between groups.
    ("Hanako iPhone call our desk 0120 -- 987 -- 654", re.compile(r"0120\D{1,6}987\D{1,6}654")),
]


@pytest.mark.parametrize(("name", "shown"), JAPANESE_SPELLINGS)
def test_his_passkeys_name_with_a_japanese_spelled_number_stays_out_of_her_removal_notice(
    thief_setup: Any,  # noqa: F811
    order_api: Any,
    new_browser_api: Any,
    clock: Any,
    name: str,
    shown: Any,
) -> None:
    """Secure: "0120ー987ー654" is how a Japanese keyboard writes a phone number (the IME turns "-" into the
    prolonged-sound mark ー, a letter to ``str.isalpha``), and 九百八十七 is how a number is written out in
    kanji. ``_digits_shape`` makes ー, ｰ, 百 and 十 "a", which ends the run of digits, and more than three
    separators end it too: her genuine "a sign-in method was removed" mail still hands her his desk's
    number. Treat ー/ｰ/〜 and the kanji place values (十百千万) as separators or digits, and count a gap of
    any non-alphanumeric length (within a line) as one."""
    hanako = thief_setup
    thief = _thief_with_one_code(order_api, hanako)
    assert _register_named(thief, new_key(), name).status_code == 201
    body = _her_removes(new_browser_api, hanako, PasskeyDevice.objects.get(user=hanako), clock)
    assert "Hanako iPhone" in body, body
    assert not shown.search(body), body


# -- 2. domains the domain pattern does not see -----------------------------------------------------------

UNSEEN_DOMAINS = [
    # An IDN label then a Japanese particle: (?![\w\-]) refuses the match, LINK_PATTERN knows ASCII labels.
    ("Hanako iPhone 確認は のむら証券.jpへ", "のむら証券.jp"),
    # A full-width top-level domain (IDNA maps it to "jp"; the pattern wants [a-z]).
    ("Hanako iPhone 確認 nomura-sec．ｊｐ", "nomura-sec．ｊｐ"),
    # ONE DOT LEADER (U+2024): it looks like "." and NFKC (so IDNA) maps it to "."
    ("Hanako iPhone check nomura-sec\u2024jp", "nomura-sec\u2024jp"),
]


@pytest.mark.parametrize(("name", "domain"), UNSEEN_DOMAINS)
def test_his_passkeys_name_with_a_domain_stays_out_of_her_removal_notice(
    thief_setup: Any,  # noqa: F811
    order_api: Any,
    new_browser_api: Any,
    clock: Any,
    name: str,
    domain: str,
) -> None:
    """Secure: mails carry no links and no domain a reader types. A domain followed straight by a Japanese
    particle ("のむら証券.jpへ": Japanese puts no space there), a full-width TLD ("．ｊｐ") or a dot leader
    ("․") passes ``_DOMAIN`` (lookahead ``(?![\\w\\-])`` and ASCII ``[a-z]`` TLDs, only 。．｡ as dots) and the
    ASCII ``LINK_PATTERN``: his phishing site is named in her genuine removal notice. NFKC-fold the text
    before matching, and end a domain at any character that is not ASCII-alphanumeric or '-'."""
    hanako = thief_setup
    thief = _thief_with_one_code(order_api, hanako)
    assert _register_named(thief, new_key(), name).status_code == 201
    body = _her_removes(new_browser_api, hanako, PasskeyDevice.objects.get(user=hanako), clock)
    assert "Hanako iPhone" in body, body
    assert domain not in body, body


def test_her_security_page_does_not_show_his_domain_followed_by_a_particle(
    thief_setup: Any,  # noqa: F811
    order_api: Any,
    new_browser_api: Any,
    clock: Any,
) -> None:
    """Secure: the mail at least has the ASCII ``LINK_PATTERN`` behind ``strip_lures``; the security page
    (``chosen_name``) and the console (``shown_name``) have only ``strip_lures``, whose domain match needs a
    non-word character after the TLD. "Hanako iPhone 確認は nomura-sec.jpへ" is listed whole on the page she
    opens to find the method she did not add. Apply the same (NFKC, any-script) domain match everywhere."""
    hanako = thief_setup
    thief = _thief_with_one_code(order_api, hanako)
    assert _register_named(thief, new_key(), "Hanako iPhone 確認は nomura-sec.jpへ").status_code == 201
    text = _her_security_page(new_browser_api, hanako, clock)
    assert "Hanako iPhone" in text
    assert "nomura-sec.jp" not in text, re.findall(r".{0,40}nomura.{0,20}", text)


# -- 3. other carriers of his text -------------------------------------------------------------------------


@pytest.mark.usefixtures("actions_site")
@pytest.mark.parametrize(
    "receiving",
    [
        # His desk's number as the broker's name: refused like a bank's name.
        {"broker_name": "野村證券 ご本人でない場合は当社 0120-987-654 へ"},
        # Or spread over the number fields, each valid digits: the summary names each number, so they do
        # not read as one phone number.
        {"broker_code": "0120", "branch_code": "987", "account_number": "654"},
    ],
    ids=["in_the_name", "over_the_numbers"],
)
def test_a_securities_transfers_destination_does_not_carry_his_number_into_her_hold_notice(
    customer: Any,  # noqa: F811
    hanako: Any,
    receiving: dict[str, str],
) -> None:
    """Secure: a securities transfer's receiving account does not carry a callback number into her genuine
    "a request is on hold until you confirm it" mail. Before round fifty-seven it was one free text of 120
    characters, "野村證券 ご本人でない場合は当社 0120-987-654 へ" was its summary, and the number in it
    could not be told from the account's own. It is now fields like a bank account's: a name refused when it
    holds a lure (400), digits for the broker's code, branch and account, each named in the summary."""
    client, _authenticator = customer
    params = {
        "account": "1",
        "symbol": "7203",
        "quantity": 100,
        "broker_code": "0001",
        "broker_name": "野村證券",
        "branch_code": "123",
        "account_number": "1234567",
        **receiving,
    }
    if "broker_name" in receiving:
        with pytest.raises(ActionInvalid) as refused:
            clean_params(kind="securities_transfer_out", params=params)
        assert set(refused.value.errors) == {"broker_name"} and refused.value.http_status == 400
        assert not HeldAction.objects.filter(user=hanako).exists()
        return
    guard_in_session(client, hanako, kind="securities_transfer_out", params=params)
    note = Notification.objects.filter(kind="action_held", user=hanako).latest("pk")
    body = build_message(note).body
    assert "7203" in body and "0120" in body and "654" in body, body  # the numbers she confirms are there
    assert not DIGITS.search(body) and not re.search(r"0120\D{0,3}987\D{0,3}654", body), body


@pytest.mark.usefixtures("actions_site")
def test_the_old_free_text_destination_is_refused_with_what_replaced_it(customer: Any) -> None:  # noqa: F811
    """A portal still sending ``destination`` gets a 400 naming the fields that replaced it, not an unknown
    field alone; nothing is held."""
    with pytest.raises(ActionInvalid) as refused:
        clean_params(
            kind="securities_transfer_out",
            params={"account": "1", "symbol": "7203", "quantity": 100, "destination": "野村證券 1234567"},
        )
    assert "broker_code" in " ".join(refused.value.errors["destination"])
    assert {"broker_code", "broker_name", "branch_code", "account_number"} <= set(refused.value.errors)


def test_a_transfer_held_before_the_fields_still_reads_without_his_number() -> None:
    """A held transfer stored before round fifty-seven keeps its free-text destination in its summary data;
    rendered again (the confirmation page, the console), its lures are stripped."""
    from authguard.actions.summary import render_summary

    text = render_summary(
        {
            "kind": "securities_transfer_out",
            "symbol": "7203",
            "quantity": 100,
            "destination": "野村證券 ご本人でない場合は当社 0120-987-654 へ",
        }
    )
    assert "野村證券" in text and not DIGITS.search(text), text


@pytest.mark.parametrize(
    "symbol",
    ["0120-987-654", "TEL0120987654", "お問合せ0120987654", "０１２０９８７６５４"],
    ids=["bare", "tel", "japanese", "fullwidth"],
)
@pytest.mark.usefixtures("actions_site")
def test_a_transfers_symbol_does_not_carry_his_number_into_her_hold_notice(
    customer: Any,  # noqa: F811
    hanako: Any,
    symbol: str,
) -> None:
    """Secure: nothing the thief types into a securities transfer out reaches her genuine "a request is on
    hold until you confirm it" mail as a callback number (round 54's rule; round 57 moved the receiving
    account into fields and refused lures in ``broker_name``).

    Attack: the ``symbol`` field is still ``_text(16)``: no lure check in ``clean_params`` and none at
    rendering (``render_summary`` puts it raw into the summary; the mail's ``summary`` key is not in
    ``FREE_TEXT_KEYS``, so only ``LINK_PATTERN`` is defanged, never a phone number). 16 characters hold
    "お問合せ0120987654" or "TEL0120987654": her hold notice, the confirmation page and the console list read
    "Transfer 100 shares of TEL0120987654 out to ...", and the customer who did not ask for it calls.
    Fixed in round fifty-eight: ``symbol`` is a security's code (``params._security_code``: up to 12 ASCII
    letters, digits, dots or hyphens, nothing ``has_lure`` flags), refused with a 400 otherwise."""
    client, _authenticator = customer
    params = {"account": "1", "symbol": symbol, "quantity": 100, **OTHER_BROKER}
    try:
        held = guard_in_session(client, hanako, kind="securities_transfer_out", params=params)
    except ActionInvalid as refused:
        assert "symbol" in refused.errors
        assert not HeldAction.objects.filter(user=hanako).exists()
        return
    note = Notification.objects.filter(kind="action_held", user=hanako).latest("pk")
    body = build_message(note).body
    page = client.get(f"/authguard/actions/{held.action.pk}/")
    shown = re.sub(r"<[^>]+>", " ", page.content.decode())
    assert not DIGITS.search(_read(body)) and not DIGITS.search(_read(shown)), (
        f"his number in her hold notice: {body!r}\nconfirmation page ({page.status_code}) shows it: "
        f"{bool(DIGITS.search(_read(shown)))}"
    )


def _read(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


@pytest.mark.usefixtures("actions_site")
def test_the_desks_cancel_notice_of_a_transfer_held_before_the_fields_does_not_carry_his_number(
    customer: Any,  # noqa: F811
    hanako: Any,
    admin_user: Any,
) -> None:
    """Secure: a transfer held before round 57 (its free-text destination, "野村證券 ご本人でない場合は当社
    0120-987-654 へ", kept in the row) does not hand his number to her or to the desk when it is shown again.

    Round 57 strips lures when the summary is *rendered from* ``summary_data`` (the confirmation page, the
    API). But the row's stored ``summary`` text (rendered at hold time, before the fix) is shown raw: the
    console's held-action list (``list_display = (..., "summary", ...)``) and, worse, the desk's cancel
    notice to her (``actions.flow.staff_cancel``: ``"what": str(held.summary)[:120]``; "what" is not in
    ``FREE_TEXT_KEYS``, only links are defanged). The desk, seeing a suspicious transfer out, cancels it and
    her genuine "the security desk cancelled a request" mail reads "... 野村證券 ご本人でない場合は当社
    0120-987-654 へ". Fixed in round fifty-eight: both cancel notices (``actions.flow.staff_cancel``
    and the order guard's twin) and the console's held-action list and page show the stored summary through
    ``strip_lures``."""
    from authguard.actions import admin as actions_admin  # noqa: F401 (registers the admin)

    from .staff_fixtures import staff_client

    client, _authenticator = customer
    params = {"account": "1", "symbol": "7203", "quantity": 100, **OTHER_BROKER}
    held = guard_in_session(client, hanako, kind="securities_transfer_out", params=params)
    old_text = "野村證券 ご本人でない場合は当社 0120-987-654 へ"
    # The row as round 56 stored it: the free-text destination in its data and in its rendered summary.
    HeldAction.objects.filter(pk=held.action.pk).update(
        summary_data={
            "kind": "securities_transfer_out",
            "symbol": "7203",
            "quantity": 100,
            "destination": old_text,
        },
        summary=f"Transfer 100 shares of 7203 out to {old_text}.",
    )
    desk = staff_client(admin_user)
    listing = desk.get("/admin/authguard/heldaction/")
    console = re.sub(r"<[^>]+>", " ", listing.content.decode())
    done = desk.post(
        "/admin/authguard/heldaction/",
        {
            "action": "cancel_held",
            "_selected_action": [str(held.action.pk)],
            "reason": "customer did not ask for it",
            "apply": "1",
        },
    )
    assert done.status_code in (200, 302)
    assert HeldAction.objects.get(pk=held.action.pk).status == "cancelled"
    note = Notification.objects.filter(kind="staff_action", user=hanako).latest("pk")
    body = build_message(note).body
    assert not DIGITS.search(body) and not DIGITS.search(console), (
        f"her cancel notice: {body!r}\nthe console's list shows it: {bool(DIGITS.search(console))}"
    )


def test_the_consoles_known_device_list_does_not_hand_the_desk_his_number(
    alice: Any,  # noqa: F811
    browser_at: Any,
) -> None:
    """Secure: his User-Agent's "SECURITY DESK CALL 0120 987 654 Spider/2" is stored as the remembered
    browser's ``label`` and the sign-in's ``device_summary``. The security page and the incident report
    pass them through ``device_label``; the console's "Known devices" and "Login events" lists show the
    raw field (``list_display = ("user", "label", ...)``, ``"device_summary"``). The analyst calling "the
    customer's desk" reaches him. Show these columns through ``device_label`` too."""
    from .console_data import staff_client, staff_user

    browser_at(IP_TOKYO, UA_VISHING).sign_in("alice")
    desk = staff_client(staff_user("desk", perms=("authguard.view_knowndevice", "authguard.view_loginevent")))
    shown = []
    for path in ("/admin/authguard/knowndevice/", "/admin/authguard/loginevent/"):
        page = desk.get(path)
        assert page.status_code == 200, path
        text = re.sub(r"<[^>]+>", " ", page.content.decode())
        assert "Spider" in text, path
        shown += [path] if DIGITS.search(text) else []
    assert shown == [], shown


# -- 4. the cost: ordinary customer text -----------------------------------------------------------------


@pytest.mark.usefixtures("actions_site")
@pytest.mark.parametrize(
    ("bank_name", "holder_name"),
    [
        ("ゆうちょ銀行", "ヤマダ ハナコ"),
        ("三菱UFJ銀行", "YAMADA HANAKO"),
        ("PayPay銀行", "ﾔﾏﾀﾞ ﾊﾅｺ"),
        ("ＳＢＩ新生銀行", "ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ"),
        ("楽天銀行", "SMITH JOHN"),
        ("GMOあおぞらネット銀行", "ヤマダ タロウ"),
        ("auじぶん銀行", "YAMADA TARO"),
    ],
)
def test_held_ordinary_bank_and_holder_names_are_accepted(
    customer: Any,  # noqa: F811
    bank_name: str,
    holder_name: str,
) -> None:
    """Held: the bank and holder names Japanese customers type are held for her passkey, not refused."""
    client, _authenticator = customer
    response = client.post("/api/bank-accounts", {**BANK, "bank_name": bank_name, "holder_name": holder_name})
    assert response.status_code == 202, response.content


@pytest.mark.usefixtures("actions_site")
@pytest.mark.parametrize("holder_name", ["J.SMITH", "YAMADA.TARO", "ABC CO.LTD", "ｶ)ABC.JAPAN"])
def test_a_holder_name_with_a_dot_is_not_refused_as_a_web_address(customer: Any, holder_name: str) -> None:  # noqa: F811
    """Secure: the Zengin character set lets a holder name carry "." (initials, "CO.LTD", romaji with a dot);
    ``_DOMAIN`` takes any letters after a dot for a top-level domain ([a-z]{2,24}), so "J.SMITH" or
    "ABC CO.LTD" (the name printed on the customer's bank book) is refused with "a name cannot contain a web
    address", and she cannot register her own account. Accept a top-level domain only from the real list
    (the IANA root zone, or at least the ccTLDs and common gTLDs), or require a second label before it."""
    client, _authenticator = customer
    response = client.post("/api/bank-accounts", {**BANK, "holder_name": holder_name})
    assert response.status_code == 202, response.content


@pytest.mark.parametrize(
    "name",
    [
        "iPhone 15 Pro",
        "Pixel 8a",
        "YubiKey 5C NFC",
        "MacBook Pro 2023",
        "Xperia 1 III 2021",  # a roman numeral is no digit (round 76: round 75's rule read III as 111)
        "Xperia 5 II 2020年",
    ],
)
def test_held_ordinary_passkey_names_are_shown_whole_on_her_security_page(
    thief_setup: Any,  # noqa: F811
    new_browser_api: Any,
    clock: Any,
    name: str,
) -> None:
    """Held: ordinary passkey names are listed as she typed them."""
    from authguard.testing import SoftAuthenticator

    from .conftest import bind_passkey

    bind_passkey(thief_setup, SoftAuthenticator(origin="http://localhost:8000", rp_id="localhost"), name=name)
    text = _her_security_page(new_browser_api, thief_setup, clock)
    assert name in text


@pytest.mark.parametrize(
    "name", ["会社のPC 2024-10-01", "Windows Hello 2024.10.01", "家のPC 2024/10/01 09:00"]
)
def test_a_passkey_named_with_its_date_keeps_the_date_on_her_security_page(
    thief_setup: Any,  # noqa: F811
    new_browser_api: Any,
    clock: Any,
    name: str,
) -> None:
    """Secure (cost): customers name passkeys by the day they added them ("会社のPC 2024-10-01"); the eight
    digits of an ISO date are "a phone number" to ``_PHONE``, and her security page lists her own passkey
    as "会社のPC […]", which tells her nothing when she must pick which method to remove. A date
    (YYYY-MM-DD, YYYY/MM/DD, YYYY.MM.DD, with or without a time) is not a callback number: recognise it
    (a Japanese phone number starts with 0, a date with 19/20)."""
    from authguard.testing import SoftAuthenticator

    from .conftest import bind_passkey

    bind_passkey(thief_setup, SoftAuthenticator(origin="http://localhost:8000", rp_id="localhost"), name=name)
    text = _her_security_page(new_browser_api, thief_setup, clock)
    assert name in text, re.findall(r".{0,30}\[…\].{0,10}", text)


@pytest.mark.parametrize(
    "ua",
    [
        "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
        "SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.86",
        "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/18.1 Mobile/15E148 Safari/604.1",
    ],
)
def test_held_real_browsers_are_named_whole_in_her_sign_in_notice(
    alice: Any,  # noqa: F811
    browser_at: Any,
    on_commit: Any,  # noqa: F811
    ua: str,
) -> None:
    """Held: the summaries of real browsers (major versions only) keep every word: in the stored sign-in, on
    her security page's filter (``device_label``) and in the Device line of a sign-in notice when one is
    sent."""
    from authguard.models import LoginEvent
    from authguard.templatetags.authguard_display import device_label

    Notification.objects.all().delete()
    with on_commit(execute=True):
        browser_at(IP_TOKYO, ua).sign_in("alice")
    summary = LoginEvent.objects.filter(user=alice).latest("pk").device_summary
    assert "[…]" not in device_label(summary), summary
    for notice in Notification.objects.filter(user=alice):
        body = build_message(notice).body
        assert "[…]" not in body, body


def test_the_factor_list_api_does_not_hand_the_portal_his_callback_number(
    thief_setup: Any,  # noqa: F811
    order_api: Any,
    new_browser_api: Any,
    clock: Any,
) -> None:
    """Secure: a portal draws its own "your sign-in methods" screen from ``POST api/factors``; authguard's
    security page shows names through ``chosen_name`` (numbers stripped), the API returns ``device.name``
    raw, so the brokerage's app lists "Hanako iPhone - if not you, call our desk 0120-987-654" on her
    screen. Return the name as the page shows it (``chosen_name``), or say which names carry a lure."""
    hanako = thief_setup
    thief = _thief_with_one_code(order_api, hanako)
    vishing = "Hanako iPhone - if not you, call our desk 0120-987-654 now"
    assert _register_named(thief, new_key(), vishing).status_code == 201
    listed = _her_verified(new_browser_api, hanako, clock).post("/authguard/api/factors")
    assert listed.status_code == 200, listed.content
    names = [factor["name"] for factor in listed.json()["factors"]]
    assert any("Hanako iPhone" in name for name in names), names
    assert not any(DIGITS.search(name) for name in names), names
