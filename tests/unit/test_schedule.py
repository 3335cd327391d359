"""Unit tests for aggregator.schedule: intervals, jitter, TTL and backoff."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from aggregator.schedule import (
    MAX_BACKOFF,
    MAX_RETRY_AFTER,
    MIN_RETRY_AFTER,
    backoff,
    cache_delay,
    host_key,
    is_failing,
    next_due_after_failure,
    next_due_after_success,
    outside_skipped,
    retry_after,
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


def test_failure_backoff_is_jittered_and_capped() -> None:
    """Feeds failing together spread out, and no wait exceeds 24 h (short interval)."""
    rng = random.Random(5)
    waits = {next_due_after_failure(NOW, timedelta(minutes=5), 4, rng) - NOW for _ in range(20)}
    assert len(waits) == 20
    assert all(timedelta(minutes=20) <= w <= timedelta(minutes=40) for w in waits)
    worst = max(next_due_after_failure(NOW, timedelta(minutes=5), 40, rng) - NOW for _ in range(50))
    assert MAX_BACKOFF / 2 <= worst <= MAX_BACKOFF


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("3600", timedelta(hours=1)),
        ("Thu, 01 Jan 2026 02:00:00 GMT", timedelta(hours=2)),
        ("0", MIN_RETRY_AFTER),
        ("5", MIN_RETRY_AFTER),
        ("99999999999", MAX_RETRY_AFTER),
        ("Fri, 01 Jan 2100 00:00:00 GMT", MAX_RETRY_AFTER),
        ("Wed, 31 Dec 2025 00:00:00 GMT", MIN_RETRY_AFTER),  # in the past
        ("-1", None),
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_both_forms_clamped(value: str | None, expected: timedelta | None) -> None:
    """Delta-seconds and HTTP dates are read and clamped to [1 min, 7 days]; junk is None."""
    assert retry_after(value, NOW) == expected


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"cache-control": "public, max-age=7200"}, timedelta(hours=2)),
        ({"cache-control": "max-age=0"}, None),
        ({"cache-control": "no-cache, max-age=7200"}, None),
        ({"expires": "Thu, 01 Jan 2026 03:00:00 GMT"}, timedelta(hours=3)),
        ({"expires": "Wed, 31 Dec 2025 03:00:00 GMT"}, None),
        ({"expires": "0"}, None),
        ({"cache-control": "max-age=60", "expires": "Thu, 01 Jan 2026 03:00:00 GMT"},
         timedelta(minutes=1)),  # max-age wins over Expires (RFC 9111)
        ({}, None),
    ],
)  # fmt: skip
def test_cache_delay(headers: dict[str, str], expected: timedelta | None) -> None:
    """Cache-Control max-age, else Expires, gives how long the publisher wants us away."""
    assert cache_delay(headers, NOW) == expected


def test_publisher_delay_is_a_floor_with_a_cap() -> None:
    """max-age longer than the interval is honoured, but never past 7 days."""
    rng = random.Random(6)
    due = next_due_after_success(
        NOW, timedelta(minutes=10), rng, publisher_delay=timedelta(hours=5)
    )
    assert due - NOW == timedelta(hours=5)
    due = next_due_after_success(
        NOW, timedelta(minutes=10), rng, publisher_delay=timedelta(days=90)
    )
    assert due - NOW == timedelta(days=7)


def test_skip_hours_and_days_move_the_due_time() -> None:
    """A due time inside skipped hours moves to the first allowed hour (UTC)."""
    due = datetime(2026, 1, 1, 2, 30, tzinfo=UTC)  # a Thursday
    assert outside_skipped(due, skip_hours=frozenset({2, 3}), skip_days=frozenset()) == (
        datetime(2026, 1, 1, 4, 0, tzinfo=UTC)
    )
    assert outside_skipped(due, skip_hours=frozenset(), skip_days=frozenset({3, 4})) == (
        datetime(2026, 1, 3, 0, 0, tzinfo=UTC)
    )
    assert outside_skipped(due, skip_hours=frozenset({5}), skip_days=frozenset()) == due
    every_hour = frozenset(range(24))
    assert outside_skipped(due, skip_hours=every_hour, skip_days=frozenset()) == due


def test_success_honours_skip_hours() -> None:
    """next_due_after_success applies skipHours after the interval."""
    due = next_due_after_success(
        datetime(2026, 1, 1, 0, 30, tzinfo=UTC), timedelta(hours=1), random.Random(7),
        skip_hours=frozenset({1}),
    )  # fmt: skip
    assert due == datetime(2026, 1, 1, 2, 0, tzinfo=UTC)


def test_host_key_and_failing() -> None:
    """Hosts compare case-insensitively with their port; three failures make "failing"."""
    assert host_key("https://Example.com/a") == host_key("https://example.com:443/b")
    assert host_key("http://example.com/") != host_key("https://example.com/")
    assert host_key("/local/file.xml") is None
    assert not is_failing(2) and is_failing(3)
