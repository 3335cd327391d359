"""Raw SQL on a store of either backend, for tests that look under the protocols: the
statement is written as the store's own (`?` and `:name` parameters, the SQL both engines
run) and goes through the backend's connection.

`at` reads a database by its location (a SQLite path or a PostgreSQL URL) on a connection
of its own, as another process would, while a daemon may be writing it."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

Params = Sequence[Any] | Mapping[str, Any]


def rows(store: Any, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in store._execute(sql, params).fetchall()]


def one(store: Any, sql: str, params: Params = ()) -> tuple[Any, ...]:
    found = rows(store, sql, params)
    assert len(found) == 1, found
    return found[0]


def execute(store: Any, sql: str, params: Params = ()) -> int:
    """Run a write; returns the rows it changed."""
    return int(store._execute(sql, params).rowcount)


def is_postgresql(database: Any) -> bool:
    """Whether `database` (a store, a path or a URL) is a PostgreSQL one."""
    if isinstance(database, str | Path):
        return str(database).startswith(("postgresql://", "postgres://"))
    return type(database).__name__ == "PostgresStore"


def table_names(store: Any) -> set[str]:
    """The tables of the store's schema (SQLite: not its FTS shadow tables' own)."""
    if is_postgresql(store):
        query = (
            "select table_name from information_schema.tables"
            " where table_schema = current_schema() and table_type = 'BASE TABLE'"
        )
    else:
        query = "select name from sqlite_master where type = 'table'"
    return {str(name) for (name,) in rows(store, query)}


def dump(store: Any) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in a fixed order: what the database holds, to compare
    before and after a command that must change nothing, or to search for a value."""
    found = {}
    for table in sorted(table_names(store)):
        found[table] = sorted(rows(store, f'select * from "{table}"'), key=repr)
    return found


_connections: dict[str, Any] = {}


def write_at(location: str | Path, sql: str, params: Params = ()) -> int:
    """Run a write on `location`'s database on a connection of its own (committed at
    once); the rows it changed, 0 when the database or its schema is not there yet."""
    if not is_postgresql(location):
        path = Path(location)
        if not path.exists():
            return 0
        connection = sqlite3.connect(path, timeout=10)
        try:
            with connection:
                return connection.execute(sql, params).rowcount
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return 0
            raise
        finally:
            connection.close()
    import psycopg

    try:
        return int(_postgresql(str(location)).execute(_translated(sql), params).rowcount)
    except psycopg.errors.UndefinedTable:
        return 0


def _postgresql(url: str) -> Any:
    """`at`'s own autocommit connection to the database at `url`, made when first asked."""
    import psycopg

    connection = _connections.get(url)
    if connection is None or connection.closed or connection.broken:
        connection = _connections[url] = psycopg.connect(url, autocommit=True)
    return connection


def _translated(sql: str) -> str:
    from aggregator.store.postgresql import _psycopg_sql

    return _psycopg_sql(sql)


def forget(url: str) -> None:
    """Close `at`'s connection to the database at `url`, if it has one."""
    connection = _connections.pop(url, None)
    if connection is not None:
        connection.close()


def at(location: str | Path, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
    """Run a read on `location`'s database on a connection of this helper's own; [] when
    the database or its schema is not there yet (the daemon has not created it)."""
    if not is_postgresql(location):
        path = Path(location)
        if not path.exists():
            return []
        connection = sqlite3.connect(path, timeout=10)
        try:
            return list(connection.execute(sql, params))
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return []
            raise
        finally:
            connection.close()
    import psycopg

    try:
        cursor = _postgresql(str(location)).execute(_translated(sql), params)
        return [tuple(row) for row in cursor.fetchall()]
    except psycopg.errors.UndefinedTable:
        return []
