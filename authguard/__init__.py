"""authguard: account-takeover defence for Django brokerage portals."""

__version__ = "0.1.0"
