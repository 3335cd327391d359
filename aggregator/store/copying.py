"""Copying a whole database into an empty one of either backend (`aggregator migrate`):
every row of every table, ids kept, so event ids (and the Google Reader API's item ids made
from them), marks, merges and stories mean the same afterwards.

Rows go in batches (one read cursor, one `executemany` per batch) inside one transaction
of the target: a copy that fails leaves the target empty, never half full.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aggregator.errors import StoreError
from aggregator.store.protocols import Store
from aggregator.store.sql import SqlStore

# Parents before children (entries name feeds and events).
TABLES = ("feeds", "events", "entries", "tombstones", "event_merges", "event_separations",
          "story_links", "join_reasons", "staged_updates")  # fmt: skip
# Keys of `meta` that belong to the target itself, never copied.
OWN_META = frozenset({"schema_version", "last_event_id"})
# Columns a backend computes itself (PostgreSQL's search vector).
COMPUTED = frozenset({"search"})
BATCH_ROWS = 5_000


@dataclass(frozen=True, slots=True)
class CopyResult:
    rows: dict[str, int]  # table -> rows copied


def _columns(store: SqlStore, table: str) -> list[str]:
    cursor = store._execute(f"select * from {table} where 1 = 0")
    return [str(column[0]) for column in cursor.description]


def copy_database(
    source: Store, target: Store, *, progress: Callable[[str, int], None] | None = None
) -> CopyResult:
    """Copy everything of `source` into `target`, which must hold no feed yet."""
    if not isinstance(source, SqlStore) or not isinstance(target, SqlStore):
        raise StoreError("only the SQL backends can be copied")
    if int(target._execute("select count(*) from feeds").fetchone()[0]):
        raise StoreError(f"database {target.location} is not empty: copy into a new database")
    copied: dict[str, int] = {}
    with target.transaction():
        for key, value in source._execute("select key, value from meta").fetchall():
            if key not in OWN_META:
                target._set_meta(str(key), str(value))
        for table in TABLES:
            wanted = set(_columns(target, table)) - COMPUTED
            columns = [name for name in _columns(source, table) if name in wanted]
            insert = (
                f"insert into {table} ({', '.join(columns)})"
                f" values ({', '.join('?' * len(columns))})"
            )
            cursor = source._execute(f"select {', '.join(columns)} from {table} order by 1")
            total = 0
            while rows := cursor.fetchmany(BATCH_ROWS):
                target._executemany(insert, [tuple(row) for row in rows])
                total += len(rows)
                if progress is not None:
                    progress(table, total)
            copied[table] = total
        target.set_last_event_id(source.last_event_id())
        target._restart_ids()
    return CopyResult(rows=copied)
