"""The benchmark's customer and the signed-in, verified browser session that both servers are sent.

The session is made the way a customer's browser makes it: the login page issues the device cookie, the JSON
API signs in through authguard's risk-scored login, and if authguard asks for a step-up the customer passes
it with a real TOTP code through authguard's step-up API. Nothing is written into the session by hand, so
it passes authguard's per-request checks exactly as a browser's session does, as long as every request
comes with the same cookies, browser and network (:meth:`BenchSession.headers`).
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

#: A customer's browser: Chrome on Windows, signing in from a Tokyo home line of the demo GeoIP plan
#: (``192.0.2.0/26``, NTT OCN). The demo trusts loopback as its proxy, so ``X-Forwarded-For`` places it.
USER_AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
CLIENT_IP = "192.0.2.10"
USERNAME = "bench-customer"
#: What the portfolio page must show for an answer to count as the page (and not a login or step-up page).
PORTFOLIO_MARKER = "7203"


class BenchSetupError(RuntimeError):
    """The customer could not be signed in to a verified session; the message says which answer came."""


@dataclass(frozen=True)
class BenchSession:
    """A signed-in browser: its cookies and the headers that bind the session to its context."""

    username: str
    cookies: dict[str, str]
    user_agent: str = USER_AGENT
    client_ip: str = CLIENT_IP
    how: str = ""  # how the session became verified, for the report
    extra: dict[str, str] = field(default_factory=dict)

    def cookie_header(self) -> str:
        return "; ".join(f"{name}={value}" for name, value in sorted(self.cookies.items()))

    def headers(self) -> dict[str, str]:
        """HTTP headers of every benchmark request (``wrk -H``, the Python client)."""
        return {
            "Cookie": self.cookie_header(),
            "User-Agent": self.user_agent,
            "X-Forwarded-For": self.client_ip,
            "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
            "Accept-Language": "en",
            **self.extra,
        }

    def client_meta(self) -> dict[str, str]:
        """The same headers as WSGI ``META`` keys, for ``django.test.Client`` requests."""
        return {"HTTP_" + name.upper().replace("-", "_"): value for name, value in self.headers().items()}


def seed_customer(*, username: str = USERNAME) -> tuple[Any, str]:
    """Create the instruments and a customer with the demo's "victim-like" portfolio (~30 holdings) and a
    TOTP authenticator enrolled months ago. Returns ``(user, password)``."""
    from django.contrib.auth import get_user_model
    from django.utils import timezone
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from demo_site.brokerage import services
    from demo_site.brokerage.management.commands.seed_demo import TANAKA

    password = secrets.token_urlsafe(18)
    services.sync_instruments()
    user = services.open_account(
        username, password, email=f"{username}@example.com", cash=TANAKA.cash, holdings=TANAKA.holdings
    )
    long_ago = timezone.now() - timedelta(days=400)
    get_user_model()._default_manager.filter(pk=user.pk).update(date_joined=long_ago)
    device = TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=True)
    if hasattr(device, "created_at"):  # a long-standing factor, not one "added recently"
        TOTPDevice.objects.filter(pk=device.pk).update(created_at=long_ago)
    return user, password


def _totp_code(user: Any) -> str:
    from django_otp.oath import totp
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.get(user=user, confirmed=True)
    code = totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits, drift=device.drift)
    return f"{code:0{device.digits}d}"


def _json(response: Any) -> dict[str, Any]:
    try:
        return json.loads(response.content)
    except ValueError:
        return {"status": f"HTTP {response.status_code}, not JSON"}


def sign_in(
    user: Any, password: str, *, client_ip: str = CLIENT_IP, user_agent: str = USER_AGENT
) -> BenchSession:
    """Sign ``user`` in as a browser would and return the verified session.

    Raises :class:`BenchSetupError` when authguard does not end up verifying the session (a refused login,
    a step-up without TOTP, a portfolio page that is not served).
    """
    from django.test import Client

    browser = BenchSession(user.get_username(), {}, user_agent=user_agent, client_ip=client_ip)
    meta = {k: v for k, v in browser.client_meta().items() if k != "HTTP_COOKIE"}
    client = Client(enforce_csrf_checks=True)
    client.get("/login/", **meta)  # the login page: authguard issues the device cookie here
    token = _json(client.get("/api/csrf", **meta)).get("csrf_token") or client.cookies["csrftoken"].value
    login = client.post(
        "/api/login",
        json.dumps({"username": user.get_username(), "password": password}),
        content_type="application/json",
        HTTP_X_CSRFTOKEN=token,
        **meta,
    )
    answer = _json(login)
    how = "login allowed outright"
    if answer.get("status") == "step_up_required":
        if "totp" not in answer.get("methods", []):
            raise BenchSetupError(f"login asks for a step-up without TOTP: {answer}")
        step_up = client.post(
            "/authguard/api/step-up/totp",
            json.dumps({"code": _totp_code(user)}),
            content_type="application/json",
            HTTP_X_CSRFTOKEN=answer.get("csrf_token") or client.cookies["csrftoken"].value,
            **meta,
        )
        if step_up.status_code != 200 or _json(step_up).get("status") != "ok":
            raise BenchSetupError(f"TOTP step-up refused: {step_up.status_code} {_json(step_up)}")
        how = "login stepped up with a TOTP code"
    elif login.status_code != 200 or answer.get("status") != "ok":
        raise BenchSetupError(f"login refused: {login.status_code} {answer}")
    session = BenchSession(
        browser.username,
        {name: morsel.value for name, morsel in client.cookies.items() if morsel.value},
        user_agent=user_agent,
        client_ip=client_ip,
        how=how,
    )
    check_portfolio(session)
    return session


def check_portfolio(session: BenchSession) -> Any:
    """Fetch ``/`` with the session's headers through the real middleware stack (in process) and return
    authguard's :class:`~authguard.sessions.state.SessionState` of it; raise :class:`BenchSetupError`
    unless the
    answer is the portfolio page and authguard holds the session verified."""
    from django.test import Client

    from authguard.sessions.state import session_state

    response = Client().get("/", **session.client_meta())
    if response.status_code != 200 or PORTFOLIO_MARKER not in response.content.decode():
        raise BenchSetupError(
            f"GET / with the bench session answered {response.status_code} "
            f"{response.get('Location', '')}, not the portfolio page"
        )
    state = session_state(response.wsgi_request)
    if state is None or state.status != "verified":
        raise BenchSetupError(f"authguard holds the bench session as {state}, not verified")
    return state
