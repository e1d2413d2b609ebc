"""Red team round thirty-nine (a): ``"²".isdigit()`` is True and ``int("²")`` raises, so a number read from a
request checked with ``isdigit()`` alone was a 500 (the console's incident search and its end-of-block form).
Every ``isdigit()`` in the product and the demo is paired with ``isascii()`` (ASCII digits only)."""

from __future__ import annotations

from pathlib import Path

import authguard
import demo_site


def test_every_isdigit_check_is_paired_with_isascii() -> None:
    bare = []
    for package in (authguard, demo_site):
        root = Path(package.__file__).parent
        for path in sorted(root.rglob("*.py")):
            lines = path.read_text(encoding="utf-8").splitlines()
            for number, full in enumerate(lines):
                line = full.split("#", 1)[0]  # a comment may name the pitfall
                if ".isdigit()" not in line or "isascii()" in line:
                    continue
                if number and "isascii()" in lines[number - 1]:  # a condition split over two lines
                    continue
                bare.append(f"{path.relative_to(root.parent)}:{number + 1}")
    assert bare == [], bare
