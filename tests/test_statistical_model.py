"""The Freeman et al. model against hand-computed values: smoothing, hierarchy, the unseen-value edge case."""

from __future__ import annotations

import dataclasses
import math

import pytest

from authguard.risk.history import DeviceState, Evidence
from authguard.risk.profile import Profile, feature_values, learn
from authguard.risk.signals import StatisticalModel
from authguard.risk.velocity import VelocityCounts

from .conftest import IP_OSAKA, IP_SG_VPS, IP_TOKYO, IP_TOKYO_2, UA_CHROME_WIN, UA_IPHONE
from .factories import T0, ctx

W_IP = [0.4, 0.3, 0.2, 0.1]
W_UA = [0.5, 0.3, 0.15, 0.05]


def evidence_for(login, profile_logins, population):
    """The evidence the live path gathers: the login's device cookie is known when the history used it."""
    data = None
    for past in profile_logins:
        data = learn(data, past, horizon_days=180)
    profile = Profile.at(data, login.time, 180)
    known = profile.count("dev", login.features["dev"]) > 0
    return Evidence(
        ctx=login,
        profile=profile,
        population=population,
        device=DeviceState(presented=login.device_hash is not None, known=known, trusted=False),
        velocity=VelocityCounts(),
    )


def population_for(login, *, counts):
    """A hand-written population: 10 logins, 2 users, and the given counts of the login's values."""
    values = feature_values(login)
    pop = {"#users": 2}
    for level in ("ip", "prefix", "asn", "cc", "ua", "browser", "os", "dtype"):
        pop[f"#{level}"] = 10
        pop[f"{level}:{values[level]}"] = counts.get(level, 0)
    pop.update({"~ip": 5, "~prefix": 4, "~asn": 3, "~cc": 2, "~ua": 4, "~browser": 3, "~os": 2, "~dtype": 2})
    return pop


@pytest.fixture
def model():
    return StatisticalModel(
        ip_weights=W_IP, ua_weights=W_UA, points_per_doubling=4.0, max_points=40, min_points=-20
    )


def test_population_probability_is_smoothed_per_level(geoip, model):
    login = ctx(ip=IP_TOKYO)
    pop = population_for(login, counts={"ip": 2, "prefix": 4, "asn": 6, "cc": 9})
    ev = evidence_for(login, [], pop)
    # M at each level = 1 + distinct values of every coarser level.
    expected = (
        0.4 * 2 / (10 + 1 + 4 + 3 + 2)
        + 0.3 * 4 / (10 + 1 + 3 + 2)
        + 0.2 * 6 / (10 + 1 + 2)
        + 0.1 * 9 / (10 + 1)
    )
    got = model.population_probability(ev, ("ip", "prefix", "asn", "cc"), W_IP, feature_values(login))
    assert got == pytest.approx(expected)


def test_unseen_values_get_one_over_n_plus_m(geoip, model):
    login = ctx(ip=IP_SG_VPS)
    pop = population_for(login, counts={})
    ev = evidence_for(login, [], pop)
    expected = 0.4 / 20 + 0.3 / 16 + 0.2 / 13 + 0.1 / 11
    got = model.population_probability(ev, ("ip", "prefix", "asn", "cc"), W_IP, feature_values(login))
    assert got == pytest.approx(expected)


def test_likelihood_ratio_hand_computed(geoip, model):
    # History: 2 logins from IP_TOKYO and 2 from IP_OSAKA, all Chrome on Windows.
    past = [
        ctx(ip=IP_TOKYO, at=T0),
        ctx(ip=IP_TOKYO, at=T0.replace(day=3)),
        ctx(ip=IP_OSAKA, at=T0.replace(day=4)),
        ctx(ip=IP_OSAKA, at=T0.replace(day=5)),
    ]
    # The login: a new IP in the same /24 as all four (the test ranges share 203.0.113.0/24), Tokyo's ASN
    # (seen twice), Japan (four times), same browser.
    login = ctx(ip=IP_TOKYO_2, at=T0.replace(day=6))
    pop = population_for(
        login, counts={"ip": 1, "prefix": 4, "asn": 6, "cc": 9, "ua": 5, "browser": 6, "os": 7, "dtype": 8}
    )
    ev = evidence_for(login, past, pop)
    p_ip = 0.4 * 1 / 20 + 0.3 * 4 / 16 + 0.2 * 6 / 13 + 0.1 * 9 / 11
    p_ip_user = 0.4 * 0 / 4 + 0.3 * 4 / 4 + 0.2 * 2 / 4 + 0.1 * 4 / 4
    p_ua = (
        0.5 * 5 / (10 + 1 + 3 + 2 + 2)
        + 0.3 * 6 / (10 + 1 + 2 + 2)
        + 0.15 * 7 / (10 + 1 + 2)
        + 0.05 * 8 / (10 + 1)
    )
    p_ua_user = 1.0  # every level seen in all 4 logins
    user_term = 10 / (2 * 4)  # p(u|A)/p(u|L) = (1/|U|) / (n_u/N)
    expected = user_term * (p_ip / p_ip_user) * (p_ua / p_ua_user)
    # (A known device whose browser did not change leaves the user agent out; here it is weighed.)
    model = StatisticalModel(
        ip_weights=W_IP, ua_weights=W_UA, max_points=40, min_points=-20, browser_update_neutral=False
    )
    lowering = StatisticalModel(
        ip_weights=W_IP, ua_weights=W_UA, user_agent_can_lower=True, browser_update_neutral=False
    )
    assert lowering.likelihood_ratio(ev) == pytest.approx(expected)
    # By default the user agent never lowers risk (it is a header the attacker writes): its ratio is >= 1.
    assert p_ua / p_ua_user < 1
    clamped = user_term * (p_ip / p_ip_user) * 1.0
    assert model.likelihood_ratio(ev) == pytest.approx(clamped)
    finding = list(model.evaluate(ev))[0]
    assert finding.code == "familiar_login"
    assert finding.score == round(max(-20, 4.0 * math.log2(clamped)))


def test_value_unseen_at_every_level_caps_the_ratio_at_four(geoip, model):
    past = [ctx(ip=IP_TOKYO, ua=UA_CHROME_WIN, at=T0)]
    # Singapore hosting, an iPhone: nothing of either hierarchy was ever seen for this user.
    login = ctx(ip=IP_SG_VPS, ua=UA_IPHONE, at=T0.replace(day=3))
    pop = population_for(
        login, counts={"ip": 1, "prefix": 1, "asn": 1, "cc": 1, "ua": 1, "browser": 1, "os": 1, "dtype": 1}
    )
    ev = evidence_for(login, past, pop)
    user_term = 10 / (2 * 1)
    # p(x|u,L) = p(x)/4 for both features, so each contributes exactly 4
    # (the keystone port's bug would return p(x)/4 itself, scoring a brand-new network as almost no risk).
    assert model.likelihood_ratio(ev) == pytest.approx(user_term * 4 * 4)
    finding = list(model.evaluate(ev))[0]
    assert finding.code == "unfamiliar_login"
    assert finding.score == min(40, round(4.0 * math.log2(user_term * 16)))


def test_no_history_gives_no_ratio_and_only_the_population_speaks(geoip, model):
    login = ctx()
    common = evidence_for(login, [], population_for(login, counts={"cc": 9}))
    assert model.likelihood_ratio(common) is None
    assert list(model.evaluate(common)) == []
    rare = evidence_for(login, [], population_for(login, counts={"cc": 0}))
    assert list(model.evaluate(rare)) == []  # 10 logins site-wide: too few to call a country rare
    young = StatisticalModel(rare_country_min_population=10)
    assert [f.code for f in young.evaluate(rare)] == ["rare_country"]


@pytest.mark.parametrize("weights", [[0.5, 0.5], [0.5, 0.5, 0.5, -0.5], [0.1, 0.1, 0.1, 0.1]])
def test_weights_must_be_a_distribution(weights):
    with pytest.raises(ValueError):
        StatisticalModel(ip_weights=weights)


def test_a_familiar_network_does_not_lower_the_score_of_a_new_browser(geoip, model):
    """Low and slow: the thief picks the customer's ISP, city and hour; only the browser is new."""
    past = [ctx(ip=IP_TOKYO, at=T0.replace(day=day)) for day in range(1, 9)]
    pop = population_for(
        ctx(ip=IP_TOKYO), counts={"ip": 1, "prefix": 1, "asn": 2, "cc": 9, "ua": 5, "browser": 6, "os": 7}
    )
    own = evidence_for(ctx(ip=IP_TOKYO, at=T0.replace(day=10)), past, pop)
    (familiar,) = model.evaluate(own)
    assert own.device.known and familiar.code == "familiar_login" and familiar.score < 0
    new = evidence_for(ctx(ip=IP_TOKYO, at=T0.replace(day=10), device="dev-thief"), past, pop)
    assert model.likelihood_ratio(new) == pytest.approx(model.likelihood_ratio(own))  # the same login else
    (capped,) = model.evaluate(new)
    assert (capped.code, capped.score, capped.evidence["new_device"]) == ("familiar_login", 0, True)
    assert "no discount" in str(capped.reason)
    # The copy of a DBSC-bound device's cookie without its key's proof: known, and still no discount.
    copied = dataclasses.replace(own, ctx=dataclasses.replace(own.ctx, dbsc="bound_missing_proof"))
    assert copied.device.known and list(model.evaluate(copied))[0].score == 0
    # Without a cookie on an account whose sign-ins carry one, the browser is as new.
    (bare,) = model.evaluate(evidence_for(ctx(ip=IP_TOKYO, at=T0.replace(day=10), device=None), past, pop))
    assert bare.score == 0
    # On an account only ever signed into without a cookie (an app without a jar), its cookie-less sign-in is
    # familiar, but a browser presenting a cookie is new: no discount (red team, round seventy-four).
    app = [ctx(ip=IP_TOKYO, at=T0.replace(day=day), device=None) for day in range(1, 9)]
    (habit,) = model.evaluate(evidence_for(ctx(ip=IP_TOKYO, at=T0.replace(day=10), device=None), app, pop))
    assert habit.code == "familiar_login" and habit.score < 0
    (first,) = model.evaluate(
        evidence_for(ctx(ip=IP_TOKYO, at=T0.replace(day=10), device="dev-thief"), app, pop)
    )
    assert (first.code, first.score, first.evidence["new_device"]) == ("familiar_login", 0, True)
    # So is a browser there that dropped its cookie, of a class (family, OS, device type) the account never
    # signed in with (red team, round seventy-seven).
    (dropped,) = model.evaluate(
        evidence_for(ctx(ip=IP_TOKYO, at=T0.replace(day=10), device=None, ua=UA_IPHONE), app, pop)
    )
    assert (dropped.code, dropped.score, dropped.evidence["new_device"]) == ("familiar_login", 0, True)
    # A portal may let a familiar network lower it again (the option), and an unfamiliar login still counts.
    lowering = StatisticalModel(ip_weights=W_IP, ua_weights=W_UA, new_device_can_lower=True)
    assert list(lowering.evaluate(new))[0].score == list(lowering.evaluate(own))[0].score < 0
    far = evidence_for(ctx(ip=IP_SG_VPS, at=T0.replace(day=10), device="dev-thief"), past, pop)
    assert list(model.evaluate(far))[0].score > 0
