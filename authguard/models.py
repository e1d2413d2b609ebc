"""authguard's models."""
