"""Which backend a database location names, and opening it: a `postgresql://` URL is a
PostgreSQL server, anything else a SQLite file path."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from aggregator.errors import StoreError
from aggregator.store.protocols import Store
from aggregator.urls import DATABASE_URL_SCHEMES

# The environment variable a PostgreSQL password may come from (libpq's own PGPASSWORD
# and ~/.pgpass work too): never in the URL of a config file that is shared.
PASSWORD_ENV = "AGGREGATOR_DATABASE_PASSWORD"

Opener = Callable[[str, bool, str | None], Store]


def _open_sqlite(location: str, create: bool, password: str | None) -> Store:
    from aggregator.store.sqlite import SqliteStore

    return SqliteStore.open(Path(location), create=create)


def _open_postgresql(location: str, create: bool, password: str | None) -> Store:
    from aggregator.store.postgresql import PostgresStore

    return PostgresStore.open(location, create=create, password=password)


# Backends by URL scheme; a location with none of them is a SQLite path.
BACKENDS: dict[str, Opener] = {scheme: _open_postgresql for scheme in DATABASE_URL_SCHEMES}


def database_password(password_file: Path | None = None) -> str | None:
    """The PostgreSQL password: from `password_file` (first line) if given, else from the
    environment variable PASSWORD_ENV, else None (libpq then looks itself)."""
    if password_file is not None:
        try:
            lines = password_file.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise StoreError(
                f"cannot read the database password file {password_file}: {exc.strerror}"
            ) from exc
        return lines[0] if lines else ""
    return os.environ.get(PASSWORD_ENV) or None


def open_store(
    location: str | Path, *, create: bool = True, password_file: Path | None = None
) -> Store:
    """Open (and create or migrate) the database at `location`: a path or a URL.

    Raises StoreError with a readable message when it cannot be used.
    """
    text = str(location)
    for scheme, opener in BACKENDS.items():
        if text.startswith(scheme):
            return opener(text, create, database_password(password_file))
    return _open_sqlite(text, create, None)
