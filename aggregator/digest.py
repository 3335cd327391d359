"""Select and rank the events of a window (pure).

An event belongs to the window when one of its members arrived in it: the digest answers
"what reached me since yesterday", which is what a morning reader wants even when a feed
publishes late or back-dates its items. Ranking: more distinct sources first (a story many
outlets carry matters more), then more copies, then the newest story (published time, or
arrival when the feed gives none).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from aggregator.models import EventView


@dataclass(frozen=True, slots=True)
class Digest:
    """The events of one window, ranked."""

    generated_at: datetime
    since: datetime
    events: tuple[EventView, ...]
    total: int  # events in the window before `limit`


def rank_key(event: EventView) -> tuple[float, ...]:
    newest = event.canonical.effective_time.timestamp()
    return (-len(event.sources), -len(event.members), -newest, -event.id)


def build_digest(
    events: Sequence[EventView], *, now: datetime, since: datetime, limit: int | None = None
) -> Digest:
    in_window = sorted((e for e in events if e.last_seen >= since), key=rank_key)
    shown = in_window if limit is None else in_window[:limit]
    return Digest(generated_at=now, since=since, events=tuple(shown), total=len(in_window))
