"""Absurd values a publisher sends are clamped or dropped and the feed is kept: numbers
past what SQLite or C can hold, dates of year 1 or 9999, lone surrogates in JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from aggregator.ingest.normalize import normalize_entry
from aggregator.ingest.parse import MAX_TTL_MINUTES, parse_feed


def rss(channel: str = "", item: str = "") -> bytes:
    return (
        f'<rss version="2.0"><channel><title>T</title>{channel}'
        f"<item><title>one two three four</title><guid>1</guid>{item}</item></channel></rss>"
    ).encode()


@pytest.mark.parametrize(
    ("ttl", "expected"),
    [("60", 60), ("10000000000000", MAX_TTL_MINUTES), ("1" + "0" * 20, MAX_TTL_MINUTES),
     ("9" * 5000, MAX_TTL_MINUTES), ("-5", None), ("²", None), ("1e9", None), ("", None)],
)  # fmt: skip
def test_ttl_is_clamped_or_dropped(ttl: str, expected: int | None) -> None:
    """`<ttl>` is read in ASCII digits and cut to 7 days; negative or junk is ignored."""
    assert parse_feed(rss(f"<ttl>{ttl}</ttl>")).ttl_minutes == expected


@pytest.mark.parametrize(
    "date",
    ["Mon, 01 Jan 0001 00:00:00 GMT", "Fri, 31 Dec 9999 23:59:59 GMT",
     "Wed, 31 Dec 1969 00:00:00 +2359", "Sat, 01 Jan 99999 00:00:00 GMT"],
)  # fmt: skip
def test_absurd_entry_dates_are_dropped(date: str) -> None:
    """Year 1, year 9999 and beyond: the entry is kept without that date."""
    (raw,) = parse_feed(rss(item=f"<pubDate>{date}</pubDate>")).entries
    entry = normalize_entry(raw)
    assert entry.published is None and entry.updated is None


def test_a_normal_date_is_kept() -> None:
    """Dates of real items are untouched."""
    (raw,) = parse_feed(rss(item="<pubDate>Tue, 08 Aug 2023 10:00:00 GMT</pubDate>")).entries
    assert normalize_entry(raw).published == datetime(2023, 8, 8, 10, tzinfo=UTC)


def test_skip_hours_in_other_digits_are_ignored() -> None:
    """`<hour>²</hour>` and 5,000-digit hours are not hours; the feed still parses."""
    channel = "<skipHours><hour>²</hour><hour>" + "9" * 5000 + "</hour><hour>3</hour></skipHours>"
    assert parse_feed(rss(channel)).skip_hours == frozenset({3})


def test_lone_surrogates_in_json_feed_are_replaced() -> None:
    """`"\\udfff"` in any string of a JSON Feed becomes U+FFFD: the text can be stored."""
    body = (
        '{"version": "https://jsonfeed.org/version/1.1", "title": "feed \\udfff",'
        ' "home_page_url": "https://example.com/\\ud800",'
        ' "items": [{"id": "\\ud800", "title": "a\\udfffb", "content_text": "x\\udc00y",'
        ' "authors": [{"name": "\\udbff"}], "url": "https://example.com/\\udfff",'
        ' "date_published": "0001-01-01T00:00:00+23:59"}, {"id": ' + "7" * 5000 + "}]}"
    ).encode()
    parsed = parse_feed(body)
    assert parsed.title == "feed \ufffd"
    entry = normalize_entry(parsed.entries[0], feed_link=parsed.link)
    assert entry.title == "a\ufffdb" and "x\ufffdy" in entry.text
    for value in (parsed.title, parsed.link, entry.title, entry.text, entry.html, entry.guid,
                  entry.author, entry.url, entry.identity):  # fmt: skip
        json.dumps(value, ensure_ascii=False).encode("utf-8")  # no surrogate left
    assert entry.published is None
    assert parsed.entries[1].guid == "7" * 5000
