"""Where a new entry goes: the placement decision, apart from carrying it out.

The cascade, in order: an exact duplicate (same link, or same title and text) joins its
copy's event; a near-duplicate copy (MinHash, verified) joins its copy's event; a write-up
whose event model probability reaches the join threshold joins that event (unless the
event is full); anything else founds an event. The decision also names the event whose
story the entry's event links to, and whether a story search is still to be made once the
entry is placed (an article joining its own headline says more than the headline did).

It reads stored facts through `PlacementFacts` (the store implements it; a test can hand
in a dict) and the two in-memory indexes, and returns a `Placement` the pipeline carries
out inside its transaction. It writes nothing; the placement carries the event search it
made (`SearchTrace`), which the merges right after it reuse.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from aggregator.dedup.events import EventIndex, EventMatch, SearchTrace
from aggregator.dedup.grouping import MAX_EVENT_MEMBERS, MAX_VERIFIED_CANDIDATES, best_match
from aggregator.dedup.index import SimilarityIndex
from aggregator.dedup.series import Mark
from aggregator.dedup.signature import Signatures
from aggregator.dedup.vectors import TermVector
from aggregator.models import Entry, JoinLevel

# Near-duplicate rules under which the entry may bring text its event lacked.
TEXT_ADDING_RULES = frozenset({"same_headline", "teaser_of_text"})


class PlacementFacts(Protocol):
    """What the decisions read of what is stored."""

    def exact_duplicate(self, entry: Entry) -> tuple[int, int] | None:
        """(entry id, event id) of a stored exact duplicate, if any."""
        ...

    def event_sizes(self, event_ids: Iterable[int]) -> dict[int, int]:
        """event id -> its number of members, for the ids known."""
        ...

    def separated_from(self, event_id: int) -> set[int]:
        """The events a person split from this one (never merged with it again)."""
        ...


@dataclass(frozen=True, slots=True)
class Placement:
    """The decision for one entry: its level, the event it joins (None: a new one), what
    it matched and by which rule, the model's join (probability and reasons, for a
    write-up), the event whose story its event links to, and whether a story search is
    to be made once it is placed."""

    level: JoinLevel
    event_id: int | None
    matched_entry_id: int | None = None
    similarity: float | None = None
    rule: str | None = None
    join: EventMatch | None = None
    story: EventMatch | None = None
    search_story: bool = False
    trace: SearchTrace | None = None  # the event search made, for the merges after it


def decide_placement(
    entry: Entry, signatures: Signatures, vector: TermVector, *, feed_id: int,
    now: datetime, facts: PlacementFacts, copies: SimilarityIndex, events: EventIndex,
    marks: frozenset[Mark] = frozenset(),
) -> Placement:  # fmt: skip
    """Where `entry` goes (see the module). `vector` must be observed by `events` first."""
    exact = facts.exact_duplicate(entry)
    if exact is not None:
        matched, event_id = exact
        return Placement(JoinLevel.EXACT, event_id, matched, 1.0, "same_url_or_text")
    candidates = copies.candidates(signatures, limit=MAX_VERIFIED_CANDIDATES)
    sizes = facts.event_sizes(c.event_id for c in candidates)
    match = best_match(signatures, candidates, event_sizes=sizes)
    if match is not None:
        adds_text = match.rule in TEXT_ADDING_RULES and not signatures.headline_only
        return Placement(
            match.level, match.event_id, match.entry_id, match.similarity, match.rule,
            search_story=adds_text,
        )  # fmt: skip
    search = events.search(
        vector, headline_only=signatures.headline_only, now=now, published=entry.published,
        feed_id=feed_id, marks=marks,
    )  # fmt: skip
    event, related = search.join, search.story
    # Sizes of the copies' events only: an event no copy names is not counted here (the
    # rule as it has always run; counting every event would change decisions).
    if event is not None and sizes.get(event.event_id, 0) >= MAX_EVENT_MEMBERS:
        # A full event takes no more members; the entry is of its story.
        event, related = None, event
    if event is None:
        return Placement(JoinLevel.FOUNDER, None, story=related, trace=search.trace)
    return Placement(
        JoinLevel.SAME_EVENT, event.event_id, None, round(event.similarity, 4),
        "event_centroid", join=event, story=related, trace=search.trace,
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Merge:
    """Two events to merge: `gone`'s members move into `keep`, for `reason`."""

    keep: int
    gone: int
    similarity: float
    reason: str


def decide_merge(
    event_id: int, write_up: TermVector | None, *, now: datetime, facts: PlacementFacts,
    events: EventIndex, founded_by: SearchTrace | None = None,
    ranked: list[int] | None = None,
) -> Merge | None:  # fmt: skip
    """The next merge the event allows now that an entry joined it, if any: a headline
    event whose centroid has converged with it, else (when `write_up`, a new write-up,
    joined it) a one-member text event whose article is now close to its centroid
    (`EventIndex.merge_candidate`, `late_member_candidate`); never past the size cap nor
    between events a person split. `founded_by`: the search of the entry that has just
    founded this event; `ranked`: the write-up's own search's ranking (`SearchTrace`)."""
    refused = facts.separated_from(event_id)
    candidate = events.merge_candidate(event_id, now, refused=refused, founded_by=founded_by)
    reason = "headline centroids converged"
    if candidate is None and write_up is not None:
        candidate = events.late_member_candidate(
            event_id, write_up, now, refused=refused, ranked=ranked
        )
        reason = "its one article is close to the grown event's centroid"
    if candidate is None:
        return None
    sizes = facts.event_sizes([event_id, candidate.event_id])
    if sizes.get(event_id, 0) + sizes.get(candidate.event_id, 0) > MAX_EVENT_MEMBERS:
        return None
    # The larger event survives (fewer rows move; its id is the one people saw).
    keep, gone = event_id, candidate.event_id
    if sizes.get(gone, 0) > sizes.get(keep, 0):
        keep, gone = gone, keep
    return Merge(keep, gone, round(candidate.similarity, 4), reason)
