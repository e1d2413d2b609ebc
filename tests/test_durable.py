"""authguard.durable: a refusal's record outlives the rollback of the transaction that refused."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone

from authguard import durable
from authguard.models import CampaignFlag


class Refused(Exception):
    pass


def _flag(symbol: str) -> Any:
    return lambda: CampaignFlag.objects.get_or_create(
        symbol=symbol,
        defaults={"flagged_at": timezone.now(), "accounts": 10, "risky_accounts": 0, "window_hours": 72},
    )


def test_a_record_made_inside_a_rolled_back_transaction_is_written_again_after_the_view(db: Any) -> None:
    with durable.collecting() as writes:
        with pytest.raises(Refused), transaction.atomic():
            durable.record_refusal(_flag("4Z1A"))
            assert CampaignFlag.objects.filter(symbol="4Z1A").exists()
            raise Refused
        assert not CampaignFlag.objects.filter(symbol="4Z1A").exists()
    assert len(writes) == 1
    durable.write_again(writes)
    durable.write_again(writes)  # idempotent writes: the middleware may find the first write committed
    assert CampaignFlag.objects.filter(symbol="4Z1A").count() == 1


def test_outside_a_request_nothing_is_collected(db: Any) -> None:
    durable.record_refusal(_flag("5Z4A"))
    assert CampaignFlag.objects.filter(symbol="5Z4A").exists()
    with durable.collecting() as writes:
        pass
    assert writes == []


def test_a_record_that_cannot_be_written_is_logged_and_never_raised(db: Any, caplog: Any) -> None:
    def broken() -> None:
        raise RuntimeError("database gone")

    with durable.collecting() as writes:
        durable.record_refusal(broken)
    durable.write_again(writes)
    assert [r.message for r in caplog.records].count(
        "authguard: a refusal's record could not be written"
    ) == 2
