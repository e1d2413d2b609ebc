"""Red team 36 (g): the demo portal's per-account throttle and velocity counter were keyed on
``username.lower()``, its accounts on the exact username (Django's manager); both are keyed on the account
found now (``login.attempt.account_key``, ``risk.velocity._subject``)."""

from __future__ import annotations

from typing import Any

import pytest

from authguard.login import lockout
from authguard.models import AccountLock, LoginEvent, Outcome

from .conftest import IP_SG_VPS, IP_TOKYO, IP_US_HOME, IP_VPN

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]


def test_upper_case_name_of_nobody_does_not_throttle_her_silently(user_factory: Any, browser_at: Any) -> None:
    """The demo portal's usernames are exact (``get_by_natural_key`` is ``username=``): ``HANAKO`` is
    nobody. The gang posts ten wrong passwords an hour for ``HANAKO``: no account is found, so nothing
    counts on hanako's lock, no event names her, nobody is told; but the throttle keys the name lower-cased,
    so the ten failures fill *hanako's* bucket, and her right password from home is refused "Too many
    sign-in attempts" every hour the gang spends ten requests on it, with no trace on her account.

    Secure: a name that reaches no account never shares the throttle bucket (or in-flight place) of one
    that does (key the account's counters on the account found, or on the name as the lookup compares it):
    hanako signs in from home.
    """
    hanako = user_factory("hanako")
    for n in range(10):
        ip = [IP_SG_VPS, IP_US_HOME, IP_VPN][n % 3]
        answer = browser_at(ip).sign_in("HANAKO", f"guess-{n}")
        assert answer.status_code == 200  # the form again: wrong name or password
    assert not AccountLock.objects.filter(user=hanako, failures__gt=0).exists()
    assert not LoginEvent.objects.filter(user=hanako).exists()
    assert not lockout.is_locked(hanako)

    at_home = browser_at(IP_TOKYO).sign_in("hanako")
    refused = "Too many sign-in attempts" in at_home.content.decode()
    assert at_home.status_code == 302 and not refused, f"refused as throttled: {refused}"
    assert not LoginEvent.objects.filter(user=hanako, outcome=Outcome.THROTTLED).exists()
    # Nor do they raise her score: the velocity signal counts failures on the account found, too.
    assert "velocity_user_failures" not in LoginEvent.objects.filter(user=hanako).latest("pk").reasons
