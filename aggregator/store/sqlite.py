"""The SQLite backend: the embedded default, one file beside the daemon.

Durability rules (measured in reliability-anchors.md section 5):
- WAL with `synchronous=NORMAL` and a busy timeout, so readers (`aggregator digest`) work
  while the daemon writes, and a kill -9 loses nothing committed;
- one transaction per feed update, begun IMMEDIATE so that a concurrent writer (marks
  from the web page) makes it wait instead of failing; savepoints when nested (Python's
  nested `with conn:` would commit early).

The schema is made and migrated with sqlite-utils; the reads and writes are `SqlStore`'s.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from aggregator.dedup.text import distinctive_content
from aggregator.errors import StoreError
from aggregator.store.records import to_db_time
from aggregator.store.sql import EFFECTIVE_TIME, Cursor, Params, SqlStore, translating

BUSY_TIMEOUT_MS = 5_000
# FTS5 tokenizer: Unicode word rules with accents folded ("etats" finds "États"); no
# stemming, because the Porter stemmer is English-only and feeds are in every language.
SEARCH_TOKENIZER = "unicode61 remove_diacritics 2"


def sqlite_version() -> tuple[int, int, int]:
    """The version of the SQLite library Python is linked with."""
    major, minor, patch = sqlite3.sqlite_version_info
    return major, minor, patch


def fts5_available() -> bool:
    """Whether the SQLite library has the FTS5 full-text extension (the search index)."""
    conn = sqlite3.connect(":memory:")
    try:
        conn.execute("create virtual table probe using fts5(x)")
    except sqlite3.OperationalError:
        return False
    finally:
        conn.close()
    return True


# -- errors that mean "this database cannot be used now" -----------------------------------


def _store_error(exc: sqlite3.Error, path: Path) -> StoreError | None:
    """A one-line StoreError saying what is wrong with the database and what to do, for
    the SQLite failures that are about the database, not about a statement (those are
    bugs and stay as they are: None)."""
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None  # extended codes keep the low byte
    if primary == sqlite3.SQLITE_FULL:
        message = (
            f"database {path} is full (no space left on the device, or its size limit): "
            "the update was rolled back and nothing committed is lost; free some space"
        )
    elif primary == sqlite3.SQLITE_READONLY:
        message = (
            f"database {path} is read-only: the aggregator needs write access to the file "
            "and to its directory (where SQLite keeps the -wal and -shm files)"
        )
    elif primary in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        message = (
            f"database {path} is locked by another process (waited "
            f"{BUSY_TIMEOUT_MS / 1000:g}s): nothing was written; try again later"
        )
    elif primary == sqlite3.SQLITE_IOERR:
        message = f"cannot read or write database {path}: disk I/O error ({exc.sqlite_errorname})"
    elif primary in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
        message = f"database {path} is damaged or not a database ({exc}): restore a backup"
    elif primary in (sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM):
        message = f"cannot open database {path}: {exc}"
    else:
        return None
    return StoreError(message)


class SqliteStore(SqlStore):
    """A SQLite database of feeds, entries and events."""

    DRIVER_ERRORS = (sqlite3.Error,)

    def __init__(self, db: sqlite_utils.Database, path: Path) -> None:
        self.db = db
        self.path = path
        self._fence: Callable[[], None] | None = None

    def set_fence(self, check: Callable[[], None]) -> None:
        self._fence = check

    @property
    def location(self) -> str:
        return str(self.path)

    # -- opening -------------------------------------------------------------------------

    @classmethod
    def open(cls, path: Path, *, create: bool = True) -> SqliteStore:
        """Open (and create or migrate) the database at `path`.

        Raises StoreError with a readable message when the file cannot be used.
        """
        path = Path(path)
        if not create and not path.exists():
            raise StoreError(f"no database at {path} (run `aggregator update` first)")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                str(path), isolation_level=None, check_same_thread=False,
                timeout=BUSY_TIMEOUT_MS / 1000,
            )  # fmt: skip
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA foreign_keys = ON")
            db = sqlite_utils.Database(conn)
            if db.journal_mode != "wal":
                db.enable_wal()
            conn.execute("PRAGMA synchronous = NORMAL")
            store = cls(db, path)
            store._migrate()
        except sqlite3.DatabaseError as exc:
            error = _store_error(exc, path) or StoreError(f"cannot open database {path}: {exc}")
            raise error from exc
        except OSError as exc:
            raise StoreError(f"cannot create database {path}: {exc.strerror}") from exc
        return store

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One atomic unit of work (a savepoint when nested). A full, read-only or locked
        database raises StoreError, after the rollback. It hands out nothing: every read
        and write inside it goes through the store's methods."""
        if self._fence is not None and not self.db.conn.in_transaction:
            self._fence()
        try:
            with self._immediate():
                yield
        except sqlite3.Error as exc:
            error = self._store_error(exc)
            if error is None:
                raise
            raise error from exc

    @contextmanager
    def _immediate(self) -> Iterator[sqlite_utils.Database]:
        """The outermost transaction takes the write lock at BEGIN: another writer (a mark
        from the web page beside the daemon) makes it wait its busy timeout there, where a
        deferred transaction that read first would fail at once when it came to write."""
        if self.db.conn.in_transaction:
            with self.db.atomic() as db:
                yield db
            return
        self.db.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
            self.db.conn.execute("COMMIT")
        except BaseException:
            if self.db.conn.in_transaction:
                self.db.conn.execute("ROLLBACK")
            raise

    def _migrate(self) -> None:
        """Bring the schema to SCHEMA_VERSION, one migration per version, atomically."""
        with self.db.atomic():
            has_meta = "meta" in self.db.table_names()
            version = int(self._meta("schema_version") or 0) if has_meta else 0
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"database {self.path} has schema version {version}, newer than this "
                    f"aggregator ({SCHEMA_VERSION}): upgrade the aggregator"
                )
            for number, migration in enumerate(MIGRATIONS[version:], start=version + 1):
                migration(self)
                self._set_meta("schema_version", str(number))

    def _schema_v1(self) -> None:
        """Feeds, entries with signatures, events, meta."""
        db = self.db
        db.table("meta").create({"key": str, "value": str}, pk="key")
        db.table("feeds").create(
            {
                "id": int, "location": str, "name": str, "grp": str, "priority": int,
                "enabled": int, "interval_s": int, "title": str, "link": str,
                "effective_location": str, "etag": str, "last_modified": str,
                "last_fetch": str, "last_success": str, "status": str, "error": str,
                "failures": int, "next_due": str, "created": str,
            },
            pk="id",
            not_null=["location", "name", "grp", "status"],
            defaults={"status": "new", "failures": 0, "enabled": 1, "priority": 0},
        )  # fmt: skip
        db.table("feeds").create_index(["location"], unique=True)
        db.table("events").create(
            {
                "id": int, "canonical_entry_id": int, "canonical_reason": str,
                "first_seen": str, "last_seen": str, "member_count": int,
                "source_count": int, "updated": str,
            },
            pk="id",
        )  # fmt: skip
        db.table("entries").create(
            {
                "id": int, "feed_id": int, "identity": str, "guid": str, "url": str,
                "canonical_url": str, "title": str, "text": str, "html": str, "author": str,
                "published": str, "updated": str, "first_seen": str, "last_seen": str,
                "content_key": str, "title_sig": bytes, "body_sig": bytes,
                "title_words": int, "body_shingles": int, "headline_only": int,
                "event_id": int, "join_level": str, "similarity": float,
                "matched_entry_id": int, "match_rule": str,
            },
            pk="id",
            foreign_keys=[("feed_id", "feeds", "id"), ("event_id", "events", "id")],
            not_null=["feed_id", "identity", "title", "text", "first_seen", "content_key"],
        )  # fmt: skip
        db.table("entries").create_index(["feed_id", "identity"], unique=True)
        db.table("entries").create_index(["canonical_url"])
        db.table("entries").create_index(["content_key"])
        db.table("entries").create_index(["event_id"])
        db.table("entries").create_index(["first_seen"])
        db.table("events").create_index(["last_seen"])

    def _schema_digest(self) -> None:
        """Full-text search over entry titles and texts (FTS5, kept current by triggers),
        and an index on the date `--date` filters on."""
        self.db.table("entries").enable_fts(
            ["title", "text"], fts_version="FTS5", create_triggers=True,
            tokenize=SEARCH_TOKENIZER,
        )  # fmt: skip
        self.db.execute(
            f"create index if not exists entries_effective_time on entries ({EFFECTIVE_TIME})"
        )

    def _schema_feed_moves(self) -> None:
        """Feed fetch state: where a feed moved (two consecutive 301/308 to the same
        target), the redirect being confirmed, and why a feed was retired (410 Gone)."""
        feeds = self.db.table("feeds")
        feeds.add_column("effective_url", str)
        feeds.add_column("redirect_target", str)
        feeds.add_column("redirect_streak", int)
        feeds.add_column("retired", str)
        feeds.add_column("retired_at", str)
        # The publisher's schedule hints from the last parsed document, so that a 304
        # (nothing parsed) still honours them: RSS <ttl> and <skipHours>/<skipDays>.
        feeds.add_column("ttl_minutes", int)
        feeds.add_column("skip_hours", str)  # "0,1,23": UTC hours
        feeds.add_column("skip_days", str)  # "5,6": weekdays, Monday = 0

    def _schema_retention(self) -> None:
        """Tombstones: the keys of pruned entries, so that a pruned item that shows up in
        a feed again is recognised as already seen (see `prune`)."""
        tombstones = self.db.table("tombstones")
        tombstones.create(
            {"id": int, "feed_id": int, "identity": str, "canonical_url": str,
             "content_key": str, "pruned": str, "expires": str},
            pk="id", foreign_keys=[("feed_id", "feeds", "id")],
            not_null=["feed_id", "identity", "pruned", "expires"],
        )  # fmt: skip
        tombstones.create_index(["feed_id", "identity"], unique=True)
        tombstones.create_index(["canonical_url"])
        tombstones.create_index(["content_key"])
        tombstones.create_index(["expires"])

    def _schema_term_vectors(self) -> None:
        """Each entry's event term vector (`dedup.vectors.encode_vector`), so that a restart
        reads the window's vectors instead of deriving them from every text again. NULL
        for entries stored before, and after a change of recipe: derived from the text."""
        entries = self.db.table("entries")
        # Declared TEXT by the first version (the terms then); BLOBs of term hashes since
        # recipe 3: SQLite stores a BLOB as given whatever the column's affinity.
        entries.add_column("event_terms", str)
        entries.add_column("event_weights", bytes)

    def _schema_distinctive(self) -> None:
        """Whether each entry's content is distinctive enough to match on (`Entry`), stored
        so that tombstones keep the content key by the same rule as exact dedup."""
        self.db.table("entries").add_column("distinctive", int, not_null_default=1)
        rows = self.db.conn.execute("select id, title, text from entries").fetchall()
        self.db.conn.executemany(
            "update entries set distinctive = 0 where id = ?",
            [(row[0],) for row in rows if not distinctive_content(row[1], row[2])],
        )

    def _schema_reading(self) -> None:
        """Read and starred state per event, and event ids that are never given twice (a
        mark sent for an id merged away follows the merge, never lands on a newer event)."""
        events = self.db.table("events")
        events.add_column("read_at", str)
        events.add_column("starred_at", str)
        row = self.db.conn.execute(
            "select max(coalesce((select max(id) from events), 0),"
            " coalesce((select max(absorbed_event_id) from event_merges), 0))"
        ).fetchone()
        self._set_meta("last_event_id", str(int(row[0])))

    def _schema_events(self) -> None:
        """Event merges (automatic and manual) and manual separations of events."""
        merges = self.db.table("event_merges")
        merges.create(
            {"id": int, "kept_event_id": int, "absorbed_event_id": int, "similarity": float,
             "reason": str, "entries": int, "at": str},
            pk="id", not_null=["kept_event_id", "absorbed_event_id", "reason", "at"],
        )  # fmt: skip
        merges.create_index(["kept_event_id"])
        # Two events a person split apart: automatic merges never join them again.
        self.db.table("event_separations").create(
            {"event_id": int, "other_event_id": int, "at": str},
            pk=("event_id", "other_event_id"),
        )

    def _schema_stories(self) -> None:
        """Stories: each event's story (the id of the story's first event; an event alone
        is its own story), and why two events were linked into one."""
        events = self.db.table("events")
        events.add_column("story_id", int)
        self.db.execute("update events set story_id = id")
        events.create_index(["story_id"])
        links = self.db.table("story_links")
        links.create(
            {"id": int, "event_id": int, "linked_event_id": int, "similarity": float,
             "probability": float, "at": str},
            pk="id", not_null=["event_id", "linked_event_id", "at"],
        )  # fmt: skip
        links.create_index(["event_id"])
        links.create_index(["linked_event_id"])

    def _schema_reasons(self) -> None:
        """Why a write-up joined its event and why two events were linked into a story:
        the model's probability and the features that decided (for `explain`)."""
        self.db.table("join_reasons").create(
            {"entry_id": int, "probability": float, "reasons": str}, pk="entry_id"
        )
        self.db.table("story_links").add_column("reasons", str)

    def _schema_cluster(self) -> None:
        """Fetch leases and staged updates (`aggregator.roles`): used by the roles of a
        shared PostgreSQL database; kept here too so that both schemas are one history."""
        feeds = self.db.table("feeds")
        feeds.add_column("lease_owner", str)
        feeds.add_column("lease_until", str)
        self.db.table("staged_updates").create(
            {"id": int, "feed_id": int, "staged_at": str, "entries": bytes},
            pk="id", not_null=["feed_id", "staged_at", "entries"],
        )  # fmt: skip

    def _schema_filters(self) -> None:
        """Filter rules: the rule that hides an entry, if one does, and whether every
        member of an event is hidden (then the event is). The digest of the rules the
        entries were judged by is kept in `meta`."""
        self.db.table("entries").add_column("hidden_by", str)
        self.db.execute("alter table events add column hidden integer not null default 0")

    # -- the connection ------------------------------------------------------------------

    def _execute(self, sql: str, params: Params = ()) -> Cursor:
        return self.db.conn.execute(sql, params)

    def _executemany(self, sql: str, rows: Iterable[Params]) -> None:
        self.db.conn.executemany(sql, rows)

    def _insert_returning_id(self, sql: str, params: Params) -> int:
        cursor = self.db.conn.execute(sql, params)
        if cursor.lastrowid is None:
            raise StoreError("insert returned no row id")
        return int(cursor.lastrowid)

    def _store_error(self, exc: Exception) -> StoreError | None:
        return _store_error(exc, self.path) if isinstance(exc, sqlite3.Error) else None

    # -- what differs from PostgreSQL ------------------------------------------------------

    def create_event(self, now: datetime) -> int:
        when = to_db_time(now)
        # No RETURNING (SQLite 3.35; 3.27 is supported): the insert reads the counter.
        self.db.conn.execute(
            "update meta set value = cast(value as integer) + 1 where key = 'last_event_id'"
        )
        return self._insert_returning_id(
            "insert into events (id, story_id, first_seen, last_seen, member_count,"
            " source_count, updated) values ((select cast(value as integer) from meta"
            " where key = 'last_event_id'), (select cast(value as integer) from meta"
            " where key = 'last_event_id'), ?, ?, 0, 0, ?)",
            [when, when, when],
        )

    def _serialise_claims(self) -> None:
        """Nothing to do: BEGIN IMMEDIATE already lets one writer in at a time."""

    def last_event_id(self) -> int:
        return int(self._meta("last_event_id") or 0)

    def set_last_event_id(self, value: int) -> None:
        if value > self.last_event_id():
            self._set_meta("last_event_id", str(value))

    def _restart_ids(self) -> None:
        """Nothing to do: SQLite gives a new row the highest id plus one."""

    def _search_condition(self, words: str) -> tuple[str, dict[str, Any]] | None:
        # Every word quoted: user input is words, never FTS5 syntax (NOT, OR, NEAR, *).
        match = self.db.quote_fts(words)
        if not match:
            return None
        return (
            "events.id in (select event_id from entries where id in"
            " (select rowid from entries_fts where entries_fts match :search))",
            {"search": match},
        )

    def storage_bytes(self) -> tuple[int, int]:
        return _size(self.path), _size(self.path.with_name(self.path.name + "-wal"))

    @translating
    def optimize(self) -> str:
        """`PRAGMA optimize`: let SQLite refresh the statistics its query planner uses."""
        self.db.execute("PRAGMA optimize")
        return "PRAGMA optimize done"

    @translating
    def checkpoint(self) -> str:
        """`PRAGMA wal_checkpoint(TRUNCATE)`: copy the WAL into the database file and
        truncate it, unless a reader kept it from finishing (then it is partly copied).
        A passive checkpoint first counts the WAL's frames: a truncating one that
        succeeds reports 0 of 0, the WAL being empty by then."""
        conn = self.db.conn
        _, frames, _ = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        busy, left, copied = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if busy:
            return f"WAL checkpoint incomplete ({copied} of {left} frames): readers held it"
        return f"WAL checkpoint: {max(int(frames), 0)} frames copied, WAL truncated"

    @translating
    def check_writable(self) -> None:
        """Raise StoreError unless this process can write the database now (file and
        directory permissions, space for the journal, no writer holding it past the busy
        timeout). Writes nothing: the one write is rolled back."""
        conn = self.db.conn
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        # BEGIN IMMEDIATE succeeds even on a read-only file; a real write does not.
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(f"PRAGMA user_version = {version}")
        finally:
            conn.execute("ROLLBACK")


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


# Migration n brings the schema from version n-1 to n. Append, never edit a released one.
MIGRATIONS: list[Callable[[SqliteStore], None]] = [
    SqliteStore._schema_v1,
    SqliteStore._schema_digest,
    SqliteStore._schema_retention,
    SqliteStore._schema_feed_moves,
    SqliteStore._schema_events,
    SqliteStore._schema_term_vectors,
    SqliteStore._schema_distinctive,
    SqliteStore._schema_reading,
    SqliteStore._schema_stories,
    SqliteStore._schema_reasons,
    SqliteStore._schema_filters,
    SqliteStore._schema_cluster,
]
SCHEMA_VERSION = len(MIGRATIONS)
