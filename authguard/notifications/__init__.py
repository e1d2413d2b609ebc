"""Customer and staff notifications: an outbox row written with the event, sent by Celery
after commit (``outbox``).
"""

from __future__ import annotations

from authguard.compat import forward_to

__getattr__ = forward_to(__name__, "authguard.notifications.outbox")
