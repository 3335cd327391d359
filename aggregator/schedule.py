"""Pure timing: when is a feed due next.

Politeness rules (`reliability-anchors.md`, section 6), each a function of its inputs:

* After a success: the feed's interval with +-10% jitter (jitter spreads feeds that share an
  interval, so a thousand feeds added at once do not hit the network in the same second
  forever after), never sooner than what the publisher asked for: RSS `<ttl>`,
  `Cache-Control: max-age` or `Expires` (each capped at `MAX_PUBLISHER_DELAY`). A due time
  inside the feed's `<skipHours>`/`<skipDays>` moves to the first allowed hour.
* After a 429 or 503 with `Retry-After` (delta-seconds or an HTTP date): exactly that,
  clamped to [1 min, 7 days]; the same hold applies to every feed of the host on a 429.
* After any other failure (404, 5xx, timeouts, refused connections, parse failures):
  exponential backoff from 5 min doubling to 24 h, with "equal jitter" (between half and
  all of the step, so feeds failing together spread out), never sooner than the interval.
  A success resets it (the failure count goes back to 0).
* `FAILING_AFTER` consecutive failures make a feed "failing" in listings.
"""

from __future__ import annotations

import email.utils
import random
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from aggregator.numbers import ascii_int

# +-10% of the interval: enough to de-synchronise feeds, small enough to stay predictable.
JITTER_FRACTION = 0.1
FIRST_BACKOFF = timedelta(minutes=5)
MAX_BACKOFF = timedelta(hours=24)
# Retry-After bounds: sooner than a minute is a retry storm; a server asking for more than
# a week is treated as asking for a week (the feed still gets checked now and then).
MIN_RETRY_AFTER = timedelta(minutes=1)
MAX_RETRY_AFTER = timedelta(days=7)
# The longest a publisher's <ttl>, max-age or Expires can push the next poll out: the
# longest interval the config accepts.
MAX_PUBLISHER_DELAY = timedelta(days=7)
# Consecutive failures after which a feed is shown as failing (Miniflux stops at 3 too).
FAILING_AFTER = 3
# Statuses whose Retry-After we honour (RFC 9110 section 10.2.3; RFC 6585 section 4).
RETRY_AFTER_STATUSES = frozenset({429, 503})

_MAX_AGE = re.compile(
    r"(?:^|,)\s*max-age\s*=\s*\"?([0-9]{1,64})\"?\s*(?:,|$)", re.IGNORECASE | re.ASCII
)
_NO_CACHE = re.compile(r"(?:^|,)\s*(?:no-cache|no-store)\s*(?:,|=|$)", re.IGNORECASE)
_DEFAULT_PORTS = {"http": 80, "https": 443}
# Publisher numbers (delta-seconds, max-age) are read up to this many characters; longer
# is junk. Values are capped at a year of seconds: every delay is clamped far below it.
_MAX_DELAY_SECONDS = 366 * 24 * 3600
_HTTP_SPACE = " \t\r\n"
# HTTP dates outside this range are unreadable (a year-1 or year-9999 date would overflow
# the arithmetic that follows, and no server means either).
EARLIEST_HTTP_DATE = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_HTTP_DATE = datetime(2200, 1, 1, tzinfo=UTC)


def jittered(interval: timedelta, rng: random.Random) -> timedelta:
    factor = 1.0 + rng.uniform(-JITTER_FRACTION, JITTER_FRACTION)
    return timedelta(seconds=interval.total_seconds() * factor)


def next_due_after_success(
    now: datetime,
    interval: timedelta,
    rng: random.Random,
    *,
    ttl_minutes: int | None = None,
    publisher_delay: timedelta | None = None,
    skip_hours: frozenset[int] = frozenset(),
    skip_days: frozenset[int] = frozenset(),
) -> datetime:
    """Next poll after a successful (or not-modified) fetch: the jittered interval, never
    sooner than RSS `<ttl>` or `publisher_delay` (from `cache_delay`), outside the skipped
    hours and days."""
    wait = jittered(interval, rng)
    if ttl_minutes is not None and ttl_minutes > 0:
        longest = int(MAX_PUBLISHER_DELAY.total_seconds() // 60)  # timedelta overflows past 10^12
        wait = max(wait, timedelta(minutes=min(ttl_minutes, longest)))
    if publisher_delay is not None:
        wait = max(wait, min(publisher_delay, MAX_PUBLISHER_DELAY))
    return outside_skipped(now + wait, skip_hours=skip_hours, skip_days=skip_days)


def outside_skipped(
    due: datetime, *, skip_hours: frozenset[int], skip_days: frozenset[int]
) -> datetime:
    """`due`, or the start of the first hour after it that RSS `<skipHours>` (UTC hours) and
    `<skipDays>` (Monday = 0) allow. A feed that skips every hour or every day is polled
    anyway: the publisher cannot have meant "never"."""
    if len(skip_hours) >= 24 or len(skip_days) >= 7 or not (skip_hours or skip_days):
        return due
    utc = due.astimezone(UTC)
    moved = utc
    for _ in range(24 * 7):
        if moved.hour not in skip_hours and moved.weekday() not in skip_days:
            return moved if moved is utc else moved.astimezone(due.tzinfo)
        moved = moved.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    return due


def cache_delay(headers: Mapping[str, str], now: datetime) -> timedelta | None:
    """How long the response may be cached: `Cache-Control: max-age`, else `Expires`
    (RFC 9111 section 5.2.2.1, 5.3), at most `MAX_PUBLISHER_DELAY`. None without either,
    with no-cache/no-store, or when unreadable; never raises."""
    control = headers.get("cache-control") or ""
    if _NO_CACHE.search(control):
        return None
    match = _MAX_AGE.search(control)
    if match is not None:
        seconds = ascii_int(match.group(1), cap=_MAX_DELAY_SECONDS)
        if seconds is None or seconds <= 0:
            return None
        return min(timedelta(seconds=min(seconds, _MAX_DELAY_SECONDS)), MAX_PUBLISHER_DELAY)
    expires = _http_date(headers.get("expires"))
    if expires is not None and expires > now:
        return min(expires - now, MAX_PUBLISHER_DELAY)
    return None


def retry_after(value: str | None, now: datetime) -> timedelta | None:
    """A `Retry-After` value (delta-seconds or HTTP date) as a delay clamped to
    [MIN_RETRY_AFTER, MAX_RETRY_AFTER]; None when absent or unreadable (`-1`, junk, digits
    other than ASCII 0-9 such as `²`). Never raises, whatever the publisher sent."""
    if not value:
        return None
    text = value.strip(_HTTP_SPACE)
    seconds = ascii_int(text, cap=_MAX_DELAY_SECONDS)
    if seconds is not None:
        delay = timedelta(seconds=min(seconds, _MAX_DELAY_SECONDS))
    else:
        when = _http_date(text)
        if when is None:
            return None
        delay = when - now
    return min(max(delay, MIN_RETRY_AFTER), MAX_RETRY_AFTER)


def backoff(failures: int) -> timedelta:
    """The step for the n-th consecutive failure: 5 min, 10 min, 20 min ... capped at 24 h."""
    exponent = max(0, min(failures - 1, 20))
    wait: timedelta = min(FIRST_BACKOFF * (2**exponent), MAX_BACKOFF)
    return wait


def next_due_after_failure(
    now: datetime, interval: timedelta, failures: int, rng: random.Random
) -> datetime:
    """Next poll after the `failures`-th consecutive failure: the backoff step with equal
    jitter (half to all of it, at most 24 h), never sooner than the jittered interval."""
    step = backoff(failures)
    wait = timedelta(seconds=step.total_seconds() * rng.uniform(0.5, 1.0))
    return now + max(jittered(interval, rng), wait)


def next_due_after_retry_after(now: datetime, delay: timedelta) -> datetime:
    """The server said when (429/503 with Retry-After): no request before then."""
    return now + min(max(delay, MIN_RETRY_AFTER), MAX_RETRY_AFTER)


def is_failing(failures: int) -> bool:
    """Whether a feed with `failures` consecutive failures is shown as failing."""
    return failures >= FAILING_AFTER


def host_key(url: str | None) -> str | None:
    """`host:port` of an http(s) URL (what "the same host" means for per-host holds and
    limits), None for anything else."""
    if not url:
        return None
    try:
        parts = urlsplit(url)
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme.lower())
    except ValueError:
        return None
    if not parts.hostname or port is None:
        return None
    return f"{parts.hostname}:{port}"


def _http_date(value: str | None) -> datetime | None:
    """An HTTP date (RFC 9110 section 5.6.7, and the obsolete forms `email.utils` reads)
    in UTC, between `EARLIEST_HTTP_DATE` and `LATEST_HTTP_DATE`; None otherwise."""
    if not value or len(value) > 64:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value.strip())
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)  # HTTP dates are GMT
        parsed = parsed.astimezone(UTC)
    except Exception:  # a hostile date: TypeError, ValueError, OverflowError, IndexError...
        return None
    return parsed if EARLIEST_HTTP_DATE <= parsed < LATEST_HTTP_DATE else None
