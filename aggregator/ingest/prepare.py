"""What an entry needs before it meets the window: its normalised form, its signatures and
its event term vector.

None of it depends on what is stored, so the pipeline has it computed in the parse
workers, next to the parse (`parse_worker`), while the calling thread stores the feeds
before it, because the one thread that decides entries one at a time should not wait for
it. Replays (`Pipeline.ingest`) prepare in the calling thread with the same functions.

Only entries that may be stored are prepared: the caller passes the versions it has
stored for the feed (identity -> content key), and an entry found there unchanged is
passed on as a plain `Entry` (a feed whose server ignores conditional GET sends its 50
entries on every poll; preparing them again was about 0.15 s of CPU per poll, thrown
away). The hint may be stale: whoever stores the entries checks the store itself and
prepares any plain `Entry` it turns out to need (`Pipeline._store_entries`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from aggregator.dedup.series import Mark, title_marks
from aggregator.dedup.signature import Signatures, Signer
from aggregator.dedup.vectors import TermVector, event_terms
from aggregator.ingest.normalize import normalize_entry
from aggregator.models import Entry, ParsedFeed


@dataclass(frozen=True, slots=True)
class PreparedEntry:
    entry: Entry
    signatures: Signatures
    vector: TermVector  # the event level's term vector (`event_terms`)
    marks: frozenset[Mark] = frozenset()  # the parts and dates its title names


@dataclass(frozen=True, slots=True)
class PreparedFeed:
    """A parsed document with its entries prepared (`feed.entries` is left empty: the
    raw entries would only double what crosses the pipe)."""

    feed: ParsedFeed
    # A plain Entry: found stored unchanged when it was prepared, so not signed.
    entries: tuple[PreparedEntry | Entry, ...]


def link_of(entry: Entry) -> str | None:
    """The link whose slug words join the entry's term vector."""
    return entry.canonical_url or entry.url


def prepare_entry(entry: Entry, signer: Signer) -> PreparedEntry:
    return PreparedEntry(
        entry=entry,
        signatures=signer.sign(entry.title, entry.text),
        vector=event_terms(entry.title, entry.text, link_of(entry)),
        marks=title_marks(entry.title),
    )


def normalize_feed(parsed: ParsedFeed, location: str) -> tuple[Entry, ...]:
    """The normalised entries of a parsed document fetched from `location` (relative links
    resolve against the feed's own link, else where it was fetched)."""
    base = parsed.link or location
    return tuple(normalize_entry(raw, feed_link=base) for raw in parsed.entries)


def unprepared_feed(parsed: ParsedFeed, location: str) -> PreparedFeed:
    """A parsed document with its entries normalised and nothing prepared yet."""
    return PreparedFeed(feed=replace(parsed, entries=()), entries=normalize_feed(parsed, location))


def prepare_feed(
    parsed: ParsedFeed, location: str, signer: Signer, stored: Mapping[str, str] | None = None
) -> PreparedFeed:
    """Normalise every entry of a parsed document fetched from `location` and prepare
    those not in `stored` (identity -> content key of the versions the feed has stored)."""
    known = stored or {}
    entries = tuple(
        entry if known.get(entry.identity) == entry.content_key else prepare_entry(entry, signer)
        for entry in normalize_feed(parsed, location)
    )
    return PreparedFeed(feed=replace(parsed, entries=()), entries=entries)
