"""A small online brokerage portal that shows authguard at work."""

from .celery import app as celery_app

__all__ = ["celery_app"]
