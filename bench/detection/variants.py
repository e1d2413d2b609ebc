"""The red team's attack variants: opt-in classes V1-V4 that sharpen A7 (infostealer) and A8 (low and slow).

``python -m bench.detection --variants`` adds them to the test window; without the flag nothing here runs and
a seed's files are byte-identical to what they were before this module existed. Each class has about half
as many correct-password logins as an A-class (150 at 2,000 users), victims drawn under the rules of A7/A8
(an account that exists before the last day of the window, and for the infostealers a computer that
presented a cookie on a successful login before the theft). Every random choice comes from a stream of the
class's own (``SEED:variants:V1``..., and ``SEED:cookies:variants`` for the cookie a fresh browser
presents), so turning the variants on changes no legitimate, control or A1-A8 line either: it only adds
lines. No variant address is listed in the Anonymous-IP database (the clean case is the hard one, and the
databases stay byte-identical).

Why they matter: A7 and A8 keep one giveaway each that a careful attacker can remove.

* **V1 infostealer on the victim's own ISP and city, updated UA.** As A7, the malware copied the device
  cookie of one of the victim's computers 1-40 days earlier, but the proxy is a fixed line of the victim's
  own ISP (same AS) in the victim's home city, on an address whose /24 the victim never used, and the user
  agent is that browser's *as of the attack day* (an attacker who keeps the stolen profile's UA current).
  What is left to see: a new /24 inside the victim's own ISP and city. A home lease change looks the same.
* **V2 infostealer through a mobile proxy on the victim's carrier.** The stolen cookie with the theft-time
  UA, from a CGNAT address of the victim's own mobile carrier drawn as the victim's own mobile sessions
  are (the region's point of presence or Tokyo/Osaka). A computer's cookie on a mobile network is the
  only oddity; tethering makes that legitimate too. **V2b** is the same with the attack-day UA.
* **V3 low and slow via carrier CGNAT.** As A8 (one quiet login, a second one 7-30 days later for a
  quarter of victims, no victim cookie, at an hour the victim usually signs in), always with the UA of the
  victim's latest successful login, from a CGNAT address of the victim's carrier: every mobile session of
  the victim has a new address there, so the address itself says nothing.
* **V4 low and slow via the victim's ISP over IPv6.** As A8 with the victim's UA, from an IPv6 /56 of the
  victim's own ISP in the home city that neither the victim nor any other customer of the benchmark was
  given (a temporary interface id inside it). Victims whose line has no IPv6 are included
  (``own_isp_v6_no_v6_home``): their profile never saw the ISP's IPv6 space at all.

V1 and V4 need a fixed line (mobile-only homes are not victims there); V1, V2 and V2b need a computer.

The replay learns from a login it allowed, a missed attack included, so a variant login that gets through
changes how its victim's *later* logins score (legitimate ones and A-class ones alike), as a missed A7 does
already. The lines of a run with ``--variants`` stay the default run's lines, but a few of their scores do
not: ``python -m bench.detection.variants OFF_DIR ON_DIR`` lists which lines changed between the output
folders of the same seed without and with ``--variants`` (``docs/benchmarks-variants.md``).
"""

from __future__ import annotations

import bisect
import ipaddress
import random
import sys
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from .generator import DAY, HOUR, HOUR_MODES, VARIANT_CLASSES, Event, User
from .scorer import load_jsonl

if TYPE_CHECKING:
    from .generator import Generator

__all__ = ["VARIANT_CLASSES", "add_variants", "changed_lines"]


def add_variants(gen: Generator) -> None:
    """Emit the variant classes' logins into ``gen`` (after the attacks and the controls, before
    :meth:`Generator._finish` resolves the cookies)."""
    history: dict[str, list[Event]] = {}
    for event in sorted(gen.events, key=lambda e: e.ts):
        if event.label == "legit" and event.password_ok and event.second_factor_ok:
            history.setdefault(event.user, []).append(event)
    target = max(2, round(gen.config.users * gen.config.attacks_per_user / 2))
    victims = [u for u in gen.users if u.first_day < gen.days - 1]
    own = _Own(gen)
    seed = gen.config.seed
    for label in VARIANT_CLASSES:
        rng = random.Random(f"{seed}:variants:{label}")
        if label in ("V1", "V2", "V2b"):
            _infostealer(gen, rng, label, victims, target, history, own)
        else:
            _low_and_slow(gen, rng, label, victims, target, history, own)


class _Own:
    """What a victim's own logins and lines used: IPv4 /24s and IPv6 /56s (and every household's /56)."""

    def __init__(self, gen: Generator) -> None:
        self.v4: dict[str, set[int]] = {}
        self.v6: dict[str, set[int]] = {}
        self.all_v6 = {prefix >> 72 for u in gen.users for _, prefix in u.household.v6_prefixes}
        for event in gen.events:
            if event.label not in ("legit", "control"):
                continue
            address = ipaddress.ip_address(event.ip)
            if address.version == 4:
                self.v4.setdefault(event.user, set()).add(int(address) >> 8)
            else:
                self.v6.setdefault(event.user, set()).add(int(address) >> 72)
        for user in gen.users:
            household = user.household
            self.v4.setdefault(user.name, set()).update(
                int(ipaddress.IPv4Address(ip)) >> 8 for _, ip in household.leases
            )
            self.v6.setdefault(user.name, set()).update(p >> 72 for _, p in household.v6_prefixes)

    def new_v4(self, gen: Generator, rng: random.Random, victim: User) -> tuple[str, int]:
        """An address of the victim's ISP in the home city in a /24 the victim never used, and its AS."""
        isp, home = victim.household.isp, victim.household.city
        assert isp is not None
        blocks = gen.world.fixed[(isp.key, home.name)]
        while True:
            ip = rng.choice(blocks).host(rng)
            if int(ipaddress.IPv4Address(ip)) >> 8 not in self.v4[victim.name]:
                return ip, isp.asn

    def new_v6(self, gen: Generator, rng: random.Random, victim: User) -> tuple[str, int]:
        """A temporary address in a /56 of the victim's ISP in the home city that no customer was given."""
        isp, home = victim.household.isp, victim.household.city
        assert isp is not None
        base = int(gen.world.fixed_v6[(isp.key, home.name)].net.network_address)
        while True:
            prefix = base | (rng.getrandbits(16) << 72)
            if prefix >> 72 not in self.all_v6 and prefix >> 72 not in self.v6[victim.name]:
                return str(ipaddress.IPv6Address(prefix | rng.getrandbits(64))), isp.asn


def _infostealer(
    gen: Generator,
    rng: random.Random,
    label: str,
    victims: list[User],
    target: int,
    history: dict[str, list[Event]],
    own: _Own,
) -> None:
    """V1, V2, V2b: the cookie of one of the victim's computers, stolen 1-40 days earlier (as A7)."""
    made = tries = 0
    pool = [v for v in victims if v.household.isp is not None] if label == "V1" else victims
    while made < target and tries < 100 * target and pool:
        tries += 1
        victim = rng.choice(pool)
        ts = gen._attack_ts(rng, victim)
        theft = ts - rng.randint(DAY, 40 * DAY)
        events = history.get(victim.name, [])
        before = [
            e for e in events[: bisect.bisect_left([e.ts for e in events], theft)] if not e.device.private
        ]
        pcs = [e for e in before if e.device.kind in ("pc", "work_pc")]
        if not pcs:
            continue
        device = pcs[-1].device
        stolen = tuple(e for e in reversed(before) if e.device is device)[:40]
        theft_ua = device.ua(gen._date((theft - gen.t0) // DAY))
        for _ in range(2 if rng.random() < 0.3 else 1):  # a retry from another address, same cookie
            if ts >= gen.t_end or made >= target:
                break
            updated = device.ua(gen._date((ts - gen.t0) // DAY))
            if label == "V1":
                ip, asn = own.new_v4(gen, rng, victim)
                ua, tag = updated, "own_isp_home_city"
            else:
                block = gen._mobile(rng, victim.carrier, victim.household.city, v6=False)
                ip, asn = block.host(rng), block.asn
                ua, tag = (theft_ua if label == "V2" else updated), "own_carrier_cgnat"
            event = gen._emit(ts, victim.name, ip, asn, ua, device, label, tag, second_factor_ok=False)
            event.stolen = stolen
            made += 1
            ts += rng.randint(300, DAY)


def _low_and_slow(
    gen: Generator,
    rng: random.Random,
    label: str,
    victims: list[User],
    target: int,
    history: dict[str, list[Event]],
    own: _Own,
) -> None:
    """V3, V4: one quiet login (a second 7-30 days later for a quarter) at the victim's usual hour with
    the victim's UA and no victim cookie (as A8), from the carrier's CGNAT (V3) or the ISP's IPv6 (V4)."""
    made = 0
    pool = [v for v in victims if v.household.isp is not None] if label == "V4" else victims
    while made < target and pool:
        victim = rng.choice(pool)
        device = gen._attacker(rng, keeps_cookies=0.2)
        ts = gen._attack_ts(rng, victim)
        for _ in range(2 if rng.random() < 0.25 else 1):
            if ts >= gen.t_end or made >= target:
                break
            mode = HOUR_MODES[rng.choices(range(len(HOUR_MODES)), victim.modes)[0]]
            day_start = gen.t0 + ((ts - gen.t0) // DAY) * DAY
            ts = max(ts, day_start + int((rng.gauss(*mode) % 24) * HOUR))
            if ts >= gen.t_end:
                break
            ua = gen._victim_ua(victim, ts, history)
            if label == "V3":
                block = gen._mobile(rng, victim.carrier, victim.household.city, v6=False)
                ip, asn, tag = block.host(rng), block.asn, "own_carrier_cgnat"
            else:
                ip, asn = own.new_v6(gen, rng, victim)
                tag = "own_isp_v6_home" if victim.household.v6_share else "own_isp_v6_no_v6_home"
            gen._emit(ts, victim.name, ip, asn, ua, device, label, tag, second_factor_ok=False)
            made += 1
            ts += rng.randint(7 * DAY, 30 * DAY)


def changed_lines(off: Path, on: Path, scored: str = "scored.jsonl") -> tuple[Counter, Counter]:
    """Compare two output folders of one seed, without and with ``--variants``: the lines other than the
    variants' whose score, action or reasons differ, counted by (label, phase), and the action changes
    among them by (label, phase, action without, action with). Raises if the lines themselves differ."""
    base, base_out = load_jsonl(off / "events.jsonl"), load_jsonl(off / scored)
    pairs = [
        (e, o)
        for e, o in zip(load_jsonl(on / "events.jsonl"), load_jsonl(on / scored), strict=True)
        if e["label"] not in VARIANT_CLASSES
    ]
    if [e for e, _ in pairs] != base:
        raise ValueError(f"{on} is not {off} plus variant lines")
    changed: Counter = Counter()
    actions: Counter = Counter()
    for (event, with_variants), without in zip(pairs, base_out, strict=True):
        keys = ("score", "action", "reasons")
        if any(with_variants.get(k) != without.get(k) for k in keys):
            changed[(event["label"], event["phase"])] += 1
        if with_variants["action"] != without["action"]:
            actions[(event["label"], event["phase"], without["action"], with_variants["action"])] += 1
    return changed, actions


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python -m bench.detection.variants OFF_DIR ON_DIR")
    for name in ("scored.jsonl", "scored-b0.jsonl"):
        if (Path(sys.argv[1]) / name).exists():
            changed, actions = changed_lines(Path(sys.argv[1]), Path(sys.argv[2]), name)
            print(f"{name}: {sum(changed.values())} lines scored differently {dict(sorted(changed.items()))}")
            print(f"{name}: action changes {dict(sorted(actions.items()))}")
