"""The only place that reads the wall clock; everything else takes `now` as an argument."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    """The current time, timezone-aware in UTC, truncated to whole microseconds."""
    return datetime.now(UTC)
