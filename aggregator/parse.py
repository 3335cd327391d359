"""Bytes and response headers -> ParsedFeed, with feedparser.

feedparser only ever receives `io.BytesIO(body)`: given a string it would fetch URLs
(no timeout, no size cap, private addresses) or read local files. Its own sanitiser is
turned off (`sanitize_html=False`, 2-3x faster, measured in GUIDE.md): what is displayed is
sanitised by nh3 in `normalize`, and text fields are stripped of markup there.

feedparser 6 can raise on small hostile inputs instead of setting `bozo`; every exception
becomes a ParseError with a stable reason (`parser_crash:<ExceptionType>`), so a hostile
feed fails alone.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

import feedparser

from aggregator.errors import ParseError
from aggregator.models import ParsedFeed, RawEntry
from aggregator.normalize import struct_time_to_utc

# Cap on entries taken from one document: a feed of 100k items is an attack, not news.
MAX_ENTRIES_PER_FEED = 500


def parse_feed(
    body: bytes, *, headers: Mapping[str, str] | None = None, location: str = ""
) -> ParsedFeed:
    """Parse one feed document. Raises ParseError (`empty_body`, `not_a_feed`,
    `parser_crash:<Type>`); never anything else."""
    if not body.strip():
        raise ParseError("empty_body", "the document is empty")
    try:
        parsed = feedparser.parse(
            io.BytesIO(body),
            response_headers=dict(headers or {}),
            sanitize_html=False,
            resolve_relative_uris=False,  # done by normalize, against the canonical base
        )
        return _to_parsed_feed(parsed)
    except ParseError:
        raise
    except Exception as exc:  # feedparser raises arbitrary types on hostile input
        raise ParseError(f"parser_crash:{type(exc).__name__}", str(exc)[:200]) from exc


def _to_parsed_feed(parsed: Any) -> ParsedFeed:
    version = parsed.get("version") or ""
    entries = parsed.get("entries") or []
    bozo_reason = None
    if parsed.get("bozo"):
        exc = parsed.get("bozo_exception")
        bozo_reason = f"{type(exc).__name__}: {exc}"[:200] if exc else "bozo"
    if not version and not entries:
        # feedparser reports an HTML page or a JSON document as an empty, non-bozo feed.
        raise ParseError("not_a_feed", bozo_reason or "no RSS, Atom or RDF root element")
    feed = parsed.get("feed") or {}
    return ParsedFeed(
        title=_string(feed.get("title")),
        link=_string(feed.get("link")),
        entries=tuple(_raw_entry(e) for e in entries[:MAX_ENTRIES_PER_FEED]),
        ttl_minutes=_int_or_none(feed.get("ttl")),
        bozo_reason=bozo_reason,
    )


def _raw_entry(entry: Any) -> RawEntry:
    content = entry.get("content") or []
    content_html = "\n".join(_string(part.get("value")) or "" for part in content)
    author = _string(entry.get("author"))
    return RawEntry(
        guid=_string(entry.get("id")),
        link=_string(entry.get("link")),
        title=_string(entry.get("title")) or "",
        summary_html=_string(entry.get("summary")) or "",
        content_html=content_html,
        author=author,
        # dict.get: FeedParserDict.get maps a missing updated_parsed to published_parsed
        # (with a DeprecationWarning); we want each date only when the feed gave it.
        published=struct_time_to_utc(dict.get(entry, "published_parsed")),
        updated=struct_time_to_utc(dict.get(entry, "updated_parsed")),
    )


def _string(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _int_or_none(value: object) -> int | None:
    try:
        return int(str(value).strip()) if value is not None else None
    except ValueError:
        return None
