"""Events as Google Reader items (pure): the JSON of `stream/contents` and
`stream/items/contents`, and the Atom of `/reader/atom/<stream>` (newsboat's FeedHQ mode).

An item is an event: the canonical copy's title, link and content, then an "Also
reported by" block linking every other copy (`render.html.render_entry_html`, the body of
our own feeds); its `origin` is the canonical copy's feed; its categories are the reading
list, the label of every group that carried a copy, and its read and starred states.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aggregator import PROJECT_URL, __version__
from aggregator.greader.ids import (
    FRESH,
    LABEL_PREFIX,
    READ,
    READING_LIST,
    STARRED,
    long_item_id,
    to_usec,
)
from aggregator.models import EventView, FeedState
from aggregator.render.atom import ATOM_NAMESPACE, AtomWriter, atom_time, xml_text
from aggregator.render.common import FeedInfo, one_line, safe_url
from aggregator.render.html import render_entry_html

GR_NAMESPACE = "http://www.google.com/schemas/reader/atom/"
GR_SCHEME = "http://www.google.com/reader/"  # the scheme newsboat reads states from


@dataclass(frozen=True, slots=True)
class Site:
    """What item documents need from the server: its address and the feeds by id."""

    feed: FeedInfo  # base URL for event pages ("why these are grouped")
    feeds: Mapping[int, FeedState]
    images: bool = False


def feed_stream_id(feed_id: int) -> str:
    return f"feed/{feed_id}"


def feed_url(state: FeedState) -> str:
    """The address a feed is read from, as a subscription's `url`."""
    return state.effective_url or state.location


def categories(event: EventView) -> list[str]:
    """The item's tags: reading list, its groups' labels, its states."""
    tags = [READING_LIST]
    groups = dict.fromkeys(one_line(member.feed_group) for member in event.members)
    tags += [LABEL_PREFIX + group for group in groups if group]
    tags.append(READ if event.read else FRESH)
    if event.starred:
        tags.append(STARRED)
    return tags


def _content(event: EventView, site: Site) -> str:
    url = site.feed.event_url(event.id)
    return str(
        render_entry_html(event, event_url=url, site=site.feed, full_text=True, images=site.images)
    )


def site_url(state: FeedState) -> str:
    """The site a feed belongs to (its `link`), as a subscription's `htmlUrl`; "" if none."""
    return safe_url(state.link) or ""


def _origin(event: EventView, site: Site) -> dict[str, str]:
    """The canonical copy's feed, named as the config names it (as the digest does)."""
    canonical = event.canonical
    origin = {
        "streamId": feed_stream_id(canonical.feed_id), "title": one_line(canonical.feed_name)
    }  # fmt: skip
    state = site.feeds.get(canonical.feed_id)
    if state is not None and (html_url := site_url(state)):
        origin["htmlUrl"] = html_url
    return origin


def item_json(event: EventView, site: Site) -> dict[str, Any]:
    """One event as a Google Reader item."""
    canonical = event.canonical
    link = safe_url(canonical.url) or site.feed.event_url(event.id)
    published = int(canonical.effective_time.timestamp())
    return {
        "id": long_item_id(event.id),
        "crawlTimeMsec": str(to_usec(event.first_seen) // 1000),
        "timestampUsec": str(to_usec(event.first_seen)),
        "published": published,
        "updated": int(event.last_seen.timestamp()),
        "title": one_line(canonical.title) or "(no title)",
        "author": one_line(canonical.author or canonical.feed_name),
        "canonical": [{"href": link}],
        "alternate": [{"href": link, "type": "text/html"}],
        "categories": categories(event),
        "origin": _origin(event, site),
        "summary": {"direction": "ltr", "content": _content(event, site)},
    }


def items_document(
    stream_id: str, title: str, events: Sequence[EventView], site: Site, now: datetime,
    continuation: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """The JSON of stream/contents and stream/items/contents."""
    document: dict[str, Any] = {
        "direction": "ltr",
        "id": stream_id,
        "title": title,
        "self": [{"href": site.feed.self_url}],
        "updated": int(now.timestamp()),
        "items": [item_json(event, site) for event in events],
    }
    if continuation:
        document["continuation"] = continuation
    return document


def _label(tag: str) -> str:
    return tag.rsplit("/", 1)[-1]


def atom_document(
    stream_id: str, title: str, events: Sequence[EventView], site: Site,
    continuation: str | None = None,
) -> bytes:  # fmt: skip
    """A stream in Google Reader's Atom form: each entry's id is the long item id, its
    states `category` elements in Google's scheme (newsboat reads `read`, `fresh`), the
    canonical copy's feed its `source`. The same events give the same bytes (no request
    time inside), so the server's ETag lets newsboat's conditional GET work."""
    updated = max((event.last_seen for event in events), default=None)
    out = AtomWriter()
    out.xml.startDocument()
    out.start("feed", **{"xmlns": ATOM_NAMESPACE, "xmlns:gr": GR_NAMESPACE})
    out.newline()
    out.element("generator", "aggregator", uri=PROJECT_URL, version=__version__)
    out.element("id", f"tag:google.com,2005:reader/{stream_id}")
    out.element("title", one_line(title) or stream_id, type="text")
    if continuation:
        out.element("gr:continuation", continuation)
    out.element("link", rel="self", href=site.feed.self_url)
    out.element("link", rel="alternate", type="text/html", href=site.feed.home_url)
    if updated is not None:
        out.element("updated", atom_time(updated))
    out.newline()
    for event in events:
        _atom_entry(out, event, site)
        out.newline()
    out.end("feed")
    out.xml.endDocument()
    return out.buffer.getvalue()


def _atom_entry(out: AtomWriter, event: EventView, site: Site) -> None:
    canonical = event.canonical
    event_url = site.feed.event_url(event.id)
    crawl = str(to_usec(event.first_seen) // 1000)
    out.start("entry", **{"gr:crawl-timestamp-msec": crawl})
    out.element("id", long_item_id(event.id), **{"gr:original-id": event_url})
    for tag in categories(event):
        # A state's label is what newsboat reads (`read`, `fresh`); a group's is left
        # out, so that a group named "read" cannot pass for the state.
        labelled = {} if tag.startswith(LABEL_PREFIX) else {"label": _label(tag)}
        out.element("category", term=tag, scheme=GR_SCHEME, **labelled)
    out.element("title", xml_text(one_line(canonical.title)) or "(no title)", type="text")
    out.element("published", atom_time(canonical.effective_time))
    out.element("updated", atom_time(event.last_seen))
    out.element(
        "link", rel="alternate", type="text/html", href=safe_url(canonical.url) or event_url
    )
    for member in event.others:
        if related := safe_url(member.url):
            out.element("link", rel="related", href=related, title=one_line(member.feed_name))
    out.element("content", _content(event, site), type="html")
    out.start("author")
    out.element("name", one_line(canonical.author or canonical.feed_name) or "unknown")
    out.end("author")
    origin = _origin(event, site)
    out.start("source", **{"gr:stream-id": origin["streamId"]})
    out.element("id", f"tag:google.com,2005:reader/{origin['streamId']}")
    out.element("title", origin["title"], type="text")
    if "htmlUrl" in origin:
        out.element("link", rel="alternate", type="text/html", href=origin["htmlUrl"])
    out.end("source")
    out.end("entry")
