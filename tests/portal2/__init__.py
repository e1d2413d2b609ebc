"""A second, minimal brokerage portal for authguard's tests (issue 14, acceptance 1): an e-mail-login custom
user, Django's own LoginView, a JSON login, DRF session and token auth, an ``async def`` view and an order
endpoint through the order guard. Independent of ``demo_site``; see README.md."""
