"""Pure policy: what to do after a feed's fetch or parse failed.

The pipeline describes the failure (`Failure`: its reason code, the HTTP status and
`Retry-After` when there was a response, whether the feed was already retired) and the
feed's state; `after_failure` answers with a `FailureAction`, which the pipeline only
carries out (`Pipeline._failed`). The rules (`reliability-anchors.md`, section 6):

* an already retired feed was not requested: nothing to record;
* 410 Gone retires the feed: no further requests, even with `update --all`;
* 429 or 503 with a readable `Retry-After`: no request before then (clamped by
  `schedule.retry_after`); a 429 holds every feed of the same host until then too;
* anything else (and a 429/503 without a readable `Retry-After`): exponential backoff
  (`schedule.next_due_after_failure`).

Every input may come from a hostile publisher (the status and `Retry-After` are theirs):
`after_failure` never raises and always returns a due time in the future.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from aggregator import schedule

HTTP_GONE = 410
HTTP_TOO_MANY_REQUESTS = 429
RETIRED_GONE = "gone"  # the reason stored on a feed retired by a 410


@dataclass(frozen=True, slots=True)
class Failure:
    """What went wrong with one fetch of a feed."""

    reason: str  # the stable reason code (`timeout`, `http_503`, `internal:KeyError`, ...)
    status: int | None = None  # the HTTP status, when the server answered
    retry_after: str | None = None  # the raw `Retry-After` header, when there was one
    already_retired: bool = False  # the feed is retired: no request was made


@dataclass(frozen=True, slots=True)
class FailureAction:
    """What the pipeline does about a failure."""

    reason: str  # stored on the feed and reported
    record: bool  # count the failure and store `next_due` (False: the feed is untouched)
    retire: bool = False  # stop fetching the feed for good (its entries stay)
    next_due: datetime | None = None  # no request before then (None: retired)
    hold_host_until: datetime | None = None  # no feed of the same host before then


def after_failure(
    failure: Failure,
    *,
    now: datetime,
    interval: timedelta,
    failures: int,
    rng: random.Random,
) -> FailureAction:
    """What to do after `failure`, the `failures`-th consecutive one of a feed polled every
    `interval` (see the module docstring for the rules)."""
    if failure.already_retired:
        return FailureAction(reason=failure.reason, record=False)
    if failure.status == HTTP_GONE:
        return FailureAction(reason=RETIRED_GONE, record=True, retire=True)
    next_due = schedule.next_due_after_failure(now, interval, max(1, failures), rng)
    hold: datetime | None = None
    if failure.status in schedule.RETRY_AFTER_STATUSES:
        delay = schedule.retry_after(failure.retry_after, now)
        if delay is not None:
            next_due = schedule.next_due_after_retry_after(now, delay)
        if failure.status == HTTP_TOO_MANY_REQUESTS:
            hold = next_due
    return FailureAction(
        reason=failure.reason, record=True, next_due=next_due, hold_host_until=hold
    )
