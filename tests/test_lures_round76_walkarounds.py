"""Red team, round seventy-six (held since): the lure filter after round seventy-five's digit-shaped letters.

Round 75 taught ``lures._digits_shape`` that O/o and I/l beside a digit are digits. The thief who has read it
writes his vishing number with characters that are *letters* (so they break a run of digits) but look like a
space, a dash or a slash, or spells part of the number as a word every Japanese reader knows, so that no run
reaches the seven digits of ``_PHONE``. Real flow: the demo's JSON API (a bank account registration held for
her passkey) and her ``action_held`` mail as the outbox builds it; the cost tests at the filter itself.
"""

from __future__ import annotations

from typing import Any

import pytest

from authguard.models import Notification
from authguard.notifications.lures import has_lure, strip_lures

from .actions_support import BANK, actions_site, customer  # noqa: F401 (fixtures)
from .conftest import HANAKO_PASSWORD, OrderApi

pytestmark = pytest.mark.django_db

#: (what he writes for 0120-987-654, a part of it that must not reach her mail whole)
LURES = [
    # U+3164 HANGUL FILLER: a letter (Lo) that every mail client draws as a blank: "0120 987 654" on screen.
    pytest.param("0120\u3164987\u3164654", "987\u3164654", id="hangul-filler-as-space"),
    # U+FFA0 HALFWIDTH HANGUL FILLER: the same, half width.
    pytest.param("0120\uffa0987\uffa0654", "987\uffa0654", id="halfwidth-hangul-filler"),
    # U+3161 HANGUL LETTER EU: a letter drawn as a long dash: "0120—987—654".
    pytest.param("0120\u3161987\u3161654", "987\u3161654", id="hangul-eu-as-dash"),
    # Katakana NO, drawn as a slash: "0120/987/654".
    pytest.param("0120ノ987ノ654", "987ノ654", id="katakana-no-as-slash"),
    # "Free dial" is the printed name of 0120 (NTT's logo replaces the digits): six digits follow.
    pytest.param("フリーダイヤル 987-654", "987-654", id="free-dial-word"),
    # Formal (daiji) numerals beyond 壱弐参: 玖捌漆 陸伍肆 is 987 654.
    pytest.param("零壱弐零 玖捌漆 陸伍肆", "玖捌漆 陸伍肆", id="daiji-numerals"),
    # Letters shaped like 2, 8 and 5 beside the O of round 75. Held at its cost: Z, B and S count as digits
    # between two digits only ("0120-9B7-6S4" is refused); "ZO" at a group's end is Softbank's Sony models'
    # shape ("Xperia 10 V A302SO 2023"), so this one passes (its five real digits).
    pytest.param(
        "O1ZO-9B7-6S4",
        "9B7-6S4",
        id="z-b-s-lookalikes",
        marks=pytest.mark.xfail(strict=True, reason="accepted: reading ZO/SO as digits refuses A302SO names"),
    ),
    pytest.param("0120-9B7-6S4", "9B7-6S4", id="b-s-between-digits"),
    # Seven separators between two groups: one more than _PHONE's gap of six.
    pytest.param("0120 ------- 987-654", "987-654", id="gap-of-seven"),
]


@pytest.mark.parametrize(("lure", "marker"), LURES)
def test_a_holder_name_carries_his_number_past_the_digit_shape_rule_into_her_hold_notice(
    customer: Any,  # noqa: F811 (hanako, with her passkey)
    hanako: Any,
    lure: str,
    marker: str,
) -> None:
    """**Secure**: a bank account's holder name is refused, or loses its phone number, before her genuine
    ``action_held`` mail shows it ("A request from your account is waiting for your confirmation ... holder
    <his text>", above the footer's "if this was not you, call the security desk") (rounds 53-55, 75).

    **Attack**: the thief, signed in with her password alone (the request is only held), posts
    ``/api/bank-accounts`` with ``holder_name`` "YAMADA TARO ご本人でない場合は当社 <number> へ", the number
    written as 0120<U+3164>987<U+3164>654 (a Hangul filler: a letter every mail client draws as a space),
    0120ㅡ987ㅡ654 (Hangul EU, drawn as a dash), 0120ノ987ノ654, "フリーダイヤル 987-654" (the printed name of
    0120), daiji numerals 零壱弐零 玖捌漆 陸伍肆, O1ZO-9B7-6S4, or groups seven separators apart. It is
    accepted (202) and reaches her mail whole: she calls his "desk".

    **Root cause**: ``authguard/notifications/lures.py:_digits_shape`` reads every letter other than the
    digit-shaped O/o/I/l (``DIGIT_LETTERS``) as "a", which ends a run of digits: invisible or dash-like
    letters (Hangul fillers U+3164/U+FFA0/U+115F/U+1160, ㅡ, ノ) split the number into groups of at most four
    and three digits; ``KANJI_DIGITS`` stops at 壱弐参 (no 肆伍陸漆捌玖拾); "フリーダイヤル"/"ナビダイヤル"
    stand for 0120/0570 but count as no digits; Z/B/S are not digit letters; ``_PHONE`` allows six separators.

    **Fix**: in ``_digits_shape`` read as a separator (" ") every letter that draws as blank or as a line
    (Hangul fillers, ㅡ/ᅳ, ノ, 丨, ـ), or refuse/strip any text whose characters are drawn blank
    (``validators.visible_text`` dropping Hangul fillers as it drops Cf); add the formal numerals
    肆伍陸漆捌玖拾 to ``KANJI_DIGITS``; treat "フリーダイヤル"/"ナビダイヤル"/"0120" words as four digits;
    read Z/B/S (and Cyrillic З, б) as digits under the same "beside a digit" rule; and for holder names (a
    field with no business carrying numbers) refuse three or more digit groups, whatever the count.
    """
    thief = OrderApi()
    thief.login("hanako", HANAKO_PASSWORD)
    response = thief.post(
        "/api/bank-accounts", {**BANK, "holder_name": f"YAMADA TARO ご本人でない場合は当社 {lure} へ"}
    )
    if response.status_code == 400:
        return  # refused: secure
    assert response.status_code == 202, response.content
    note = Notification.objects.filter(kind="action_held", user=hanako).latest("pk")
    from authguard.notifications.messages import build_message

    body = build_message(note).body
    assert "YAMADA TARO" in body, body
    assert marker not in body, f"his number reached her genuine hold notice whole:\n{body}"


# -- held: what round 75 and earlier rounds already catch --------------------------------------------------


@pytest.mark.parametrize(
    "lure",
    [
        "call ○一二○ 九八七 六五四",  # U+25CB WHITE CIRCLE for the zeros: a separator, eight digits remain
        "call 0120\u200b987\u200b654",  # zero-width spaces: visible_text removes them
        "call 0120\u2800987\u2800654",  # braille blank: a symbol, a separator
        "call ⓪①②⓪-⑨⑧⑦-⑥⑤④",
        "call 0120‐987‐654",
        "call ０１２０ｰ９８７ｰ６５４",
        "call 0120 〜 987 〜 654",
    ],
)
def test_held_other_spellings_of_the_number(lure: str) -> None:
    from authguard.validators import visible_text

    assert has_lure(visible_text(lure))
    assert strip_lures(visible_text(lure)) != visible_text(lure)


def test_held_a_schemeless_domain_in_a_name_is_stripped() -> None:
    assert strip_lures("Hanako PC secure-login.example") == "Hanako PC […]"


# -- cost: round 75's rule takes common Japanese phone names for phone numbers -------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "Xperia 1 III 2021",  # Sony's Xperia 1 III (2021): roman numeral III read as 111
        "Xperia 10 III 128GB",
        "Xperia 5 II 2020年",
    ],
)
def test_cost_xperia_names_with_roman_numerals_are_not_phone_numbers(name: str) -> None:
    """**Cost** (round 75's fix): Sony's Xperia 1 III / 5 II / 10 III, among Japan's commonest phones, carry a
    roman numeral; with the year or storage a customer names her passkey by, ``_letters_as_digits`` reads
    "III" beside "1"/"10" as 111 and the name as seven or more digits: ``has_lure`` refuses her own passkey's
    name ("Xperia 1 III 2021") and her security page and mails show "Xperia […]". Before round 75 the name
    was whole (five digits). **Root cause**: ``lures.DIGIT_LETTERS`` reads capital I as 1 beside a digit,
    including a roman numeral after a space. **Fix**: read I/l as 1 only when it touches a digit with no
    separator (``0I2O``), or not when the run of Is stands alone between spaces after a model number
    (roman numerals II/III/IV are model generations), or require at least one O-for-0 in the number."""
    assert not has_lure(name), name
    assert strip_lures(name) == name, strip_lures(name)


# -- held since: the spellings round seventy-six fixed, and what they must not cost --------------------------


@pytest.mark.parametrize(
    "lure",
    [
        "call 0120\u3164987\u3164654",  # Hangul filler
        "call 0120\u115f987\u1160654",  # the conjoining fillers
        "call 0120\uffda987\uffda654",  # half-width Hangul EU
        "call 0120ㅣ987ㅣ654",  # Hangul I, drawn as a bar
        "call 0120丨987丿654",  # CJK line and slash
        "call 0120ﾉ987ﾉ654",  # half-width katakana NO
        "call 0120ـ987ـ654",  # Arabic tatweel
        "call ﾌﾘｰﾀﾞｲﾔﾙ 987-654",  # half-width katakana, the sound mark apart
        "call フリーダイアル 987 654",
        "call ナビダイヤル 987-654",
        "call FREE DIAL 987-654",
        "call フリーコール 987-654",
        "call 零壹貳零 玖捌柒 陸伍肆",
        "call 〇一二〇 九八七 陸伍肆",
        "call 0120 ---------------------------- 987-654",
        "call 0120 OOO 654",  # a word of letter O between two groups: no digits, but no end of the number
        "call 0120-9B7-6S4",  # B and S between two digits
    ],
)
def test_held_round76_spellings_of_the_number_are_lures(lure: str) -> None:
    from authguard.validators import visible_text

    for text in (lure, visible_text(lure)):
        assert has_lure(text), text
        assert strip_lures(text) == "call […]", strip_lures(text)


@pytest.mark.parametrize(
    "lure",
    [
        "secure-login .com",
        "nomura-sec(.)com",
        "nomura-sec[.]jp",
        "nomura-sec［．］ｊｐ",
        "nomura-sec (dot) com",
        "nomura-sec ドットコム",
        "nomura-sec ﾄﾞｯﾄｼﾞｪｲﾋﾟｰ",
        "nomura-sec[.]co.jp",
    ],
)
def test_held_domains_with_a_hidden_dot_are_lures(lure: str) -> None:
    assert has_lure(f"確認は {lure} へ"), lure
    assert strip_lures(f"確認は {lure} へ") == "確認は […] へ", strip_lures(f"確認は {lure} へ")


@pytest.mark.parametrize(
    "name",
    [
        "Xperia 1 II",
        "Xperia 1 IV",
        "Xperia 10 III 2021年",
        "Hanako II 2021-04-01",  # a roman numeral before a date: the date alone is read
        "Galaxy S23 2023",  # S touches 23 on one side only
        "iPhone 5S 2013 32GB",
        "Xperia 10 V A302SO 2023",  # SoftBank's model number of a Sony phone
        "Raspberry Pi 4B 8GB",
        "ﾉｰﾄPC 2024",
        "フリーダイヤル",  # the word alone: four digits
        "ジャパンドットコム",  # a company's name in katakana
        "YAMADA .TARO",
        "J. SMITH",
        "Surface Pro 11 ISO 9001",
    ],
)
def test_cost_round76_names_stay_whole(name: str) -> None:
    assert not has_lure(name), name
    assert strip_lures(name) == name, strip_lures(name)


def test_visible_text_shows_blank_letters_as_spaces_and_drops_the_ignorable() -> None:
    from authguard.validators import visible_text

    assert visible_text("Hanako\u3164iPhone\uffa0 15") == "Hanako iPhone 15"
    assert visible_text("0120\u034f987\ufe0f654\U000e0100") == "0120987654"
