"""Acceptance (issue 14, item 2): the built wheel installs into a clean virtualenv with
``pip install authguard[redis]``, and a real Celery worker from that virtualenv sends a notification.

Nothing here imports the checkout: a portal written in a temporary folder (its settings and its
``celery.py``) runs with the virtualenv's interpreter, outside the repository, so a file the wheel
forgot, a dependency the ``redis`` extra lacks (kombu publishing over Redis needs ``celery[redis]``)
or an import of a test-only package fails here, as it would in a brokerage's deployment.

The portal has its own SQLite file, its own Redis database (13) and its own queue, so it shares
nothing with the suite's test database or cache.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

pytestmark = [pytest.mark.redis]

REPO = Path(__file__).resolve().parent.parent
# The broker's own Redis database: the suite's cache (and a FLUSHDB of it) lives elsewhere. Two runs of the
# suite at once on one Redis server (.ci/run's two Django legs) each name their own.
BROKER_DB = int(os.environ.get("AUTHGUARD_TEST_WHEEL_BROKER_DB", "13"))
WAIT_SECONDS = 60
SUBJECT = "[Wheel Portal] A sign-in method was added to your account"

SETTINGS = """\
# A brokerage portal's settings, reduced to what authguard and its notifications need.
SECRET_KEY = "wheel-install-test-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["localhost"]
USE_TZ = True
LANGUAGE_CODE = "en"
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "authguard",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "authguard.middleware.AuthguardMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
AUTHENTICATION_BACKENDS = ["authguard.login.ThrottleBackend", "django.contrib.auth.backends.ModelBackend"]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.contrib.auth.context_processors.auth",
                                           "django.contrib.messages.context_processors.messages",
                                           "django.template.context_processors.request"]},
    }
]
ROOT_URLCONF = "portal_urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
DEFAULT_FROM_EMAIL = "security@wheel-portal.example.jp"
AUTHGUARD_WEBAUTHN_RP_NAME = "Wheel Portal"
AUTHGUARD_WEBAUTHN_RP_ID = "localhost"
AUTHGUARD_WEBAUTHN_ORIGINS = ["http://localhost:8000"]
CELERY_BROKER_CONNECTION_TIMEOUT = 5
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_connect_timeout": 5, "socket_timeout": 10}
# This portal runs no beat (so no outbox retry): a cold first publish (Redis connection, queue declaration)
# took over the default 1 s on a loaded 2-core machine and the row then waited for a retry that never came.
AUTHGUARD_BROKER_PUBLISH_SECONDS = 15
# This run's database, mail folder, broker and queue follow.
"""

# After MAIL_FILE_PATH: mail goes to files, configured as the portal's Django wants it (MAILERS from 6.1 on).
MAIL = """\
import django
if django.VERSION >= (6, 1):
    MAILERS = {"default": {"BACKEND": "django.core.mail.backends.filebased.EmailBackend",
                           "OPTIONS": {"file_path": MAIL_FILE_PATH}}}
else:
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = MAIL_FILE_PATH
"""

URLS = """\
from django.urls import include, path

urlpatterns = [path("security/", include("authguard.urls"))]
"""

CELERY_APP = """\
# The portal's celery.py, as a portal copies it: every CELERY_* setting configures the app.
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal_settings")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
"""

# Runs in the portal: a user, then a notification in the caller's transaction; the commit hands the
# outbox row to the broker (authguard.notifications.delivery.enqueue on commit).
NOTIFY = """\
import json
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal_settings")
import django

django.setup()
from portal_celery import app  # noqa: E402,F401  the portal's app, so tasks publish to its broker

import authguard  # noqa: E402
from authguard import notifications  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.db import transaction  # noqa: E402

with transaction.atomic():
    user = get_user_model().objects.create_user("hanako", "hanako@example.jp", "correct horse 42")
    row = notifications.notify(user, "factor_added", context={"factor": "passkey"}, dedupe_key="wheel")
row.refresh_from_db()
print(json.dumps({"pk": row.pk, "to": row.to_email, "status": row.status, "file": authguard.__file__,
                  "version": authguard.__version__}))
"""


def _run(command: list[str], *, cwd: Path, env: dict[str, str], timeout: float) -> str:
    """Run ``command``; on failure the test fails with its output, not a bare CalledProcessError."""
    try:
        done = subprocess.run(
            command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{command[:4]} took longer than {timeout}s:\n{exc.stdout!r}\n{exc.stderr!r}")
    if done.returncode != 0:
        pytest.fail(f"{command} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}")
    return done.stdout


def _broker_url() -> str:
    """The test Redis server, on the broker's own database."""
    parts = urlsplit(os.environ["AUTHGUARD_TEST_REDIS_URL"])
    return urlunsplit(parts._replace(path=f"/{BROKER_DB}"))


def _clean_env(venv: Path, portal: Path) -> dict[str, str]:
    """The environment of a deployment: the virtualenv first on PATH, the portal importable, no checkout,
    no pytest settings module, no eager Celery."""
    drop = {"PYTHONPATH", "DJANGO_SETTINGS_MODULE", "VIRTUAL_ENV", "PYTHONHOME", "PYTHONSTARTUP"}
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("CELERY_")}
    env["PATH"] = os.pathsep.join([str(venv / "bin"), env.get("PATH", "")])
    env["VIRTUAL_ENV"] = str(venv)
    env["PYTHONPATH"] = str(portal)
    env["DJANGO_SETTINGS_MODULE"] = "portal_settings"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


@dataclass
class Installed:
    """The wheel, the virtualenv it went into, and the portal folder beside it."""

    wheel: Path
    venv: Path
    portal: Path
    env: dict[str, str]

    @property
    def python(self) -> str:
        return str(self.venv / "bin" / "python")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """Build the wheel from the checkout, make a clean virtualenv, install ``authguard[redis]`` from it."""
    tmp = tmp_path_factory.mktemp("wheel")
    dist = tmp / "dist"
    build_env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "DJANGO_SETTINGS_MODULE"}}
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(dist), str(REPO)]
    _run(build, cwd=tmp, env=build_env, timeout=300)
    (wheel,) = dist.glob("authguard-*.whl")

    venv = tmp / "venv"
    # The interpreter the suite runs on, without the suite's site-packages (a clean virtualenv).
    _run([sys.executable, "-m", "venv", str(venv)], cwd=tmp, env=build_env, timeout=120)
    portal = tmp / "portal"
    portal.mkdir()
    env = _clean_env(venv, portal)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-input", "--timeout", "60"]
    _run([*pip, f"{wheel}[redis]"], cwd=tmp, env=env, timeout=600)
    return Installed(wheel, venv, portal, env)


def test_the_wheel_installs_authguard_itself_not_the_checkout(installed: Installed) -> None:
    wheel_version = installed.wheel.name.split("-")[1]
    source = (REPO / "authguard" / "__init__.py").read_text(encoding="utf-8")
    match = re.search(r'^__version__ = "([^"]+)"', source, re.MULTILINE)
    assert match, "authguard/__init__.py declares no __version__"
    assert wheel_version == match.group(1)

    shown = _run(
        [installed.python, "-m", "pip", "show", "authguard"],
        cwd=installed.portal,
        env=installed.env,
        timeout=60,
    )
    assert re.search(rf"^Version: {re.escape(wheel_version)}$", shown, re.MULTILINE), shown
    assert re.search(rf"^Location: {re.escape(str(installed.venv))}/", shown, re.MULTILINE), shown

    probe = "import authguard, celery, kombu.transport.redis, redis; print(authguard.__file__)"
    where = Path(
        _run([installed.python, "-c", probe], cwd=installed.portal, env=installed.env, timeout=60).strip()
    )
    assert where.is_relative_to(installed.venv / "lib"), where
    assert not where.is_relative_to(REPO)


@dataclass
class Worker:
    """A running ``celery -A portal_celery worker`` from the virtualenv."""

    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""


def _forget_queue(broker: str, queue: str) -> None:
    """Delete the queue's list and bindings and the cache's keys: the database is left as it was found."""
    import redis

    client = redis.Redis.from_url(broker)
    try:
        for key in client.scan_iter(match=f"*{queue}*"):
            client.delete(key)
    finally:
        client.close()


@pytest.fixture
def portal(installed: Installed, tmp_path: Path) -> Iterator[tuple[Installed, Path, Path, Worker]]:
    """The portal written and migrated, and its worker running (always stopped, its queue removed)."""
    mail_dir = tmp_path / "mail"
    mail_dir.mkdir()
    database = tmp_path / "portal.sqlite3"
    broker = _broker_url()
    queue = f"authguard-wheel-{uuid.uuid4().hex[:12]}"
    per_run = {
        "DATABASES": {
            "default": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": str(database),
                "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 20},
            }
        },
        # A shared cache, as authguard.W004 asks; its keys carry the queue's name, so they go with it.
        "CACHES": {
            "default": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": broker,
                "KEY_PREFIX": queue,
            }
        },
        "MAIL_FILE_PATH": str(mail_dir),
        "CELERY_BROKER_URL": broker,
        "CELERY_TASK_DEFAULT_QUEUE": queue,
    }
    settings = SETTINGS + "".join(f"{name} = {value!r}\n" for name, value in per_run.items()) + MAIL
    (installed.portal / "portal_settings.py").write_text(settings, encoding="utf-8")
    (installed.portal / "portal_urls.py").write_text(URLS, encoding="utf-8")
    (installed.portal / "portal_celery.py").write_text(CELERY_APP, encoding="utf-8")
    (installed.portal / "notify_one.py").write_text(NOTIFY, encoding="utf-8")

    manage = [installed.python, "-m", "django"]  # django-admin of the virtualenv
    _run([*manage, "migrate", "--noinput", "-v", "0"], cwd=tmp_path, env=installed.env, timeout=180)
    checked = subprocess.run(
        [*manage, "check", "--fail-level", "ERROR"],
        cwd=tmp_path,
        env=installed.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert checked.returncode == 0, (
        f"manage.py check fails in the portal:\n{checked.stdout}\n{checked.stderr}"
    )

    log = tmp_path / "worker.log"
    command = [str(installed.venv / "bin" / "celery"), "-A", "portal_celery", "worker", "--pool=solo"]
    command += ["-Q", queue, "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel=INFO"]
    command += [f"--hostname=authguard-wheel-{uuid.uuid4().hex[:6]}@%h"]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=tmp_path, env=installed.env, stdout=out, stderr=subprocess.STDOUT
        )
    worker = Worker(process, log)
    try:
        _wait(lambda: " ready." in worker.output(), what="the worker to start", worker=worker)
        yield installed, tmp_path, mail_dir, worker
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        _forget_queue(broker, queue)


def _wait(condition: Callable[[], bool], *, what: str, worker: Worker, seconds: float = WAIT_SECONDS) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        if worker.process.poll() is not None:
            pytest.fail(
                f"the worker exited ({worker.process.returncode}) waiting for {what}:\n"
                f"{worker.output()[-5000:]}"
            )
        time.sleep(0.2)
    pytest.fail(f"timed out after {seconds}s waiting for {what}; worker log:\n{worker.output()[-5000:]}")


def _status(database: Path, pk: int) -> str | None:
    with sqlite3.connect(database, timeout=20) as db:
        found = db.execute("SELECT status FROM authguard_notification WHERE id = ?", (pk,)).fetchone()
    return found[0] if found else None


def test_a_worker_from_the_wheel_sends_a_notification(portal: tuple[Installed, Path, Path, Worker]) -> None:
    installed, tmp_path, mail_dir, worker = portal

    out = _run(
        [installed.python, str(installed.portal / "notify_one.py")],
        cwd=tmp_path,
        env=installed.env,
        timeout=120,
    )
    row = json.loads(out.strip().splitlines()[-1])
    assert Path(row["file"]).is_relative_to(installed.venv), row[
        "file"
    ]  # the wheel's authguard, not the checkout
    assert row["to"] == "hanako@example.jp"

    database = tmp_path / "portal.sqlite3"
    _wait(
        lambda: _status(database, row["pk"]) == "sent",
        what="the notification to be marked sent",
        worker=worker,
    )
    _wait(lambda: any(mail_dir.glob("*.log")), what="the mail file", worker=worker)
    (mail,) = [f.read_text(encoding="utf-8") for f in mail_dir.glob("*.log")]
    headers = mail.split("\n\n", 1)[0]
    assert re.search(r"^To: hanako@example\.jp$", headers, re.MULTILINE), mail
    assert re.search(rf"^Subject: {re.escape(SUBJECT)}$", headers, re.MULTILINE), mail
    assert re.search(r"^From: security@wheel-portal\.example\.jp$", headers, re.MULTILINE), mail
    # The worker, not the producer, sent it.
    assert re.search(r"Task authguard\.send_notification\[[^\]]+\] succeeded", worker.output()), (
        worker.output()
    )
