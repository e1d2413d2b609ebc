"""Receivers that connect authguard to Django's authentication signals."""
