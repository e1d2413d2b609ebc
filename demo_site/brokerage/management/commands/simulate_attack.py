"""``manage.py simulate_attack``: replay the 2025 account-takeover story against the demo, step by step.

The story of the news: a customer's password is phished; the thief signs in from a VPS abroad, then through
a Japanese residential proxy, sells nearly everything and buys an illiquid small cap with the proceeds (whose
price the gang has pumped). Here every step goes through the demo's real views with Django's test ``Client``,
over the JSON API exactly as a browser or a bot would, and the command prints what authguard did and why.

It needs the demo data (``seed_demo``; run at once if missing) and the demo GeoIP databases
(``build_demo_geoip``; the login steps then say "unknown network" without them). Tanaka's portfolio is put
back to the documented one first (``seed_demo --reset``), so the story can be replayed any number of times;
``--dry-run`` rolls everything back at the end, otherwise the held orders, login events and notifications stay
for the admin console.

``--patient`` replays the patient attacker of issue 11 instead, on a simulated clock (``time-machine``): a
thief with the password, a clean home line in Tokyo and a browser string one patch build away from Tanaka's
buys the pumped small cap *first*, in chunks each just under the per-order limit, and sells the large caps up
to the limit every day for four days, waiting for the 24-hour window to roll. The order guard adds it all up
over days (the account's exposure) and holds it.
"""

from __future__ import annotations

import io
import json
import logging
import time
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.test import Client
from django.test.utils import override_settings
from django.utils import timezone

from authguard.conf import app_settings
from authguard.models import HeldOrder, LoginEvent, Notification, PasskeyDevice
from authguard.orders import guard as guard_orders
from authguard.sessions import state as sessions_state
from authguard.testing import SoftAuthenticator, mail_settings
from demo_site.brokerage import services
from demo_site.brokerage.management.commands.seed_demo import TANAKA
from demo_site.brokerage.models import Account

#: Where each actor is, from the demo GeoIP plan (docs/demo.md).
HOME_TOKYO = "192.0.2.1"  # NTT OCN home fibre, Tokyo
VPS_SINGAPORE = "203.0.113.1"  # DigitalOcean, Singapore
PROXY_TOKYO = "198.51.100.65"  # a residential proxy that looks like a KDDI home line
UA_TANAKA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
UA_THIEF_VPS = "python-requests/2.32.3"
PUMPED = "7Z2A"  # Minato Precision Parts (fictional): about ¥5.5 million traded on an average day
PUMPED_PRICE = Decimal(845)
#: The patient thief's chunk: 320 shares, ¥270,400, 4.9 % of a day's traded value (the per-order limit: 5 %).
CHUNK = 320
#: A clean home line in Tokyo on Tanaka's own provider (NTT OCN), and Chrome one patch build away from his.
CLEAN_TOKYO = "192.0.2.40"
UA_PATIENT = UA_TANAKA.replace("Chrome/131.0.0.0", "Chrome/131.0.0.1")
#: Names of the passkeys the story registers (a replay removes them first).
TANAKA_PASSKEY = "Home PC (simulate_attack)"
THIEF_PASSKEY = "Thief's phone (simulate_attack)"


class _Rollback(Exception):
    pass


class Browser:
    """One browser at one address: JSON API calls with the CSRF token, through the demo's proxy setup."""

    def __init__(self, ip: str, user_agent: str) -> None:
        self.ip = ip
        # The demo trusts loopback as its reverse proxy (AUTHGUARD_TRUSTED_PROXIES): the client address goes
        # in X-Forwarded-For as a load balancer would put it. Elsewhere the address is used directly.
        proxied = "127.0.0.1/32" in getattr(settings, "AUTHGUARD_TRUSTED_PROXIES", [])
        meta = {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": ip} if proxied else {"REMOTE_ADDR": ip}
        self.client = Client(enforce_csrf_checks=True, HTTP_USER_AGENT=user_agent, **meta)
        self.token = self.client.get("/api/csrf").json()["csrf_token"]

    def post(self, path: str, body: Any = None) -> tuple[int, dict[str, Any]]:
        response = self.client.post(
            path, data=json.dumps(body or {}), content_type="application/json", HTTP_X_CSRFTOKEN=self.token
        )
        data = response.json() if response.get("Content-Type") == "application/json" else {}
        self.token = data.get("csrf_token", self.token)
        return response.status_code, data


class Command(BaseCommand):
    help = "Replay a phished-password account takeover against the demo and show what authguard did."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="Roll everything back at the end.")
        parser.add_argument(
            "--patient",
            action="store_true",
            help="The patient attacker: small-cap chunks first, then selling up to the limit for four days.",
        )

    def handle(self, *args: Any, dry_run: bool = False, patient: bool = False, **options: Any) -> None:
        self.step_no = 0
        # authguard's own log lines would interleave with the story; the story prints what they say.
        loggers = [logging.getLogger(name) for name in ("authguard", "django.request")]
        levels = [logger.level for logger in loggers]
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        try:
            # The held-order mails go to the outbox (the admin shows them), not all over this story.
            with override_settings(**mail_settings("django.core.mail.backends.locmem.EmailBackend")):
                self._run(dry_run=dry_run, patient=patient)
        finally:
            for logger, level in zip(loggers, levels, strict=True):
                logger.setLevel(level)

    def _run(self, *, dry_run: bool, patient: bool = False) -> None:
        try:
            with transaction.atomic():
                self._patient_story() if patient else self._story()
                if dry_run:
                    raise _Rollback
        except _Rollback:
            self.stdout.write("(--dry-run: everything above was rolled back)")

    # -- output ----------------------------------------------------------------------------------------------

    def step(self, title: str) -> None:
        self.step_no += 1
        self.stdout.write("")
        self.stdout.write(self.style.MIGRATE_HEADING(f"{self.step_no}. {title}"))

    def say(self, text: str, style: Any = None) -> None:
        self.stdout.write("   " + (style(text) if style else text))

    def _last_login(self, username: str) -> str:
        event = LoginEvent.objects.filter(username=username).order_by("-pk").first()
        if event is None:
            return "no login event"
        where = ", ".join(x for x in (event.city, event.country, event.as_org) if x) or "unknown network"
        reasons = (
            ", ".join(f"{f['code']} (+{f['score']})" for f in event.findings if f.get("score")) or "none"
        )
        return f"from {event.ip} ({where}): score {event.score} -> {event.action}; reasons: {reasons}"

    # -- the story ------------------------------------------------------------------------------------------

    def _setup(self) -> Any:
        user_model = get_user_model()
        if not user_model._default_manager.filter(username=TANAKA.username).exists():
            call_command("seed_demo", stdout=io.StringIO())
        user = user_model._default_manager.get(username=TANAKA.username)
        # Earlier replays: close what they left open, then put the documented portfolio back.
        for held in HeldOrder.objects.filter(user=user, status=HeldOrder.Status.PENDING):
            guard_orders._close(held.pk, HeldOrder.Status.CANCELLED, reason="simulate_attack reset")
        services.reset_portfolio(user, cash=TANAKA.cash, holdings=dict(TANAKA.holdings))
        PasskeyDevice.objects.filter(user=user, name__in=[TANAKA_PASSKEY, THIEF_PASSKEY]).delete()
        return user

    def _totp(self, user: Any) -> str:
        """The code Tanaka's authenticator app shows, for a time step django-otp has not seen used yet."""
        from django_otp.oath import TOTP
        from django_otp.plugins.otp_totp.models import TOTPDevice

        device = TOTPDevice.objects.filter(user=user, confirmed=True).order_by("pk").first()
        if device is None:
            return "000000"
        while True:
            now = time.time()
            current = int((now - device.t0) // device.step)
            device.refresh_from_db()
            # django-otp accepts ``tolerance`` steps either side of now (shifted by drift), each step once.
            for offset in (0, 1, -1):
                step = current + offset
                if step > device.last_t and abs(offset - device.drift) <= device.tolerance:
                    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, 0)
                    totp.time = now + offset * device.step
                    return f"{totp.token():0{device.digits}d}"
            time.sleep(1)

    def _story(self) -> None:
        self.started = timezone.now()
        user = self._setup()
        start = services.portfolio(user)
        self.stdout.write(
            self.style.SUCCESS("The story: a phished password, a hijacked session, a pump-and-dump.")
        )
        self.say(
            f"Tanaka holds {len(start.holdings)} stocks worth {_yen(start.holdings_value)} and "
            f"{_yen(start.cash)} cash ({_yen(start.total_value)} in all)."
        )

        self.step("Tanaka signs in at home in Tokyo and adds a passkey, as his broker recommends")
        tanaka = Browser(HOME_TOKYO, UA_TANAKA)
        status, data = tanaka.post("/api/login", {"username": TANAKA.username, "password": TANAKA.password})
        self.say(f"login {data.get('status')}: {self._last_login(TANAKA.username)}")
        # Adding a factor needs a fresh strong verification: his authenticator app, on his own PC.
        status, data = tanaka.post("/authguard/api/step-up/totp", {"code": self._totp(user)})
        self.say(f"confirms it is him with his authenticator app: {data.get('status')}")
        authenticator = SoftAuthenticator(origin=settings.AUTHGUARD_WEBAUTHN_ORIGINS[0])
        status, options = tanaka.post("/authguard/api/passkeys/options")
        status, data = tanaka.post(
            "/authguard/api/passkeys", {**authenticator.create(options), "name": TANAKA_PASSKEY}
        )
        self.say(
            f"passkey on his PC: {data.get('status')} "
            f"(cooling-off: {data.get('passkey', {}).get('cooling_off')})"
        )
        tanaka.post("/api/logout")

        self.step("A phishing mail: Tanaka types his password into a fake login page")
        self.say("The gang now has his username and password, and relays his one-time codes in real time.")

        self.step("The thief signs in from a VPS in Singapore")
        thief = Browser(VPS_SINGAPORE, UA_THIEF_VPS)
        status, data = thief.post("/api/login", {"username": TANAKA.username, "password": TANAKA.password})
        self.say(f"login {data.get('status')} (HTTP {status}): {self._last_login(TANAKA.username)}")
        self.say("authguard: not signed in; the thief gets nothing to work with.", self.style.SUCCESS)

        self.step(
            "The gang's phishing proxy in Tokyo relays Tanaka's own browser: cookies, user agent, codes"
        )
        # An adversary-in-the-middle kit passes the victim's cookies through (the device cookie too), from
        # a residential proxy in Japan, so the sign-in looks like Tanaka's PC on another home line.
        thief = Browser(PROXY_TOKYO, UA_TANAKA)
        device_cookie = tanaka.client.cookies.get(app_settings.DEVICE_COOKIE_NAME)
        if device_cookie is not None:
            thief.client.cookies[app_settings.DEVICE_COOKIE_NAME] = device_cookie.value
        status, data = thief.post("/api/login", {"username": TANAKA.username, "password": TANAKA.password})
        self.say(f"login {data.get('status')} (HTTP {status}): {self._last_login(TANAKA.username)}")
        if data.get("status") == "step_up_required":
            # Real-time phishing kits relay one-time codes: a TOTP code is not phishing-resistant.
            status, data = thief.post("/authguard/api/step-up/totp", {"code": self._totp(user)})
            self.say(
                f"the fake page relays a fresh one-time code: step-up {data.get('status')}",
                self.style.WARNING,
            )
        if data.get("status") not in ("ok",):
            self.say("authguard: the thief cannot get in at all; the story ends here.", self.style.SUCCESS)
            self._ending(user, start)
            return
        state = sessions_state.session_state(_request_for(thief.client))
        risky = state is not None and (state.stepped_up or state.new_device or state.rescored)
        self.say(
            "The thief is in, in a session authguard counts as risky (lower order limits)."
            if risky
            else "The thief is in: the sign-in looked like Tanaka's own PC. The order guard is what is left.",
            self.style.WARNING,
        )

        self.step("The thief sells nearly everything, one order at a time")
        held_ids: list[str] = []
        placed = held = 0
        for holding in sorted(start.holdings, key=lambda h: -h.value_jpy):
            if holding.is_small_cap:
                continue
            status, data = thief.post(
                "/api/orders", {"side": "sell", "symbol": holding.symbol, "quantity": holding.quantity}
            )
            amount = _yen(holding.value_jpy)
            line = f"sell {holding.quantity:>5} {holding.symbol:<6} {amount:>12}: {data.get('status')}"
            if data.get("status") == "held":
                held += 1
                held_ids.append(data["confirmation"]["id"])
                line += f" ({', '.join(data['confirmation']['reasons'])})"
            else:
                placed += 1
            self.say(line, self.style.WARNING if data.get("status") == "held" else None)
        last = HeldOrder.objects.filter(pk__in=held_ids).order_by("-created_at").first()
        self.say(
            f"{placed} sells placed (within the session's limit), {held} held for Tanaka's confirmation."
        )
        if last is not None:
            self.say(f'What Tanaka would be asked to confirm: "{last.summary}"')

        self.step(f"The thief buys the pumped small cap {PUMPED} with all the cash")
        cash = Account.objects.get(user=user).cash
        quantity = int(cash // Decimal(845))
        status, data = thief.post("/api/orders", {"side": "buy", "symbol": PUMPED, "quantity": quantity})
        self.say(f"buy {quantity:,} {PUMPED} ({_yen(Decimal(quantity * 845))}): {data.get('status')}")
        if data.get("status") == "held":
            held_ids.append(data["confirmation"]["id"])
            buy = HeldOrder.objects.get(pk=data["confirmation"]["id"])
            for reason in buy.reasons:
                self.say(f"- {reason['code']}: {reason['reason']}", self.style.WARNING)

        self.step("The thief tries to confirm the held orders")
        target = held_ids[-1] if held_ids else None
        if target:
            status, data = thief.post(
                f"/authguard/api/confirmations/{target}/totp", {"code": self._totp(user)}
            )
            self.say(
                f"with a relayed one-time code: HTTP {status} {data.get('status')}: {data.get('message')}"
            )
            # A relayed one-time code is a fresh verification: enough to add a passkey of their own...
            status, data = thief.post("/authguard/api/step-up/totp", {"code": self._totp(user)})
            self.say(f"relays another one-time code to re-verify the session: {data.get('status')}")
            status, data = thief.post("/authguard/api/passkeys/options")
            if status == 200:
                own = SoftAuthenticator(origin=settings.AUTHGUARD_WEBAUTHN_ORIGINS[0])
                status, data = thief.post(
                    "/authguard/api/passkeys", {**own.create(data), "name": THIEF_PASSKEY}
                )
                cooling = data.get("passkey", {}).get("cooling_off")
                self.say(f"registers a passkey of their own: {data.get('status')} (cooling-off: {cooling})")
                status, options = thief.post(f"/authguard/api/confirmations/{target}/passkey/options")
                if status != 200:
                    self.say(
                        f"...and tries to confirm with it: HTTP {status} {options.get('status')}: "
                        f"{options.get('message')}"
                    )
                else:
                    status, data = thief.post(
                        f"/authguard/api/confirmations/{target}/passkey", own.get(options)
                    )
                    self.say(
                        f"...and confirms with it: HTTP {status} {data.get('status')}: {data.get('message')}"
                    )
            else:
                self.say(f"tries to add a passkey of their own: HTTP {status} {data.get('status')}")
        pending = HeldOrder.objects.filter(user=user, status=HeldOrder.Status.PENDING).count()
        self.say(
            f"authguard: {pending} orders still held; none executed without Tanaka's own passkey.",
            self.style.SUCCESS,
        )

        self.step("Tanaka is told, out of band, with no links")
        mails = Notification.objects.filter(
            user=user, kind="order_held", created_at__gte=self.started
        ).count()
        self.say(f"{mails} 'an order is waiting for your confirmation' messages queued to {user.email}.")
        expired = guard_orders.expire_due(now=timezone.now() + timezone.timedelta(minutes=6))
        self.say(f"Tanaka does not confirm; five minutes later authguard expires the {expired} held orders.")
        self._ending(user, start)

    def _login(self, browser: Browser, user: Any) -> bool:
        """Sign ``browser`` in as Tanaka (relaying a one-time code if a step-up is asked); True when in."""
        browser.post("/api/logout")
        status, data = browser.post("/api/login", {"username": TANAKA.username, "password": TANAKA.password})
        if data.get("status") == "step_up_required":
            status, data = browser.post("/authguard/api/step-up/totp", {"code": self._totp(user)})
        return data.get("status") == "ok"

    def _patient_story(self) -> None:
        """Issue 11's patient attacker, day by day on a simulated clock."""
        try:
            import time_machine
        except ImportError:  # pragma: no cover - a development dependency of the demo
            raise CommandError(
                "--patient needs the time-machine package (pip install time-machine)"
            ) from None
        self.started = timezone.now()
        user = self._setup()
        start = services.portfolio(user)
        base = timezone.now()
        self.stdout.write(
            self.style.SUCCESS("The patient attacker: the same password, days of time, our code read.")
        )
        self.say(
            f"Tanaka holds {len(start.holdings)} stocks worth {_yen(start.holdings_value)} and "
            f"{_yen(start.cash)} cash ({_yen(start.total_value)} in all)."
        )
        self.step("A month earlier: Tanaka signs in at home and adds a passkey")
        with time_machine.travel(base - timedelta(days=30), tick=True):
            tanaka = Browser(HOME_TOKYO, UA_TANAKA)
            self._login(tanaka, user)
            # Adding a factor needs a fresh strong verification: his authenticator app, on his own PC.
            tanaka.post("/authguard/api/step-up/totp", {"code": self._totp(user)})
            authenticator = SoftAuthenticator(origin=settings.AUTHGUARD_WEBAUTHN_ORIGINS[0])
            status, options = tanaka.post("/authguard/api/passkeys/options")
            status, data = tanaka.post(
                "/authguard/api/passkeys", {**authenticator.create(options), "name": TANAKA_PASSKEY}
            )
            self.say(f"passkey on his PC: {data.get('status')}")
            tanaka.post("/api/logout")

        self.step("The thief signs in from a clean home line in Tokyo, Chrome one patch build from Tanaka's")
        thief = Browser(CLEAN_TOKYO, UA_PATIENT)
        held_total = 0
        for day in range(4):
            with time_machine.travel(base + timedelta(days=day), tick=True):
                if not self._login(thief, user):
                    self.say(f"day {day + 1}: the thief cannot sign in.", self.style.SUCCESS)
                    continue
                if day == 0:
                    self.say(f"login: {self._last_login(TANAKA.username)}")
                # 1. The small cap first, in chunks each just under the per-order limit.
                bought = placed_chunks = 0
                lines = []
                for _chunk in range(3):
                    status, data = thief.post(
                        "/api/orders", {"side": "buy", "symbol": PUMPED, "quantity": CHUNK}
                    )
                    if data.get("status") == "placed":
                        placed_chunks += 1
                        bought += CHUNK
                    elif data.get("status") == "held":
                        held_total += 1
                        lines.append(
                            f"buy {CHUNK} {PUMPED}: held ({', '.join(data['confirmation']['reasons'])})"
                        )
                        self._cancel(thief, data)
                # 2. Then the large caps, largest first, up to the limit: the first held sell is cancelled.
                sold = Decimal(0)
                for holding in sorted(services.portfolio(user).holdings, key=lambda h: -h.value_jpy):
                    if holding.is_small_cap:
                        continue
                    status, data = thief.post(
                        "/api/orders",
                        {"side": "sell", "symbol": holding.symbol, "quantity": holding.quantity},
                    )
                    if data.get("status") == "held":
                        held_total += 1
                        reasons = ", ".join(data["confirmation"]["reasons"])
                        lines.append(f"sell {holding.quantity} {holding.symbol}: held ({reasons})")
                        self._cancel(thief, data)
                        break
                    if data.get("status") != "placed":
                        break
                    sold += holding.value_jpy
                self.step(f"Day {day + 1}")
                self.say(
                    f"bought {bought:,} {PUMPED} ({_yen(bought * PUMPED_PRICE)}) in {placed_chunks} placed "
                    f"chunks; sold {_yen(sold)} of large caps"
                )
                for line in lines:
                    self.say(line, self.style.WARNING)
                thief.post("/api/logout")
        end = services.portfolio(user)
        pumped = sum((h.value_jpy for h in end.holdings if h.symbol == PUMPED), Decimal(0))
        sold_share = 1 - sum((h.value_jpy for h in end.holdings if h.symbol != PUMPED), Decimal(0)) / (
            start.holdings_value or 1
        )
        self.step("Four days later")
        self.say(
            f"In {PUMPED}: {_yen(pumped)}, {100 * pumped / start.total_value:.1f} % of the portfolio; large "
            f"caps sold: {100 * sold_share:.0f} % (the rest held). {held_total} orders were held for "
            "Tanaka's passkey."
        )
        self.stdout.write(
            self.style.SUCCESS(
                "authguard held the patient attack: the exposure over days added up."
                if pumped <= start.total_value / 10
                else "The patient attack moved more than 10 % of the portfolio into the small cap."
            )
        )

    def _cancel(self, browser: Browser, data: dict[str, Any]) -> None:
        """The thief cancels a held order (staying under the limit), so nothing waits for Tanaka."""
        browser.post(f"/authguard/api/confirmations/{data['confirmation']['id']}/cancel")

    def _ending(self, user: Any, start: services.Portfolio) -> None:
        self.step("What Tanaka lost")
        end = services.portfolio(user)
        sold = start.holdings_value - end.holdings_value
        lost = start.total_value - end.total_value
        self.say(
            f"Account value before {_yen(start.total_value)}, after {_yen(end.total_value)}: "
            f"lost {_yen(max(lost, 0))}."
        )
        self.say(
            f"{_yen(sold)} of stocks were sold at market price by the placed orders; the yen stayed in his "
            f"account as cash, nothing was bought, nothing left the account. He still holds "
            f"{len(end.holdings)} stocks."
        )
        self.stdout.write(self.style.SUCCESS("Tanaka lost nothing."))


def _request_for(client: Client) -> Any:
    """A request carrying ``client``'s session, to read authguard's state of that session."""
    from django.test import RequestFactory

    request = RequestFactory().get("/")
    request.session = client.session
    return request


def _yen(amount: Decimal) -> str:
    return f"¥{amount:,.0f}"
