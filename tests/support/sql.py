"""Raw SQL on a store of either backend, for tests that look under the protocols: the
statement is written as the store's own (`?` and `:name` parameters, the SQL both engines
run) and goes through the backend's connection."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
