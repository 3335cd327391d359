"""Pure and local parts of operating the daemon: the writer lock, logs, start-up checks,
maintenance timing and the status of a feed."""

from __future__ import annotations

import io
import json
import logging
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aggregator.checks import (
    MIN_EXPAT,
    MIN_SQLITE,
    check_expat,
    check_libraries,
    check_sqlite,
)
from aggregator.cli import build_parser
from aggregator.dedup.background import cache_path
from aggregator.dedup.events import PREFIX_LENGTH
from aggregator.errors import AlreadyRunning, StartupError, StoreError
from aggregator.lock import WriterLock, holder, lock_path
from aggregator.logs import JsonFormatter, configure_logging
from aggregator.maintenance import JOBS, due_jobs, next_run
from aggregator.models import Config, FeedSpec, FeedState
from aggregator.status import feed_status

NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)

# -- the writer lock -------------------------------------------------------------------------


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


# -- logs ------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """configure_logging() sets up the root logger: give pytest's back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    scheduler_level = logging.getLogger("apscheduler").level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.getLogger("apscheduler").setLevel(scheduler_level)


def test_json_logs_are_one_object_per_line_with_extra_fields() -> None:
    """Each record is one JSON line with time, level, logger, message and its extras; an
    exception is one field, so the record stays on one line."""
    stream = io.StringIO()
    configure_logging(level="INFO", fmt="json", stream=stream)
    log = logging.getLogger("aggregator.test")
    log.info("feed='x' status=ok", extra={"feed": "x", "status": "ok", "new": 3})
    log.debug("not shown at INFO")
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("it failed")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["message"] == "feed='x' status=ok" and first["level"] == "INFO"
    assert (first["feed"], first["status"], first["new"]) == ("x", "ok", 3)
    assert first["logger"] == "aggregator.test" and first["time"].endswith("Z")
    assert second["level"] == "ERROR" and "ValueError: boom" in second["exception"]


def test_text_logs_are_readable_lines_in_utc() -> None:
    """Text: `<UTC time>Z LEVEL message`; APScheduler's per-run INFO lines are muted."""
    stream = io.StringIO()
    configure_logging(level="INFO", fmt="text", stream=stream)
    logging.getLogger("aggregator.test").warning("disk nearly full")
    logging.getLogger("apscheduler.executors").info("Running job tick")
    (line,) = stream.getvalue().splitlines()
    stamp, level, message = line.split(" ", 2)
    assert stamp.endswith("Z") and datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    assert (level, message) == ("WARNING", "disk nearly full")


def test_json_formatter_never_fails_on_odd_extras() -> None:
    """An extra that JSON cannot encode is written as text, not lost with the record."""
    record = logging.LogRecord("x", logging.INFO, "f", 1, "m", None, None)
    record.path = Path("/tmp/x")
    assert json.loads(JsonFormatter().format(record))["path"] == "/tmp/x"


# -- start-up checks ---------------------------------------------------------------------------


def test_this_environment_passes_the_library_checks() -> None:
    """The libraries the tests run on are recent enough (else nothing else would work)."""
    check_libraries()


def test_old_or_incomplete_sqlite_is_refused() -> None:
    """SQLite older than the minimum, or without FTS5, gives a message naming versions."""
    old = (MIN_SQLITE[0], MIN_SQLITE[1] - 1, 0)
    with pytest.raises(StartupError, match=r"SQLite 3\.26\.0 is too old.*3\.27\.0"):
        check_sqlite(old, fts5=True)
    with pytest.raises(StartupError, match="without FTS5"):
        check_sqlite(MIN_SQLITE, fts5=False)
    check_sqlite(MIN_SQLITE, fts5=True)


def test_old_expat_is_refused_for_entity_expansion() -> None:
    """expat before 2.4.1 lacks the entity-expansion protection: refused."""
    with pytest.raises(StartupError, match=r"expat 2\.4\.0 is too old.*entity-expansion"):
        check_expat((2, 4, 0))
    check_expat(MIN_EXPAT)


# -- maintenance timing ------------------------------------------------------------------------


def test_maintenance_is_due_an_interval_after_its_last_run() -> None:
    """Never run: due now. Run recently: due an interval later, not before."""
    prune, optimize, checkpoint = JOBS
    last = {"prune": NOW - timedelta(hours=1), "checkpoint": NOW - timedelta(hours=2)}
    assert next_run(prune, last, NOW) == NOW + timedelta(hours=5)
    assert next_run(optimize, last, NOW) == NOW
    assert next_run(checkpoint, last, NOW) == NOW
    assert [job.name for job in due_jobs(JOBS, last, NOW)] == ["optimize", "checkpoint"]
    assert due_jobs(JOBS, {job.name: NOW for job in JOBS}, NOW) == []


# -- a feed's status ---------------------------------------------------------------------------


def state(**changes: object) -> FeedState:
    values: dict[str, object] = {
        "id": 1, "name": "Le Monde", "group": "world", "location": "https://e.org/f",
        "enabled": True, "last_fetch": NOW, "last_success": NOW, "status": "ok",
        "error": None, "failures": 0, "next_due": NOW + timedelta(hours=1), "etag": None,
        "last_modified": None, "entry_count": 12,
    }  # fmt: skip
    values.update(changes)
    return FeedState(**values)  # type: ignore[arg-type]


CONFIG = Config(
    path=Path("feeds.yaml"),
    feeds=(FeedSpec(name="Le Monde", group="world", url="https://e.org/f", enabled=False),),
)


@pytest.mark.parametrize(
    ("changes", "config", "expected"),
    [
        ({}, None, ("ok", False, None)),
        ({"status": "not_modified", "next_due": NOW}, None, ("ok", True, None)),
        ({"status": "error", "error": "http_500", "failures": 3}, None,
         ("failing", False, "http_500")),
        ({"status": "error", "error": "timeout", "failures": 1}, None,
         ("retrying", False, "timeout")),
        ({"status": "new", "next_due": None}, None, ("new", True, None)),
        ({"enabled": False}, None, ("retired", False, "disabled")),
        ({"enabled": False}, CONFIG, ("retired", False, "disabled in the config")),
        ({"enabled": False, "location": "https://e.org/old"}, CONFIG,
         ("retired", False, "removed from the config")),
        ({"retired": "gone", "next_due": NOW}, None, ("retired", False, "gone")),
    ],
)  # fmt: skip
def test_feed_status(
    changes: dict[str, object], config: Config | None, expected: tuple[str, bool, str | None]
) -> None:
    """Each stored feed state maps to ok / retrying / failing / new / retired, due or not,
    with why."""
    found = feed_status(state(**changes), config, NOW)
    assert (found.state, found.due, found.reason) == expected


# -- deployment --------------------------------------------------------------------------------


def test_systemd_unit_gives_the_word_frequency_table_a_writable_cache(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Under the unit's ProtectHome and ProtectSystem=strict, the home's cache is not
    writable: the unit points XDG_CACHE_HOME at the cache directory systemd creates."""
    unit = (Path(__file__).parents[2] / "config" / "aggregator.service").read_text()
    lines = [line for line in unit.splitlines() if "=" in line and line[0] != "#"]
    settings = dict(line.split("=", 1) for line in lines)
    environment = dict(line.split("=", 2)[1:] for line in lines if line.startswith("Environment="))
    assert settings["ProtectHome"] == "yes" and settings["ProtectSystem"] == "strict"
    monkeypatch.setenv("XDG_CACHE_HOME", environment["XDG_CACHE_HOME"])
    path = cache_path(PREFIX_LENGTH)
    assert path is not None
    assert path.parent == Path("/var/cache") / settings["CacheDirectory"]


def test_systemd_unit_runs_the_daemon_and_reloads_with_sighup() -> None:
    """The shipped unit starts `aggregator run` with arguments the CLI accepts, reloads
    with SIGHUP, stops with SIGTERM, and does not restart in a loop on a bad config."""
    unit = (Path(__file__).parents[2] / "config" / "aggregator.service").read_text()
    settings = dict(
        line.split("=", 1) for line in unit.splitlines() if "=" in line and line[0] != "#"
    )
    program, *args = settings["ExecStart"].split()
    assert program.endswith("/aggregator") and args[0] == "run"
    assert build_parser().parse_args(args).command == "run"
    assert settings["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert settings["KillSignal"] == "SIGTERM" and int(settings["TimeoutStopSec"]) >= 10
    assert settings["RestartPreventExitStatus"] == "2"
