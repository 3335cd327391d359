"""Pure timing: when is a feed due next.

Jitter spreads feeds that share an interval, so a thousand feeds added at once do not
hit the network in the same second forever after. Failures back off exponentially up to a
day and reset on success.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

# +-10% of the interval: enough to de-synchronise feeds, small enough to stay predictable.
JITTER_FRACTION = 0.1
FIRST_BACKOFF = timedelta(minutes=5)
MAX_BACKOFF = timedelta(hours=24)


def jittered(interval: timedelta, rng: random.Random) -> timedelta:
    factor = 1.0 + rng.uniform(-JITTER_FRACTION, JITTER_FRACTION)
    return timedelta(seconds=interval.total_seconds() * factor)


def next_due_after_success(
    now: datetime, interval: timedelta, rng: random.Random, *, ttl_minutes: int | None = None
) -> datetime:
    """Next poll after a successful (or not-modified) fetch; never sooner than RSS `<ttl>`."""
    wait = jittered(interval, rng)
    if ttl_minutes is not None and ttl_minutes > 0:
        wait = max(wait, timedelta(minutes=min(ttl_minutes, 7 * 24 * 60)))
    return now + wait


def backoff(failures: int) -> timedelta:
    """5 min, 10 min, 20 min ... capped at 24 h, for the n-th consecutive failure."""
    exponent = max(0, min(failures - 1, 20))
    wait: timedelta = min(FIRST_BACKOFF * (2**exponent), MAX_BACKOFF)
    return wait


def next_due_after_failure(
    now: datetime, interval: timedelta, failures: int, rng: random.Random
) -> datetime:
    """Next poll after the `failures`-th consecutive failure: the longer of the interval and
    the backoff, jittered."""
    return now + jittered(max(interval, backoff(failures)), rng)
