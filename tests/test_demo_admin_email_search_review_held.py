"""Review of 1a129ac (held since): "nor read e-mails they may not view". The console's UserSearchMixin now
adds the e-mail lookup only for staff with auth.view_user, but the demo's AccountAdmin still lists
``user__email`` in its own search_fields: a staff member with brokerage.view_account alone spells a
customer's address out."""

from __future__ import annotations

from typing import Any

import pytest

from demo_site.brokerage.models import Account

from .console_data import staff_user
from .staff_fixtures import staff_client

pytestmark = [pytest.mark.django_db]


def test_view_account_without_view_user_cannot_search_by_email(user_factory: Any) -> None:
    hanako = user_factory("hanako", email="hanako.private77@mail.example")
    Account.objects.get_or_create(user=hanako)
    client = staff_client(staff_user("looker", perms=("brokerage.view_account",)))

    def hits(q: str) -> int:
        page = client.get("/admin/brokerage/account/", {"q": q})
        assert page.status_code == 200, page.status_code
        return page.context["cl"].result_count

    assert hits("hanako.private77@") == 0, "her private e-mail address confirmed by a search"
