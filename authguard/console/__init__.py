"""The security console in the Django admin: pages, admin registrations (``admin``), reports,
the staff passkey guard, four-eyes approvals, containment and the policy editor.
"""

from __future__ import annotations

from authguard.compat import forward_to

__getattr__ = forward_to(__name__, "authguard.console.pages")
