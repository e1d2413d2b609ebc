"""A customer's password at the admin login (Django's ``AdminSite.login``, the security console's door).

Django's admin form checks the password, then refuses an account that is not staff itself: no
``user_logged_in``, no ``user_login_failed``, so a phished customer password checked there was neither scored
nor recorded, and only a wrong one did authguard's work (a timing oracle; red team 34a). At the admin login
:class:`~authguard.login.backend.ThrottleBackend` checks a non-staff account's password itself
(:func:`check_customer`) and refuses it either way: a wrong one is the usual failure (recorded, counted on
the lock), a right one is recorded as a refused sign-in, scored like any other (:func:`record_refused`).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.utils.translation import gettext_lazy

from authguard.login.events import record_event
from authguard.models import Outcome
from authguard.risk.engine import Assessment
from authguard.risk.findings import Finding
from authguard.risk.velocity import CountersUnavailable

if TYPE_CHECKING:
    from authguard.login.flow import Scored

logger = logging.getLogger(__name__)

#: The finding (score 0) of a customer's right password refused at the admin login: the console says why.
NOT_STAFF = "admin_login_not_staff"
#: Set by :func:`check_customer` to the non-staff user whose right password the admin login refused.
REFUSED_CUSTOMER_ATTR = "_authguard_admin_refused_customer"


def is_admin_login(request: HttpRequest) -> bool:
    """Whether ``request`` is for an admin site's login view (``AdminSite.login``, whatever the site's name).

    Read from the URL resolver, not by importing the admin: every ``AdminSite`` mounts its views under the
    application namespace ``admin`` and names this one ``login``; a portal without the admin has neither.
    """
    match = getattr(request, "resolver_match", None)
    return match is not None and match.url_name == "login" and match.app_names[-1:] == ["admin"]


def check_customer(request: HttpRequest, user: Any, password: object) -> None:
    """At the admin login, check the password of ``user`` (the account the attempt's name found, or None) if
    it is not staff, and refuse it.

    Nothing for any other request, an unknown name or a staff account: Django's backends go on as before.
    """
    if not isinstance(password, str) or not is_admin_login(request):
        return
    if user is None or getattr(user, "is_staff", False):
        return
    # SECURITY: the admin form would refuse this account after the password check without a signal; here
    # the check is made once, as ModelBackend makes it (an inactive account fails it too), and the right
    # password is recorded as a refused sign-in (scored, seen by the console) instead of leaving no trace.
    right = user.check_password(password) and getattr(user, "is_active", True)
    setattr(request, REFUSED_CUSTOMER_ATTR, user if right else None)
    raise PermissionDenied("not staff")  # a wrong password: the failed-login flow counts it as usual


def take_refused(request: HttpRequest) -> Any:
    """The customer whose right password this request's admin login refused (once), or None."""
    user = getattr(request, REFUSED_CUSTOMER_ATTR, None)
    setattr(request, REFUSED_CUSTOMER_ATTR, None)
    return user


def record_refused(user: Any, scored: Scored) -> None:
    """Record a customer's right password refused at the admin login: ``refused`` with ``password_ok``, the
    risk engine's score and reasons, as a risk refusal of the customer login is recorded."""
    try:
        scored.history.record_attempt(scored.context, failed=False)
    except CountersUnavailable:
        pass  # logged where it failed; the event below is recorded all the same
    except Exception:
        logger.exception("authguard: could not count a login attempt")
    text = gettext_lazy("A customer's right password at the staff sign-in (the admin): refused")
    found = scored.assessment
    assessment = Assessment(found.score, found.action, (*found.findings, Finding(NOT_STAFF, 0, text, {})))
    record_event(scored.context, user, assessment, password_ok=True, outcome=Outcome.REFUSED)
