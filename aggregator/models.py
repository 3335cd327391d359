"""Frozen dataclasses passed between the layers.

Data flows one way: config -> FeedSpec; fetch -> FetchResult; parse -> ParsedFeed of
RawEntry; normalize -> Entry; dedup finds a match (`dedup.grouping.Match`,
`dedup.events.EventMatch`) and its JoinLevel; store returns StoredEntry and EventView;
digest and render read those. No layer hands another a raw dict or row.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from aggregator.urls import site_of

if TYPE_CHECKING:  # the parse workers need no pattern engine to load a FeedSpec
    from aggregator.filters import Rule

DEFAULT_INTERVAL = timedelta(minutes=60)
DEFAULT_MAX_BODY_BYTES = 15 * 1024 * 1024
DEFAULT_DEDUP_WINDOW = timedelta(hours=72)
DEFAULT_MAX_ENTRIES = 500  # entries kept per feed update: 100k items is an attack, not news
DEFAULT_PARSE_TIMEOUT = 10.0  # wall-clock seconds one parse may take in the worker
DEFAULT_PARSE_MEMORY = 512 * 1024 * 1024  # address-space limit of a parse worker, bytes


class CanonicalRule(StrEnum):
    """One criterion of the canonical-entry choice; applied in the configured order."""

    PRIORITY = "priority"
    EARLIEST = "earliest"
    LONGEST = "longest"

    @property
    def description(self) -> str:
        """What the rule prefers, in words (shown in the documented configuration)."""
        return _CANONICAL_DESCRIPTIONS[self]


_CANONICAL_DESCRIPTIONS = {
    CanonicalRule.PRIORITY: "the feed with the highest `priority` wins",
    CanonicalRule.EARLIEST: "the earliest published entry wins",
    CanonicalRule.LONGEST: "the most complete text wins",
}


DEFAULT_CANONICAL_ORDER: tuple[CanonicalRule, ...] = (
    CanonicalRule.PRIORITY,
    CanonicalRule.EARLIEST,
    CanonicalRule.LONGEST,
)


@dataclass(frozen=True, slots=True)
class FeedSpec:
    """One feed as the user wrote it in the YAML file, with group defaults applied.

    Exactly one of `url` (http or https) and `path` (a local file named in the config,
    resolved relative to the config file) is set. Feed content can never create a path.
    """

    name: str
    group: str
    url: str | None = None
    path: Path | None = None
    interval: timedelta = DEFAULT_INTERVAL
    priority: int = 0
    enabled: bool = True
    allow_private: bool = False
    line: int | None = None  # where the feed is declared, for messages
    # HTTP Basic credentials, sent to the feed URL's own origin only (never after a
    # redirect to another scheme, host or port).
    username: str | None = None
    password: str | None = None
    # Its filter rules (aggregator/filters.py): the global ones, the group's, its own.
    filters: tuple[Rule, ...] = ()

    @property
    def location(self) -> str:
        """The URL, or the local path as a string: the feed's identity in the database."""
        if self.url is not None:
            return self.url
        assert self.path is not None
        return str(self.path)


@dataclass(frozen=True, slots=True)
class Settings:
    """Options that apply to every feed (the `settings:` block of the YAML file)."""

    canonical: tuple[CanonicalRule, ...] = DEFAULT_CANONICAL_ORDER
    dedup_window: timedelta = DEFAULT_DEDUP_WINDOW
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    fetch_timeout: float = 20.0  # total deadline of one fetch, seconds
    max_entries: int = DEFAULT_MAX_ENTRIES
    parse_timeout: float = DEFAULT_PARSE_TIMEOUT
    parse_memory: int = DEFAULT_PARSE_MEMORY
    fetch_workers: int = 8  # fetches running at once (late ones aside: see fetch_pool)
    fetch_per_host: int = 2  # at most this many at once to one host (politeness)
    retention_days: int = 30  # entries and events older than this are pruned
    tombstone_days: int = 60  # a pruned entry's keys are remembered this much longer
    database: str = "data/aggregator.db"  # a SQLite path or a PostgreSQL URL
    database_password_file: Path | None = None  # the PostgreSQL password's file


@dataclass(frozen=True, slots=True)
class ApiUser:
    """A user of the Google Reader API (`users:` in the config): a name and the scrypt hash
    of the API password (`aggregator passwd` makes it), never the password itself."""

    name: str
    password_hash: str
    line: int | None = None


@dataclass(frozen=True, slots=True)
class Config:
    """The validated feed list."""

    path: Path
    feeds: tuple[FeedSpec, ...]
    settings: Settings = field(default_factory=Settings)
    users: tuple[ApiUser, ...] = ()

    def enabled_feeds(self) -> tuple[FeedSpec, ...]:
        return tuple(f for f in self.feeds if f.enabled)


@dataclass(frozen=True, slots=True)
class FetchResult:
    """What a fetch returned. `not_modified` means a 304 (or an unchanged local file):
    nothing to parse, nothing to write."""

    location: str  # the URL or path finally read (after redirects)
    status: int | None  # HTTP status; None for local files
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)  # lower-cased names
    etag: str | None = None
    last_modified: str | None = None
    not_modified: bool = False
    elapsed: float = 0.0
    # Where the leading 301/308 redirects of this fetch pointed (None without one): the
    # feed's new address once two consecutive fetches agree.
    permanent_redirect: str | None = None


@dataclass(frozen=True, slots=True)
class RawEntry:
    """One item as feedparser gave it: strings, untrusted, not yet cleaned."""

    guid: str | None
    link: str | None
    title: str
    summary_html: str
    content_html: str
    author: str | None
    published: datetime | None  # UTC when the feed gave a date
    updated: datetime | None


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    """A parsed feed document."""

    title: str | None
    link: str | None
    entries: tuple[RawEntry, ...]
    ttl_minutes: int | None = None
    bozo_reason: str | None = None  # a recoverable problem feedparser reported
    skip_hours: frozenset[int] = frozenset()  # RSS <skipHours>: UTC hours not to poll in
    skip_days: frozenset[int] = frozenset()  # RSS <skipDays>: weekdays, Monday = 0
    total_entries: int | None = None  # entries in the document before the cap


@dataclass(frozen=True, slots=True)
class Entry:
    """One normalised item, ready for dedup and storage.

    `identity` is stable across fetches: the GUID within the feed, else the canonical URL,
    else a hash of title and date. `content_key` identifies the same text (exact dedup),
    which is used to match only when the content is `distinctive` (a text, or a title long
    enough to say something: `dedup.text.distinctive_content`).
    """

    identity: str
    guid: str | None
    url: str | None
    canonical_url: str | None
    title: str
    text: str
    html: str  # sanitised, for display only
    author: str | None
    published: datetime | None
    updated: datetime | None
    content_key: str
    distinctive: bool


class JoinLevel(StrEnum):
    """How an entry joined its event."""

    FOUNDER = "founder"  # first entry of the event
    EXACT = "exact"  # same canonical URL, or same normalised title and text
    NEAR_DUPLICATE = "near_duplicate"  # MinHash-verified copy (edited wire copy, teaser, repeat)
    SAME_EVENT = "same_event"  # another write-up of the event (term vector near its centroid)
    MANUAL = "manual"  # placed by a person (merge or split)


# The features that decided a grouping, with their parts of the log-odds, largest first.
Reasons = tuple[tuple[str, float], ...]


@dataclass(frozen=True, slots=True)
class StoredEntry:
    """An entry as read back from the database, with its feed and event."""

    id: int
    feed_id: int
    feed_name: str
    feed_group: str
    feed_priority: int
    identity: str
    url: str | None
    title: str
    text: str
    html: str
    author: str | None
    published: datetime | None
    first_seen: datetime
    event_id: int | None
    join_level: JoinLevel
    similarity: float | None  # estimated Jaccard with the entry it matched, when it matched
    matched_entry_id: int | None = None  # the stored entry it was found to copy
    match_rule: str | None = None  # the verification rule that accepted the match
    probability: float | None = None  # the event model's, for a write-up's join
    reasons: Reasons = ()  # the features that decided that join, with their parts
    hidden_by: str | None = None  # the filter rule that hides it (aggregator/filters.py)

    @property
    def effective_time(self) -> datetime:
        """Published time when known, else the time we first saw it."""
        return self.published or self.first_seen

    @property
    def text_length(self) -> int:
        return len(self.text)


@dataclass(frozen=True, slots=True)
class MemberFacts:
    """What choosing an event's canonical entry needs of a member, and no more: the choice
    is made again after every change of the event, and reading whole members (text and
    HTML) each time made a growing event cost the square of its size."""

    id: int
    feed_priority: int
    effective_time: datetime
    text_length: int
    hidden: bool = False  # by a filter rule


class PlacedEntry(NamedTuple):
    """Where a stored entry was placed and what its event vector is made of (for the
    evaluation, which weighs placed items against each other)."""

    entry_id: int
    event_id: int | None
    story_id: int | None
    feed_id: int
    feed_name: str
    guid: str | None
    canonical_url: str | None
    link: str | None  # canonical, else as given
    title: str
    text: str
    published: datetime | None
    first_seen: datetime
    headline_only: bool


class FilterRow(NamedTuple):
    """A stored entry as filter rules read it, with the rule that hides it now."""

    entry_id: int
    feed_id: int
    event_id: int | None
    title: str
    text: str
    author: str | None
    link: str | None
    hidden_by: str | None


class WindowEntry(NamedTuple):
    """An entry of the dedup window as a restart reads it back for the event level: its
    stored term vector (`terms`, `weights`: `dedup.vectors.encode_vector`), or, when none
    is stored, the title, text and link to derive it from (empty otherwise; the title is
    also there when it holds a digit, for the parts and dates it may name).

    A named tuple, not a frozen dataclass: a restart makes one per entry of the window,
    and a frozen dataclass sets each field through `object.__setattr__` (5.9 us against
    0.8 us, about 5% of a restart)."""

    entry_id: int
    event_id: int
    headline_only: bool
    first_seen: datetime
    published: datetime | None
    terms: bytes | None  # term hashes
    weights: bytes | None
    title: str
    text: str
    url: str | None
    feed_id: int | None = None  # the feed whose template it counts in


@dataclass(frozen=True, slots=True)
class StoryEvent:
    """Another event of an event's story, as the digest names it: its canonical copy's
    title, link and date (published, else first seen)."""

    id: int
    title: str
    url: str | None
    when: datetime


@dataclass(frozen=True, slots=True)
class StoryLink:
    """Why two events are in one story: the entry founding `event_id` was related to
    `linked_event_id` (the story model's probability and the cosine)."""

    event_id: int
    linked_event_id: int
    similarity: float | None
    probability: float | None
    at: datetime
    reasons: Reasons = ()  # the features that decided, with their parts


@dataclass(frozen=True, slots=True)
class EventView:
    """One event: its canonical entry and every other copy ("also reported by"), and the
    other events of its story (the ongoing storyline it belongs to), oldest first."""

    id: int
    canonical: StoredEntry
    others: tuple[StoredEntry, ...]
    first_seen: datetime
    last_seen: datetime
    canonical_reason: str
    read: bool = False  # reading any copy reads the event; a later copy leaves it read
    starred: bool = False
    story_id: int = 0  # the story's id (its first event's); 0: not read from a store
    story: tuple[StoryEvent, ...] = ()  # the story's other events, oldest first

    @property
    def members(self) -> tuple[StoredEntry, ...]:
        return (self.canonical, *self.others)

    @property
    def sources(self) -> tuple[str, ...]:
        """Distinct feed names, canonical first, in order of appearance."""
        seen: dict[str, None] = {}
        for member in self.members:
            seen.setdefault(member.feed_name, None)
        return tuple(seen)

    @property
    def outlets(self) -> tuple[str, ...]:
        """Distinct outlets, canonical first: the site of each member's link (the section
        feeds of one site are one outlet), or its feed's name when it has no link."""
        seen: dict[str, None] = {}
        for member in self.members:
            seen.setdefault(site_of(member.url) or member.feed_name, None)
        return tuple(seen)


class ReadingState(StrEnum):
    """Which events a reader asks to see by their state (None in a query: all of them)."""

    UNREAD = "unread"
    STARRED = "starred"


@dataclass(frozen=True, slots=True)
class Mark:
    """A change of an event's reading state; None leaves that part as it is."""

    read: bool | None = None
    starred: bool | None = None


# The marks a reader can give, by the name the CLI and the page use.
MARKS: Mapping[str, Mark] = {
    "read": Mark(read=True),
    "unread": Mark(read=False),
    "star": Mark(starred=True),
    "unstar": Mark(starred=False),
}


@dataclass(frozen=True, slots=True)
class EventQuery:
    """Which events to read. Every condition set must hold; an unset one does not filter.

    `arrived_since` is about arrival (a member first seen at or after it); the published
    range is about the story's date (a member whose published time, or arrival when the
    feed gave none, falls in [published_from, published_until)).
    """

    arrived_since: datetime | None = None
    published_from: datetime | None = None
    published_until: datetime | None = None
    groups: tuple[str, ...] = ()  # a member comes from a feed of one of these groups
    search: str | None = None  # words that a member's title or text contains (all of them)
    state: ReadingState | None = None  # only unread, or only starred, events
    hidden: bool = False  # also the events filter rules hide (every member hidden)


@dataclass(frozen=True, slots=True)
class FeedState:
    """A feed's stored state, as `aggregator feeds` shows it."""

    id: int
    name: str
    group: str
    location: str
    enabled: bool
    last_fetch: datetime | None
    last_success: datetime | None
    status: str  # "new", "ok", "not_modified", "error"
    error: str | None
    failures: int
    next_due: datetime | None
    etag: str | None
    last_modified: str | None
    entry_count: int
    effective_url: str | None = None  # where it moved (two consecutive 301/308), if it did
    retired: str | None = None  # why it is no longer fetched (`gone`), if it is not
    title: str | None = None  # the title the feed gives itself (untrusted text)
    link: str | None = None  # the site the feed says it belongs to (untrusted text)


@dataclass(frozen=True, slots=True)
class FeedReport:
    """The outcome of one feed update: a value in the run report, never an exception."""

    feed: str
    status: str  # "ok", "not_modified", "error"
    new: int = 0
    updated: int = 0
    duplicates: int = 0
    events: int = 0  # events that gained a member or were created
    error: str | None = None
    elapsed: float = 0.0

    def log_line(self) -> str:
        line = f"feed={self.feed!r} status={self.status}"
        if self.status == "error":
            line += f" error={self.error}"
        else:
            line += (
                f" new={self.new} updated={self.updated} duplicates={self.duplicates}"
                f" events={self.events}"
            )
        return line + f" {self.elapsed:.2f}s"
