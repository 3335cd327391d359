"""Maintenance jobs: retention, planner statistics, the journal's checkpoint.

Each job has an interval; when it last ran is stored in the database (`meta`), so a
restarted daemon and a cron-driven `run --once` both run a job only when it is due, and
a daemon restarted often still prunes. The daemon schedules each job on its scheduler;
`run --once` runs the ones that are due (`due_jobs`).

- **prune** (every 6 hours): events whose newest member arrived more than
  `retention_days` ago are deleted with all their members; each deleted entry's keys
  stay as a tombstone for `tombstone_days` more, so if a feed still lists it, it is
  recognised as seen and not shown as new again (`Store.prune`). When the retention is
  shorter than the dedup window, the in-memory dedup indexes are rebuilt after a prune
  (otherwise what is pruned is already outside them).
- **optimize** (daily): on SQLite `PRAGMA optimize`, SQLite's advice for long-lived
  connections: it refreshes the planner statistics of tables whose shape changed. On
  PostgreSQL `ANALYZE` of the database (autovacuum analyses too, on its own thresholds).
- **checkpoint** (hourly): on SQLite `PRAGMA wal_checkpoint(TRUNCATE)`. SQLite checkpoints
  on its own after each ~4 MB of WAL, but only passively: while readers (digest, web page)
  keep reading, the WAL file can only grow. A truncating checkpoint waits for them (up to
  the busy timeout) and gives the space back. On PostgreSQL nothing: the server
  checkpoints its write-ahead log itself, and the log line says so.

Each job's log line is the store's own account of what it did on its engine.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from aggregator.errors import LeadershipLost, StoreError
from aggregator.pipeline import Pipeline

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class MaintenanceJob:
    """One maintenance job: `run(pipeline, now)` does it and returns a log line."""

    name: str
    interval: timedelta
    run: Callable[[Pipeline, datetime], str]


def prune(pipeline: Pipeline, now: datetime) -> str:
    """Retention: see the module docstring."""
    settings = pipeline.config.settings
    retention = timedelta(days=settings.retention_days)
    result = pipeline.store.prune(
        before=now - retention,
        keep_tombstones_until=now + timedelta(days=settings.tombstone_days),
        now=now,
    )
    if result.entries and retention < settings.dedup_window:
        # Entries still inside the dedup window were deleted: the in-memory indexes
        # (signatures, event centroids) must forget them and their events.
        pipeline.rebuild_window(now)
    return (
        f"pruned {result.events} events and {result.entries} entries older than "
        f"{settings.retention_days} days; {result.tombstones} tombstones kept "
        f"{settings.tombstone_days} days, {result.expired} expired"
    )


def optimize(pipeline: Pipeline, now: datetime) -> str:
    """Planner statistics: see the module docstring; the line says what the engine did."""
    return pipeline.store.optimize()


def checkpoint(pipeline: Pipeline, now: datetime) -> str:
    """The journal: see the module docstring; the line says what the engine did."""
    return pipeline.store.checkpoint()


JOBS: tuple[MaintenanceJob, ...] = (
    MaintenanceJob("prune", timedelta(hours=6), prune),
    MaintenanceJob("optimize", timedelta(days=1), optimize),
    MaintenanceJob("checkpoint", timedelta(hours=1), checkpoint),
)


def next_run(job: MaintenanceJob, last_runs: Mapping[str, datetime], now: datetime) -> datetime:
    """When `job` is due: an interval after its last run, or `now` if it never ran."""
    last = last_runs.get(job.name)
    return now if last is None else max(now, last + job.interval)


def due_jobs(
    jobs: Sequence[MaintenanceJob], last_runs: Mapping[str, datetime], now: datetime
) -> list[MaintenanceJob]:
    """The jobs whose interval has passed since they last ran (or that never ran)."""
    return [job for job in jobs if next_run(job, last_runs, now) <= now]


def run_job(job: MaintenanceJob, pipeline: Pipeline, now: datetime) -> bool:
    """Run one job and record it; False when it failed (logged, never raised: a failed
    maintenance job must not stop the daemon, and it runs again at its next time)."""
    try:
        summary = job.run(pipeline, now)
        pipeline.store.record_maintenance(job.name, now)
    except StoreError as exc:
        log.error("maintenance %s failed: %s", job.name, exc)
        return False
    except LeadershipLost:
        raise  # not the job's failure: this process no longer writes (`Daemon`)
    except Exception:  # a bug: logged with its traceback, the daemon goes on
        log.exception("maintenance %s failed unexpectedly", job.name)
        return False
    log.info("maintenance %s: %s", job.name, summary, extra={"maintenance": job.name})
    return True
