"""A web node of its own for tests/test_faults_clock.py: run under ``faketime`` (its clock off) against the
test database, it serves requests through Django's test client and prints what it saw as one JSON line.

``python -m tests.skewed_node '{"settings": {...}, "requests": [[path, body, meta], ...]}'`` with
``DJANGO_SETTINGS_MODULE=tests.settings`` and ``AUTHGUARD_TEST_DATABASE_URL`` naming the test database.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

import django


def main(job: dict[str, Any]) -> dict[str, Any]:
    from django.conf import settings
    from django.test import Client, override_settings
    from django.test.utils import setup_test_environment

    from authguard import clock

    setup_test_environment()  # "testserver" allowed, e-mail in memory
    out: dict[str, Any] = {"node_time": time.time(), "answers": []}
    with override_settings(**job.get("settings", {})):
        client = Client(**job.get("client", {}))
        for path, body, meta in job["requests"]:
            response = client.post(path, json.dumps(body), content_type="application/json", **meta)
            out["answers"].append([response.status_code, json.loads(response.content or b"null")])
        cookie = client.cookies.get(settings.SESSION_COOKIE_NAME)
        out["session"] = cookie.value if cookie else None
        # The browser's whole jar: its device cookie goes with its session to every node.
        from authguard.conf import app_settings

        device = client.cookies.get(app_settings.DEVICE_COOKIE_NAME)
        out["device"] = device.value if device else None
        measured = clock.skew()
        out["offset"] = measured.offset if measured else None
        out["clock_now"] = clock.timestamp()
    return out


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    django.setup()
    print(json.dumps(main(json.loads(sys.argv[1]))))
