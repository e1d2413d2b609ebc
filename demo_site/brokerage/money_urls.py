"""URLs of the demo brokerage's money movements (withdrawals, bank accounts), in the ``brokerage`` namespace.

``api_patterns`` are mounted under ``/api/`` before the JSON catch-all; ``page_patterns`` at the site root.
"""

from django.urls import URLPattern, URLResolver, path

from . import money

api_patterns: list[URLPattern | URLResolver] = [
    path("bank-accounts", money.api_bank_accounts, name="api-bank-accounts"),
    path("withdrawals", money.api_withdrawals, name="api-withdrawals"),
]
page_patterns: list[URLPattern | URLResolver] = [
    path("money/", money.money, name="money"),
    path("money/bank-accounts/add/", money.add_bank_account, name="money-bank-account-add"),
]
