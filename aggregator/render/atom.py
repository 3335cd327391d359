"""The digest as an Atom 1.0 feed (RFC 4287): one entry per event.

Written with a serializer (`xml.sax.saxutils.XMLGenerator`), never a string template, so
`]]>`, `</title>`, `&` or `<` in a title are always character data. Characters that XML
1.0 forbids (controls, lone surrogates, U+FFFE/U+FFFF) are removed first: an escaped one
would still make the document ill-formed.

Each entry: the canonical item's title, link (rel="alternate") and date; every other copy
as a rel="related" link titled with its source; the event page as the entry id (stable
for as long as the database lives); the HTML body lists the copies and links to why they
are grouped.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from xml.sax.saxutils import XMLGenerator
from xml.sax.xmlreader import AttributesImpl

from aggregator import PROJECT_URL, __version__
from aggregator.models import EventView
from aggregator.render.common import FeedInfo, one_line, safe_url
from aggregator.render.html import render_entry_html

ATOM_NAMESPACE = "http://www.w3.org/2005/Atom"
ATOM_MEDIA_TYPE = "application/atom+xml; charset=utf-8"

# Everything outside XML 1.0's Char production (tab, newline and CR are allowed).
_NOT_XML_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(text: str) -> str:
    """`text` without the characters XML 1.0 cannot carry."""
    return _NOT_XML_CHAR.sub("", text)


def atom_time(value: datetime) -> str:
    """RFC 3339 in UTC with a Z, to the second."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Writer:
    """Elements on top of XMLGenerator, with every string made XML-safe."""

    def __init__(self) -> None:
        self.buffer = io.BytesIO()
        self.xml = XMLGenerator(self.buffer, encoding="utf-8", short_empty_elements=True)

    def start(self, name: str, **attributes: str) -> None:
        self.xml.startElement(name, AttributesImpl({k: xml_text(v) for k, v in attributes.items()}))

    def end(self, name: str) -> None:
        self.xml.endElement(name)

    def element(self, name: str, text: str = "", **attributes: str) -> None:
        self.start(name, **attributes)
        if text:
            self.xml.characters(xml_text(text))
        self.end(name)

    def newline(self) -> None:
        self.xml.ignorableWhitespace("\n")


AtomWriter = _Writer  # for the Google Reader API's Atom streams (aggregator.greader)


def render_atom(events: Sequence[EventView], *, feed: FeedInfo, generated_at: datetime) -> bytes:
    """The Atom document of `events` (newest first). The same events always give the same
    bytes: the feed's `updated` is the newest event's, not the time of the request, so an
    ETag of the body is a real validator."""
    updated = max((event.last_seen for event in events), default=generated_at)
    out = _Writer()
    out.xml.startDocument()
    out.start("feed", xmlns=ATOM_NAMESPACE)
    out.newline()
    out.element("id", feed.self_url)
    out.element("title", feed.title)
    out.element("subtitle", feed.description)
    out.element("updated", atom_time(updated))
    out.element("link", rel="self", type="application/atom+xml", href=feed.self_url)
    out.element("link", rel="alternate", type="text/html", href=feed.home_url)
    out.element("generator", "aggregator", uri=PROJECT_URL, version=__version__)
    out.start("author")
    out.element("name", "aggregator")
    out.end("author")
    out.newline()
    for event in events:
        _entry(out, event, feed)
        out.newline()
    out.end("feed")
    out.xml.endDocument()
    return out.buffer.getvalue()


def _entry(out: _Writer, event: EventView, feed: FeedInfo) -> None:
    canonical = event.canonical
    event_url = feed.event_url(event.id)
    out.start("entry")
    out.element("id", event_url)
    out.element("title", xml_text(one_line(canonical.title)) or "(no title)", type="text")
    out.element("published", atom_time(canonical.effective_time))
    out.element("updated", atom_time(event.last_seen))
    out.start("author")
    out.element("name", one_line(canonical.author or canonical.feed_name) or "unknown")
    out.end("author")
    out.element("category", term=one_line(canonical.feed_group))
    link = safe_url(canonical.url)
    out.element("link", rel="alternate", type="text/html", href=link or event_url)
    for member in event.others:
        related = safe_url(member.url)
        if related:
            out.element("link", rel="related", href=related, title=one_line(member.feed_name))
    content = render_entry_html(event, event_url=event_url, site=feed)
    out.element("content", str(content), type="html")
    out.end("entry")
