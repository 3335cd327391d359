"""The maintenance jobs on each backend: each one's log line says what it did on that
engine, and what it says is what happened (SQLite's WAL truncated, PostgreSQL's tables
analysed)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from aggregator.config import parse_config
from aggregator.maintenance import JOBS, checkpoint, run_job
from aggregator.pipeline import Pipeline
from aggregator.store import open_store
from tests.conftest import REPO
from tests.support import sql
from tests.support.clock import FixedClock
from tests.support.postgresql import Server


def seeded(database: str, tmp_path: Path, clock: FixedClock) -> Pipeline:
    """A pipeline over the seed's related-headlines feed, stored in `database`."""
    config = parse_config(
        f"groups:\n  g:\n    feeds:\n      - path: {REPO / 'seeds/feeds/003-related.rss'}\n",
        tmp_path / "f.yaml",
    )
    made = Pipeline(store=open_store(database), config=config, clock=clock)
    assert made.run(all_feeds=True).total("new") == 6
    return made


@pytest.fixture
def pipeline(database: str, tmp_path: Path, clock: FixedClock) -> Iterator[Pipeline]:
    """The seed feed stored in a database of each backend."""
    made = seeded(database, tmp_path, clock)
    yield made
    made.close()
    made.store.close()


def summaries(
    pipeline: Pipeline, clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> dict[str, str]:
    """Run every job once; its logged summary by name."""
    with caplog.at_level(logging.INFO, logger="aggregator.maintenance"):
        for job in JOBS:
            assert run_job(job, pipeline, clock())
    found = {}
    for record in caplog.records:
        name = getattr(record, "maintenance", None)
        if name is not None:
            prefix = f"maintenance {name}: "
            message = record.getMessage()
            assert message.startswith(prefix), message
            found[name] = message.removeprefix(prefix)
    assert set(found) == {job.name for job in JOBS}
    return found


def test_sqlite_maintenance_says_pragma_and_wal_and_truncates_the_wal(
    tmp_path: Path, clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    """SQLite: `PRAGMA optimize`, and a truncating WAL checkpoint that empties the -wal
    file (this half opens the .db file's WAL, so it is SQLite's only)."""
    pipeline = seeded(str(tmp_path / "m.db"), tmp_path, clock)
    wal = tmp_path / "m.db-wal"
    try:
        found = summaries(pipeline, clock, caplog)
        assert found["optimize"] == "PRAGMA optimize done"
        assert found["checkpoint"].startswith("WAL checkpoint: ")
        assert found["checkpoint"].endswith(" frames copied, WAL truncated")
        assert int(found["checkpoint"].split()[2]) > 0  # the pass's frames, and the prune's
        # The job alone (run_job then records it, a write of its own): the count it gives
        # is the WAL's frames (a header of 32 bytes, each frame a page and 24 bytes), and
        # the WAL is empty after it.
        (page,) = sql.one(pipeline.store, "pragma page_size")
        frames = (wal.stat().st_size - 32) // (page + 24)
        assert frames > 0
        line = checkpoint(pipeline, clock())
        assert line == f"WAL checkpoint: {frames} frames copied, WAL truncated"
        assert wal.stat().st_size == 0
    finally:
        pipeline.close()
        pipeline.store.close()


def test_postgresql_maintenance_says_analyze_and_runs_no_checkpoint(
    postgresql_server: Server, tmp_path: Path, clock: FixedClock,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    """PostgreSQL: ANALYZE (every table of the schema analysed afterwards, as the line
    counts them), and no checkpoint, said as such: no SQLite word (PRAGMA, WAL, VACUUM,
    frames) in any line."""
    pipeline = seeded(postgresql_server.database("maint"), tmp_path, clock)
    store = pipeline.store
    try:
        never = "select count(*) from pg_stat_user_tables where schemaname = current_schema()"
        (tables,) = sql.one(store, never)
        assert sql.one(store, never + " and last_analyze is not null") == (0,)
        found = summaries(pipeline, clock, caplog)
        assert found["optimize"] == f"ANALYZE done: planner statistics of {tables} tables refreshed"
        assert sql.one(store, never + " and last_analyze is null") == (0,)
        assert found["checkpoint"] == (
            "nothing to do: the PostgreSQL server checkpoints its write-ahead log itself"
        )
        for line in found.values():
            for word in ("PRAGMA", "WAL", "VACUUM", "frames"):
                assert word not in line, line
    finally:
        pipeline.close()
        pipeline.store.close()


def test_prune_says_the_same_on_both_backends(
    pipeline: Pipeline, clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Retention is the store's own SQL on both engines: the same line, the same counts."""
    found = summaries(pipeline, clock, caplog)
    assert found["prune"] == (
        "pruned 0 events and 0 entries older than 30 days; 0 tombstones kept 60 days, 0 expired"
    )
