"""Unit tests for aggregator.schedule: intervals, jitter, TTL and backoff."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from aggregator.schedule import (
    MAX_BACKOFF,
    backoff,
    next_due_after_failure,
    next_due_after_success,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_success_waits_the_interval_within_jitter() -> None:
    """The next poll is the interval away, give or take 10%."""
    rng = random.Random(1)
    for _ in range(100):
        wait = next_due_after_success(NOW, timedelta(minutes=60), rng) - NOW
        assert timedelta(minutes=54) <= wait <= timedelta(minutes=66)


def test_jitter_spreads_feeds() -> None:
    """Feeds with one interval do not all fall due at the same instant."""
    rng = random.Random(2)
    dues = {next_due_after_success(NOW, timedelta(minutes=60), rng) for _ in range(20)}
    assert len(dues) == 20


def test_ttl_is_a_floor() -> None:
    """An RSS <ttl> longer than the interval is honoured."""
    due = next_due_after_success(NOW, timedelta(minutes=10), random.Random(3), ttl_minutes=120)
    assert due - NOW >= timedelta(minutes=120)


def test_backoff_doubles_and_caps() -> None:
    """5, 10, 20 minutes ... never past a day."""
    assert backoff(1) == timedelta(minutes=5)
    assert backoff(2) == timedelta(minutes=10)
    assert backoff(3) == timedelta(minutes=20)
    assert backoff(50) == MAX_BACKOFF


def test_failure_never_polls_sooner_than_interval() -> None:
    """A failing feed waits at least its interval (minus jitter) and at most a day plus jitter."""
    rng = random.Random(4)
    wait = next_due_after_failure(NOW, timedelta(hours=2), 1, rng) - NOW
    assert wait >= timedelta(hours=2) * 0.9
    wait = next_due_after_failure(NOW, timedelta(hours=2), 30, rng) - NOW
    assert wait <= MAX_BACKOFF * 1.1
