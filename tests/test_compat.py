"""Issue 12: the dotted paths settings, stored policies and portals named before the package split still
resolve (authguard/compat.py), to the very objects of their new homes."""

from __future__ import annotations

import pytest
from django.utils.module_loading import import_string

import authguard.factors
import authguard.orders
from authguard.factors import totp
from authguard.login import backend
from authguard.orders import guard
from authguard.risk import signals_device
from authguard.sessions import middleware


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("authguard.risk_signals.DeviceCookie", signals_device.DeviceCookie),
        ("authguard.login.ThrottleBackend", backend.ThrottleBackend),
        ("authguard.middleware.AuthguardMiddleware", middleware.AuthguardMiddleware),
        ("authguard.orders.submit_order", guard.submit_order),
        # authguard/factors/__init__.py was split into several modules: each name is found in its new one.
        ("authguard.factors.verify_totp", totp.verify_totp),
    ],
)
def test_an_old_path_names_the_new_object(old: str, new: object) -> None:
    assert import_string(old) is new


def test_a_package_still_gives_its_submodules_and_refuses_unknown_names() -> None:
    from authguard.orders import exposure  # through the package's __getattr__ before it is imported

    assert authguard.orders.exposure is exposure
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        authguard.factors.no_such_name  # noqa: B018
