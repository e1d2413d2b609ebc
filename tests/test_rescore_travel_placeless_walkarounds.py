"""Red team round forty-nine (B), built by the lead: a re-score measures travel from the later of the
account's last sign-in and where the session was last seen (``rescoring._SeenHistory``, rounds 47-48).
When the later one is another browser's sign-in at a place that proves nothing (an address no database
places, or an anonymous network), ``ImpossibleTravel`` has no starting point and skips: a copy of her PC's
jar replayed from Singapore a minute after her PC's call was not measured at all (this copy, from a hosting
VPS, was still held by its other findings; one from a residential line abroad would lean on travel).

Thief: a byte-for-byte copy of her PC's cookie jar (an infostealer), replayed from a VPS in Singapore with
her browser's user agent, a minute after her own call from Tokyo. No password, no code. Her phone had just
signed in from an unplaced address (stepped up with her passkey, which is learned).
"""

from __future__ import annotations

from typing import Any

import pytest

from authguard.models import LoginEvent

from .conftest import HANAKO_PASSWORD, UA_IPHONE, OrderApi, bind_passkey
from .test_private_answers_cache_page_walkarounds import _copy, _her_session, _thief_with

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]

UNPLACED = "8.8.8.8"  # an address the test GeoIP databases cannot place (no country, no coordinates)


def _copy_after_her_phone(hanako: Any, totp_factory: Any, clock: Any, authenticator: Any) -> tuple[Any, Any]:
    """hanako uses her PC at home in Tokyo for seven hours (a call every 50 minutes); twenty seconds after
    its last call her phone signs in from an unplaced address with her passkey; forty seconds later the
    thief replays the PC's jar from Singapore."""
    her = _her_session(hanako, totp_factory)
    bind_passkey(hanako, authenticator)
    for _ in range(7 * 60 // 50):
        clock.shift(50 * 60)
        assert her.client.get("/api/portfolio").status_code == 200
    jar = _copy(her.client.cookies)
    clock.shift(20)
    phone = OrderApi(REMOTE_ADDR=UNPLACED, HTTP_USER_AGENT=UA_IPHONE)
    signed_in = phone.post("/api/login", {"username": "hanako", "password": HANAKO_PASSWORD}).json()
    if signed_in.get("status") != "ok":
        options = phone.post("/authguard/api/step-up/passkey/options")
        assert options.status_code == 200, options.content
        passed = phone.post("/authguard/api/step-up/passkey", authenticator.get(options.json()))
        assert passed.status_code == 200, (signed_in, passed.content)
    assert phone.get("/api/portfolio").status_code == 200
    last = LoginEvent.objects.order_by("pk").last()
    assert last is not None and last.ip == UNPLACED
    clock.shift(40)
    thief = _thief_with(jar)
    return thief.get("/api/portfolio"), dict(thief.session).get("_authguard") or {}


def test_a_copy_of_her_pc_after_her_phone_signed_in_unplaced_is_held_for_travel(
    hanako: Any, totp_factory: Any, clock: Any, authenticator: Any
) -> None:
    """Secure: the copy from Singapore a minute after her PC's call from Tokyo is held, whatever her other
    browsers did in between: travel is measured from the session's last precise place when the account's
    later sign-in has none."""
    answer, state = _copy_after_her_phone(hanako, totp_factory, clock, authenticator)
    rescore = LoginEvent.objects.order_by("pk").last()
    codes = [f["code"] for f in rescore.findings] if rescore is not None else []
    held = answer.status_code != 200 and state.get("s") != "verified"
    assert held, (answer.status_code, state.get("s"), codes)
    assert "impossible_travel" in codes, codes
