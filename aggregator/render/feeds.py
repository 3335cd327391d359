"""The feed documents the web server publishes, as one table: route, media type, writer.

A new feed format is one row here; the server's routes and the pages' links follow it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from aggregator.models import EventView
from aggregator.render.atom import ATOM_MEDIA_TYPE, render_atom
from aggregator.render.common import FeedInfo, FeedLink
from aggregator.render.jsonfeed_writer import JSON_FEED_MEDIA_TYPE, render_json_feed


@dataclass(frozen=True, slots=True)
class FeedFormat:
    """One published feed document: where it is, what it is, and how it is written."""

    link: FeedLink
    content_type: str  # the HTTP Content-Type, with its charset
    write: Callable[[Sequence[EventView], FeedInfo, datetime], bytes]


FEED_FORMATS: tuple[FeedFormat, ...] = (
    FeedFormat(
        FeedLink("/feed.atom", "application/atom+xml", "Atom"),
        ATOM_MEDIA_TYPE,
        lambda events, info, now: render_atom(events, feed=info, generated_at=now),
    ),
    FeedFormat(
        FeedLink("/feed.json", "application/feed+json", "JSON Feed"),
        JSON_FEED_MEDIA_TYPE,
        lambda events, info, _now: render_json_feed(events, feed=info),
    ),
)
FEED_ROUTES: dict[str, FeedFormat] = {feed.link.route: feed for feed in FEED_FORMATS}
FEED_LINKS: tuple[FeedLink, ...] = tuple(feed.link for feed in FEED_FORMATS)
