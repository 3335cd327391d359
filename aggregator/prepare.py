"""What an entry needs before it meets the window: its normalised form, its signatures and
its event term vector.

None of it depends on what is stored, so the pipeline has it computed in the parse
workers, next to the parse (`parse_worker`), while the calling thread stores the feeds
before it: about 3 ms per entry of the benchmark corpus (250 words of text on average)
that no longer waits in the one thread that has to decide entries one at a time
(docs/performance.md, "Fifth round"). Replays (`Pipeline.ingest`) prepare in the calling
thread with the same functions.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from aggregator.dedup.events import TermVector, event_terms
from aggregator.dedup.signature import Signatures, Signer
from aggregator.models import Entry, ParsedFeed
from aggregator.normalize import normalize_entry


@dataclass(frozen=True, slots=True)
class PreparedEntry:
    entry: Entry
    signatures: Signatures
    vector: TermVector  # the event level's term vector (`event_terms`)


@dataclass(frozen=True, slots=True)
class PreparedFeed:
    """A parsed document with its entries prepared (`feed.entries` is left empty: the
    raw entries would only double what crosses the pipe)."""

    feed: ParsedFeed
    entries: tuple[PreparedEntry, ...]


def link_of(entry: Entry) -> str | None:
    """The link whose slug words join the entry's term vector."""
    return entry.canonical_url or entry.url


def prepare_entry(entry: Entry, signer: Signer) -> PreparedEntry:
    return PreparedEntry(
        entry=entry,
        signatures=signer.sign(entry.title, entry.text),
        vector=event_terms(entry.title, entry.text, link_of(entry)),
    )


def prepare_feed(parsed: ParsedFeed, location: str, signer: Signer) -> PreparedFeed:
    """Normalise and prepare every entry of a parsed document fetched from `location`
    (relative links resolve against the feed's own link, else where it was fetched)."""
    base = parsed.link or location
    entries = tuple(
        prepare_entry(normalize_entry(raw, feed_link=base), signer) for raw in parsed.entries
    )
    return PreparedFeed(feed=replace(parsed, entries=()), entries=entries)
