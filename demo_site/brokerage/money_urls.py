"""URLs of the demo brokerage's money movements (withdrawals, bank accounts), in the ``brokerage`` namespace.

``api_patterns`` are mounted under ``/api/`` before the JSON catch-all; ``page_patterns`` at the site root.
"""

from django.urls import URLPattern, URLResolver

api_patterns: list[URLPattern | URLResolver] = []
page_patterns: list[URLPattern | URLResolver] = []
