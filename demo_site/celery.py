"""The demo's Celery app. Without a broker (``make demo``) tasks run eagerly in the web process.

With ``REDIS_URL`` (or ``CELERY_BROKER_URL``) set, tasks go to the broker, and ``make worker`` runs
``celery -A demo_site worker --beat``: the worker sends notifications, and the embedded beat runs
authguard's periodic tasks. ``docs/operations-backend.md`` explains the outbox and the tasks.

:func:`authguard.celery.make_app` is what a portal's ``celery.py`` calls too (docs/integration.md): every
``CELERY_*`` Django setting configures the app (``namespace="CELERY"``), authguard's broker timeouts apply
where the settings name none, authguard's periodic tasks join ``beat_schedule``, and the tasks of installed
apps (``authguard.tasks``) are discovered automatically.
"""

from __future__ import annotations

import os

from authguard.celery import make_app

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo_site.settings")

app = make_app("demo_site")
