"""What the store hands out besides the models, and how times are encoded: the same for
every backend (`sqlite`, `postgresql`).

Times are stored as ISO 8601 text in UTC with microseconds, so text order is time order
and both engines sort and compare them alike.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from aggregator.dedup.index import NO_TIME, to_microseconds
from aggregator.errors import StoreError
from aggregator.models import EventView, Reasons, StoredEntry, StoryEvent


def to_db_time(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetimes are not stored: every time is UTC")
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def from_db_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _microseconds(value: str) -> int:
    """A stored time as microseconds since the epoch (the index's unit)."""
    return to_microseconds(datetime.fromisoformat(value))


def microseconds_column(values: Sequence[str | None]) -> npt.NDArray[np.int64]:
    """Stored times as microseconds since the epoch, NO_TIME for none. When every time has
    the form `to_db_time` writes (UTC, microseconds: 32 characters ending in +00:00),
    numpy parses the text without its offset in bulk; otherwise one by one."""
    out = np.full(len(values), NO_TIME, dtype=np.int64)
    where = [i for i, value in enumerate(values) if value]
    texts = [value for value in values if value]
    if not texts:
        return out
    if {len(text) for text in texts} == {32} and {text[26:] for text in texts} == {"+00:00"}:
        out[where] = np.array([text[:26] for text in texts], dtype="datetime64[us]").view(np.int64)
    else:
        out[where] = [_microseconds(text) for text in texts]
    return out


def signature_matrix(blobs: Sequence[bytes], num_perm: int) -> npt.NDArray[np.uint32]:
    """(len(blobs), num_perm) uint32 from little-endian BLOBs: one join, one frombuffer."""
    joined = b"".join(blobs)
    if len(joined) != 4 * num_perm * len(blobs) or any(len(b) != 4 * num_perm for b in blobs):
        raise StoreError(
            f"stored signatures are not of {num_perm} values: run `aggregator reindex`"
        )
    matrix = np.frombuffer(joined, dtype="<u4").reshape(len(blobs), num_perm)
    return matrix.astype(np.uint32)  # native order, and writable (frombuffer's is not)


@dataclass(frozen=True, slots=True)
class FeedFetchState:
    """The stored state a fetch starts from."""

    etag: str | None
    last_modified: str | None
    effective_url: str | None  # where the feed moved (permanent redirects), if it did
    retired: str | None  # why it is no longer fetched, if it is not
    ttl_minutes: int | None = None
    skip_hours: frozenset[int] = frozenset()
    skip_days: frozenset[int] = frozenset()


def int_set(text: str | None) -> frozenset[int]:
    return frozenset(int(part) for part in (text or "").split(",") if part.strip().isdigit())


def int_text(values: Iterable[int]) -> str | None:
    return ",".join(str(value) for value in sorted(values)) or None


@dataclass(frozen=True, slots=True)
class ExistingEntry:
    """The parts of a stored entry that an update compares against."""

    id: int
    event_id: int | None
    content_key: str


@dataclass(frozen=True, slots=True)
class PruneResult:
    """What one retention run removed."""

    events: int = 0
    entries: int = 0
    tombstones: int = 0  # tombstones written or extended for the pruned entries
    expired: int = 0  # tombstones past their time, deleted
    entry_ids: tuple[int, ...] = ()  # the entries deleted


@dataclass(frozen=True, slots=True)
class StagedUpdate:
    """A feed update a fetch worker staged for the grouping leader: the feed's entries,
    encoded by `ingest.staged`, in the order they were staged."""

    id: int
    feed_id: int
    staged_at: datetime
    entries: bytes


@dataclass(frozen=True, slots=True)
class Lease:
    """A feed claimed by a fetch worker until `until`."""

    feed_id: int
    feed_name: str
    owner: str
    until: datetime


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """What the daemon (or a `run --once`) last wrote about itself."""

    pid: int
    command: str  # "run" or "run --once"
    started: datetime
    last_tick: datetime
    tick_seconds: float | None  # None for `run --once`


def stored_reasons(text: str | None) -> Reasons:
    """Deciding features as stored (a JSON list of [name, part]); () when none or unreadable."""
    if not text:
        return ()
    try:
        return tuple((str(name), float(part)) for name, part in json.loads(text))
    except (ValueError, TypeError):
        return ()


def required_time(text: str) -> datetime:
    when = from_db_time(text)
    assert when is not None
    return when


def event_view(
    row: dict[str, Any], members: list[StoredEntry], story: Sequence[StoryEvent] = ()
) -> EventView | None:
    """An EventView from an events row and its members; None while it has no canonical."""
    canonical = next((m for m in members if m.id == row["canonical_entry_id"]), None)
    first_seen = from_db_time(row["first_seen"])
    last_seen = from_db_time(row["last_seen"])
    if canonical is None or first_seen is None or last_seen is None:
        return None
    return EventView(
        id=int(row["id"]),
        canonical=canonical,
        others=tuple(m for m in members if m.id != canonical.id),
        first_seen=first_seen,
        last_seen=last_seen,
        canonical_reason=row["canonical_reason"] or "",
        read=row["read_at"] is not None,
        starred=row["starred_at"] is not None,
        story_id=int(row["story_id"] if row.get("story_id") is not None else row["id"]),
        story=tuple(event for event in story if event.id != int(row["id"])),
    )
