"""The security console's admin: who may see and do what, read-only evidence, audited verdicts, revocation."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from authguard.models import Feedback, KnownDevice, LoginEvent, Notification

from .conftest import IP_SG_VPS, IP_TOKYO, UA_CHROME_WIN, UA_CURL
from .console_data import NOW, sign_in, staff_client, staff_user
from .staff_fixtures import approve_pending

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]

EVENTS = "/admin/authguard/loginevent/"


@pytest.fixture
def events(user_factory):
    from django.test import Client

    user_factory("alice")
    home = Client()
    good = sign_in(home, "alice", "correct horse battery", ip=IP_TOKYO, ua=UA_CHROME_WIN, at=NOW)
    bad = sign_in(Client(), "alice", "correct horse battery", ip=IP_SG_VPS, ua=UA_CURL, at=NOW)
    return good, bad


@pytest.fixture
def analyst():
    return staff_user("analyst", perms=("authguard.view_loginevent", "authguard.change_loginevent"))


@pytest.fixture
def viewer():
    return staff_user("viewer", perms=("authguard.view_loginevent",))


def test_events_are_listed_filtered_and_explained_but_never_editable(events, viewer):
    good, bad = events
    client = staff_client(viewer)
    listing = client.get(EVENTS)
    assert listing.status_code == 200 and list(listing.context["cl"].result_list) == [bad, good]
    assert list(client.get(EVENTS, {"action__exact": bad.action}).context["cl"].result_list) == [bad]
    assert list(client.get(EVENTS, {"country": "SG"}).context["cl"].result_list) == [bad]
    assert list(client.get(EVENTS, {"asn": "14061"}).context["cl"].result_list) == [bad]
    assert list(client.get(EVENTS, {"asn": "AS14061'--"}).context["cl"].result_list) == []
    assert list(client.get(EVENTS, {"reason": "automation_client"}).context["cl"].result_list) == [bad]
    assert list(client.get(EVENTS, {"q": IP_SG_VPS}).context["cl"].result_list) == [bad]
    assert list(client.get(EVENTS, {"verdict": "none"}).context["cl"].result_list) == [bad, good]

    page = client.get(f"{EVENTS}{bad.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "automation_client" in html and "why this score" in html.lower()
    assert 'name="score"' not in html  # read-only: no input for any field
    # Nothing can be written through the admin, whatever the permissions.
    client.post(f"{EVENTS}{bad.pk}/change/", {"score": 0, "action": "allow"})
    bad.refresh_from_db()
    assert bad.score > 0 and bad.action != "allow"
    assert client.get(f"{EVENTS}add/").status_code == 403
    assert client.post(f"{EVENTS}{bad.pk}/delete/", {"post": "yes"}).status_code == 403
    assert LoginEvent.objects.count() == 2


def test_superuser_cannot_edit_or_delete_events_either(events):
    good, _bad = events
    client = staff_client(staff_user("root", superuser=True))
    assert client.get(f"{EVENTS}add/").status_code == 403
    assert client.post(f"{EVENTS}{good.pk}/delete/", {"post": "yes"}).status_code == 403
    response = client.post(
        EVENTS, {"action": "delete_selected", "_selected_action": [good.pk], "post": "yes"}
    )
    assert response.status_code in (200, 302) and LoginEvent.objects.filter(pk=good.pk).exists()


def test_staff_without_permission_see_nothing(events):
    client = staff_client(staff_user("intern"))
    assert client.get(EVENTS).status_code == 403
    for page in ("dashboard/", "compliance/", "incident/", "backtest/", "export/"):
        assert client.get(EVENTS + page).status_code == 403, page
    assert client.get("/admin/authguard/knowndevice/").status_code == 403


def test_customers_cannot_reach_the_console(events):
    from django.test import Client

    client = Client()
    client.force_login(LoginEvent.objects.first().user)
    response = client.get(EVENTS + "dashboard/")
    assert response.status_code == 302 and "/admin/login/" in response.url


def test_analyst_marks_fraud_and_legitimate_and_it_is_audited(events, analyst):
    good, bad = events
    client = staff_client(analyst)
    response = client.post(EVENTS, {"action": "mark_fraud", "_selected_action": [bad.pk]}, follow=True)
    assert "1 event(s) marked as confirmed fraud." in response.content.decode()
    client.post(EVENTS, {"action": "mark_legitimate", "_selected_action": [good.pk]})
    bad.refresh_from_db()
    good.refresh_from_db()
    assert (bad.feedback, good.feedback) == (Feedback.FRAUD, Feedback.LEGITIMATE)
    log = LogEntry.objects.get(object_id=str(bad.pk))
    assert log.user == analyst and log.change_message == "verdict: none -> fraud"
    # Marking again changes nothing and logs nothing more.
    client.post(EVENTS, {"action": "mark_fraud", "_selected_action": [bad.pk]})
    assert LogEntry.objects.filter(object_id=str(bad.pk)).count() == 1
    assert list(client.get(EVENTS, {"verdict": "fraud"}).context["cl"].result_list) == [bad]


def test_viewer_cannot_mark_events(events, viewer):
    _good, bad = events
    client = staff_client(viewer)
    assert "mark_fraud" not in client.get(EVENTS).content.decode()
    client.post(EVENTS, {"action": "mark_fraud", "_selected_action": [bad.pk]})
    bad.refresh_from_db()
    assert bad.feedback == "" and not LogEntry.objects.exists()


def test_revoking_a_known_device_forgets_it_and_tells_the_customer(events, analyst):
    device = KnownDevice.objects.get()
    desk = staff_user("desk2", perms=("authguard.view_knowndevice", "authguard.change_knowndevice"))
    client = staff_client(desk)
    assert client.get("/admin/authguard/knowndevice/").status_code == 200
    client.post("/admin/authguard/knowndevice/", {"action": "revoke", "_selected_action": [device.pk]})
    device.refresh_from_db()
    assert device.revoked_at is not None and device.trusted_until is None
    note = Notification.objects.get(kind="factor_removed")
    assert note.user == device.user and note.context["factor"] == "remembered device"
    assert LogEntry.objects.get(object_id=str(device.pk)).user == desk
    # Revoking twice does nothing more.
    client.post("/admin/authguard/knowndevice/", {"action": "revoke", "_selected_action": [device.pk]})
    assert Notification.objects.filter(kind="factor_removed").count() == 1


def test_view_only_staff_cannot_revoke_a_device(events):
    device = KnownDevice.objects.get()
    client = staff_client(staff_user("ro", perms=("authguard.view_knowndevice",)))
    client.post("/admin/authguard/knowndevice/", {"action": "revoke", "_selected_action": [device.pk]})
    device.refresh_from_db()
    assert device.revoked_at is None and not Notification.objects.exists()


def test_totp_admin_never_shows_the_secret_and_revoking_deletes_and_notifies(user_factory):
    alice = user_factory("alice")
    device = TOTPDevice.objects.create(user=alice, name="phone", confirmed=True)
    assert totp(device.bin_key)  # a real key, which the admin must not reveal
    perms = ("otp_totp.view_totpdevice", "otp_totp.delete_totpdevice")
    client = staff_client(staff_user("desk", perms=perms))
    page = client.get(f"/admin/otp_totp/totpdevice/{device.pk}/change/").content.decode()
    assert device.key not in page and "qrcode" not in page.lower()
    with pytest.raises(NoReverseMatch):  # django-otp's secret-showing config and QR views are gone
        reverse("admin:otp_totp_totpdevice_config", kwargs={"pk": device.pk})
    assert (
        device.key
        not in client.get(f"/admin/otp_totp/totpdevice/{device.pk}/config/", follow=True).content.decode()
    )
    assert client.get("/admin/otp_totp/totpdevice/add/").status_code == 403
    ask = client.post("/admin/otp_totp/totpdevice/", {"action": "revoke", "_selected_action": [device.pk]})
    assert ask.status_code == 200 and 'name="reason"' in ask.content.decode()  # a reason first
    revoke = {"action": "revoke", "_selected_action": [device.pk], "apply": "1", "reason": "lost phone"}
    client.post("/admin/otp_totp/totpdevice/", revoke)
    # Four eyes (battery case 60): the request waits for a second staff member.
    assert TOTPDevice.objects.filter(pk=device.pk).exists()
    approve_pending(staff_client(staff_user("desk2", perms=perms)))
    assert not TOTPDevice.objects.filter(pk=device.pk).exists()
    note = Notification.objects.get(kind="factor_removed", user=alice)
    assert note.context["name"] == "phone"


def test_network_lists_are_shown_read_only_with_their_recent_hits(settings, user_factory, viewer):
    from django.test import Client

    settings.AUTHGUARD_NETWORK_DENYLIST = ["AS14061", "198.51.100.128/26"]
    settings.AUTHGUARD_NETWORK_ALLOWLIST = ["203.0.113.0/26"]
    user_factory("alice")
    sign_in(Client(), "alice", "correct horse battery", ip=IP_SG_VPS, ua=UA_CHROME_WIN, at=timezone.now())
    page = staff_client(viewer).get(EVENTS + "network-lists/")
    html = page.content.decode()
    assert page.status_code == 200 and "AS14061" in html and "203.0.113.0/26" in html
    assert page.context["denied_recently"] == 1
    assert "<form" not in html.split('id="denylist"')[1]  # nothing to edit here


def test_app_index_links_the_console_pages(viewer):
    html = staff_client(viewer).get("/admin/authguard/").content.decode()
    for page in ("dashboard/", "backtest/", "network-lists/", "compliance/", "incident/"):
        assert EVENTS + page in html, page


@pytest.mark.usefixtures("authenticator")
def test_revoking_a_passkey_and_recovery_codes_removes_them_and_tells_the_customer(
    tanaka, order_api, authenticator
):
    from authguard.models import FactorRecord, PasskeyDevice, RecoveryCodeDevice, RiskProfile

    # The customer enrolls through the real API: a passkey (first factor, low-risk session), then, after
    # re-verifying with it, recovery codes.
    browser = order_api()
    browser.login("tanaka", "tanaka-demo-2025")
    browser.register_passkey(authenticator)
    options = browser.post("/authguard/api/step-up/passkey/options").json()
    assert browser.post("/authguard/api/step-up/passkey", authenticator.get(options)).status_code == 200
    assert browser.post("/authguard/api/recovery-codes").status_code == 201
    passkey, codes = PasskeyDevice.objects.get(user=tanaka), RecoveryCodeDevice.objects.get(user=tanaka)
    assert FactorRecord.objects.filter(user=tanaka).count() == 2
    desk_perms = (
        "authguard.view_passkeydevice",
        "authguard.delete_passkeydevice",
        "authguard.view_recoverycodedevice",
        "authguard.delete_recoverycodedevice",
    )
    desk = staff_user("desk", perms=desk_perms)
    client = staff_client(desk)
    page = client.get("/admin/authguard/passkeydevice/").content.decode()
    assert passkey.name in page and passkey.credential_id not in page
    assert "10" in client.get("/admin/authguard/recoverycodedevice/").content.decode()  # codes left
    reason = {"apply": "1", "reason": "customer reported the phone stolen"}
    client.post(
        "/admin/authguard/passkeydevice/", {"action": "revoke", "_selected_action": [passkey.pk], **reason}
    )
    client.post(
        "/admin/authguard/recoverycodedevice/", {"action": "revoke", "_selected_action": [codes.pk], **reason}
    )
    assert PasskeyDevice.objects.filter(user=tanaka).exists()  # waiting for the second approval
    second = staff_user("desk2", perms=desk_perms)
    approve_pending(staff_client(second))
    assert not PasskeyDevice.objects.filter(user=tanaka).exists()
    assert not RecoveryCodeDevice.objects.filter(user=tanaka).exists()
    assert not FactorRecord.objects.filter(user=tanaka).exists()
    removed = Notification.objects.filter(user=tanaka, kind="factor_removed")
    assert sorted(n.context["factor"] for n in removed) == ["passkey", "recovery codes"]
    assert "sec" in RiskProfile.objects.get(user=tanaka).data  # the risk engine sees a recent change
    assert LogEntry.objects.filter(user=desk).count() == 2  # the two requests
    # The approver: two approvals, two executions, two revoked devices.
    assert LogEntry.objects.filter(user=second).count() == 6


def test_staff_cannot_add_or_edit_factors(tanaka):
    client = staff_client(staff_user("root", superuser=True))
    for model in ("passkeydevice", "recoverycodedevice"):
        assert client.get(f"/admin/authguard/{model}/add/").status_code == 403


def test_shadow_findings_are_explained_as_report_only(
    user_factory, viewer, settings, django_capture_on_commit_callbacks
):
    from django.test import Client

    from authguard.risk.policy import save_policy

    with django_capture_on_commit_callbacks(execute=True):
        save_policy(
            by=None,
            comment="try a second automation rule report-only",
            shadow_signals=[{"NAME": "authguard.risk_signals.AutomationClient", "OPTIONS": {}}],
        )
    user_factory("alice")
    event = sign_in(Client(), "alice", "correct horse battery", ip=IP_TOKYO, ua=UA_CURL, at=NOW)
    shadow = [f for f in event.findings if (f.get("evidence") or {}).get("shadow")]
    assert shadow, event.findings
    html = staff_client(viewer).get(f"{EVENTS}{event.pk}/change/").content.decode()
    assert "report-only (would be" in html
