"""Unit tests for aggregator.ingest.parse: feedparser over bytes, every failure a reason."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from aggregator.errors import ParseError
from aggregator.ingest.parse import MAX_ENTRIES_PER_FEED, newest, parse_feed
from aggregator.ingest.prefilter import MAX_ENTITY_EXPANSION, prefilter, repair_char_refs
from aggregator.models import RawEntry

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
        # GML srsName with a non-numeric EPSG code (feedparser issue #599).
        (b'<rss version="2.0" xmlns:georss="http://www.georss.org/georss" '
         b'xmlns:gml="http://www.opengis.net/gml"><channel><item><georss:where>'
         b'<gml:Point srsName="urn:ogc:def:crs:EPSG::abc"><gml:pos>1 2</gml:pos></gml:Point>'
         b"</georss:where></item></channel></rss>", "parser_crash:ValueError"),
        (b'{"items": []}', "not_a_feed"),
        (b"{not json", "not_a_feed"),
        (b"<?" + b'encoding="' * 4000, "not_a_feed"),  # cubic regex input, refused early
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
    assert feed.total_entries == MAX_ENTRIES_PER_FEED + 20


def test_entry_cap_is_configurable_and_keeps_the_newest() -> None:
    """With dates, the newest entries are kept (in document order), whatever their place."""
    items = b"".join(
        b"<item><title>t%d</title><pubDate>Tue, %02d Aug 2023 12:00:00 GMT</pubDate></item>"
        % (i, day)
        for i, day in enumerate([1, 20, 3, 25, 5])
    )
    feed = parse_feed(b'<rss version="2.0"><channel>' + items + b"</channel></rss>", max_entries=2)
    assert [e.title for e in feed.entries] == ["t1", "t3"]


def test_newest_without_dates_keeps_document_order() -> None:
    """Undated entries rank as oldest; among them the first in the document win."""
    entries = [RawEntry(None, None, f"t{i}", "", "", None, None, None) for i in range(5)]
    assert [e.title for e in newest(entries, 3)] == ["t0", "t1", "t2"]


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("&#xD800;", "\ufffd"),  # a surrogate (feedparser raises UnicodeEncodeError)
        ("&#x110000;", "\ufffd"),  # past U+10FFFF (ValueError)
        ("&#99999999999999999999;", "\ufffd"),  # OverflowError
        ("&#0;", ""),  # NUL: dropped
        ("&#x1b;", ""),  # ESC: dropped (terminal escape injection)
        ("&#233;", "\u00e9"),  # valid references are untouched
        ("&#" + "9" * 5000 + ";", "\ufffd"),  # int() refuses > 4,300 digits (ValueError)
        ("&#x" + "F" * 5000 + ";", "\ufffd"),
        ("&#" + "0" * 5000 + "233;", "\u00e9"),  # valid, but too long for int() as written
    ],
)
def test_invalid_character_references_are_repaired(reference: str, expected: str) -> None:
    """References that make feedparser raise, or that smuggle controls, are replaced."""
    body = (
        f'<rss version="2.0"><channel><item><title>a{reference}b</title></item></channel></rss>'
    ).encode()
    feed = parse_feed(body)
    assert feed.entries[0].title == "a" + expected + "b"


def test_repair_char_refs_leaves_valid_documents_alone() -> None:
    """A document without bad references comes back as the same bytes."""
    body = b"<rss><title>&#8217; &#x2014; &amp;#0;</title></rss>"
    assert repair_char_refs(body) == body


ENTITY_FEED = b"""<?xml version="1.0"?>
<!DOCTYPE rss [
<!ENTITY who "Agence">
<!ENTITY full "&who; France-Presse">
<!ENTITY xxe SYSTEM "file:///etc/hostname">
<!ENTITY path "C:\\data">
]>
<rss version="2.0"><channel><title>&full;</title>
<item><title>&xxe; &path;</title><description><![CDATA[&who;]]></description></item>
</channel></rss>"""


def test_entity_declarations_are_expanded_by_us() -> None:
    """Internal entities are expanded (nested too), external ones never resolved, CDATA kept
    literal; `C:\\data` no longer crashes feedparser (issue #599)."""
    feed = parse_feed(ENTITY_FEED)
    assert feed.title == "Agence France-Presse"
    assert feed.entries[0].title.endswith("C:\\data")
    assert "&xxe;" in feed.entries[0].title  # left unresolved, nothing read
    assert feed.entries[0].summary_html == "&who;"


@pytest.mark.parametrize(
    "doctype",
    [
        # Quadratic blow-up (reliability-anchors 4.8): one big entity, many references.
        b'<!DOCTYPE r [<!ENTITY a "' + b"x" * 10_000 + b'">]>',
        # Billion laughs: each level doubles ten times.
        b'<!DOCTYPE r [<!ENTITY l0 "lol">'
        + b"".join(b'<!ENTITY l%d "%s">' % (i, b"&l%d;" % (i - 1) * 10) for i in range(1, 10))
        + b"]>",
        b'<!DOCTYPE r [<!ENTITY a "&b;"><!ENTITY b "&a;">]>',  # a cycle
    ],
)
def test_entity_amplification_is_refused(doctype: bytes) -> None:
    """An expansion over the per-value or total budget is `entity_declarations`."""
    body = doctype + b'<rss version="2.0"><channel><title>' + b"&a;&l9;" * 5000 + b"</title>"
    with pytest.raises(ParseError) as raised:
        parse_feed(body + b"</channel></rss>")
    assert raised.value.reason == "entity_declarations"


def test_total_expansion_budget() -> None:
    """Many references to a small entity stop at MAX_ENTITY_EXPANSION added bytes."""
    count = MAX_ENTITY_EXPANSION // 100 + 10
    body = b'<!DOCTYPE r [<!ENTITY a "' + b"y" * 103 + b'">]><r>' + b"&a;" * count + b"</r>"
    with pytest.raises(ParseError) as raised:
        prefilter(body)
    assert raised.value.reason == "entity_declarations"


def test_long_first_line_gets_the_declaration_on_its_own_line() -> None:
    """A one-line feed keeps parsing; only a newline is added after the XML declaration."""
    body = b'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>' + (
        b"x" * 5000 + b"</title></channel></rss>"
    )
    assert prefilter(body) == body.replace(b"?><rss", b"?>\n<rss")
    assert parse_feed(body).title == "x" * 5000


def test_skip_hours_and_days_are_read() -> None:
    """Every <hour> and <day> is kept (feedparser keeps only the last of each)."""
    body = (
        b'<rss version="2.0"><channel><title>t</title><skipHours><hour>1</hour>'
        b"<hour>23</hour><hour>99</hour></skipHours><skipDays><day>Sunday</day>"
        b"<day>monday</day></skipDays><item><title>x</title></item></channel></rss>"
    )
    feed = parse_feed(body)
    assert feed.skip_hours == frozenset({1, 23})
    assert feed.skip_days == frozenset({6, 0})


JSON_FEED = b"""{
  "version": "https://jsonfeed.org/version/1.1",
  "title": "JSON news", "home_page_url": "https://example.org/",
  "authors": [{"name": "Desk"}],
  "items": [
    {"id": "1", "url": "https://example.org/1", "title": "First",
     "content_html": "<p>Hello</p>", "date_published": "2023-08-08T12:00:00+02:00"},
    {"id": 2, "external_url": "https://example.org/2", "content_text": "a < b\\nline",
     "summary": "S", "date_modified": "2023-08-09T10:00:00Z", "author": {"name": "Old"}},
    "not an item",
    {"title": ["wrong type"], "date_published": 12}
  ]
}"""


def test_json_feed_1_1() -> None:
    """JSON Feed items map to entries: ids, links, HTML or escaped text, dates in UTC."""
    feed = parse_feed(JSON_FEED)
    assert (feed.title, feed.link) == ("JSON news", "https://example.org/")
    first, second, third = feed.entries
    assert (first.guid, first.link, first.title) == ("1", "https://example.org/1", "First")
    assert first.content_html == "<p>Hello</p>" and first.author == "Desk"
    assert first.published == datetime(2023, 8, 8, 10, tzinfo=UTC)
    assert (second.guid, second.link) == ("2", "https://example.org/2")
    assert second.content_html == "a &lt; b<br>line" and second.summary_html == "S"
    assert second.updated == datetime(2023, 8, 9, 10, tzinfo=UTC)
    assert third.title == "" and third.published is None


def test_json_feed_1_0_author_and_media_type() -> None:
    """Version 1 feeds use `author`; the media type alone is enough to choose JSON."""
    body = (
        b'  {"version": "https://jsonfeed.org/version/1", "items": '
        b'[{"id": "a", "title": "T", "author": {"name": "Solo"}}]}'
    )
    feed = parse_feed(body, headers={"content-type": "application/feed+json; charset=utf-8"})
    assert feed.entries[0].author == "Solo"
