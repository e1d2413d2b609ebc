"""Phone numbers and web addresses in text someone else chose, found in any script or width.

A thief names what he adds (a passkey, a bank account) and writes his own User-Agent; the customer reads
those names in the brokerage's genuine mail and pages, and the desk in the console. A number or an address
there reads as the brokerage's own ("if not you, call our desk 0120-987-654"), and the customer who did not
make the change is exactly the one who calls (red team, rounds fifty-three to fifty-five).
:func:`strip_lures` removes both before the text is shown; :func:`has_lure` tells a form to refuse a name.

Each character is first read as NFKC reads it (full-width letters, a one-dot leader, circled digits), one
character for one, so a match's span is the span in the original text.
"""

from __future__ import annotations

import re
import unicodedata

from authguard.validators import visible_text

#: Kanji numerals, which spell a number as well as digits do (〇一二〇・九八七・六五四, 九百八十七).
KANJI_DIGITS = frozenset("〇零一壱二弐三参四五六七八九十百千")
#: Characters that read as letters (prolonged sound marks, wave dashes, the particle の) but join a number's
#: parts, as a Japanese input method types "-" in kana mode (0120ー987ー654, 0120の987の654).
JOINERS = frozenset("ーｰ〜～~の")
#: Letters that stand for a digit in a number written to get past digit filters ("O12O-987-654", Ｏ and ｌ
#: read as O and l first): O for 0 (Latin, Greek, Cyrillic) and I, l for 1. Read as digits only beside a digit
#: (:func:`_digits_shape`), so "OLED TV 2023" and "O'Brien iPad" stay words.
DIGIT_LETTERS = {
    **dict.fromkeys("OoΟοОо", "0"),  # Latin, Greek and Cyrillic capital and small O
    **dict.fromkeys("IlΙІӀ", "1"),  # Latin I and l, Greek Iota, Cyrillic І and palochka
}
#: Characters read at most: the patterns' time grows with the square of a hostile text's length, and no name
#: or summary shown is longer (a passkey's name is 64, a context value 120 to 480).
MAX_TEXT = 1000
#: Full stops a browser or a reader takes for a domain's dot.
DOTS = frozenset("。．｡")
#: Seven digits or more, each apart from the next by at most six characters that are neither letters nor
#: digits (spaces, dashes and minus signs of any width, dots, brackets, underscores, 、・): a phone number.
_PHONE = re.compile(r"0(?: {0,6}0){6,}")
#: A date (and time) a customer writes into a name to tell her devices apart: no phone number.
_DATE = re.compile(
    r"(?:19|20)\d\d\s*[-./年]\s*\d{1,2}\s*[-./月]\s*\d{1,2}日?(?:\s+\d{1,2}\s*[:時]\s*\d{2}分?)?"
)
#: Anything a mail client could turn into a link: schemes, ``www.``, e-mail addresses and domain names under
#: any top level domain (the mail's last check, and what a shown value loses).
LINK_PATTERN = re.compile(
    r"(?ix)("
    r"[a-z][a-z0-9+.\-]*:(//|[^\s]*@)"  # http://, ftp://, mailto:x@...
    r"|www\."
    r"|[\w.+\-]+@[\w\-]+(\.[\w\-]+)+"  # e-mail addresses
    r"|(?<![a-z0-9\-])[a-z0-9](?:[a-z0-9\-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9\-]*[a-z0-9])?)*"
    r"\.(?:[a-z]{2,24}|xn--[a-z0-9\-]+)(?![a-z0-9\-])"  # bare domain names (example.com, evil.co.jp)
    r")"
)
#: A domain name whose labels are letters of any script, digits and hyphens (のむら証券.jp), ending where the
#: top level domain's ASCII letters end (a particle may follow: のむら証券.jpへ).
_DOMAIN = re.compile(
    r"(?i)(?<![\w\-])[^\W_][\w\-]*(?:\.[^\W_][\w\-]*)*\.(?P<tld>[a-z]{2,24}|xn--[a-z0-9\-]+)(?![a-z0-9\-])"
)
#: Top level domains a name is refused for (:func:`has_lure`): every two-letter country code and the generic
#: ones phishing uses most. Not every generic one: a holder's name "ABC CO.LTD" or "YAMADA.TARO" is no
#: address.
_REFUSED_TLDS = frozenset(
    [
        "com",
        "net",
        "org",
        "info",
        "biz",
        "xyz",
        "top",
        "online",
        "site",
        "shop",
        "store",
        "app",
        "dev",
        "io",
        "me",
        "cc",
        "tv",
        "club",
        "live",
        "vip",
        "work",
        "tokyo",
        "icu",
        "cloud",
        "link",
        "click",
        "page",
        "support",
        "help",
        "services",
        "security",
        "bank",
        "finance",
        "money",
        "asia",
    ]
)


def _read(text: str) -> str:
    """``text`` as NFKC reads each character, one for one (a character NFKC makes longer stays as it is)."""
    out = []
    for char in text:
        folded = unicodedata.normalize("NFKC", char)
        out.append(folded if len(folded) == 1 else char)
    return "".join(out)


def _digits_shape(text: str) -> str:
    """Every digit (of any script, kanji numerals too) as "0", every letter as "a", anything else as " ";
    a run of digit-shaped letters (:data:`DIGIT_LETTERS`) beside a digit as "0" too
    (:func:`_letters_as_digits`)."""
    shape = []
    for char in text:
        if char in KANJI_DIGITS or unicodedata.digit(char, None) is not None:
            shape.append("0")
        elif char.isalpha() and char not in JOINERS:
            shape.append("a")
        else:
            shape.append(" ")
    return _letters_as_digits(text, shape)


#: At most this many characters that are neither letters nor digits between a digit-shaped letter and the
#: digit that makes it one (the gap :data:`_PHONE` allows between two digits).
_GAP = 6


def _beside_digit(shape: list[str], start: int, end: int) -> bool:
    """Whether ``shape[start:end]`` has a digit before or after it, next to it or across at most :data:`_GAP`
    characters that are neither letters nor digits."""
    before = start - 1
    while before >= 0 and shape[before] == " " and start - before <= _GAP:
        before -= 1
    after = end
    while after < len(shape) and shape[after] == " " and after - end < _GAP:
        after += 1
    return (before >= 0 and shape[before] == "0") or (after < len(shape) and shape[after] == "0")


def _letters_as_digits(text: str, shape: list[str]) -> str:
    """``shape`` with each run of letters that are all digit-shaped and stand beside a digit (or beside such a
    run already read as digits: "O l 2 O") read as digits.

    SECURITY: a vishing number written "O12O-987-654" (letter O for the zeros, in ASCII or full width) read as
    the digits "12" and "987-654", six digits under the seven of a phone number, and reached her genuine
    notices whole from a bank account's holder name, a passkey's name and a User-Agent (red team, round
    seventy-five). A word with any other letter ("OLED", "O'Brien", "Pro") or a lone O away from digits stays
    a word.
    """
    runs = [
        match.span()
        for match in re.finditer("a+", "".join(shape))
        if all(char in DIGIT_LETTERS for char in text[match.start() : match.end()])
    ]
    # A run read as digits makes its neighbour one ("O l 2"): from each digit rightwards, then leftwards.
    for ordered in (runs, runs[::-1]):
        for start, end in ordered:
            if shape[start] == "a" and _beside_digit(shape, start, end):
                shape[start:end] = ["0"] * (end - start)
    return "".join(shape)


def _as_digits(read: str, shape: str) -> str:
    """``read`` with the letters :func:`_digits_shape` read as digits written as those digits."""
    return "".join(
        DIGIT_LETTERS[char] if mark == "0" and char in DIGIT_LETTERS else char
        for char, mark in zip(read, shape, strict=True)
    )


def _phones(read: str) -> list[tuple[int, int]]:
    found = []
    shape = _digits_shape(read)
    digits = _as_digits(read, shape)
    for match in _PHONE.finditer(shape):
        start, end = match.span()
        if not _DATE.fullmatch(digits[start:end].strip()):
            found.append((start, end))
    return found


def _domains(read: str) -> list[re.Match[str]]:
    dotted = "".join("." if char in DOTS else char for char in read)
    return list(_DOMAIN.finditer(dotted))


def _spans(text: str) -> list[tuple[int, int]]:
    read = _read(text[:MAX_TEXT])
    found = _phones(read) + [m.span() for m in _domains(read)]
    found += [m.span() for m in LINK_PATTERN.finditer(read)]
    return sorted(found)


def has_lure(text: object) -> bool:
    """Whether ``text`` holds a phone number, a link, an e-mail address or a domain name under a top level
    domain of :data:`_REFUSED_TLDS` or a country's, in any script or width."""
    read = _read(str(text)[:MAX_TEXT])
    if _phones(read) or any(
        m.group(0)[:4].lower() == "www." or "@" in m.group(0) or ":" in m.group(0)
        for m in LINK_PATTERN.finditer(read)
    ):
        return True
    return any(
        len(tld := m.group("tld").lower()) == 2 or tld in _REFUSED_TLDS or tld.startswith("xn--")
        for m in _domains(read)
    )


def strip_lures(text: object) -> str:
    """``text`` with each phone number, link, e-mail address and domain name replaced by "[…]"; cut to
    :data:`MAX_TEXT` characters ("" for None)."""
    text = "" if text is None else str(text)[:MAX_TEXT]
    out, at = [], 0
    for start, end in _spans(text):
        start = max(start, at)  # overlapping: already cut
        if start < end:
            out.append(text[at:start] + "[…]")
            at = end
    return "".join(out) + text[at:]


def shown_name(value: object) -> str:
    """A name someone gave a factor (perhaps a thief who added it), as every page, list and API shows it:
    one visible line without phone numbers, links or domain names ("" for none)."""
    return strip_lures(visible_text(value)) if value else ""
