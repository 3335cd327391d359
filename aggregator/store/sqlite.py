"""The only module that touches SQLite. Returns models, never raw rows.

Durability rules (measured in reliability-anchors.md section 5):
- WAL with `synchronous=NORMAL` and a busy timeout, so readers (`aggregator digest`) work
  while the daemon writes, and a kill -9 loses nothing committed;
- one transaction per feed update, begun IMMEDIATE so that a concurrent writer (marks
  from the web page) makes it wait instead of failing; savepoints when nested (Python's
  nested `with conn:` would commit early);
- writes are idempotent on (feed, identity), so a re-run after a crash adds nothing twice.

Times are stored as ISO 8601 text in UTC with microseconds, so text order is time order.
"""

from __future__ import annotations

import functools
import json
import secrets
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

import numpy as np
import numpy.typing as npt
import sqlite_utils

from aggregator.dedup.index import NO_TIME, FingerprintColumns, to_microseconds
from aggregator.dedup.signature import MinHashParams, Signatures
from aggregator.dedup.text import distinctive_content
from aggregator.dedup.vectors import encode_vector
from aggregator.errors import StoreError
from aggregator.models import (
    Entry,
    EventQuery,
    EventView,
    FeedSpec,
    FeedState,
    FilterRow,
    JoinLevel,
    Mark,
    MemberFacts,
    PlacedEntry,
    ReadingState,
    Reasons,
    StoredEntry,
    StoryEvent,
    StoryLink,
    WindowEntry,
)

BUSY_TIMEOUT_MS = 5_000
# Events deleted per transaction when pruning: short write locks, whole events only.
PRUNE_BATCH = 500
# A matched tombstone is extended only when that moves its expiry by a day or more.
TOMBSTONE_EXTEND_STEP = timedelta(days=1)
HEARTBEAT_KEY = "daemon.heartbeat"
MAINTENANCE_KEY_PREFIX = "maintenance."
# Events read per query when loading members: far below SQLite's 32,766 bound parameters.
_READ_BATCH = 500
# Rows fetched at a time when reading the dedup window.
_FETCH_ROWS = 8192
_FINGERPRINTS_SQL = """
    select id, feed_id, event_id, first_seen, published, title_sig, body_sig, title_words,
           body_shingles, headline_only
    from entries where first_seen >= ? and event_id is not null order by id
"""
# The columns an entry's insert and a content update write (prepared once by sqlite3's
# statement cache: the SQL text never changes).
_ENTRY_CONTENT_COLUMNS = (
    "guid", "url", "canonical_url", "title", "text", "html", "author", "published",
    "updated", "content_key", "title_sig", "body_sig", "title_words", "body_shingles",
    "headline_only", "event_terms", "event_weights", "distinctive", "hidden_by",
)  # fmt: skip
_ENTRY_COLUMNS = (
    *_ENTRY_CONTENT_COLUMNS, "feed_id", "identity", "first_seen", "last_seen", "event_id",
    "join_level", "similarity", "matched_entry_id", "match_rule",
)  # fmt: skip
_INSERT_ENTRY_SQL = (
    f"insert into entries ({', '.join(_ENTRY_COLUMNS)})"
    f" values ({', '.join(':' + name for name in _ENTRY_COLUMNS)})"
)
_UPDATE_ENTRY_SQL = (
    "update entries set "
    + ", ".join(f"{name} = :{name}" for name in (*_ENTRY_CONTENT_COLUMNS, "last_seen"))
    + " where id = :id"
)
# An event a reader is shown: it has members (a canonical one), and filter rules do not hide
# every one of them (`aggregator.filters`).
_HAS_MEMBERS = "events.canonical_entry_id is not null"
_SHOWN = f"{_HAS_MEMBERS} and events.hidden = 0"
# An entry's date for `--date`: published, or arrival when the feed gave none (as
# StoredEntry.effective_time). The same expression is indexed by the digest migration.
_EFFECTIVE_TIME = "coalesce(published, first_seen)"
# FTS5 tokenizer: Unicode word rules with accents folded ("etats" finds "États"); no
# stemming, because the Porter stemmer is English-only and feeds are in every language.
SEARCH_TOKENIZER = "unicode61 remove_diacritics 2"


def to_db_time(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetimes are not stored: every time is UTC")
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def from_db_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _microseconds(value: str) -> int:
    """A stored time as microseconds since the epoch (the index's unit)."""
    return to_microseconds(datetime.fromisoformat(value))


def _microseconds_column(values: Sequence[str | None]) -> npt.NDArray[np.int64]:
    """Stored times as microseconds since the epoch, NO_TIME for none. When every time has
    the form `to_db_time` writes (UTC, microseconds: 32 characters ending in +00:00),
    numpy parses the text without its offset in bulk; otherwise one by one."""
    out = np.full(len(values), NO_TIME, dtype=np.int64)
    where = [i for i, value in enumerate(values) if value]
    texts = [value for value in values if value]
    if not texts:
        return out
    if {len(text) for text in texts} == {32} and {text[26:] for text in texts} == {"+00:00"}:
        out[where] = np.array([text[:26] for text in texts], dtype="datetime64[us]").view(np.int64)
    else:
        out[where] = [_microseconds(text) for text in texts]
    return out


def _signature_matrix(blobs: Sequence[bytes], num_perm: int) -> npt.NDArray[np.uint32]:
    """(len(blobs), num_perm) uint32 from little-endian BLOBs: one join, one frombuffer."""
    joined = b"".join(blobs)
    if len(joined) != 4 * num_perm * len(blobs) or any(len(b) != 4 * num_perm for b in blobs):
        raise StoreError(
            f"stored signatures are not of {num_perm} values: run `aggregator reindex`"
        )
    matrix = np.frombuffer(joined, dtype="<u4").reshape(len(blobs), num_perm)
    return matrix.astype(np.uint32)  # native order, and writable (frombuffer's is not)


@dataclass(frozen=True, slots=True)
class FeedFetchState:
    """The stored state a fetch starts from."""

    etag: str | None
    last_modified: str | None
    effective_url: str | None  # where the feed moved (permanent redirects), if it did
    retired: str | None  # why it is no longer fetched, if it is not
    ttl_minutes: int | None = None
    skip_hours: frozenset[int] = frozenset()
    skip_days: frozenset[int] = frozenset()


def _int_set(text: str | None) -> frozenset[int]:
    return frozenset(int(part) for part in (text or "").split(",") if part.strip().isdigit())


def _int_text(values: Iterable[int]) -> str | None:
    return ",".join(str(value) for value in sorted(values)) or None


@dataclass(frozen=True, slots=True)
class ExistingEntry:
    """The parts of a stored entry that an update compares against."""

    id: int
    event_id: int | None
    content_key: str


@dataclass(frozen=True, slots=True)
class PruneResult:
    """What one retention run removed."""

    events: int = 0
    entries: int = 0
    tombstones: int = 0  # tombstones written or extended for the pruned entries
    expired: int = 0  # tombstones past their time, deleted
    entry_ids: tuple[int, ...] = ()  # the entries deleted


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """What the daemon (or a `run --once`) last wrote about itself."""

    pid: int
    command: str  # "run" or "run --once"
    started: datetime
    last_tick: datetime
    tick_seconds: float | None  # None for `run --once`


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


def _inserted_id(cursor: sqlite3.Cursor) -> int:
    if cursor.lastrowid is None:
        raise StoreError("insert returned no row id")
    return int(cursor.lastrowid)


def _last_pk(table: sqlite_utils.db.Table) -> int:
    if table.last_pk is None:
        raise StoreError("insert returned no row id")
    return int(table.last_pk)


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


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _translating(
    method: Callable[Concatenate[Store, _P], _R],
) -> Callable[Concatenate[Store, _P], _R]:
    """Store methods that write outside `transaction()` raise StoreError, not sqlite3."""

    @functools.wraps(method)
    def wrapper(self: Store, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as exc:
            error = _store_error(exc, self.path)
            if error is None:
                raise
            raise error from exc

    return wrapper


class Store:
    """A SQLite database of feeds, entries and events."""

    def __init__(self, db: sqlite_utils.Database, path: Path) -> None:
        self.db = db
        self.path = path

    # -- opening -------------------------------------------------------------------------

    @classmethod
    def open(cls, path: Path, *, create: bool = True) -> Store:
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
        try:
            with self._immediate():
                yield
        except sqlite3.Error as exc:
            error = _store_error(exc, self.path)
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
            f"create index if not exists entries_effective_time on entries ({_EFFECTIVE_TIME})"
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

    def _schema_filters(self) -> None:
        """Filter rules: the rule that hides an entry, if one does, and whether every
        member of an event is hidden (then the event is). The digest of the rules the
        entries were judged by is kept in `meta`."""
        self.db.table("entries").add_column("hidden_by", str)
        self.db.execute("alter table events add column hidden integer not null default 0")

    # -- reads of the evaluation (aggregator/evaluation) -----------------------------------

    def placed_entries(self) -> Iterator[PlacedEntry]:
        """Every entry with its feed, event and story, in arrival order."""
        cursor = self.db.conn.execute(
            "select e.id, e.event_id, ev.story_id, e.feed_id, f.name, e.guid, e.canonical_url,"
            " coalesce(e.canonical_url, e.url), e.title, e.text, e.published, e.first_seen,"
            " e.headline_only from entries e join feeds f on f.id = e.feed_id"
            " left join events ev on ev.id = e.event_id order by e.id"
        )
        while rows := cursor.fetchmany(_FETCH_ROWS):
            for row in rows:
                first_seen = from_db_time(row[11])
                assert first_seen is not None
                entry_id, event_id, story_id, feed_id, name, guid, canonical, link = row[:8]
                yield PlacedEntry(
                    entry_id, event_id, story_id, feed_id, name, guid, canonical, link,
                    row[8], row[9], from_db_time(row[10]), first_seen, bool(row[12]),
                )  # fmt: skip

    def event_of_identities(self) -> dict[str, int | None]:
        """Each entry's identity (`guid:...`, `link:...`) and the event it is in."""
        rows = self.db.conn.execute("select identity, event_id from entries")
        return {str(identity): event_id for identity, event_id in rows}

    # -- filter rules (aggregator/filters.py) ---------------------------------------------

    def filters_judged_by(self) -> str | None:
        """The digest of the rules the stored entries were last judged by (None: never)."""
        return self._meta("filters_fingerprint")

    def set_filters_judged_by(self, fingerprint: str) -> None:
        self._set_meta("filters_fingerprint", fingerprint)

    def entries_to_filter(self, *, hidden_only: bool = False) -> Iterator[FilterRow]:
        """Every entry (`hidden_only`: every hidden one) with what filter rules read of
        it and the rule hiding it now."""
        cursor = self.db.conn.execute(
            "select id, feed_id, event_id, title, text, author, coalesce(canonical_url, url),"
            " hidden_by from entries"
            + (" where hidden_by is not null" if hidden_only else "")
            + " order by id"
        )
        while rows := cursor.fetchmany(_FETCH_ROWS):
            yield from (FilterRow(*row) for row in rows)

    def set_hidden_by(self, changes: Iterable[tuple[int, str | None]]) -> None:
        """(entry id, the rule that now hides it or None) for each entry whose verdict
        changed; its event is to be refreshed (`refresh_event`)."""
        self.db.conn.executemany(
            "update entries set hidden_by = ? where id = ?",
            [(label, entry_id) for entry_id, label in changes],
        )

    # -- meta ----------------------------------------------------------------------------

    def _meta(self, key: str) -> str | None:
        rows = list(self.db.query("select value from meta where key = ?", [key]))
        return str(rows[0]["value"]) if rows else None

    def _set_meta(self, key: str, value: str) -> None:
        self.db.table("meta").upsert({"key": key, "value": value}, pk="key")

    def check_dedup_params(self, params: MinHashParams) -> None:
        """Record the MinHash parameters, or refuse signatures made with other ones."""
        stored = self._meta("minhash_params")
        if stored is None:
            with self.transaction():
                self._set_meta("minhash_params", params.to_json())
        elif MinHashParams.from_json(stored) != params:
            raise StoreError(
                f"database {self.path} holds signatures made with other MinHash parameters "
                f"({stored}); run `aggregator reindex` to recompute them"
            )

    def check_term_recipe(self, recipe: str) -> int:
        """Record the recipe of the stored event term vectors; under another recipe,
        forget them (they are derived from the text until the window has turned over).
        Returns the number of vectors forgotten."""
        stored = self._meta("event_terms_recipe")
        if stored == recipe:
            return 0
        with self.transaction():
            forgotten = 0
            if stored is not None:
                forgotten = self.db.conn.execute(
                    "update entries set event_terms = null, event_weights = null"
                    " where event_terms is not null"
                ).rowcount
            self._set_meta("event_terms_recipe", recipe)
        return forgotten

    # -- feeds ---------------------------------------------------------------------------

    def sync_feeds(self, specs: Sequence[FeedSpec], now: datetime) -> dict[str, int]:
        """Make the feeds table match the config; returns location -> feed id.

        Feeds removed from the config are disabled, never deleted: their entries stay.
        """
        ids: dict[str, int] = {}
        with self.transaction():
            known = {row["location"]: row for row in self.db.table("feeds").rows}
            for spec in specs:
                values = {
                    "name": spec.name,
                    "grp": spec.group,
                    "priority": spec.priority,
                    "enabled": int(spec.enabled),
                    "interval_s": int(spec.interval.total_seconds()),
                }
                row = known.pop(spec.location, None)
                if row is None:
                    table = self.db.table("feeds").insert(
                        {**values, "location": spec.location, "created": to_db_time(now),
                         "next_due": to_db_time(now), "status": "new", "failures": 0},
                    )  # fmt: skip
                    ids[spec.location] = _last_pk(table)
                else:
                    self.db.table("feeds").update(row["id"], values)
                    ids[spec.location] = int(row["id"])
            for row in known.values():
                if row["enabled"]:
                    self.db.table("feeds").update(row["id"], {"enabled": 0})
        return ids

    def due_feed_ids(self, now: datetime) -> set[int]:
        rows = self.db.query(
            "select id from feeds where enabled = 1 and retired is null"
            " and (next_due is null or next_due <= ?)",
            [to_db_time(now)],
        )
        return {int(row["id"]) for row in rows}

    @_translating
    def record_feed_success(
        self, feed_id: int, *, now: datetime, next_due: datetime, status: str,
        etag: str | None, last_modified: str | None, location: str,
        title: str | None = None, link: str | None = None,
    ) -> None:  # fmt: skip
        values: dict[str, Any] = {
            "last_fetch": to_db_time(now), "last_success": to_db_time(now), "status": status,
            "error": None, "failures": 0, "next_due": to_db_time(next_due), "etag": etag,
            "last_modified": last_modified, "effective_location": location,
        }  # fmt: skip
        if title is not None:
            values["title"] = title
        if link is not None:
            values["link"] = link
        self.db.table("feeds").update(feed_id, values)

    @_translating
    def record_feed_failure(
        self, feed_id: int, *, now: datetime, next_due: datetime, error: str
    ) -> int:
        """Store the reason and count the failure; returns the consecutive failure count."""
        row = self.db.table("feeds").get(feed_id)
        failures = int(row["failures"] or 0) + 1
        self.db.table("feeds").update(
            feed_id,
            {"last_fetch": to_db_time(now), "status": "error", "error": error,
             "failures": failures, "next_due": to_db_time(next_due)},
        )  # fmt: skip
        return failures

    def feed_failures(self, feed_id: int) -> int:
        return int(self.db.table("feeds").get(feed_id)["failures"] or 0)

    def feed_fetch_state(self, feed_id: int) -> FeedFetchState:
        """What the next fetch of a feed needs: validators, where it moved, whether retired."""
        row = self.db.table("feeds").get(feed_id)
        return FeedFetchState(
            etag=row["etag"], last_modified=row["last_modified"],
            effective_url=row["effective_url"], retired=row["retired"],
            ttl_minutes=row["ttl_minutes"], skip_hours=_int_set(row["skip_hours"]),
            skip_days=_int_set(row["skip_days"]),
        )  # fmt: skip

    @_translating
    def set_schedule_hints(
        self, feed_id: int, *, ttl_minutes: int | None, skip_hours: Iterable[int],
        skip_days: Iterable[int],
    ) -> None:  # fmt: skip
        """Remember the publisher's <ttl>, <skipHours> and <skipDays> for later 304s."""
        self.db.table("feeds").update(
            feed_id,
            {"ttl_minutes": ttl_minutes, "skip_hours": _int_text(skip_hours),
             "skip_days": _int_text(skip_days)},
        )  # fmt: skip

    @_translating
    def note_permanent_redirect(
        self, feed_id: int, target: str | None, *, confirmations: int
    ) -> str | None:
        """Count a fetch's permanent-redirect target (None: the fetch had none). When the
        same target was seen on `confirmations` consecutive fetches, it becomes the feed's
        effective URL, which is returned; otherwise returns None."""
        row = self.db.table("feeds").get(feed_id)
        if target is None or target == row["effective_url"]:
            values: dict[str, Any] = {"redirect_target": None, "redirect_streak": 0}
            self.db.table("feeds").update(feed_id, values)
            return None
        streak = int(row["redirect_streak"] or 0) + 1 if row["redirect_target"] == target else 1
        if streak >= confirmations:
            self.db.table("feeds").update(
                feed_id,
                {"effective_url": target, "redirect_target": None, "redirect_streak": 0},
            )
            return target
        self.db.table("feeds").update(
            feed_id, {"redirect_target": target, "redirect_streak": streak}
        )
        return None

    @_translating
    def retire_feed(self, feed_id: int, *, now: datetime, reason: str) -> None:
        """Stop fetching a feed for good (its entries stay): `reason` is shown with it."""
        self.db.table("feeds").update(
            feed_id,
            {"retired": reason, "retired_at": to_db_time(now), "last_fetch": to_db_time(now),
             "status": "error", "error": reason, "next_due": None},
        )  # fmt: skip

    @_translating
    def hold_feeds(self, feed_ids: Iterable[int], until: datetime) -> None:
        """No feed of `feed_ids` is due before `until` (a host asked us to slow down)."""
        ids = sorted(set(feed_ids))
        if not ids:
            return
        marks = ",".join("?" * len(ids))
        self.db.execute(
            f"update feeds set next_due = ? where id in ({marks})"
            " and (next_due is null or next_due < ?)",
            [to_db_time(until), *ids, to_db_time(until)],
        )

    def feed_states(self) -> list[FeedState]:
        rows = self.db.query(
            """
            select feeds.*, (select count(*) from entries where entries.feed_id = feeds.id)
                   as entry_count
            from feeds order by grp, name
            """
        )
        return [
            FeedState(
                id=row["id"],
                name=row["name"],
                group=row["grp"],
                location=row["location"],
                enabled=bool(row["enabled"]),
                last_fetch=from_db_time(row["last_fetch"]),
                last_success=from_db_time(row["last_success"]),
                status=row["status"],
                error=row["error"],
                failures=row["failures"] or 0,
                next_due=from_db_time(row["next_due"]),
                etag=row["etag"],
                last_modified=row["last_modified"],
                entry_count=row["entry_count"],
                title=row["title"],
                effective_url=row["effective_url"],
                retired=row["retired"],
                link=row["link"],
            )
            for row in rows
        ]

    # -- entries -------------------------------------------------------------------------

    # The per-entry reads and writes of an update (a few per entry) are plain prepared SQL
    # on the connection: sqlite-utils' `insert` and `update` introspect the table and
    # build their SQL on every call, and `query` makes a dict per row. The statements and
    # values are those sqlite-utils wrote (tests/integration/test_store_fast_paths.py).

    def existing_entry(self, feed_id: int, identity: str) -> ExistingEntry | None:
        row = self.db.conn.execute(
            "select id, event_id, content_key from entries where feed_id = ? and identity = ?",
            [feed_id, identity],
        ).fetchone()
        if row is None:
            return None
        return ExistingEntry(id=row[0], event_id=row[1], content_key=row[2])

    def stored_versions(self, feed_id: int, limit: int) -> dict[str, str]:
        """identity -> content key of the feed's `limit` newest stored entries."""
        rows = self.db.conn.execute(
            "select identity, content_key from entries where feed_id = ? order by id desc limit ?",
            [feed_id, limit],
        )
        return dict(rows.fetchall())

    def exact_duplicate(self, entry: Entry) -> tuple[int, int] | None:
        """(entry id, event id) of a stored entry with the same canonical URL or (when the
        content is distinctive) the same normalised title and text, oldest first."""
        row = self.db.conn.execute(
            """
            select id, event_id from entries
            where event_id is not null
              and ((? is not null and canonical_url = ?) or (? and content_key = ?))
            order by id limit 1
            """,
            [entry.canonical_url, entry.canonical_url, int(entry.distinctive), entry.content_key],
        ).fetchone()
        return (row[0], row[1]) if row is not None else None

    def insert_entry(
        self, feed_id: int, entry: Entry, signatures: Signatures, *, now: datetime,
        event_id: int, level: JoinLevel, similarity: float | None = None,
        matched_entry_id: int | None = None, match_rule: str | None = None,
        vector: Mapping[str, float] | None = None, hidden_by: str | None = None,
    ) -> int:  # fmt: skip
        """Insert a new entry; `vector` is its event term vector (`dedup.events`), if
        known (else it is derived from the text when the window is rebuilt); `hidden_by`:
        the filter rule that hides it, if one does."""
        values = {
            **self._entry_values(entry, signatures, vector, hidden_by),
            "feed_id": feed_id, "identity": entry.identity,
            "first_seen": to_db_time(now), "last_seen": to_db_time(now),
            "event_id": event_id, "join_level": str(level), "similarity": similarity,
            "matched_entry_id": matched_entry_id, "match_rule": match_rule,
        }  # fmt: skip
        return _inserted_id(self.db.conn.execute(_INSERT_ENTRY_SQL, values))

    def update_entry_content(
        self, entry_id: int, entry: Entry, signatures: Signatures, *, now: datetime,
        vector: Mapping[str, float] | None = None, hidden_by: str | None = None,
    ) -> None:  # fmt: skip
        """The publisher changed the item: update it in place, keep its event."""
        values = {
            **self._entry_values(entry, signatures, vector, hidden_by),
            "last_seen": to_db_time(now),
        }
        cursor = self.db.conn.execute(_UPDATE_ENTRY_SQL, {**values, "id": entry_id})
        if cursor.rowcount != 1:  # as sqlite-utils' update: the row must exist
            raise sqlite_utils.db.NotFoundError(f"no entry {entry_id}")

    @staticmethod
    def _entry_values(
        entry: Entry,
        signatures: Signatures,
        vector: Mapping[str, float] | None,
        hidden_by: str | None = None,
    ) -> dict[str, Any]:
        terms, weights = encode_vector(vector) if vector is not None else (None, None)
        return {
            "guid": entry.guid, "url": entry.url, "canonical_url": entry.canonical_url,
            "title": entry.title, "text": entry.text, "html": entry.html,
            "author": entry.author, "published": to_db_time(entry.published),
            "updated": to_db_time(entry.updated), "content_key": entry.content_key,
            "distinctive": int(entry.distinctive), "hidden_by": hidden_by,
            "title_sig": signatures.title_bytes(), "body_sig": signatures.body_bytes(),
            "title_words": signatures.title_words,
            "body_shingles": signatures.body_shingles,
            "headline_only": int(signatures.headline_only),
            "event_terms": terms, "event_weights": weights,
        }  # fmt: skip

    def fingerprint_columns_since(self, cutoff: datetime, num_perm: int) -> FingerprintColumns:
        """The fingerprints of the entries first seen at or after `cutoff` (the dedup
        window), as columns for `SimilarityIndex.add_columns`: one query, read in batches;
        the signature BLOBs of a batch joined and read as one matrix. (`fingerprints()`
        of the result gives them as objects.)"""
        cursor = self.db.execute(_FINGERPRINTS_SQL, [to_db_time(cutoff)])
        parts: list[FingerprintColumns] = []
        while rows := cursor.fetchmany(_FETCH_ROWS):
            (ids, feeds, events, first_seen, published, titles, bodies, title_words,
             body_shingles, headline_only) = zip(*rows, strict=True)  # fmt: skip
            parts.append(
                FingerprintColumns(
                    entry_ids=np.array(ids, dtype=np.int64),
                    feed_ids=np.array(feeds, dtype=np.int64),
                    event_ids=np.array(events, dtype=np.int64),
                    first_seen=_microseconds_column(first_seen),
                    published=_microseconds_column(published),
                    title=_signature_matrix(titles, num_perm),
                    body=_signature_matrix(bodies, num_perm),
                    title_words=np.array(title_words, dtype=np.int64),
                    body_shingles=np.array(body_shingles, dtype=np.int64),
                    headline_only=np.array(headline_only, dtype=np.bool_),
                )
            )
        if not parts:
            return FingerprintColumns.from_fingerprints([], num_perm)
        return parts[0] if len(parts) == 1 else FingerprintColumns.concatenate(parts)

    # -- events --------------------------------------------------------------------------

    def create_event(self, now: datetime) -> int:
        """A new, empty event, unread, under an id no event has had before."""
        when = to_db_time(now)
        # No RETURNING (SQLite 3.35; 3.27 is supported): the insert reads the counter.
        self.db.conn.execute(
            "update meta set value = cast(value as integer) + 1 where key = 'last_event_id'"
        )
        cursor = self.db.conn.execute(
            "insert into events (id, story_id, first_seen, last_seen, member_count,"
            " source_count, updated) values ((select cast(value as integer) from meta"
            " where key = 'last_event_id'), (select cast(value as integer) from meta"
            " where key = 'last_event_id'), ?, ?, 0, 0, ?)",
            [when, when, when],
        )
        return _inserted_id(cursor)

    def event_sizes(self, event_ids: Iterable[int]) -> dict[int, int]:
        ids = sorted(set(event_ids))
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self.db.conn.execute(
            f"select id, member_count from events where id in ({marks})", ids
        )
        return {int(event_id): int(count or 0) for event_id, count in rows}

    def event_members(self, event_id: int) -> list[StoredEntry]:
        return self._stored_entries("where entries.event_id = ? order by entries.id", [event_id])

    def member_facts(self, event_id: int) -> list[MemberFacts]:
        """What the canonical choice needs of each member of an event, by arrival.

        SQLite's `length` of a text counts characters up to the first NUL, the same as
        Python's `len` here: normalisation removes control characters from every text."""
        rows = self.db.conn.execute(
            """
            select entries.id, feeds.priority, entries.published, entries.first_seen,
                   length(entries.text), entries.hidden_by is not null
            from entries join feeds on feeds.id = entries.feed_id
            where entries.event_id = ? order by entries.id
            """,
            [event_id],
        )
        facts = []
        for entry_id, priority, published, first_seen, text_length, hidden in rows:
            when = from_db_time(published) or from_db_time(first_seen)
            assert when is not None
            facts.append(MemberFacts(entry_id, priority or 0, when, text_length or 0, bool(hidden)))
        return facts

    def entries_for_events_since(self, cutoff: datetime, recipe: str) -> Iterator[WindowEntry]:
        """The entries first seen at or after `cutoff`, oldest first, as what rebuilds the
        event centroids: the stored term vector if it was made by `recipe`, else title,
        text and link to derive it from; the title also when it holds a digit (it may name
        a part of a series or a date: `dedup.series`)."""
        current = self._meta("event_terms_recipe") == recipe
        terms, weights = ("event_terms", "event_weights") if current else ("null", "null")
        cursor = self.db.conn.execute(
            f"""
            select id, event_id, headline_only, first_seen, published, {terms}, {weights},
                   case when {terms} is null or title glob '*[0-9]*' then title end,
                   case when {terms} is null then text end,
                   case when {terms} is null then coalesce(canonical_url, url) end, feed_id
            from entries where first_seen >= ? and event_id is not null order by id
            """,
            [to_db_time(cutoff)],
        )
        while rows := cursor.fetchmany(_FETCH_ROWS):
            for row in rows:
                first_seen = from_db_time(row[3])
                assert first_seen is not None
                # Positional: WindowEntry(entry_id, event_id, headline_only, first_seen,
                # published, terms, weights, title, text, url, feed_id), one per entry.
                yield WindowEntry(
                    row[0], row[1], bool(row[2]), first_seen, from_db_time(row[4]), row[5],
                    row[6], row[7] or "", row[8] or "", row[9], row[10],
                )  # fmt: skip

    def entry_event(self, entry_id: int) -> int | None:
        rows = list(self.db.query("select event_id from entries where id = ?", [entry_id]))
        if not rows:
            raise StoreError(f"no entry {entry_id}")
        return None if rows[0]["event_id"] is None else int(rows[0]["event_id"])

    def delete_event(self, event_id: int) -> None:
        """Delete an event that has no members left."""
        self.db.execute(
            "delete from events where id = ? and not exists "
            "(select 1 from entries where event_id = ?)",
            [event_id, event_id],
        )

    def event_exists(self, event_id: int) -> bool:
        return bool(list(self.db.query("select 1 from events where id = ?", [event_id])))

    def merge_events(
        self, keep: int, gone: int, *, similarity: float | None, reason: str, now: datetime
    ) -> list[int]:
        """Move every entry of event `gone` into `keep`, record why, delete `gone`.

        Returns the ids of the entries moved. Separations of `gone` carry over to `keep`.
        """
        moved = [
            int(row["id"])
            for row in self.db.query("select id from entries where event_id = ?", [gone])
        ]
        self.db.execute("update entries set event_id = ? where event_id = ?", [keep, gone])
        # Read if either was read (its story has been seen); starred if either was.
        self.db.execute(
            "update events set"
            " read_at = coalesce(read_at, (select read_at from events where id = :gone)),"
            " starred_at = coalesce(starred_at, (select starred_at from events where id = :gone))"
            " where id = :keep",
            {"keep": keep, "gone": gone},
        )
        self._join_stories(keep, gone)
        self.db.execute("update story_links set event_id = ? where event_id = ?", [keep, gone])
        self.db.execute(
            "update story_links set linked_event_id = ? where linked_event_id = ?", [keep, gone]
        )
        # A link between the two events merged is now inside one event: no longer a reason.
        self.db.execute(
            "delete from story_links where event_id = ? and linked_event_id = ?", [keep, keep]
        )
        self.db.table("event_merges").insert(
            {"kept_event_id": keep, "absorbed_event_id": gone, "similarity": similarity,
             "reason": reason, "entries": len(moved), "at": to_db_time(now)}
        )  # fmt: skip
        for event_id, other in self.db.execute(
            "select event_id, other_event_id from event_separations "
            "where event_id = ? or other_event_id = ?",
            [gone, gone],
        ).fetchall():
            left = keep if event_id == gone else event_id
            right = keep if other == gone else other
            if left != right:
                self.separate_events(left, right, now=now)
        self.db.execute(
            "delete from event_separations where event_id = ? or other_event_id = ?", [gone, gone]
        )
        self.db.execute("delete from events where id = ?", [gone])
        return moved

    def move_entry_to_new_event(self, entry_id: int, *, now: datetime) -> int:
        """Split: the entry leaves its event for a new event of its own (a manual act),
        which starts with the old event's read and starred state, in its story."""
        event_id = self.create_event(now)
        self.db.execute(
            "update events set (read_at, starred_at, story_id) = (select e.read_at,"
            " e.starred_at, e.story_id"
            " from events e join entries on entries.event_id = e.id where entries.id = ?)"
            " where id = ?",
            [entry_id, event_id],
        )
        self.db.execute(
            "update entries set event_id = ?, join_level = ?, similarity = null, "
            "matched_entry_id = null, match_rule = 'split by hand' where id = ?",
            [event_id, str(JoinLevel.MANUAL), entry_id],
        )
        self.db.execute("delete from join_reasons where entry_id = ?", [entry_id])
        return event_id

    def link_stories(
        self, event_id: int, linked_event_id: int, *, similarity: float,
        probability: float | None, now: datetime, reasons: Reasons = (),
    ) -> int:  # fmt: skip
        """Put the stories of two events together (an event found related to another, not
        the same happening), record why, and return the story id they now share."""
        story = self._join_stories(event_id, linked_event_id)
        self.db.table("story_links").insert(
            {"event_id": event_id, "linked_event_id": linked_event_id,
             "similarity": similarity, "probability": probability, "at": to_db_time(now),
             "reasons": json.dumps(list(reasons)) if reasons else None}
        )  # fmt: skip
        return story

    def record_join_reasons(self, entry_id: int, probability: float, reasons: Reasons) -> None:
        """Why a write-up joined its event: the model's probability and deciding features."""
        self.db.execute(
            "insert or replace into join_reasons (entry_id, probability, reasons) values (?, ?, ?)",
            [entry_id, probability, json.dumps(list(reasons))],
        )

    def _join_stories(self, event_id: int, other_event_id: int) -> int:
        """One story for both events' stories: the older story's id (the smaller)."""
        rows = self.db.execute(
            "select id, story_id from events where id in (?, ?)", [event_id, other_event_id]
        ).fetchall()
        stories = {int(story if story is not None else eid) for eid, story in rows}
        if not stories:
            raise StoreError(f"no event {event_id} or {other_event_id}")
        kept = min(stories)
        if len(stories) > 1:
            marks = ",".join("?" * len(stories))
            self.db.execute(
                f"update events set story_id = ? where story_id in ({marks})",
                [kept, *sorted(stories)],
            )
        return kept

    def story_event_ids(self, event_id: int) -> set[int]:
        """The events of this event's story, itself included."""
        rows = self.db.execute(
            "select id from events where story_id = (select story_id from events where id = ?)",
            [event_id],
        ).fetchall()
        return {int(row[0]) for row in rows} | {event_id}

    def story_links_of(self, event_id: int) -> list[StoryLink]:
        """Why this event is in its story: the links it takes part in, oldest first."""
        rows = self.db.execute(
            "select event_id, linked_event_id, similarity, probability, at, reasons"
            " from story_links where event_id = ? or linked_event_id = ? order by id",
            [event_id, event_id],
        ).fetchall()
        return [
            StoryLink(int(a), int(b), similarity, probability, _required_time(at),
                      _reasons(reasons))
            for a, b, similarity, probability, at, reasons in rows
        ]  # fmt: skip

    def separate_events(self, event_id: int, other_event_id: int, *, now: datetime) -> None:
        low, high = sorted((event_id, other_event_id))
        self.db.table("event_separations").upsert(
            {"event_id": low, "other_event_id": high, "at": to_db_time(now)},
            pk=("event_id", "other_event_id"),
        )

    def separated_from(self, event_id: int) -> set[int]:
        rows = self.db.execute(
            "select event_id, other_event_id from event_separations "
            "where event_id = ? or other_event_id = ?",
            [event_id, event_id],
        ).fetchall()
        return {b if a == event_id else a for a, b in rows}

    # -- reading state ---------------------------------------------------------------------

    def current_event_id(self, event_id: int) -> int | None:
        """The event an id stands for now: itself, or the event it was merged into (through
        every later merge); None when it never existed or has been pruned."""
        seen: set[int] = set()
        while event_id not in seen:
            if self.event_exists(event_id):
                return event_id
            seen.add(event_id)
            row = self.db.execute(
                "select kept_event_id from event_merges where absorbed_event_id = ?"
                " order by id desc limit 1",
                [event_id],
            ).fetchone()
            if row is None:
                return None
            event_id = int(row[0])
        return None

    def mark_events(self, event_ids: Iterable[int], mark: Mark, *, now: datetime) -> int:
        """Give existing events a mark; the time of a mark already set is kept. Returns how
        many events changed."""
        ids = sorted(set(event_ids))
        when = to_db_time(now)
        changed = 0
        for column, value in (("read_at", mark.read), ("starred_at", mark.starred)):
            if value is None:
                continue
            for start in range(0, len(ids), _READ_BATCH):
                batch = ids[start : start + _READ_BATCH]
                marks = ",".join("?" * len(batch))
                if value:
                    sql = f"update events set {column} = ? where {column} is null"
                    params: list[Any] = [when, *batch]
                else:
                    sql = f"update events set {column} = null where {column} is not null"
                    params = list(batch)
                sql += f" and id in ({marks})"
                changed += self.db.conn.execute(sql, params).rowcount
        return changed

    def count_events(self, query: EventQuery) -> int:
        """How many events `query` matches (the unread count of a page, for one)."""
        where = self._event_filter(query)
        if where is None:
            return 0
        conditions, params = where
        try:
            (count,) = self.db.execute(
                f"select count(*) from events where {conditions}", params
            ).fetchone()
        except sqlite3.OperationalError as exc:
            raise StoreError(f"cannot read events from {self.path}: {exc}") from exc
        return int(count)

    def event_merge_history(self, event_id: int) -> list[dict[str, Any]]:
        return list(
            self.db.query(
                "select absorbed_event_id, similarity, reason, entries, at from event_merges "
                "where kept_event_id = ? order by id",
                [event_id],
            )
        )

    def matched_entries(self, event_id: int) -> dict[int, tuple[int | None, str | None]]:
        """entry id -> (entry it matched, rule) for the members of an event."""
        rows = self.db.query(
            "select id, matched_entry_id, match_rule from entries where event_id = ?", [event_id]
        )
        return {int(r["id"]): (r["matched_entry_id"], r["match_rule"]) for r in rows}

    def feed_overlap(self) -> list[tuple[str, int, int]]:
        """(feed name, entries, entries whose event also holds another feed's entry)."""
        rows = self.db.query(
            """
            select feeds.name as name, count(entries.id) as total,
                   sum(case when exists (
                       select 1 from entries other
                       where other.event_id = entries.event_id
                         and other.feed_id != entries.feed_id) then 1 else 0 end) as shared
            from feeds join entries on entries.feed_id = feeds.id
            group by feeds.id order by shared * 1.0 / count(entries.id) desc, feeds.name
            """
        )
        return [(r["name"], int(r["total"]), int(r["shared"] or 0)) for r in rows]

    def all_entry_texts(self) -> Iterator[tuple[int, str, str]]:
        for row in self.db.query("select id, title, text from entries order by id"):
            yield int(row["id"]), row["title"], row["text"]

    def replace_signatures(self, entry_id: int, signatures: Signatures) -> None:
        self.db.table("entries").update(
            entry_id,
            {"title_sig": signatures.title_bytes(), "body_sig": signatures.body_bytes(),
             "title_words": signatures.title_words, "body_shingles": signatures.body_shingles,
             "headline_only": int(signatures.headline_only)},
        )  # fmt: skip

    def set_dedup_params(self, params: MinHashParams) -> None:
        self._set_meta("minhash_params", params.to_json())

    def set_event_summary(
        self,
        event_id: int,
        *,
        canonical_entry_id: int,
        reason: str,
        now: datetime,
        hidden: bool = False,
    ) -> None:
        """Store the canonical choice and recount members, sources and times; `hidden`:
        filter rules hide every member."""
        # One pass over the members for the four counts (an aggregate over no rows is
        # one row of 0, 0, null, null: what the four subqueries gave for an empty event).
        self.db.conn.execute(
            """
            update events set
                canonical_entry_id = :canonical, canonical_reason = :reason, updated = :now,
                hidden = :hidden,
                (member_count, source_count, first_seen, last_seen) = (
                    select count(*), count(distinct feed_id), min(first_seen), max(first_seen)
                    from entries where event_id = :id)
            where id = :id
            """,
            {"canonical": canonical_entry_id, "reason": reason, "now": to_db_time(now),
             "id": event_id, "hidden": int(hidden)},
        )  # fmt: skip

    def events_since(self, since: datetime, *, limit: int | None = None) -> list[EventView]:
        """Events with a member first seen at or after `since`, most sources first,
        then most recent."""
        sql = """
            select id from events
            where last_seen >= ? and canonical_entry_id is not null
            order by source_count desc, member_count desc, last_seen desc, id desc
        """
        params: list[Any] = [to_db_time(since)]
        if limit is not None:
            sql += " limit ?"
            params.append(limit)
        ids = [int(row["id"]) for row in self.db.query(sql, params)]
        return [view for view in (self.event(i) for i in ids) if view is not None]

    def event(self, event_id: int) -> EventView | None:
        views = self.events_by_id([event_id])
        return views[0] if views else None

    # -- reading events for the digest and the web page ----------------------------------

    def find_events(self, query: EventQuery, *, latest: int | None = None) -> list[EventView]:
        """The events matching `query` (see EventQuery), unranked: the digest ranks them.

        With `latest`, only that many: the events that most recently gained a member (what
        a feed of the digest carries).
        """
        return self.events_by_id(self._event_ids(query, latest=latest))

    def _event_ids(self, query: EventQuery, *, latest: int | None = None) -> list[int]:
        where = self._event_filter(query)
        if where is None:
            return []
        conditions, params = where
        sql = f"select id from events where {conditions} order by last_seen desc, id desc"
        if latest is not None:
            sql += " limit :latest"
            params["latest"] = latest
        try:
            return [int(row["id"]) for row in self.db.query(sql, params)]
        except sqlite3.OperationalError as exc:
            raise StoreError(f"cannot read events from {self.path}: {exc}") from exc

    def _event_filter(self, query: EventQuery) -> tuple[str, dict[str, Any]] | None:
        """The WHERE clause and parameters of `query`; None when it can match nothing."""
        conditions = [_HAS_MEMBERS if query.hidden else _SHOWN]
        params: dict[str, Any] = {}
        if query.arrived_since is not None:
            conditions.append("events.last_seen >= :arrived_since")
            params["arrived_since"] = to_db_time(query.arrived_since)
        published: list[str] = []
        if query.published_from is not None:
            published.append(f"{_EFFECTIVE_TIME} >= :published_from")
            params["published_from"] = to_db_time(query.published_from)
        if query.published_until is not None:
            published.append(f"{_EFFECTIVE_TIME} < :published_until")
            params["published_until"] = to_db_time(query.published_until)
        if published:
            conditions.append(
                f"events.id in (select event_id from entries where {' and '.join(published)})"
            )
        if query.groups:
            marks = ", ".join(f":group_{i}" for i in range(len(query.groups)))
            params.update({f"group_{i}": name for i, name in enumerate(query.groups)})
            conditions.append(
                "events.id in (select entries.event_id from entries"
                f" join feeds on feeds.id = entries.feed_id where feeds.grp in ({marks}))"
            )
        if query.search is not None:
            # Every word quoted: user input is words, never FTS5 syntax (NOT, OR, NEAR, *).
            match = self.db.quote_fts(query.search)
            if not match:
                return None
            params["search"] = match
            conditions.append(
                "events.id in (select event_id from entries where id in"
                " (select rowid from entries_fts where entries_fts match :search))"
            )
        if query.state is ReadingState.UNREAD:
            conditions.append("events.read_at is null")
        elif query.state is ReadingState.STARRED:
            conditions.append("events.starred_at is not null")
        return " and ".join(conditions), params

    def events_by_id(self, event_ids: Sequence[int]) -> list[EventView]:
        """The events with these ids, in the order given; unknown ids are left out.

        Members are read in batches (one query per batch, not one per event).
        """
        views: list[EventView] = []
        for start in range(0, len(event_ids), _READ_BATCH):
            batch = list(event_ids[start : start + _READ_BATCH])
            marks = ",".join("?" * len(batch))
            rows = {
                int(row["id"]): row
                for row in self.db.query(f"select * from events where id in ({marks})", batch)
            }
            members: dict[int, list[StoredEntry]] = {}
            for entry in self._stored_entries(
                f"where entries.event_id in ({marks}) order by entries.id", batch
            ):
                assert entry.event_id is not None
                members.setdefault(entry.event_id, []).append(entry)
            stories = self._story_events({int(r["story_id"] or r["id"]) for r in rows.values()})
            for event_id in batch:
                row = rows.get(event_id)
                if row is None:
                    continue
                story = stories.get(int(row["story_id"] or row["id"]), ())
                view = _event_view(row, members.get(event_id, []), story)
                if view is not None:
                    views.append(view)
        return views

    def _story_events(self, story_ids: Iterable[int]) -> dict[int, list[StoryEvent]]:
        """The events of each story, oldest first, as the digest names them."""
        ids = sorted(set(story_ids))
        found: dict[int, list[StoryEvent]] = {}
        for start in range(0, len(ids), _READ_BATCH):
            batch = ids[start : start + _READ_BATCH]
            marks = ",".join("?" * len(batch))
            rows = self.db.execute(
                "select ev.story_id, ev.id, coalesce(en.published, en.first_seen) as time,"
                " en.title, en.url from events ev"
                " join entries en on en.id = ev.canonical_entry_id"
                f" where ev.story_id in ({marks}) order by time, ev.id",
                batch,
            ).fetchall()
            for story_id, event_id, when, title, url in rows:
                found.setdefault(int(story_id), []).append(
                    StoryEvent(int(event_id), str(title), url, _required_time(when))
                )
        return found

    def group_names(self) -> list[str]:
        """The groups of the known feeds, by name."""
        rows = self.db.query("select distinct grp from feeds order by grp")
        return [str(row["grp"]) for row in rows]

    # -- the Google Reader API (aggregator.greader): streams, counts, its secret ----------

    def secret(self, name: str) -> bytes:
        """A random 32-byte secret kept in `meta` under `name`, made on first use (the API's
        token signing key: tokens then survive a restart of the server)."""
        key = f"secret.{name}"
        stored = self._meta(key)
        if stored is None:
            with self.transaction():
                stored = self._meta(key)  # another server may have made it meanwhile
                if stored is None:
                    stored = secrets.token_hex(32)
                    self._set_meta(key, stored)
        return bytes.fromhex(stored)

    def stream_event_ids(
        self, *, feed_ids: Sequence[int] | None = None, groups: Sequence[str] = (),
        read: bool | None = None, starred: bool | None = None,
        first_seen_from: datetime | None = None, first_seen_until: datetime | None = None,
        after: tuple[str, int] | None = None, oldest_first: bool = False,
        limit: int | None = None,
    ) -> list[tuple[int, str]]:  # fmt: skip
        """Events (id, first_seen as stored) with a member in one of `feed_ids` or of
        `groups` when given, in a read and starred state when given, that first arrived in
        [first_seen_from, first_seen_until); ordered by first arrival (newest first unless
        `oldest_first`), then id, and starting after the position `after` of that order."""
        conditions = [_SHOWN]
        params: dict[str, Any] = {}
        if feed_ids is not None:
            params.update({f"feed_{i}": int(f) for i, f in enumerate(feed_ids)})
            marks = ", ".join(f":feed_{i}" for i in range(len(feed_ids))) or "null"
            conditions.append(f"id in (select event_id from entries where feed_id in ({marks}))")
        if groups:
            params.update({f"group_{i}": name for i, name in enumerate(groups)})
            marks = ", ".join(f":group_{i}" for i in range(len(groups)))
            conditions.append(
                "id in (select entries.event_id from entries"
                f" join feeds on feeds.id = entries.feed_id where feeds.grp in ({marks}))"
            )
        for column, value in (("read_at", read), ("starred_at", starred)):
            if value is not None:
                conditions.append(f"{column} is {'not null' if value else 'null'}")
        if first_seen_from is not None:
            conditions.append("first_seen >= :since")
            params["since"] = to_db_time(first_seen_from)
        if first_seen_until is not None:
            conditions.append("first_seen < :until")
            params["until"] = to_db_time(first_seen_until)
        if after is not None:
            conditions.append(f"(first_seen, id) {'>' if oldest_first else '<'} (:at, :at_id)")
            params.update(at=after[0], at_id=int(after[1]))
        order = "asc" if oldest_first else "desc"
        sql = (
            f"select id, first_seen from events where {' and '.join(conditions)}"
            f" order by first_seen {order}, id {order}"
        )
        if limit is not None:
            sql += " limit :limit"
            params["limit"] = limit
        try:
            rows = self.db.execute(sql, params).fetchall()
        except sqlite3.OperationalError as exc:
            raise StoreError(f"cannot read events from {self.path}: {exc}") from exc
        return [(int(event_id), str(first_seen)) for event_id, first_seen in rows]

    def unread_by_feed(self) -> dict[int, tuple[int, datetime]]:
        """For each feed with unread events: how many, and when the newest first arrived."""
        return {int(feed): counted for feed, counted in self._unread_by("entries.feed_id")}

    def unread_by_group(self) -> dict[str, tuple[int, datetime]]:
        """For each config group with unread events: how many, and the newest's arrival."""
        return {str(group): counted for group, counted in self._unread_by("feeds.grp")}

    def _unread_by(self, column: str) -> list[tuple[Any, tuple[int, datetime]]]:
        """Unread shown events counted by `column` of their members (an event counts once
        under each value its members have), with the newest first arrival."""
        rows = self.db.execute(
            f"select {column}, count(distinct events.id), max(events.first_seen)"
            " from entries join events on events.id = entries.event_id"
            " join feeds on feeds.id = entries.feed_id"
            f" where events.read_at is null and {_SHOWN} group by {column}"
        ).fetchall()
        return [(key, (int(count), _required_time(newest))) for key, count, newest in rows]

    def counts(self) -> dict[str, int]:
        return {
            name: int(self.db.execute(f"select count(*) from {name}").fetchone()[0])
            for name in ("feeds", "entries", "events")
        }

    # -- operations: scheduling help, retention, maintenance, health (the daemon's) -----

    def failing_feed_ids(self) -> set[int]:
        """Feeds whose last fetch failed: the pipeline queues them after the others."""
        rows = self.db.query("select id from feeds where failures > 0")
        return {int(row["id"]) for row in rows}

    @_translating
    def set_next_due(self, feed_id: int, when: datetime) -> None:
        self.db.table("feeds").update(feed_id, {"next_due": to_db_time(when)})

    def prune(
        self, *, before: datetime, keep_tombstones_until: datetime, now: datetime,
        batch: int = PRUNE_BATCH,
    ) -> PruneResult:  # fmt: skip
        """Delete the events whose newest member arrived before `before`, with all their
        members, and the entries without an event that arrived before it; keep each
        deleted entry's keys as a tombstone until `keep_tombstones_until`; delete the
        tombstones that expired before `now`.

        A whole event goes or stays: an event with one recent member keeps its old ones,
        so no event is ever left with a missing canonical entry or a wrong count. One
        transaction per batch of events, so a kill -9 leaves only whole events.
        """
        cutoff = to_db_time(before)
        until = to_db_time(keep_tombstones_until)
        events = entries = tombstones = 0
        entry_ids: list[int] = []
        while True:
            with self.transaction():
                ids = [
                    int(row[0])
                    for row in self.db.execute(
                        "select id from events where last_seen < ? order by id limit ?",
                        [cutoff, batch],
                    )
                ]
                marks = ",".join("?" * len(ids))
                where = (
                    f"event_id in ({marks})"
                    if ids
                    else "event_id is null and first_seen < ?"  # last: stray entries
                )
                params: list[Any] = list(ids) if ids else [cutoff]
                pruned = [
                    int(row[0])
                    for row in self.db.execute(f"select id from entries where {where}", params)
                ]
                tombstones += self._bury(where, params, now=now, until=until)
                self.db.execute(
                    f"delete from join_reasons where entry_id in"
                    f" (select id from entries where {where})",
                    params,
                )
                self.db.execute(f"delete from entries where {where}", params)
                if ids:
                    self.db.execute(f"delete from events where id in ({marks})", ids)
                    self.db.execute(
                        f"delete from story_links where event_id in ({marks})"
                        f" or linked_event_id in ({marks})",
                        [*ids, *ids],
                    )
            events += len(ids)
            entries += len(pruned)
            entry_ids.extend(pruned)
            if not ids:
                break
        with self.transaction():
            expired = self.db.execute(
                "delete from tombstones where expires < ?", [to_db_time(now)]
            ).rowcount
        return PruneResult(
            events=events, entries=entries, tombstones=tombstones, expired=max(expired, 0),
            entry_ids=tuple(entry_ids),
        )  # fmt: skip

    def _bury(self, where: str, params: Sequence[Any], *, now: datetime, until: str | None) -> int:
        """Tombstones for the entries matching `where`: identity per feed, canonical URL,
        and the content key when the content is distinctive (as exact dedup uses it)."""
        cursor = self.db.execute(
            f"""
            insert into tombstones (feed_id, identity, canonical_url, content_key, pruned,
                                    expires)
            select feed_id, identity, canonical_url,
                   case when distinctive then content_key end, ?, ?
            from entries where {where}
            on conflict (feed_id, identity) do update set
                canonical_url = excluded.canonical_url, content_key = excluded.content_key,
                pruned = excluded.pruned, expires = max(expires, excluded.expires)
            """,
            [to_db_time(now), until, *params],
        )
        return max(cursor.rowcount, 0)

    def match_tombstone(self, feed_id: int, entry: Entry, *, keep_until: datetime) -> bool:
        """Whether `entry` was pruned earlier: the same identity in the same feed, or the
        same canonical URL or the same distinctive content in any feed (the keys exact
        dedup uses). A match extends the tombstone to `keep_until`, so an item that feeds
        keep serving stays known for as long as they serve it."""
        terms = ["(feed_id = ? and identity = ?)", "content_key = ?"]
        params: list[Any] = [feed_id, entry.identity, entry.content_key]
        if entry.canonical_url:
            terms.append("canonical_url = ?")
            params.append(entry.canonical_url)
        rows = self.db.execute(
            f"select id, expires from tombstones where {' or '.join(terms)} limit 1", params
        ).fetchall()
        if not rows:
            return False
        tombstone_id, expires = rows[0]
        # Extend at most once a day per tombstone: no write on every fetch of a feed.
        if expires < to_db_time(keep_until - TOMBSTONE_EXTEND_STEP):
            self.db.execute(
                "update tombstones set expires = ? where id = ?",
                [to_db_time(keep_until), tombstone_id],
            )
        return True

    def tombstone_count(self) -> int:
        return int(self.db.execute("select count(*) from tombstones").fetchone()[0])

    @_translating
    def optimize(self) -> None:
        """`PRAGMA optimize`: let SQLite refresh the statistics its query planner uses."""
        self.db.execute("PRAGMA optimize")

    @_translating
    def checkpoint(self) -> tuple[int, int, int]:
        """Copy the WAL into the database file and truncate it. Returns SQLite's (busy,
        WAL frames, frames checkpointed); busy = 1 when a reader kept it from finishing."""
        row = self.db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        return int(row[0]), int(row[1]), int(row[2])

    @_translating
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

    @_translating
    def record_heartbeat(self, beat: Heartbeat) -> None:
        """The daemon's sign of life, read by `aggregator status`."""
        value = {
            "pid": beat.pid, "command": beat.command, "started": to_db_time(beat.started),
            "last_tick": to_db_time(beat.last_tick), "tick_seconds": beat.tick_seconds,
        }  # fmt: skip
        with self.transaction():
            self._set_meta(HEARTBEAT_KEY, json.dumps(value))

    def heartbeat(self) -> Heartbeat | None:
        stored = self._meta(HEARTBEAT_KEY)
        if stored is None:
            return None
        value = json.loads(stored)
        started, last_tick = from_db_time(value["started"]), from_db_time(value["last_tick"])
        if started is None or last_tick is None:
            return None
        tick = value.get("tick_seconds")
        return Heartbeat(
            pid=int(value["pid"]), command=str(value.get("command", "run")), started=started,
            last_tick=last_tick, tick_seconds=float(tick) if tick is not None else None,
        )  # fmt: skip

    @_translating
    def record_maintenance(self, job: str, now: datetime) -> None:
        with self.transaction():
            self._set_meta(MAINTENANCE_KEY_PREFIX + job, to_db_time(now) or "")

    def maintenance_runs(self) -> dict[str, datetime]:
        """When each maintenance job last ran, by name."""
        rows = self.db.query(
            "select key, value from meta where key like ?", [MAINTENANCE_KEY_PREFIX + "%"]
        )
        runs: dict[str, datetime] = {}
        for row in rows:
            when = from_db_time(row["value"])
            if when is not None:
                runs[str(row["key"]).removeprefix(MAINTENANCE_KEY_PREFIX)] = when
        return runs

    def _stored_entries(self, where: str, params: Sequence[Any]) -> list[StoredEntry]:
        # Only the columns a StoredEntry holds (not the signature BLOBs), as tuples.
        rows = self.db.conn.execute(
            f"""
            select entries.id, entries.feed_id, feeds.name, feeds.grp, feeds.priority,
                   entries.identity, entries.url, entries.title, entries.text, entries.html,
                   entries.author, entries.published, entries.first_seen, entries.event_id,
                   entries.join_level, entries.similarity, entries.matched_entry_id,
                   entries.match_rule, join_reasons.probability, join_reasons.reasons,
                   entries.hidden_by
            from entries join feeds on feeds.id = entries.feed_id
            left join join_reasons on join_reasons.entry_id = entries.id
            {where}
            """,
            params,
        )
        result = []
        for (entry_id, feed_id, feed_name, feed_group, feed_priority, identity, url, title,
             text, html, author, published, first_seen_text, event_id, join_level, similarity,
             matched_entry_id, match_rule, probability, reasons, hidden_by) in rows:  # fmt: skip
            first_seen = from_db_time(first_seen_text)
            assert first_seen is not None
            result.append(
                StoredEntry(
                    id=entry_id,
                    feed_id=feed_id,
                    feed_name=feed_name,
                    feed_group=feed_group,
                    feed_priority=feed_priority or 0,
                    identity=identity,
                    url=url,
                    title=title,
                    text=text,
                    html=html or "",
                    author=author,
                    published=from_db_time(published),
                    first_seen=first_seen,
                    event_id=event_id,
                    join_level=JoinLevel(join_level or JoinLevel.FOUNDER),
                    similarity=similarity,
                    matched_entry_id=matched_entry_id,
                    match_rule=match_rule,
                    probability=probability,
                    reasons=_reasons(reasons),
                    hidden_by=hidden_by,
                )
            )
        return result


def _reasons(text: str | None) -> Reasons:
    """Deciding features as stored (a JSON list of [name, part]); () when none or unreadable."""
    if not text:
        return ()
    try:
        return tuple((str(name), float(part)) for name, part in json.loads(text))
    except (ValueError, TypeError):
        return ()


def _required_time(text: str) -> datetime:
    when = from_db_time(text)
    assert when is not None
    return when


def _event_view(
    row: dict[str, Any], members: list[StoredEntry], story: Sequence[StoryEvent] = ()
) -> EventView | None:
    """An EventView from an events row and its members; None while it has no canonical."""
    canonical = next((m for m in members if m.id == row["canonical_entry_id"]), None)
    first_seen = from_db_time(row["first_seen"])
    last_seen = from_db_time(row["last_seen"])
    if canonical is None or first_seen is None or last_seen is None:
        return None
    return EventView(
        id=int(row["id"]),
        canonical=canonical,
        others=tuple(m for m in members if m.id != canonical.id),
        first_seen=first_seen,
        last_seen=last_seen,
        canonical_reason=row["canonical_reason"] or "",
        read=row["read_at"] is not None,
        starred=row["starred_at"] is not None,
        story_id=int(row["story_id"] if row.get("story_id") is not None else row["id"]),
        story=tuple(event for event in story if event.id != int(row["id"])),
    )


# Migration n brings the schema from version n-1 to n. Append, never edit a released one.
MIGRATIONS: list[Callable[[Store], None]] = [
    Store._schema_v1,
    Store._schema_digest,
    Store._schema_retention,
    Store._schema_feed_moves,
    Store._schema_events,
    Store._schema_term_vectors,
    Store._schema_distinctive,
    Store._schema_reading,
    Store._schema_stories,
    Store._schema_reasons,
    Store._schema_filters,
]
SCHEMA_VERSION = len(MIGRATIONS)
