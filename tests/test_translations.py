"""The Japanese translation (issue 6, acceptance item 6): every user-facing string has one.

Two catalogs: ``authguard/locale/ja`` (the app's own, found through INSTALLED_APPS) and
``demo_site/locale/ja`` (the demo portal: ``demo_site/brokerage`` and ``demo_site/templates``, found through
``LOCALE_PATHS``). These tests check that

* every entry is translated, none is fuzzy, placeholders and markup survive, e-mail texts stay link-free;
* the catalogs are complete: ``makemessages`` run over today's sources finds no string they lack
  (needs GNU gettext; under ``CI=true`` it is mandatory, elsewhere the test skips without it);
* the compiled ``.mo`` files (committed, so a machine without gettext still translates) match the ``.po``;
* real requests in Japanese render text from both catalogs, and the demo's language switch works.

Refreshing the catalogs after adding strings: docs/i18n.md.
"""

from __future__ import annotations

import gettext
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.utils import translation

from tests.conftest import IP_TOKYO, UA_CHROME_WIN

ROOT = Path(__file__).resolve().parent.parent
#: Catalog name -> (the folder makemessages runs in, the catalog it writes).
CATALOGS: dict[str, tuple[Path, Path]] = {
    "authguard": (ROOT / "authguard", ROOT / "authguard" / "locale" / "ja" / "LC_MESSAGES" / "django.po"),
    "demo_site": (ROOT / "demo_site", ROOT / "demo_site" / "locale" / "ja" / "LC_MESSAGES" / "django.po"),
}
#: The options of the refresh commands in docs/i18n.md (the extraction below must find what they find).
MAKEMESSAGES_OPTIONS = ["-l", "ja", "--ignore", "migrations", "--add-location", "file", "--no-obsolete"]
GETTEXT_TOOLS = ("xgettext", "msgmerge", "msguniq", "msgattrib")


# -- a small .po reader (no third-party dependency) ----------------------------------------------------


@dataclass
class Entry:
    """One message of a .po file."""

    msgid: str = ""
    msgctxt: str | None = None
    msgid_plural: str | None = None
    msgstr: str = ""
    msgstr_plural: dict[int, str] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)
    files: set[str] = field(default_factory=set)
    line: int = 0

    @property
    def key(self) -> str:
        """The key gettext looks the message up by (``context EOT msgid``)."""
        return f"{self.msgctxt}\x04{self.msgid}" if self.msgctxt is not None else self.msgid

    @property
    def translations(self) -> list[str]:
        return (
            [self.msgstr_plural[i] for i in sorted(self.msgstr_plural)]
            if self.msgid_plural
            else [self.msgstr]
        )


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "a": "\a", "b": "\b", "f": "\f", "v": "\v"}
_KEYWORD = re.compile(r'^(msgctxt|msgid_plural|msgid|msgstr(?:\[(\d+)\])?)\s+"(.*)"\s*$')


def _unquote(text: str) -> str:
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), "\\" + m.group(1)), text)


def read_po(path: Path) -> tuple[dict[str, str], list[Entry]]:
    """The header fields (``Plural-Forms``...) and the live (non-obsolete) entries of ``path``."""
    entries: list[Entry] = []
    header: dict[str, str] = {}
    current = Entry()
    field_name: tuple[str, int | None] | None = None
    seen_keyword = False

    def finish() -> None:
        nonlocal current, field_name, seen_keyword
        if seen_keyword:
            if current.msgid == "" and current.msgctxt is None:
                for line in current.msgstr.splitlines():
                    name, _, value = line.partition(":")
                    header[name.strip()] = value.strip()
                if "fuzzy" in current.flags:
                    header["#fuzzy"] = "yes"
            else:
                entries.append(current)
        current, field_name, seen_keyword = Entry(), None, False

    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line:
            finish()
        elif line.startswith("#~"):
            continue  # obsolete: gettext ignores it
        elif line.startswith("#,"):
            if seen_keyword:
                finish()
            current.flags.update(flag.strip() for flag in line[2:].split(","))
        elif line.startswith("#:"):
            if seen_keyword:
                finish()
            current.files.update(
                ref.rsplit(":", 1)[0] if ref[-1:].isdigit() else ref for ref in line[2:].split()
            )
        elif line.startswith("#"):
            if seen_keyword:
                finish()
        elif match := _KEYWORD.match(line):
            keyword, index, text = match.groups()
            if (
                keyword in ("msgctxt", "msgid")
                and seen_keyword
                and field_name
                and field_name[0].startswith("msgstr")
            ):
                finish()
            if not seen_keyword:
                current.line = number
            seen_keyword = True
            field_name = (keyword.split("[")[0], int(index) if index is not None else None)
            _append(current, field_name, _unquote(text), init=True)
        elif line.startswith('"') and line.endswith('"') and field_name:
            _append(current, field_name, _unquote(line[1:-1]), init=False)
        else:
            raise ValueError(f"{path}:{number}: cannot read {raw!r}")
    finish()
    return header, entries


def _append(entry: Entry, name: tuple[str, int | None], text: str, *, init: bool) -> None:
    keyword, index = name
    if keyword == "msgstr" and index is not None:
        entry.msgstr_plural[index] = ("" if init else entry.msgstr_plural.get(index, "")) + text
    elif keyword == "msgid":
        entry.msgid = ("" if init else entry.msgid) + text
    elif keyword == "msgctxt":
        entry.msgctxt = ("" if init else entry.msgctxt or "") + text
    elif keyword == "msgid_plural":
        entry.msgid_plural = ("" if init else entry.msgid_plural or "") + text
    else:
        entry.msgstr = ("" if init else entry.msgstr) + text


# -- what a translation must keep ----------------------------------------------------------------------

#: printf-style conversions as Python's % operator reads them (%(name)s, %d, %%).
PRINTF = re.compile(r"%(?:\([^)]*\))?[#0 +\-]*(?:\*|\d+)?(?:\.(?:\*|\d+))?[diouxXeEfFgGcrsa%]")
NAMED = re.compile(r"%\(([^)]*)\)")
BRACE = re.compile(r"\{[A-Za-z_]\w*(?:![rsa])?(?::[^{}]*)?\}")
TAG = re.compile(r"</?[A-Za-z][^<>]*>")
#: Anything a mail client could turn into a link (the e-mails are link-free by rule).
LINK = re.compile(
    r"(?i)(://|www\.|mailto:|https?:|[\w.+-]+@[\w-]+\.[\w.-]+|\b[a-z0-9-]+\.(?:com|jp|net|org|co)\b)"
)


def _conversions(text: str) -> Counter[str]:
    return Counter(PRINTF.findall(text))


def placeholder_problems(entry: Entry) -> list[str]:
    """What the translation lost or invented: named/printf placeholders, {fields} and HTML tags."""
    problems = []
    source = entry.msgid_plural if entry.msgid_plural else entry.msgid
    for translated in entry.translations:
        if entry.msgid_plural:
            # One Japanese form stands for the plural, which names at least what the singular names.
            named_ok = set(NAMED.findall(translated)) == set(
                NAMED.findall(source) + NAMED.findall(entry.msgid)
            )
        else:
            named_ok = Counter(NAMED.findall(translated)) == Counter(NAMED.findall(source))
        if not named_ok:
            problems.append(
                f"named placeholders {sorted(NAMED.findall(source))} -> {sorted(NAMED.findall(translated))}"
            )
        if "python-format" in entry.flags and _conversions(translated) != _conversions(source):
            problems.append(
                f"conversions {sorted(_conversions(source))} -> {sorted(_conversions(translated))}"
            )
        if Counter(BRACE.findall(translated)) != Counter(BRACE.findall(source)):
            problems.append(f"fields {BRACE.findall(source)} -> {BRACE.findall(translated)}")
        if Counter(TAG.findall(translated)) != Counter(TAG.findall(source)):
            problems.append(f"markup {TAG.findall(source)} -> {TAG.findall(translated)}")
    return problems


@pytest.fixture(autouse=True)
def _restore_language() -> Any:
    """Requests here activate Japanese (LocaleMiddleware does not deactivate it): leave no trace."""
    before = translation.get_language()
    yield
    translation.activate(before) if before else translation.deactivate_all()


@pytest.fixture(scope="module", params=sorted(CATALOGS))
def catalog(request: pytest.FixtureRequest) -> tuple[str, dict[str, str], list[Entry]]:
    name = request.param
    header, entries = read_po(CATALOGS[name][1])
    return name, header, entries


def _where(entry: Entry) -> str:
    return f"line {entry.line} ({', '.join(sorted(entry.files)) or '?'}): {entry.msgid!r}"


def test_catalog_header_is_japanese_with_one_plural_form(
    catalog: tuple[str, dict[str, str], list[Entry]],
) -> None:
    name, header, entries = catalog
    assert entries, f"{name}: the catalog is empty"
    assert header.get("Language") == "ja", header
    assert "charset=UTF-8" in header.get("Content-Type", ""), header
    assert header.get("Plural-Forms", "").replace(" ", "") == "nplurals=1;plural=0;", header
    assert "#fuzzy" not in header, (
        f"{name}: the header is fuzzy (msgfmt would drop the charset and plural rule)"
    )


def test_every_entry_is_translated_and_none_is_fuzzy(
    catalog: tuple[str, dict[str, str], list[Entry]],
) -> None:
    name, _header, entries = catalog
    untranslated = [_where(e) for e in entries if not all(t.strip() for t in e.translations)]
    fuzzy = [_where(e) for e in entries if "fuzzy" in e.flags]
    wrong_forms = [_where(e) for e in entries if e.msgid_plural and sorted(e.msgstr_plural) != [0]]
    assert not untranslated, f"{name}: untranslated entries (see docs/i18n.md):\n" + "\n".join(untranslated)
    assert not fuzzy, f"{name}: fuzzy entries (check the guess, then drop the flag):\n" + "\n".join(fuzzy)
    assert not wrong_forms, f"{name}: Japanese has one plural form (msgstr[0] only):\n" + "\n".join(
        wrong_forms
    )


def test_translations_are_japanese(catalog: tuple[str, dict[str, str], list[Entry]]) -> None:
    """A copied English text is not a translation (product names and codes may stay as they are)."""
    name, _header, entries = catalog
    kept = {"ASN", "NASDAQ", "NYSE"}
    english = [
        _where(e)
        for e in entries
        if e.msgid not in kept
        and not any(re.search(r"[\u3040-\u30ff\u4e00-\u9fff\uff00-\uffef]", t) for t in e.translations)
    ]
    assert not english, f"{name}: translations without any Japanese text:\n" + "\n".join(english)


def test_placeholders_and_markup_are_kept(catalog: tuple[str, dict[str, str], list[Entry]]) -> None:
    name, _header, entries = catalog
    broken = [f"{_where(e)}: {'; '.join(p)}" for e in entries if (p := placeholder_problems(e))]
    assert not broken, f"{name}:\n" + "\n".join(broken)


def test_placeholder_check_catches_a_lost_placeholder() -> None:
    """The check above is able to fail: a dropped %(name)s, a reordered %%, a lost <code> are caught."""
    lost = Entry(msgid="Remove %(name)s", msgstr="削除", flags={"python-format"})
    percent = Entry(msgid="%(share)s %% of it", msgstr="%(share)s 割合", flags={"python-format"})
    markup = Entry(msgid="Run <code>replay</code>.", msgstr="replay を実行します。")
    renamed = Entry(msgid="Hi %(name)s", msgstr="%(nom)sさん", flags={"python-format"})
    kept = Entry(msgid="Remove %(name)s", msgstr="%(name)sを削除", flags={"python-format"})
    assert placeholder_problems(lost) and placeholder_problems(percent)
    assert placeholder_problems(markup) and placeholder_problems(renamed)
    assert placeholder_problems(kept) == []


def test_email_texts_stay_link_free(catalog: tuple[str, dict[str, str], list[Entry]]) -> None:
    """Notification subjects and e-mail bodies carry no link in Japanese either (issue 6: link-free mail)."""
    name, _header, entries = catalog
    mail = [e for e in entries if any("email/" in f or f.endswith("notifications.py") for f in e.files)]
    if name == "authguard":
        assert mail, "no e-mail text found in authguard's catalog: are the location comments gone?"
    linked = [_where(e) for e in mail for t in e.translations if LINK.search(t)]
    assert not linked, f"{name}: link-like text in e-mail translations:\n" + "\n".join(linked)


def test_shared_msgids_translate_the_same() -> None:
    """demo_site/locale (LOCALE_PATHS) shadows authguard's catalog: a msgid in both must read the same, or
    authguard's pages would show the demo's wording (e.g. "Name" of a passkey as an instrument's name)."""
    _h1, app_entries = read_po(CATALOGS["authguard"][1])
    _h2, demo_entries = read_po(CATALOGS["demo_site"][1])
    app = {e.key: e.translations for e in app_entries}
    differing = [
        f"{e.msgid!r}: authguard {app[e.key]} / demo {e.translations}"
        for e in demo_entries
        if e.key in app and app[e.key] != e.translations
    ]
    assert not differing, "\n".join(differing)


def test_po_reader_reads_plurals_context_flags_and_escapes(tmp_path: Path) -> None:
    po = tmp_path / "x.po"
    po.write_text(
        'msgid ""\nmsgstr ""\n"Language: ja\\n"\n"Plural-Forms: nplurals=1; plural=0;\\n"\n\n'
        '#: a.py:3 b.html\n#, fuzzy, python-format\nmsgctxt "verb"\nmsgid "Say \\"%(x)s\\""\n'
        'msgstr ""\n"「%(x)s」"\n"と言う"\n\n'
        'msgid "one"\nmsgid_plural "%(n)s many"\nmsgstr[0] "%(n)s個"\n\n#~ msgid "old"\n#~ msgstr "古い"\n',
        encoding="utf-8",
    )
    header, entries = read_po(po)
    assert header == {"Language": "ja", "Plural-Forms": "nplurals=1; plural=0;"}
    first, second = entries
    assert (first.msgctxt, first.msgid, first.msgstr) == ("verb", 'Say "%(x)s"', "「%(x)s」と言う")
    assert first.flags == {"fuzzy", "python-format"} and first.files == {"a.py", "b.html"}
    assert first.key == 'verb\x04Say "%(x)s"'
    assert (second.msgid_plural, second.msgstr_plural) == ("%(n)s many", {0: "%(n)s個"})
    assert len(entries) == 2  # the obsolete entry is not live


# -- completeness: today's sources against the catalogs ------------------------------------------------


def _require_gettext() -> None:
    missing = [tool for tool in GETTEXT_TOOLS if shutil.which(tool) is None]
    if not missing:
        return
    reason = f"GNU gettext is not installed ({', '.join(missing)} missing): apt-get install gettext"
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)


def extract(source: Path, workdir: Path) -> list[Entry]:
    """The entries ``makemessages`` extracts from ``source`` today, into a throw-away copy (the real
    catalog is not touched)."""
    copy = workdir / source.name
    shutil.copytree(source, copy, ignore=shutil.ignore_patterns("locale", "__pycache__", "*.pyc", "*.mo"))
    (copy / "locale").mkdir()
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    result = subprocess.run(
        [sys.executable, "-m", "django", "makemessages", *MAKEMESSAGES_OPTIONS],
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    _header, entries = read_po(copy / "locale" / "ja" / "LC_MESSAGES" / "django.po")
    return entries


@pytest.mark.parametrize("name", sorted(CATALOGS))
def test_catalog_covers_every_string_in_the_source(name: str, tmp_path: Path) -> None:
    _require_gettext()
    source, po = CATALOGS[name]
    extracted = extract(source, tmp_path)
    assert extracted, f"makemessages found no string in {source}"
    _header, entries = read_po(po)
    known = {e.key: e for e in entries}
    missing = [
        f"{', '.join(sorted(e.files))}: {e.msgid!r}"
        for e in extracted
        if e.key not in known or bool(e.msgid_plural) != bool(known[e.key].msgid_plural)
    ]
    assert not missing, (
        f"{len(missing)} string(s) of {source.name} are not in {po.relative_to(ROOT)}; refresh and translate "
        "them (docs/i18n.md):\n" + "\n".join(missing)
    )


def test_completeness_check_notices_a_new_string(tmp_path: Path) -> None:
    """The extraction above is able to fail: a string added to a copy of the source is found."""
    _require_gettext()
    source = tmp_path / "src" / "authguard"
    shutil.copytree(CATALOGS["authguard"][0], source, ignore=shutil.ignore_patterns("locale", "__pycache__"))
    (source / "i18n_probe.py").write_text(
        'from django.utils.translation import gettext as _\n\nPROBE = _("A string nobody translated yet")\n',
        encoding="utf-8",
    )
    extracted = {e.msgid for e in extract(source, tmp_path / "work")}
    _header, entries = read_po(CATALOGS["authguard"][1])
    assert "A string nobody translated yet" in extracted - {e.msgid for e in entries}


#: The names makemessages (xgettext) extracts strings from; gettext under any other name is never extracted.
EXTRACTED_NAMES = frozenset(
    {"_", "gettext", "gettext_lazy", "gettext_noop", "ngettext", "ngettext_lazy", "pgettext", "pgettext_lazy"}
    | {"npgettext", "npgettext_lazy"}
)


def strings_behind_aliases(root: Path) -> dict[str, list[str]]:
    """msgid -> where, for strings passed to a translation function imported under a name makemessages does
    not extract (``from django.utils.translation import gettext as _t``; ``_t("...")``)."""
    import ast

    found: dict[str, list[str]] = {}
    for path in sorted(root.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        aliases = {
            alias.asname: alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module == "django.utils.translation"
            for alias in node.names
            if alias.asname and alias.asname not in EXTRACTED_NAMES
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in aliases:
                position = 1 if aliases[node.func.id].startswith(("pgettext", "npgettext")) else 0
                args = node.args[position : position + 1]
                if args and isinstance(args[0], ast.Constant) and isinstance(args[0].value, str):
                    where = f"{path.relative_to(root.parent)}:{node.lineno} ({node.func.id})"
                    found.setdefault(args[0].value, []).append(where)
                else:
                    found.setdefault(f"<not a literal: {ast.unparse(node)[:60]}>", []).append(str(path))
    return found


@pytest.mark.parametrize("name", sorted(CATALOGS))
def test_strings_behind_unextracted_aliases_are_translated(name: str) -> None:
    """gettext imported under another name (``_t``) hides its strings from makemessages: each must still
    have a translation, or it stays English. The fix is to call the function by a name xgettext knows
    (``gettext(...)``); until then the catalog keeps such strings as entries of their own (docs/i18n.md)."""
    source, po = CATALOGS[name]
    _header, entries = read_po(po)
    translated = {e.key for e in entries if all(t.strip() for t in e.translations) and "fuzzy" not in e.flags}
    missing = [
        f"{where[0]}: {msgid!r}"
        for msgid, where in strings_behind_aliases(source).items()
        if msgid not in translated
    ]
    assert not missing, (
        "strings called through a name makemessages does not extract have no translation; call the function "
        "as gettext(...) / gettext_lazy(...), refresh and translate (docs/i18n.md):\n" + "\n".join(missing)
    )


def test_alias_check_finds_strings_behind_an_alias(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "ok.py").write_text(
        "from django.utils.translation import gettext_lazy as _\nA = _('seen by makemessages')\n",
        encoding="utf-8",
    )
    (package / "bad.py").write_text(
        "from django.utils.translation import gettext as _t\n\n\nB = _t('hidden from makemessages')\n",
        encoding="utf-8",
    )
    assert strings_behind_aliases(package) == {"hidden from makemessages": ["pkg/bad.py:4 (_t)"]}


# -- the compiled catalogs ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CATALOGS))
def test_mo_file_matches_the_po_file(name: str) -> None:
    """The committed .mo holds exactly the .po's translations (else: django-admin compilemessages)."""
    po = CATALOGS[name][1]
    mo = po.with_suffix(".mo")
    assert mo.is_file(), (
        f"{mo.relative_to(ROOT)} is missing: run compilemessages (docs/i18n.md) and commit it"
    )
    _header, entries = read_po(po)
    expected: dict[Any, str] = {}
    for entry in entries:
        if entry.msgid_plural:
            expected.update({(entry.key, i): text for i, text in entry.msgstr_plural.items()})
        else:
            expected[entry.key] = entry.msgstr
    with mo.open("rb") as handle:
        compiled = gettext.GNUTranslations(handle)
    # _catalog is where GNUTranslations keeps the messages; "" is the header.
    actual = {k: v for k, v in compiled._catalog.items() if k != ""}  # type: ignore[attr-defined]
    stale = sorted(str(k) for k in expected.keys() ^ actual.keys())
    changed = sorted(str(k) for k in expected.keys() & actual.keys() if expected[k] != actual[k])
    assert not stale and not changed, f"{mo.relative_to(ROOT)} is out of date: {stale[:10]} {changed[:10]}"
    assert compiled.info().get("plural-forms", "").replace(" ", "") == "nplurals=1;plural=0;"


# -- real requests in Japanese -----------------------------------------------------------------------


def test_catalogs_are_where_django_looks() -> None:
    assert CATALOGS["demo_site"][1].parent.parent.parent in {Path(p).resolve() for p in settings.LOCALE_PATHS}
    assert (
        "authguard" in settings.INSTALLED_APPS or "authguard.apps.AuthguardConfig" in settings.INSTALLED_APPS
    )
    assert "ja" in dict(settings.LANGUAGES)
    with translation.override("ja"):
        assert translation.gettext("Demo Securities") == "デモ証券"  # demo_site catalog
        assert translation.gettext("Sign-in methods") == "ログイン方法"  # authguard catalog
        assert (
            translation.ngettext(
                "You have %(counter)s unused recovery code.", "You have %(counter)s unused recovery codes.", 3
            )
            % {"counter": 3}
            == "未使用のリカバリーコードが3個あります。"
        )


@pytest.mark.django_db
def test_login_page_in_japanese_from_accept_language(client: Any) -> None:
    page = client.get("/login/", HTTP_ACCEPT_LANGUAGE="ja,en;q=0.5")
    html = page.content.decode()
    assert page.status_code == 200
    assert '<html lang="ja">' in html
    assert "デモ証券" in html and "パスキーでログイン" in html  # demo_site catalog
    assert "Sign in with a passkey" not in html
    english = client.get("/login/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Sign in with a passkey" in english and "デモ証券" not in english


@pytest.mark.django_db
def test_json_errors_in_japanese_from_both_catalogs(client: Any) -> None:
    authguard_answer = client.get("/authguard/api/login/passkey", HTTP_ACCEPT_LANGUAGE="ja")
    assert authguard_answer.status_code == 405
    assert authguard_answer.json()["message"] == "POST を使用してください。"  # authguard catalog
    demo_answer = client.get("/api/no-such-endpoint", HTTP_ACCEPT_LANGUAGE="ja")
    assert demo_answer.status_code == 404
    assert demo_answer.json()["message"] == "該当する API エンドポイントはありません。"  # demo_site catalog
    assert client.get("/api/no-such-endpoint", HTTP_ACCEPT_LANGUAGE="en").json()["message"] == (
        "There is no such API endpoint."
    )


@pytest.mark.django_db
def test_language_switch_of_the_demo(client: Any) -> None:
    """The header's language form (set_language) switches the whole portal and keeps the choice."""
    switched = client.post("/i18n/setlang/", {"language": "ja", "next": "/login/"})
    assert switched.status_code == 302 and switched["Location"] == "/login/"
    assert client.cookies[settings.LANGUAGE_COOKIE_NAME].value == "ja"
    html = client.get("/login/", HTTP_ACCEPT_LANGUAGE="en").content.decode()  # the cookie wins
    assert '<html lang="ja">' in html and "ログイン" in html
    client.post("/i18n/setlang/", {"language": "en", "next": "/login/"})
    assert "Sign in with a passkey" in client.get("/login/").content.decode()


@pytest.mark.django_db
def test_signed_in_pages_in_japanese(client: Any, settings: Any, tanaka: Any) -> None:
    """A signed-in customer's portfolio (demo) and security settings (authguard) are in Japanese."""
    from demo_site.brokerage.management.commands.seed_demo import TANAKA

    settings.AUTHGUARD_RISK_SIGNALS = []
    signed_in = client.post(
        "/login/",
        {"username": TANAKA.username, "password": TANAKA.password},
        REMOTE_ADDR=IP_TOKYO,
        HTTP_USER_AGENT=UA_CHROME_WIN,
        HTTP_ACCEPT_LANGUAGE="ja",
    )
    assert signed_in.status_code == 302, signed_in.content[:500]
    headers = {"REMOTE_ADDR": IP_TOKYO, "HTTP_USER_AGENT": UA_CHROME_WIN, "HTTP_ACCEPT_LANGUAGE": "ja"}
    portfolio = client.get("/", **headers).content.decode()
    assert "資産状況" in portfolio and "保有銘柄" in portfolio and "ログアウト" in portfolio
    security = client.get("/authguard/security/", **headers)
    assert security.status_code == 200
    html = security.content.decode()
    assert "セキュリティ設定" in html and "ログイン方法" in html and "記憶済みの端末" in html
    assert "Sign-in methods" not in html


@pytest.mark.django_db
def test_every_notification_renders_in_japanese_without_links(user_factory: Any) -> None:
    """Each kind of e-mail, to a customer and to staff, in Japanese: no English sentence of its English
    rendering is left, and nothing link-like (the notifications module would refuse to send it)."""
    from authguard.models import Notification
    from authguard.notifications.messages import KINDS, contains_link, render

    user = user_factory("hanako")
    context = {
        "time": "2026-12-01T10:00:00+09:00",
        "expires": "2026-12-01T10:15:00+09:00",
        "city": "Osaka",
        "country": "JP",
        "network": "KDDI CORPORATION",
        "device": "Chrome on Windows",
        "ip": "203.0.113.70",
        "factor": "passkey",
        "failures": 5,
        "remaining": 9,
        "accounts": 12,
        "attempts": 8,
        "account": "hanako",
        "account_id": user.pk,
        "how": "admin",
        "failed_kind": "new_device_login",
        "side": "sell",
        "quantity": 100,
        "symbol": "7203",
    }
    for kind, spec in KINDS.items():
        for staff in (False, True) if spec.staff_subject else (False,):
            texts = {}
            for language in ("en", "ja"):
                note = Notification(user=user, kind=kind, language=language, staff=staff, context=context)
                texts[language] = render(note)
            subject, body = texts["ja"]
            assert not contains_link(subject) and not contains_link(body)
            assert re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", subject), (kind, staff, subject)
            english_sentences = [
                line.strip()
                for line in texts["en"][1].splitlines()
                if len(re.findall(r"[A-Za-z]{3,}", line))
                >= 4  # a sentence, not a value like "Chrome on Windows"
            ]
            left = [line for line in english_sentences if line in body]
            assert not left, f"{kind} (staff={staff}): untranslated in Japanese: {left}"
