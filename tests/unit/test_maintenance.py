"""When each maintenance job (prune, optimise, checkpoint) is due."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aggregator.maintenance import JOBS, due_jobs, next_run

NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


def test_maintenance_is_due_an_interval_after_its_last_run() -> None:
    """Never run: due now. Run recently: due an interval later, not before."""
    prune, optimize, checkpoint = JOBS
    last = {"prune": NOW - timedelta(hours=1), "checkpoint": NOW - timedelta(hours=2)}
    assert next_run(prune, last, NOW) == NOW + timedelta(hours=5)
    assert next_run(optimize, last, NOW) == NOW
    assert next_run(checkpoint, last, NOW) == NOW
    assert [job.name for job in due_jobs(JOBS, last, NOW)] == ["optimize", "checkpoint"]
    assert due_jobs(JOBS, {job.name: NOW for job in JOBS}, NOW) == []
