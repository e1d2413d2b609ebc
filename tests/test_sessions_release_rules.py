"""The session binding's browser-release rules (``authguard.sessions.places``): browsers update forwards, and
where they run."""

from __future__ import annotations

import pytest

from authguard.sessions.places import (
    is_material_change,
    place_binding,
    release_change,
    returned_browser,
    same_address,
    same_line,
    went_back,
)

BR = "Chrome|Windows|pc"


@pytest.mark.parametrize(
    ("release", "than", "change"),
    [
        ("131", "131", "same"),
        ("133", "131", "newer"),
        ("130", "131", "older"),
        ("18.0", "18.1", "older"),
        ("18.2", "18.1", "newer"),
        ("18", "18.1", "older"),  # (18,) < (18, 1): the kit's bare major is older
        ("", "18.1", "older"),  # no release at all against one that parses: not her update
        (None, "131", "older"),
        ("x.y", "131", "older"),
        ("131", None, "same"),  # a binding written before ``rel``: nothing to compare with
        ("131", "", "same"),
    ],
)
def test_release_change_compares_parsed_releases_and_calls_an_unparsed_one_older(
    release: object, than: object, change: str
) -> None:
    assert release_change(release, than) == change


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("203.0.113.10", "203.0.113.10", True),
        ("203.0.113.10", "203.0.113.20", False),  # her /24 is her ISP's, not her line
        ("2001:db8:1:2::10", "2001:db8:1:2:abcd::99", True),  # one /64: privacy addresses rotate
        ("2001:db8:1:2::10", "2001:db8:1:3::10", False),
        ("203.0.113.10", "2001:db8::1", False),
        ("203.0.113.10", None, False),
        ("not an address", "203.0.113.10", False),
    ],
)
def test_same_address_is_one_ipv4_address_or_one_ipv6_64(a: object, b: object, same: bool) -> None:
    assert same_address(a, b) is same


def _binding(ip: str, rel: str, br: str = BR) -> dict[str, object]:
    return {"ip": ip, "asn": 4713, "cc": "JP", "dev": "d1", "br": br, "rel": rel, "pl": [35.68, 139.76, 5]}


def test_her_browser_updating_at_the_bound_address_is_no_material_change() -> None:
    assert not is_material_change(_binding("203.0.113.10", "131"), _binding("203.0.113.10", "133"))
    assert not is_material_change(
        _binding("2001:db8:1:2::10", "131"), _binding("2001:db8:1:2:abcd::99", "133")
    )


def test_a_newer_release_at_another_address_of_her_network_is_material() -> None:
    assert is_material_change(_binding("203.0.113.10", "131"), _binding("203.0.113.20", "133"))


def test_an_older_or_unparsed_release_is_material_even_at_the_bound_address() -> None:
    assert is_material_change(_binding("203.0.113.10", "131"), _binding("203.0.113.10", "130"))
    assert is_material_change(_binding("203.0.113.10", "18.1"), _binding("203.0.113.10", ""))


def test_went_back_is_the_same_browser_at_an_older_release_than_the_sessions_own() -> None:
    assert went_back(_binding("203.0.113.20", "133"), _binding("203.0.113.10", "131"))
    assert not went_back(_binding("203.0.113.10", "131"), _binding("203.0.113.10", "133"))
    assert not went_back(_binding("203.0.113.10", "131"), _binding("203.0.113.10", "131"))
    # Another browser altogether is the engine's to judge (device_user_agent_sideways), not a step back.
    assert not went_back(
        _binding("203.0.113.10", "133"), _binding("203.0.113.10", "120", "Firefox|Windows|pc")
    )
    # A binding written before ``rel`` proves nothing.
    assert not went_back({"br": BR}, _binding("203.0.113.10", "120"))


def test_same_line_is_one_address_or_one_of_each_family() -> None:
    assert same_line("203.0.113.10", "203.0.113.10")
    assert same_line("203.0.113.10", "2001:db8:40:1::5")  # a dual-stack line's two sides
    assert not same_line("203.0.113.10", "203.0.113.20")
    assert not same_line("2001:db8:40:1::5", "2001:db8:40:2::5")
    assert not same_line("203.0.113.10", None)


WIN, MAC, TABLET, DESKTOP_SITE = (
    "Chrome|Windows|pc",
    "Chrome|Mac OS X|pc",
    "Chrome|Android|tablet",
    "Chrome|Linux|pc",
)


def _bound_to(state: dict[str, object], browser: str, *, vouched: bool) -> None:
    place_binding(state, {**_binding("203.0.113.10", "131", browser), "ip": "203.0.113.10"}, verified=vouched,
                  vouched=vouched)  # fmt: skip


def test_a_session_back_in_a_browser_it_left_is_two_browsers_until_she_vouched_for_both() -> None:
    state: dict[str, object] = {}
    _bound_to(state, WIN, vouched=True)  # her sign-in
    _bound_to(state, MAC, vouched=False)  # the copy: re-scored, allowed
    assert returned_browser(state, {"br": MAC}, {"br": WIN})  # her next request: held
    assert not returned_browser(
        state, {"br": MAC}, {"br": "Firefox|Windows|pc"}
    )  # a first sight: scored only
    _bound_to(state, WIN, vouched=True)  # her step-up in her own browser
    assert returned_browser(state, {"br": WIN}, {"br": MAC})  # the copy back: held again


def test_her_tablet_flipping_to_its_desktop_site_is_held_once_per_browser_and_then_not() -> None:
    state: dict[str, object] = {}
    _bound_to(state, TABLET, vouched=True)
    _bound_to(state, DESKTOP_SITE, vouched=False)  # the first flip: re-scored (another OS)
    assert returned_browser(state, {"br": DESKTOP_SITE}, {"br": TABLET})  # back: held, she steps up
    _bound_to(state, TABLET, vouched=True)
    assert returned_browser(state, {"br": TABLET}, {"br": DESKTOP_SITE})  # the desktop site again: held once
    _bound_to(state, DESKTOP_SITE, vouched=True)  # her step-up there
    assert not returned_browser(state, {"br": DESKTOP_SITE}, {"br": TABLET})
    assert not returned_browser(state, {"br": TABLET}, {"br": DESKTOP_SITE})


def test_a_binding_written_before_the_browser_list_holds_nothing() -> None:
    assert not returned_browser({}, {"br": WIN}, {"br": MAC})
    assert not returned_browser({"bs": "garbage"}, {"br": WIN}, {"br": MAC})
