"""Two requests in flight against "one change per verification" (red team, round eighteen): kept in the
session, the mark was passed by two requests at once, or written over by a request that ended later. The
rule now reads and writes ``AccountSecurity.factors_changed_at`` under the row's lock, in the change's
transaction. Each test failed on the code it was written against."""

from __future__ import annotations

from importlib import import_module
from typing import Any

import pytest
from django.conf import settings
from django_otp.plugins.otp_totp.models import TOTPDevice

from authguard.models import PasskeyDevice

from .conftest import totp_token
from .factor_scenarios import her_new_app, her_new_passkey, new_key, thief_with_one_code

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]


def _store(client: Any) -> Any:
    engine = import_module(settings.SESSION_ENGINE)
    return engine.SessionStore(session_key=client.client.cookies[settings.SESSION_COOKIE_NAME].value)


def read_session(client: Any) -> dict[str, Any]:
    """What a request of this session that starts now reads (its copy of the session)."""
    return dict(_store(client).load())


def end_request_with(client: Any, copy: dict[str, Any]) -> None:
    """A request that read ``copy`` when it began ends now: the middleware saves its whole copy."""
    store = _store(client)
    store._session_cache = dict(copy)
    store.save()


@pytest.mark.battery(63)
def test_two_requests_in_flight_add_his_passkey_and_remove_her_new_passkey_with_one_relayed_code(
    new_browser_api: Any, hanako: Any, totp_factory: Any, clock: Any
) -> None:
    """Round seventeen's case (his passkey in place of her new one) with the two steps sent together: the
    removal and the registration each read a session that has changed nothing, so
    require_verified_since_change passes both (lifecycle.py: the marks are read from the session's copy)."""
    hers = her_new_passkey(new_browser_api, hanako, totp_factory)

    clock.shift(2 * 3600)
    thief = thief_with_one_code(new_browser_api, hanako.totp)
    key = new_key()
    options = thief.post("/authguard/api/passkeys/options")
    assert options.status_code == 200, options.content

    # Two fetches sent together: both read the session as it is now.
    copy = read_session(thief)
    removed = thief.post("/authguard/api/factors/remove", {"id": hers.persistent_id})  # ends first
    end_request_with(thief, copy)  # the registration read its copy before the removal wrote "rm"
    added = thief.post("/authguard/api/passkeys", key.create(options.json()))

    kept = PasskeyDevice.objects.filter(pk=hers.pk).exists()
    his = PasskeyDevice.objects.filter(user=hanako).exclude(pk=hers.pk).exists()
    assert kept or not his, (
        f"one relayed code, two requests in flight: her new passkey removed ({removed.status_code}) and his "
        f"registered ({added.status_code})"
    )


@pytest.mark.battery(63)
def test_a_request_in_flight_writes_over_the_removal_mark_and_his_app_is_bound_after_hers_is_removed(
    new_browser_api: Any, hanako: Any, clock: Any
) -> None:
    """The lost mark outlives the race: the thief relays one code of her new app, removes it (itself: "a
    cooling-off factor removes only itself") while a harmless request of the same session is in flight
    (the passkey options his page asks for). That request ends last and writes its copy of the session,
    without "rm", over the removal's: from then on, one request at a time, the session has "changed
    nothing", and the same verification begins and confirms his app in place of hers."""
    her_app = her_new_app(new_browser_api, hanako)

    clock.shift(2 * 3600)
    thief = thief_with_one_code(new_browser_api, her_app)

    copy = read_session(thief)  # the in-flight request (it only reads options: it changes no factor)
    removed = thief.post("/authguard/api/factors/remove", {"id": her_app.persistent_id})
    # Since the fix her own addition of the app is the account's last change: a session verified with the
    # app itself (cooling off) removes it only after a verification with a factor of hers (403 here).
    assert removed.status_code in (200, 403), removed.content
    end_request_with(thief, copy)

    clock.shift(5)
    began = thief.post("/authguard/api/totp")
    confirmed = None
    if began.status_code == 200:
        his = TOTPDevice.objects.get(user=hanako, confirmed=False)
        confirmed = thief.post("/authguard/api/totp/confirm", {"code": totp_token(his)})

    assert list(TOTPDevice.objects.filter(user=hanako, confirmed=True).values_list("pk", flat=True)) in (
        [her_app.pk],
        [],
    ), (
        f"her app removed with one relayed code of it, then his app begun ({began.status_code}) and "
        f"confirmed ({getattr(confirmed, 'status_code', None)}) with the same verification"
    )
