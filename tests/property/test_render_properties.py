"""Properties of the writers over arbitrary feed text (Hypothesis)."""

from __future__ import annotations

import io
import re
from xml.etree import ElementTree

import feedparser
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.digest import build_digest, make_query
from aggregator.render.atom import ATOM_NAMESPACE, render_atom
from aggregator.render.common import FeedInfo, one_line
from aggregator.render.html import Site, render_digest_page, render_event_page
from tests.support.events import NOW, make_entry, make_event
from tests.support.hostile import unsafe_markup

# Any Unicode text (surrogates excluded: SQLite cannot store them), mixed with the pieces
# that break markup, XML and terminals.
_PIECES = st.one_of(
    st.characters(exclude_categories=("Cs",)),
    st.sampled_from(["<", ">", "&", '"', "'", "]]>", "</", "\x00", "\x07", "\x1b", "\u202e"]),
    st.sampled_from(["\u2066", "\ufffe", "<script>", "javascript:", "&#58;", "\t", "\n"]),
)
FEED_TEXT = st.lists(_PIECES, max_size=30).map("".join)
URL_TEXT = st.one_of(FEED_TEXT, st.builds(lambda s: "javascript:" + s, FEED_TEXT))
FEED = FeedInfo(base_url="http://127.0.0.1:8080", self_path="/feed.atom")


@settings(max_examples=150, deadline=None)
@given(title=FEED_TEXT, source=FEED_TEXT, url=URL_TEXT, text=FEED_TEXT, html=FEED_TEXT)
def test_pages_stay_inert_for_any_text(
    title: str, source: str, url: str, text: str, html: str
) -> None:
    """Whatever the fields hold, the pages contain nothing runnable and no controls."""
    canonical = make_entry(1, title=title, feed=source, url=url, text=text, html=html)
    event = make_event(1, canonical, make_entry(2, title=title, feed=source, url=url))
    digest = build_digest([event], now=NOW, query=make_query(now=NOW, all_time=True))
    for page in (render_digest_page(digest, site=Site()), render_event_page(event, site=Site())):
        assert unsafe_markup(page) == []
        assert not re.search("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u202a-\u202e\u2066-\u2069]", page)


@settings(max_examples=150, deadline=None)
@given(title=FEED_TEXT, source=FEED_TEXT, author=FEED_TEXT)
def test_atom_is_well_formed_for_any_text(title: str, source: str, author: str) -> None:
    """feedparser re-reads the Atom with bozo false, and a strict XML parser gets the
    cleaned title back exactly. (feedparser's own title may differ: it "repairs" text
    that looks double-encoded, so "Â¡" comes back as "¡".)"""
    canonical = make_entry(1, title=title, feed=source, author=author or None)
    event = make_event(1, canonical, make_entry(2, feed=source))
    body = render_atom([event], feed=FEED, generated_at=NOW)
    parsed = feedparser.parse(io.BytesIO(body))
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert len(parsed.entries) == 1
    entry = ElementTree.fromstring(body).find(f"{{{ATOM_NAMESPACE}}}entry")
    assert entry is not None
    assert entry.findtext(f"{{{ATOM_NAMESPACE}}}title") == (one_line(title) or "(no title)")
