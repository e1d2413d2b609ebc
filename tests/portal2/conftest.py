"""Portal two's tests run only under its own settings (``--ds=tests.portal2.settings``): pytest-django binds
one settings module per process, and these tests need portal two's user model and URLs. Under any other
settings (the main suite's ``tests.settings``) nothing here is collected.

The shared fixtures of ``tests/conftest.py`` that are portal-agnostic (``geoip``, ``totp_factory``,
``authenticator``, the cache reset) apply here too; ``user_factory`` is replaced by one for this portal's
e-mail-login user model.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.conf import settings

SETTINGS_MODULE = "tests.portal2.settings"

if settings.SETTINGS_MODULE != SETTINGS_MODULE:
    collect_ignore_glob = ["test_*.py"]


@pytest.fixture
def user_factory(db: Any) -> Callable[..., Any]:
    """``user_factory("alice")``: a customer of portal two signing in as ``alice@example.jp``, with a
    trading account (¥1,000,000 cash, no positions); ``holdings={...}`` and ``cash=`` change that."""
    from .accounts import trading

    def make(
        name: str = "alice",
        *,
        password: str = "correct horse battery",
        cash: int = 1_000_000,
        holdings: dict[str, int] | None = None,
        **extra: Any,
    ) -> Any:
        email = name if "@" in name else f"{name}@example.jp"
        user = trading.open_account(email, password, cash=cash, holdings=holdings or {})
        if extra:
            for key, value in extra.items():
                setattr(user, key, value)
            user.save()
        return user

    return make
