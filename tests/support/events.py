"""Stored entries and events built in memory, for the pure digest and render tests."""

from __future__ import annotations

from datetime import UTC, datetime

from aggregator.models import EventView, JoinLevel, StoredEntry

NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


def make_entry(
    entry_id: int,
    *,
    feed: str = "Feed A",
    group: str = "world",
    priority: int = 0,
    published: datetime | None = None,
    first_seen: datetime = NOW,
    title: str = "A title",
    text: str = "",
    html: str = "",
    url: str | None = None,
    author: str | None = None,
    level: JoinLevel = JoinLevel.FOUNDER,
    similarity: float | None = None,
    matched: int | None = None,
    rule: str | None = None,
) -> StoredEntry:
    """A StoredEntry as the store would return it, without any clean-up applied."""
    return StoredEntry(
        id=entry_id, feed_id=sum(map(ord, feed)), feed_name=feed, feed_group=group,
        feed_priority=priority, identity=f"guid:{entry_id}",
        url=url if url is not None else f"https://news.test/{entry_id}", title=title,
        text=text, html=html, author=author, published=published, first_seen=first_seen,
        event_id=None, join_level=level, similarity=similarity, matched_entry_id=matched,
        match_rule=rule,
    )  # fmt: skip


def make_event(event_id: int, *members: StoredEntry, reason: str = "only member") -> EventView:
    """An event whose canonical is the first member."""
    return EventView(
        id=event_id,
        canonical=members[0],
        others=tuple(members[1:]),
        first_seen=min(m.first_seen for m in members),
        last_seen=max(m.first_seen for m in members),
        canonical_reason=reason,
    )
