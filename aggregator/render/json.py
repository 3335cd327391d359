"""The digest as JSON: a stable, documented shape for scripts."""

from __future__ import annotations

import json
from typing import Any

from aggregator.digest import Digest
from aggregator.models import EventView, StoredEntry


def _time(entry: StoredEntry) -> str:
    return entry.effective_time.isoformat()


def _member(entry: StoredEntry) -> dict[str, Any]:
    return {
        "entry_id": entry.id,
        "title": entry.title,
        "source": entry.feed_name,
        "group": entry.feed_group,
        "url": entry.url,
        "published": _time(entry),
        "join_level": str(entry.join_level),
        "similarity": entry.similarity,
    }


def event_to_dict(event: EventView) -> dict[str, Any]:
    return {
        "event_id": event.id,
        "title": event.canonical.title,
        "source": event.canonical.feed_name,
        "url": event.canonical.url,
        "published": _time(event.canonical),
        "first_seen": event.first_seen.isoformat(),
        "last_seen": event.last_seen.isoformat(),
        "sources": list(event.sources),
        "canonical_reason": event.canonical_reason,
        "canonical": _member(event.canonical),
        "also_reported_by": [_member(m) for m in event.others],
    }


def render_json(digest: Digest) -> str:
    document = {
        "generated_at": digest.generated_at.isoformat(),
        "since": digest.since.isoformat(),
        "total": digest.total,
        "events": [event_to_dict(e) for e in digest.events],
    }
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"
