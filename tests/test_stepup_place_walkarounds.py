"""Red team, round twenty-five (sessions, step-up and API tokens). Each test not marked HELD fails on the code
it was written against.

1. A request authenticated by an API token still carries whatever session cookie the client sends, and
   authguard's session readers (``sessions.state.session_state`` / ``raw_state``) read that session's state
   without asking whose session it is. The order guard takes its session facts from it
   (``orders.facts._session_facts``): her copied token, sent with the cookie of the thief's own low-risk
   session at the portal, has her orders judged by *his* session, not as the unknown (risky) session a token
   request is.
2. A step-up is completed wherever it is posted: the pending browser session (the middleware compares only
   verified sessions with their binding) and the DRF ``step_up_token`` (a bearer credential) are verified and
   bound at the step-up request's context, which nobody scored: a context whose own sign-in is refused holds a
   verified session or token (battery case 61's rule, "never more gently than a fresh sign-in").
"""

from __future__ import annotations

import importlib.util
import json
from decimal import Decimal
from typing import Any

import pytest

if importlib.util.find_spec("rest_framework") is None:  # pragma: no cover
    pytest.skip("djangorestframework is not installed", allow_module_level=True)

from django.urls import include, path  # noqa: E402
from rest_framework.request import Request  # noqa: E402
from rest_framework.response import Response  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402
from rest_framework.views import APIView  # noqa: E402

from authguard.drf import NotPending, StepUpRequired, TokenAuthentication, read_body  # noqa: E402
from authguard.models import GuardedOrder  # noqa: E402
from authguard.orders.guard import OrderDenied, confirmation_json  # noqa: E402

from .conftest import HANAKO_PASSWORD, IP_TOKYO, IP_TOKYO_2, UA_CHROME_WIN, OrderApi  # noqa: E402

# -- a token-only order API, as a portal serving its app writes it (docs/drf.md: TokenAuthentication) -------


class TokenOrders(APIView):
    """``POST {"side", "symbol", "quantity"}`` for the portal's app: authguard's token authentication only
    (docs/drf.md: "a portal whose API serves token clients only"), through the demo's order service and
    authguard's order guard, exactly as tests/portal2/accounts/api.py's ``Orders``."""

    authentication_classes = [TokenAuthentication]
    permission_classes = [NotPending]

    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        from demo_site.brokerage import services

        data = read_body(request)
        try:
            submitted = services.submit_order(
                request._request,
                side=data.get("side"),
                symbol=data.get("symbol"),
                quantity=data.get("quantity"),
            )
        except OrderDenied:
            return Response({"status": "denied"}, status=403)
        if submitted.confirmation is not None:
            return Response(
                {
                    "status": "held",
                    "order_id": submitted.order.pk,
                    "confirmation": confirmation_json(submitted.confirmation),
                },
                status=202,
            )
        return Response({"status": "placed", "order_id": submitted.order.pk}, status=201)


class KnoxStyleToken:
    """What ``request.auth`` is under django-rest-knox (docs/drf.md recommends it for one token per login,
    "behind the same flow"): knox's ``AuthToken`` keeps ``token_key`` (the key's first characters) and a
    digest, and has no ``key``."""

    def __init__(self, token_key: str) -> None:
        self.token_key = token_key


class KnoxStyleAuthentication(TokenAuthentication):
    """authguard's token authentication (lifetime, binding, lock), answering as knox does."""

    def authenticate(self, request: Any) -> Any:
        result = super().authenticate(request)
        if result is None:
            return None
        user, token = result
        return user, KnoxStyleToken(token.key[:8])


class KnoxWithdraw(APIView):
    """A sensitive call of a knox-style token API: a fresh second factor (``StepUpRequired``)."""

    authentication_classes = [KnoxStyleAuthentication]
    permission_classes = [StepUpRequired]

    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return Response({"status": "ok", "user": request.user.get_username()})


urlpatterns = [
    path("knox/withdraw", KnoxWithdraw.as_view(), name="rt25a-knox-withdraw"),
    path("app/orders", TokenOrders.as_view(), name="rt25a-app-orders"),
    path("", include("tests.drf_urlconf")),
]

URLCONF = "tests.test_stepup_place_walkarounds"
JIRO_PASSWORD = "jiro-own-account-2025"


def _her_token(ip: str = IP_TOKYO) -> str:
    """Her app signs in at home (allowed) and gets its token: what the infostealer copies."""
    answer = APIClient(REMOTE_ADDR=ip, HTTP_USER_AGENT=UA_CHROME_WIN).post(
        "/api/auth/token", {"username": "hanako", "password": HANAKO_PASSWORD}, format="json"
    )
    assert answer.status_code == 200 and answer.json()["status"] == "ok", answer.content
    return str(answer.json()["token"])


def _sell(client: Any, token: str, quantity: int, **extra: Any) -> Any:
    return client.post(
        "/app/orders",
        data=json.dumps({"side": "sell", "symbol": "7203", "quantity": quantity}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Token {token}",
        **extra,
    )


def _her_account(brokerage_customer: Any) -> Any:
    from .conftest import of_long_standing

    return of_long_standing(brokerage_customer(holdings={"7203": 300}))


def _placed_sells(user: Any) -> int:
    from demo_site.brokerage.models import Order, OrderStatus

    rows = Order.objects.filter(account__user=user, side="sell", status=OrderStatus.PLACED)
    return sum(rows.values_list("quantity", flat=True))


@pytest.mark.battery(66)
@pytest.mark.django_db
@pytest.mark.urls(URLCONF)
def test_a_copied_token_alone_selling_40_percent_is_held_as_an_unknown_session(
    order_api: Any, brokerage_customer: Any, geoip: Any
) -> None:
    """HELD (the baseline): her token, copied and replayed from another address of her ISP in Tokyo (no
    material move: served), sells 40 % of her holdings. A token request has no session state: the
    guard's risky-session limit (25 %) holds it."""
    hanako = _her_account(brokerage_customer)
    token = _her_token()
    thief = APIClient(REMOTE_ADDR=IP_TOKYO_2, HTTP_USER_AGENT=UA_CHROME_WIN)
    answer = _sell(thief, token, 120)
    assert answer.status_code == 202, answer.content
    assert "risky_session_sell" in answer.json()["confirmation"]["reasons"]
    assert _placed_sells(hanako) == 0


@pytest.mark.battery(66)
@pytest.mark.django_db
@pytest.mark.urls(URLCONF)
def test_a_copied_token_sent_with_the_thiefs_own_session_cookie_is_not_judged_by_his_session(
    order_api: Any, brokerage_customer: Any, geoip: Any
) -> None:
    """The thief has her app's token (infostealer) and an account of his own at the portal. From the
    residential proxy he uses her token from (another address of her ISP in Tokyo), he signs in to his own
    account twice in a browser (allowed, a known device: not a risky session), then sends her token to the
    portal's token-only order API *with his own session cookie*. Authentication is by her token
    (request.user is hanako), but the order guard's session facts come from ``session_state(request)``:
    his session, low-risk and allowed. The sell of 40 % of her holdings is placed without a hold, where the
    same call without his cookie is held (the test above): every copied token doubles its unheld
    liquidation (25 % -> 50 %) and loses the risky-session limit on thin-stock buys."""
    from demo_site.brokerage import services

    hanako = _her_account(brokerage_customer)
    services.open_account(
        "jiro", JIRO_PASSWORD, email="jiro@example.com", cash=Decimal("100000"), holdings={}
    )
    token = _her_token()
    own = OrderApi(REMOTE_ADDR=IP_TOKYO_2)
    own.login_known("jiro", JIRO_PASSWORD)  # his own account, his own browser: allowed, known device
    answer = _sell(own.client, token, 120, REMOTE_ADDR=IP_TOKYO_2)
    ledger = GuardedOrder.objects.filter(user=hanako, symbol="7203").order_by("-pk").first()
    assert answer.status_code in (201, 202), answer.content
    assert ledger is not None
    assert answer.status_code == 202 and answer.json()["status"] == "held", (
        f"her copied token sold 40 % of her holdings unheld, judged by the thief's own session "
        f"(session facts of another account): {answer.status_code} {answer.content!r}; ledger {ledger.status}"
    )
    assert _placed_sells(hanako) == 0


@pytest.mark.battery(66)
@pytest.mark.django_db
@pytest.mark.urls(URLCONF)
def test_a_knox_style_token_is_not_passed_by_the_thiefs_own_step_up_in_his_own_session(
    order_api: Any, brokerage_customer: Any, totp_factory: Any, geoip: Any
) -> None:
    """HELD (narrowly): ``StepUpRequired`` tells a token request by ``request.auth.key`` (DRF's ``Token``);
    any other token model (django-rest-knox, which docs/drf.md recommends for one token per login) is judged
    as a *session*, ``has_fresh_verification(request._request)``, and that session is whatever cookie came
    along: here the thief's own, freshly stepped up with his own authenticator app. What refuses her
    password-only token is only that the session's verifying device is not one of *her* factors
    (``inventory.verified_by_cooling_off_factor``: unknown device = cooling off, 403 ``cooling_off``)."""
    from demo_site.brokerage import services

    from .conftest import totp_token

    _her_account(brokerage_customer)
    jiro = services.open_account(
        "jiro", JIRO_PASSWORD, email="jiro@example.com", cash=Decimal("100000"), holdings={}
    )
    his_app = totp_factory(jiro)
    token = _her_token()
    alone = APIClient(REMOTE_ADDR=IP_TOKYO_2, HTTP_USER_AGENT=UA_CHROME_WIN).post(
        "/knox/withdraw", HTTP_AUTHORIZATION=f"Token {token}"
    )
    assert alone.status_code == 403, alone.content  # her password-only token alone: no fresh factor
    own = OrderApi(REMOTE_ADDR=IP_TOKYO_2)
    own.login_known("jiro", JIRO_PASSWORD)
    assert own.post("/authguard/api/step-up/totp", {"code": totp_token(his_app)}).status_code == 200
    answer = own.client.post("/knox/withdraw", HTTP_AUTHORIZATION=f"Token {token}", REMOTE_ADDR=IP_TOKYO_2)
    assert answer.status_code == 403 and answer.json()["status"] == "step_up_required", answer.content


# -- 2. A step-up completed from a context nobody scored ---------------------------------------------------


def _relayed_login_then_step_up_elsewhere_token(user_factory: Any, browser_at: Any, totp_factory: Any) -> Any:
    from .conftest import IP_OSAKA, IP_SG_VPS, totp_token
    from .test_drf import UA_REQUESTS, api, customer, obtain

    alice = customer(user_factory, browser_at, "alice")
    device = totp_factory(alice)
    # The phishing kit posts her password from a Japanese address in a real browser's agent: step_up.
    login = obtain(api(IP_OSAKA, UA_CHROME_WIN))
    assert login.status_code == 401 and login.json()["status"] == "step_up_required", login.content
    # ...and exchanges the step_up_token, with the code it relays from her, from its script on a hosting
    # network abroad: a context whose own sign-in is refused outright (the attack, test_drf).
    exchange = APIClient(REMOTE_ADDR=IP_SG_VPS, HTTP_USER_AGENT=UA_REQUESTS).post(
        "/api/auth/step-up/totp",
        {"step_up_token": login.json()["step_up_token"], "code": totp_token(device)},
        format="json",
    )
    return alice, exchange


@pytest.mark.battery(61)
@pytest.mark.django_db
@pytest.mark.urls("tests.drf_urlconf")
def test_a_token_login_scored_in_japan_is_not_stepped_up_from_a_hosting_network_a_login_is_refused_from(
    user_factory: Any, browser_at: Any, totp_factory: Any, geoip: Any
) -> None:
    """The token login is scored where the password was posted (Osaka, step_up); the step_up_token is a
    bearer credential, and the exchange runs wherever it is posted: ``drf_views._passed`` issues the token
    bound, anchored and vouched at the exchange's context (``token_binding.issued_state``), which was never
    scored. A script on a DigitalOcean droplet in Singapore (python-requests), whose own sign-in is refused,
    gets a token that lives there, with the TOTP strength: it reads the portfolio and withdraws. docs: "a
    re-scored session is never treated more gently than a fresh sign-in (battery case 61): a context a fresh
    login would be refused from must not be one relayed code away from the account"."""
    from .conftest import IP_SG_VPS
    from .test_drf import UA_REQUESTS, api, obtain, with_token

    alice, exchange = _relayed_login_then_step_up_elsewhere_token(user_factory, browser_at, totp_factory)
    served = withdrew = None
    if exchange.status_code == 200:
        token = exchange.json()["token"]
        served = with_token(api(IP_SG_VPS, UA_REQUESTS), token).get("/drf/portfolio").status_code
        withdrew = with_token(api(IP_SG_VPS, UA_REQUESTS), token).post("/drf/withdraw").status_code
    # The context itself: a fresh sign-in from there is refused (the precondition).
    direct = obtain(api(IP_SG_VPS, UA_REQUESTS))
    assert direct.status_code == 403 and direct.json()["status"] == "denied", direct.content
    assert exchange.status_code != 200 or (served in (401, 403) and withdrew in (401, 403)), (
        f"a step-up exchanged from a context a sign-in is refused from gave a token served there: "
        f"exchange {exchange.status_code}, portfolio {served}, withdraw {withdrew}"
    )


@pytest.mark.battery(61)
@pytest.mark.django_db
@pytest.mark.urls("tests.drf_urlconf")
def test_a_pending_browser_session_scored_in_japan_is_not_stepped_up_from_tor(
    user_factory: Any, browser_at: Any, totp_factory: Any, geoip: Any
) -> None:
    """The browser flavour: the phishing kit's password login from Osaka is pending (step_up). The
    middleware compares only verified sessions with their binding, so the step-up request itself, sent from a
    Tor exit with the relayed code, is never scored; ``complete_step_up`` binds the session there
    (``state._bind``: the place vouched for), and every later request from the Tor exit is the same context:
    the portfolio is served and the fresh step-up withdraws. A sign-in from that Tor exit is refused."""
    from django.test import Client

    from .conftest import IP_OSAKA, IP_TOR, totp_token
    from .test_drf import PASSWORD, customer

    alice = customer(user_factory, browser_at, "alice")
    device = totp_factory(alice)
    kit = Client(HTTP_USER_AGENT=UA_CHROME_WIN)
    login = kit.post(
        "/api/login", json.dumps({"username": "alice", "password": PASSWORD}),
        content_type="application/json", REMOTE_ADDR=IP_OSAKA,
    )  # fmt: skip
    assert login.status_code in (200, 401) and login.json()["status"] == "step_up_required", login.content
    step_up = kit.post(
        "/authguard/api/step-up/totp", json.dumps({"code": totp_token(device)}),
        content_type="application/json", REMOTE_ADDR=IP_TOR,
    )  # fmt: skip
    served = kit.get("/drf/portfolio", REMOTE_ADDR=IP_TOR).status_code
    withdrew = kit.post("/drf/withdraw", REMOTE_ADDR=IP_TOR).status_code
    direct = Client(HTTP_USER_AGENT=UA_CHROME_WIN).post(
        "/api/login", json.dumps({"username": "alice", "password": PASSWORD}),
        content_type="application/json", REMOTE_ADDR=IP_TOR,
    )  # fmt: skip
    assert direct.json()["status"] == "denied", direct.content  # the precondition
    assert step_up.status_code != 200 or (served in (401, 403) and withdrew in (401, 403)), (
        f"a pending session stepped up from a Tor exit (a sign-in there is refused) is served there: "
        f"step-up {step_up.status_code}, portfolio {served}, withdraw {withdrew}"
    )
