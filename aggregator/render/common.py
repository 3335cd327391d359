"""Formatting shared by the writers: times, one-line text, safe links, explanations.

Everything that comes from a feed is hostile, even after the clean-up at ingest: the
writers pass every text through `one_line` (control, bidi and zero-width characters
removed) and every link through `safe_url` (http and https only) at the last moment, so a
database written by an older or buggier version cannot smuggle anything through.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from aggregator.dedup.event_model import decided_by
from aggregator.ingest.normalize import clean_text
from aggregator.models import EventView, JoinLevel, StoredEntry, StoryEvent

# Schemes a rendered link may have. Item links are web pages: no mailto, no javascript:,
# data:, vbscript:, file: (feedparser keeps those verbatim in link fields).
LINK_SCHEMES = frozenset({"http", "https"})
# Length of the text excerpt under a title: about two lines of a page or a terminal.
SNIPPET_CHARS = 280
# Removed from feed text and HTML before any output: C0/C1 controls but tab, newline and
# CR (terminal escapes start with ESC), bidi embeddings, overrides, isolates and marks
# (they reorder what the reader sees), zero-width characters, the BOM, and the
# noncharacters U+FFFE/U+FFFF (XML cannot carry them). Ingest removes most of these too,
# but a database written by an older version may still hold them.
_INVISIBLE = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u200b-\u200f\u202a-\u202e"
    "\u2060-\u2064\u2066-\u2069\ufeff\ufff9-\ufffb\ufffe\uffff]"
)

# How each verification rule reads in an explanation.
RULE_LABELS: Mapping[str, str] = {
    "same_url_or_text": "same link, or same title and text",
    "same_text": "same text",
    "same_headline": "same headline",
    "teaser_of_text": "a teaser of the same text",
    "event_centroid": "close to the event's reports",
}
# What a member is to its event, by the level it joined at (founders and manual moves say
# it in their own words).
LEVEL_WORDS: Mapping[JoinLevel, str] = {
    JoinLevel.EXACT: "exact copy",
    JoinLevel.NEAR_DUPLICATE: "near-duplicate",
    JoinLevel.SAME_EVENT: "another report of the same event",
}


def when(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC")


def strip_invisible(text: str) -> str:
    """`text` without the characters of `_INVISIBLE`; white space left as it is."""
    return _INVISIBLE.sub("", text)


def one_line(text: str) -> str:
    """Feed text for output on one line: invisible characters removed, white space folded.
    Stored text is already clean; this is the last guard before any output."""
    return clean_text(strip_invisible(text), single_line=True)


def safe_url(url: str | None) -> str | None:
    """The URL if it is an absolute http(s) link, else None (not rendered as a link).

    Invisible characters are removed and white space folded before the scheme is read, so
    `  JAVASCRIPT:` is seen as javascript: and `java\\tscript:` as no scheme at all; either
    way it is refused, where a browser would have run both.
    """
    if not url:
        return None
    cleaned = one_line(url)
    try:
        parts = urlsplit(cleaned)
    except ValueError:
        return None
    if parts.scheme.lower() not in LINK_SCHEMES or not parts.netloc:
        return None
    return cleaned


def snippet(text: str, limit: int = SNIPPET_CHARS) -> str:
    """The start of a text on one line, cut at a word boundary with an ellipsis."""
    flat = one_line(text)
    if len(flat) <= limit:
        return flat
    cut = flat[:limit].rsplit(" ", 1)[0] if " " in flat[:limit] else flat[:limit]
    return cut.rstrip(" ,;:.") + "…"


def copies_by_feed(members: tuple[StoredEntry, ...]) -> list[tuple[StoredEntry, int]]:
    """Each feed's first copy and how many copies it carries, in order of appearance: a
    feed that reported a story thirteen times is one line, not thirteen."""
    firsts: dict[str, StoredEntry] = {}
    counts: dict[str, int] = {}
    for member in members:
        name = one_line(member.feed_name)
        firsts.setdefault(name, member)
        counts[name] = counts.get(name, 0) + 1
    return [(firsts[name], counts[name]) for name in firsts]


def with_count(name: str, count: int) -> str:
    return f"{name} ×{count}" if count > 1 else name


def sources_label(event: EventView) -> str | None:
    """'3 sources · 5 feeds' (outlets, and feeds when they differ), 'N copies' from one
    outlet, None for a single item."""
    if len(event.members) == 1:
        return None
    outlets, feeds = len(event.outlets), len(event.sources)
    if outlets == 1 and feeds == 1:
        return f"{len(event.members)} copies"
    label = f"{outlets} source" + ("s" if outlets > 1 else "")
    return label + (f" · {feeds} feeds" if feeds != outlets else "")


def also_reported_by(event: EventView) -> str | None:
    """'also reported by N: a ×3, b' over the other copies (N copies, by feed)."""
    if not event.others:
        return None
    names = ", ".join(
        with_count(one_line(member.feed_name), count)
        for member, count in copies_by_feed(event.others)
    )
    return f"also reported by {len(event.others)}: {names}"


# How many of a story's other events a one-line summary names (the newest); the web page
# and the JSON name them all.
STORY_EVENTS_NAMED = 3


def story_events(event: EventView) -> list[StoryEvent]:
    """The other events of the event's story, newest first."""
    return sorted(event.story, key=lambda other: (other.when, other.id), reverse=True)


def same_story(event: EventView) -> str | None:
    """'same story: 2 other events: «A» (2023-03-02), «B» (…)', None when alone."""
    others = story_events(event)
    if not others:
        return None
    named = ", ".join(
        f"«{one_line(other.title) or '(no title)'}» (#{other.id}, {other.when:%Y-%m-%d})"
        for other in others[:STORY_EVENTS_NAMED]
    )
    more = len(others) - STORY_EVENTS_NAMED
    count = f"{len(others)} other event" + ("s" if len(others) > 1 else "")
    return f"same story: {count}: {named}" + (f" and {more} more" if more > 0 else "")


def how_joined(member: StoredEntry, numbers: Mapping[int, int]) -> str:
    """Why this member is in its event, in words.

    `numbers` maps entry ids to the member numbers shown beside them (1, 2, ...), so the
    explanation can point at the copy it matched.
    """
    if member.join_level is JoinLevel.FOUNDER:
        return "first item of the event"
    if member.join_level is JoinLevel.MANUAL:
        return "placed here by hand"
    rule = RULE_LABELS.get(member.match_rule or "", one_line(member.match_rule or ""))
    kind = LEVEL_WORDS.get(member.join_level, "near-duplicate")
    target = ""
    if member.matched_entry_id is not None:
        number = numbers.get(member.matched_entry_id)
        target = f" of #{number}" if number else f" of entry {member.matched_entry_id}"
    details = [
        part
        for part in (
            rule, similarity_text(member.similarity),
            decided_by(member.probability, member.reasons),
        )
        if part
    ]  # fmt: skip
    return f"{kind}{target}" + (f" ({'; '.join(details)})" if details else "")


def similarity_text(similarity: float | None) -> str:
    return "" if similarity is None else f"similarity {similarity:.2f}"


@dataclass(frozen=True, slots=True)
class FeedInfo:
    """What a feed document (Atom, JSON Feed) says about itself, with absolute addresses."""

    base_url: str  # where the server is reached, e.g. http://127.0.0.1:8080
    self_path: str  # the path and query of this document, e.g. /feed.atom?group=world
    title: str = "aggregator digest"
    description: str = "Each story once, with every source that reported it."

    @property
    def home_url(self) -> str:
        return self.base_url.rstrip("/") + "/"

    @property
    def self_url(self) -> str:
        return self.base_url.rstrip("/") + self.self_path

    def event_url(self, event_id: int) -> str:
        """The event's page: its permanent address, and the id of its feed entries."""
        return f"{self.base_url.rstrip('/')}/event/{event_id}"


@dataclass(frozen=True, slots=True)
class FeedLink:
    """A feed document the web server publishes, as pages link to it."""

    route: str  # e.g. /feed.atom
    media_type: str  # without parameters, as <link rel="alternate" type=...> wants it
    label: str  # the format's name as readers know it
