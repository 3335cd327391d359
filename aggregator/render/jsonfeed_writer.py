"""The digest as a JSON Feed 1.1 (https://jsonfeed.org/version/1.1): one item per event.

The other copies of a story have no standard field, so they go in the `_aggregator`
extension object (extension keys start with an underscore; readers ignore what they do
not know), next to the same list in `content_html` that every reader shows.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from aggregator.models import EventView
from aggregator.render.common import FeedInfo, how_joined, one_line, safe_url, story_events
from aggregator.render.html import render_entry_html

JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"
JSON_FEED_MEDIA_TYPE = "application/feed+json; charset=utf-8"


def _time(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="seconds")


def _item(event: EventView, feed: FeedInfo) -> dict[str, Any]:
    canonical = event.canonical
    event_url = feed.event_url(event.id)
    item: dict[str, Any] = {
        "id": event_url,
        "url": safe_url(canonical.url) or event_url,
        "title": one_line(canonical.title) or "(no title)",
        "content_html": str(render_entry_html(event, event_url=event_url, site=feed)),
        "date_published": _time(canonical.effective_time),
        "date_modified": _time(event.last_seen),
        "authors": [{"name": one_line(canonical.author or canonical.feed_name) or "unknown"}],
        "tags": [one_line(canonical.feed_group)],
        "_aggregator": {
            "event_id": event.id,
            "event_url": event_url,
            "sources": [one_line(name) for name in event.sources],
            "canonical_reason": one_line(event.canonical_reason),
            "also_reported_by": [
                {
                    "source": one_line(member.feed_name),
                    "title": one_line(member.title),
                    "url": safe_url(member.url),
                    "date_published": _time(member.effective_time),
                    "how_joined": how_joined(member, {}),
                }
                for member in event.others
            ],
            "story": {
                "story_id": event.story_id or event.id,
                "other_events": [
                    {
                        "event_url": feed.event_url(other.id),
                        "title": one_line(other.title),
                        "url": safe_url(other.url),
                        "date_published": _time(other.when),
                    }
                    for other in story_events(event)
                ],
            },
        },
    }
    return item


def render_json_feed(events: Sequence[EventView], *, feed: FeedInfo) -> bytes:
    """The JSON Feed of `events` (newest first); deterministic for the same events."""
    document = {
        "version": JSON_FEED_VERSION,
        "title": feed.title,
        "home_page_url": feed.home_url,
        "feed_url": feed.self_url,
        "description": feed.description,
        "authors": [{"name": "aggregator"}],
        "items": [_item(event, feed) for event in events],
    }
    return (json.dumps(document, ensure_ascii=False, indent=2) + "\n").encode("utf-8")
