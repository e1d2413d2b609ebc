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

from authguard.validators import BLANK_LETTERS, visible_text

#: Kanji numerals, which spell a number as well as digits do (〇一二〇・九八七・六五四, 九百八十七),
#: the formal (daiji) ones of cheques and contracts too (零壱弐参 肆伍陸 漆捌玖 拾佰仟: round seventy-six).
KANJI_DIGITS = frozenset("〇零一壱壹弌二弐貳弍三参參弎四肆五伍六陸七漆柒八捌九玖十拾百佰千仟阡")
#: Characters that read as letters (prolonged sound marks, wave dashes, the particle の) but join a number's
#: parts, as a Japanese input method types "-" in kana mode (0120ー987ー654, 0120の987の654).
JOINERS = frozenset("ーｰ〜～~の")
#: Letters drawn as a blank (the Hangul fillers; :func:`_read` makes U+3164 and U+FFA0 U+1160) or as a
#: line, a dash or a slash (ㅡ and ㅣ, read as U+1173 and U+1175, katakana ノ, 丿, 丨, the Arabic tatweel, ǀ,
#: Bopomofo ㄧ): "0120ㅤ987ㅤ654" and "0120ㅡ987ㅡ654" are 0120 987 654 on screen (round seventy-six).
SEPARATOR_LETTERS = JOINERS | frozenset(BLANK_LETTERS) | frozenset("ㅡᅳㅣᅵノ丿丨ـǀㄧ")
#: Letters that stand for a digit in a number written to get past digit filters ("O12O-987-654", Ｏ and ｌ
#: read as O and l first): O for 0 (Latin, Greek, Cyrillic) and I, l for 1. Read as digits only when they
#: touch a digit (:func:`_letters_as_digits`), so "OLED TV 2023", "O'Brien iPad" and "Xperia 1 III" stay
#: words.
DIGIT_LETTERS = {
    **dict.fromkeys("OoΟοОо", "0"),  # Latin, Greek and Cyrillic capital and small O
    **dict.fromkeys("IlΙІӀӏ", "1"),  # Latin I and l, Greek Iota, Cyrillic І and palochka
}
#: Letters less like a digit (Z for 2, З for 3, S and Ѕ for 5, б for 6, B, Β and В for 8): read as digits
#: only between two digits ("9B7", "6S4"), as model names put them at a number's end ("iPhone 5S", "A301SO").
BETWEEN_DIGIT_LETTERS = {
    **dict.fromkeys("ZΖ", "2"),
    "З": "3",
    **dict.fromkeys("SЅ", "5"),
    "б": "6",
    **dict.fromkeys("BΒВ", "8"),
}
#: Characters read at most: the patterns' time grows with the square of a hostile text's length, and no name
#: or summary shown is longer (a passkey's name is 64, a context value 120 to 480).
MAX_TEXT = 1000
#: Full stops a browser or a reader takes for a domain's dot.
DOTS = frozenset("。．｡")
#: Seven digits or more, each apart from the next by characters that are neither letters nor digits (spaces,
#: dashes and minus signs of any width, dots, brackets, underscores, 、・, as many as he likes) or by words of
#: digit-shaped letters alone ("0120 OOO 654", the "III" of "Xperia 1 III": neither digits nor the end of a
#: number), and the words of digit-shaped letters just before ("O l 2 O 9 8 7 ..."): a phone number.
_PHONE = re.compile(r"(?:o[ o]*)?(?P<number>0(?:[ o]*0){6,})")


def _kana(word: str) -> str:
    """A pattern of the katakana ``word``, a voiced letter also as its letter and a separate sound mark (as
    half-width katakana are read: "ﾀﾞ" is タ and U+3099), any two characters that are neither letters nor
    digits allowed between two letters."""
    letters = []
    for char in word:
        base = unicodedata.normalize("NFD", char)
        letters.append(f"(?:{char}|{base[0]}[\u3099-\u309c])" if len(base) == 2 else char)
    return r"[\W_]{0,2}".join(letters)


#: The printed names of the numbers with no area code: NTT's "free dial" logo stands for 0120 (and 0800),
#: the other carriers' free call and free access likewise, "navi dial" for 0570. "フリーダイヤル 987-654" is a
#: phone number (round seventy-six): each reads as the four digits of its prefix.
_TOLL_FREE = re.compile(
    "|".join(
        [_kana(word) for word in ("フリーダイヤル", "フリーダイアル", "フリーコール", "フリーアクセス")]
        + [_kana(word) for word in ("ナビダイヤル", "ナビダイアル")]
        + [r"(?i:\b(?:free|navi)[\W_]{0,2}dial\b)"]
    )
)
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
#: A dot written so that no pattern of dots finds it, as phishing mails and chat lures do: in brackets
#: ("nomura-sec[.]jp", "nomura-sec(.)com", "(dot)"), after a space ("secure-login .com") or as the katakana
#: ドット ("nomura-sec ドットコム", the top level domain in katakana too).
_HIDDEN_DOT = r"(?:\s*[(\[{<]\s*(?:\.|dot)\s*[)\]}>]\s*|\s+\.(?=[a-z])|\s*" + _kana("ドット") + r"\s*)"
#: Top level domains in katakana, as a domain is read out (ドットコム, ドットジェイピー).
_KANA_TLDS = ("コム", "ネット", "ジェイピー", "ジェーピー", "オルグ", "インフォ")
_ASCII_LABEL = r"[a-z0-9](?:[a-z0-9\-]*[a-z0-9])?"
#: A domain name of ASCII labels with a hidden dot (:data:`_HIDDEN_DOT`): "ジャパンドットコム", a company's
#: name in katakana, is none.
_HIDDEN_DOT_DOMAIN = re.compile(
    rf"(?i)(?<![a-z0-9\-.]){_ASCII_LABEL}(?:(?:\.|{_HIDDEN_DOT}){_ASCII_LABEL})*{_HIDDEN_DOT}"
    rf"(?:(?P<tld>[a-z]{{2,24}}|xn--[a-z0-9\-]+)(?![a-z0-9\-])|(?P<kana>{'|'.join(map(_kana, _KANA_TLDS))}))"
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
    """Every digit (of any script, kanji numerals too) as "0", every letter as "a", anything else as " " (the
    letters of :data:`SEPARATOR_LETTERS` too); the printed name of 0120 or 0570 (:data:`_TOLL_FREE`) as four
    digits; digit-shaped letters as :func:`_letters_as_digits` reads them."""
    shape = []
    for char in text:
        if char in KANJI_DIGITS or unicodedata.digit(char, None) is not None:
            shape.append("0")
        elif char.isalpha() and char not in SEPARATOR_LETTERS:
            shape.append("a")
        else:
            shape.append(" ")
    for match in _TOLL_FREE.finditer(text):
        start, end = match.span()
        shape[start:end] = list("0000".ljust(end - start))
    return _letters_as_digits(text, shape)


def _letters_as_digits(text: str, shape: list[str]) -> str:
    """``shape`` with each word of digit-shaped letters read: as digits ("0") where it touches a digit, as
    neither digits nor letters ("o": a number goes on across it) where it stands alone.

    SECURITY: a vishing number written "O12O-987-654" (letter O for the zeros, in ASCII or full width) read as
    the digits "12" and "987-654", six digits under the seven of a phone number, and reached her genuine
    notices whole from a bank account's holder name, a passkey's name and a User-Agent (red team, round
    seventy-five). O, o, I and l (:data:`DIGIT_LETTERS`) are digits when they touch a digit ("O12O", "OI2O",
    "2O26-1-1"); Z, S, B and their like (:data:`BETWEEN_DIGIT_LETTERS`) only between two ("9B7"). A word
    with any other letter ("OLED", "O'Brien", "Pro") stays a word.

    The cost of round seventy-five's rule, which read such letters as digits across a space from one: "Xperia
    1 III 2021" (a roman numeral, Sony's commonest phones) read as 1 111 2021 and her own passkey's name was
    refused and shown as "Xperia […]" (red team, round seventy-six). A word of digit-shaped letters alone
    ("III", "O", "IO") counts as no digit now; it does not end a number either, so "0120 OOO 654" still
    reads as one.
    """
    letters = DIGIT_LETTERS.keys() | BETWEEN_DIGIT_LETTERS.keys()
    for match in re.finditer("a+", "".join(shape)):
        start, end = match.span()
        word = text[start:end]
        if not all(char in letters for char in word):
            continue
        touching = (start > 0 and shape[start - 1] == "0") + (end < len(shape) and shape[end] == "0")
        strong = all(char in DIGIT_LETTERS for char in word)
        if touching == 2 or (touching and strong):
            shape[start:end] = ["0"] * (end - start)
        elif strong:
            shape[start:end] = ["o"] * (end - start)
    return "".join(shape)


def _as_digits(read: str, shape: str) -> str:
    """``read`` with the letters :func:`_digits_shape` read as digits written as those digits."""
    return "".join(
        DIGIT_LETTERS.get(char, BETWEEN_DIGIT_LETTERS.get(char, char)) if mark == "0" else char
        for char, mark in zip(read, shape, strict=True)
    )


def _phones(read: str) -> list[tuple[int, int]]:
    found = []
    shape = _digits_shape(read)
    digits = _as_digits(read, shape)
    for match in _PHONE.finditer(shape):
        if not _DATE.fullmatch(digits[match.start("number") : match.end()].strip()):
            found.append(match.span())
    return found


def _refused_tld(tld: str) -> bool:
    return len(tld) == 2 or tld in _REFUSED_TLDS or tld.startswith("xn--")


def _domains(read: str) -> list[tuple[tuple[int, int], bool]]:
    """The span of each domain name in ``read``, and whether a name holding it is refused (its top level
    domain is a country's or one of :data:`_REFUSED_TLDS`; one written with a hidden dot always is)."""
    dotted = "".join("." if char in DOTS else char for char in read)
    found = [(m.span(), _refused_tld(m.group("tld").lower())) for m in _DOMAIN.finditer(dotted)]
    for m in _HIDDEN_DOT_DOMAIN.finditer(dotted):
        if m.group("kana") or _refused_tld(m.group("tld").lower()):
            found.append((m.span(), True))
    return found


def _spans(text: str) -> list[tuple[int, int]]:
    read = _read(text[:MAX_TEXT])
    found = _phones(read) + [span for span, _refused in _domains(read)]
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
    return any(refused for _span, refused in _domains(read))


def strip_lures(text: object) -> str:
    """``text`` with each phone number, link, e-mail address and domain name replaced by "[…]"; cut to
    :data:`MAX_TEXT` characters ("" for None)."""
    text = "" if text is None else str(text)[:MAX_TEXT]
    out, at = [], 0
    for start, end in _spans(text):
        if start < at:  # overlapping one already cut ("nomura-sec[.]co" and "co.jp"): cut on to its end
            at = max(at, end)
        elif start < end:
            out.append(text[at:start] + "[…]")
            at = end
    return "".join(out) + text[at:]


def shown_name(value: object) -> str:
    """A name someone gave a factor (perhaps a thief who added it), as every page, list and API shows it:
    one visible line without phone numbers, links or domain names ("" for none)."""
    return strip_lures(visible_text(value)) if value else ""
