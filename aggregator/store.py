"""The only module that touches SQLite. Returns models, never raw rows.

Durability rules (measured in reliability-anchors.md section 5):
- WAL with `synchronous=NORMAL` and a busy timeout, so readers (`aggregator digest`) work
  while the daemon writes, and a kill -9 loses nothing committed;
- one transaction per feed update, through sqlite-utils' `db.atomic()` (savepoints when
  nested; Python's nested `with conn:` would commit early);
- writes are idempotent on (feed, identity), so a re-run after a crash adds nothing twice.

Times are stored as ISO 8601 text in UTC with microseconds, so text order is time order.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from aggregator.dedup.index import Fingerprint
from aggregator.dedup.signature import MinHashParams, Signatures, signature_from_bytes
from aggregator.errors import StoreError
from aggregator.models import (
    Entry,
    EventView,
    FeedSpec,
    FeedState,
    JoinLevel,
    StoredEntry,
)

BUSY_TIMEOUT_MS = 5_000


def to_db_time(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetimes are not stored: every time is UTC")
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def from_db_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


@dataclass(frozen=True, slots=True)
class ExistingEntry:
    """The parts of a stored entry that an update compares against."""

    id: int
    event_id: int | None
    content_key: str


def _last_pk(table: sqlite_utils.db.Table) -> int:
    if table.last_pk is None:
        raise StoreError("insert returned no row id")
    return int(table.last_pk)


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
            raise StoreError(f"cannot open database {path}: {exc}") from exc
        except OSError as exc:
            raise StoreError(f"cannot create database {path}: {exc.strerror}") from exc
        return store

    def close(self) -> None:
        self.db.close()

    def transaction(self) -> AbstractContextManager[sqlite_utils.Database]:
        """One atomic unit of work (a savepoint when nested)."""
        return self.db.atomic()

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

    def feed_cache_headers(self, feed_id: int) -> tuple[str | None, str | None]:
        row = self.db.table("feeds").get(feed_id)
        return row["etag"], row["last_modified"]

    def due_feed_ids(self, now: datetime) -> set[int]:
        rows = self.db.query(
            "select id from feeds where enabled = 1 and (next_due is null or next_due <= ?)",
            [to_db_time(now)],
        )
        return {int(row["id"]) for row in rows}

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
            )
            for row in rows
        ]

    # -- entries -------------------------------------------------------------------------

    def existing_entry(self, feed_id: int, identity: str) -> ExistingEntry | None:
        rows = list(
            self.db.query(
                "select id, event_id, content_key from entries where feed_id = ? and identity = ?",
                [feed_id, identity],
            )
        )
        if not rows:
            return None
        row = rows[0]
        return ExistingEntry(id=row["id"], event_id=row["event_id"], content_key=row["content_key"])

    def exact_duplicate(self, entry: Entry, *, by_content: bool) -> tuple[int, int] | None:
        """(entry id, event id) of a stored entry with the same canonical URL or (when
        `by_content`) the same normalised title and text, oldest first."""
        rows = list(
            self.db.query(
                """
                select id, event_id from entries
                where event_id is not null
                  and ((? is not null and canonical_url = ?) or (? and content_key = ?))
                order by id limit 1
                """,
                [entry.canonical_url, entry.canonical_url, int(by_content), entry.content_key],
            )
        )
        return (rows[0]["id"], rows[0]["event_id"]) if rows else None

    def insert_entry(
        self, feed_id: int, entry: Entry, signatures: Signatures, *, now: datetime,
        event_id: int, level: JoinLevel, similarity: float | None = None,
        matched_entry_id: int | None = None, match_rule: str | None = None,
    ) -> int:  # fmt: skip
        table = self.db.table("entries").insert(
            {
                **self._entry_values(entry, signatures),
                "feed_id": feed_id, "identity": entry.identity,
                "first_seen": to_db_time(now), "last_seen": to_db_time(now),
                "event_id": event_id, "join_level": str(level), "similarity": similarity,
                "matched_entry_id": matched_entry_id, "match_rule": match_rule,
            }
        )  # fmt: skip
        return _last_pk(table)

    def update_entry_content(
        self, entry_id: int, entry: Entry, signatures: Signatures, *, now: datetime
    ) -> None:
        """The publisher changed the item: update it in place, keep its event."""
        self.db.table("entries").update(
            entry_id, {**self._entry_values(entry, signatures), "last_seen": to_db_time(now)}
        )

    @staticmethod
    def _entry_values(entry: Entry, signatures: Signatures) -> dict[str, Any]:
        return {
            "guid": entry.guid, "url": entry.url, "canonical_url": entry.canonical_url,
            "title": entry.title, "text": entry.text, "html": entry.html,
            "author": entry.author, "published": to_db_time(entry.published),
            "updated": to_db_time(entry.updated), "content_key": entry.content_key,
            "title_sig": signatures.title_bytes(), "body_sig": signatures.body_bytes(),
            "title_words": signatures.title_words,
            "body_shingles": signatures.body_shingles,
            "headline_only": int(signatures.headline_only),
        }  # fmt: skip

    def fingerprints_since(self, cutoff: datetime) -> Iterator[Fingerprint]:
        """Signatures of the entries first seen at or after `cutoff` (the dedup window)."""
        rows = self.db.query(
            """
            select id, feed_id, event_id, first_seen, published, title_sig, body_sig,
                   title_words, body_shingles, headline_only
            from entries where first_seen >= ? and event_id is not null order by id
            """,
            [to_db_time(cutoff)],
        )
        for row in rows:
            first_seen = from_db_time(row["first_seen"])
            assert first_seen is not None
            yield Fingerprint(
                entry_id=row["id"],
                feed_id=row["feed_id"],
                event_id=row["event_id"],
                first_seen=first_seen,
                published=from_db_time(row["published"]),
                signatures=Signatures(
                    title=signature_from_bytes(row["title_sig"]),
                    body=signature_from_bytes(row["body_sig"]),
                    title_words=row["title_words"],
                    body_shingles=row["body_shingles"],
                    headline_only=bool(row["headline_only"]),
                ),
            )

    # -- events --------------------------------------------------------------------------

    def create_event(self, now: datetime) -> int:
        table = self.db.table("events").insert(
            {"first_seen": to_db_time(now), "last_seen": to_db_time(now), "member_count": 0,
             "source_count": 0, "updated": to_db_time(now)}
        )  # fmt: skip
        return _last_pk(table)

    def event_sizes(self, event_ids: Iterable[int]) -> dict[int, int]:
        ids = sorted(set(event_ids))
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self.db.query(f"select id, member_count from events where id in ({marks})", ids)
        return {int(row["id"]): int(row["member_count"] or 0) for row in rows}

    def event_members(self, event_id: int) -> list[StoredEntry]:
        return self._stored_entries("where entries.event_id = ? order by entries.id", [event_id])

    def set_event_summary(
        self, event_id: int, *, canonical_entry_id: int, reason: str, now: datetime
    ) -> None:
        """Store the canonical choice and recount members, sources and times."""
        self.db.execute(
            """
            update events set
                canonical_entry_id = :canonical, canonical_reason = :reason, updated = :now,
                member_count = (select count(*) from entries where event_id = :id),
                source_count = (select count(distinct feed_id) from entries
                                where event_id = :id),
                first_seen = (select min(first_seen) from entries where event_id = :id),
                last_seen = (select max(first_seen) from entries where event_id = :id)
            where id = :id
            """,
            {"canonical": canonical_entry_id, "reason": reason, "now": to_db_time(now),
             "id": event_id},
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
        rows = list(self.db.query("select * from events where id = ?", [event_id]))
        if not rows:
            return None
        row = rows[0]
        members = self.event_members(event_id)
        canonical = next((m for m in members if m.id == row["canonical_entry_id"]), None)
        if canonical is None:
            return None
        first_seen = from_db_time(row["first_seen"])
        last_seen = from_db_time(row["last_seen"])
        assert first_seen is not None and last_seen is not None
        return EventView(
            id=event_id,
            canonical=canonical,
            others=tuple(m for m in members if m.id != canonical.id),
            first_seen=first_seen,
            last_seen=last_seen,
            canonical_reason=row["canonical_reason"] or "",
        )

    def counts(self) -> dict[str, int]:
        return {
            name: int(self.db.execute(f"select count(*) from {name}").fetchone()[0])
            for name in ("feeds", "entries", "events")
        }

    def _stored_entries(self, where: str, params: Sequence[Any]) -> list[StoredEntry]:
        rows = self.db.query(
            f"""
            select entries.*, feeds.name as feed_name, feeds.grp as feed_group,
                   feeds.priority as feed_priority
            from entries join feeds on feeds.id = entries.feed_id
            {where}
            """,
            params,
        )
        result = []
        for row in rows:
            first_seen = from_db_time(row["first_seen"])
            assert first_seen is not None
            result.append(
                StoredEntry(
                    id=row["id"],
                    feed_id=row["feed_id"],
                    feed_name=row["feed_name"],
                    feed_group=row["feed_group"],
                    feed_priority=row["feed_priority"] or 0,
                    identity=row["identity"],
                    url=row["url"],
                    title=row["title"],
                    text=row["text"],
                    html=row["html"] or "",
                    author=row["author"],
                    published=from_db_time(row["published"]),
                    first_seen=first_seen,
                    event_id=row["event_id"],
                    join_level=JoinLevel(row["join_level"] or JoinLevel.FOUNDER),
                    similarity=row["similarity"],
                )
            )
        return result


# Migration n brings the schema from version n-1 to n. Append, never edit a released one.
MIGRATIONS: list[Callable[[Store], None]] = [
    Store._schema_v1,
]
SCHEMA_VERSION = len(MIGRATIONS)
