"""Text a thief controls, inside the brokerage's genuine messages and pages (red team, round fifty-four).

Round 53 took the passkey's name out of the factor-added mail and phone numbers out of ``name`` context
values. The thief has hanako's password and relays ONE code of her authenticator app (a real-time phishing
proxy). Everything else he types is still his: the User-Agent header of every request he sends (authguard
turns it into the "Device:" line of her mails), the names of his factors, the bank account he registers.
Real flows: the demo portal's JSON API, real TOTP codes, real WebAuthn payloads (SoftAuthenticator); the
mail as the outbox sends it (``build_message``). Fixed by :mod:`authguard.notifications.lures` (phone
numbers and domain names in any script or width), applied to every context value someone else chose, the
security page's and the console's names and browser summaries, and a bank account's names (refused).
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.utils import timezone

from authguard.models import HeldAction, Notification, PasskeyDevice
from authguard.notifications.messages import build_message

from .actions_support import BANK, actions_site  # noqa: F401 (a fixture)
from .conftest import HANAKO_PASSWORD, IP_OSAKA, IP_TOKYO, UA_CHROME_WIN, of_long_standing, totp_token
from .factor_scenarios import new_key, old_totp

pytestmark = pytest.mark.django_db

#: A real iPhone Safari User-Agent with one product token of the thief's before the end. ua-parser's generic
#: "spider" rule takes ``[A-Za-z0-9 -_!:]{0,50}Spider`` as the browser family: the summary authguard stores
#: and mails is "SECURITY DESK CALL 0120 987 654 Spider 2 on iOS 18" (a mobile, not automation).
UA_VISHING = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Mobile/15E148 Safari/604.1 SECURITY DESK CALL 0120 987 654 Spider/2"
)
#: The thief's callback number in the forms a reader dials (ASCII digits, any separator).
DIGITS = re.compile(r"0\D{0,3}1\D{0,3}2\D{0,3}0\D{0,3}9\D{0,3}8\D{0,3}7\D{0,3}6\D{0,3}5\D{0,3}4")


def _thief(order_api: Any, *, ua: str = UA_CHROME_WIN, ip: str = IP_OSAKA) -> Any:
    return order_api(REMOTE_ADDR=ip, HTTP_USER_AGENT=ua)


def _thief_with_one_code(order_api: Any, hanako: Any, *, ua: str = UA_CHROME_WIN) -> Any:
    thief = _thief(order_api, ua=ua)
    thief.login("hanako", HANAKO_PASSWORD)
    assert thief.post("/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)}).status_code == 200
    return thief


def _register_named(client: Any, key: Any, name: str) -> Any:
    options = client.post("/authguard/api/passkeys/options")
    assert options.status_code == 200, options.content
    return client.post("/authguard/api/passkeys", {**key.create(options.json()), "name": name})


def _her_verified(new_browser_api: Any, hanako: Any, clock: Any) -> Any:
    """hanako signed in from her PC and verified with her app: her client."""
    clock.shift(31)  # the thief's relayed code was this step's; hers is the next one
    her = new_browser_api(IP_TOKYO)
    her.login("hanako", HANAKO_PASSWORD)
    assert her.post("/authguard/api/step-up/totp", {"code": totp_token(hanako.totp)}).status_code == 200
    return her


def _her_removes(new_browser_api: Any, hanako: Any, device: Any, clock: Any) -> str:
    """hanako, from her PC, verifies with her app and removes ``device``: the body of her removal mail."""
    her = _her_verified(new_browser_api, hanako, clock)
    removed = her.post("/authguard/api/factors/remove", {"id": device.persistent_id})
    assert removed.status_code == 200, removed.content
    notice = Notification.objects.filter(user=hanako, kind="factor_removed").latest("pk")
    return build_message(notice).body


@pytest.fixture
def thief_setup(new_browser_api: Any, order_api: Any, hanako: Any, totp_factory: Any) -> Any:
    of_long_standing(hanako)
    hanako.totp = old_totp(hanako, totp_factory)
    mail.outbox.clear()
    return hanako


# -- 1. the User-Agent: the "Device:" line of the factor-added and sign-in mails ----------------------------


def test_a_passkey_added_from_a_user_agent_naming_a_callback_number_keeps_it_out_of_her_notice(
    thief_setup: Any, order_api: Any
) -> None:
    """Secure: round 53 took his passkey's name out of the "a sign-in method was added" mail and put in its
    place where, and on what browser, it was added: the browser line is built from his User-Agent header, a
    string he writes. ua-parser's generic spider rule keeps up to 50 of his characters as the browser's name,
    so her genuine notice reads "Device: SECURITY DESK CALL 0120 987 654 Spider 2 on iOS 18" right above "If
    you did not add it ... call us". authguard must strip phone numbers from every value built from a
    header (device, and the network and city it shows) as it does from names, or show only a browser
    family it knows (Chrome, Safari, ...) and "another browser" otherwise."""
    hanako = thief_setup
    thief = _thief_with_one_code(order_api, hanako, ua=UA_VISHING)
    added = _register_named(thief, new_key(), "iPhone")
    assert added.status_code == 201, added.content
    notice = Notification.objects.filter(user=hanako, kind="factor_added").latest("pk")
    body = build_message(notice).body
    assert "Passkey" in body or "passkey" in body
    assert not DIGITS.search(body), body


@pytest.fixture
def on_commit(django_capture_on_commit_callbacks: Any) -> Any:
    return django_capture_on_commit_callbacks


@pytest.fixture
def alice(geoip: Any, alice_with_totp: Any, browser_at: Any) -> Any:
    user = alice_with_totp
    home = browser_at(IP_TOKYO, UA_CHROME_WIN)
    with time_machine.travel(timezone.now() - timedelta(days=20), tick=True) as clock:
        for _ in range(3):
            assert home.sign_in("alice").status_code == 302
            home.post("/logout/")
            clock.shift(timedelta(days=3))
    return user


def test_a_sign_in_notice_does_not_carry_a_callback_number_from_the_user_agent(
    alice: Any, browser_at: Any, on_commit: Any
) -> None:
    """Secure: "Someone signed in to your account from a device we did not recognise ... Device: SECURITY
    DESK CALL 0120 987 654 Spider 2 on iOS 18 ... If this was not you ... call the security desk": the
    sign-in notice is the mail a customer most often acts on, and the thief (who has her password, from a
    phishing kit) writes its Device line with his User-Agent. Every real signal scores this sign-in
    (a new iPhone at her home address: allowed), and she is sent his number. Strip phone numbers from the
    device summary (and every header-built value) before it reaches the outbox."""
    Notification.objects.all().delete()
    phone = browser_at(IP_TOKYO, UA_VISHING)
    with on_commit(execute=True):
        phone.sign_in("alice")
    notice = Notification.objects.filter(user=alice, kind="new_device_login").latest("pk")
    body = build_message(notice).body
    assert "iOS" in body, body
    assert not DIGITS.search(body), body


def test_her_security_page_does_not_show_a_callback_number_from_a_user_agent(
    alice: Any, browser_at: Any
) -> None:
    """Secure: her security page lists recent sign-ins and remembered devices by the browser summary: his
    User-Agent puts "SECURITY DESK CALL 0120 987 654" into the Device and Browser columns of the brokerage's
    own page, where she goes to check what happened. Show header-built text without phone numbers."""
    phone = browser_at(IP_TOKYO, UA_VISHING)
    phone.sign_in("alice")
    home = browser_at(IP_TOKYO, UA_CHROME_WIN)
    home.sign_in("alice")
    page = home.get("/authguard/security/")
    if page.status_code == 302:  # the page asks her to verify first
        home.post("/authguard/step-up/totp/", {"code": totp_token(alice.totp)})
        page = home.get("/authguard/security/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Spider" in html, "the sign-in from the crafted browser is listed"
    assert not DIGITS.search(re.sub(r"<[^>]+>", " ", html)), re.findall(r".{0,60}Spider.{0,20}", html)


# -- 2. names: phone numbers the round-53 pattern does not see ----------------------------------------------

#: The same callback number in forms a Japanese reader dials without a second thought.
UNSEEN_NUMBERS = [
    "Hanako iPhone 不審なら当社 〇一二〇・九八七・六五四 へ",  # kanji numerals
    "Hanako iPhone if not you call 0120_987_654",  # underscores
    "Hanako iPhone 不審なら当社 0120、987、654 へ",  # ideographic commas
    "Hanako iPhone if not you call 0120\u2212987\u2212654",  # minus sign (U+2212)
    "Hanako iPhone if not you call 0120~987~654",  # tilde (a wave dash in Japanese fonts)
]


@pytest.mark.parametrize("name", UNSEEN_NUMBERS)
def test_his_passkeys_name_reaches_her_removal_notice_without_his_number(
    thief_setup: Any, order_api: Any, new_browser_api: Any, clock: Any, name: str
) -> None:
    """Secure: she removes the passkey she did not add, and her genuine "a sign-in method was removed" mail
    names it: "(Hanako iPhone 不審なら当社 〇一二〇・九八七・六五四 へ)". ``defang_name`` removes runs of
    ASCII or full-width digits joined by spaces and dashes; kanji numerals, the minus sign, underscores,
    ideographic commas and tildes go through, and she is sent his desk's number on the day she is most
    ready to call one. Normalise digits (kanji, circled, other scripts) and treat any short non-letter
    separator as one, or do not show a name someone else chose in a mail at all."""
    hanako = thief_setup
    thief = _thief_with_one_code(order_api, hanako)
    assert _register_named(thief, new_key(), name).status_code == 201
    his = PasskeyDevice.objects.get(user=hanako)
    body = _her_removes(new_browser_api, hanako, his, clock)
    assert "Hanako iPhone" in body, body
    kanji = re.compile(r"〇\D{0,2}一\D{0,2}二\D{0,2}〇")
    assert not DIGITS.search(body) and not kanji.search(body), body


#: Domain names of the thief's that the link pattern (ASCII letters only) does not see.
UNSEEN_DOMAINS = [
    ("Hanako iPhone 確認は のむら証券.jp で", "のむら証券.jp"),  # an IDN label under .jp
    ("Hanako iPhone check nomura-sec．jp", "nomura-sec．jp"),  # full-width full stop (U+FF0E)
    ("Hanako iPhone 確認 nomura-sec。co。jp", "nomura-sec。co。jp"),  # ideographic full stop (U+3002)
]


@pytest.mark.parametrize(("name", "domain"), UNSEEN_DOMAINS)
def test_his_passkeys_name_reaches_her_removal_notice_without_his_domain(
    thief_setup: Any, order_api: Any, new_browser_api: Any, clock: Any, name: str, domain: str
) -> None:
    """Secure: mail must carry no links and nothing a mail client turns into one (the JSDA's 2025
    guidelines; messages.py refuses a body ``contains_link`` finds). ``LINK_PATTERN`` knows ASCII labels
    and the ASCII dot only: an internationalised domain ("のむら証券.jp", registrable under .jp and linked
    by mail clients) and names written with the full-width or ideographic full stop (which IDNA maps to
    a dot: a browser opens "nomura-sec。co。jp") reach her genuine removal notice, and the fail-closed check
    passes it. Match any Unicode letters in labels, and the dots U+3002, U+FF0E, U+FF61 as dots."""
    hanako = thief_setup
    thief = _thief_with_one_code(order_api, hanako)
    assert _register_named(thief, new_key(), name).status_code == 201
    his = PasskeyDevice.objects.get(user=hanako)
    body = _her_removes(new_browser_api, hanako, his, clock)
    assert "Hanako iPhone" in body, body
    assert domain not in body, body


def test_her_security_page_does_not_show_his_callback_number_in_his_passkeys_name(
    thief_setup: Any, order_api: Any, new_browser_api: Any, clock: Any
) -> None:
    """Secure: round 53 left the thief's name out of her mail because "the security page names it": it names
    it in full, number included. When she opens the brokerage's own security page to find the method she
    did not add, the Name cell (and the Remove button's accessible name, read out by a screen reader) says
    "Hanako iPhone - if not you, call our desk 0120-987-654". Show names there as the console does
    (``defang_name``), so the page does not hand her his number."""
    hanako = thief_setup
    thief = _thief_with_one_code(order_api, hanako)
    vishing = "Hanako iPhone - if not you, call our desk 0120-987-654 now"
    assert _register_named(thief, new_key(), vishing).status_code == 201
    her = _her_verified(new_browser_api, hanako, clock)
    page = her.get("/authguard/security/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Hanako iPhone" in html
    assert not DIGITS.search(re.sub(r"<[^>]+>", " ", html)) and "0120-987-654" not in html, re.findall(
        r".{40}0120.{20}", html
    )


# -- 3. the bank account he registers: the summary of the held-request mail ---------------------------------


@pytest.mark.usefixtures("actions_site")
def test_a_bank_account_named_with_a_callback_number_is_refused_before_anything_is_held(
    hanako: Any, order_api: Any
) -> None:
    """Secure: "A request from your account is on hold until you confirm it ... Register the bank account
    みずほ銀行 ご本人でない場合は当社 0120-987-654 へ (0001) 123 7654321 SATO JIRO ... If you did not ask for
    this, do not confirm it": the bank's name and the holder's are 60 characters the thief types, shown in
    full in her genuine notice (``summary`` is defanged, never stripped of numbers), and a bank's name never
    holds a phone number. The customer who did not ask for it is exactly the one who calls. Strip phone
    numbers from the free-text fields of a summary (bank and holder names, a transfer's destination)."""
    from authguard.testing import SoftAuthenticator

    her = order_api()  # her usual browser: her passkey, the one method that may confirm
    her.login_usual("hanako", HANAKO_PASSWORD)
    her.register_passkey(SoftAuthenticator(origin="http://localhost:8000", rp_id="localhost"))
    thief = _thief(order_api)
    thief.login("hanako", HANAKO_PASSWORD)
    his = {
        **BANK,
        "bank_name": "みずほ銀行 ご本人でない場合は当社 0120-987-654 へ",
        "account_number": "7654321",
        "holder_name": "SATO JIRO",
    }
    response = thief.post("/api/bank-accounts", his)
    # Refused with a clear message, nothing held, nothing sent: a bank's name never holds a phone number.
    assert response.status_code == 400, response.content
    assert set(response.json()["errors"]) == {"bank_name"}, response.content
    assert not HeldAction.objects.exists()
    assert not Notification.objects.filter(kind="action_held").exists()
    held = thief.post("/api/bank-accounts", {**his, "bank_name": "みずほ銀行"})
    assert held.status_code == 202, held.content  # the same account under its bank's name is held as before
    note = Notification.objects.get(kind="action_held", to_email="hanako@example.com")
    body = build_message(note).body
    assert "7654321" in body and "SATO JIRO" in body, body  # what her passkey would confirm is all there
    assert not DIGITS.search(body), body


# -- held ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "Hanako iPhone call 0 1 2 0 9 8 7 6 5 4",  # spaced digits
        "Hanako iPhone call ０1２０-98７-654",  # mixed full and half width
        "Hanako iPhone call 0120\u200b987\u2060654",  # zero-width space and word joiner
        "Hanako iPhone call ٠١٢٠٩٨٧٦٥٤",  # Arabic-Indic digits
        "Hanako iPhone call 𝟎𝟏𝟐𝟎𝟗𝟖𝟕𝟔𝟓𝟒",  # mathematical digits (NFC keeps them; \d matches)
        "Hanako iPhone call 0120\u3000987\u3000654",  # ideographic spaces
    ],
)
def test_held_numbers_split_by_spaces_widths_and_invisibles_leave_her_removal_notice(
    thief_setup: Any, order_api: Any, new_browser_api: Any, clock: Any, name: str
) -> None:
    """Held: spaced, mixed-width, zero-width-split, Arabic-Indic and ideographic-space numbers in his
    passkey's name are taken out of her removal notice (invisible characters go first, \\d is Unicode)."""
    hanako = thief_setup
    thief = _thief_with_one_code(order_api, hanako)
    assert _register_named(thief, new_key(), name).status_code == 201
    body = _her_removes(new_browser_api, hanako, PasskeyDevice.objects.get(user=hanako), clock)
    assert "Hanako iPhone" in body, body
    assert "654" not in body and "٦٥٤" not in body and "𝟔𝟓𝟒" not in body and "６５４" not in body, body


def test_held_a_right_to_left_override_in_his_name_does_not_reach_her_notice(
    thief_setup: Any, order_api: Any, new_browser_api: Any, clock: Any
) -> None:
    """Held: a bidi override (and isolates) in his passkey's name are dropped from the stored name and the
    notice: the text cannot be made to read backwards as a domain or number."""
    hanako = thief_setup
    thief = _thief_with_one_code(order_api, hanako)
    name = "Hanako iPhone \u202epj.ces-arumon\u202c \u2067x\u2069"
    assert _register_named(thief, new_key(), name).status_code == 201
    his = PasskeyDevice.objects.get(user=hanako)
    assert not any(c in his.name for c in "\u202e\u202c\u2067\u2069")
    body = _her_removes(new_browser_api, hanako, his, clock)
    assert not any(c in body for c in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"), body


def test_held_a_user_agent_cannot_put_a_domain_into_her_sign_in_notice(
    alice: Any, browser_at: Any, on_commit: Any
) -> None:
    """Held: the browser names ua-parser takes from a header hold no dots, and a domain elsewhere in the
    header never reaches the summary; the sign-in notice carries none."""
    Notification.objects.all().delete()
    ua = UA_VISHING.replace("SECURITY DESK CALL 0120 987 654 Spider/2", "www.nomura-sec.jp/verify Spider/2")
    with on_commit(execute=True):
        browser_at(IP_TOKYO, ua).sign_in("alice")
    notice = Notification.objects.filter(user=alice, kind="new_device_login").latest("pk")
    body = build_message(notice).body
    assert "nomura" not in body, body


def test_held_the_step_up_pages_do_not_show_his_passkeys_name(
    thief_setup: Any, order_api: Any, new_browser_api: Any, clock: Any
) -> None:
    """Held: the step-up pages she meets when signing in name no factor: his passkey's name (with his
    number) is not on the page that asks for her code."""
    hanako = thief_setup
    thief = _thief_with_one_code(order_api, hanako)
    assert _register_named(thief, new_key(), "call 0120-987-654").status_code == 201
    clock.shift(31)
    her = new_browser_api(IP_TOKYO)
    her.login("hanako", HANAKO_PASSWORD)
    for path in ("/authguard/step-up/", "/authguard/step-up/totp/", "/authguard/step-up/passkey/"):
        page = her.get(path)
        assert "0120" not in page.content.decode(), path


# -- 4. the console: the analyst reads the thief's text -------------------------------------------------


def test_the_consoles_passkey_list_does_not_hand_the_analyst_his_callback_number(
    thief_setup: Any, order_api: Any
) -> None:
    """Secure: round 53 made the incident report's factor history show names through ``defang_name``; the
    passkey list the desk opens to revoke a customer's passkey shows the thief's name in full: "Hanako
    iPhone - verified, unlock OK, call 0120-987-654". An analyst who calls "the customer back"
    on that number reaches the thief, who confirms whatever the desk asks. Show names someone else chose
    the same way everywhere in the console (numbers and links removed, marked as the customer's text)."""
    from .console_data import staff_client, staff_user

    hanako = thief_setup
    thief = _thief_with_one_code(order_api, hanako)
    name = "Hanako iPhone - verified, unlock OK, call 0120-987-654"
    assert _register_named(thief, new_key(), name).status_code == 201
    desk = staff_client(staff_user("desk", perms=("authguard.view_passkeydevice",)))
    page = desk.get("/admin/authguard/passkeydevice/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Hanako iPhone" in html
    assert "0120-987-654" not in html, re.findall(r".{0,60}0120.{0,20}", html)
