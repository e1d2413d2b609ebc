"""Middleware cost benchmark (issue 4, acceptance item 7): ``make bench-load`` / ``python -m bench.load``.

(``python -m bench.load logins``, the login path under load for issue 15, is :mod:`bench.load.logins`.)

Method, in one run:

1. A throwaway database: a SQLite file in a temporary folder, or, when ``DATABASE_URL`` names a
   PostgreSQL server, a new database on it (dropped at the end). Migrated; if the migrations lag behind the
   models, the tables are built from the models (``migrate --run-syncdb``), and the report says so.
2. The demo's GeoIP databases, the instruments, and a customer with the demo's ~30-holding portfolio and a
   TOTP authenticator.
3. The customer signs in as a browser does (:mod:`bench.load.customer`): the login page issues the device
   cookie, ``POST /api/login`` runs authguard's risk-scored login, and a step-up, if asked for, is passed
   with a real TOTP code. The session is checked to be verified and to serve the portfolio.
4. Two gunicorn servers with the same number of sync workers on the same database: the demo's settings,
   and :mod:`bench.load.settings_without` (the same minus ``authguard.middleware.AuthguardMiddleware``).
5. A loopback load generator (``wrk`` if installed, else a Python client in processes) sends
   ``GET /`` with the session's cookies, browser and network to each in turn, in interleaved rounds
   (A B B A A B ...), so machine noise falls on both. Every answer that is not a 200 is counted; any
   makes the run invalid (a redirect to step-up is cheaper than the page and must not pass for it).
6. The report: requests/s per round, the median per server, their ratio against the goal (>= 0.95),
   and latency percentiles.
"""
