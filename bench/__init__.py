"""Benchmarks of authguard: ``python -m bench.detection`` measures how well logins are scored."""
