"""The SQLite store on a real file: schema, durability settings, refusals."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlite_utils

from aggregator.dedup.signature import MinHashParams
from aggregator.dedup.text import distinctive_content
from aggregator.errors import StoreError
from aggregator.store import SCHEMA_VERSION, Store, open_store
from aggregator.store.sqlite import MIGRATIONS, SqliteStore


def store_before(path: Path, migration: Callable[[Store], None]) -> Store:
    """A database as an older aggregator left it: every migration before `migration`."""
    db = sqlite_utils.Database(sqlite3.connect(str(path), isolation_level=None))
    store = SqliteStore(db, path)
    before = MIGRATIONS.index(migration)
    for step in MIGRATIONS[:before]:
        step(store)
    store._set_meta("schema_version", str(before))
    return store


def test_new_database_has_schema_wal_and_version(tmp_path: Path) -> None:
    """A new file gets every table, WAL mode and the current schema version."""
    store = open_store(tmp_path / "a.db")
    assert {"meta", "feeds", "entries", "events"} <= set(store.db.table_names())
    assert store.db.journal_mode == "wal"
    assert store.db.execute("select value from meta where key='schema_version'").fetchone()[0] == (
        str(SCHEMA_VERSION)
    )
    store.close()
    reopened = open_store(tmp_path / "a.db")  # opening again migrates nothing and works
    assert reopened.counts() == {"feeds": 0, "entries": 0, "events": 0}
    reopened.close()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    """A database from a newer aggregator is refused with a message, not corrupted."""
    store = open_store(tmp_path / "a.db")
    store.db.execute("update meta set value = ? where key = 'schema_version'", [SCHEMA_VERSION + 1])
    store.close()
    with pytest.raises(StoreError, match="newer than this aggregator"):
        open_store(tmp_path / "a.db")


def test_other_minhash_parameters_are_refused(tmp_path: Path) -> None:
    """Signatures made with other MinHash parameters are never mixed: reindex is asked for."""
    store = open_store(tmp_path / "a.db")
    store.check_dedup_params(MinHashParams())
    store.check_dedup_params(MinHashParams())  # same parameters: fine
    with pytest.raises(StoreError, match="reindex"):
        store.check_dedup_params(MinHashParams(num_perm=64))
    store.close()


def test_missing_database_without_create(tmp_path: Path) -> None:
    """Readers do not create a database: they say how to make one."""
    with pytest.raises(StoreError, match="aggregator update"):
        open_store(tmp_path / "none.db", create=False)
    assert not (tmp_path / "none.db").exists()


def test_unusable_path_is_a_store_error(tmp_path: Path) -> None:
    """A database path that is a directory gives a StoreError, not a raw sqlite3 error."""
    (tmp_path / "dir.db").mkdir()
    with pytest.raises(StoreError):
        open_store(tmp_path / "dir.db")


def test_not_a_database_is_a_store_error(tmp_path: Path) -> None:
    """A file that is not SQLite gives a StoreError naming the file."""
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match=r"junk\.db"):
        open_store(path)


def test_upgrade_marks_which_stored_entries_are_distinctive(tmp_path: Path) -> None:
    """A database of the previous schema gains `distinctive`, computed from each stored
    title and text by the rule new entries use."""
    path = tmp_path / "old.db"
    store = store_before(path, SqliteStore._schema_distinctive)
    feed = store.db.execute("insert into feeds (location, name, grp) values ('f', 'f', 'g')")
    rows = [
        ("a", "Live updates", ""),  # a short title and no text: nothing to match on
        ("b", "Council approves the new school budget", ""),  # a title that says enough
        ("c", "Live updates", "The minister resigned this morning."),  # a text
    ]
    for identity, title, text in rows:
        store.db.execute(
            "insert into entries (feed_id, identity, title, text, first_seen, content_key)"
            " values (?, ?, ?, ?, '2025-01-01T00:00:00Z', ?)",
            [feed.lastrowid, identity, title, text, identity],
        )
    store.close()
    upgraded = open_store(path)
    found = dict(upgraded.db.execute("select identity, distinctive from entries").fetchall())
    assert found == {
        identity: int(distinctive_content(title, text)) for identity, title, text in rows
    }
    assert found == {"a": 0, "b": 1, "c": 1}
    upgraded.close()
