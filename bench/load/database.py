"""The load benchmark's throwaway database: a SQLite file in a temporary folder, or a new PostgreSQL
database next to the one ``DATABASE_URL`` names. Neither touches an existing database's data.

:func:`prepare_environment` runs before Django is set up (it decides what both servers will read);
:func:`build_schema` runs after.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit


@dataclass(frozen=True)
class BenchDatabase:
    """Where the benchmark's data lives. ``url`` is None for SQLite (the demo's ``var/`` file)."""

    vendor: str
    url: str | None
    sqlite_path: Path | None
    admin_url: str | None = None  # PostgreSQL: the database the throwaway one was created from
    name: str = ""

    def describe(self) -> str:
        if self.vendor == "sqlite":
            return f"SQLite {self.sqlite_path}"
        return f"PostgreSQL database {self.name} (throwaway, on the server of DATABASE_URL)"


def _pg_connect(url: str):  # -> psycopg.Connection
    import psycopg

    return psycopg.connect(url, autocommit=True)


def create_database(var_dir: Path, database_url: str | None) -> BenchDatabase:
    """Make the empty database both servers will use."""
    if not database_url:
        return BenchDatabase("sqlite", None, var_dir / "demo.sqlite3")
    parts = urlsplit(database_url)
    if parts.scheme not in ("postgres", "postgresql", "pgsql"):
        raise SystemExit(f"bench.load: DATABASE_URL must be a postgres:// URL, not {parts.scheme}://")
    name = f"authguard_bench_{os.getpid()}_{secrets.token_hex(3)}"
    with _pg_connect(database_url) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = urlunsplit(parts._replace(path=f"/{name}"))
    return BenchDatabase("postgresql", url, None, admin_url=database_url, name=name)


def drop_database(db: BenchDatabase) -> None:
    """Remove a throwaway PostgreSQL database (a SQLite file goes with its temporary folder)."""
    if db.vendor != "postgresql" or db.admin_url is None:
        return
    from django.db import connections

    connections.close_all()
    with _pg_connect(db.admin_url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db.name}" WITH (FORCE)')


def _pending_model_changes() -> list[str]:
    """Apps whose models have changes no migration describes (what ``makemigrations --check`` sees)."""
    from django.apps import apps
    from django.db.migrations.autodetector import MigrationAutodetector
    from django.db.migrations.loader import MigrationLoader
    from django.db.migrations.state import ProjectState

    loader = MigrationLoader(None, ignore_no_migrations=True)
    changes = MigrationAutodetector(loader.project_state(), ProjectState.from_apps(apps)).changes(
        graph=loader.graph
    )
    return sorted(changes)


def _empty_database(db: BenchDatabase) -> None:
    from django.db import connection

    if db.vendor == "sqlite":
        connection.close()
        assert db.sqlite_path is not None
        for suffix in ("", "-journal", "-wal", "-shm"):
            Path(f"{db.sqlite_path}{suffix}").unlink(missing_ok=True)
        return
    with connection.cursor() as cursor:
        cursor.execute("DROP SCHEMA public CASCADE")
        cursor.execute("CREATE SCHEMA public")


def build_schema(db: BenchDatabase) -> str:
    """Migrate; when the migrations lag behind the models, build the tables from the models instead.

    Returns how the schema was built, for the report. Building from the models is what the test suite's
    ``--nomigrations`` does; both servers only need the tables to match the models they run.
    """
    from django.apps import apps
    from django.conf import settings
    from django.core.management import call_command

    try:
        call_command("migrate", interactive=False, verbosity=0)
    except Exception as error:  # any failure (conflict, missing node, SQL error) means the migrations lag
        lag = f"migrate failed: {type(error).__name__}: {error}"
    else:
        pending = _pending_model_changes()
        if not pending:
            return "migrations"
        lag = "models ahead of migrations in " + ", ".join(pending)
    _empty_database(db)
    settings.MIGRATION_MODULES = {app.label: None for app in apps.get_app_configs()}
    call_command("migrate", run_syncdb=True, interactive=False, verbosity=0)
    return f"migrate --run-syncdb from the models ({lag})"
