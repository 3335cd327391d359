"""The writer lock: one writer per database, named when refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from aggregator.errors import AlreadyRunning, StoreError
from aggregator.lock import WriterLock, holder, lock_path


def test_a_second_writer_is_refused_naming_the_first(tmp_path: Path) -> None:
    """While one writer holds the lock, another fails at once with its pid and command;
    once released, the lock can be taken again and nobody is reported as holding it."""
    db = tmp_path / "a.db"
    with WriterLock(db, command="run"):
        seen = holder(db)
        assert seen is not None and seen.pid == os.getpid() and seen.command == "run"
        with pytest.raises(AlreadyRunning, match=rf"pid {os.getpid()}, `run`"):
            WriterLock(db, command="update").acquire()
    assert holder(db) is None
    assert lock_path(db).exists()  # left in place: deleting it would race a new writer
    with WriterLock(db, command="update"):
        assert holder(db) is not None


def test_an_unwritable_lock_place_is_a_store_error(tmp_path: Path) -> None:
    """A database whose directory cannot hold the lock file: a StoreError, not OSError."""
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(StoreError, match="cannot create the lock file"):
        WriterLock(tmp_path / "file" / "a.db", command="run").acquire()


def test_no_lock_file_means_nobody_writes(tmp_path: Path) -> None:
    """A database never written has no lock file and no holder."""
    assert holder(tmp_path / "never.db") is None
