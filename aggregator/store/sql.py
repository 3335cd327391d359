"""The store's reads and writes in SQL both engines run: the one implementation of the
store protocols (`store.protocols`), over a connection a backend provides.

A backend (`store.sqlite`, `store.postgresql`) opens the connection, owns the schema and
its migrations, maps its driver's errors to StoreError, and supplies the few pieces that
differ by dialect: the full-text search condition, how an event id is drawn, the
maintenance statements. Statements are written with `?` and `:name` parameters;
the PostgreSQL backend rewrites them for psycopg.

Writes are idempotent on (feed, identity), so a re-run after a crash adds nothing twice;
one transaction per feed update (`transaction()`; a savepoint when nested).
"""

from __future__ import annotations

import functools
import json
import secrets
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import Any, ClassVar, Concatenate, ParamSpec, Protocol, TypeVar

import numpy as np

from aggregator.dedup.index import FingerprintColumns
from aggregator.dedup.signature import MinHashParams, Signatures
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
from aggregator.store.records import (
    ExistingEntry,
    FeedFetchState,
    Heartbeat,
    Lease,
    PruneResult,
    StagedUpdate,
    event_view,
    from_db_time,
    int_set,
    int_text,
    microseconds_column,
    required_time,
    signature_matrix,
    stored_reasons,
    to_db_time,
)

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
# The columns an entry's insert and a content update write (the SQL text never changes,
# so each engine prepares it once).
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
# StoredEntry.effective_time). Both backends index the same expression.
EFFECTIVE_TIME = "coalesce(published, first_seen)"

Params = Sequence[Any] | Mapping[str, Any]


class Cursor(Protocol):
    """What both drivers' cursors offer and the store uses."""

    @property
    def rowcount(self) -> int: ...
    @property
    def description(self) -> Any: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    def fetchmany(self, size: int) -> list[Any]: ...
    def __iter__(self) -> Iterator[Any]: ...


_P = ParamSpec("_P")
_R = TypeVar("_R")
_S = TypeVar("_S", bound="SqlStore")


def translating(
    method: Callable[Concatenate[_S, _P], _R],
) -> Callable[Concatenate[_S, _P], _R]:
    """Store methods that write outside `transaction()` raise StoreError, not the driver's
    errors (the backend says which driver errors are about the database)."""

    @functools.wraps(method)
    def wrapper(self: _S, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return method(self, *args, **kwargs)
        except self.DRIVER_ERRORS as exc:
            error = self._store_error(exc)
            if error is None:
                raise
            raise error from exc

    return wrapper


class SqlStore(ABC):
    """Feeds, entries and events in a SQL database; a backend subclass connects."""

    # The driver's exception classes (translated by `_store_error`).
    DRIVER_ERRORS: ClassVar[tuple[type[Exception], ...]] = ()
    # `max` of two values in one row: SQLite's scalar max, PostgreSQL's greatest.
    GREATEST: ClassVar[str] = "max"
    # A condition true when the entry's title holds a digit.
    TITLE_HAS_DIGIT: ClassVar[str] = "title glob '*[0-9]*'"

    # -- what a backend provides ---------------------------------------------------------

    @property
    @abstractmethod
    def location(self) -> str:
        """Where the database is, for messages (never with a password)."""

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def transaction(self) -> AbstractContextManager[None]:
        """One atomic unit of work (a savepoint when nested). A database that cannot take
        the write raises StoreError, after the rollback. It hands out nothing: every read
        and write inside it goes through the store's methods."""

    @abstractmethod
    def _execute(self, sql: str, params: Params = ()) -> Cursor: ...

    @abstractmethod
    def _executemany(self, sql: str, rows: Iterable[Params]) -> None: ...

    @abstractmethod
    def _insert_returning_id(self, sql: str, params: Params) -> int:
        """Run an insert of one row and return its id."""

    @abstractmethod
    def _store_error(self, exc: Exception) -> StoreError | None:
        """A one-line StoreError for a driver error about the database (full, read-only,
        locked, unreachable); None for one about a statement (a bug: re-raised)."""

    @abstractmethod
    def create_event(self, now: datetime) -> int:
        """A new, empty event, unread, under an id no event has had before."""

    @abstractmethod
    def _serialise_claims(self) -> None:
        """Inside a claim's transaction, or a sync of the feeds list: make the claims and
        syncs of every process take turns."""

    # `for update skip locked` where the engine has it: rows another claim holds are left.
    SKIP_LOCKED: ClassVar[str] = ""

    @abstractmethod
    def last_event_id(self) -> int:
        """The highest event id ever given (0: none yet): ids above it are new."""

    @abstractmethod
    def set_last_event_id(self, value: int) -> None:
        """Give no event id at or below `value` from now on (a copied database's ids)."""

    @abstractmethod
    def _restart_ids(self) -> None:
        """After rows were inserted with their ids: new rows get ids above them."""

    @abstractmethod
    def _search_condition(self, words: str) -> tuple[str, dict[str, Any]] | None:
        """`events.id in (...)` for the events with a member matching every word of
        `words` in its title or text (accents and case ignored); None: no word."""

    @abstractmethod
    def optimize(self) -> str:
        """Refresh the statistics the engine's query planner uses; what was done, in the
        engine's own words (the maintenance log line)."""

    @abstractmethod
    def checkpoint(self) -> str:
        """Move the engine's journal into the main files where the engine leaves that to
        its client; what was done, in the engine's own words (the maintenance log line)."""

    @abstractmethod
    def check_writable(self) -> None:
        """Raise StoreError unless this process can write the database now; writes nothing."""

    # -- small helpers over the connection --------------------------------------------------

    def _dicts(self, sql: str, params: Params = ()) -> list[dict[str, Any]]:
        cursor = self._execute(sql, params)
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def _row(self, table: str, row_id: int) -> dict[str, Any]:
        rows = self._dicts(f"select * from {table} where id = ?", [row_id])
        if not rows:
            raise StoreError(f"no row {row_id} in {table}")
        return rows[0]

    def _update(self, table: str, row_id: int, values: Mapping[str, Any]) -> None:
        assignments = ", ".join(f"{name} = :{name}" for name in values)
        self._execute(
            f"update {table} set {assignments} where id = :row_id", {**values, "row_id": row_id}
        )

    def _insert(self, table: str, values: Mapping[str, Any]) -> int:
        names = list(values)
        return self._insert_returning_id(
            f"insert into {table} ({', '.join(names)})"
            f" values ({', '.join(':' + name for name in names)})",
            values,
        )

    """A SQLite database of feeds, entries and events."""

    # -- reads of the evaluation (aggregator/evaluation) -----------------------------------

    def placed_entries(self) -> Iterator[PlacedEntry]:
        """Every entry with its feed, event and story, in arrival order."""
        cursor = self._execute(
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
        rows = self._execute("select identity, event_id from entries")
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
        cursor = self._execute(
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
        self._executemany(
            "update entries set hidden_by = ? where id = ?",
            [(label, entry_id) for entry_id, label in changes],
        )

    # -- meta ----------------------------------------------------------------------------

    def _meta(self, key: str) -> str | None:
        rows = list(self._dicts("select value from meta where key = ?", [key]))
        return str(rows[0]["value"]) if rows else None

    def _set_meta(self, key: str, value: str) -> None:
        self._execute(
            "insert into meta (key, value) values (?, ?)"
            " on conflict (key) do update set value = excluded.value",
            [key, value],
        )

    def check_dedup_params(self, params: MinHashParams) -> None:
        """Record the MinHash parameters, or refuse signatures made with other ones."""
        stored = self._meta("minhash_params")
        if stored is None:
            with self.transaction():
                self._set_meta("minhash_params", params.to_json())
        elif MinHashParams.from_json(stored) != params:
            raise StoreError(
                f"database {self.location} holds signatures made with other MinHash parameters "
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
                forgotten = self._execute(
                    "update entries set event_terms = null, event_weights = null"
                    " where event_terms is not null"
                ).rowcount
            self._set_meta("event_terms_recipe", recipe)
        return forgotten

    # -- feeds ---------------------------------------------------------------------------

    def sync_feeds(self, specs: Sequence[FeedSpec], now: datetime) -> dict[str, int]:
        """Make the feeds table match the config; returns location -> feed id.

        Feeds removed from the config are disabled, never deleted: their entries stay.
        Processes starting together on one database take turns (a second one would
        otherwise insert the feeds the first has just inserted, and fail on their key).
        """
        ids: dict[str, int] = {}
        with self.transaction():
            self._serialise_claims()
            known = {row["location"]: row for row in self._dicts("select * from feeds")}
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
                    ids[spec.location] = self._insert(
                        "feeds",
                        {**values, "location": spec.location, "created": to_db_time(now),
                         "next_due": to_db_time(now), "status": "new", "failures": 0},
                    )  # fmt: skip
                else:
                    self._update("feeds", row["id"], values)
                    ids[spec.location] = int(row["id"])
            for row in known.values():
                if row["enabled"]:
                    self._update("feeds", row["id"], {"enabled": 0})
        return ids

    def due_feed_ids(self, now: datetime) -> set[int]:
        rows = self._dicts(
            "select id from feeds where enabled = 1 and retired is null"
            " and (next_due is null or next_due <= ?)",
            [to_db_time(now)],
        )
        return {int(row["id"]) for row in rows}

    @translating
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
        self._update("feeds", feed_id, values)

    @translating
    def record_feed_failure(
        self, feed_id: int, *, now: datetime, next_due: datetime, error: str
    ) -> int:
        """Store the reason and count the failure; returns the consecutive failure count."""
        row = self._row("feeds", feed_id)
        failures = int(row["failures"] or 0) + 1
        self._update("feeds",
            feed_id,
            {"last_fetch": to_db_time(now), "status": "error", "error": error,
             "failures": failures, "next_due": to_db_time(next_due)},
        )  # fmt: skip
        return failures

    def feed_failures(self, feed_id: int) -> int:
        return int(self._row("feeds", feed_id)["failures"] or 0)

    def feed_fetch_state(self, feed_id: int) -> FeedFetchState:
        """What the next fetch of a feed needs: validators, where it moved, whether retired."""
        row = self._row("feeds", feed_id)
        return FeedFetchState(
            etag=row["etag"], last_modified=row["last_modified"],
            effective_url=row["effective_url"], retired=row["retired"],
            ttl_minutes=row["ttl_minutes"], skip_hours=int_set(row["skip_hours"]),
            skip_days=int_set(row["skip_days"]),
        )  # fmt: skip

    @translating
    def set_schedule_hints(
        self, feed_id: int, *, ttl_minutes: int | None, skip_hours: Iterable[int],
        skip_days: Iterable[int],
    ) -> None:  # fmt: skip
        """Remember the publisher's <ttl>, <skipHours> and <skipDays> for later 304s."""
        self._update("feeds",
            feed_id,
            {"ttl_minutes": ttl_minutes, "skip_hours": int_text(skip_hours),
             "skip_days": int_text(skip_days)},
        )  # fmt: skip

    @translating
    def note_permanent_redirect(
        self, feed_id: int, target: str | None, *, confirmations: int
    ) -> str | None:
        """Count a fetch's permanent-redirect target (None: the fetch had none). When the
        same target was seen on `confirmations` consecutive fetches, it becomes the feed's
        effective URL, which is returned; otherwise returns None."""
        row = self._row("feeds", feed_id)
        if target is None or target == row["effective_url"]:
            values: dict[str, Any] = {"redirect_target": None, "redirect_streak": 0}
            self._update("feeds", feed_id, values)
            return None
        streak = int(row["redirect_streak"] or 0) + 1 if row["redirect_target"] == target else 1
        if streak >= confirmations:
            self._update(
                "feeds",
                feed_id,
                {"effective_url": target, "redirect_target": None, "redirect_streak": 0},
            )
            return target
        self._update("feeds", feed_id, {"redirect_target": target, "redirect_streak": streak})
        return None

    @translating
    def retire_feed(self, feed_id: int, *, now: datetime, reason: str) -> None:
        """Stop fetching a feed for good (its entries stay): `reason` is shown with it."""
        self._update("feeds",
            feed_id,
            {"retired": reason, "retired_at": to_db_time(now), "last_fetch": to_db_time(now),
             "status": "error", "error": reason, "next_due": None},
        )  # fmt: skip

    @translating
    def hold_feeds(self, feed_ids: Iterable[int], until: datetime) -> None:
        """No feed of `feed_ids` is due before `until` (a host asked us to slow down)."""
        ids = sorted(set(feed_ids))
        if not ids:
            return
        marks = ",".join("?" * len(ids))
        self._execute(
            f"update feeds set next_due = ? where id in ({marks})"
            " and (next_due is null or next_due < ?)",
            [to_db_time(until), *ids, to_db_time(until)],
        )

    def feed_states(self) -> list[FeedState]:
        rows = self._dicts(
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
    # with positional rows, not a dict per row. The statements and values are those
    # sqlite-utils wrote (tests/integration/test_store_fast_paths.py).

    def existing_entry(self, feed_id: int, identity: str) -> ExistingEntry | None:
        row = self._execute(
            "select id, event_id, content_key from entries where feed_id = ? and identity = ?",
            [feed_id, identity],
        ).fetchone()
        if row is None:
            return None
        return ExistingEntry(id=row[0], event_id=row[1], content_key=row[2])

    def stored_versions(self, feed_id: int, limit: int) -> dict[str, str]:
        """identity -> content key of the feed's `limit` newest stored entries."""
        rows = self._execute(
            "select identity, content_key from entries where feed_id = ? order by id desc limit ?",
            [feed_id, limit],
        )
        return dict(rows.fetchall())

    def exact_duplicate(self, entry: Entry) -> tuple[int, int] | None:
        """(entry id, event id) of a stored entry with the same canonical URL or (when the
        content is distinctive) the same normalised title and text, oldest first."""
        keys, params = [], []
        if entry.canonical_url is not None:
            keys.append("canonical_url = ?")
            params.append(entry.canonical_url)
        if entry.distinctive:
            keys.append("content_key = ?")
            params.append(entry.content_key)
        if not keys:
            return None
        row = self._execute(
            "select id, event_id from entries where event_id is not null"
            f" and ({' or '.join(keys)}) order by id limit 1",
            params,
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
        return self._insert_returning_id(_INSERT_ENTRY_SQL, values)

    def update_entry_content(
        self, entry_id: int, entry: Entry, signatures: Signatures, *, now: datetime,
        vector: Mapping[str, float] | None = None, hidden_by: str | None = None,
    ) -> None:  # fmt: skip
        """The publisher changed the item: update it in place, keep its event."""
        values = {
            **self._entry_values(entry, signatures, vector, hidden_by),
            "last_seen": to_db_time(now),
        }
        cursor = self._execute(_UPDATE_ENTRY_SQL, {**values, "id": entry_id})
        if cursor.rowcount != 1:
            raise StoreError(f"no entry {entry_id}")

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
        cursor = self._execute(_FINGERPRINTS_SQL, [to_db_time(cutoff)])
        parts: list[FingerprintColumns] = []
        while rows := cursor.fetchmany(_FETCH_ROWS):
            (ids, feeds, events, first_seen, published, titles, bodies, title_words,
             body_shingles, headline_only) = zip(*rows, strict=True)  # fmt: skip
            parts.append(
                FingerprintColumns(
                    entry_ids=np.array(ids, dtype=np.int64),
                    feed_ids=np.array(feeds, dtype=np.int64),
                    event_ids=np.array(events, dtype=np.int64),
                    first_seen=microseconds_column(first_seen),
                    published=microseconds_column(published),
                    title=signature_matrix(titles, num_perm),
                    body=signature_matrix(bodies, num_perm),
                    title_words=np.array(title_words, dtype=np.int64),
                    body_shingles=np.array(body_shingles, dtype=np.int64),
                    headline_only=np.array(headline_only, dtype=np.bool_),
                )
            )
        if not parts:
            return FingerprintColumns.from_fingerprints([], num_perm)
        return parts[0] if len(parts) == 1 else FingerprintColumns.concatenate(parts)

    # -- events --------------------------------------------------------------------------

    def event_sizes(self, event_ids: Iterable[int]) -> dict[int, int]:
        ids = sorted(set(event_ids))
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self._execute(f"select id, member_count from events where id in ({marks})", ids)
        return {int(event_id): int(count or 0) for event_id, count in rows}

    def event_members(self, event_id: int) -> list[StoredEntry]:
        return self._stored_entries("where entries.event_id = ? order by entries.id", [event_id])

    def member_facts(self, event_id: int) -> list[MemberFacts]:
        """What the canonical choice needs of each member of an event, by arrival.

        SQLite's `length` of a text counts characters up to the first NUL, the same as
        Python's `len` here: normalisation removes control characters from every text."""
        rows = self._execute(
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
        cursor = self._execute(
            f"""
            select id, event_id, headline_only, first_seen, published, {terms}, {weights},
                   case when {terms} is null or {self.TITLE_HAS_DIGIT} then title end,
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
        rows = list(self._dicts("select event_id from entries where id = ?", [entry_id]))
        if not rows:
            raise StoreError(f"no entry {entry_id}")
        return None if rows[0]["event_id"] is None else int(rows[0]["event_id"])

    def delete_event(self, event_id: int) -> None:
        """Delete an event that has no members left."""
        self._execute(
            "delete from events where id = ? and not exists "
            "(select 1 from entries where event_id = ?)",
            [event_id, event_id],
        )

    def event_exists(self, event_id: int) -> bool:
        return bool(list(self._dicts("select 1 from events where id = ?", [event_id])))

    def merge_events(
        self, keep: int, gone: int, *, similarity: float | None, reason: str, now: datetime
    ) -> list[int]:
        """Move every entry of event `gone` into `keep`, record why, delete `gone`.

        Returns the ids of the entries moved. Separations of `gone` carry over to `keep`.
        """
        moved = [
            int(row["id"])
            for row in self._dicts("select id from entries where event_id = ?", [gone])
        ]
        self._execute("update entries set event_id = ? where event_id = ?", [keep, gone])
        # Read if either was read (its story has been seen); starred if either was.
        self._execute(
            "update events set"
            " read_at = coalesce(read_at, (select read_at from events where id = :gone)),"
            " starred_at = coalesce(starred_at, (select starred_at from events where id = :gone))"
            " where id = :keep",
            {"keep": keep, "gone": gone},
        )
        self._join_stories(keep, gone)
        self._execute("update story_links set event_id = ? where event_id = ?", [keep, gone])
        self._execute(
            "update story_links set linked_event_id = ? where linked_event_id = ?", [keep, gone]
        )
        # A link between the two events merged is now inside one event: no longer a reason.
        self._execute(
            "delete from story_links where event_id = ? and linked_event_id = ?", [keep, keep]
        )
        self._insert("event_merges",
            {"kept_event_id": keep, "absorbed_event_id": gone, "similarity": similarity,
             "reason": reason, "entries": len(moved), "at": to_db_time(now)}
        )  # fmt: skip
        for event_id, other in self._execute(
            "select event_id, other_event_id from event_separations "
            "where event_id = ? or other_event_id = ?",
            [gone, gone],
        ).fetchall():
            left = keep if event_id == gone else event_id
            right = keep if other == gone else other
            if left != right:
                self.separate_events(left, right, now=now)
        self._execute(
            "delete from event_separations where event_id = ? or other_event_id = ?", [gone, gone]
        )
        self._execute("delete from events where id = ?", [gone])
        return moved

    def move_entry_to_new_event(self, entry_id: int, *, now: datetime) -> int:
        """Split: the entry leaves its event for a new event of its own (a manual act),
        which starts with the old event's read and starred state, in its story."""
        event_id = self.create_event(now)
        self._execute(
            "update events set (read_at, starred_at, story_id) = (select e.read_at,"
            " e.starred_at, e.story_id"
            " from events e join entries on entries.event_id = e.id where entries.id = ?)"
            " where id = ?",
            [entry_id, event_id],
        )
        self._execute(
            "update entries set event_id = ?, join_level = ?, similarity = null, "
            "matched_entry_id = null, match_rule = 'split by hand' where id = ?",
            [event_id, str(JoinLevel.MANUAL), entry_id],
        )
        self._execute("delete from join_reasons where entry_id = ?", [entry_id])
        return event_id

    def link_stories(
        self, event_id: int, linked_event_id: int, *, similarity: float,
        probability: float | None, now: datetime, reasons: Reasons = (),
    ) -> int:  # fmt: skip
        """Put the stories of two events together (an event found related to another, not
        the same happening), record why, and return the story id they now share."""
        story = self._join_stories(event_id, linked_event_id)
        self._insert("story_links",
            {"event_id": event_id, "linked_event_id": linked_event_id,
             "similarity": similarity, "probability": probability, "at": to_db_time(now),
             "reasons": json.dumps(list(reasons)) if reasons else None}
        )  # fmt: skip
        return story

    def record_join_reasons(self, entry_id: int, probability: float, reasons: Reasons) -> None:
        """Why a write-up joined its event: the model's probability and deciding features."""
        self._execute(
            "insert into join_reasons (entry_id, probability, reasons) values (?, ?, ?)"
            " on conflict (entry_id) do update set probability = excluded.probability,"
            " reasons = excluded.reasons",
            [entry_id, probability, json.dumps(list(reasons))],
        )

    def _join_stories(self, event_id: int, other_event_id: int) -> int:
        """One story for both events' stories: the older story's id (the smaller)."""
        rows = self._execute(
            "select id, story_id from events where id in (?, ?)", [event_id, other_event_id]
        ).fetchall()
        stories = {int(story if story is not None else eid) for eid, story in rows}
        if not stories:
            raise StoreError(f"no event {event_id} or {other_event_id}")
        kept = min(stories)
        if len(stories) > 1:
            marks = ",".join("?" * len(stories))
            self._execute(
                f"update events set story_id = ? where story_id in ({marks})",
                [kept, *sorted(stories)],
            )
        return kept

    def story_event_ids(self, event_id: int) -> set[int]:
        """The events of this event's story, itself included."""
        rows = self._execute(
            "select id from events where story_id = (select story_id from events where id = ?)",
            [event_id],
        ).fetchall()
        return {int(row[0]) for row in rows} | {event_id}

    def story_links_of(self, event_id: int) -> list[StoryLink]:
        """Why this event is in its story: the links it takes part in, oldest first."""
        rows = self._execute(
            "select event_id, linked_event_id, similarity, probability, at, reasons"
            " from story_links where event_id = ? or linked_event_id = ? order by id",
            [event_id, event_id],
        ).fetchall()
        return [
            StoryLink(int(a), int(b), similarity, probability, required_time(at),
                      stored_reasons(reasons))
            for a, b, similarity, probability, at, reasons in rows
        ]  # fmt: skip

    def separate_events(self, event_id: int, other_event_id: int, *, now: datetime) -> None:
        low, high = sorted((event_id, other_event_id))
        self._execute(
            "insert into event_separations (event_id, other_event_id, at) values (?, ?, ?)"
            " on conflict (event_id, other_event_id) do update set at = excluded.at",
            [low, high, to_db_time(now)],
        )

    def separated_from(self, event_id: int) -> set[int]:
        rows = self._execute(
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
            row = self._execute(
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
                changed += self._execute(sql, params).rowcount
        return changed

    def count_events(self, query: EventQuery) -> int:
        """How many events `query` matches (the unread count of a page, for one)."""
        where = self._event_filter(query)
        if where is None:
            return 0
        conditions, params = where
        try:
            (count,) = self._execute(
                f"select count(*) from events where {conditions}", params
            ).fetchone()
        except self.DRIVER_ERRORS as exc:
            raise StoreError(f"cannot read events from {self.location}: {exc}") from exc
        return int(count)

    def event_merge_history(self, event_id: int) -> list[dict[str, Any]]:
        return list(
            self._dicts(
                "select absorbed_event_id, similarity, reason, entries, at from event_merges "
                "where kept_event_id = ? order by id",
                [event_id],
            )
        )

    def matched_entries(self, event_id: int) -> dict[int, tuple[int | None, str | None]]:
        """entry id -> (entry it matched, rule) for the members of an event."""
        rows = self._dicts(
            "select id, matched_entry_id, match_rule from entries where event_id = ?", [event_id]
        )
        return {int(r["id"]): (r["matched_entry_id"], r["match_rule"]) for r in rows}

    def feed_overlap(self) -> list[tuple[str, int, int]]:
        """(feed name, entries, entries whose event also holds another feed's entry)."""
        rows = self._dicts(
            """
            select name, total, shared from (
                select feeds.name as name, count(entries.id) as total,
                       sum(case when exists (
                           select 1 from entries other
                           where other.event_id = entries.event_id
                             and other.feed_id != entries.feed_id) then 1 else 0 end) as shared
                from feeds join entries on entries.feed_id = feeds.id
                group by feeds.id, feeds.name
            ) overlap order by shared * 1.0 / total desc, name
            """
        )
        return [(r["name"], int(r["total"]), int(r["shared"] or 0)) for r in rows]

    def all_entry_texts(self) -> Iterator[tuple[int, str, str]]:
        for row in self._dicts("select id, title, text from entries order by id"):
            yield int(row["id"]), row["title"], row["text"]

    def replace_signatures(self, entry_id: int, signatures: Signatures) -> None:
        self._update("entries",
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
        self._execute(
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
        ids = [int(row["id"]) for row in self._dicts(sql, params)]
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
            return [int(row["id"]) for row in self._dicts(sql, params)]
        except self.DRIVER_ERRORS as exc:
            raise StoreError(f"cannot read events from {self.location}: {exc}") from exc

    def _event_filter(self, query: EventQuery) -> tuple[str, dict[str, Any]] | None:
        """The WHERE clause and parameters of `query`; None when it can match nothing."""
        conditions = [_HAS_MEMBERS if query.hidden else _SHOWN]
        params: dict[str, Any] = {}
        if query.arrived_since is not None:
            conditions.append("events.last_seen >= :arrived_since")
            params["arrived_since"] = to_db_time(query.arrived_since)
        published: list[str] = []
        if query.published_from is not None:
            published.append(f"{EFFECTIVE_TIME} >= :published_from")
            params["published_from"] = to_db_time(query.published_from)
        if query.published_until is not None:
            published.append(f"{EFFECTIVE_TIME} < :published_until")
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
            search = self._search_condition(query.search)
            if search is None:
                return None
            conditions.append(search[0])
            params.update(search[1])
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
                for row in self._dicts(f"select * from events where id in ({marks})", batch)
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
                view = event_view(row, members.get(event_id, []), story)
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
            rows = self._execute(
                "select ev.story_id, ev.id, coalesce(en.published, en.first_seen) as at_time,"
                " en.title, en.url from events ev"
                " join entries en on en.id = ev.canonical_entry_id"
                f" where ev.story_id in ({marks}) order by at_time, ev.id",
                batch,
            ).fetchall()
            for story_id, event_id, when, title, url in rows:
                found.setdefault(int(story_id), []).append(
                    StoryEvent(int(event_id), str(title), url, required_time(when))
                )
        return found

    def group_names(self) -> list[str]:
        """The groups of the known feeds, by name."""
        rows = self._dicts("select distinct grp from feeds order by grp")
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
            rows = self._execute(sql, params).fetchall()
        except self.DRIVER_ERRORS as exc:
            raise StoreError(f"cannot read events from {self.location}: {exc}") from exc
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
        rows = self._execute(
            f"select {column}, count(distinct events.id), max(events.first_seen)"
            " from entries join events on events.id = entries.event_id"
            " join feeds on feeds.id = entries.feed_id"
            f" where events.read_at is null and {_SHOWN} group by {column}"
        ).fetchall()
        return [(key, (int(count), required_time(newest))) for key, count, newest in rows]

    def counts(self) -> dict[str, int]:
        return {
            name: int(self._execute(f"select count(*) from {name}").fetchone()[0])
            for name in ("feeds", "entries", "events")
        }

    # -- several processes: fetch leases and staged updates (`aggregator.roles`) -------

    def claim_feeds(
        self, owner: str, *, now: datetime, until: datetime, limit: int, per_host: int,
        host_of: Callable[[str], str | None],
    ) -> list[int]:  # fmt: skip
        """Lease up to `limit` due feeds to `owner` until `until`, never one leased to
        another owner whose lease is still running, and never more than `per_host` leased
        at once to one host (`host_of` a feed's URL) across every owner. Returns their ids,
        the longest overdue first."""
        when = to_db_time(now)
        with self.transaction():
            self._serialise_claims()
            active = self._execute(
                "select coalesce(effective_url, location) from feeds"
                " where lease_owner is not null and lease_until >= ?",
                [when],
            ).fetchall()
            busy: dict[str | None, int] = {}
            for (url,) in active:
                host = host_of(str(url))
                busy[host] = busy.get(host, 0) + 1
            candidates = self._execute(
                "select id, coalesce(effective_url, location) from feeds"
                " where enabled = 1 and retired is null and (next_due is null or next_due <= ?)"
                " and (lease_owner is null or lease_until < ?)"
                f" order by next_due, id limit ?{self.SKIP_LOCKED}",
                [when, when, limit * 4],
            ).fetchall()
            chosen: list[int] = []
            for feed_id, url in candidates:
                host = host_of(str(url))
                if len(chosen) == limit or (host is not None and busy.get(host, 0) >= per_host):
                    continue
                busy[host] = busy.get(host, 0) + 1
                chosen.append(int(feed_id))
            for start in range(0, len(chosen), _READ_BATCH):
                batch = chosen[start : start + _READ_BATCH]
                marks = ",".join("?" * len(batch))
                self._execute(
                    f"update feeds set lease_owner = ?, lease_until = ? where id in ({marks})",
                    [owner, to_db_time(until), *batch],
                )
        return chosen

    def release_leases(self, owner: str, feed_ids: Iterable[int]) -> None:
        ids = sorted(set(feed_ids))
        for start in range(0, len(ids), _READ_BATCH):
            batch = ids[start : start + _READ_BATCH]
            marks = ",".join("?" * len(batch))
            self._execute(
                "update feeds set lease_owner = null, lease_until = null"
                f" where lease_owner = ? and id in ({marks})",
                [owner, *batch],
            )

    def holds_lease(self, feed_id: int, owner: str, now: datetime) -> bool:
        row = self._execute(
            "select 1 from feeds where id = ? and lease_owner = ? and lease_until >= ?",
            [feed_id, owner, to_db_time(now)],
        ).fetchone()
        return row is not None

    def stage_update(self, feed_id: int, entries: bytes, *, now: datetime) -> int:
        """Stage a fetched feed's entries for the grouping leader; returns its id."""
        return self._insert(
            "staged_updates",
            {"feed_id": feed_id, "staged_at": to_db_time(now), "entries": entries},
        )

    def staged_updates(self, limit: int) -> list[StagedUpdate]:
        """The oldest staged updates, in the order they were staged."""
        rows = self._execute(
            "select id, feed_id, staged_at, entries from staged_updates order by id limit ?",
            [limit],
        ).fetchall()
        return [
            StagedUpdate(int(i), int(f), required_time(at), bytes(blob)) for i, f, at, blob in rows
        ]

    def delete_staged(self, staged_id: int) -> None:
        self._execute("delete from staged_updates where id = ?", [staged_id])

    def staged_count(self) -> int:
        return int(self._execute("select count(*) from staged_updates").fetchone()[0])

    def leases(self, now: datetime) -> list[Lease]:
        """The running leases, by owner and feed."""
        rows = self._execute(
            "select id, name, lease_owner, lease_until from feeds"
            " where lease_owner is not null and lease_until >= ? order by lease_owner, id",
            [to_db_time(now)],
        ).fetchall()
        return [Lease(int(i), str(n), str(o), required_time(u)) for i, n, o, u in rows]

    # -- operations: scheduling help, retention, maintenance, health (the daemon's) -----

    def failing_feed_ids(self) -> set[int]:
        """Feeds whose last fetch failed: the pipeline queues them after the others."""
        rows = self._dicts("select id from feeds where failures > 0")
        return {int(row["id"]) for row in rows}

    @translating
    def set_next_due(self, feed_id: int, when: datetime) -> None:
        self._update("feeds", feed_id, {"next_due": to_db_time(when)})

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
                    for row in self._execute(
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
                    for row in self._execute(f"select id from entries where {where}", params)
                ]
                tombstones += self._bury(where, params, now=now, until=until)
                self._execute(
                    f"delete from join_reasons where entry_id in"
                    f" (select id from entries where {where})",
                    params,
                )
                self._execute(f"delete from entries where {where}", params)
                if ids:
                    self._execute(f"delete from events where id in ({marks})", ids)
                    self._execute(
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
            expired = self._execute(
                "delete from tombstones where expires < ?", [to_db_time(now)]
            ).rowcount
        return PruneResult(
            events=events, entries=entries, tombstones=tombstones, expired=max(expired, 0),
            entry_ids=tuple(entry_ids),
        )  # fmt: skip

    def _bury(self, where: str, params: Sequence[Any], *, now: datetime, until: str | None) -> int:
        """Tombstones for the entries matching `where`: identity per feed, canonical URL,
        and the content key when the content is distinctive (as exact dedup uses it)."""
        cursor = self._execute(
            f"""
            insert into tombstones (feed_id, identity, canonical_url, content_key, pruned,
                                    expires)
            select feed_id, identity, canonical_url,
                   case when distinctive != 0 then content_key end, ?, ?
            from entries where {where}
            on conflict (feed_id, identity) do update set
                canonical_url = excluded.canonical_url, content_key = excluded.content_key,
                pruned = excluded.pruned,
                expires = {self.GREATEST}(tombstones.expires, excluded.expires)
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
        rows = self._execute(
            f"select id, expires from tombstones where {' or '.join(terms)} limit 1", params
        ).fetchall()
        if not rows:
            return False
        tombstone_id, expires = rows[0]
        # Extend at most once a day per tombstone: no write on every fetch of a feed.
        if expires < to_db_time(keep_until - TOMBSTONE_EXTEND_STEP):
            self._execute(
                "update tombstones set expires = ? where id = ?",
                [to_db_time(keep_until), tombstone_id],
            )
        return True

    def tombstone_count(self) -> int:
        return int(self._execute("select count(*) from tombstones").fetchone()[0])

    @translating
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

    @translating
    def record_maintenance(self, job: str, now: datetime) -> None:
        with self.transaction():
            self._set_meta(MAINTENANCE_KEY_PREFIX + job, to_db_time(now) or "")

    def maintenance_runs(self) -> dict[str, datetime]:
        """When each maintenance job last ran, by name."""
        rows = self._dicts(
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
        rows = self._execute(
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
                    reasons=stored_reasons(reasons),
                    hidden_by=hidden_by,
                )
            )
        return result
