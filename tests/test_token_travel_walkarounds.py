"""Red team round forty-eight: a copied DRF token has no round-47 'last seen' travel check
(sessions.token_binding._check_once scores with the account's last sign-in). Real DRF views, real engine.

Fixed: a token's re-score measures travel from where it was last seen, as a session's does
(``rescoring.seen_history`` in ``token_binding``).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine

# isort: split
from .test_drf import with_token

# isort: split
from .conftest import IP_OSAKA, IP_TOKYO
from .test_copy_walkarounds import PORTFOLIO, _her_app, _token_at, rt16_geoip, rt16_geoip_dir  # noqa: F401
from .test_sessions_binding_anchor import OCN_SAPPORO, START, _jar, _signed_in_after, hanako  # noqa: F401


def _after_her_call(make_call: Any) -> int:
    traveller = time_machine.travel(START - timedelta(days=21), tick=False)
    t = traveller.start()
    try:
        return make_call(t, _signed_in_after(t, [IP_TOKYO, IP_OSAKA] * 10))
    finally:
        traveller.stop()


@pytest.mark.django_db
@pytest.mark.urls("tests.drf_urlconf")
def test_a_copied_token_replayed_from_sapporo_on_her_isp_a_minute_after_her_app_is_served(
    hanako: Any,  # noqa: F811
    rt16_geoip: Path,  # noqa: F811
) -> None:
    """Secure: a copy of her app's token (and the device cookie her app keeps) replayed 830 km away a
    minute after her app's call from Tokyo is refused, as the same copy of a browser session is.

    Infostealer copy of her app's token + device cookie. An hour into the token's life, a minute after her
    app's call from Tokyo, the thief's script calls from Sapporo through her own ISP (OCN, same ASN, same
    country: no token_new_country). token_binding re-scores with the account history only: travel is
    measured from the token's sign-in an hour ago (800 km in an hour: possible): allowed, served."""

    def call(t: Any, browser: Any) -> int:
        device = browser.cookies["authguard_device"].value
        token = _token_at(IP_TOKYO, device)
        for _ in range(2):
            t.shift(timedelta(minutes=30))
            assert with_token(_her_app(IP_TOKYO, device), token).get(PORTFOLIO).status_code == 200
        t.shift(timedelta(minutes=1))
        return with_token(_her_app(OCN_SAPPORO, device), token).get(PORTFOLIO).status_code

    assert _after_her_call(call) != 200


@pytest.mark.django_db
def test_held_the_same_replay_of_her_browser_session_is_held(hanako: Any, rt16_geoip: Path) -> None:  # noqa: F811
    """The control: her browser session's jar replayed from OCN Sapporo a minute after her Tokyo call is
    held at step-up (impossible_travel from where it was last seen, round 47)."""

    def call(t: Any, browser: Any) -> int:
        for _ in range(2):
            t.shift(timedelta(minutes=30))
            assert browser.get("/api/portfolio").status_code == 200
        t.shift(timedelta(minutes=1))
        return _jar(browser, OCN_SAPPORO).get("/api/portfolio").status_code

    assert _after_her_call(call) == 401
