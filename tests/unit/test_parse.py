"""Unit tests for aggregator.parse: feedparser over bytes, every failure a reason."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from aggregator.errors import ParseError
from aggregator.parse import MAX_ENTRIES_PER_FEED, parse_feed

RSS = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>T</title><link>https://e.com/</link><ttl>90</ttl>
<item><title>One &amp; two</title><link>https://e.com/1</link><guid>g1</guid>
<description>&lt;p&gt;Body&lt;/p&gt;</description>
<pubDate>Tue, 08 Aug 2023 12:00:00 +0200</pubDate></item>
</channel></rss>"""


def test_rss_fields_and_dates_in_utc() -> None:
    """Title, link, guid, HTML summary, TTL; the date is converted to UTC."""
    feed = parse_feed(RSS)
    assert (feed.title, feed.link, feed.ttl_minutes) == ("T", "https://e.com/", 90)
    (entry,) = feed.entries
    assert (entry.guid, entry.link, entry.title) == ("g1", "https://e.com/1", "One & two")
    assert entry.summary_html == "<p>Body</p>"
    assert entry.published == datetime(2023, 8, 8, 10, tzinfo=UTC)
    assert entry.updated is None


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "empty_body"),
        (b"   \n", "empty_body"),
        (b"<html><body>Not a feed</body></html>", "not_a_feed"),
        (b'{"version": "https://jsonfeed.org/version/1.1"}', "not_a_feed"),
        # Inputs that make feedparser 6.0.14 raise (reliability-anchors.md, section 0.2).
        (b'<rss version="2.0"><channel><image></width></image></channel></rss>',
         "parser_crash:TypeError"),
        (b'<rss version="2.0"><channel><item><title>&#xD800;</title></item></channel></rss>',
         "parser_crash:UnicodeEncodeError"),
        (b'<rss version="2.0"><channel><item><title>&#99999999999999999999;</title>'
         b"</item></channel></rss>", "parser_crash:OverflowError"),
    ],
)  # fmt: skip
def test_failures_are_parse_errors_with_reasons(body: bytes, reason: str) -> None:
    """Every failure is a ParseError with a stable reason, never another exception."""
    with pytest.raises(ParseError) as raised:
        parse_feed(body)
    assert raised.value.reason == reason


def test_entry_cap() -> None:
    """A document with more entries than the cap keeps the first MAX_ENTRIES_PER_FEED."""
    items = b"".join(
        b"<item><title>t%d</title><guid>%d</guid></item>" % (i, i)
        for i in range(MAX_ENTRIES_PER_FEED + 20)
    )
    feed = parse_feed(b'<rss version="2.0"><channel>' + items + b"</channel></rss>")
    assert len(feed.entries) == MAX_ENTRIES_PER_FEED
    assert feed.entries[0].title == "t0"
