"""Red team, round seventy-six (held since): the session's own verifier record
(``inventory.VERIFIER_SESSION_KEY``)."""

from __future__ import annotations

from typing import Any

import pytest

from authguard.models import PasskeyDevice

from .conftest import bind_passkey
from .factor_scenarios import new_key

pytestmark = pytest.mark.django_db


def test_held_a_deleted_passkeys_persistent_id_never_names_the_next_one(hanako: Any) -> None:
    """Held: the verifier is kept as django-otp's ``persistent_id`` (model label / pk). Deleting the newest
    passkey and binding another does not hand the new one the old id (SQLite AUTOINCREMENT, PostgreSQL
    identity), so a session verified with a removed passkey never resolves to a later one."""
    first = bind_passkey(hanako, new_key())
    gone_id = first.persistent_id
    PasskeyDevice.objects.filter(pk=first.pk).delete()
    second = bind_passkey(hanako, new_key())
    assert second.persistent_id != gone_id
