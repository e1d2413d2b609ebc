"""Phone numbers and web addresses in text someone else chose, found in any script or width.

A thief names what he adds (a passkey, a bank account) and writes his own User-Agent; the customer reads
those names in the brokerage's genuine mail and pages. A number or an address there reads as the
brokerage's own ("if not you, call our desk 0120-987-654"), and the customer who did not make the change is
exactly the one who calls (red team, rounds fifty-three and fifty-four). :func:`strip_lures` removes both;
:func:`has_lure` tells a form to refuse such a name.
"""

from __future__ import annotations

import re
import unicodedata

#: Kanji numerals, which spell a number as well as digits do (〇一二〇・九八七・六五四).
KANJI_DIGITS = frozenset("〇零一壱二弐三参四五六七八九")
#: Full stops a browser or a reader takes for a domain's dot.
DOTS = frozenset(".。．｡")
#: Seven digits or more, each apart from the next by at most three characters that are neither letters nor
#: digits (spaces, dashes and minus signs of any width, dots, brackets, underscores, 、・~): a phone number.
_PHONE = re.compile(r"0(?: {0,3}0){6,}")
#: A domain name whose labels are letters of any script, digits and hyphens, under an ASCII or punycode top
#: level domain, once every kind of full stop reads as ".".
_DOMAIN = re.compile(
    r"(?i)(?<![\w\-])[^\W_][\w\-]*(?:\.[^\W_][\w\-]*)*\.(?:[a-z]{2,24}|xn--[a-z0-9\-]+)(?![\w\-])"
)


def _digits_shape(text: str) -> str:
    """``text`` with every digit (of any script, kanji numerals too) as "0", every letter as "a" and
    everything else as " ": the same length, so a match's span is the span in ``text``."""
    shape = []
    for char in text:
        if char in KANJI_DIGITS or unicodedata.digit(char, None) is not None:
            shape.append("0")
        elif char.isalpha():
            shape.append("a")
        else:
            shape.append(" ")
    return "".join(shape)


def _dots_shape(text: str) -> str:
    return "".join("." if char in DOTS else char for char in text)


def _spans(text: str) -> list[tuple[int, int]]:
    found = [m.span() for m in _PHONE.finditer(_digits_shape(text))]
    found += [m.span() for m in _DOMAIN.finditer(_dots_shape(text))]
    return sorted(found)


def has_lure(text: str) -> bool:
    """Whether ``text`` holds a phone number or a domain name in any script or width."""
    return bool(_spans(text))


def strip_lures(text: str) -> str:
    """``text`` with each phone number and domain name (:func:`has_lure`) replaced by "[…]"."""
    out, at = [], 0
    for start, end in _spans(text):
        if start < at:  # overlapping: already cut
            start = at
        if start < end:
            out.append(text[at:start] + "[…]")
            at = end
    return "".join(out) + text[at:]
