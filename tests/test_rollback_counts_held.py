"""Red team round forty-two (b): ``durable.outlive_rollback`` (round forty-one/two) made to write twice or
never: portal views that nest transactions, catch the failure in a savepoint, or roll a savepoint back
after the count, under ``ATOMIC_REQUESTS``. Each wrong password must count exactly once."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import authenticate
from django.db import transaction
from django.http import HttpRequest, JsonResponse
from django.urls import include, path

from authguard.models import AccountLock, LoginEvent, Outcome

from .conftest import IP_US_HOME, UA_CHROME_WIN


def _nested_commit(request: HttpRequest) -> JsonResponse:
    """authenticate() in a savepoint of its own inside the request's transaction; answered, committed."""
    with transaction.atomic():
        user = authenticate(request, username="alice", password=request.POST.get("password"))
    return JsonResponse({"ok": user is not None}, status=200 if user else 401)


def _rolled_back_savepoint(request: HttpRequest) -> JsonResponse:
    """The count written inside a savepoint the view rolls back itself (set_rollback), then committed."""
    with transaction.atomic():
        user = authenticate(request, username="alice", password=request.POST.get("password"))
        if user is None:
            transaction.set_rollback(True)
    return JsonResponse({"ok": user is not None}, status=200 if user else 401)


def _savepoint_after_the_count(request: HttpRequest) -> JsonResponse:
    """The count, then an unrelated savepoint that fails and is caught; the view commits."""
    user = authenticate(request, username="alice", password=request.POST.get("password"))
    try:
        with transaction.atomic():
            LoginEvent.objects.filter(pk=-1).update(outcome=Outcome.REFUSED)
            raise ValueError("audit hook failed")
    except ValueError:
        pass
    return JsonResponse({"ok": user is not None}, status=200 if user else 401)


def _no_savepoint_raises(request: HttpRequest) -> JsonResponse:
    """authenticate() in ``atomic(savepoint=False)``, then the view raises (a 500)."""
    with transaction.atomic(savepoint=False):
        user = authenticate(request, username="alice", password=request.POST.get("password"))
    if user is None:
        raise PermissionError("no")
    return JsonResponse({"ok": True})


urlpatterns = [
    path("p/nested", _nested_commit),
    path("p/rolled", _rolled_back_savepoint),
    path("p/after", _savepoint_after_the_count),
    path("p/nosp", _no_savepoint_raises),
    path("", include("demo_site.urls")),
]

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__), pytest.mark.usefixtures("geoip")]


@pytest.mark.usefixtures("atomic_requests")
@pytest.mark.parametrize("url", ["/p/nested", "/p/rolled", "/p/after", "/p/nosp"])
def test_held_each_wrong_password_counts_once_whatever_the_view_does_with_its_transaction(
    url: str, user_factory: Any, browser_at: Any, settings: Any
) -> None:
    """Secure: a wrong password counts once towards the lock (docs/faults.md, "A failure outlives the view's
    rollback": "a view that commits counts each failure once"), never twice (a lock on demand with half the
    guesses) and never not at all."""
    settings.AUTHGUARD_LOCKOUT_FAILURES = 10
    settings.AUTHGUARD_RISK_SIGNALS = []
    alice = user_factory("alice")
    client = browser_at(IP_US_HOME, UA_CHROME_WIN)
    client.raise_request_exception = False
    for i in range(3):
        client.post(url, {"password": f"guess-{i}"})
    lock = AccountLock.objects.filter(user=alice).first()
    events = LoginEvent.objects.filter(user=alice, outcome=Outcome.BAD_PASSWORD).count()
    assert (lock.failures if lock else 0, events) == (3, 3), (url, lock.failures if lock else 0, events)


def test_held_django_keeps_a_commit_hook_where_outlive_rollback_looks_for_it() -> None:
    """``durable.outlive_rollback`` tells a rolled-back write by its commit hook still waiting in the
    connection's list (Django 5.2 and 6.x: ``(savepoint ids, function, robust)``): the layout it reads."""
    from django.db import connection

    def hook() -> None:
        return None

    with transaction.atomic():
        transaction.on_commit(hook)
        assert any(hook in entry for entry in connection.run_on_commit)
        transaction.set_rollback(True)
    assert not any(hook in entry for entry in connection.run_on_commit)
