"""Red team round forty-seven: the dead session cookie taken out of the ``Cookie`` header
(``AuthguardMiddleware._drop_dead_session_cookie``, round forty-six) only when the session store no longer
has it. A session that times out *in this very request* is signed out by ``_check_session`` and the view
still reads the original ``Cookie`` header.

Thief: a byte-for-byte copy of her cookie jar (an infostealer), replayed from a VPS abroad.
Fixed: the session cookie leaves the header whenever the request goes to the view anonymous with a cookie
that names no live session (timed out, signed out or ended in this very request).
"""

from __future__ import annotations

from typing import Any

import pytest

from .test_private_answers_cache_page_walkarounds import (  # noqa: F401 (fixture)
    _copy,
    _her_session,
    _thief_with,
    portal,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip", "portal")]

HOURS = 3600


def test_a_copied_jar_reads_her_cache_page_statement_once_her_session_times_out(
    hanako: Any, totp_factory: Any, clock: Any, settings: Any
) -> None:
    """Secure: a copy of her cookie jar reads nothing of her account, also once her session has timed out.

    The portal signs sessions out after eight hours (``AUTHGUARD_SESSION_ABSOLUTE_SECONDS``). hanako works
    all day; a few minutes before the eight hours she opens her statement (``cache_page`` + ``Vary:
    Cookie``, stored before authguard marks it private) and leaves the tab. The infostealer's copy of her jar
    is held at step-up while her session lives. Just after the eight hours: his
    request is the one that finds the session timed out. ``_check_session`` signs it out (``logout()``) but
    the ``Cookie`` header still names her session id (only a session the store had already lost is taken
    out), the view runs anonymous, and ``cache_page`` answers from the entry keyed on her Cookie header."""
    settings.AUTHGUARD_SESSION_ABSOLUTE_SECONDS = 8 * HOURS
    her = _her_session(hanako, totp_factory)
    for _ in range(9):  # a working day, a page every 50 minutes
        clock.shift(50 * 60)
        assert her.client.get("/api/portfolio").status_code == 200
    clock.shift(8 * HOURS - 9 * 50 * 60 - 5 * 60)  # five minutes before the absolute timeout
    page = her.client.get("/portal/statement")
    assert page.status_code == 200 and b"Statement of hanako" in page.content
    jar = _copy(her.client.cookies)
    clock.shift(6 * 60)  # a minute past the eight hours; her cached page has four minutes left
    thief = _thief_with(jar)
    stolen = thief.get("/portal/statement")
    assert "_auth_user_id" not in thief.session  # signed out by the timeout: the page came from the cache
    assert b"Statement of hanako" not in stolen.content, (stolen.status_code, stolen.content[:200])


def test_a_copied_jar_reads_her_cache_page_statement_once_her_session_idles_out(
    hanako: Any, totp_factory: Any, clock: Any, settings: Any
) -> None:
    """Secure: as above, with the idle timeout: the portal signs idle sessions out after five minutes
    (``AUTHGUARD_SESSION_IDLE_SECONDS``) and caches the statement for ten (the round-46 harness). She reads
    it and walks away; six minutes later the thief replays her jar: his request times her session out and
    ``cache_page`` answers it with her statement (any portal whose cache outlives its idle limit)."""
    settings.AUTHGUARD_SESSION_IDLE_SECONDS = 5 * 60
    her = _her_session(hanako, totp_factory)
    page = her.client.get("/portal/statement")
    assert page.status_code == 200 and b"Statement of hanako" in page.content
    jar = _copy(her.client.cookies)
    clock.shift(6 * 60)  # idle past the limit, the cached page has four minutes left
    thief = _thief_with(jar)
    stolen = thief.get("/portal/statement")
    assert "_auth_user_id" not in thief.session  # signed out by the timeout: the page came from the cache
    assert b"Statement of hanako" not in stolen.content, (stolen.status_code, stolen.content[:200])
