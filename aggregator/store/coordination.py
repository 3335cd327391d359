"""Who may write a PostgreSQL database: the writer (grouping) lock as a session advisory
lock, and who holds it.

The lock is held by a connection of its own, not one a store uses: PostgreSQL releases a
session lock when the session ends, so a writer killed with -9 (its socket closed) or whose
session is terminated frees it, and a standby can take it. The holder names itself in its
session's `application_name` ("aggregator <pid> <command>"), which `holder` reads back from
`pg_stat_activity`. A holder checks that it still holds the lock before each write
(`check`): a writer stopped long enough to lose its session stands down instead of
writing beside the new one.
"""

from __future__ import annotations

import os
import threading
from types import TracebackType
from typing import Any

import psycopg

from aggregator.errors import AlreadyRunning, LeadershipLost, StoreError
from aggregator.store.postgresql import CONNECT_TIMEOUT_S, connect_error, display_url

# pg_advisory_lock key of the writer: the one process that groups entries into events.
WRITER_LOCK = 0x61676701
APPLICATION_PREFIX = "aggregator "
# Seconds without an answer after which the server drops a writer's session (TCP
# keepalives): a writer on a host that vanished frees the lock within about this.
KEEPALIVE_S = 5
# The lock's session pings the server this often; a session silent for LOCK_IDLE_MS (its
# process stopped or hung) is ended by the server, which frees the lock for a standby.
PING_S = 3.0
LOCK_IDLE_MS = 15_000


def _holder_query() -> str:
    return (
        "select a.application_name from pg_locks l join pg_stat_activity a on a.pid = l.pid"
        " where l.locktype = 'advisory' and l.granted and l.objid = %s"
        " and l.classid = 0 and l.objsubid = 1 limit 1"
    )


def _parse(application_name: str) -> tuple[int | None, str]:
    text = application_name.removeprefix(APPLICATION_PREFIX)
    pid_text, _, command = text.partition(" ")
    return (int(pid_text) if pid_text.isdigit() else None), command or "?"


def server_holder(url: str, password: str | None = None) -> tuple[int | None, str] | None:
    """(pid, command) of the process holding the writer lock of the database at `url`,
    or None when nobody holds it (or the server cannot be asked)."""
    try:
        with psycopg.connect(
            url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S, password=password
        ) as connection:
            row = connection.execute(_holder_query(), [WRITER_LOCK]).fetchone()
    except psycopg.Error:
        return None
    return _parse(str(row[0])) if row is not None else None


class ServerWriterLock:
    """The writer lock of one PostgreSQL database; a context manager like the file lock.

    `acquire()` fails at once with AlreadyRunning naming the holder; `wait()` blocks until
    the lock is free (a standby). `check()` raises LeadershipLost once the lock's session
    is gone.
    """

    def __init__(self, url: str, *, command: str, password: str | None = None) -> None:
        self.url = url
        self.command = command
        self._password = password
        self._connection: psycopg.Connection[Any] | None = None
        self._stop_pinging = threading.Event()

    def _connect(self) -> psycopg.Connection[Any]:
        name = f"{APPLICATION_PREFIX}{os.getpid()} {self.command}"[:63]
        try:
            return psycopg.connect(
                self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S,
                password=self._password, application_name=name, keepalives=1,
                keepalives_idle=KEEPALIVE_S, keepalives_interval=1, keepalives_count=3,
                options=f"-c idle_session_timeout={LOCK_IDLE_MS}",
            )  # fmt: skip
        except psycopg.Error as exc:
            raise connect_error(self.url, exc) from exc

    def acquire(self) -> None:
        connection = self._connect()
        try:
            (got,) = connection.execute(
                "select pg_try_advisory_lock(%s)", [WRITER_LOCK]
            ).fetchone() or (False,)
            if not got:
                other = connection.execute(_holder_query(), [WRITER_LOCK]).fetchone()
                pid, command = _parse(str(other[0])) if other else (None, "?")
                who = f"pid {pid}" if pid is not None else "another process"
                raise AlreadyRunning(
                    f"another aggregator ({who}, `{command}`) is already writing to "
                    f"{display_url(self.url)}: only one writer per database; stop it first, "
                    "or run this one as a standby (`--role group`)"
                )
        except BaseException:
            connection.close()
            raise
        self._hold(connection)

    def _hold(self, connection: psycopg.Connection[Any]) -> None:
        self._connection = connection
        self._stop_pinging.clear()
        threading.Thread(
            target=self._ping, args=(connection,), name="writer-lock", daemon=True
        ).start()

    def _ping(self, connection: psycopg.Connection[Any]) -> None:
        """Keep the lock's session busy enough that the server does not end it."""
        while not self._stop_pinging.wait(PING_S):
            try:
                connection.execute("select 1")
            except psycopg.Error:
                return  # the session is gone: `check` says so at the next write

    def wait(self) -> None:
        """Block until this process holds the lock (a standby waiting to lead)."""
        connection = self._connect()
        try:
            connection.execute("select pg_advisory_lock(%s)", [WRITER_LOCK])
        except psycopg.Error as exc:
            connection.close()
            raise StoreError(
                f"lost the connection to database {display_url(self.url)} while waiting to lead"
            ) from exc
        self._hold(connection)

    def check(self) -> None:
        """Raise LeadershipLost unless the lock's session is alive and holds the lock."""
        connection = self._connection
        if connection is None or connection.broken or connection.closed:
            raise LeadershipLost("the writer lock was lost: standing down")
        try:
            row = connection.execute(
                "select 1 from pg_locks where locktype = 'advisory' and granted"
                " and objid = %s and pid = pg_backend_pid()",
                [WRITER_LOCK],
            ).fetchone()
        except psycopg.Error as exc:
            raise LeadershipLost(
                f"the writer lock's session was lost ({str(exc).strip().splitlines()[0]}):"
                " standing down"
            ) from exc
        if row is None:
            raise LeadershipLost("the writer lock is no longer held: standing down")

    def release(self) -> None:
        if self._connection is None:
            return
        connection, self._connection = self._connection, None
        self._stop_pinging.set()
        connection.close()  # ending the session releases the lock

    def __enter__(self) -> ServerWriterLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
