"""The plain SQL of :class:`authguard.risk.history.DatabaseHistory`'s evidence: built once per database and
shape (:mod:`authguard.statements`), every value a parameter."""

from __future__ import annotations

import functools
from datetime import datetime, timezone
from typing import Any

from django.db import connections

from authguard.models import AccountLock, KnownDevice, PopulationCount, RiskProfile
from authguard.sessions.device_generations import left_behind_sql


def as_time(value: Any) -> datetime | None:
    """A timestamp column read by plain SQL as an aware datetime (SQLite answers the stored text)."""
    if value is None or isinstance(value, datetime):
        return value if value is None or value.tzinfo else value.replace(tzinfo=timezone.utc)
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


@functools.lru_cache(maxsize=8)
def profile_sql(alias: str, *, with_lock: bool = False) -> str:
    """The user's stored profile (NULL without one) and whether the login's browser, then the portal's
    device cookie it presented, is one of the user's trusted devices, not revoked, trusted until after the
    login (on the database ``alias``); ``with_lock``: then whether the account is locked and when its
    self-service unlock falls due (the login flow's lock check after the password, in the same statement)."""
    q = connections[alias].ops.quote_name
    profiles, devices = q(RiskProfile._meta.db_table), q(KnownDevice._meta.db_table)
    locks = q(AccountLock._meta.db_table)
    trusted = (
        f" CASE WHEN EXISTS (SELECT 1 FROM {devices} WHERE user_id = %s AND cookie_hash = %s"  # noqa: S608
        " AND revoked_at IS NULL AND trusted_until > %s) THEN 1 ELSE 0 END"
    )
    revoked = (
        f" CASE WHEN EXISTS (SELECT 1 FROM {devices} WHERE user_id = %s AND cookie_hash = %s"  # noqa: S608
        " AND revoked_at IS NOT NULL) THEN 1 ELSE 0 END"
    )
    # SECURITY: only the models' own (quoted) table names are formatted in; every value is a parameter.
    # Then how far the presented device cookie is behind its browser's newest one, and whether the account
    # revoked it.
    lock = (
        f", CASE WHEN EXISTS (SELECT 1 FROM {locks} WHERE user_id = %s AND locked_at IS NOT NULL)"  # noqa: S608
        " THEN 1 ELSE 0 END,"
        f" (SELECT unlock_due_at FROM {locks} WHERE user_id = %s AND locked_at IS NOT NULL)"
    )
    return (
        f"SELECT (SELECT data FROM {profiles} WHERE user_id = %s),{trusted},{trusted},"  # noqa: S608
        f"{left_behind_sql(devices)},{revoked}{lock if with_lock else ''}"
    )


@functools.lru_cache(maxsize=64)
def population_sql(alias: str, keys: int) -> str:
    """The population counts of ``keys`` keys (a login asks for a few dozen) on the database ``alias``."""
    q = connections[alias].ops.quote_name
    # SECURITY: only the model's own (quoted) names are formatted in; every key is a parameter.
    return (
        f"SELECT {q('key')}, {q('count')} FROM {q(PopulationCount._meta.db_table)}"  # noqa: S608
        f" WHERE {q('key')} IN ({', '.join(['%s'] * keys)})"
    )
