"""Builders for login contexts and evidence, using the real context helpers and the real stores."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from authguard.risk.context import LoginContext, device_hash
from authguard.risk.geoip import geolocate
from authguard.risk.history import MemoryHistory
from authguard.risk.useragent import parse_user_agent

from .conftest import IP_TOKYO, UA_CHROME_WIN

JST = ZoneInfo("Asia/Tokyo")
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=JST)


def ctx(
    *,
    user: str = "alice",
    ip: str | None = IP_TOKYO,
    ua: str = UA_CHROME_WIN,
    device: str | None = "dev-alice-pc",
    at: datetime = T0,
    account: dict | None = None,
) -> LoginContext:
    """A login context as the live path builds it, from plain values (geolocated with the test databases)."""
    return LoginContext(
        time=at,
        username=user,
        user_id=user,
        ip=ip,
        geo=geolocate(ip),
        client=parse_user_agent(ua),
        device_hash=device_hash(device),
        account=account or {},
    )


def history_of(*logins: LoginContext, store: MemoryHistory | None = None) -> MemoryHistory:
    """A memory store that has learned the given successful logins, in order."""
    store = store or MemoryHistory()
    for login in logins:
        store.learn(login, store.evidence(login))
    return store


def daily(
    n: int, *, start: datetime = T0, every: timedelta = timedelta(days=1), **kwargs
) -> list[LoginContext]:
    return [ctx(at=start + i * every, **kwargs) for i in range(n)]
