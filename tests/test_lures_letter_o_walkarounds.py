"""Red team, round seventy-five (held since): the thief's callback number in her genuine notices, written with
the letter O for the zero of 0120 (free dial), as vishing kits do to get past digit filters.

Real flows: the demo's JSON API (a bank account registration held for her passkey), real TOTP and a
SoftAuthenticator passkey, the mails as the outbox builds them.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from authguard.models import Notification, PasskeyDevice
from authguard.notifications.lures import has_lure, strip_lures
from authguard.notifications.messages import build_message

from .actions_support import BANK, actions_site, customer  # noqa: F401 (fixtures)
from .conftest import HANAKO_PASSWORD, IP_TOKYO, OrderApi
from .factor_scenarios import new_key
from .test_injected_text_walkarounds import (  # noqa: F401 (fixtures)
    _her_removes,
    _register_named,
    _thief_with_one_code,
    alice,
    on_commit,
    thief_setup,
)

pytestmark = pytest.mark.django_db

#: 0120-987-654 as a Japanese reader reads it; the zeros are capital letter O (ASCII, or full width).
LETTER_O_NUMBERS = [
    "ご本人でない場合は当社 O12O-987-654 へ",
    "ご本人でない場合は当社 Ｏ１２Ｏ－９８７－６５４ へ",
    "if not you call our desk O12O 987 654",
]
#: The number in the text, however its zeros are written.
SHOWN = re.compile(r"[O0Ｏ０][1１][2２][O0Ｏ０]\W{0,3}[9９][8８][7７]\W{0,3}[6６][5５][4４]")


@pytest.mark.parametrize("lure", LETTER_O_NUMBERS)
def test_a_holder_name_with_his_number_spelled_with_letter_o_reaches_her_hold_notice(
    customer: Any,  # noqa: F811 (hanako, with her passkey)
    hanako: Any,
    lure: str,
) -> None:
    """Secure: a bank account's holder name is refused when it holds a phone number (round fifty-four):
    "A request from your account is waiting for your confirmation: register ... holder <his text>" is a
    genuine mail of the brokerage, sent to the one customer who did not ask for it, and its footer tells her
    to call "the security desk" when it was not her.

    Attack: the thief, signed in with her password alone (any session: the request is only held), posts
    ``/api/bank-accounts`` with ``holder_name`` "ご本人でない場合は当社 O12O-987-654 へ" (capital O for the
    zeros; full width works too). It is accepted (202), held, and her ``action_held`` mail carries it.

    Root cause: ``authguard/notifications/lures.py:_digits_shape`` counts only digits (and kanji numerals)
    as digits; the letter O (and Ｏ, NFKC to O) is a letter that ends the run, leaving "987-654" (six
    digits, below the seven of ``_PHONE``). ``has_lure`` and ``strip_lures`` both miss it.

    Fix: read O/o (and Ｏ/ｏ, 〇 already) as a digit when it stands next to digits or number separators (a
    digit-shaped letter inside a run of digits: O, o, I, l, |), or refuse any holder/bank name with three or
    more digit groups; free text is not where a customer writes a number.
    """
    thief = OrderApi()
    thief.login("hanako", HANAKO_PASSWORD)
    response = thief.post("/api/bank-accounts", {**BANK, "holder_name": f"YAMADA TARO {lure}"})
    if response.status_code == 400:
        return  # refused: secure
    assert response.status_code == 202, response.content
    note = Notification.objects.filter(kind="action_held", user=hanako).latest("pk")
    body = build_message(note).body
    assert not SHOWN.search(body), body


@pytest.mark.parametrize("lure", LETTER_O_NUMBERS[:1])
def test_his_passkeys_name_with_a_letter_o_number_reaches_her_removal_notice(
    thief_setup: Any,  # noqa: F811
    order_api: Any,
    new_browser_api: Any,
    clock: Any,
    lure: str,
) -> None:
    """Secure: a name someone else chose loses its phone numbers before she reads it (rounds 53 to 55).
    Attack: with one relayed code he adds a passkey named "Hanako iPhone ご本人でない場合は当社 O12O-987-654
    へ"; she finds it on her security page and removes it; her genuine removal notice names it, number
    whole. Root cause and fix: as for the holder name (``lures._digits_shape``)."""
    hanako = thief_setup
    thief = _thief_with_one_code(order_api, hanako)
    assert _register_named(thief, new_key(), f"Hanako iPhone {lure}").status_code == 201
    body = _her_removes(new_browser_api, hanako, PasskeyDevice.objects.get(user=hanako), clock)
    assert "Hanako iPhone" in body, body
    assert not SHOWN.search(body), body


@pytest.mark.parametrize("name", ["O'Brien iPad", "OLED TV 2023", "Office PC 12", "iPhone 15 Pro"])
def test_cost_names_with_the_letter_o_and_a_few_digits_stay_whole(name: str) -> None:
    """Cost: a fix must not take names with the letter O and a model number for phone numbers."""
    assert not has_lure(name)


UA_VISHING_O = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Mobile/15E148 Safari/604.1 SECURITY DESK CALL O12O 987 654 Spider/2"
)


def test_a_sign_in_notice_carries_his_letter_o_number_from_the_user_agent(
    alice: Any,  # noqa: F811
    browser_at: Any,
    on_commit: Any,  # noqa: F811
) -> None:
    """Secure: the Device line of her "new sign-in" mail, written from his User-Agent, loses phone numbers
    (round fifty-four). Attack: his User-Agent ends "SECURITY DESK CALL O12O 987 654 Spider/2"; ua-parser
    keeps it as the browser; the notice reads "Device: SECURITY DESK CALL O12O 987 654 Spider 2 on iOS 18.1"
    above "If this was not you ... call the security desk". Root cause and fix: ``lures._digits_shape`` (the
    letter O ends a run of digits)."""
    Notification.objects.all().delete()
    phone = browser_at(IP_TOKYO, UA_VISHING_O)
    with on_commit(execute=True):
        phone.sign_in("alice")
    notice = Notification.objects.filter(user=alice, kind="new_device_login").latest("pk")
    body = build_message(notice).body
    assert "iOS" in body, body
    assert not SHOWN.search(body), body


# -- held since: the letters read as digits beside digits, in other scripts too; the names that stay whole ---


@pytest.mark.parametrize(
    "lure",
    [
        "call O12O-987-654",  # ASCII O
        "call o12o 987 654",  # small o
        "call 0l20-987-654",  # small L for 1
        "call OI2O-987-654",  # capital I for 1, beside an O
        "call О12О-987-654",  # Cyrillic О
        "call Ο12Ο-987-654",  # Greek Omicron
        "call ｏ１２ｏ－９８７－６５４",  # full width
        "call O l 2 O 9 8 7 6 5 4",  # every character apart
        "call 0120-OOO-654",  # a whole group of letters
    ],
)
def test_held_digit_shaped_letters_beside_digits_read_as_digits(lure: str) -> None:
    assert has_lure(lure)
    assert strip_lures(lure) == "call […]", strip_lures(lure)


@pytest.mark.parametrize(
    "name",
    [
        "OLED TV 2023",
        "O'Brien iPad 12",
        "Xperia 1 II",
        "Office PC 12",
        "Hanako iPhone 2O26-1-1",  # a date with an O is still a date
        "Chrome 131 on Windows 10",
        "Mobile Safari 18.1 on iOS 18.1",
        "YAMADA TARO",
    ],
)
def test_held_words_with_digit_shaped_letters_stay_whole(name: str) -> None:
    assert not has_lure(name)
    assert strip_lures(name) == name
