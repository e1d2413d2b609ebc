"""The second portal's Celery app, configured from the ``CELERY_*`` settings (eager in the tests).

Created by the accounts app's ``ready()`` only, so importing ``tests.portal2`` under another settings module
(the main suite's collection) never makes a second current Celery app.
"""

from __future__ import annotations

from celery import Celery

app = Celery("portal2")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
