"""Stored sign-in facts shown in the reader's language (``authguard/templatetags/authguard_display.py``).

authguard stores a browser summary ("Chrome 131 on Windows 10") and a place ("Tokyo, JP", or "unknown") in
English; they stay so in the database. The security page, the sign-in e-mails and the incident report show
them with authguard's own words translated: "Chrome 131（Windows 10）" and "不明" in Japanese.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone, translation

from authguard.models import KnownDevice, LoginEvent, Notification, SessionRecord
from authguard.notifications.messages import render
from authguard.templatetags.authguard_display import device_label, place_label

from .conftest import IP_TOKYO, UA_CHROME_WIN

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]

JA = {"HTTP_ACCEPT_LANGUAGE": "ja"}


@pytest.fixture(autouse=True)
def _restore_language() -> Any:
    """Requests here activate Japanese (LocaleMiddleware does not deactivate it): leave no trace."""
    before = translation.get_language()
    yield
    translation.activate(before) if before else translation.deactivate_all()


# -- the filters ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stored", "english", "japanese"),
    [
        ("Chrome 131 on Windows 10", "Chrome 131 on Windows 10", "Chrome 131（Windows 10）"),
        ("Mobile Safari 17 on iOS 17", "Mobile Safari 17 on iOS 17", "Mobile Safari 17（iOS 17）"),
        ("Other on Linux", "unknown browser on Linux", "不明なブラウザ（Linux）"),
        ("Other", "unknown browser", "不明なブラウザ"),
        ("Firefox 133", "Firefox 133", "Firefox 133"),  # no operating system known: nothing to join
        ("", "", ""),
        (None, "", ""),
    ],
)
def test_device_label_translates_only_authguards_own_words(
    stored: str | None, english: str, japanese: str
) -> None:
    with translation.override("en"):
        assert device_label(stored) == english
    with translation.override("ja"):
        assert device_label(stored) == japanese


@pytest.mark.parametrize(
    ("stored", "english", "japanese"),
    [("unknown", "unknown", "不明"), ("Tokyo, JP", "Tokyo, JP", "Tokyo, JP"), ("", "", ""), (None, "", "")],
)
def test_place_label_translates_the_unknown_fallback(stored: str | None, english: str, japanese: str) -> None:
    with translation.override("en"):
        assert place_label(stored) == english
    with translation.override("ja"):
        assert place_label(stored) == japanese


def test_stored_text_is_escaped_as_usual() -> None:
    from django.template import Context, Template

    template = Template("{% load authguard_display %}{{ label|device_label }}")
    html = template.render(Context({"label": "<b>x</b> on Windows"}))
    assert "<b>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html


# -- the security page ------------------------------------------------------------------------------------


@pytest.fixture
def home(user_factory: Any, browser_at: Any) -> tuple[Any, Client]:
    """alice signed in from her browser in Tokyo (remembered as "Chrome 131 on Windows 10"), plus a browser
    she once used from a place GeoIP knew nothing about."""
    alice = user_factory("alice")
    client = browser_at(IP_TOKYO, UA_CHROME_WIN)
    assert client.sign_in("alice").url == "/"
    now = timezone.now()
    KnownDevice.objects.create(
        user=alice, cookie_hash="f" * 64, label="Other", first_seen_at=now, last_seen_at=now,
        last_place="unknown",
    )  # fmt: skip
    return alice, client


def devices_shown(html: str) -> set[tuple[str, str]]:
    """(browser, place) of each row of the remembered-devices table."""
    section = html.split('id="devices-heading"', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr>(.*?)</tr>", section, flags=re.S)[1:]
    cells = [[c.strip() for c in re.findall(r"<td>(.*?)</td>", row, flags=re.S)] for row in rows]
    return {(row[0], row[2]) for row in cells}


def test_the_security_page_shows_devices_and_places_in_japanese(home: tuple[Any, Client]) -> None:
    alice, client = home
    html = client.get("/authguard/security/", **JA).content.decode()
    assert devices_shown(html) == {("Chrome 131（Windows 10）", "Tokyo, JP"), ("不明なブラウザ", "不明")}
    recent = html.split('id="logins-heading"', 1)[1]
    assert "<td>Chrome 131（Windows 10）</td>" in recent
    assert " on Windows" not in html and "<td>unknown</td>" not in html and "<td>Other</td>" not in html
    # What is stored is unchanged: English, as the risk engine and the staff console wrote and read it.
    assert set(KnownDevice.objects.filter(user=alice).values_list("label", "last_place")) == {
        ("Chrome 131 on Windows 10", "Tokyo, JP"),
        ("Other", "unknown"),
    }
    assert LoginEvent.objects.get(user=alice).device_summary == "Chrome 131 on Windows 10"
    assert SessionRecord.objects.get(user=alice).device_summary == "Chrome 131 on Windows 10"


def test_the_security_page_in_english_shows_the_stored_text(home: tuple[Any, Client]) -> None:
    _alice, client = home
    html = client.get("/authguard/security/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert devices_shown(html) == {("Chrome 131 on Windows 10", "Tokyo, JP"), ("unknown browser", "unknown")}


# -- e-mails and the console -------------------------------------------------------------------------------


def test_the_sign_in_mail_names_the_device_in_the_customers_language(user_factory: Any) -> None:
    alice = user_factory("alice")
    context = {
        "time": "2026-12-01T10:00:00+09:00", "city": "Osaka", "country": "JP", "network": "KDDI",
        "device": "Chrome 131 on Windows 10", "ip": "203.0.113.70",
    }  # fmt: skip
    for language, line in (
        ("ja", "端末: Chrome 131（Windows 10）"),
        ("en", "Device: Chrome 131 on Windows 10"),
    ):
        note = Notification(user=alice, kind="new_device_login", language=language, context=context)
        _subject, body = render(note)
        assert line in body.splitlines(), body


def test_the_incident_report_shows_devices_in_the_staff_language(user_factory: Any) -> None:
    from .console_data import staff_client, staff_user

    alice = user_factory("alice")
    LoginEvent.objects.create(
        created_at=datetime(2026, 11, 30, 1, 0, tzinfo=UTC), user=alice, username="alice", password_ok=True,
        ip="203.0.113.10", country="JP", city="Tokyo", device_summary="Chrome 131 on Windows 10", score=10,
        action="allow", outcome="signed_in", findings=[],
    )  # fmt: skip
    client = staff_client(staff_user("desk", perms=("authguard.view_loginevent", "auth.view_user")))
    params = {"user": "alice", "start": "2026-11-01", "end": "2026-12-31"}
    page = client.get("/admin/authguard/loginevent/incident/", params, **JA)
    assert page.status_code == 200
    html = page.content.decode()
    assert "<td>Chrome 131（Windows 10）</td>" in html and "Chrome 131 on Windows 10" not in html
