"""Mail settings on either Django: ``MAILERS`` from 6.1 on (``EMAIL_BACKEND`` and the other ``EMAIL_*`` are
deprecated there and refused beside it), ``EMAIL_BACKEND`` before. authguard sends through the default mailer,
so a portal configured either way gets its notices (docs/operations-backend.md, "Mail settings")."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import django
import pytest
from django.core import mail

from authguard.notifications.outbox import notify
from authguard.testing import mail_settings

from .conftest import use_mail_backend

ROOT = Path(__file__).resolve().parent.parent

LOAD = """
import warnings
warnings.filterwarnings("error", message=".*MAILERS", category=PendingDeprecationWarning)
import django
django.setup()
from django.core import mail
print(type(mail.mailers.default if hasattr(mail, "mailers") else mail.get_connection()).__module__)
"""


@pytest.mark.parametrize("module", ["demo_site.settings", "tests.settings", "tests.portal2.settings"])
def test_the_settings_load_without_a_mail_deprecation_and_name_a_backend(module: str) -> None:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": module}
    done = subprocess.run(
        [sys.executable, "-c", LOAD], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().startswith("django.core.mail.backends."), done.stdout


def test_mail_settings_name_the_setting_of_the_running_django() -> None:
    chosen = mail_settings("django.core.mail.backends.smtp.EmailBackend", host="127.0.0.1", port=2525)
    if django.VERSION >= (6, 1):
        assert chosen == {
            "MAILERS": {
                "default": {
                    "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
                    "OPTIONS": {"host": "127.0.0.1", "port": 2525},
                }
            }
        }
    else:
        assert chosen == {
            "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": 2525,
        }


def test_a_notice_goes_through_the_backend_so_chosen(
    user_factory: Any, django_capture_on_commit_callbacks: Any, settings: Any, tmp_path: Path
) -> None:
    """The file backend, configured through ``mail_settings``, receives the notice authguard sends: no
    ``EMAIL_*`` setting is read on the way (on 6.1 they raise beside ``MAILERS``)."""
    use_mail_backend(settings, "django.core.mail.backends.filebased.EmailBackend", file_path=str(tmp_path))
    alice = user_factory("alice", email="alice@example.jp")
    with django_capture_on_commit_callbacks(execute=True):
        row = notify(alice, "factor_added", context={"factor": "passkey"})
    assert row is not None
    row.refresh_from_db()
    assert row.status == "sent", row.last_error
    written = list(tmp_path.iterdir())
    assert len(written) == 1 and "alice@example.jp" in written[0].read_text()
    assert mail.outbox == []  # not the test's locmem: the configured backend carried it
