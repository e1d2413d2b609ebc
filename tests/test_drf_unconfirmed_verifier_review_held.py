"""Review of c95164f (held since): a session verified by a factor since unconfirmed (disabled at the failure
limit) now counts as cooling off (inventory.verified_by_cooling_off_factor: ``not device.confirmed``); the
API token door (drf.StepUpRequired._token_fresh) reads the same verifier and still lets it through."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from django.contrib.sessions.backends.cache import SessionStore
from django_otp.plugins.otp_totp.models import TOTPDevice

from authguard import drf
from authguard.factors import inventory
from authguard.factors.verifier import VERIFIER_SESSION_KEY

pytestmark = [pytest.mark.django_db]


def test_unconfirmed_verifier_counts_as_cooling_off_on_both_doors(user_factory: Any) -> None:
    hanako = user_factory("hanako")
    device = TOTPDevice.objects.create(user=hanako, name="app", confirmed=True)
    drf.note_token_strength("tok-1", method="totp", device=device)
    # Disabled at the failure limit (factors.base._count_factor_failure): confirmed=False, row kept.
    TOTPDevice.objects.filter(pk=device.pk).update(confirmed=False)

    session = SessionStore()
    session[VERIFIER_SESSION_KEY] = device.persistent_id
    request = SimpleNamespace(session=session, user=hanako)
    assert inventory.verified_by_cooling_off_factor(request) is True  # the session door: refused

    fresh, cooling = drf.StepUpRequired()._token_fresh(hanako, "tok-1")
    assert fresh
    assert cooling, "the token door lets a step-up by an unconfirmed (disabled) factor through"
