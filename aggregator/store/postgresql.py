"""The PostgreSQL backend: one database shared by every process and host (psycopg 3).

- Each store holds one connection taken from a pool per database (`psycopg_pool`), so the
  web server's store per request costs no new connection; autocommit outside
  `transaction()`, which is a transaction (a savepoint when nested).
- A connection lost outside a transaction is replaced and the statement retried with
  backoff; inside one, the transaction fails with a StoreError and is retried whole by
  its caller (the next feed update, the next pass).
- Times are ISO text as in SQLite (`store.records`), so both engines order them alike;
  text columns that are sorted for display use the "C" collation, SQLite's binary order.
- Search is a stored `tsvector` of title and text with accents folded (`unaccent`), the
  'simple' configuration (no stemming, as FTS5's unicode61), every word required.
- Event ids come from a sequence: never given twice, even by a rolled-back transaction.

Statements are `SqlStore`'s, written with `?` and `:name`; `_psycopg_sql` rewrites them.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import psycopg.errors
from psycopg_pool import ConnectionPool, PoolTimeout

from aggregator.errors import StoreError
from aggregator.store.records import to_db_time
from aggregator.store.sql import EFFECTIVE_TIME, Cursor, Params, SqlStore, translating
from aggregator.store.sqlite import SCHEMA_VERSION

log = logging.getLogger(__name__)

# Seconds to wait for a connection (the server down, or every pooled one in use).
CONNECT_TIMEOUT_S = 10
# Connections per pool: the daemon needs one, the web server one per request at a time.
POOL_SIZE = 8
# A statement outside a transaction whose connection was lost is tried again this often,
# waiting 0.5 s, 1 s, 2 s ... in between.
RECONNECT_ATTEMPTS = 5
# The schema this backend creates in one step: PostgreSQL support began at version 11
# (the SQLite schema's history before it never existed here). Later versions append.
BASELINE_VERSION = 11
# A session idle inside a transaction this long is ended by the server (its locks freed).
IDLE_IN_TRANSACTION_MS = 15_000
# pg_advisory_xact_lock key held while the schema is created or migrated.
_SCHEMA_LOCK = 0x61676700
# pg_advisory_xact_lock key of a fetch worker's claim and of a sync of the feeds list:
# claims take turns, so per-host counts are exact across workers, and processes starting
# together insert the config's feeds once.
_CLAIM_LOCK = 0x61676702
_PLACEHOLDER = re.compile(r"'(?:[^']|'')*'|(?<![:\w])\?|(?<!:):([A-Za-z_]\w*)|%")


@functools.lru_cache(maxsize=1024)
def _psycopg_sql(sql: str) -> str:
    """`?` -> `%s`, `:name` -> `%(name)s`, `%` -> `%%`, string literals untouched (but
    for `%`, which psycopg reads everywhere)."""

    def replace(match: re.Match[str]) -> str:
        text = match.group(0)
        if text.startswith("'"):
            return text.replace("%", "%%")
        if text == "?":
            return "%s"
        if text == "%":
            return "%%"
        return f"%({match.group(1)})s"

    return _PLACEHOLDER.sub(replace, sql)


def _clean(value: Any) -> Any:
    """PostgreSQL text cannot hold NUL: a hostile feed's NUL becomes U+FFFD (SQLite keeps it;
    normalisation removes it from every text dedup reads)."""
    if isinstance(value, str) and "\x00" in value:
        return value.replace("\x00", "\ufffd")
    return value


def _params(params: Params) -> Params:
    if isinstance(params, Mapping):
        return {key: _clean(value) for key, value in params.items()}
    return [_clean(value) for value in params]


def display_url(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host += f":{parts.port}"
    user = f"{parts.username}@" if parts.username else ""
    return urlunsplit((parts.scheme, user + host, parts.path, parts.query, parts.fragment))


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


_pools: dict[tuple[str, str | None], ConnectionPool] = {}
_pools_lock = threading.Lock()


def _pool(url: str, password: str | None) -> ConnectionPool:
    """The process's pool for this database, opened on first use."""
    key = (url, password)
    with _pools_lock:
        pool = _pools.get(key)
        if pool is None:
            kwargs: dict[str, Any] = {
                "autocommit": True, "connect_timeout": CONNECT_TIMEOUT_S,
                # A process stopped inside a transaction (SIGSTOP, a hung host) must not
                # hold its row locks from the leader that replaces it.
                "options": f"-c idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION_MS}",
                "application_name": f"aggregator {os.getpid()} store",
            }  # fmt: skip
            if password is not None:
                kwargs["password"] = password
            pool = ConnectionPool(
                url, min_size=1, max_size=POOL_SIZE, kwargs=kwargs, open=False,
                timeout=CONNECT_TIMEOUT_S, check=ConnectionPool.check_connection,
                name="aggregator",
            )  # fmt: skip
            pool.open(wait=False)
            _pools[key] = pool
        return pool


def close_pools(url: str | None = None) -> None:
    """Close every pool of this process (at exit, and in tests between servers), or only
    those of the database at `url` (a test done with its database)."""
    with _pools_lock:
        for key in [key for key in _pools if url is None or key[0] == url]:
            _pools.pop(key).close()


def connect_error(url: str, exc: BaseException) -> StoreError:
    return StoreError(f"cannot connect to database {display_url(url)}: {_first_line(exc)}")


class PostgresStore(SqlStore):
    """A PostgreSQL database of feeds, entries and events."""

    DRIVER_ERRORS = (psycopg.Error,)
    SKIP_LOCKED = " for update skip locked"
    GREATEST = "greatest"
    TITLE_HAS_DIGIT = "title ~ '[0-9]'"

    def __init__(self, url: str, password: str | None, connection: psycopg.Connection[Any]):
        self.url = url
        self._password = password
        self._connection: psycopg.Connection[Any] | None = connection
        self._depth = 0  # transactions open on this store's connection
        # Called as each outermost transaction begins (`set_fence`).
        self._fence: Callable[[], None] | None = None

    @property
    def location(self) -> str:
        return display_url(self.url)

    # -- opening -------------------------------------------------------------------------

    @classmethod
    def open(cls, url: str, *, create: bool = True, password: str | None = None) -> PostgresStore:
        """Connect to the database at `url` and create or migrate its schema (`create`
        False: refuse a database the aggregator never wrote). StoreError, one line, when
        the server cannot be reached or the database cannot be used."""
        try:
            if (url, password) not in _pools:
                # A direct first connection: a refused or unknown server fails at once
                # with libpq's reason, where a new pool would retry until its timeout.
                psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT_S, password=password).close()
            connection = _pool(url, password).getconn()
        except (psycopg.Error, PoolTimeout) as exc:
            raise connect_error(url, exc) from exc
        store = cls(url, password, connection)
        try:
            store._migrate(create=create)
        except psycopg.Error as exc:
            store.close()
            raise StoreError(f"cannot use database {store.location}: {_first_line(exc)}") from exc
        except BaseException:
            store.close()
            raise
        return store

    def close(self) -> None:
        if self._connection is not None:
            _pool(self.url, self._password).putconn(self._connection)
            self._connection = None

    def _conn(self) -> psycopg.Connection[Any]:
        """This store's connection, replaced (outside a transaction) when it was lost."""
        if self._connection is not None and not self._connection.broken:
            return self._connection
        if self._depth:
            raise StoreError(f"lost the connection to database {self.location} mid-transaction")
        pool = _pool(self.url, self._password)
        if self._connection is not None:
            pool.putconn(self._connection)  # the pool discards a broken connection
            self._connection = None
        for attempt in range(RECONNECT_ATTEMPTS):
            try:
                self._connection = pool.getconn()
                return self._connection
            except PoolTimeout as exc:
                if attempt == RECONNECT_ATTEMPTS - 1:
                    raise connect_error(self.url, exc) from exc
                time.sleep(0.5 * 2**attempt)
        raise AssertionError("unreachable")

    def set_fence(self, check: Callable[[], None]) -> None:
        """Call `check` as every outermost transaction begins: the grouping leader's
        check that it still holds the writer lock, so a leader that lost it (stopped, or
        its session ended) raises there and writes nothing beside its successor."""
        self._fence = check

    @contextmanager
    def transaction(self) -> Iterator[None]:
        if self._fence is not None and not self._depth:
            self._fence()
        try:
            with self._conn().transaction():
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
        except psycopg.Error as exc:
            error = self._store_error(exc)
            if error is None:
                raise
            raise error from exc

    # -- the connection ------------------------------------------------------------------

    def _execute(self, sql: str, params: Params = ()) -> Cursor:
        statement = _psycopg_sql(sql)
        values = _params(params)
        for attempt in range(RECONNECT_ATTEMPTS):
            connection = self._conn()
            try:
                return connection.execute(statement, values)
            except psycopg.OperationalError as exc:
                if self._depth or not connection.broken or attempt == RECONNECT_ATTEMPTS - 1:
                    raise self._store_error(exc) or exc from exc
                log.warning("database %s: %s; reconnecting", self.location, _first_line(exc))
                time.sleep(0.5 * 2**attempt)
            except psycopg.Error as exc:
                raise self._store_error(exc) or exc from exc
        raise AssertionError("unreachable")

    def _executemany(self, sql: str, rows: Iterable[Params]) -> None:
        with self._conn().cursor() as cursor:
            cursor.executemany(_psycopg_sql(sql), [_params(row) for row in rows])

    def _insert_returning_id(self, sql: str, params: Params) -> int:
        row = self._execute(sql + " returning id", params).fetchone()
        if row is None:
            raise StoreError("insert returned no row id")
        return int(row[0])

    def _store_error(self, exc: Exception) -> StoreError | None:
        where = self.location
        if isinstance(exc, psycopg.errors.DiskFull):
            message = (
                f"database {where} is full (no space left on the server): the update was "
                "rolled back and nothing committed is lost; free some space"
            )
        elif isinstance(exc, psycopg.errors.ReadOnlySqlTransaction):
            message = f"database {where} is read-only (a standby, or read-only by setting)"
        elif isinstance(exc, psycopg.errors.InsufficientPrivilege):
            message = f"no permission to write database {where}: {_first_line(exc)}"
        elif isinstance(
            exc,
            psycopg.errors.LockNotAvailable
            | psycopg.errors.DeadlockDetected
            | psycopg.errors.SerializationFailure,
        ):
            message = f"database {where} is busy ({_first_line(exc)}): nothing was written"
        elif isinstance(exc, psycopg.OperationalError):
            message = f"lost the connection to database {where}: {_first_line(exc)}"
        else:
            return None
        return StoreError(message)

    # -- schema --------------------------------------------------------------------------

    def _migrate(self, *, create: bool) -> None:
        """Create the schema on an empty database or bring it to SCHEMA_VERSION, under a
        lock so that processes starting together do it once."""
        connection = self._conn()
        with connection.transaction():
            connection.execute("select pg_advisory_xact_lock(%s)", [_SCHEMA_LOCK])
            connection.execute("create table if not exists meta (key text primary key, value text)")
            row = connection.execute(
                "select value from meta where key = 'schema_version'"
            ).fetchone()
            version = int(row[0]) if row else 0
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"database {self.location} has schema version {version}, newer than "
                    f"this aggregator ({SCHEMA_VERSION}): upgrade the aggregator"
                )
            if version == 0:
                if not create:
                    raise StoreError(
                        f"no aggregator database at {self.location} (run `aggregator update` first)"
                    )
                self._create_schema(connection)
                version = BASELINE_VERSION
            for number, migration in enumerate(
                MIGRATIONS[version - BASELINE_VERSION :], start=version + 1
            ):
                migration(connection)
                version = number
            connection.execute(
                "insert into meta (key, value) values ('schema_version', %s)"
                " on conflict (key) do update set value = excluded.value",
                [str(version)],
            )

    @staticmethod
    def _create_schema(connection: psycopg.Connection[Any]) -> None:
        connection.execute("create extension if not exists unaccent")
        (schema,) = connection.execute(
            "select extnamespace::regnamespace::text from pg_extension where extname = 'unaccent'"
        ).fetchone() or ("public",)
        # unaccent() is only STABLE (its dictionary could change); the stored search column
        # needs an IMMUTABLE function, so this wrapper names its dictionary outright.
        connection.execute(
            "create or replace function aggregator_unaccent(text) returns text"
            " language sql immutable parallel safe strict as"
            f" $$ select {schema}.unaccent('{schema}.unaccent'::regdictionary, $1) $$"
        )
        for statement in _BASELINE:
            connection.execute(statement.format(effective_time=EFFECTIVE_TIME))

    # -- what differs from SQLite --------------------------------------------------------

    def create_event(self, now: datetime) -> int:
        when = to_db_time(now)
        return self._insert_returning_id(
            "insert into events (id, story_id, first_seen, last_seen, member_count,"
            " source_count, updated) values (nextval('event_ids'), currval('event_ids'),"
            " ?, ?, 0, 0, ?)",
            [when, when, when],
        )

    def _serialise_claims(self) -> None:
        self._execute("select pg_advisory_xact_lock(?)", [_CLAIM_LOCK])

    def last_event_id(self) -> int:
        (given, called) = self._execute("select last_value, is_called from event_ids").fetchone()
        return int(given) if called else 0

    def set_last_event_id(self, value: int) -> None:
        if value > self.last_event_id():
            self._execute("select setval('event_ids', ?)", [value])

    def _restart_ids(self) -> None:
        for table in _IDENTITY_TABLES:
            self._execute(
                f"select setval(pg_get_serial_sequence('{table}', 'id'),"
                f" coalesce(max(id), 1), max(id) is not null) from {table}"
            )

    def _search_condition(self, words: str) -> tuple[str, dict[str, Any]] | None:
        if not any(character.isalnum() for character in words):
            return None
        return (
            "events.id in (select event_id from entries"
            " where search @@ plainto_tsquery('simple', aggregator_unaccent(:search)))",
            {"search": words},
        )

    @translating
    def storage_bytes(self) -> tuple[int, int]:
        (size,) = self._execute("select pg_database_size(current_database())").fetchone()
        return int(size), 0

    @translating
    def optimize(self) -> str:
        """ANALYZE of the database: refresh the statistics the query planner uses."""
        self._execute("analyze")
        (tables,) = self._execute(
            "select count(*) from pg_stat_user_tables where schemaname = current_schema()"
        ).fetchone()
        return f"ANALYZE done: planner statistics of {tables} tables refreshed"

    def checkpoint(self) -> str:
        """Nothing to do: the server checkpoints its own write-ahead log (a client's
        CHECKPOINT would only force one early), so nothing is run."""
        return "nothing to do: the PostgreSQL server checkpoints its write-ahead log itself"

    @translating
    def check_writable(self) -> None:
        """Raise StoreError unless this role can write the database now (a standby, a
        read-only setting or missing privileges refuse). Writes nothing: rolled back."""
        connection = self._conn()
        with connection.transaction(force_rollback=True):
            connection.execute("update meta set value = value where key = 'schema_version'")


# The schema at BASELINE_VERSION: the SQLite schema after its 11 migrations, in PostgreSQL
# types. Integers are bigint (SQLite's are 64-bit); flags stay integers (0/1) so that the
# shared statements compare them alike.
_BASELINE = (
    """
    create table feeds (
        id bigint generated by default as identity primary key,
        location text not null unique, name text collate "C" not null,
        grp text collate "C" not null, priority bigint not null default 0,
        enabled integer not null default 1, interval_s bigint, title text, link text,
        effective_location text, etag text, last_modified text, last_fetch text,
        last_success text, status text not null default 'new', error text,
        failures bigint default 0, next_due text, created text, effective_url text,
        redirect_target text, redirect_streak bigint, retired text, retired_at text,
        ttl_minutes bigint, skip_hours text, skip_days text
    )
    """,
    """
    create table events (
        id bigint primary key, canonical_entry_id bigint, canonical_reason text,
        first_seen text, last_seen text, member_count bigint, source_count bigint,
        updated text, read_at text, starred_at text, story_id bigint,
        hidden integer not null default 0
    )
    """,
    "create sequence event_ids",
    "create index events_last_seen on events (last_seen)",
    "create index events_story_id on events (story_id)",
    "create index events_first_seen on events (first_seen, id)",
    """
    create table entries (
        id bigint generated by default as identity primary key,
        feed_id bigint not null references feeds (id), identity text not null, guid text,
        url text, canonical_url text, title text not null, text text not null, html text,
        author text, published text, updated text, first_seen text not null, last_seen text,
        content_key text not null, title_sig bytea, body_sig bytea, title_words bigint,
        body_shingles bigint, headline_only integer, event_id bigint references events (id),
        join_level text, similarity double precision, matched_entry_id bigint,
        match_rule text, event_terms bytea, event_weights bytea,
        distinctive integer not null default 1, hidden_by text,
        search tsvector generated always as (to_tsvector('simple',
            aggregator_unaccent(coalesce(title, '') || ' ' || coalesce(text, '')))) stored,
        unique (feed_id, identity)
    )
    """,
    "create index entries_canonical_url on entries (canonical_url)",
    "create index entries_content_key on entries (content_key)",
    "create index entries_event_id on entries (event_id)",
    "create index entries_first_seen on entries (first_seen)",
    "create index entries_effective_time on entries ({effective_time})",
    "create index entries_search on entries using gin (search)",
    """
    create table tombstones (
        id bigint generated by default as identity primary key,
        feed_id bigint not null references feeds (id), identity text not null,
        canonical_url text, content_key text, pruned text not null, expires text not null,
        unique (feed_id, identity)
    )
    """,
    "create index tombstones_canonical_url on tombstones (canonical_url)",
    "create index tombstones_content_key on tombstones (content_key)",
    "create index tombstones_expires on tombstones (expires)",
    """
    create table event_merges (
        id bigint generated by default as identity primary key,
        kept_event_id bigint not null, absorbed_event_id bigint not null,
        similarity double precision, reason text not null, entries bigint, at text not null
    )
    """,
    "create index event_merges_kept on event_merges (kept_event_id)",
    "create index event_merges_absorbed on event_merges (absorbed_event_id)",
    """
    create table event_separations (
        event_id bigint not null, other_event_id bigint not null, at text,
        primary key (event_id, other_event_id)
    )
    """,
    """
    create table story_links (
        id bigint generated by default as identity primary key, event_id bigint not null,
        linked_event_id bigint not null, similarity double precision,
        probability double precision, at text not null, reasons text
    )
    """,
    "create index story_links_event on story_links (event_id)",
    "create index story_links_linked on story_links (linked_event_id)",
    """
    create table join_reasons (
        entry_id bigint primary key, probability double precision, reasons text
    )
    """,
)

# The tables whose ids an identity column gives (events' come from `event_ids`).
_IDENTITY_TABLES = ("feeds", "entries", "tombstones", "event_merges", "story_links",
                    "staged_updates")  # fmt: skip


def _schema_cluster(connection: psycopg.Connection[Any]) -> None:
    """Version 12: fetch leases on feeds and the updates staged for the leader."""
    connection.execute("alter table feeds add column lease_owner text")
    connection.execute("alter table feeds add column lease_until text")
    connection.execute(
        "create table staged_updates (id bigint generated by default as identity primary key,"
        " feed_id bigint not null references feeds (id), staged_at text not null,"
        " entries bytea not null)"
    )
    connection.execute("create index feeds_next_due on feeds (next_due)")


# Migration n brings the schema from version BASELINE_VERSION + n - 1 to BASELINE_VERSION + n.
# Append, never edit a released one; SQLite's list grows by the same versions.
MIGRATIONS: list[Callable[[psycopg.Connection[Any]], None]] = [_schema_cluster]
