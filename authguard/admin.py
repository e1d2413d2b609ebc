"""Django admin for authguard."""
