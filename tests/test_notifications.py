"""The notification outbox: written in the caller's transaction, sent once after commit, link-free."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.core import mail
from django.db import transaction
from django.utils import translation

from authguard.models import LoginEvent, Notification, NotificationStatus, Outcome
from authguard.notifications import outbox as notifications
from authguard.notifications.delivery import deliver
from authguard.notifications.messages import KINDS, LinkInMessage, contains_link, defang, render
from authguard.notifications.outbox import notify, notify_login, notify_staff

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _restore_language() -> Any:
    """Requests here activate Japanese (LocaleMiddleware does not deactivate it): leave no trace."""
    before = translation.get_language()
    yield
    translation.activate(before) if before else translation.deactivate_all()


@pytest.fixture
def on_commit(django_capture_on_commit_callbacks: Any) -> Any:
    """Run (or hold) on-commit callbacks of a test wrapped in a transaction, as a real commit would."""
    return django_capture_on_commit_callbacks


UA_WITH_LINK = "Mozilla/5.0 Visit https://evil.example/verify now (Windows) www.phish.test"


def _event(user: Any, **fields: Any) -> LoginEvent:
    defaults: dict[str, Any] = {
        "created_at": datetime(2026, 11, 30, 10, 0, tzinfo=UTC),
        "user": user,
        "username": user.get_username(),
        "password_ok": True,
        "ip": "203.0.113.10",
        "country": "JP",
        "city": "Tokyo",
        "asn": 4713,
        "as_org": "NTT Communications (OCN)",
        "device_summary": "Chrome 131 on Windows",
        "score": 10,
        "action": "allow",
        "outcome": Outcome.SIGNED_IN,
        "findings": [],
    }
    defaults.update(fields)
    return LoginEvent.objects.create(**defaults)


def test_notify_sends_once_after_commit(user_factory: Any, on_commit: Any) -> None:
    alice = user_factory("alice")
    with on_commit(execute=True), transaction.atomic():
        context = {"factor": "passkey", "name": "YubiKey", "ip": "203.0.113.10", "device": "Chrome on Mac"}
        row = notify(alice, "factor_added", context=context, dedupe_key="d1")
        assert row is not None
        assert mail.outbox == []  # nothing leaves before the event's transaction commits
    row.refresh_from_db()
    assert row.status == NotificationStatus.SENT and row.sent_at is not None and row.attempts == 1
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["alice@example.jp"]
    assert "passkey" in message.body and "203.0.113.10" in message.body and "Chrome on Mac" in message.body
    assert message.extra_headers["Message-ID"].startswith("<")


def test_rolled_back_event_notifies_nobody(user_factory: Any, on_commit: Any) -> None:
    alice = user_factory("alice")
    with on_commit(execute=True), pytest.raises(RuntimeError), transaction.atomic():
        notify(alice, "factor_removed", context={"factor": "totp"})
        raise RuntimeError("the factor change failed")
    assert Notification.objects.count() == 0
    assert mail.outbox == []


def test_same_dedupe_key_never_notifies_twice(user_factory: Any, on_commit: Any) -> None:
    alice = user_factory("alice")
    with on_commit(execute=True):
        first = notify(alice, "new_device_login", context={"city": "Tokyo"}, dedupe_key="event:7")
        second = notify(alice, "new_device_login", context={"city": "Tokyo"}, dedupe_key="event:7")
        other_kind = notify(alice, "new_country_login", context={"city": "Tokyo"}, dedupe_key="event:7")
    assert first is not None and second is None and other_kind is not None
    assert Notification.objects.filter(user=alice).count() == 2
    assert len(mail.outbox) == 2


def test_delivering_twice_sends_once(user_factory: Any, on_commit: Any) -> None:
    alice = user_factory("alice")
    with on_commit(execute=False):
        row = notify(alice, "recovery_code_used", context={"remaining": 9})
    assert row is not None
    assert deliver(row.pk) == "sent"
    assert deliver(row.pk) == "not_due"
    assert len(mail.outbox) == 1


def test_secret_looking_context_is_refused(user_factory: Any) -> None:
    alice = user_factory("alice")
    for key in ("code", "recovery_codes", "otp", "password", "token", "session_key"):
        with pytest.raises(ValueError, match="secret"):
            notify(alice, "recovery_code_used", context={key: "123456"})
    assert Notification.objects.count() == 0


def test_unknown_kind_is_refused(user_factory: Any) -> None:
    with pytest.raises(ValueError, match="unknown notification kind"):
        notify(user_factory("alice"), "you_won_a_prize")


def test_user_without_email_is_recorded_as_skipped(user_factory: Any, on_commit: Any) -> None:
    bob = user_factory("bob", email="")
    with on_commit(execute=True):
        row = notify(bob, "factor_added", context={"factor": "passkey"})
    assert row is not None and row.status == NotificationStatus.SKIPPED
    assert mail.outbox == []


@pytest.mark.parametrize(
    "text",
    [
        "https://evil.example/login",
        "http://203.0.113.5/x",
        "go to www.phish",
        "mail security@evil.example",
        "visit evil-broker.co.jp today",
        "xn--80ak6aa92e.com",
        "mailto:x@y.example",
    ],
)
def test_contains_link_finds_links(text: str) -> None:
    assert contains_link(text)
    assert not contains_link(defang(text))


@pytest.mark.parametrize(
    "text",
    ["Chrome 131.0.0.0 on Windows 10", "NTT Communications (OCN)", "203.0.113.10", "2001:db8::1", "東京"],
)
def test_contains_link_leaves_ordinary_details(text: str) -> None:
    assert not contains_link(text)
    assert defang(text) == text


def _every_kind_rendered(user: Any, language: str) -> list[tuple[str, str]]:
    context = {
        "time": datetime(2026, 11, 30, 10, 0, tzinfo=UTC),
        "city": "Tokyo",
        "country": "JP",
        "network": "evil.example hosting",
        "device": UA_WITH_LINK,
        "ip": "198.51.100.10",
        "factor": "passkey",
        "name": "see https://evil.example",
        "remaining": 3,
        "side": "buy",
        "quantity": 100,
        "symbol": "7203",
        "expires": "2026-11-30 10:15",
        "failures": 10,
        "account": "alice",
        "account_id": user.pk,
        "how": "staff: root",
        "summary": "12 accounts from one /24",
        "accounts": 12,
    }
    out = []
    with translation.override(language):
        for kind in KINDS:
            for staff in (False, True):
                row = Notification(
                    user=user,
                    to_email="alice@example.jp",
                    kind=kind,
                    context=notifications._clean_context(context),
                    language=language,
                    staff=staff,
                    dedupe_key=f"{kind}-{staff}",
                )
                out.append(render(row))
    return out


@pytest.mark.parametrize("language", ["en", "ja"])
def test_every_message_is_link_free_even_with_hostile_details(user_factory: Any, language: str) -> None:
    """JSDA 2025: security mails carry no URL at all, even when the attacker wrote the user agent."""
    alice = user_factory("alice")
    rendered = _every_kind_rendered(alice, language)
    assert len(rendered) == 2 * len(KINDS)
    for subject, body in rendered:
        assert "http" not in body and "www." not in body and "evil.example" not in body
        assert "@" not in body
        assert not contains_link(subject) and not contains_link(body)
        assert "{{" not in body and "{%" not in body


def test_a_link_in_a_template_is_refused_not_sent(user_factory: Any, settings: Any) -> None:
    settings.AUTHGUARD_WEBAUTHN_RP_NAME = "Demo Securities"
    alice = user_factory("alice")
    row = Notification.objects.create(
        user=alice,
        to_email="alice@example.jp",
        kind="factor_added",
        context={},
        language="en",
        dedupe_key="x",
    )
    # A context value stored without defanging (say, by a bug elsewhere) must still not go out.
    Notification.objects.filter(pk=row.pk).update(context={"factor": "https://evil.example"})
    row.refresh_from_db()
    with pytest.raises(LinkInMessage):
        render(row)
    assert deliver(row.pk) == "failed"
    row.refresh_from_db()
    assert row.status == NotificationStatus.FAILED and "link" in row.last_error
    assert mail.outbox == []


def test_message_is_in_the_language_of_the_event(user_factory: Any, on_commit: Any) -> None:
    alice = user_factory("alice")
    with translation.override("ja"), on_commit(execute=True):
        row = notify(alice, "factor_added", context={"factor": "passkey"})
    assert row is not None and row.language == "ja"
    assert len(mail.outbox) == 1
    # Rendered later by the worker, outside the request, still in the customer's language.
    message = mail.outbox[0]
    assert message.subject.endswith("お客様の口座にログイン方法が追加されました"), message.subject
    assert "日時" in message.body and "When" not in message.body


def test_language_hook_wins(user_factory: Any, settings: Any) -> None:
    settings.AUTHGUARD_NOTIFICATION_LANGUAGE = "tests.test_notifications.always_japanese"
    row = notify(user_factory("alice"), "factor_added", context={"factor": "passkey"})
    assert row is not None and row.language == "ja"


def always_japanese(user: Any) -> str:
    return "ja"


def test_notify_staff_goes_to_staff_with_permission(user_factory: Any, on_commit: Any) -> None:
    analyst = user_factory("analyst", is_staff=True)
    analyst.user_permissions.add(Permission.objects.get(codename="view_loginevent"))
    user_factory("clerk", is_staff=True)  # staff without the permission
    user_factory("root", is_staff=True, is_superuser=True)
    user_factory("customer")
    with on_commit(execute=True):
        rows = notify_staff(
            "campaign_flagged", context={"summary": "12 accounts", "accounts": 12}, dedupe_key="c1"
        )
        again = notify_staff("campaign_flagged", context={"summary": "12 accounts"}, dedupe_key="c1")
    assert sorted(r.user.username for r in rows) == ["analyst", "root"]
    assert again == []
    assert sorted(m.to[0] for m in mail.outbox) == ["analyst@example.jp", "root@example.jp"]
    assert all(r.staff for r in rows)


def test_notify_staff_falls_back_to_admins(settings: Any, on_commit: Any) -> None:
    settings.ADMINS = [("Security desk", "desk@example.jp")]
    with on_commit(execute=True):
        rows = notify_staff("campaign_flagged", context={"summary": "x"}, dedupe_key="c2")
    assert [r.to_email for r in rows] == ["desk@example.jp"] and rows[0].user is None
    assert [m.to for m in mail.outbox] == [["desk@example.jp"]]


def test_email_change_tells_the_old_address(user_factory: Any, on_commit: Any) -> None:
    alice = user_factory("alice", email="new@example.jp")
    with on_commit(execute=True):
        notify(alice, "email_changed", context={"to_email": "old@example.jp", "time": datetime.now(UTC)})
    assert [m.to for m in mail.outbox] == [["old@example.jp"]]


# -- login notifications ----------------------------------------------------------------------------


def test_new_device_login_notifies_once_per_event(user_factory: Any, on_commit: Any) -> None:
    alice = user_factory("alice")
    _event(alice, created_at=datetime(2026, 11, 1, tzinfo=UTC))  # an earlier sign-in from Japan
    event = _event(alice, findings=[{"code": "new_device", "score": 25, "reason": "", "evidence": {}}])
    with on_commit(execute=True):
        first = notify_login(event)
        event.outcome = Outcome.STEP_UP_PASSED
        second = notify_login(event)
    assert [n.kind for n in first] == ["new_device_login"] and second == []
    assert len(mail.outbox) == 1
    body = mail.outbox[0].body
    assert "Tokyo" in body and "Chrome 131 on Windows" in body and "203.0.113.10" in body


def test_new_country_login_notifies(user_factory: Any, on_commit: Any) -> None:
    alice = user_factory("alice")
    _event(alice, created_at=datetime(2026, 11, 1, tzinfo=UTC))
    event = _event(alice, country="SG", city="Singapore", ip="198.51.100.10")
    with on_commit(execute=True):
        rows = notify_login(event)
    assert [n.kind for n in rows] == ["new_country_login"]
    assert "Singapore" in mail.outbox[0].body


def test_first_login_and_refused_logins_notify_nothing(user_factory: Any) -> None:
    alice = user_factory("alice")
    assert notify_login(_event(alice)) == []  # first ever sign-in: nothing to compare with
    refused = _event(alice, country="SG", outcome=Outcome.REFUSED, findings=[{"code": "new_device"}])
    assert notify_login(refused) == []
    assert Notification.objects.count() == 0


def test_hostile_user_agent_never_reaches_the_mail(user_factory: Any, on_commit: Any) -> None:
    alice = user_factory("alice")
    _event(alice, created_at=datetime(2026, 11, 1, tzinfo=UTC))
    event = _event(alice, device_summary=UA_WITH_LINK[:200], findings=[{"code": "copied_user_agent"}])
    with on_commit(execute=True):
        notify_login(event)
    body = mail.outbox[0].body
    assert "evil.example" not in body and "https" not in body and not contains_link(body)


def test_times_are_shown_in_local_time_not_iso(user_factory: Any, on_commit: Any) -> None:
    alice = user_factory("alice")
    held_at = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)
    context = {"side": "buy", "quantity": 100, "symbol": "7203", "time": held_at, "expires": held_at}
    with on_commit(execute=True):
        notify(alice, "order_held", context=context, dedupe_key="held:1")
    body = mail.outbox[0].body
    assert "buy 100 7203" in body
    assert "2026-11-30T" not in body and "2026-11-30 10:00 (JST)" in body  # 01:00 UTC is 10:00 in Tokyo


def test_removal_by_staff_says_so(user_factory: Any, on_commit: Any) -> None:
    alice = user_factory("alice")
    with on_commit(execute=True):
        notify(alice, "factor_removed", context={"factor": "passkey", "name": "old phone", "by_staff": True})
        notify(alice, "factor_removed", context={"factor": "passkey", "name": "laptop"})
    by_staff, by_herself = mail.outbox[0].body, mail.outbox[1].body
    assert "removed by our staff" in by_staff and "old phone" in by_staff
    assert "staff" not in by_herself


# -- the held-order message names the side in the customer's language --------------------------------------


@pytest.mark.parametrize(
    ("side", "english", "japanese"),
    [
        ("sell", "Order: sell 100 7203", "注文：7203 100株の売却"),
        ("buy", "Order: buy 100 7203", "注文：7203 100株の買付"),
    ],
)
def test_the_held_order_mail_shows_the_side_translated(
    user_factory: Any, on_commit: Any, side: str, english: str, japanese: str
) -> None:
    alice = user_factory("alice")
    context = {"side": side, "quantity": 100, "symbol": "7203", "time": datetime(2026, 11, 30, tzinfo=UTC)}
    with on_commit(execute=True):
        with translation.override("ja"):
            notify(alice, "order_held", context=context, dedupe_key="held:ja")
        with translation.override("en"):
            notify(alice, "order_held", context=context, dedupe_key="held:en")
    ja = Notification.objects.get(dedupe_key__endswith="held:ja")
    en = Notification.objects.get(dedupe_key__endswith="held:en")
    assert ja.language == "ja" and ja.context["side"] == side  # stored as the code; rendered translated
    assert ja.status == en.status == NotificationStatus.SENT
    japanese_body, english_body = mail.outbox[0].body, mail.outbox[1].body
    assert japanese in japanese_body.splitlines()
    assert side not in japanese_body  # no raw "sell"/"buy" inside the Japanese text
    assert english in english_body.splitlines()


def test_an_order_held_from_a_japanese_session_is_mailed_with_the_side_in_japanese(
    order_api: Any, on_commit: Any
) -> None:
    from decimal import Decimal

    from demo_site.brokerage import services

    services.sync_instruments()
    hanako = services.open_account(
        "hanako", "hanako-test-2025", email="hanako@example.com", cash=Decimal("1000000"),
        holdings={"7203": 100, "9432": 2000, "AAPL": 10},
    )  # fmt: skip
    client = order_api(HTTP_ACCEPT_LANGUAGE="ja")
    client.login("hanako", "hanako-test-2025")
    with on_commit(execute=True):
        held = client.order("sell", "AAPL", 10)
    assert held.status_code == 202, held.content
    notice = Notification.objects.get(user=hanako, kind="order_held")
    assert notice.language == "ja" and notice.status == NotificationStatus.SENT
    body = mail.outbox[-1].body
    assert "注文：Apple (AAPL) 10株の売却" in body.splitlines()
    assert "sell" not in body and not contains_link(body)
