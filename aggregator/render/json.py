"""The digest as JSON: a stable, documented shape for scripts (and the web API).

Shape: `{"generated_at", "window", "total", "limit", "events": [event, ...]}` with events
in display order; each event carries its `group` and `rank` (1 = first shown). Text is
given as stored (cleaned at ingest); JSON escaping makes it safe to embed, and URLs are
kept only when they are http(s).
"""

from __future__ import annotations

import json
from typing import Any

from aggregator.digest import Digest, event_group, newest_story_time, top_priority
from aggregator.models import EventQuery, EventView, StoredEntry
from aggregator.render.common import how_joined, safe_url, story_events


def _time(entry: StoredEntry) -> str:
    return entry.effective_time.isoformat()


def _member(entry: StoredEntry) -> dict[str, Any]:
    return {
        "entry_id": entry.id,
        "title": entry.title,
        "source": entry.feed_name,
        "group": entry.feed_group,
        "url": safe_url(entry.url),
        "published": _time(entry),
        "first_seen": entry.first_seen.isoformat(),
        "join_level": str(entry.join_level),
        "similarity": entry.similarity,
        "matched_entry_id": entry.matched_entry_id,
        "match_rule": entry.match_rule,
        "how_joined": how_joined(entry, {}),  # names the matched entry by its id
    }


def event_to_dict(event: EventView, *, group: str | None = None) -> dict[str, Any]:
    """One event: the canonical item's fields at the top, then every copy."""
    return {
        "event_id": event.id,
        "group": group if group is not None else event.canonical.feed_group,
        "title": event.canonical.title,
        "source": event.canonical.feed_name,
        "url": safe_url(event.canonical.url),
        "published": _time(event.canonical),
        "first_seen": event.first_seen.isoformat(),
        "last_seen": event.last_seen.isoformat(),
        "sources": list(event.sources),
        "outlets": list(event.outlets),
        "priority": top_priority(event),
        "newest": newest_story_time(event).isoformat(),
        "canonical_reason": event.canonical_reason,
        "read": event.read,
        "starred": event.starred,
        "canonical": _member(event.canonical),
        "also_reported_by": [_member(m) for m in event.others],
        "story": _story(event),
    }


def _story(event: EventView) -> dict[str, Any]:
    """The event's story: its id and its other events, newest first."""
    return {
        "story_id": event.story_id or event.id,
        "other_events": [
            {"event_id": other.id, "title": other.title, "url": safe_url(other.url),
             "published": other.when.isoformat()}
            for other in story_events(event)
        ],
    }  # fmt: skip


def query_to_dict(query: EventQuery) -> dict[str, Any]:
    def iso(value: Any) -> str | None:
        return value.isoformat() if value is not None else None

    return {
        "arrived_since": iso(query.arrived_since),
        "published_from": iso(query.published_from),
        "published_until": iso(query.published_until),
        "groups": list(query.groups),
        "search": query.search,
        "state": query.state.value if query.state is not None else None,
    }


def digest_to_dict(digest: Digest) -> dict[str, Any]:
    events = []
    for rank, event in enumerate(digest.events, start=1):
        entry = event_to_dict(event, group=event_group(event, digest.query.groups))
        events.append({"rank": rank, **entry})
    return {
        "generated_at": digest.generated_at.isoformat(),
        "window": query_to_dict(digest.query),
        "description": digest.describe(),
        "total": digest.total,
        "limit": digest.limit,
        "events": events,
    }


def dumps(document: Any) -> str:
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"


def render_json(digest: Digest) -> str:
    return dumps(digest_to_dict(digest))
