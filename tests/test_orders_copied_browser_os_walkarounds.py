"""Red team, round twenty-seven (b): the order guard against a patient thief.

The order guard lowers an account's limits for the trust week after a sign-in whose reasons name one of
``authguard.orders.exposure.CONTEXT_CHANGE_REASONS`` (matched as substrings). The attacks below go through the
demo portal's real JSON API (``/api/login``, ``/api/orders``) on the battery's simulated clock, with the real
risk engine and GeoIP.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from authguard.models import CampaignFlag, KnownDevice, LoginEvent
from demo_site.brokerage.management.commands.seed_demo import TANAKA
from demo_site.brokerage.models import Order, OrderStatus

from . import test_battery_exposure as battery
from .conftest import (
    IP_TOKYO,
    IP_TOKYO_2,
    UA_CHROME_WIN,
    UA_IPHONE,
    OrderApi,
    of_long_standing,
    settle_device,
)
from .test_battery_exposure import CHUNK, PASSWORD, PUMPED, PUMPED_DAILY, customer, sign_in, value
from .test_orders_first_device_walkarounds import LOWERED_SELL_SHARE, _buy_and_sell, _paid_for

start = battery.start
clock = battery.clock

#: Chrome of the same release as hers, on a Mac: the thief's own machine with her cookie jar loaded.
UA_CHROME_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)

#: The portal's other customers: their phones on NTT Docomo (Tokyo) and KDDI (Osaka).
POPULATION = 18


def _other_address(n: int) -> str:
    return f"203.0.113.{(130 if n % 2 else 70) + n // 2}"


def _home_browser(clock: Any, user: Any, *, days: int = 10, ua: str = UA_CHROME_WIN) -> OrderApi:
    """Tanaka's home Chrome on Windows (``ua``; OCN, Tokyo) of more than a year, signed in every day for
    ``days`` days, each session used. Infostealer malware copies the jar after her last sign-in (her newest
    cookie)."""
    of_long_standing(user)
    clock(-days)
    home = OrderApi(REMOTE_ADDR=IP_TOKYO, HTTP_USER_AGENT=ua)
    home.login(TANAKA.username, TANAKA.password)
    settle_device(home.client.cookies["authguard_device"].value, user, days=400)
    for day in range(-days + 1, 0):
        clock(day)
        sign_in(home, TANAKA.username, TANAKA.password)
        assert home.get("/api/portfolio").status_code == 200
    home.post("/api/logout")
    return home


# -- finding: her cookie in another browser ("sideways") is no change of context -----------------------------


@pytest.mark.battery(64)
@pytest.mark.django_db
@pytest.mark.usefixtures("geoip")
def test_her_cookie_in_the_thiefs_chrome_on_a_mac_gets_the_lowered_limits(clock: Any, tanaka: Any) -> None:
    """Infostealer malware copied Tanaka's home Chrome (Windows) cookie jar after her last sign-in. The thief
    loads it into his own Chrome of the same release on a Mac and signs in with the phished password from a
    residential proxy at another address of her ISP's /24 in Tokyo. The engine sees the cookie in another
    browser than the one it belongs to, ``device_user_agent_sideways`` (+40, no known-device discount), but
    the familiar network talks the score down to 39: allowed. The order guard does not read
    ``device_user_agent_sideways`` (no device is new either: the cookie's row is a year old), so the copy has
    the full limits: 9.9 % of the portfolio into the illiquid 5Z4A and 44 % of the holdings sold, no hold.
    Secure: a sign-in the engine scored as her cookie in a browser it never lived in lowers the limits like
    the other copies (``device_cookie_behind``, ``device_new_network``): the 5Z4A buy and every sell beyond a
    quarter are held."""
    home = _home_browser(clock, tanaka)
    clock(0)
    copy = OrderApi(REMOTE_ADDR=IP_TOKYO_2, HTTP_USER_AGENT=UA_CHROME_MAC)
    copy.client.cookies["authguard_device"] = home.client.cookies["authguard_device"].value
    copy.login(TANAKA.username, TANAKA.password)
    event = LoginEvent.objects.filter(user=tanaka).latest("id")
    assert (event.action, event.reasons) == ("allow", ["device_user_agent_sideways"]), (
        event.score,
        event.reasons,
    )
    assert event.score < 40
    assert not KnownDevice.objects.filter(user=tanaka, first_seen_at__gte=timezone.now() - timedelta(days=7))
    total = value(tanaka).total_value
    bought, sold_share, statuses = _buy_and_sell(copy, tanaka)
    paid = _paid_for(tanaka, "5Z4A")
    outcome = (bought, f"{paid / total:.1%} of the portfolio in 5Z4A", f"sold {sold_share:.1%}", statuses)
    # Secure: her cookie in another browser (family, OS or device type) lowers the account's limits.
    assert bought == "held" and paid == Decimal(0), outcome
    assert sold_share <= LOWERED_SELL_SHARE and "held" in statuses, outcome


@pytest.mark.battery(64)
@pytest.mark.django_db
@pytest.mark.usefixtures("geoip")
def test_her_cookie_in_the_thiefs_own_browser_across_nine_victims_flags_the_thin_stock(
    clock: Any, settings: Any
) -> None:
    """The same gap across victims (the 2025 gangs' pump): nine customers of long standing, each with her
    home Chrome on Windows (OCN, Tokyo). The gang loads an infostealer copy of each jar into its own Chrome on
    a Mac and signs in with her phished password from another address of her ISP's /24 (a residential proxy),
    one account every ten minutes (the portal's other customers sign in from their phones on other networks),
    every one allowed with ``device_user_agent_sideways`` only. Each buys two chunks of 320 shares of 7Z2A
    (4.9 % of its day each). None of the accounts counts as changed (nor "lately"), so the campaign's volume
    windows never see them, and the count rule wants ten accounts: 89 % of a day's traded value is bought, no
    flag. Secure: as with the copies on other networks (round twenty-five), the third buyer flags the stock
    and the buys stop near a tenth of a day's value."""
    settings.ADMINS = [("Security desk", "desk@demo-broker.example")]
    victims = []
    for n in range(9):
        clock(-11, hours=n / 60)
        user = of_long_standing(customer(f"rt27bv{n}", cash=6_000_000, holdings={}, home_device=False))
        victims.append(user)
    homes = []
    for n, user in enumerate(victims):
        clock(-10, hours=n / 60)
        home = OrderApi(REMOTE_ADDR=f"203.0.113.{30 + n}", HTTP_USER_AGENT=UA_CHROME_WIN)  # her OCN line
        home.login(user.username, PASSWORD)
        settle_device(home.client.cookies["authguard_device"].value, user, days=400)
        homes.append(home)
    # The portal's other customers, on other networks (a Tokyo OCN line is not the whole population).
    others = []
    for n in range(POPULATION):
        clock(-10, hours=1 + n / 60)
        user = of_long_standing(customer(f"rt27bo{n}", cash=1_000_000, holdings={}, home_device=False))
        other = OrderApi(REMOTE_ADDR=_other_address(n), HTTP_USER_AGENT=UA_IPHONE)
        other.login(user.username, PASSWORD)
        others.append((user, other))
    for day in range(-9, 0):
        for n, (user, home) in enumerate(zip(victims, homes, strict=True)):
            clock(day, hours=n / 60)
            sign_in(home, user.username)
            assert home.get("/api/portfolio").status_code == 200
        for n, (user, other) in enumerate(others):
            clock(day, hours=1 + n / 60)
            sign_in(other, user.username)
    for home in homes:
        home.post("/api/logout")
    statuses = []
    for n, (user, home) in enumerate(zip(victims, homes, strict=True)):
        clock(0, hours=n / 6)
        copy = OrderApi(REMOTE_ADDR=f"203.0.113.{50 + n}", HTTP_USER_AGENT=UA_CHROME_MAC)  # OCN, her /24
        copy.client.cookies["authguard_device"] = home.client.cookies["authguard_device"].value
        sign_in(copy, user.username)
        action, reasons = LoginEvent.objects.filter(user=user).values_list("action", "reasons").latest("id")
        assert (action, reasons) == ("allow", ["device_user_agent_sideways"]), (n, action, reasons)
        for _chunk in range(2):
            statuses.append(copy.order("buy", PUMPED, CHUNK).json()["status"])
    bought = sum(
        (o.amount_jpy for o in Order.objects.filter(instrument__symbol=PUMPED, status=OrderStatus.PLACED)),
        Decimal(0),
    )
    outcome = (statuses, f"placed {bought / PUMPED_DAILY:.0%} of a day's value")
    # Secure: the gang's copies are counted as taken-over accounts; the stock is flagged early.
    assert CampaignFlag.objects.filter(symbol=PUMPED, active=True).exists(), outcome
    assert bought <= Decimal("0.15") * PUMPED_DAILY, outcome


# -- finding: her phone's cookie on her home line's ISP scores no reason at all -----------------------------


def _pc_and_phone(clock: Any, user: Any, settings: Any, *, signals: Any = None) -> tuple[OrderApi, OrderApi]:
    """Tanaka's two devices of more than a year: her home Chrome on OCN and her iPhone on NTT Docomo, both in
    Tokyo, each signed in every day for nine days (the phone never on her home line)."""
    from authguard.conf import DEFAULT_RISK_SIGNALS

    from .conftest import IP_DOCOMO

    of_long_standing(user)
    # Her two devices, there long before authguard (their first sign-ins taught the profile, unscored).
    settings.AUTHGUARD_RISK_SIGNALS = []
    clock(-10)
    home = OrderApi(REMOTE_ADDR=IP_TOKYO, HTTP_USER_AGENT=UA_CHROME_WIN)
    home.login(TANAKA.username, TANAKA.password)
    settle_device(home.client.cookies["authguard_device"].value, user, days=400)
    phone = OrderApi(REMOTE_ADDR=IP_DOCOMO, HTTP_USER_AGENT=UA_IPHONE)
    phone.login(TANAKA.username, TANAKA.password)
    settle_device(phone.client.cookies["authguard_device"].value, user, days=400)
    settings.AUTHGUARD_RISK_SIGNALS = signals or DEFAULT_RISK_SIGNALS
    for day in range(-9, 0):
        clock(day)
        sign_in(home, TANAKA.username, TANAKA.password)
        clock(day, hours=10)
        sign_in(phone, TANAKA.username, TANAKA.password)
    phone.post("/api/logout")
    return home, phone


@pytest.mark.battery(64)
@pytest.mark.django_db
@pytest.mark.usefixtures("geoip")
def test_a_copy_of_her_phone_on_her_home_lines_isp_gets_the_lowered_limits(
    clock: Any, tanaka: Any, settings: Any
) -> None:
    """The mirror of round twenty-six's copy of her PC on her phone's carrier. Tanaka's iPhone has signed in
    on NTT Docomo only; her home PC on OCN. Malware copied the phone's cookie jar. The thief replays it with
    the phished password and the iPhone's user agent from a residential proxy at another address of her home
    line's /24 (OCN, Tokyo). The phone never used OCN, so the engine finds ``device_new_network`` on a
    network another of her devices uses (``device_new_network_known_to_account``: 1 point, "never 0" so that
    the order guard sees it), but a phone's points are cut to a quarter (``portable_factor``) and round(0.25)
    is 0: the finding has no points, the login no reason at all, score 0, allowed. The order guard sees no
    change: 9.9 % of the portfolio into the illiquid 5Z4A and 44 % of the holdings sold, no hold. Secure: a
    known device on a network it never signed in from changes the context for a phone too (the 5Z4A buy and
    every sell beyond a quarter are held), as docs/order-guard.md promises for ``device_new_network``."""
    _home, phone = _pc_and_phone(clock, tanaka, settings)
    clock(1)
    copy = OrderApi(REMOTE_ADDR=IP_TOKYO_2, HTTP_USER_AGENT=UA_IPHONE)
    copy.client.cookies["authguard_device"] = phone.client.cookies["authguard_device"].value
    copy.login(TANAKA.username, TANAKA.password)
    event = LoginEvent.objects.filter(user=tanaka).latest("id")
    assert (event.action, event.as_org, event.device_hash) == (
        "allow",
        "NTT Communications (OCN)",
        _hash(phone),
    )
    assert not KnownDevice.objects.filter(user=tanaka, first_seen_at__gte=timezone.now() - timedelta(days=7))
    total = value(tanaka).total_value
    bought, sold_share, statuses = _buy_and_sell(copy, tanaka)
    paid = _paid_for(tanaka, "5Z4A")
    outcome = (
        (event.score, event.reasons),
        bought,
        f"{paid / total:.1%} of the portfolio in 5Z4A",
        f"sold {sold_share:.1%}",
        statuses,
    )
    # Secure: her phone's cookie on a network her phone never used lowers the account's limits.
    assert bought == "held" and paid == Decimal(0), outcome
    assert sold_share <= LOWERED_SELL_SHARE and "held" in statuses, outcome


def _hash(browser: OrderApi) -> str:
    from authguard.risk.context import device_hash, device_id_from_cookie

    return device_hash(device_id_from_cookie(browser.client.cookies["authguard_device"].value))


# -- finding: her live session copied into another OS's browser is no material move -------------------------


@pytest.mark.battery(64)
@pytest.mark.django_db
@pytest.mark.usefixtures("geoip")
def test_her_live_session_copied_into_the_thiefs_chrome_on_a_mac_is_re_scored_and_gets_the_lowered_limits(
    clock: Any, tanaka: Any
) -> None:
    """The same thief copies the whole jar while Tanaka is signed in at home (her session cookie too) and
    replays it an hour later from his own Chrome on a Mac at another address of her /24, without signing in.
    The session binding compares the network, country, device cookie and the browser *family* only
    (``sessions.state.current_binding``'s ``br``): Chrome on Windows and Chrome on macOS are both "Chrome", so
    the move is not material and the session is rebound without a re-score, although the risk engine calls
    that very change a copy (``device_user_agent_sideways``: a browser's cookie never moves to another OS).
    The guard sees her own allowed session at home: 9.9 % of the portfolio into 5Z4A and 44 % of the holdings
    sold, no hold. Secure: another OS or device type under her session is material, the session is
    re-scored (39, allowed, rebound; no login event) and the guard counts it as re-scored for its 24 hours:
    the 5Z4A buy and every sell beyond a quarter of the holdings are held."""
    home = _home_browser(clock, tanaka)
    clock(0)
    sign_in(home, TANAKA.username, TANAKA.password)
    assert home.get("/api/portfolio").status_code == 200
    events = LoginEvent.objects.filter(user=tanaka).count()
    clock(0, hours=1)
    copy = OrderApi(REMOTE_ADDR=IP_TOKYO_2, HTTP_USER_AGENT=UA_CHROME_MAC)
    for name, morsel in home.client.cookies.items():
        copy.client.cookies[name] = morsel.value
    copy.token = home.token
    assert copy.get("/api/portfolio").status_code == 200  # still signed in (re-scored and allowed at most)
    assert LoginEvent.objects.filter(user=tanaka).count() == events  # no step-up asked, no event
    total = value(tanaka).total_value
    bought, sold_share, statuses = _buy_and_sell(copy, tanaka)
    paid = _paid_for(tanaka, "5Z4A")
    outcome = (bought, f"{paid / total:.1%} of the portfolio in 5Z4A", f"sold {sold_share:.1%}", statuses)
    assert bought == "held" and paid == Decimal(0), outcome
    assert sold_share <= LOWERED_SELL_SHARE and "held" in statuses, outcome


# -- held ----------------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.usefixtures("geoip")
def test_an_order_the_portal_checks_without_a_request_gets_the_lowered_limits(
    clock: Any, tanaka: Any
) -> None:
    """HELD: a portal's server-side path (a standing-order job, an OMS bridge) calls the guard's public API
    with ``request=None`` for a long-standing customer whose context never changed. Without a session there
    is no evidence of a safe one: the guard treats it as an unknown session (fail closed), so a 9.9 % buy of
    the illiquid 5Z4A and a sell of 30 % of the holdings are both refused the full limits."""
    from authguard import orders
    from demo_site.brokerage import services

    home = _home_browser(clock, tanaka)
    clock(0)
    sign_in(home, TANAKA.username, TANAKA.password)  # her own, allowed: the account has the full limits
    total = value(tanaka).total_value
    quantity = int(Decimal("0.099") * total // 1050)
    draft = services.validate_order(tanaka, side="buy", symbol="5Z4A", quantity=quantity)
    decision = orders.check_order(
        None, services.order_intent(tanaka, draft), user=tanaka, instrument=services.instrument_info(draft)
    )
    assert not decision.allowed and "risky_session_illiquid_buy" in decision.reasons, decision.reasons
    sells, sold = [], Decimal(0)
    for holding in sorted(value(tanaka).holdings, key=lambda h: -h.value_jpy):
        if sold + holding.value_jpy <= Decimal("0.30") * value(tanaka).holdings_value:
            sells.append((holding.symbol, holding.quantity))
            sold += holding.value_jpy
    assert sold > Decimal("0.2525") * value(tanaka).holdings_value
    for symbol, quantity in sells:
        draft = services.validate_order(tanaka, side="sell", symbol=symbol, quantity=quantity)
        decision = orders.check_order(
            None,
            services.order_intent(tanaka, draft),
            user=tanaka,
            instrument=services.instrument_info(draft),
        )
        if not decision.allowed:
            break
        # Her own session places it (full limits); the request-less check sees it in the window next time.
        assert home.order("sell", symbol, quantity).json()["status"] == "placed"
    assert not decision.allowed and "risky_session_sell" in decision.reasons, decision.reasons
