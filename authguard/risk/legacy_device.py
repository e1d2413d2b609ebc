"""The portal's own device cookie on the days after ``import-history`` (issue 13, "the first day").

A brokerage already sets its own long-lived device cookie and logs its id in its sign-in log. The import
learns per-device memory keyed by those ids (the log's ``device_id``), but every customer's browser meets
authguard's cookie for the first time on the install day, so without this each one is a new device.
With ``AUTHGUARD_LEGACY_DEVICE_COOKIE`` naming the portal's cookie:

* :func:`judged_context`: a login whose authguard device cookie this account does not know (or that has
  none), presenting the portal's cookie with an id the *import* learned for this account, is judged as that
  imported device, with every check a known device gets (a network, city or ASN the device never used, a
  user agent that went backwards or sideways, a long-idle device, a device that moved too fast).
* :func:`take_over`: when such a login is learned, the imported device's memory moves to the browser's
  authguard cookie, which is the device from then on; the portal's id stops counting.

SECURITY: the portal's cookie is as stealable as authguard's own (infostealers copy every cookie), and its
ids were in the portal's log. So it never counts for more than authguard's cookie would: only devices the
import learned (an id the profile does not know, or one authguard learned, counts as no cookie, so guessing
ids gains nothing), never over a known or remembered authguard cookie or a DBSC-bound one, and only until
the device is taken over or forgotten with the profile's horizon. It is a remembered (trusted) device only
where authguard's cookie would have been one: the old log says a passkey passed a step-up the replay asked
for on it, within ``AUTHGUARD_TRUSTED_DEVICE_DAYS`` (the import then lists it among the customer's devices,
who can revoke it like any other; :func:`authguard.risk.import_history.import_history`). A relayable
factor, or a log that does not say which factor, remembers nothing. That entry ends when authguard's cookie
takes the device over or signs the same browser in by itself
(:func:`authguard.risk.history.portal_device_ending`).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from authguard.models import KnownDevice, RiskProfile
from authguard.risk.context import LoginContext
from authguard.risk.profile import Profile
from authguard.sessions import device_generations

logger = logging.getLogger(__name__)

#: The profile key :func:`authguard.risk.import_history.mark_imported` sets (that module imports the
#: replay, which imports this one): when the profile was imported, POSIX seconds.
IMPORTED_AT = "imp"


#: The profile key of the portal's ids taken over: portal id -> the authguard cookie that took it over
#: (hash prefixes), or :data:`FORK_SEEN` once another browser presented it too. At most one entry per
#: imported device.
TAKEN_OVER = "to"
FORK_SEEN = "!"


def forked_from(profile: Profile, ctx: LoginContext) -> str | None:
    """The authguard cookie (a hash prefix) that took over the device the portal's cookie of ``ctx`` names,
    when ``ctx`` is another browser presenting that cookie: two holders of it, either of them the thief.

    SECURITY: authguard's own cookie catches a copy by its generations; the portal's has none. A thief who
    showed the infostealer's copy of it first took her imported PC's memory over (:func:`take_over`), and her
    own PC presenting it afterwards was only a new browser, his the PC of 40 days (red team, round
    fourteen). The login is judged as a copy (``device_cookie_superseded``); a sign-in with the right
    password settles the fork (:func:`settle_fork`, :func:`fork_seen`).
    """
    legacy = ctx.legacy_device_hash
    if not legacy:
        return None
    taker = (profile.data.get(TAKEN_OVER) or {}).get(legacy[:20])
    if not isinstance(taker, str) or taker == FORK_SEEN:
        return None
    own = ctx.device_hash[:20] if ctx.device_hash else None
    return None if own == taker else taker


def fork_seen(data: dict[str, Any] | None, ctx: LoginContext) -> None:
    """Mark the fork of ``ctx``'s portal cookie seen in the profile ``data`` (changed in place): judged once,
    its holders are never taken for it again."""
    if data is not None and ctx.legacy_device_hash:
        data.setdefault(TAKEN_OVER, {})[ctx.legacy_device_hash[:20]] = FORK_SEEN


def settle_fork(ctx: LoginContext, taker: str) -> None:
    """The live store's part of a fork (:func:`forked_from`), once a sign-in with the right password showed
    the second holder: retire the id of the browser that took the portal's device over (its next sign-in is
    a copy's too: a step-up, then a new id) and mark the fork seen.

    SECURITY: never on a wrong password or a re-score (red team, round sixteen: a wrong guess with a copy of
    the portal's cookie retired her PC's id), and seen at once, whichever factor the step-up then takes: a
    relayable one teaches nothing, and her own PC was a "copy" at every sign-in after (round sixteen).
    """
    if ctx.user_id is None:
        return
    full = (
        KnownDevice.objects.filter(user_id=ctx.user_id, cookie_hash__startswith=taker)
        .values_list("cookie_hash", flat=True)
        .first()
    )
    if full:
        device_generations.retire(device_hash=full, now=ctx.time)
    row = RiskProfile.objects.select_for_update().filter(user_id=ctx.user_id).first()
    if row is not None and isinstance(row.data, dict):
        fork_seen(row.data, ctx)
        row.save(update_fields=["data", "updated_at"])
    logger.warning("authguard: the portal's device cookie has two holders user=%s", ctx.user_id)


def imported_device(profile: Profile, dev: str) -> bool:
    """Whether ``dev`` (a device hash prefix, ``features["dev"]``) is a device the import learned for this
    profile and still within its horizon: remembered with its last use no later than the import."""
    imported = profile.data.get(IMPORTED_AT)
    if not imported:
        return False
    entry = profile.data.get("dv", {}).get(dev)
    return entry is not None and len(entry) == 8 and entry[0] <= imported and profile.count("dev", dev) > 0


def judged_context(
    ctx: LoginContext, profile: Profile, *, trusted: bool, legacy_trusted: bool = False
) -> tuple[LoginContext, bool]:
    """``ctx`` as the risk engine judges it (the imported device its legacy cookie names, or ``ctx`` itself),
    and whether that device is a remembered one.

    ``trusted``: whether the login's authguard cookie is a remembered device (it is then judged by it).
    ``legacy_trusted``: whether the portal's cookie is one the import remembered for this account (it counts
    only where the login is judged as that imported device).
    """
    legacy = ctx.legacy_device_hash
    if legacy is None or trusted or ctx.dbsc != "unbound":
        return ctx, trusted
    own = ctx.device_hash
    if own is not None and profile.count("dev", own[:20]) > 0:
        return ctx, trusted  # authguard's own cookie already took over
    if not imported_device(profile, legacy[:20]):
        return ctx, trusted  # SECURITY: an id the import did not learn for this account counts as no cookie
    return replace(ctx, device_hash=legacy, legacy_device_hash=None), legacy_trusted


def _named_by_portal(judged: LoginContext, profile: Profile, ctx: LoginContext) -> LoginContext:
    """The context whose device :func:`take_over` moves onto ``ctx``'s authguard cookie as ``ctx`` is learned.

    ``judged`` (the evidence's context) when the login was judged as an imported device. When it was judged
    by its own authguard cookie while also presenting the portal's cookie naming a device the import learned
    for this account, that device too: one browser, two names. SECURITY: otherwise a copy of the portal's
    cookie alone would still be judged as the imported device after the browser's own cookie (a DBSC-bound
    one included) became the known one. Only an *imported* device (:func:`imported_device`): a portal cookie
    naming a device authguard learned moves nothing.
    """
    if judged is not ctx:
        return judged
    legacy = ctx.legacy_device_hash
    if legacy is None or ctx.device_hash is None or not imported_device(profile, legacy[:20]):
        return ctx
    return replace(ctx, device_hash=legacy, legacy_device_hash=None)


def _move(values: dict[str, list[int]] | None, old: str, new: str) -> None:
    """Rename a feature value, adding its counts to those ``new`` may already have."""
    if not values or old not in values:
        return
    entry = values.pop(old)
    have = values.get(new)
    if have is None:
        values[new] = entry
    else:
        have[0] += entry[0]
        have[1] += entry[1]
        have[2] = max(have[2], entry[2])


def take_over(
    data: dict[str, Any] | None, judged: LoginContext, ctx: LoginContext, *, profile: Profile
) -> dict[str, Any] | None:
    """Before learning ``ctx``: if it was judged as an imported device (``judged``, the evidence's context),
    or presents the portal's cookie naming one (:func:`_named_by_portal`; ``profile`` is the evidence's),
    and carries an authguard device cookie, that cookie takes over the imported device's memory (its counts,
    networks, cities and last use), so the next sign-in with it is a known device and the portal's id no
    longer counts. ``data`` is changed in place and returned."""
    if data is not None and forked_from(profile, ctx) is not None and ctx.legacy_device_hash:
        # The fork was judged (a step-up at least) and this holder proved itself: seen, never again.
        data.setdefault(TAKEN_OVER, {})[ctx.legacy_device_hash[:20]] = FORK_SEEN
    judged = _named_by_portal(judged, profile, ctx)
    if judged is ctx or data is None or ctx.device_hash is None or judged.device_hash is None:
        return data
    old, new = judged.device_hash[:20], ctx.device_hash[:20]
    devices = data.get("dv") or {}
    if old == new or old not in devices:
        return data  # nothing imported under that id any more (taken over meanwhile)
    # SECURITY: which browser took the portal's id over, so that another one presenting it is a fork.
    data.setdefault(TAKEN_OVER, {})[old] = new
    features = data.get("f", {})
    _move(features.get("dev"), old, new)
    for feature in ("dasn", "dcity"):
        values = features.get(feature)
        if values:
            for key in [key for key in values if key.startswith(old + "|")]:
                _move(values, key, new + key[len(old) :])
    entry = devices.pop(old)
    if new not in devices or devices[new][0] < entry[0]:
        devices[new] = entry
    last = data.get("last")
    if last and last.get("dev") == old:
        last["dev"] = new
    return data


__all__ = [
    "FORK_SEEN",
    "IMPORTED_AT",
    "TAKEN_OVER",
    "forked_from",
    "imported_device",
    "judged_context",
    "fork_seen",
    "settle_fork",
    "take_over",
]
