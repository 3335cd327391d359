"""JSON Feed 1.0 and 1.1 -> ParsedFeed (pure). feedparser 6 does not read JSON Feed.

Spec: https://www.jsonfeed.org/version/1.1/ (1.0 is the same without `authors`/`language`).
Values are checked for type and anything unexpected is ignored rather than trusted: a
title that is a list, a date that is a number or an item that is a string are skipped, not
crashes. Plain-text fields (`content_text`, `summary`) are HTML-escaped so that downstream
code can treat every body as HTML.
"""

from __future__ import annotations

import html
import json
from datetime import UTC, datetime
from typing import Any

from aggregator.errors import ParseError
from aggregator.ingest.normalize import sane_date, valid_text
from aggregator.models import ParsedFeed, RawEntry

VERSION_PREFIX = "https://jsonfeed.org/version/"
# Media types a JSON document may be served with; any of them makes a non-feed JSON
# document `not_a_feed` instead of something for feedparser to guess at.
JSON_MEDIA_TYPES = frozenset({"application/feed+json", "application/json"})
_MAX_INT_DIGITS = 64


def looks_like_json(body: bytes, content_type: str | None = None) -> bool:
    """True when the document is JSON rather than XML: served as JSON, or its first
    non-blank character is `{`."""
    if content_type is not None:
        media_type = content_type.split(";", 1)[0].strip().lower()
        if media_type in JSON_MEDIA_TYPES:
            return True
    head = body[:64].lstrip(b"\xef\xbb\xbf \t\r\n")
    return head.startswith(b"{")


def parse_json_feed(body: bytes) -> tuple[ParsedFeed, int]:
    """Parse a JSON Feed. Returns the feed (every item) and the item count.

    Raises ParseError `not_a_feed` for JSON that is not a JSON Feed (or not JSON).
    """
    try:
        document = json.loads(body, parse_int=_json_int)
    except (UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError is a ValueError
        raise ParseError("not_a_feed", f"invalid JSON: {exc}"[:200]) from exc
    if not isinstance(document, dict):
        raise ParseError("not_a_feed", "a JSON document that is not an object")
    version = document.get("version")
    if not isinstance(version, str) or not version.startswith(VERSION_PREFIX):
        raise ParseError("not_a_feed", "JSON without a jsonfeed.org version")
    items = document.get("items")
    if not isinstance(items, list):
        raise ParseError("not_a_feed", "JSON Feed without an items list")
    feed_author = _author(document)
    entries = tuple(_entry(item, feed_author) for item in items if isinstance(item, dict))
    return (
        ParsedFeed(
            title=_text(document.get("title")),
            link=_text(document.get("home_page_url")),
            entries=entries,
        ),
        len(entries),
    )


def _entry(item: dict[str, Any], feed_author: str | None) -> RawEntry:
    content_html = _text(item.get("content_html"))
    if content_html is None:
        content_text = _text(item.get("content_text"))
        content_html = _escaped(content_text) if content_text else None
    summary = _text(item.get("summary"))
    identifier = item.get("id")
    # 1.1 says `id` is a string; 1.0 feeds in the wild use numbers.
    guid = str(identifier) if isinstance(identifier, str | int) and identifier != "" else None
    return RawEntry(
        guid=guid,
        link=_text(item.get("url")) or _text(item.get("external_url")),
        title=_text(item.get("title")) or "",
        summary_html=_escaped(summary) if summary else "",
        content_html=content_html or "",
        author=_author(item) or feed_author,
        published=_date(item.get("date_published")),
        updated=_date(item.get("date_modified")),
    )


def _json_int(digits: str) -> int | str:
    # int() refuses more than 4,300 digits (and would take long before): such a number
    # (an item id) is kept as its digits, not allowed to fail the whole feed.
    return int(digits) if len(digits) <= _MAX_INT_DIGITS else digits


def _author(holder: dict[str, Any]) -> str | None:
    """`authors[0].name` (1.1), else `author.name` (1.0)."""
    authors = holder.get("authors")
    if isinstance(authors, list):
        for author in authors:
            if isinstance(author, dict) and _text(author.get("name")):
                return _text(author.get("name"))
    author = holder.get("author")
    if isinstance(author, dict):
        return _text(author.get("name"))
    return None


def _escaped(text: str) -> str:
    # Line breaks of plain text become paragraphs, so the text extractor keeps them.
    return "<br>".join(html.escape(line) for line in text.split("\n"))


def _text(value: object) -> str | None:
    # JSON can hold lone surrogates ("\udfff"): replaced, or storing the text would fail.
    return valid_text(value) if isinstance(value, str) and value.strip() else None


def _date(value: object) -> datetime | None:
    """An RFC 3339 date in UTC; None when absent, unreadable or out of range
    (`normalize.sane_date`)."""
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)  # RFC 3339 requires an offset; assume UTC
    return sane_date(parsed)
