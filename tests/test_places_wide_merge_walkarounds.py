"""The re-score's travel reference (``rescoring._measure_from_the_farthest``, ``places.known_seen``) against a
copy of hanako's whole cookie jar (no password), and her own journeys (red team, round fifty-three).

The reference is any precise, non-anonymous place left in ``state["h"]``. ``h`` keeps one entry per place:
a new entry removes every earlier one that is "the same place" (``places._same_place``: same ASN, both
precise, under 30 km apart *after both accuracy radii*). Two radii of 100 km make places 230 km apart one
place, and a 100 km radius next to her 10 km one makes 140 km one place. Fixed: a newer visit replaces an
entry only when it says where it was at least as precisely (``places._covers``).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.test import Client

from authguard.models import LoginEvent, Outcome
from authguard.sessions import places
from authguard.testing import write_geoip_databases

from .conftest import IP_TOKYO, TEST_NETWORKS
from .test_sessions_binding_anchor import (
    DOCOMO,
    EXTRA,
    OCN,
    OCN_NAGOYA,
    OCN_OSAKA,
    OCN_UNPLACED,
    START,
    _at,
    _jar,
    _signed_in_after,
    _state,
    _use,
    hanako,  # noqa: F401
)

pytestmark = [pytest.mark.django_db]

#: As round 52's test: an OCN block GeoIP places near Toyohashi with a 100 km radius (225 km from Tokyo).
OCN_WIDE = "203.0.102.9"
#: An OCN block GeoIP places near Numazu with a 100 km radius (about 100 km from Tokyo, 140 km from
#: Toyohashi): "the same place" as her Tokyo (100 - 110 < 30) and as the Toyohashi block (140 - 200 < 30).
OCN_NUMAZU_WIDE = "203.0.101.9"
#: Her phone's carrier, placed with a 100 km radius in Shizuoka (145 km from Tokyo: 35 km once the radii are
#: subtracted, under the travel rule's 100 km) and in Tokyo.
DOCOMO_SHIZUOKA_WIDE = "203.0.100.9"
NETS = [
    *TEST_NETWORKS,
    *EXTRA,
    _at("203.0.102.0/24", "Toyohashi", 34.7692, 137.3915, 100, OCN),
    _at("203.0.101.0/24", "Numazu", 35.0956, 138.8636, 100, OCN),
    _at("203.0.100.0/24", "Shizuoka", 34.9756, 138.3828, 100, DOCOMO),
    # Her employer's VPN egress (not named a VPN by GeoIP), in its Nagoya data centre.
    _at("203.0.98.0/24", "Nagoya", 35.1815, 136.9066, 10, dict(OCN, asn=64500, as_org="Her employer")),
]
OFFICE_VPN_NAGOYA = "203.0.98.9"


@pytest.fixture(scope="session")
def wide_geoip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_geoip_databases(tmp_path_factory.mktemp("wide-places"), NETS)


@pytest.fixture
def seasoned(hanako: Any, settings: Any, wide_geoip_dir: Path) -> Iterator[tuple[Any, Client]]:  # noqa: F811
    """As round 52's: twelve daily sign-ins at home in Tokyo and in Nagoya (OCN), then signed in at home."""
    settings.AUTHGUARD_GEOIP_PATH = str(wide_geoip_dir)
    traveller = time_machine.travel(START - timedelta(days=21), tick=False)
    t = traveller.start()
    yield t, _signed_in_after(t, [IP_TOKYO, IP_TOKYO, OCN_NAGOYA] * 4)
    traveller.stop()


def _her_morning(t: Any, home: Client) -> None:
    for _ in range(3):
        t.shift(timedelta(minutes=10))
        assert _use(home) == 200


def _known(state: dict[str, Any]) -> list[list[Any]]:
    return [e[2:5] for e in state.get("h", []) if e[4] is not None and e[4] < 150 and not e[5]]


def test_a_copy_that_merges_her_tokyo_place_away_is_still_measured_from_her_call(
    seasoned: tuple[Any, Client], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Secure: the copy's call from Osaka a minute after her call from Tokyo is held for travel (400 km in a
    minute), whatever addresses of her ISP it went through first. Her place must stay a reference until she
    leaves it in her own time, or a thief with her cookie jar picks where travel is measured from again.

    The copy hops, ten seconds apart, through an unplaced OCN address, an OCN block placed at Numazu with a
    100 km radius, the unplaced address again, and the Toyohashi block of round 52 (each no material move:
    never scored). Numazu is "the same place" as her Tokyo once both radii are subtracted, so its entry
    REPLACES hers in ``h`` (``_kept_places``); Toyohashi is "the same place" as Numazu (two 100 km radii),
    so it replaces that one. Osaka's re-score finds one reference, Toyohashi (65 km after the radii): no
    impossible_travel, the round-52 walk-around again."""
    # This fixture's Numazu and Toyohashi /24s share a /22, so the return rule (round sixty-five,
    # address_returns.returned_address) would hold the copy at its fourth hop already; /24 blocks keep the
    # travel measured.
    monkeypatch.setattr(places, "IPV4_BLOCK", 24)
    t, home = seasoned
    _her_morning(t, home)
    for ip in [OCN_UNPLACED, OCN_NUMAZU_WIDE, OCN_UNPLACED, OCN_WIDE]:
        t.shift(timedelta(seconds=10))
        assert _use(_jar(home, ip)) == 200  # free hops: no material move, never scored
    state = _state(home)
    assert state["r"] is False
    assert [35.6895, 139.6917, 10] in _known(state), state["h"]  # her Tokyo place stays (it was merged away)
    t.shift(timedelta(seconds=20))
    code = _use(_jar(home, OCN_OSAKA))
    event = LoginEvent.objects.order_by("pk").last()
    reasons = event.reasons if event is not None else []
    state = _state(home)
    seen = (code, state.get("s"), state.get("r"), event and (event.ip, event.outcome, event.score), reasons)
    assert code != 200 and state["s"] != "verified", seen
    assert "impossible_travel" in reasons, reasons


def _journey(t: Any, phone: Client, plan: list[tuple[int, str]], totp: Any) -> tuple[Client, list[int]]:
    """Her one browser at each ``(seconds later, ip)``, stepping up with ``totp`` wherever she is asked."""
    from .conftest import totp_token

    codes = []
    for seconds, ip in plan:
        t.shift(timedelta(seconds=seconds))
        here = _jar(phone, ip)
        codes.append(_use(here))
        if codes[-1] == 401:
            t.shift(timedelta(seconds=31))
            assert here.post("/authguard/step-up/totp/", {"code": totp_token(totp)}).status_code == 302
            assert _use(here) == 200
        phone = here
    return phone, codes


def _travel_events() -> list[tuple[str, list[str]]]:
    return [(e.ip, e.reasons) for e in LoginEvent.objects.order_by("pk") if "impossible_travel" in e.reasons]


def test_held_her_phone_between_wi_fi_and_a_widely_placed_carrier_then_a_shinkansen_to_osaka(
    hanako: Any,  # noqa: F811
    settings: Any,
    wide_geoip_dir: Path,
) -> None:
    """Her phone flips between home Wi-Fi (OCN Tokyo) and her carrier, which GeoIP places in Shizuoka with a
    100 km radius, then she takes the shinkansen and calls on the carrier on the way, from Nagoya station
    Wi-Fi and from her Osaka hotel: never a false impossible_travel, never ended (she steps up where the
    two-places rule asks, as before this change)."""
    settings.AUTHGUARD_GEOIP_PATH = str(wide_geoip_dir)
    traveller = time_machine.travel(START - timedelta(days=21), tick=False)
    t = traveller.start()
    try:
        phone = _signed_in_after(
            t, [IP_TOKYO, DOCOMO_SHIZUOKA_WIDE, OCN_NAGOYA, OCN_OSAKA] * 3, totp=hanako.totp
        )
        plan = [(60, DOCOMO_SHIZUOKA_WIDE), (60, IP_TOKYO), (60, DOCOMO_SHIZUOKA_WIDE), (60, IP_TOKYO)]
        plan += [(25 * 60, DOCOMO_SHIZUOKA_WIDE), (60 * 60, DOCOMO_SHIZUOKA_WIDE)]  # on the train
        plan += [(35 * 60, OCN_NAGOYA), (5 * 60, DOCOMO_SHIZUOKA_WIDE), (50 * 60, OCN_OSAKA)]
        _journey(t, phone, plan, hanako.totp)
        assert _travel_events() == []
        assert LoginEvent.objects.filter(outcome=Outcome.REFUSED).count() == 0
    finally:
        traveller.stop()


def test_held_her_dual_stack_line_and_phone_across_a_morning(
    hanako: Any,  # noqa: F811
    settings: Any,
    wide_geoip_dir: Path,
) -> None:
    """Her laptop at home flips between her line's IPv4 (OCN Tokyo) and IPv6 (IIJ, placed in Tsukuba), her
    tethered phone (carrier placed in Shizuoka, 100 km radius) between: no impossible_travel."""
    from .test_sessions_binding_anchor import IIJ_V6_TSUKUBA, OCN_TOKYO_V6

    settings.AUTHGUARD_GEOIP_PATH = str(wide_geoip_dir)
    traveller = time_machine.travel(START - timedelta(days=21), tick=False)
    t = traveller.start()
    try:
        laptop = _signed_in_after(t, [IP_TOKYO, IIJ_V6_TSUKUBA, DOCOMO_SHIZUOKA_WIDE] * 4, totp=hanako.totp)
        plan = [(40, IIJ_V6_TSUKUBA), (40, IP_TOKYO), (40, OCN_TOKYO_V6), (300, DOCOMO_SHIZUOKA_WIDE)]
        plan += [(60, IIJ_V6_TSUKUBA), (60, DOCOMO_SHIZUOKA_WIDE), (60, IP_TOKYO), (60, IIJ_V6_TSUKUBA)]
        _journey(t, laptop, plan, hanako.totp)
        assert _travel_events() == []
    finally:
        traveller.stop()


def test_held_her_laptop_at_home_tethered_then_on_her_employers_vpn(
    hanako: Any,  # noqa: F811
    settings: Any,
    wide_geoip_dir: Path,
) -> None:
    """She works from home in Tokyo through her employer's VPN (egress placed in Nagoya, 260 km), which she
    signed in through on most days. Home Wi-Fi drops: she tethers her phone (carrier placed in Shizuoka with
    a 100 km radius) for five minutes, then switches the VPN on: each step re-scored and allowed, never
    held."""
    settings.AUTHGUARD_GEOIP_PATH = str(wide_geoip_dir)
    traveller = time_machine.travel(START - timedelta(days=21), tick=False)
    t = traveller.start()
    try:
        laptop = _signed_in_after(
            t, [IP_TOKYO, OFFICE_VPN_NAGOYA, DOCOMO_SHIZUOKA_WIDE] * 4, totp=hanako.totp
        )
        plan = [(600, IP_TOKYO), (60, DOCOMO_SHIZUOKA_WIDE), (300, OFFICE_VPN_NAGOYA)]
        _, codes = _journey(t, laptop, plan, hanako.totp)
        assert codes == [200, 200, 200] and _travel_events() == [], codes
    finally:
        traveller.stop()
