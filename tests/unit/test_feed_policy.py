"""Unit tests for aggregator.feed_policy: what to do after a feed failed."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from aggregator.feed_policy import RETIRED_GONE, Failure, FailureAction, after_failure
from aggregator.schedule import MAX_RETRY_AFTER, MIN_RETRY_AFTER

NOW = datetime(2026, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)


def decide(failure: Failure, *, failures: int = 1, interval: timedelta = HOUR) -> FailureAction:
    return after_failure(
        failure, now=NOW, interval=interval, failures=failures, rng=random.Random(1)
    )


def test_a_retired_feed_is_left_untouched() -> None:
    """A feed refused because it is retired records nothing and schedules nothing."""
    action = decide(Failure("gone", already_retired=True))
    assert (action.record, action.retire, action.next_due, action.hold_host_until) == (
        False, False, None, None,
    )  # fmt: skip
    assert action.reason == "gone"


def test_410_retires_the_feed() -> None:
    """410 Gone: retired with reason `gone`, no next attempt, no host hold."""
    action = decide(Failure("http_410", 410))
    assert action.retire and action.record
    assert action.reason == RETIRED_GONE
    assert action.next_due is None and action.hold_host_until is None


@pytest.mark.parametrize(
    ("value", "wait"),
    [
        ("3600", HOUR),
        ("Thu, 01 Jan 2026 02:00:00 GMT", 2 * HOUR),
        ("99999999999", MAX_RETRY_AFTER),
        ("1", MIN_RETRY_AFTER),
    ],
)
def test_429_waits_for_retry_after_and_holds_the_host(value: str, wait: timedelta) -> None:
    """A 429's readable Retry-After is the next attempt (clamped) and the host's hold."""
    action = decide(Failure("http_429", 429, value))
    assert action.next_due == NOW + wait
    assert action.hold_host_until == NOW + wait
    assert action.reason == "http_429" and action.record and not action.retire


def test_503_waits_for_retry_after_without_holding_the_host() -> None:
    """A 503 is about the feed: its Retry-After is honoured, other feeds are not held."""
    action = decide(Failure("http_503", 503, "7200"))
    assert action.next_due == NOW + 2 * HOUR
    assert action.hold_host_until is None


@pytest.mark.parametrize("value", [None, "-1", "soon", "²", "١٢٠", "9" * 400, "\x00"])
def test_unreadable_retry_after_backs_off(value: str | None) -> None:
    """Absent or unreadable Retry-After (non-ASCII digits included): the usual backoff,
    never an immediate retry; a 429 still holds the host until then."""
    action = decide(Failure("http_429", 429, value))
    assert action.next_due is not None
    assert action.next_due - NOW >= HOUR * 0.9  # the interval, jittered
    assert action.hold_host_until == action.next_due


def test_other_failures_back_off_exponentially() -> None:
    """Timeouts, 500s and bugs back off by the consecutive failure count, capped at a day."""
    short = timedelta(minutes=1)
    first = decide(Failure("timeout"), failures=1, interval=short)
    tenth = decide(Failure("internal:KeyError"), failures=10, interval=short)
    assert first.next_due is not None and tenth.next_due is not None
    assert timedelta(minutes=2) <= first.next_due - NOW <= timedelta(minutes=5)
    assert timedelta(hours=12) <= tenth.next_due - NOW <= timedelta(hours=24)
    assert first.hold_host_until is None and not first.retire


def test_a_status_without_retry_after_semantics_ignores_the_header() -> None:
    """Retry-After on a 500 is not honoured: a server error backs off."""
    action = decide(Failure("http_500", 500, "60"), interval=HOUR)
    assert action.next_due is not None and action.next_due - NOW >= HOUR * 0.9
