"""``manage.py authguard import-history``: learn profiles from a portal's past sign-ins before enforcing.

On the day a portal installs authguard no account has a history, so every customer's first sign-in looks
like a stranger's (issue 13, "the first day"). The portal exports its existing sign-in log in the replay
format (CONTRACTS section 5, :mod:`authguard.risk.replay`) and imports it first:

1. The log is scored exactly as ``authguard replay`` scores it, in memory, from an empty state, and a line
   is learned only when the replay would learn it (right password, and allowed, or stepped up with the
   second factor passed). SECURITY: a thief's sign-in in the old log that the engine would have stepped up
   and that did not pass a second factor teaches nothing, so importing cannot plant his network.
2. The learned state is written in one transaction: each known account's risk profile (accounts that
   already have a live profile are left alone unless ``replace``), and the population counts (added to the
   live ones). Users of the log that the portal does not have are counted and skipped.

The portal's own device ids (the log's ``device_id``) are not authguard's device cookies: an import keeps
each account's per-device memory keyed by those ids (how many devices,
what they were, their networks and cities; :func:`mark_imported`), so attacks right after the install are
judged as later. Where the portal sets its own long-lived device cookie and its log's ``device_id`` is that
cookie's value, ``AUTHGUARD_LEGACY_DEVICE_COOKIE`` names the cookie: a returning browser presenting it is
then judged as its imported device, with a known device's checks, until authguard's cookie takes the device
over (:mod:`authguard.risk.legacy_device`); without the setting each browser's first authguard cookie is a
new device.

An import remembers (trusts) a device only where live authguard would have: a line the replay stepped up
whose log says a passkey passed it (``"second_factor": "passkey"``;
:data:`authguard.risk.replay.PHISHING_RESISTANT`), for ``AUTHGUARD_TRUSTED_DEVICE_DAYS`` from that line.
Such a device is listed among the customer's devices (``KnownDevice``, keyed by the portal's id) and can be
revoked like any other; only the portal's cookie can present it. SECURITY: a relayable factor, or a log
that does not say which factor, remembers nothing.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import IO, Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from authguard.models import KnownDevice, PopulationCount, RiskProfile
from authguard.risk.history import MemoryHistory
from authguard.risk.replay import Policy, replay

#: Population rows written per statement.
BATCH = 1000


class _Discard(io.TextIOBase):
    """The replay's per-line results are not needed by an import."""

    def write(self, text: str) -> int:
        return len(text)


@dataclass
class ImportSummary:
    """What an import read and wrote."""

    lines: int = 0
    learned_users: int = 0
    imported_profiles: int = 0
    kept_profiles: int = 0
    unknown_users: int = 0
    population_keys: int = 0
    remembered_devices: int = 0
    seconds: float = 0.0
    dry_run: bool = False
    unknown_examples: list[str] = field(default_factory=list)

    def render(self) -> str:
        verb = "would import" if self.dry_run else "imported"
        return (
            f"{self.lines:,} sign-ins read in {self.seconds:.1f} s; {self.learned_users:,} accounts learned: "
            f"{verb} {self.imported_profiles:,} profiles, kept {self.kept_profiles:,} existing ones, "
            f"{self.unknown_users:,} unknown to this portal; {self.population_keys:,} population counts; "
            f"{self.remembered_devices:,} devices remembered after a passkey."
        )


def import_history(
    lines: Iterable[str],
    *,
    geoip_path: str | None = None,
    policy: Policy | None = None,
    replace: bool = False,
    dry_run: bool = False,
    progress: IO[str] | None = None,
) -> ImportSummary:
    """Learn the profiles of ``lines`` (the replay format) and store them for the portal's accounts.

    Raises :class:`authguard.risk.replay.ReplayError` at the first malformed or out-of-order line, before
    anything is written. ``replace``: overwrite live profiles too (default: keep them). ``dry_run``: count,
    write nothing.
    """
    started = time.monotonic()
    history = MemoryHistory()
    # The old log may name each line's second factor (``second_factor``): only the import reads it.
    scored = replay(
        lines,
        _Discard(),
        geoip_path=geoip_path,
        policy=policy,
        progress=progress,
        history=history,
        factors=True,
    )
    history.fold()  # the last period's values too: the import writes the complete counts
    summary = ImportSummary(lines=scored.lines, learned_users=len(history.profiles), dry_run=dry_run)
    model = get_user_model()
    names = [str(name) for name in history.profiles]
    pks: dict[str, Any] = {}
    for start in range(0, len(names), BATCH):
        chunk = names[start : start + BATCH]
        lookup = {f"{model.USERNAME_FIELD}__in": chunk}
        pks.update(model._default_manager.filter(**lookup).values_list(model.USERNAME_FIELD, "pk"))
    unknown = [name for name in names if name not in pks]
    summary.unknown_users = len(unknown)
    summary.unknown_examples = unknown[:5]
    with transaction.atomic():
        imported = _write_profiles(history, pks, summary, replace=replace, dry_run=dry_run)
        summary.remembered_devices = _write_devices(history, imported, now=timezone.now(), dry_run=dry_run)
        summary.population_keys = _write_population(history.population, dry_run=dry_run)
        if dry_run:
            transaction.set_rollback(True)
    summary.seconds = time.monotonic() - started
    return summary


#: Profile key: when the profile was imported (POSIX seconds). Its device memory is then the portal's old
#: device ids, which never come back as authguard device cookies (:class:`authguard.risk_signals.DeviceCookie`
#: reads it).
IMPORTED_AT = "imp"


def mark_imported(data: dict[str, Any], *, at: float) -> dict[str, Any]:
    """``data`` (a learned profile) marked as imported at ``at``.

    Its device memory is kept: an account known to use several browsers still meets "a browser never seen
    on this account" for a new one, so an attack right after the install is judged as on day 180 (dropping
    the memory let 8-23 % of four attack classes through until the victim's own first sign-in; measured
    with ``python -m bench.detection.firstday``). Only the "copied user agent" finding waits for the
    account's first authguard cookie: until then, the customer's own browser with its new cookie would
    look exactly like a copy. Its devices' ids are the portal's, which a browser's legacy device cookie
    names (:func:`authguard.risk.legacy_device.judged_context`).
    """
    data = dict(data)
    data[IMPORTED_AT] = at
    return data


def _write_profiles(
    history: MemoryHistory, pks: dict[str, Any], summary: ImportSummary, *, replace: bool, dry_run: bool
) -> dict[str, Any]:
    """Write the profiles; returns the accounts (log name to key) whose profile was imported."""
    now = timezone.now().timestamp()
    existing = set(
        RiskProfile.objects.filter(user_id__in=list(pks.values())).values_list("user_id", flat=True)
    )
    fresh: list[RiskProfile] = []
    imported: dict[str, Any] = {}
    for name, pk in pks.items():
        data = mark_imported(history.profiles[name], at=now)
        if pk in existing:
            if not replace:
                summary.kept_profiles += 1
                continue
            if not dry_run:
                RiskProfile.objects.filter(user_id=pk).update(data=data)
        else:
            fresh.append(RiskProfile(user_id=pk, data=data))
        summary.imported_profiles += 1
        imported[name] = pk
    if fresh and not dry_run:
        RiskProfile.objects.bulk_create(fresh, batch_size=BATCH)
    return imported


def _write_devices(history: MemoryHistory, imported: dict[str, Any], *, now: Any, dry_run: bool) -> int:
    """List the devices a passkey verified in the old log, still remembered at ``now``, as the customers'
    remembered devices (keyed by the portal's id); returns how many. An existing entry is left as it is:
    SECURITY: a device the customer revoked is not brought back by importing again."""
    rows = []
    for (name, device), verified in history.passkey_devices.items():
        pk = imported.get(str(name))
        # SECURITY: remembered from the passkey's own line; a later line naming no factor does not extend it.
        if pk is None or verified.until <= now:
            continue
        rows.append(
            KnownDevice(
                user_id=pk,
                cookie_hash=device,
                label=verified.label[:200],  # the browser, as every device's label (stored: not translated)
                first_seen_at=verified.at,
                learned_at=verified.at,  # a passkey's line of the portal's own log
                factor_verified_at=verified.at,  # her factor verified there: it vouches a month later
                last_seen_at=verified.at,
                last_ip=verified.ip,
                last_place=verified.place[:120],
                trusted_until=verified.until,
            )
        )
    if rows and not dry_run:
        KnownDevice.objects.bulk_create(rows, batch_size=BATCH, ignore_conflicts=True)
    return len(rows)


def _write_population(population: dict[str, int], *, dry_run: bool) -> int:
    """Add the imported counts to the live ones (new keys created, existing ones incremented)."""
    keys = [key for key, count in population.items() if count > 0]
    if dry_run:
        return len(keys)
    for start in range(0, len(keys), BATCH):
        chunk = keys[start : start + BATCH]
        have = set(PopulationCount.objects.filter(key__in=chunk).values_list("key", flat=True))
        PopulationCount.objects.bulk_create(
            [PopulationCount(key=key, count=population[key]) for key in chunk if key not in have],
            batch_size=BATCH,
        )
        for key in have:
            PopulationCount.objects.filter(key=key).update(count=F("count") + population[key])
    return len(keys)


__all__ = ["IMPORTED_AT", "ImportSummary", "import_history", "mark_imported"]
