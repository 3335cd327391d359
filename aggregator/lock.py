"""One writer per database: an advisory lock on `<database>.lock`.

The daemon, `run --once` and `update` write; they hold this lock while they run, so two
of them never fetch the same feeds and never store into one database with two different
in-memory dedup indexes. Readers (`digest`, `feeds`, `status`, the web page) take no lock:
SQLite's WAL lets them read while the writer writes.

`flock(2)` rather than a pid file alone: the kernel releases the lock when the process
dies, kill -9 included, so a crash never leaves a stale lock behind. The holder's pid and
command are written into the file for the messages and for `aggregator status`; the file
itself stays after exit (deleting it would race with a starting writer).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Protocol

from aggregator.errors import AlreadyRunning, StoreError
from aggregator.store.locations import database_password
from aggregator.urls import is_database_url

__all__ = ["Holder", "WriterLock", "holder", "lock_path", "writer_lock"]


@dataclass(frozen=True, slots=True)
class Holder:
    """Who holds the lock, as it wrote itself into the lock file."""

    pid: int | None  # None when the file could not be read (just being written)
    command: str


def lock_path(database: Path) -> Path:
    """The lock file of a database: next to it, same name plus `.lock`."""
    return database.with_name(database.name + ".lock")


def holder(database: Path | str, password_file: Path | None = None) -> Holder | None:
    """Who holds the writer lock of `database` (a path or a server URL) now, or None."""
    if is_database_url(str(database)):
        from aggregator.store.coordination import server_holder

        found = server_holder(str(database), database_password(password_file))
        return Holder(pid=found[0], command=found[1]) if found is not None else None
    path = lock_path(Path(database))
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_holder(fd)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _read_holder(fd: int) -> Holder:
    text = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
    pid_text, _, command = text.partition(" ")
    return Holder(pid=int(pid_text) if pid_text.isdigit() else None, command=command or "?")


class WriterLock:
    """The writer lock of one database; a context manager.

    `acquire()` fails at once (it never waits) with AlreadyRunning naming the holder.
    """

    def __init__(self, database: Path, *, command: str) -> None:
        self.database = database
        self.path = lock_path(database)
        self.command = command
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StoreError(
                f"cannot create the lock file {self.path}: {exc.strerror or exc} (the "
                "aggregator needs write access to the database's directory)"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = _read_holder(fd)
            os.close(fd)
            who = f"pid {other.pid}" if other.pid is not None else "another process"
            raise AlreadyRunning(
                f"another aggregator ({who}, `{other.command}`) is already writing to "
                f"{self.database}: only one daemon or update per database; stop it first "
                "(`aggregator digest` and `aggregator status` work while it runs)"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {self.command}\n".encode(), 0)
        self._fd = fd

    def check(self) -> None:
        """Nothing to check: the kernel keeps a flock for as long as the process lives."""

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)  # no stale pid for readers of the file
        os.close(fd)  # closing releases the flock

    def __enter__(self) -> WriterLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


class _Lock(Protocol):
    def check(self) -> None:
        """Raise LeadershipLost if the lock is no longer held."""
        ...

    def __enter__(self) -> object: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


def writer_lock(database: Path | str, *, command: str, password_file: Path | None = None) -> _Lock:
    """The writer lock of a database: a file beside a SQLite database, a session advisory
    lock on a PostgreSQL server (`store.coordination`)."""
    if is_database_url(str(database)):
        from aggregator.store.coordination import ServerWriterLock

        return ServerWriterLock(
            str(database), command=command, password=database_password(password_file)
        )
    return WriterLock(Path(database), command=command)
