"""A seeded generator of Japanese online-brokerage login histories with labelled account-takeover attempts.

Legitimate users (see ``docs/benchmarks-detection.md`` for the full model) live in a Japanese city, have a
fixed line whose address churns inside the ISP's pool (IPv4 leases, IPv6 prefixes with daily temporary
addresses), a mobile carrier whose CGNAT exits sit at points of presence far from them, one to three browsers
whose UA versions follow the release trains, commute to an office, travel by Shinkansen and abroad, sometimes
use a VPN or iCloud Private Relay, buy new phones, clear cookies, mistype passwords and share a family PC.
Attacks of classes A1 to A6 of ``risk-model.md``, an infostealer class (A7: the victim's own device cookie and
user agent as stolen 1-40 days earlier, replayed from a Japanese residential proxy), a low-and-slow class (A8:
the victim's home city, a fixed line, the victim's usual hour) and a household control class are added in the
test window.

Every random choice comes from a :class:`random.Random` seeded from the benchmark's seed (one stream per user,
one for the attacks, one for the device cookies), so a seed always gives the same file.
"""

from __future__ import annotations

import bisect
import datetime as dt
import ipaddress
import itertools
import json
import math
import random
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .useragents import AUTOMATION_UAS, PLATFORM_BROWSERS, common_ua, headless_chrome, user_agent
from .world import (
    CARRIER_POPS,
    FOREIGN_CITIES,
    JP_CARRIERS,
    JP_CITIES,
    REGION_POP,
    TRAVEL_COUNTRIES,
    Block,
    City,
    Operator,
    build_world,
)

JST = dt.timezone(dt.timedelta(hours=9))
DAY = 86_400
HOUR = 3_600

#: The keys of a replay input line (CONTRACTS section 5) and the label keys the generator adds.
CONTRACT_KEYS = ("ts", "user", "ip", "user_agent", "device_id", "password_ok", "second_factor_ok")
LABEL_KEYS = ("label", "phase", "history_size", "scenario")
ATTACK_CLASSES = ("A1", "A2", "A3", "A4", "A5", "A6", "A7", "A8")
#: Classes added later: their random draws (cookies included) come from streams of their own, so adding them
#: left every line of A1-A6, the controls and the legitimate users byte-identical.
_LATER_CLASSES = frozenset({"A7", "A8"})
#: The red team's opt-in variant classes (``bench/detection/variants.py``, ``--variants``): off by default,
#: and drawn from streams of their own when on, so they only add lines.
VARIANT_CLASSES = ("V1", "V2", "V2b", "V3", "V4")

#: Public holidays of 2025 (the market is closed and people behave as on a weekend).
HOLIDAYS = frozenset(
    dt.date(2025, m, d)
    for m, d in ((1, 1), (1, 2), (1, 3), (1, 13), (2, 11), (2, 24), (3, 20), (4, 29), (5, 5), (5, 6))
    + ((7, 21), (8, 11), (9, 15), (9, 23), (10, 13), (11, 3), (11, 24), (12, 31))
)

#: Hour-of-day modes of brokerage logins (centre, spread in hours): before the open, the morning session,
#: the lunch break, after the close, the evening, the US open (22:30/23:30 JST) and late night.
HOUR_MODES: tuple[tuple[float, float], ...] = (
    (7.6, 0.6),
    (10.0, 1.2),
    (12.1, 0.4),
    (15.8, 0.6),
    (20.5, 1.4),
    (23.2, 0.8),
    (1.5, 1.2),
)
_MODE_PRIOR = (1.0, 0.8, 1.0, 0.8, 1.6, 0.6, 0.25)

#: Login-frequency classes: share of users, weekday and weekend logins per day.
FREQUENCY_CLASSES: dict[str, tuple[float, tuple[float, float], tuple[float, float]]] = {
    "daily": (0.08, (1.2, 3.5), (0.05, 0.4)),
    "active": (0.20, (0.45, 1.0), (0.2, 0.6)),
    "regular": (0.30, (0.12, 0.30), (0.12, 0.35)),
    "occasional": (0.25, (0.04, 0.10), (0.04, 0.12)),
    "rare": (0.17, (0.008, 0.03), (0.008, 0.03)),
}

#: Where credential-stuffing bots and overseas residential proxies sit.
BOTNET_COUNTRIES: dict[str, float] = {
    "US": 10, "CN": 8, "BR": 8, "VN": 8, "IN": 7, "ID": 6, "RU": 6, "JP": 8, "KR": 5, "TW": 4, "TH": 4,
    "PH": 3, "MX": 3, "DE": 3, "FR": 2, "GB": 2, "UA": 2, "NG": 2, "ZA": 1, "MY": 2, "HK": 2, "CA": 1,
}  # fmt: skip
PROXY_COUNTRIES: dict[str, float] = {
    "US": 12, "CN": 8, "KR": 6, "TW": 6, "HK": 6, "VN": 6, "TH": 4, "SG": 4, "GB": 3, "DE": 3, "BR": 3,
    "IN": 3, "ID": 3, "PH": 3, "RU": 2, "AU": 2, "CA": 2, "FR": 2, "NL": 2, "MY": 2,
}  # fmt: skip


@dataclass(frozen=True)
class Config:
    """What to generate."""

    seed: int = 1
    users: int = 2000
    history_days: int = 180
    test_days: int = 60
    start: dt.date = dt.date(2025, 1, 6)
    attacks_per_user: float = 0.15  # attack logins of each class per user (a few hundred at 2,000 users)
    controls_per_user: float = 0.08


@dataclass(eq=False)
class Device:
    """A browser install: the UA it sends and the device cookie it presents.

    The cookie lives in epochs separated by ``clear_times``; the first visit of an epoch presents no cookie
    or the one the login page has just set, later visits present it. A ``private`` browser (private
    browsing, automation without a cookie jar) starts a new epoch on every visit.
    """

    platform: str
    browser: str
    kind: str  # phone, pc, tablet, work_pc, attacker
    first_day: int = 0
    last_day: int = 1 << 30
    lag_days: int = 0
    frozen: dt.date | None = None  # never updated past this day
    established: bool = False  # had its cookie before the benchmark began
    private: bool = False
    scripted: bool = False  # an attack script posting the form directly, without loading the login page
    relay: bool = False  # iCloud Private Relay on
    clear_times: list[int] = field(default_factory=list)

    def ua(self, day: dt.date) -> str:
        """The UA string on ``day``."""
        seen = self.frozen if self.frozen is not None else day - dt.timedelta(days=self.lag_days)
        return user_agent(self.platform, self.browser, seen)

    def active(self, day: int) -> bool:
        """Whether the device is in use on day index ``day``."""
        return self.first_day <= day < self.last_day


@dataclass(eq=False)
class Household:
    """A home and its fixed line (``isp`` None: the home is online through the mobile carrier)."""

    key: str
    city: City
    isp: Operator | None
    v6_share: float  # share of logins over IPv6 (0: the line has none)
    leases: list[tuple[int, str]] = field(default_factory=list)  # (from ts, IPv4 address)
    v6_prefixes: list[tuple[int, int]] = field(default_factory=list)  # (from ts, /56 prefix)
    shared_pc: Device | None = None

    def ipv4(self, ts: int) -> str:
        """The line's IPv4 address at ``ts``."""
        return self.leases[max(0, bisect.bisect_right(self.leases, (ts, "~")) - 1)][1]

    def ipv6(self, ts: int) -> str:
        """A temporary IPv6 address of the line at ``ts`` (RFC 8981: a new interface id every day)."""
        prefix = self.v6_prefixes[max(0, bisect.bisect_right(self.v6_prefixes, (ts, 1 << 128)) - 1)][1]
        iid = random.Random(f"{self.key}:{prefix}:{ts // DAY}").getrandbits(64)
        return str(ipaddress.IPv6Address(prefix | iid))


@dataclass(frozen=True)
class Trip:
    """A stay away from home: a Shinkansen or plane trip in Japan, or a week abroad."""

    start: int
    end: int
    city: City
    abroad: bool
    hotel_ip: str
    hotel: Block


@dataclass(eq=False)
class User:
    """A brokerage customer and everything that shapes their logins."""

    name: str
    freq: str
    weekday_rate: float
    weekend_rate: float
    household: Household
    carrier: Operator
    mobile_v6: bool
    devices: list[Device]
    modes: list[float]
    first_day: int
    work_city: City | None = None
    office: tuple[str, Block] | None = None
    office_share: float = 0.0
    home_share: float = 0.8
    pc_pref: float = 0.5
    vpn_share: float = 0.0
    vpn_exits: list[Block] = field(default_factory=list)
    typo_rate: float = 0.0
    quiet: list[tuple[int, int]] = field(default_factory=list)
    trips: list[Trip] = field(default_factory=list)

    def trip_at(self, ts: int) -> Trip | None:
        """The trip the user is on at ``ts``, if any."""
        return next((t for t in self.trips if t.start <= ts < t.end), None)


@dataclass(slots=True)
class Event:
    """One login attempt before serialisation (the device cookie is resolved once all are sorted)."""

    ts: int
    user: str
    ip: str
    asn: int
    ua: str
    device: Device
    password_ok: bool
    second_factor_ok: bool | None
    label: str
    scenario: str
    seq: int
    # An infostealer's login (A7): the victim's successful logins before the theft, newest first; the login
    # presents the cookie of the first of them that presented one (resolved once all events are sorted).
    stolen: tuple[Event, ...] = ()


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def _weighted(rng: random.Random, weights: dict[str, float]) -> str:
    return rng.choices(list(weights), list(weights.values()))[0]


def _hex_id(rng: random.Random) -> str:
    return f"{rng.getrandbits(128):032x}"


class Generator:
    """Builds the users, their logins, the attacks and the controls of one seed."""

    def __init__(self, config: Config, *, variants: bool = False) -> None:
        self.config = config
        self.variants = variants
        self.world = build_world(random.Random(f"{config.seed}:world"))
        self.days = config.history_days + config.test_days
        self.t0 = int(dt.datetime.combine(config.start, dt.time(), JST).timestamp())
        self.test_start = self.t0 + config.history_days * DAY
        self.t_end = self.t0 + self.days * DAY
        self.events: list[Event] = []
        self.users: list[User] = []
        self._seq = itertools.count()
        self._offices: dict[str, list[tuple[str, Block]]] = {}
        rng = random.Random(f"{config.seed}:calendar")
        self.spikes = self._spike_days(rng)

    # -- calendar --------------------------------------------------------------------------------------
    def _spike_days(self, rng: random.Random) -> set[int]:
        """Market-shock days when everyone checks their portfolio (three in history, one or two in test)."""
        h, t = self.config.history_days, self.config.test_days
        days = rng.sample(range(h), min(3, h)) + rng.sample(range(h, h + t), min(rng.randint(1, 2), t))
        return {d for d in days if (self.config.start + dt.timedelta(days=d)).weekday() < 5}

    def _date(self, day: int) -> dt.date:
        return self.config.start + dt.timedelta(days=day)

    def _off(self, day: int) -> bool:
        date = self._date(day)
        return date.weekday() >= 5 or date in HOLIDAYS

    # -- users -------------------------------------------------------------------------------------------
    def _pick_city(self, rng: random.Random) -> City:
        return rng.choices(JP_CITIES, [c.population for c in JP_CITIES])[0]

    def _new_household(self, rng: random.Random, key: str, city: City) -> Household:
        isps = self.world.isps_in(city)
        isp = rng.choices(isps, [i.share for i in isps])[0] if rng.random() < 0.88 else None
        v6_share = rng.uniform(0.5, 0.95) if isp is not None and rng.random() < 0.45 else 0.0
        household = Household(key, city, isp, v6_share)
        if isp is None:
            return household
        # PPPoE leases change every few days to weeks; IPoE (MAP-E/DS-Lite) addresses last months.
        mean_days = rng.choice((4, 10, 25, 60, 150))
        ts, blocks = self.t0 - 60 * DAY, self.world.fixed[(isp.key, city.name)]
        block = rng.choice(blocks)
        while ts < self.t_end:
            roll = rng.random()
            if roll < 0.35:
                block = rng.choice(blocks)
            elif roll < 0.37:  # the ISP serves the area from a neighbouring city's pool
                near = [
                    c for c in JP_CITIES if c.region == city.region and (isp.key, c.name) in self.world.fixed
                ]
                block = rng.choice(self.world.fixed[(isp.key, rng.choice(near).name)])
            household.leases.append((ts, block.host(rng)))
            ts += int(rng.expovariate(1 / (mean_days * DAY))) + HOUR
        if v6_share:
            v6 = self.world.fixed_v6[(isp.key, city.name)]
            ts = self.t0 - 60 * DAY
            while ts < self.t_end:
                prefix = int(v6.net.network_address) | (rng.getrandbits(16) << 72)
                household.v6_prefixes.append((ts, prefix))
                ts += int(rng.expovariate(1 / (200 * DAY))) + DAY
        return household

    def _browser(self, rng: random.Random, platform: str) -> str:
        options = PLATFORM_BROWSERS[platform]
        return rng.choices([b for b, _ in options], [w for _, w in options])[0]

    def _device(
        self,
        rng: random.Random,
        kind: str,
        platform: str,
        *,
        first_day: int,
        established: bool,
        hostile: bool,
    ) -> Device:
        browser = self._browser(rng, platform)
        device = Device(
            platform,
            browser,
            kind,
            first_day=first_day,
            lag_days=rng.randint(0, 14),
            established=established,
            relay=platform == "iphone" and browser == "safari" and rng.random() < 0.08,
        )
        if rng.random() < 0.04:
            device.frozen = self._date(first_day) - dt.timedelta(days=rng.randint(0, 120))
        # Cookie clearing: privacy-minded users every few days or weeks, everyone else rarely.
        mean_days = rng.uniform(10, 60) if hostile else rng.uniform(300, 800) * (2 if kind == "phone" else 1)
        ts = self.t0 + first_day * DAY
        while True:
            ts += int(rng.expovariate(1 / (mean_days * DAY)))
            if ts >= self.t_end:
                break
            device.clear_times.append(ts)
        return device

    def _make_users(self) -> list[User]:
        rng = random.Random(f"{self.config.seed}:users")
        users: list[User] = []
        shared_with: Household | None = None
        for index in range(self.config.users):
            urng = random.Random(f"{self.config.seed}:user:{index}")
            user = self._new_user(urng, index, shared_with)
            users.append(user)
            # About one user in eight shares a home (and the family PC) with the next one.
            shared_with = user.household if shared_with is None and rng.random() < 0.065 else None
        return users

    def _new_user(self, rng: random.Random, index: int, shared: Household | None) -> User:
        h, days = self.config.history_days, self.days
        freq = rng.choices(list(FREQUENCY_CLASSES), [v[0] for v in FREQUENCY_CLASSES.values()])[0]
        _, weekday, weekend = FREQUENCY_CLASSES[freq]
        roll = rng.random()
        if roll < 0.88:
            first_day = 0
        elif roll < 0.94:
            first_day = rng.randrange(1, h)
        else:
            first_day = rng.randrange(h, max(h + 1, days - 3))
        established = first_day == 0
        if shared is not None:
            household = shared
        else:
            household = self._new_household(rng, f"{self.config.seed}:home:{index}", self._pick_city(rng))
        hostile = rng.random() < 0.03
        carrier = rng.choices(JP_CARRIERS, [c.share for c in JP_CARRIERS])[0]
        modes = [p * rng.random() ** 3 for p in _MODE_PRIOR]
        if freq == "daily":
            modes[1] += 0.5
        devices: list[Device] = []

        def add(kind: str, platform: str, day: int = first_day, est: bool = established) -> Device:
            device = self._device(rng, kind, platform, first_day=day, established=est, hostile=hostile)
            devices.append(device)
            return device

        if rng.random() < 0.96:
            add("phone", "iphone" if rng.random() < 0.6 else "android")
        if shared is not None and shared.shared_pc is not None:
            devices.append(shared.shared_pc)
        elif rng.random() < (0.8 if freq == "daily" else 0.6) or not devices:
            pc = add("pc", "windows" if rng.random() < 0.8 else "mac")
            if shared is None and rng.random() < 0.5:
                household.shared_pc = pc
        if rng.random() < 0.12:
            add("tablet", "ipad" if rng.random() < 0.8 else "android")
        if rng.random() < 0.015:  # always browses privately: no cookie survives a session
            own = [d for d in devices if d.kind == "pc" and d is not household.shared_pc]
            if own:
                own[0].private = True
        user = User(
            name=f"u{index:06d}",
            freq=freq,
            weekday_rate=rng.uniform(*weekday),
            weekend_rate=rng.uniform(*weekend),
            household=household,
            carrier=carrier,
            mobile_v6=rng.random() < 0.35,
            devices=devices,
            modes=modes,
            first_day=first_day,
            home_share=rng.uniform(0.6, 0.95),
            pc_pref=rng.uniform(0.6, 0.95) if freq == "daily" else rng.uniform(0.2, 0.8),
            typo_rate=0.0 if rng.random() < 0.4 else rng.uniform(0.01, 0.08),
        )
        if rng.random() < 0.55:
            city = household.city
            user.work_city = self.world.cities[city.hub] if rng.random() < 0.5 else city
            user.office = self._office(rng, user.work_city)
            user.office_share = rng.uniform(0.1, 0.7)
            if rng.random() < 0.3:
                add("work_pc", "windows", est=established)
        # Life events: a new phone, a new browser or computer.
        phone = next((d for d in devices if d.kind == "phone"), None)
        if phone is not None and rng.random() < 0.22:
            day = rng.randrange(first_day, days)
            phone.last_day = day
            same = rng.random() < 0.85
            add(
                "phone",
                phone.platform if same else ("android" if phone.platform == "iphone" else "iphone"),
                day,
                False,
            )
        if rng.random() < 0.08:
            day = rng.randrange(first_day, days)
            old = next((d for d in devices if d.kind == "pc" and d is not household.shared_pc), None)
            if old is not None and rng.random() < 0.5:
                old.last_day = day
            add("pc", "windows" if rng.random() < 0.75 else "mac", day, False)
        self._privacy_habits(rng, user)
        self._breaks_and_trips(rng, user)
        return user

    def _privacy_habits(self, rng: random.Random, user: User) -> None:
        roll = rng.random()
        if roll < 0.03:
            user.vpn_share = 0.95
        elif roll < 0.08:
            user.vpn_share = rng.uniform(0.1, 0.4)
        if user.vpn_share:
            provider = rng.choice(sorted(self.world.vpn_exits))
            exits = self.world.vpn_exits[provider]
            tokyo = [b for b in exits if b.country == "JP"]
            user.vpn_exits = tokyo if tokyo and rng.random() < 0.7 else [rng.choice(exits)]
            if rng.random() < 0.3:
                user.vpn_exits = user.vpn_exits + [rng.choice(exits)]

    def _office(self, rng: random.Random, city: City) -> tuple[str, Block]:
        offices = self._offices.setdefault(city.name, [])
        if offices and rng.random() < 0.6:
            return rng.choice(offices)
        egress = city if rng.random() < 0.8 else self.world.cities["Tokyo"]  # behind the HQ's proxy
        isp = rng.choice(self.world.isps_in(egress))
        block = rng.choice(self.world.fixed[(isp.key, egress.name)])
        office = (block.host(rng), block)
        offices.append(office)
        return office

    def _breaks_and_trips(self, rng: random.Random, user: User) -> None:
        days = self.days
        for _ in range(rng.choice((0, 0, 1, 1, 2))):
            start = rng.randrange(days)
            user.quiet.append((start, start + rng.randint(7, 40)))
        home = user.household.city
        rate = rng.choice((0, 0, 0, 1, 2, 4, 6, 15))  # domestic trips a year; the last: business travellers
        trips: list[Trip] = []
        for _ in range(_poisson(rng, rate * days / 365)):
            city = rng.choices(JP_CITIES, [c.population if c.hub != home.hub else 0 for c in JP_CITIES])[0]
            trips.append(self._trip(rng, city, rng.randint(1, 4), abroad=False))
        roll = rng.random()
        for _ in range(1 if roll < 0.06 else rng.randint(2, 4) if roll < 0.07 else 0):
            country = _weighted(rng, TRAVEL_COUNTRIES)
            cities = [c for c in FOREIGN_CITIES if c.country == country]
            city = cities[0] if country == "US" and rng.random() < 0.5 else rng.choice(cities)
            trips.append(self._trip(rng, city, rng.randint(3, 10), abroad=True))
        trips.sort(key=lambda t: t.start)
        for trip in trips:  # trips never overlap
            if not user.trips or trip.start >= user.trips[-1].end:
                user.trips.append(trip)

    def _trip(self, rng: random.Random, city: City, nights: int, *, abroad: bool) -> Trip:
        day = rng.randrange(self.days)
        start = self.t0 + day * DAY + rng.randint(6 * HOUR, 11 * HOUR)
        end = self.t0 + (day + nights) * DAY + rng.randint(15 * HOUR, 21 * HOUR)
        if abroad:
            blocks = [b for b in self.world.foreign_fixed[city.country] if b.home_city == city]
        else:
            isp = rng.choice(self.world.isps_in(city))
            blocks = self.world.fixed[(isp.key, city.name)]
        hotel = rng.choice(blocks)
        return Trip(start, end, city, abroad, hotel.host(rng), hotel)

    # -- legitimate logins -------------------------------------------------------------------------------
    def _emit(
        self,
        ts: int,
        user: str,
        ip: str,
        asn: int,
        ua: str,
        device: Device,
        label: str,
        scenario: str,
        *,
        password_ok: bool = True,
        second_factor_ok: bool | None = True,
    ) -> Event:
        event = Event(
            ts,
            user,
            ip,
            asn,
            ua,
            device,
            password_ok,
            second_factor_ok if password_ok else None,
            label,
            scenario,
            next(self._seq),
        )
        self.events.append(event)
        return event

    def _simulate(self, user: User) -> None:
        rng = random.Random(f"{self.config.seed}:logins:{user.name}")
        for day in range(user.first_day, self.days):
            off = self._off(day)
            rate = user.weekend_rate if off else user.weekday_rate
            if any(a <= day < b for a, b in user.quiet):
                rate *= 0.08
            if day in self.spikes:
                rate = rate * 2 + 0.3
            n = _poisson(rng, rate)
            if day == user.first_day and user.first_day > 0:
                n = max(n, 1)  # the day the account is opened
            for _ in range(n):
                mode = HOUR_MODES[rng.choices(range(len(HOUR_MODES)), user.modes)[0]]
                hour = rng.gauss(*mode) % 24
                ts = self.t0 + day * DAY + int(hour * HOUR)
                trip = user.trip_at(ts)
                if trip is not None and trip.abroad and rng.random() < 0.5:
                    continue  # people log in less on holiday
                self._legit_login(rng, user, ts, day, hour, off, trip)

    def _legit_login(
        self, rng: random.Random, user: User, ts: int, day: int, hour: float, off: bool, trip: Trip | None
    ) -> None:
        where = self._where(rng, user, hour, off, trip)
        device = self._choose_device(rng, user, day, where)
        ip, asn, tag = self._network(rng, user, ts, where, device, trip)
        ua = device.ua(self._date(day))
        typos = (2 if rng.random() < 0.15 else 1) if rng.random() < user.typo_rate else 0
        for k in range(typos):
            self._emit(
                ts - (k + 1) * rng.randint(6, 40),
                user.name,
                ip,
                asn,
                ua,
                device,
                "legit",
                tag,
                password_ok=False,
            )
        abandoned = rng.random() < 0.012  # the user could not complete a second factor right now
        self._emit(ts, user.name, ip, asn, ua, device, "legit", tag, second_factor_ok=not abandoned)
        if abandoned and rng.random() < 0.6:
            self._emit(ts + rng.randint(60, 900), user.name, ip, asn, ua, device, "legit", tag)
        others = [d for d in user.devices if d is not device and d.active(day) and d.kind != "work_pc"]
        if others and rng.random() < 0.01:
            # A second device signed in within the minute (PC and phone side by side), often on mobile data.
            other = rng.choice(others)
            other_where = "mobile" if other.kind == "phone" and rng.random() < 0.5 else where
            ip2, asn2, tag2 = self._network(rng, user, ts, other_where, other, trip)
            ua2 = other.ua(self._date(day))
            self._emit(ts + rng.randint(5, 60), user.name, ip2, asn2, ua2, other, "legit", tag2)

    def _where(self, rng: random.Random, user: User, hour: float, off: bool, trip: Trip | None) -> str:
        if trip is not None:
            return "abroad" if trip.abroad else "trip"
        if user.work_city is not None and not off:
            if 7 <= hour < 9 or 18 <= hour < 20:
                return "mobile" if rng.random() < 0.85 else "home"
            if 9 <= hour < 18:
                return "office" if rng.random() < user.office_share else "mobile"
        return "home" if rng.random() < user.home_share else "mobile"

    def _choose_device(self, rng: random.Random, user: User, day: int, where: str) -> Device:
        active = [d for d in user.devices if d.active(day)] or user.devices
        phones = [d for d in active if d.kind == "phone"]
        pcs = [d for d in active if d.kind == "pc"]
        if where == "home":
            if pcs and rng.random() < user.pc_pref:
                return rng.choice(pcs)
            tablets = [d for d in active if d.kind == "tablet"]
            if tablets and rng.random() < 0.3:
                return rng.choice(tablets)
        elif where == "office":
            work = [d for d in active if d.kind == "work_pc"]
            if work and rng.random() < 0.5:
                return work[0]
        elif where in ("trip", "abroad") and pcs and rng.random() < 0.15:
            return rng.choice(pcs)  # a laptop in the hotel
        return rng.choice(phones or pcs or active)

    def _mobile(self, rng: random.Random, carrier: Operator, near: City, v6: bool) -> Block:
        pops = CARRIER_POPS[carrier.key]
        regional = REGION_POP[near.region]
        if regional in pops and rng.random() < 0.6:
            pop = regional
        else:
            pop = rng.choices(pops, [5 if p == "Tokyo" else 3 if p == "Osaka" else 1 for p in pops])[0]
        if v6 and rng.random() < 0.8:
            return self.world.mobile_v6[(carrier.key, pop)]
        return rng.choice(self.world.mobile[(carrier.key, pop)])

    def _network(
        self, rng: random.Random, user: User, ts: int, where: str, device: Device, trip: Trip | None
    ) -> tuple[str, int, str]:
        """The address a login comes from, its AS number, and a scenario tag naming the situation."""
        if user.vpn_share and rng.random() < user.vpn_share:
            block = rng.choice(user.vpn_exits)
            return block.host(rng), block.asn, "vpn"
        if where == "abroad" and trip is not None:
            country = trip.city.country
            if device.relay and rng.random() < 0.9:
                block = rng.choice(self.world.relay[country])
                return block.host(rng), block.asn, "relay"
            mode = rng.choices(("wifi", "roaming", "esim", "vpn"), (0.45, 0.25, 0.15, 0.15))[0]
            if mode == "roaming":  # roaming data leaves through the home carrier in Japan
                block = self._mobile(rng, user.carrier, self.world.cities["Tokyo"], user.mobile_v6)
                return block.host(rng), block.asn, "abroad_roaming"
            if mode == "esim" and country in self.world.foreign_mobile:
                block = rng.choice(self.world.foreign_mobile[country])
                return block.host(rng), block.asn, "abroad_mobile"
            if mode == "vpn":  # to reach a broker that refuses foreign addresses
                block = rng.choice(
                    [b for bs in self.world.vpn_exits.values() for b in bs if b.country == "JP"]
                )
                return block.host(rng), block.asn, "abroad_vpn"
            return trip.hotel_ip, trip.hotel.asn, "abroad_wifi"
        near = trip.city if trip is not None else user.household.city
        if device.relay and rng.random() < 0.9:
            block = rng.choice(self.world.relay[REGION_POP[near.region]])
            return block.host(rng), block.asn, "relay"
        if where == "trip" and trip is not None:
            if device.kind != "phone" or rng.random() < 0.35:
                return trip.hotel_ip, trip.hotel.asn, "hotel"
            block = self._mobile(rng, user.carrier, near, user.mobile_v6)
            return block.host(rng), block.asn, "trip_mobile"
        if where == "office" and user.office is not None:
            return user.office[0], user.office[1].asn, "office"
        household = user.household
        if where == "home" and household.isp is not None:
            if household.v6_share and rng.random() < household.v6_share:
                return household.ipv6(ts), household.isp.asn, "home_v6"
            return household.ipv4(ts), household.isp.asn, "home"
        block = self._mobile(rng, user.carrier, near, user.mobile_v6)
        return block.host(rng), block.asn, "home_mobile" if where == "home" else "mobile"

    # -- attacks -----------------------------------------------------------------------------------------
    def _attack_ts(self, rng: random.Random, victim: User, *, not_before: int = 0) -> int:
        """A time in the test window after the victim's account exists: JST waking hours or any hour."""
        lo = max(self.test_start, self.t0 + victim.first_day * DAY + DAY, not_before)
        day = self.t0 + (rng.randrange(lo - self.t0, self.t_end - self.t0) // DAY) * DAY
        hour = rng.uniform(8, 24) if rng.random() < 0.55 else rng.uniform(0, 24)
        return max(lo, min(self.t_end - 1, day + int(hour * HOUR)))

    def _victim_ua(self, victim: User, ts: int, history: dict[str, list[Event]]) -> str:
        """The UA of the victim's latest successful login before ``ts`` (what a phishing page captures)."""
        events = history.get(victim.name, [])
        i = bisect.bisect_left([e.ts for e in events], ts)
        if i:
            return events[i - 1].ua
        day = (ts - self.t0) // DAY
        device = next((d for d in victim.devices if d.active(day)), victim.devices[0])
        return device.ua(self._date(day))

    def _listed(self, ip: str, block: Block) -> str:
        return "+listed" if block.flagged or ip in self.world.proxy_ips else ""

    def _attacker(self, rng: random.Random, *, keeps_cookies: float, scripted: bool = False) -> Device:
        """An attacker's browser or script; it keeps the cookies it is given with ``keeps_cookies``."""
        private = rng.random() >= keeps_cookies
        return Device("attacker", "attacker", "attacker", private=private, scripted=scripted)

    def _residential_proxy(self, rng: random.Random, country: str, listed: float) -> tuple[str, Block]:
        block = rng.choice(self.world.foreign_fixed[country])
        ip = block.host(rng)
        if rng.random() < listed:
            self.world.proxy_ips.add(ip)
        return ip, block

    def _attacks(self, users: list[User]) -> None:
        rng = random.Random(f"{self.config.seed}:attacks")
        target = max(2, round(self.config.users * self.config.attacks_per_user))
        history: dict[str, list[Event]] = {}
        for event in sorted(self.events, key=lambda e: e.ts):
            if event.label == "legit" and event.password_ok and event.second_factor_ok:
                history.setdefault(event.user, []).append(event)
        victims = [u for u in users if u.first_day < self.days - 1]
        self._a1(rng, victims, target)
        self._a2(rng, victims, target)
        self._a3(rng, victims, target, history)
        self._a4(rng, victims, target, history)
        self._a5(rng, users, target)
        self._a6(rng, users, target, history)
        # Later classes draw from streams of their own: A1-A6 stay what they were.
        self._a7(random.Random(f"{self.config.seed}:attacks:A7"), victims, target, history)
        self._a8(random.Random(f"{self.config.seed}:attacks:A8"), victims, target, history)

    def _a1(self, rng: random.Random, victims: list[User], target: int) -> None:
        """Phished credentials tried from overseas VPSs; a campaign's few addresses serve many victims."""
        made = 0
        while made < target:
            pool: list[tuple[str, Block]] = []
            for block in rng.sample(self.world.hosting_foreign, rng.randint(1, 3)):
                pool += [(block.host(rng), block) for _ in range(rng.randint(2, 5))]
            if rng.random() < 0.15:
                extra = rng.choice(self.world.tor + [b for bs in self.world.vpn_exits.values() for b in bs])
                pool.append((extra.host(rng), extra))
            style = rng.choices(("automation", "headless", "chrome", "mixed"), (0.3, 0.2, 0.35, 0.15))[0]
            scripted = style in ("automation", "headless")
            browser = self._attacker(rng, keeps_cookies=0.3, scripted=scripted)
            fixed_ua = rng.choice(AUTOMATION_UAS)
            for victim in rng.sample(victims, min(len(victims), rng.randint(5, 40))):
                ts = self._attack_ts(rng, victim)
                while ts < self.t_end and made < target:
                    day = self._date((ts - self.t0) // DAY)
                    ua = {
                        "automation": fixed_ua,
                        "headless": headless_chrome(day),
                        "chrome": user_agent("windows", "chrome", day),
                    }.get(style) or common_ua(rng, day)
                    ip, block = rng.choice(pool)
                    if browser.private:
                        device = self._attacker(rng, keeps_cookies=0, scripted=scripted)
                    else:
                        device = browser
                    self._emit(
                        ts,
                        victim.name,
                        ip,
                        block.asn,
                        ua,
                        device,
                        "A1",
                        "vps_foreign" + self._listed(ip, block),
                        second_factor_ok=False,
                    )
                    made += 1
                    if rng.random() >= 0.45:
                        break
                    ts += rng.randint(600, 2 * DAY)  # the campaign retries the same credentials

    def _a2(self, rng: random.Random, victims: list[User], target: int) -> None:
        """Overseas residential proxies, a common browser UA."""
        made = 0
        while made < target:
            victim = rng.choice(victims)
            ts = self._attack_ts(rng, victim)
            for _ in range(2 if rng.random() < 0.3 else 1):
                if ts >= self.t_end or made >= target:
                    break
                ip, block = self._residential_proxy(rng, _weighted(rng, PROXY_COUNTRIES), listed=0.25)
                ua = common_ua(rng, self._date((ts - self.t0) // DAY))
                self._emit(
                    ts,
                    victim.name,
                    ip,
                    block.asn,
                    ua,
                    self._attacker(rng, keeps_cookies=0.2),
                    "A2",
                    "residential_foreign" + self._listed(ip, block),
                    second_factor_ok=False,
                )
                made += 1
                ts += rng.randint(300, DAY)

    def _a3(
        self, rng: random.Random, victims: list[User], target: int, history: dict[str, list[Event]]
    ) -> None:
        """The victim's exact UA string replayed from a VPS in Japan or abroad."""
        made = 0
        while made < target:
            victim = rng.choice(victims)
            ts = self._attack_ts(rng, victim)
            jp = rng.random() < 0.4
            block = rng.choice(self.world.hosting_jp if jp else self.world.hosting_foreign)
            device = self._attacker(rng, keeps_cookies=0.2)
            for _ in range(2 if rng.random() < 0.3 else 1):
                if ts >= self.t_end or made >= target:
                    break
                ip = block.host(rng)
                ua = self._victim_ua(victim, ts, history)
                tag = ("vps_jp" if jp else "vps_foreign") + self._listed(ip, block)
                self._emit(ts, victim.name, ip, block.asn, ua, device, "A3", tag, second_factor_ok=False)
                made += 1
                ts += rng.randint(300, DAY)

    def _a4(
        self, rng: random.Random, victims: list[User], target: int, history: dict[str, list[Event]]
    ) -> None:
        """A Japanese residential proxy on the victim's own ISP, near them, with the victim's UA."""
        made = 0
        while made < target:
            victim = rng.choice(victims)
            ts = self._attack_ts(rng, victim)
            home = victim.household.city
            isp = victim.household.isp
            device = self._attacker(rng, keeps_cookies=0.2)
            for _ in range(2 if rng.random() < 0.3 else 1):
                if ts >= self.t_end or made >= target:
                    break
                if isp is None:  # a mobile proxy on the victim's carrier
                    block = self._mobile(rng, victim.carrier, home, v6=False)
                    tag = "mobile_proxy"
                else:
                    roll = rng.random()
                    if roll < 0.6:
                        city, tag = home, "same_city"
                    else:
                        region = roll < 0.85
                        cities = [
                            c
                            for c in JP_CITIES
                            if (isp.key, c.name) in self.world.fixed
                            and c != home
                            and (c.region == home.region) == region
                        ]
                        city, tag = (
                            (rng.choice(cities), "same_region" if region else "other_region")
                            if cities
                            else (home, "same_city")
                        )
                    block = self._residential_jp(rng, isp.key, city.name)
                ip = block.host(rng)
                if rng.random() < 0.1:
                    self.world.proxy_ips.add(ip)
                ua = self._victim_ua(victim, ts, history)
                self._emit(
                    ts,
                    victim.name,
                    ip,
                    block.asn,
                    ua,
                    device,
                    "A4",
                    tag + self._listed(ip, block),
                    second_factor_ok=False,
                )
                made += 1
                ts += rng.randint(300, DAY)

    def _residential_jp(self, rng: random.Random, isp: str, city: str) -> Block:
        """A Japanese residential-proxy exit on ``isp`` in ``city``: mostly an IPv4 address, sometimes one of
        the ISP's IPv6 space (legitimate users there use both)."""
        if rng.random() < 0.25:
            return self.world.fixed_v6[(isp, city)]
        return rng.choice(self.world.fixed[(isp, city)])

    def _botnet_ip(self, rng: random.Random, used: set[str]) -> tuple[str, Block]:
        while True:
            roll = rng.random()
            if roll < 0.1:
                block = rng.choice(self.world.hosting_foreign + self.world.hosting_jp)
            elif roll < 0.12:
                block = rng.choice(self.world.tor)
            else:
                country = _weighted(rng, BOTNET_COUNTRIES)
                if country == "JP":
                    block = rng.choice(rng.choice(list(self.world.fixed.values())))
                else:
                    block = rng.choice(self.world.foreign_fixed[country])
            ip = block.host(rng)
            if ip not in used:
                used.add(ip)
                return ip, block

    def _a5(self, rng: random.Random, users: list[User], target: int) -> None:
        """Credential stuffing by a botnet: one try per address, mostly wrong passwords."""
        used: set[str] = set()
        made = 0
        while made < target:
            start = self.test_start + rng.randrange(max(1, self.config.test_days - 2) * DAY)
            end = min(self.t_end, start + rng.randint(6 * HOUR, 3 * DAY))
            opened = [u for u in users if self.t0 + u.first_day * DAY < start]
            if not opened:
                opened = users
            uas = [common_ua(rng, self._date((start - self.t0) // DAY), max_lag_days=300) for _ in range(15)]
            uas += list(AUTOMATION_UAS[:3])
            hits = min(target - made, rng.randint(20, 120))
            for k in range(hits * 16):
                user = rng.choice(opened)
                ts = rng.randrange(start, end)
                ip, block = self._botnet_ip(rng, used)
                correct = k % 16 == 0
                self._emit(
                    ts,
                    user.name,
                    ip,
                    block.asn,
                    rng.choice(uas),
                    self._attacker(rng, keeps_cookies=0, scripted=True),
                    "A5",
                    "botnet" + self._listed(ip, block),
                    password_ok=correct,
                    second_factor_ok=False,
                )
                made += correct

    def _a6(
        self, rng: random.Random, users: list[User], target: int, history: dict[str, list[Event]]
    ) -> None:
        """A real-time phishing relay: a login seconds after the victim's own, from another network."""
        candidates = [
            [e for e in history.get(u.name, []) if e.ts >= self.test_start and e.ts < self.t_end - 60]
            for u in users
        ]
        candidates = [c for c in candidates if c]
        for _ in range(target if candidates else 0):
            legit = rng.choice(rng.choice(candidates))
            while True:
                roll = rng.random()
                if roll < 0.45:
                    block, tag = rng.choice(self.world.hosting_jp), "relay_jp_hosting"
                elif roll < 0.7:
                    block, tag = rng.choice(self.world.hosting_foreign), "relay_foreign_hosting"
                else:
                    isp_key, city_name = rng.choice(list(self.world.fixed))
                    block, tag = self._residential_jp(rng, isp_key, city_name), "relay_jp_residential"
                if block.asn != legit.asn:
                    break
            ip = block.host(rng)
            self._emit(
                legit.ts + rng.randint(2, 60),
                legit.user,
                ip,
                block.asn,
                legit.ua,
                self._attacker(rng, keeps_cookies=0),
                "A6",
                tag + self._listed(ip, block),
                second_factor_ok=False,
            )

    def _a7(
        self, rng: random.Random, victims: list[User], target: int, history: dict[str, list[Event]]
    ) -> None:
        """Infostealer: malware copied the victim's browser cookies (authguard's device cookie among them)
        1-40 days earlier; the thief replays the cookie with that browser's user agent as it was at theft
        time, from a Japanese residential proxy in another city (often on another ISP)."""
        made = tries = 0
        fixed = sorted(self.world.fixed)
        while made < target and tries < 100 * target:
            tries += 1
            victim = rng.choice(victims)
            ts = self._attack_ts(rng, victim)
            theft = ts - rng.randint(DAY, 40 * DAY)
            events = history.get(victim.name, [])
            before = [
                e for e in events[: bisect.bisect_left([e.ts for e in events], theft)] if not e.device.private
            ]
            if not before:
                continue
            # Infostealers (RedLine, Lumma, Vidar...) run on Windows and macOS: the stolen browser is one of
            # the victim's computers (the most recently used); victims without one are not in this class.
            pcs = [e for e in before if e.device.kind in ("pc", "work_pc")]
            if not pcs:
                continue
            device = pcs[-1].device
            stolen = tuple(e for e in reversed(before) if e.device is device)[:40]
            ua = device.ua(self._date((theft - self.t0) // DAY))
            home = victim.household.city
            own = victim.household.isp
            for _ in range(2 if rng.random() < 0.3 else 1):
                if ts >= self.t_end or made >= target:
                    break
                if own is not None and rng.random() < 0.35:
                    keys = [k for k in fixed if k[0] == own.key and k[1] != home.name]
                else:
                    keys = [k for k in fixed if k[1] != home.name and (own is None or k[0] != own.key)]
                isp_key, city_name = rng.choice(keys)
                block = self._residential_jp(rng, isp_key, city_name)
                ip = block.host(rng)
                if rng.random() < 0.1:
                    self.world.proxy_ips.add(ip)
                tag = "stolen_cookie_same_isp" if own is not None and isp_key == own.key else "stolen_cookie"
                event = self._emit(
                    ts,
                    victim.name,
                    ip,
                    block.asn,
                    ua,
                    device,
                    "A7",
                    tag + self._listed(ip, block),
                    second_factor_ok=False,
                )
                event.stolen = stolen
                made += 1
                ts += rng.randint(300, DAY)

    def _a8(
        self, rng: random.Random, victims: list[User], target: int, history: dict[str, list[Event]]
    ) -> None:
        """Low and slow: one quiet login per victim (a second one weeks later for some) from a fixed line in
        the victim's home city (the victim's own ISP half the time), at an hour the victim usually signs
        in, with the victim's user agent (phished) or a common up-to-date one, without the cookie."""
        made = 0
        while made < target:
            victim = rng.choice(victims)
            home = victim.household.city
            own = victim.household.isp
            isps = self.world.isps_in(home)
            isp = own if own is not None and rng.random() < 0.5 else rng.choice(isps)
            device = self._attacker(rng, keeps_cookies=0.2)
            copy_ua = rng.random() < 0.6
            ts = self._attack_ts(rng, victim)
            for _ in range(2 if rng.random() < 0.25 else 1):
                if ts >= self.t_end or made >= target:
                    break
                mode = HOUR_MODES[rng.choices(range(len(HOUR_MODES)), victim.modes)[0]]
                day_start = self.t0 + ((ts - self.t0) // DAY) * DAY
                ts = max(ts, day_start + int((rng.gauss(*mode) % 24) * HOUR))
                if ts >= self.t_end:
                    break
                day = self._date((ts - self.t0) // DAY)
                ua = self._victim_ua(victim, ts, history) if copy_ua else common_ua(rng, day, max_lag_days=14)
                block = self._residential_jp(rng, isp.key, home.name)
                ip = block.host(rng)
                if rng.random() < 0.1:
                    self.world.proxy_ips.add(ip)
                tag = "home_city_own_isp" if isp is own else "home_city_other_isp"
                self._emit(
                    ts,
                    victim.name,
                    ip,
                    block.asn,
                    ua,
                    device,
                    "A8",
                    tag + self._listed(ip, block),
                    second_factor_ok=False,
                )
                made += 1
                ts += rng.randint(7 * DAY, 30 * DAY)

    def _controls(self, users: list[User]) -> None:
        """A household member signing in to the account from home, on the PC the user last signed in on."""
        rng = random.Random(f"{self.config.seed}:controls")
        count = max(1, round(self.config.users * self.config.controls_per_user))
        home_pc_logins: dict[str, list[Event]] = {}
        for event in sorted(self.events, key=lambda e: e.ts):
            pc = event.device.kind == "pc" and not event.device.private
            if (
                event.label == "legit"
                and event.second_factor_ok
                and pc
                and event.scenario in ("home", "home_v6")
            ):
                home_pc_logins.setdefault(event.user, []).append(event)
        by_name = {u.name: u for u in users}
        eligible = sorted(home_pc_logins)
        for _ in range(count if eligible else 0):
            user = by_name[rng.choice(eligible)]
            household = user.household
            ts = self._attack_ts(rng, user)
            earlier = [e for e in home_pc_logins[user.name] if e.ts < ts]
            if not earlier or household.isp is None:
                continue
            device = earlier[-1].device
            v6 = household.v6_share and rng.random() < household.v6_share
            ip = household.ipv6(ts) if v6 else household.ipv4(ts)
            ua = device.ua(self._date((ts - self.t0) // DAY))
            self._emit(ts, user.name, ip, household.isp.asn, ua, device, "control", "household")

    # -- output ------------------------------------------------------------------------------------------
    def generate(self) -> list[dict]:
        """Build everything and return the replay input lines (contract keys plus label keys), sorted."""
        self.users = self._make_users()
        for user in self.users:
            self._simulate(user)
        self._attacks(self.users)
        self._controls(self.users)
        if self.variants:
            from .variants import add_variants  # here: variants.py imports this module

            add_variants(self)
        return self._finish()

    def _finish(self) -> list[dict]:
        self.events.sort(key=lambda e: (e.ts, e.seq))
        rng = random.Random(f"{self.config.seed}:cookies")
        later_rng = random.Random(f"{self.config.seed}:cookies:later")
        variant_rng = random.Random(f"{self.config.seed}:cookies:variants")
        epochs: dict[tuple[Device, int], str] = {}
        # The cookie each successful legitimate login presented (what an infostealer can find in use).
        used: dict[int, str] = {}
        history: Counter[str] = Counter()
        known: dict[str, set[str]] = {}
        lines = []
        for event in self.events:
            device = event.device
            # A browser's first visit usually gets the cookie with the login page (a fresh id); automation
            # that posts directly presents none.
            no_cookie = 0.7 if device.scripted else 0.25
            draw = later_rng if event.label in _LATER_CLASSES else rng
            if event.label in VARIANT_CLASSES:
                draw = variant_rng
            if event.stolen:
                # The newest cookie the stolen browser presented on a successful login before the theft.
                presented = next((used[e.seq] for e in event.stolen if e.seq in used), None)
                if presented is None:
                    continue  # that browser never presented a cookie on a successful login: nothing stolen
            elif device.private:
                presented = None if draw.random() < no_cookie else _hex_id(draw)
            else:
                epoch = (device, bisect.bisect_right(device.clear_times, event.ts))
                if epoch in epochs:
                    presented = epochs[epoch]
                else:
                    epochs[epoch] = _hex_id(draw)
                    fresh = not (epoch[1] == 0 and device.established)
                    presented = None if fresh and draw.random() < no_cookie else epochs[epoch]
            scenario = event.scenario
            legitimate = event.label in ("legit", "control")
            success = event.password_ok and event.second_factor_ok is not False
            if legitimate and event.password_ok:
                seen = known.setdefault(event.user, set())
                if presented is None or presented not in seen:
                    scenario += "+unknown_device"
                if success and presented is not None:
                    seen.add(presented)
                    used[event.seq] = presented
            lines.append(
                {
                    "ts": dt.datetime.fromtimestamp(event.ts, JST).isoformat(),
                    "user": event.user,
                    "ip": event.ip,
                    "user_agent": event.ua,
                    "device_id": presented,
                    "password_ok": event.password_ok,
                    "second_factor_ok": event.second_factor_ok,
                    "label": event.label,
                    "phase": "test" if event.ts >= self.test_start else "history",
                    "history_size": history[event.user],
                    "scenario": scenario,
                }
            )
            if legitimate and success and event.password_ok:
                history[event.user] += 1
        return lines


def write_events(lines: Iterable[dict], path: str | Path) -> int:
    """Write replay input lines as JSONL; returns the number written."""
    count = 0
    with open(path, "w", encoding="utf-8") as out:
        for line in lines:
            out.write(json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n")
            count += 1
    return count


def summarize(lines: list[dict]) -> dict:
    """Counts of the dataset: users, logins by label and phase, and the hard cases among legitimate ones."""
    by_label: Counter[str] = Counter()
    legit_test = unknown = v6 = 0
    tags: Counter[str] = Counter()
    for line in lines:
        key = f"{line['label']}/{line['phase']}" + ("" if line["password_ok"] else "/failed")
        by_label[key] += 1
        if line["label"] == "legit" and line["phase"] == "test" and line["password_ok"]:
            legit_test += 1
            unknown += "+unknown_device" in line["scenario"]
            v6 += ":" in line["ip"]
            tags[line["scenario"].split("+")[0]] += 1
    return {
        "events": len(lines),
        "users": len({line["user"] for line in lines if line["label"] == "legit"}),
        "by_label": dict(sorted(by_label.items())),
        "legit_test_logins": legit_test,
        "legit_test_unknown_device_share": round(unknown / legit_test, 4) if legit_test else None,
        "legit_test_ipv6_share": round(v6 / legit_test, 4) if legit_test else None,
        "legit_test_networks": dict(tags.most_common()),
    }
