"""The demo's Celery app. Without a broker (``make demo``) tasks run eagerly in the web process.

With ``REDIS_URL`` (or ``CELERY_BROKER_URL``) set, tasks go to the broker, and ``make worker`` runs
``celery -A demo_site worker --beat``: the worker sends notifications, and the embedded beat runs the
periodic tasks of ``CELERY_BEAT_SCHEDULE`` (demo_site/settings.py). ``docs/operations-backend.md``
explains the outbox and the tasks.

Every ``CELERY_*`` Django setting configures the app (``namespace="CELERY"``), and the tasks of
installed apps (``authguard.tasks``) are discovered automatically.
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo_site.settings")

app = Celery("demo_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
