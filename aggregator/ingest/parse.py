"""Bytes and response headers -> ParsedFeed: RSS, Atom and RDF with feedparser, JSON Feed
with `jsonfeed`.

`parse_feed` is the pure function; `parse_worker.ParserPool` runs it in a separate process
under memory and time limits, which is how the pipeline calls it.

feedparser only ever receives `io.BytesIO(body)`: given a string it would fetch URLs
(no timeout, no size cap, private addresses) or read local files. Before it sees the bytes,
`prefilter` expands entity declarations under a budget (or refuses them), repairs numeric
character references that make it raise, and isolates the XML declaration from its cubic
encoding regex. Its own sanitiser is turned off (`sanitize_html=False`, 2-3x faster,
measured in GUIDE.md): what is displayed is sanitised by nh3 in `normalize`, and text fields
are stripped of markup there.

Entity expansion is bounded where it happens: feedparser converts the document to UTF-8,
then strips its DOCTYPE and re-declares the entities it deems safe, which its strict parser
(expat) and its loose fallback parser then expand (the loose one without any limit). That
step is replaced (`_replace_doctype_under_budget`, installed in `feedparser.api` at import):
the declarations are expanded under `prefilter`'s budget on the UTF-8 feedparser parses,
whatever the original encoding or junk around them, and neither parser receives a single
entity declaration. A declaration left that cannot be read is refused
(`entity_declarations`).

feedparser 6 can still raise on hostile inputs instead of setting `bozo`; every exception
becomes a ParseError with a stable reason (`parser_crash:<ExceptionType>`), so a hostile
feed fails alone. Reasons: `empty_body`, `not_a_feed`, `entity_declarations`,
`parser_crash:<Type>` (and, from the worker, `parse_timeout`, `parse_oom`).
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import feedparser
import feedparser.api

from aggregator.errors import ParseError
from aggregator.ingest.jsonfeed_reader import looks_like_json, parse_json_feed
from aggregator.ingest.normalize import MAX_FIELD_CHARS, struct_time_to_utc, valid_text
from aggregator.ingest.prefilter import (
    expand_declared,
    expand_entities,
    prefilter,
    repair_char_refs,
)
from aggregator.models import DEFAULT_MAX_ENTRIES, ParsedFeed, RawEntry
from aggregator.numbers import ascii_int

# Kept for callers of the first version; the configurable cap is `settings.max_entries`.
MAX_ENTRIES_PER_FEED = DEFAULT_MAX_ENTRIES
_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
# skipHours / skipDays live in the channel; looking further than this into the document
# for them would only cost time on a huge feed.
_SKIP_SEARCH_LIMIT = 1024 * 1024
_EPOCH = datetime.min.replace(tzinfo=UTC)
# The longest `<ttl>` kept, in minutes: the longest delay the schedule honours (7 days);
# a longer one is cut to it, a negative or unreadable one is ignored.
MAX_TTL_MINUTES = 7 * 24 * 60
# What feedparser's DOCTYPE step puts back in the document for the entities it keeps.
_REDECLARED = b"<!DOCTYPE feed [\n<!ENTITY"
_REDECLARED_END = b">\n]>"
_FIRST_ELEMENT = re.compile(rb"<\w")
_feedparser_replace_doctype = feedparser.api.replace_doctype


def _replace_doctype_under_budget(data: bytes) -> tuple[str | None, bytes, dict[str, str]]:
    """feedparser's `replace_doctype`, with every entity expanded here under the budget:
    returns (version, document without entity declarations, no entities for the loose
    parser). `data` is the UTF-8 feedparser converted the document to."""
    # A DOCTYPE and character references the byte-level pre-filter could not read (UTF-16).
    data = repair_char_refs(expand_entities(data))
    version, data, kept = _feedparser_replace_doctype(data)
    if kept:  # declarations feedparser found where `expand_entities` did not look
        start = data.find(_REDECLARED)
        end = data.find(_REDECLARED_END, start)
        if start < 0 or end < 0:
            raise ParseError("entity_declarations", "entity declarations that cannot be read")
        values = {name.encode(): value.encode() for name, value in kept.items()}
        rest = expand_declared(data[end + len(_REDECLARED_END) :], values)
        data = data[:start] + rest
    first = _FIRST_ELEMENT.search(data)
    if b"<!ENTITY" in data[: first.start() if first else len(data)]:
        raise ParseError("entity_declarations", "entity declarations that cannot be read")
    return version, data, {}


feedparser.api.replace_doctype = _replace_doctype_under_budget


def parse_feed(
    body: bytes,
    *,
    headers: Mapping[str, str] | None = None,
    location: str = "",
    max_entries: int = DEFAULT_MAX_ENTRIES,
) -> ParsedFeed:
    """Parse one feed document, keeping at most `max_entries` entries (the newest).

    Raises ParseError (`empty_body`, `not_a_feed`, `entity_declarations`,
    `parser_crash:<Type>`); never anything else.
    """
    if not body.strip():
        raise ParseError("empty_body", "the document is empty")
    headers = dict(headers or {})
    try:
        if looks_like_json(body, headers.get("content-type")):
            feed, total = parse_json_feed(body)
            return _capped(feed, total, max_entries)
        cleaned = prefilter(body)
        parsed = feedparser.parse(
            io.BytesIO(cleaned),
            response_headers=headers,
            sanitize_html=False,
            resolve_relative_uris=False,  # done by normalize, against the canonical base
        )
        feed, total = _to_parsed_feed(parsed)
        return _capped(_with_skips(feed, cleaned), total, max_entries)
    except ParseError:
        raise
    except MemoryError as exc:  # under the worker's RLIMIT_AS
        raise ParseError("parse_oom", "the parse ran out of memory") from exc
    except Exception as exc:  # feedparser raises arbitrary types on hostile input
        raise ParseError(f"parser_crash:{type(exc).__name__}", str(exc)[:200]) from exc


def _to_parsed_feed(parsed: Any) -> tuple[ParsedFeed, int]:
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
    return (
        ParsedFeed(
            title=_string(feed.get("title")),
            link=_string(feed.get("link")),
            entries=tuple(_raw_entry(e) for e in entries),
            ttl_minutes=_ttl_minutes(feed.get("ttl")),
            bozo_reason=bozo_reason,
        ),
        len(entries),
    )


def _capped(feed: ParsedFeed, total: int, max_entries: int) -> ParsedFeed:
    """At most `max_entries` entries: the newest by date, kept in document order."""
    entries = feed.entries
    if len(entries) > max_entries:
        entries = newest(entries, max_entries)
    return ParsedFeed(
        title=feed.title,
        link=feed.link,
        entries=entries,
        ttl_minutes=feed.ttl_minutes,
        bozo_reason=feed.bozo_reason,
        skip_hours=feed.skip_hours,
        skip_days=feed.skip_days,
        total_entries=total,
    )


def newest(entries: Sequence[RawEntry], limit: int) -> tuple[RawEntry, ...]:
    """The `limit` newest entries in their original order. Undated entries count as
    oldest; among equals the earlier in the document wins (feeds list newest first)."""
    ranked = sorted(
        range(len(entries)),
        key=lambda i: entries[i].published or entries[i].updated or _EPOCH,
        reverse=True,
    )
    # sorted() is stable, but reverse=True keeps equal keys in document order as well.
    keep = sorted(ranked[:limit])
    return tuple(entries[i] for i in keep)


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


def _with_skips(feed: ParsedFeed, body: bytes) -> ParsedFeed:
    """Add RSS `<skipHours>` and `<skipDays>`: feedparser keeps only the last value of each."""
    head = body[:_SKIP_SEARCH_LIMIT]
    hours = {
        hour
        for value in _element_values(head, b"skipHours", b"hour")
        if (hour := ascii_int(value, cap=24, max_chars=2)) is not None and hour < 24
    }
    days = {
        _DAYS.index(value.lower())
        for value in _element_values(head, b"skipDays", b"day")
        if value.lower() in _DAYS
    }
    if not hours and not days:
        return feed
    return ParsedFeed(
        title=feed.title,
        link=feed.link,
        entries=feed.entries,
        ttl_minutes=feed.ttl_minutes,
        bozo_reason=feed.bozo_reason,
        skip_hours=frozenset(hours),
        skip_days=frozenset(days),
    )


def _element_values(data: bytes, container: bytes, child: bytes) -> list[str]:
    """Text of each `<child>` inside the first `<container>`, found with `find` (linear)."""
    start = data.find(b"<" + container + b">")
    if start < 0:
        return []
    end = data.find(b"</" + container + b">", start)
    if end < 0:
        return []
    inner = data[start:end]
    values: list[str] = []
    open_tag, close_tag = b"<" + child + b">", b"</" + child + b">"
    position = 0
    while len(values) < 24:  # 24 hours, 7 days: more is junk
        begin = inner.find(open_tag, position)
        if begin < 0:
            break
        finish = inner.find(close_tag, begin)
        if finish < 0:
            break
        values.append(inner[begin + len(open_tag) : finish].decode("ascii", "replace").strip())
        position = finish
    return values


def _string(value: object) -> str | None:
    return valid_text(value) if isinstance(value, str) and value else None


def _ttl_minutes(value: object) -> int | None:
    """RSS `<ttl>` in minutes (ASCII digits only), at most `MAX_TTL_MINUTES`; None when
    absent, negative or unreadable."""
    if not isinstance(value, str):
        return None
    return ascii_int(value.strip(), cap=MAX_TTL_MINUTES, max_chars=MAX_FIELD_CHARS)
