"""The live store: a constant number of queries per login, whatever the history's length."""

from __future__ import annotations

from datetime import timedelta

import pytest

from authguard.models import KnownDevice, PopulationCount, RiskProfile
from authguard.models.population import PopulationDelta
from authguard.risk.history import DatabaseHistory, fold_population, fold_when_due
from authguard.risk.profile import POPULATION_FEATURES

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
def test_gathering_evidence_costs_two_queries(user_factory, django_assert_num_queries, prior):
    user = user_factory(f"user{prior}")
    history = learn_n(user, prior)
    login = ctx(user=user.username, ip=IP_SG_VPS, device="another-browser", at=T0 + timedelta(days=30))
    object.__setattr__(login, "user_id", user.pk)
    # Issue 15: the profile and whether the browser is a trusted device in one query, the population counts.
    with django_assert_num_queries(2):
        evidence = history.evidence(login)
    assert evidence.profile.logins == prior
    assert not evidence.device.known and evidence.device.presented


def test_a_first_login_costs_two_queries_too(user_factory, django_assert_num_queries):
    user = user_factory("newcomer")
    login = ctx(user=user.username, ip=IP_SG_VPS, device="another-browser", at=T0)
    object.__setattr__(login, "user_id", user.pk)
    with django_assert_num_queries(2):  # no profile row: the device is asked in the same statement
        evidence = DatabaseHistory().evidence(login)
    assert evidence.profile.logins == 0
    assert not evidence.device.known and evidence.device.presented and not evidence.device.trusted


@pytest.mark.parametrize(
    ("profile", "trusted_for", "revoked", "trusted"),
    [
        (False, timedelta(days=30), False, True),  # a first login with a trusted browser (no profile row)
        (True, timedelta(days=30), False, True),
        (True, timedelta(days=30), True, False),  # revoked by the customer
        (True, -timedelta(seconds=1), False, False),  # trusted until just before the login
        (True, None, False, False),  # listed, never trusted
    ],
)
def test_a_browser_is_trusted_only_while_its_trust_runs_and_it_is_not_revoked(
    user_factory, profile, trusted_for, revoked, trusted
):
    user = user_factory("trusting")
    if profile:
        learn_n(user, 2)
    login = ctx(user=user.username, ip=IP_TOKYO, device="trusted-browser", at=T0 + timedelta(days=1))
    object.__setattr__(login, "user_id", user.pk)
    other = ctx(user=user.username, ip=IP_TOKYO, device="other-browser", at=T0 + timedelta(days=1))
    object.__setattr__(other, "user_id", user.pk)
    for hash_, until in ((login.device_hash, trusted_for), (other.device_hash, timedelta(days=30))):
        KnownDevice.objects.update_or_create(
            user=user, cookie_hash=hash_,
            defaults={
                "first_seen_at": T0, "last_seen_at": T0,
                "trusted_until": None if until is None else login.time + until,
                "revoked_at": T0 if revoked and hash_ == login.device_hash else None,
            },
        )  # fmt: skip
    assert DatabaseHistory().evidence(login).device.trusted is trusted
    # Another browser's trust is not this one's, and a login without a cookie is never trusted.
    assert DatabaseHistory().evidence(other).device.trusted is True
    bare = ctx(user=user.username, ip=IP_TOKYO, device=None, at=T0 + timedelta(days=1))
    object.__setattr__(bare, "user_id", user.pk)
    assert DatabaseHistory().evidence(bare).device.trusted is False


def test_a_browser_trusted_on_one_account_is_not_trusted_on_another(user_factory):
    owner, other = user_factory("owner"), user_factory("neighbour")
    learn_n(other, 2)
    login = ctx(user=owner.username, ip=IP_TOKYO, device="shared-browser", at=T0 + timedelta(days=1))
    object.__setattr__(login, "user_id", owner.pk)
    KnownDevice.objects.create(
        user=owner, cookie_hash=login.device_hash, first_seen_at=T0, last_seen_at=T0,
        trusted_until=login.time + timedelta(days=30),
    )  # fmt: skip
    assert DatabaseHistory().evidence(login).device.trusted is True
    # The same cookie presented for the other account (a thief who holds the owner's trusted browser).
    object.__setattr__(login, "user_id", other.pk)
    assert DatabaseHistory().evidence(login).device.trusted is False


def test_learning_writes_profile_population_and_device(user_factory, settings):
    settings.AUTHGUARD_POPULATION_FOLD_SECONDS = 900
    user = user_factory("alice")
    learn_n(user, 3)
    profile = RiskProfile.objects.get(user=user).data
    assert profile["n"][1] == 3 and profile["t"]["ip"][1] == 3
    # Issue 15: a login appends its values; the counts change only when they are folded.
    assert not PopulationCount.objects.filter(key="cc:JP").exists()
    assert PopulationDelta.objects.filter(key="cc:JP").count() == 3
    assert fold_population() == 3 * len(POPULATION_FEATURES) + 1
    assert not PopulationDelta.objects.exists()
    assert PopulationCount.objects.get(key="cc:JP").count == 3
    assert PopulationCount.objects.get(key="~cc").count == 1
    assert PopulationCount.objects.get(key="#users").count == 1
    device = KnownDevice.objects.get(user=user)
    assert device.last_place == "Tokyo, JP"


def test_a_recent_factor_change_is_reported(user_factory):
    from authguard.risk.history import note_factor_change
    from authguard.risk.signals import AccountContext

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
    from authguard.risk.history import MemoryHistory

    history = MemoryHistory()
    for minute in range(0, 72 * 60, 5):  # three days, a failed login every five minutes
        history.record_attempt(ctx(user=f"u{minute % 7}", at=T0 + timedelta(minutes=minute)), failed=True)
    assert len(history.counters.data) < 200  # three days unswept would be about 3,000 keys
    last = ctx(user="u0", at=T0 + timedelta(minutes=72 * 60))
    counts = history.evidence(last).velocity
    assert counts.ip_failures == 12  # one hour of failures from the one address, nothing older
    assert counts.site_failures_day == 288  # yesterday's and today's daily windows are kept


# -- population counts off the login path (issue 15) ---------------------------------------------------------


def test_a_login_writes_no_shared_row_only_its_own_appended_values(user_factory, settings):
    """The totals and distinct counts every login used to update in its transaction are not touched."""
    settings.AUTHGUARD_POPULATION_FOLD_SECONDS = 900
    user = user_factory("alice")
    learn_n(user, 1)
    fold_population()
    totals = dict(PopulationCount.objects.values_list("key", "count"))
    history = DatabaseHistory()
    login = ctx(user=user.username, at=T0 + timedelta(days=1))
    object.__setattr__(login, "user_id", user.pk)
    evidence = history.evidence(login)
    history.learn(login, evidence)
    assert dict(PopulationCount.objects.values_list("key", "count")) == totals
    assert sorted(PopulationDelta.objects.values_list("key", flat=True)) == sorted(
        login.population_value_keys.values()
    )


def test_folding_adds_totals_and_counts_each_new_value_once_whatever_the_batching(user_factory, settings):
    settings.AUTHGUARD_POPULATION_FOLD_SECONDS = 900
    alice, bob = user_factory("alice"), user_factory("bob")
    learn_n(alice, 2)
    learn_n(bob, 1)
    assert fold_population(batch=4) == 3 * len(POPULATION_FEATURES) + 2  # many small batches
    counts = dict(PopulationCount.objects.values_list("key", "count"))
    assert counts["#users"] == 2 and counts["cc:JP"] == 3 and counts["#cc"] == 3
    assert counts["~cc"] == 1  # Japan is one country, even when its three logins were folded apart
    learn_n(bob, 1)
    fold_population()
    assert PopulationCount.objects.get(key="~cc").count == 1
    assert PopulationCount.objects.get(key="#users").count == 2  # bob was not new any more


def test_the_fold_runs_once_per_period_after_commit(
    user_factory, settings, django_capture_on_commit_callbacks, monkeypatch
):
    from django.core.cache import cache

    cache.clear()
    monkeypatch.setattr("authguard.risk.history._claimed_period", None)  # no period seen by this process yet
    settings.AUTHGUARD_POPULATION_FOLD_SECONDS = 3600
    user = user_factory("alice")
    with django_capture_on_commit_callbacks(execute=True):
        learn_n(user, 1)
    assert not PopulationDelta.objects.exists()  # the period's first login folded, after its commit
    with django_capture_on_commit_callbacks(execute=True):
        learn_n(user, 1)
    assert PopulationDelta.objects.count() == len(POPULATION_FEATURES)  # same period: waits for the next
    fold_when_due()
    assert PopulationDelta.objects.count() == len(POPULATION_FEATURES)


def test_a_failing_fold_never_fails_the_login(user_factory, settings, monkeypatch, caplog):
    from django.core.cache import cache

    cache.clear()
    settings.AUTHGUARD_POPULATION_FOLD_SECONDS = 900
    user = user_factory("alice")
    learn_n(user, 1)
    settings.AUTHGUARD_POPULATION_FOLD_SECONDS = 0  # due at once

    def broken(**kwargs):
        raise RuntimeError("database gone")

    monkeypatch.setattr("authguard.risk.history.fold_population", broken)
    fold_when_due()  # logged, not raised
    assert "population fold failed" in caplog.text
    assert PopulationDelta.objects.count() == len(POPULATION_FEATURES) + 1


def test_the_replay_reads_counts_as_of_the_last_fold_in_event_time():
    """MemoryHistory folds at each period boundary of event time, as the live store does once a period."""
    from authguard.risk.history import MemoryHistory

    history = MemoryHistory(fold_every=3600)
    first = ctx(user="u1", at=T0)
    history.learn(first, history.evidence(first))
    same_hour = ctx(user="u2", at=T0 + timedelta(minutes=10))
    assert history.evidence(same_hour).population_count("cc:JP") == 0  # not folded yet
    history.learn(same_hour, history.evidence(same_hour))
    next_hour = ctx(user="u3", at=T0 + timedelta(hours=1))
    evidence = history.evidence(next_hour)
    assert evidence.population_count("cc:JP") == 2 and evidence.population_count("#users") == 2
    assert evidence.population_count("~cc") == 1
    immediate = MemoryHistory(fold_every=0)
    immediate.learn(first, immediate.evidence(first))
    assert immediate.evidence(same_hour).population_count("cc:JP") == 1


def test_with_no_fold_period_a_login_is_counted_at_once(user_factory, settings):
    """``AUTHGUARD_POPULATION_FOLD_SECONDS = 0``: the old rule (small portals, the tests' settings)."""
    settings.AUTHGUARD_POPULATION_FOLD_SECONDS = 0
    learn_n(user_factory("alice"), 2)
    assert not PopulationDelta.objects.exists()
    assert (
        PopulationCount.objects.get(key="cc:JP").count == 2
        and PopulationCount.objects.get(key="~cc").count == 1
    )
