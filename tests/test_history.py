"""The live store: a constant number of queries per login, whatever the history's length."""

from __future__ import annotations

from datetime import timedelta

import pytest

from authguard.history import DatabaseHistory
from authguard.models import KnownDevice, PopulationCount, RiskProfile

from .conftest import IP_SG_VPS, IP_TOKYO
from .factories import T0, ctx

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("geoip")]


def learn_n(user, n: int) -> DatabaseHistory:
    history = DatabaseHistory()
    for i in range(n):
        login = ctx(user=user.username, ip=IP_TOKYO, at=T0 + timedelta(hours=i))
        object.__setattr__(login, "user_id", user.pk)
        history.learn(login, history.evidence(login))
    return history


@pytest.mark.parametrize("prior", [1, 300])
def test_gathering_evidence_costs_three_queries(user_factory, django_assert_num_queries, prior):
    user = user_factory(f"user{prior}")
    history = learn_n(user, prior)
    login = ctx(user=user.username, ip=IP_SG_VPS, device="another-browser", at=T0 + timedelta(days=30))
    object.__setattr__(login, "user_id", user.pk)
    with django_assert_num_queries(3):
        evidence = history.evidence(login)
    assert evidence.profile.logins == prior
    assert not evidence.device.known and evidence.device.presented


def test_learning_writes_profile_population_and_device(user_factory):
    user = user_factory("alice")
    learn_n(user, 3)
    profile = RiskProfile.objects.get(user=user).data
    assert profile["n"][1] == 3 and profile["t"]["ip"][1] == 3
    assert PopulationCount.objects.get(key="cc:JP").count == 3
    assert PopulationCount.objects.get(key="~cc").count == 1
    assert PopulationCount.objects.get(key="#users").count == 1
    device = KnownDevice.objects.get(user=user)
    assert device.last_place == "Tokyo, JP"


def test_a_recent_factor_change_is_reported(user_factory):
    from authguard.history import note_factor_change
    from authguard.risk_signals import AccountContext

    user = user_factory("alice")
    history = learn_n(user, 3)
    note_factor_change(user.pk, T0 + timedelta(days=1))
    soon = ctx(user=user.username, at=T0 + timedelta(days=2))
    object.__setattr__(soon, "user_id", user.pk)
    found = {f.code for f in AccountContext().evaluate(history.evidence(soon))}
    assert found == {"factor_changed"}
    later = ctx(user=user.username, at=T0 + timedelta(days=10))
    object.__setattr__(later, "user_id", user.pk)
    assert not list(AccountContext().evaluate(history.evidence(later)))


def test_the_replay_store_forgets_old_counter_windows_but_keeps_the_last_hour():
    # A replay may run over years of logins: its counters must not grow with the stream, and the sweep
    # must never drop a window a read still needs (the current hour and the previous one).
    from authguard.history import MemoryHistory

    history = MemoryHistory()
    for minute in range(0, 72 * 60, 5):  # three days, a failed login every five minutes
        history.record_attempt(ctx(user=f"u{minute % 7}", at=T0 + timedelta(minutes=minute)), failed=True)
    assert len(history.counters.data) < 200  # three days unswept would be about 3,000 keys
    last = ctx(user="u0", at=T0 + timedelta(minutes=72 * 60))
    counts = history.evidence(last).velocity
    assert counts.ip_failures == 12  # one hour of failures from the one address, nothing older
    assert counts.site_failures_day == 288  # yesterday's and today's daily windows are kept
