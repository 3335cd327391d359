"""Events: different write-ups of one happening (pure).

An event keeps the sum of its members' vectors (its centroid). A new entry is weighed against
the events active inside the window whose centroids share its rarest terms: the cosine
(weighted by the inverse document frequency over the window, so words every story uses count
for little) with the time, feed and kind of the two goes into the event model
(dedup/event_model.py), and the entry joins the most probable event if the model says so.
Between headlines, a term's IDF is at least its IDF in ordinary language
(dedup/background.py): a story that fills the window makes its own name look common to the
window alone.

Headline-only events also merge with each other when their centroids converge: short
headlines of one broad story ("Titanfall", "Xbox One") start separate groups before enough
of them arrive to show they are one. Centroid against centroid, never one item against
one item, so a single bridging headline cannot chain two stories. Long texts never merge
this way: their centroids fill with shared vocabulary and the merges collapse unrelated
stories (measured: RPM2 fell to 2 groups).

The merge thresholds below were chosen on the dev data, precision first (docs/design.md).
"""

from __future__ import annotations

import math
from array import array
from collections import Counter, defaultdict
from collections.abc import Callable, Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

from aggregator.dedup.event_model import Candidate, EventModel, hours_between, shipped_model
from aggregator.dedup.feed_terms import FeedTerms, TemplateRule
from aggregator.dedup.series import Mark, another_item, title_marks
from aggregator.dedup.term_stats import TermStatistics
from aggregator.dedup.vectors import (
    Background,
    FloatArray,
    HashArray,
    IdArray,
    TermVector,
    hashes_of,
)
from aggregator.models import WindowEntry

# Whether an entry joins an event is the event model's (dedup/event_model.py). Headline
# events merge at this cosine: lower merges lost UCI precision.
HEADLINE_MERGE_THRESHOLD = 0.30
# A late join moves a story the reader may have seen alone, so it needs more than a join,
# and stays clear of the ECB+ precision fall seen at 0.35-0.36.
TEXT_LATE_JOIN_THRESHOLD = 0.40
# Candidates come through the entry's most distinctive terms and only the best are scored,
# because scoring more events gave the same groups on the dev data.
QUERY_TERMS = 20
MAX_CANDIDATE_EVENTS = 30
# Posting lists hold event ids as C ints (4 bytes) while every id fits, else as 8 bytes.
_NARROW_POSTING_MAX = 2**31 - 1
_POSTING_DTYPES = {"i": np.intc, "q": np.int64}
# Postings of events gone are cleaned, and unused terms forgotten, once there are more of
# them than live postings and at least this many (a pass over every list: amortised).
COMPACT_AFTER = 100_000


@dataclass(slots=True)
class EventProfile:
    """The centroid of an event's members and what the thresholds need to know."""

    event_id: int
    # The centroid (sum of the members' vectors) as term ids, ascending, and weights.
    term_ids: IdArray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))
    weights: FloatArray = field(default_factory=lambda: np.zeros(0))
    square: float = 0.0  # sum of the squared weights, for `cosine_if_reaches`
    members: int = 0
    headline_members: int = 0
    feeds: set[int] = field(default_factory=set)  # the feeds of its members
    last_active: datetime | None = None  # last arrival: the window keeps active events
    earliest: datetime | None = None  # published span of the members (arrival when unknown)
    latest: datetime | None = None
    # feed id -> the parts and dates its members' titles name (`dedup/series.py`); None
    # while no member's title names one (nearly all events: no dictionary for them).
    marks: dict[int, frozenset[Mark]] | None = None

    def add_marks(self, feed_id: int, marks: frozenset[Mark]) -> None:
        if self.marks is None:
            self.marks = {}
        self.marks[feed_id] = self.marks.get(feed_id, frozenset()) | marks

    def another_item(self, feed_id: int | None, marks: frozenset[Mark]) -> bool:
        """Whether an entry of `feed_id` whose title names `marks` is another part or
        edition of a series this event's items of the same feed belong to."""
        if not marks or self.marks is None or feed_id is None:
            return False
        own = self.marks.get(feed_id)
        return own is not None and another_item(marks, own)

    def apart_from(self, other: EventProfile) -> bool:
        """Whether the two events hold different parts or editions of one feed's series."""
        if self.marks is None or other.marks is None:
            return False
        return any(
            feed_id in other.marks and another_item(marks, other.marks[feed_id])
            for feed_id, marks in self.marks.items()
        )

    def add(self, ids: IdArray, weights: FloatArray) -> IdArray:
        """Add a vector (`ids` ascending) to the centroid; returns the ids new to it.

        Each weight is the old one plus the new, the same floats as a dictionary's sums."""
        if not len(self.term_ids):
            # The ids are shared with the first member (`_Member.term_ids`): neither is
            # ever changed in place, only replaced. Weights are summed in place: copied.
            self.term_ids, self.weights = ids, weights.copy()
            self.square = float(np.dot(self.weights, self.weights))
            return ids
        at = np.minimum(np.searchsorted(self.term_ids, ids), len(self.term_ids) - 1)
        found = self.term_ids[at] == ids
        new: IdArray = ids[~found]
        if not len(new):
            self.weights[at] += weights
        else:
            merged, where = np.unique(np.concatenate([self.term_ids, ids]), return_inverse=True)
            summed = np.bincount(
                where, weights=np.concatenate([self.weights, weights]), minlength=len(merged)
            ).astype(np.float64, copy=False)
            self.term_ids, self.weights = merged, summed
        self.square = float(np.dot(self.weights, self.weights))
        return new

    def within(self, published: datetime, window: timedelta) -> bool:
        """Whether `published` lies within `window` of the event's published span."""
        if self.earliest is None or self.latest is None:
            return True
        return self.earliest - window <= published <= self.latest + window

    def stretch(self, published: datetime) -> None:
        if self.earliest is None or published < self.earliest:
            self.earliest = published
        if self.latest is None or published > self.latest:
            self.latest = published

    @property
    def headline_event(self) -> bool:
        """Most members are headlines only."""
        return self.headline_members * 2 > self.members


def cosine(
    vector: Mapping[str, float], centroid: Mapping[str, float], stats: TermStatistics, *,
    background: bool = False,
) -> float:  # fmt: skip
    """IDF-weighted cosine of two term vectors: the definition that `cosine_if_reaches`
    computes with arrays (and the tests check it against)."""
    idf = {term: stats.idf(term, background=background) for term in {*vector, *centroid}}
    dot = sum(weight * centroid.get(term, 0.0) * idf[term] ** 2 for term, weight in vector.items())
    if dot <= 0.0:
        return 0.0
    left = math.sqrt(sum((weight * idf[term]) ** 2 for term, weight in vector.items()))
    right = math.sqrt(sum((weight * idf[term]) ** 2 for term, weight in centroid.items()))
    return dot / (left * right)


# Relative slack on the upper bound of `cosine_if_reaches`: far above the rounding error of
# the sums (about 1e-13 for thousands of terms), so a candidate is never skipped that the
# exact cosine would have chosen.
BOUND_SLACK = 1e-9


def by_term_id(ids: IdArray, vector: Mapping[str, float]) -> tuple[IdArray, FloatArray]:
    """The vector as term ids, ascending, and their weights (`ids` in the vector's order)."""
    weights = np.fromiter(vector.values(), dtype=np.float64, count=len(vector))
    order = np.argsort(ids)
    return ids[order], weights[order]


class Query:
    """One vector scored against many centroids: its term ids (ascending), weights and IDF
    under the statistics of this decision, computed once.

    With arrays sorted by term id, a centroid's shared terms are one `searchsorted` and its
    norm one gather, because scoring term by term in Python was most of an update's time."""

    def __init__(
        self, ids: IdArray, weights: FloatArray, stats: TermStatistics, *, background: bool
    ) -> None:
        self.stats = stats
        self.background = background  # IDF at least the background's (headline decisions)
        self.ids = ids
        self.weights = weights
        idf = stats.idf_of(ids, background=background)
        self.idf_squared = idf * idf
        self.dot_factor = weights * self.idf_squared
        weighted = weights * idf
        self.norm = math.sqrt(float(np.dot(weighted, weighted)))

    @classmethod
    def of(cls, vector: Mapping[str, float], stats: TermStatistics, *, background: bool) -> Query:
        ids, weights = by_term_id(stats.ids(vector, len(vector)), vector)
        return cls(ids, weights, stats, background=background)

    def shared_weights(self, profile: EventProfile) -> FloatArray:
        """The centroid's weight of each of the query's terms (0 where it has none)."""
        ids, weights = profile.term_ids, profile.weights
        if not len(ids):
            return np.zeros(len(self.ids))
        at = np.minimum(np.searchsorted(ids, self.ids), len(ids) - 1)
        return np.where(ids[at] == self.ids, weights[at], 0.0)

    def centroid_norm(self, profile: EventProfile) -> float:
        weighted = profile.weights * self.stats.idf_of(profile.term_ids, background=self.background)
        return math.sqrt(float(np.dot(weighted, weighted)))

    def score(self, profile: EventProfile, needed: float) -> float | None:
        """`cosine_if_reaches` of this query and the event's centroid."""
        return cosine_if_reaches(self, profile, needed)


def cosine_if_reaches(query: Query, profile: EventProfile, needed: float) -> float | None:
    """The IDF-weighted cosine of the query and the event's centroid (`cosine`, up to the
    order of summation), or None when it cannot reach `needed`.

    The centroid's weighted norm is what costs (a pass over thousands of terms per
    candidate). A lower bound of it is nearly free: every IDF is at least 1 (a term is in
    at most every document), so the terms not shared with the query add at least their
    plain squared weights, which the profile caches. When the cosine with that bound stays
    below `needed`, the exact cosine does too and the candidate cannot win."""
    other = query.shared_weights(profile)
    dot = float(np.dot(query.dot_factor, other))
    if dot <= 0.0 or query.norm <= 0.0:
        return 0.0
    squared = other * other
    shared_weighted = float(np.dot(squared, query.idf_squared))
    shared_plain = float(squared.sum())
    floor = shared_weighted + max(0.0, profile.square - shared_plain)
    if floor > 0.0 and dot / (query.norm * math.sqrt(floor)) * (1.0 + BOUND_SLACK) < needed:
        return None
    return dot / (query.norm * query.centroid_norm(profile))


@dataclass(frozen=True, slots=True)
class EventMatch:
    event_id: int
    similarity: float  # the cosine
    probability: float | None = None  # the model's, for a join (`best_event`)
    reasons: tuple[tuple[str, float], ...] = ()  # the features that decided (`reasons`)


def _link_needed(threshold: float, related: Sequence[tuple[EventMatch, Candidate]]) -> float:
    """The probability a candidate needs to be one of the two most related kept."""
    return threshold if len(related) < 2 else related[-1][0].probability or 0.0


@dataclass(frozen=True, slots=True)
class EventSearch:
    """What one search found: the event to join, and the other event whose story to
    link to."""

    join: EventMatch | None
    story: EventMatch | None = None
    trace: SearchTrace | None = None  # for the merges right after (joining searches)


@dataclass(slots=True)
class _Member:
    """What the window keeps of an entry: its terms (to uncount them when it leaves) and
    its arrival. Not its event: relabelling the members of an event merged away was a
    pass over the whole window at every merge."""

    term_ids: IdArray
    when: datetime
    feed_id: int | None = None  # None: not counted in any feed's template


@dataclass(frozen=True, slots=True)
class SearchTrace:
    """What a joining search learnt, for the merges made right after its entry is placed:
    the vector searched, its query and the ranked candidates, and whether no event
    reached the join threshold, with the events it scored below the headline merge
    threshold. When the entry then founds an event of its own, that event's search for one
    to merge with has the same query and ranking (postings of other events are unchanged),
    so it reuses both and scores none of those again (about a tenth of the storing
    thread's time); a late join after a write-up joined reuses the ranking. It holds until
    the index changes otherwise than by placing that entry: hand it on at once or not."""

    vector: TermVector
    query: Query
    ranked: list[int]
    missed: bool
    below_merge: frozenset[int]


class EventIndex:
    """Centroids of the events active in the window, found through their terms."""

    def __init__(
        self, window: timedelta, *, compact_after: int = COMPACT_AFTER,
        template: TemplateRule | None = None, model: EventModel | None = None,
        count_templates: bool | None = None,
        background: Background | Callable[[], Background] | None = None,
    ) -> None:  # fmt: skip
        """`count_templates`: keep each feed's template (default: when the model weighs
        it; a model that does not costs no counting on the hot path or at a restart).
        `background`: the ordinary-language table headlines are weighed against, or what
        reads it at first use (`aggregator.word_frequencies.ordinary_language`, the
        daemon's); None: none, headlines are weighed by the window alone."""
        self.window = window
        self.compact_after = compact_after
        self.stats = TermStatistics(background=background)
        self.model = model or shipped_model()
        if count_templates is None:
            count_templates = self.model.weighs("own_template_share")
        self.feed_terms = FeedTerms(template) if count_templates else None
        self.profiles: dict[int, EventProfile] = {}
        # term id -> the events whose centroid has the term. Events leave lazily: ids of
        # events dropped or merged away stay until `_compact` (removing them one by one
        # from the lists of common terms would cost more than the lookups they waste).
        # Arrays of C ints, not lists, because a list filled from numpy at a restart holds an
        # int object per posting (36 bytes instead of 4).
        # Event ids fit in 4 bytes for billions of events; a larger one widens every list
        # to 8 bytes (`_widen_postings`), so nothing fails on the day one appears.
        self._postings: dict[int, array[int]] = {}
        self._posting_type = "i"
        self._postings_total = 0  # entries in all lists
        self._postings_live = 0  # of which of events still in `profiles`
        self._members: dict[int, _Member] = {}  # entry id -> what the window keeps of it

    def __len__(self) -> int:
        return len(self.profiles)

    def observe(self, vector: TermVector) -> None:
        """Count a new document before scoring it (its own terms then have a frequency)."""
        self.stats.add(vector)

    def add_member(
        self, entry_id: int, event_id: int, vector: TermVector, *, headline_only: bool,
        when: datetime, published: datetime | None = None, observed: bool = True,
        feed_id: int | None = None, pending: bool = False, marks: frozenset[Mark] = frozenset(),
    ) -> None:  # fmt: skip
        """Add an entry's vector to its event's centroid (observed: already counted).

        `when` is the arrival time, `published` the publisher's (default: arrival);
        `feed_id` the feed whose template it counts in (`pending`: counted by
        `pend_update`); `marks` the parts and dates its title names (`series.marks`)."""
        stats = self.stats
        ids = stats.ids(vector, len(vector)) if observed else stats.add(vector)
        weights = np.fromiter(vector.values(), dtype=np.float64, count=len(vector))
        self._join(
            entry_id, event_id, ids, weights, headline_only, when, published, feed_id=feed_id,
            pending=pending, marks=marks,
        )  # fmt: skip

    def pend_update(self, feed_id: int, vectors: Iterable[TermVector]) -> None:
        """Count the new items of an update of `feed_id` in its template before placing
        any of them; each is then placed (`add_member` with `pending`), `unpend`ed, or
        forgotten by `end_update`."""
        if self.feed_terms is not None:
            self.feed_terms.pend(feed_id, (hashes_of(vector) for vector in vectors))

    def unpend(self, feed_id: int, vector: TermVector) -> None:
        if self.feed_terms is not None:
            self.feed_terms.unpend(feed_id, hashes_of(vector))

    def end_update(self, feed_id: int) -> None:
        if self.feed_terms is not None:
            self.feed_terms.end_update(feed_id)

    def add_stored_members(
        self, batch: Sequence[tuple[WindowEntry, HashArray, FloatArray]]
    ) -> None:
        """`add_member` (not yet observed) of a batch of entries, each with its vector as
        term hashes and weights (`window_vector`): the same state as adding them one by
        one, with the work per term done once for the batch (a restart reads the whole
        window)."""
        if not batch:
            return
        lengths = np.fromiter((len(terms) for _, terms, _ in batch), np.int64, len(batch))
        ends = np.cumsum(lengths)
        all_ids = self.stats.add_hashed_documents([terms for _, terms, _ in batch])
        # Every entry's terms in id order with one sort of the batch, not one per entry:
        # by (entry, term id) packed in one int64 (`np.lexsort` of the two took 5x longer).
        entry_of_term = np.repeat(np.arange(len(batch), dtype=np.int64), lengths)
        order = np.argsort((entry_of_term << 32) | all_ids)
        all_ids = all_ids[order]
        all_weights = np.concatenate([weights for _, _, weights in batch])[order]
        new_ids: list[IdArray] = []
        new_events: list[int] = []
        for (stored, _, _), start, end in zip(
            batch, (ends - lengths).tolist(), ends.tolist(), strict=True
        ):
            new = self._join(
                stored.entry_id, stored.event_id, all_ids[start:end], all_weights[start:end],
                stored.headline_only, stored.first_seen, stored.published, post=False,
                ascending=True, feed_id=stored.feed_id, marks=title_marks(stored.title),
            )  # fmt: skip
            new_ids.append(new)
            new_events.append(stored.event_id)
        # The postings of the batch in one pass: listed by term, in the order of addition.
        posted = np.concatenate(new_ids)
        events = np.repeat(np.array(new_events, dtype=np.int64), [len(n) for n in new_ids])
        # A stable sort by term: (term id, position) packed in one int64 and sorted as
        # numbers, several times faster than a stable `argsort`.
        packed = np.sort((posted.astype(np.int64) << 32) | np.arange(len(posted)))
        order = packed & 0xFFFFFFFF
        posted, events = posted[order], events[order]
        starts = np.flatnonzero(np.diff(posted, prepend=-1))
        if len(events) and int(events.max()) > _NARROW_POSTING_MAX:
            self._widen_postings()
        events = events.astype(_POSTING_DTYPES[self._posting_type], copy=False)
        postings, posting_type = self._postings, self._posting_type
        for term_id, start, end in zip(
            posted[starts].tolist(),
            starts.tolist(),
            [*starts[1:].tolist(), len(posted)],
            strict=True,
        ):
            listed = postings.get(term_id)
            if listed is None:
                postings[term_id] = listed = array(posting_type)
            listed.frombytes(events[start:end].tobytes())
        self._postings_total += len(posted)
        self._postings_live += len(posted)

    def _join(
        self, entry_id: int, event_id: int, ids: IdArray, weights: FloatArray,
        headline_only: bool, when: datetime, published: datetime | None, *, post: bool = True,
        ascending: bool = False, feed_id: int | None = None, pending: bool = False,
        marks: frozenset[Mark] = frozenset(),
    ) -> IdArray:  # fmt: skip
        """Add a counted vector to its event; returns the ids new to the centroid (listed
        in the postings here unless `post` is false). `ascending`: the ids are sorted."""
        if not ascending:
            order = np.argsort(ids)
            ids, weights = ids[order], weights[order]
        profile = self.profiles.get(event_id)
        if profile is None:
            profile = self.profiles[event_id] = EventProfile(event_id)
        profile.stretch(published or when)
        new = profile.add(ids, weights)
        if post:
            self._post(event_id, new)
        profile.members += 1
        profile.headline_members += headline_only
        if profile.last_active is None or when > profile.last_active:
            profile.last_active = when
        self._members[entry_id] = _Member(ids, when, feed_id)
        if feed_id is not None:
            profile.feeds.add(feed_id)
            if marks:
                profile.add_marks(feed_id, marks)
            if self.feed_terms is not None:
                self.feed_terms.add(feed_id, self._hashes(ids), pending=pending)
        return new

    def _hashes(self, ids: IdArray) -> list[int]:
        hashes = self.stats.hashes
        return [hashes[term_id] for term_id in ids.tolist()]

    def _post(self, event_id: int, new_ids: IdArray) -> None:
        if event_id > _NARROW_POSTING_MAX:
            self._widen_postings()
        postings, posting_type = self._postings, self._posting_type
        for term_id in new_ids.tolist():
            listed = postings.get(term_id)
            if listed is None:
                postings[term_id] = array(posting_type, (event_id,))
            else:
                listed.append(event_id)
        self._postings_total += len(new_ids)
        self._postings_live += len(new_ids)

    def _widen_postings(self) -> None:
        """Postings as 8-byte ids from now on (an event id above 4 bytes has come)."""
        if self._posting_type != "q":
            self._posting_type = "q"
            self._postings = {term: array("q", events) for term, events in self._postings.items()}

    def _ranked(self, query: Query) -> list[int]:
        """Events sharing one of the `QUERY_TERMS` most distinctive terms of the query, by
        the part of the query's weight those terms give, largest first.

        A write-up of the same event shares many distinctive terms with it, so its event is
        found through the rarest few; walking the postings of every term of the entry and
        scoring the 200 largest events was most of the cost of an update."""
        postings, hashes, profiles = self._postings, self.stats.hashes, self.profiles
        rare = np.flatnonzero(self.stats.count_by_id[query.ids] <= self.stats.common_above())
        distinctive = [
            (factor, hashes[term_id], term_id)
            for term_id, factor in zip(
                query.ids[rare].tolist(), query.dot_factor[rare].tolist(), strict=True
            )
            if term_id in postings
        ]
        distinctive.sort(key=lambda item: (-item[0], item[1]))
        partial: defaultdict[int, float] = defaultdict(float)
        for factor, _, term_id in distinctive[:QUERY_TERMS]:
            for event_id in postings[term_id]:
                if event_id in profiles:
                    partial[event_id] += factor
        return sorted(partial, key=lambda e: (-partial[e], e))

    def _best(
        self, score: Callable[[EventProfile, float], float | None], ranked: list[int],
        now: datetime, threshold: float, eligible: Callable[[EventProfile], bool], *,
        below: Container[int] = (),
    ) -> EventMatch | None:  # fmt: skip
        """The best of the `MAX_CANDIDATE_EVENTS` most promising (`ranked`) eligible events
        active in the window, if its `score` (a cosine or a probability, or None when it
        cannot reach the value asked) reaches `threshold`. Events in `below` are known not
        to reach it: counted, not scored."""
        cutoff = now - self.window
        best: EventMatch | None = None
        scored = 0
        for event_id in ranked:
            profile = self.profiles.get(event_id)
            if profile is None or (profile.last_active or now) < cutoff or not eligible(profile):
                continue
            if event_id in below:
                scored += 1
                if scored >= MAX_CANDIDATE_EVENTS:
                    break
                continue
            needed = threshold if best is None else best.similarity
            similarity = score(profile, needed)
            # `needed` is the threshold, then the best so far (which reached it).
            if (
                similarity is not None
                and similarity >= needed
                and (best is None or similarity > best.similarity)
            ):
                best = EventMatch(event_id, similarity)
            scored += 1
            if scored >= MAX_CANDIDATE_EVENTS:
                break
        return best

    def best_event(
        self, vector: TermVector, *, headline_only: bool, now: datetime,
        published: datetime | None = None, refused: Iterable[int] = (),
        feed_id: int | None = None,
    ) -> EventMatch | None:  # fmt: skip
        """The event this entry joins (`search`), if any."""
        return self.search(
            vector, headline_only=headline_only, now=now, published=published,
            refused=refused, feed_id=feed_id,
        ).join  # fmt: skip

    def search(
        self, vector: TermVector, *, headline_only: bool, now: datetime,
        published: datetime | None = None, refused: Iterable[int] = (),
        feed_id: int | None = None, same_story: Container[int] = (), joining: bool = True,
        marks: frozenset[Mark] = frozenset(),
    ) -> EventSearch:  # fmt: skip
        """The most probable event of this entry (`EventModel`) among the active events
        published within the window of it, if its probability reaches the join threshold;
        and, when the model links stories, the event other than that one it is most
        probably related to among all active events but those of `same_story`, if that
        probability reaches the story threshold. `feed_id`: the entry's feed (its template
        and its own items weigh differently); `marks`: the parts and dates its title names
        (`series.marks`). Not `joining`: the entry has joined an event
        already, only its story link is looked for (the search leaves no trace for the
        merges after it)."""
        when = published or now
        skip = set(refused)
        model, story_model = self.model, self.model.story

        query = Query.of(vector, self.stats, background=headline_only)
        template_share = self.template_share(query, feed_id)
        plain: Query | None = None  # built when an event of articles is scored
        # Events whose cosine under `query` is known below the headline merge threshold:
        # what a search of the event this entry may found need not score again.
        below_merge: set[int] = set()
        best: EventMatch | None = None
        best_facts: Candidate | None = None  # of `best`, for the reasons
        # The two most probably related events (the first may be the one joined), with
        # the facts of each for the reasons.
        related: list[tuple[EventMatch, Candidate]] = []
        cutoff = now - self.window
        joinable = linkable = 0  # scored, of each kind (at most MAX_CANDIDATE_EVENTS each)
        ranked = self._ranked(query)
        for event_id in ranked:
            profile = self.profiles.get(event_id)
            if profile is None or (profile.last_active or now) < cutoff:
                continue
            join = (
                joining
                and joinable < MAX_CANDIDATE_EVENTS
                and event_id not in skip
                and profile.within(when, self.window)
            )
            link = (
                story_model is not None
                and linkable < MAX_CANDIDATE_EVENTS
                and event_id not in same_story
            )
            if not (join or link):
                if (not joining or joinable >= MAX_CANDIDATE_EVENTS) and (
                    story_model is None or linkable >= MAX_CANDIDATE_EVENTS
                ):
                    break
                continue
            candidate = self.candidate(
                profile, when, feed_id, template_share, headline_only, len(query.ids), marks
            )
            least = 1.0 + 1e-9  # above any cosine: nothing asked
            if join:
                needed = model.threshold if best is None else best.probability or 0.0
                join_least = model.needed_similarity(candidate, needed)
                least = join_least
            if link:
                assert story_model is not None
                linked = _link_needed(story_model.threshold, related)
                least = min(least, story_model.needed_similarity(candidate, linked))
            chosen = query
            if headline_only and not profile.headline_event:
                # Against a headline event, the background's weights; against an event of
                # articles, the window's. The background keeps the weight of the names a
                # story repeats, and articles of two look-alike events share those names
                # (a lead-only item about Matt Smith's casting joined the articles on his
                # successor's).
                if plain is None:
                    plain = Query(query.ids, query.weights, self.stats, background=False)
                chosen = plain
            similarity = chosen.score(profile, least)
            if join:
                joinable += 1
                if chosen is query and (
                    similarity < HEADLINE_MERGE_THRESHOLD
                    if similarity is not None
                    else join_least <= HEADLINE_MERGE_THRESHOLD
                ):
                    below_merge.add(event_id)
            if link:
                linkable += 1
            if similarity is None:
                continue
            if join:
                probability = model.probability(candidate, similarity)
                needed = model.threshold if best is None else best.probability or 0.0
                if probability >= needed and (best is None or probability > needed):
                    best, best_facts = EventMatch(event_id, similarity, probability), candidate
            if link:
                assert story_model is not None
                probability = story_model.probability(candidate, similarity)
                linked = _link_needed(story_model.threshold, related)
                if probability >= linked and (len(related) < 2 or probability > linked):
                    related.append((EventMatch(event_id, similarity, probability), candidate))
                    related.sort(key=lambda found: -(found[0].probability or 0.0))
                    del related[2:]
        joined = best.event_id if best is not None else None
        story: EventMatch | None = None
        for match, facts in related:
            if match.event_id != joined and story_model is not None:
                reasons = story_model.reasons(facts, match.similarity)
                story = EventMatch(match.event_id, match.similarity, match.probability, reasons)
                break
        if best is not None and best_facts is not None:
            reasons = model.reasons(best_facts, best.similarity)
            best = EventMatch(best.event_id, best.similarity, best.probability, reasons)
        if not joining:
            return EventSearch(join=None, story=story)
        trace = SearchTrace(vector, query, ranked, best is None, frozenset(below_merge))
        return EventSearch(join=best, story=story, trace=trace)

    def candidates(
        self, vector: TermVector, *, headline_only: bool, now: datetime,
        published: datetime | None = None, feed_id: int | None = None,
        within_span: bool = True, marks: frozenset[Mark] = frozenset(),
    ) -> list[tuple[int, Candidate, float]]:  # fmt: skip
        """What `best_event` weighs for each event it would score: the event, the facts
        of the candidate and its cosine (for training the model on labelled streams). Not
        `within_span`: every active event, as the story link weighs them."""
        when = published or now
        query = Query.of(vector, self.stats, background=headline_only)
        plain = Query(query.ids, query.weights, self.stats, background=False)
        template_share = self.template_share(query, feed_id)
        cutoff = now - self.window
        found: list[tuple[int, Candidate, float]] = []
        for event_id in self._ranked(query):
            profile = self.profiles.get(event_id)
            if profile is None or (profile.last_active or now) < cutoff:
                continue
            if within_span and not profile.within(when, self.window):
                continue
            chosen = plain if headline_only and not profile.headline_event else query
            similarity = chosen.score(profile, 0.0) or 0.0
            candidate = self.candidate(
                profile, when, feed_id, template_share, headline_only, len(query.ids), marks
            )
            found.append((event_id, candidate, similarity))
            if len(found) >= MAX_CANDIDATE_EVENTS:
                break
        return found

    def template_share(self, query: Query, feed_id: int | None) -> float:
        """The part of the query's squared weighted norm in its feed's template."""
        if self.feed_terms is None or feed_id is None or query.norm <= 0.0:
            return 0.0
        template = self.feed_terms.template(feed_id, self._hashes(query.ids))
        if not template.any():
            return 0.0
        squared = query.weights * query.weights * query.idf_squared
        return float(squared[template].sum()) / (query.norm * query.norm)

    @staticmethod
    def candidate(
        profile: EventProfile, when: datetime, feed_id: int | None, template_share: float,
        headline_only: bool, terms: int, marks: frozenset[Mark] = frozenset(),
    ) -> Candidate:  # fmt: skip
        outside, since = hours_between(when, profile.earliest, profile.latest)
        return Candidate(
            hours_outside_span=outside, hours_since_first=since,
            own_feed=feed_id is not None and feed_id in profile.feeds,
            own_template_share=template_share, headline_item=headline_only,
            headline_event=profile.headline_event, members=profile.members, terms=terms,
            another_part=profile.another_item(feed_id, marks),
        )  # fmt: skip

    def merge_candidate(
        self, event_id: int, now: datetime, *, refused: Iterable[int] = (),
        founded_by: SearchTrace | None = None,
    ) -> EventMatch | None:  # fmt: skip
        """Another headline event whose centroid has converged with this one's.
        `founded_by`: the search of the entry that has just founded this event."""
        profile = self.profiles.get(event_id)
        miss = founded_by
        if profile is None or not profile.headline_event:
            return None
        skip = {event_id, *refused}

        def eligible(other: EventProfile) -> bool:
            return (
                other.event_id not in skip
                and other.headline_event
                and not profile.apart_from(other)
                and (
                    profile.earliest is None
                    or profile.latest is None
                    or (
                        other.within(profile.earliest, self.window)
                        and other.within(profile.latest, self.window)
                    )
                )
            )

        if miss is not None and miss.missed and profile.members == 1 and miss.query.background:
            # Its only member's search, just made (`SearchTrace`): the same query, ranking
            # and statistics; the events it scored cannot reach this threshold either.
            return self._best(
                miss.query.score, miss.ranked, now, HEADLINE_MERGE_THRESHOLD, eligible,
                below=miss.below_merge,
            )  # fmt: skip
        query = Query(profile.term_ids, profile.weights, self.stats, background=True)
        return self._best(query.score, self._ranked(query), now, HEADLINE_MERGE_THRESHOLD, eligible)

    def late_member_candidate(
        self, event_id: int, member: TermVector, now: datetime, *, refused: Iterable[int] = (),
        ranked: list[int] | None = None,
    ) -> EventMatch | None:  # fmt: skip
        """A one-member text event whose article is close enough to this text event's
        centroid (`TEXT_LATE_JOIN_THRESHOLD`) to join it, now that `member` has joined.

        Text events never merge by centroids (their centroids fill with shared vocabulary:
        RPM2 collapsed into 2 groups), but one article is one write-up, as if it arrived
        now: it cannot chain two events together. Only articles sharing terms with the new
        member can have come closer (weights are positive: a centroid grown by terms an
        article lacks only moves away from it), so the candidates are the one-member
        events the member's own search ranked (`ranked`, when it has just searched)."""
        profile = self.profiles.get(event_id)
        if profile is None or profile.headline_event or profile.members < 2:
            return None
        if ranked is None:
            ranked = self._ranked(Query.of(member, self.stats, background=False))
        skip = {event_id, *refused}

        def eligible(other: EventProfile) -> bool:
            return (
                other.members == 1
                and not other.headline_event
                and other.event_id not in skip
                and not profile.apart_from(other)
                and (other.earliest is None or profile.within(other.earliest, self.window))
            )

        def article_against_centroid(other: EventProfile, needed: float) -> float | None:
            # The article's few terms looked up in the centroid, rather than the
            # centroid's many in it (the cosine is symmetric).
            return cosine_if_reaches(
                Query(other.term_ids, other.weights, self.stats, background=False),
                profile,
                needed,
            )

        return self._best(article_against_centroid, ranked, now, TEXT_LATE_JOIN_THRESHOLD, eligible)

    def merge(self, keep: int, gone: int) -> None:
        """Fold event `gone` into `keep`."""
        absorbed = self.profiles.pop(gone, None)
        if absorbed is None:
            return
        self._postings_live -= len(absorbed.term_ids)
        profile = self.profiles.setdefault(keep, EventProfile(keep))
        self._post(keep, profile.add(absorbed.term_ids, absorbed.weights))
        profile.members += absorbed.members
        profile.feeds |= absorbed.feeds
        for feed_id, marks in (absorbed.marks or {}).items():
            profile.add_marks(feed_id, marks)
        for bound in (absorbed.earliest, absorbed.latest):
            if bound is not None:
                profile.stretch(bound)
        profile.headline_members += absorbed.headline_members
        if absorbed.last_active and (
            profile.last_active is None or absorbed.last_active > profile.last_active
        ):
            profile.last_active = absorbed.last_active

    def drop_older_than(self, cutoff: datetime) -> int:
        """Forget entries (and then events) last active before `cutoff`."""
        old = [e for e, member in self._members.items() if member.when < cutoff]
        for entry_id in old:
            member = self._members.pop(entry_id)
            if member.feed_id is not None and self.feed_terms is not None:
                self.feed_terms.remove(member.feed_id, self._hashes(member.term_ids))
            self.stats.remove_ids(member.term_ids)
        stale = [e for e, p in self.profiles.items() if p.last_active and p.last_active < cutoff]
        for event_id in stale:
            self._postings_live -= len(self.profiles.pop(event_id).term_ids)
        dead = self._postings_total - self._postings_live
        if dead > max(self._postings_live, self.compact_after):
            self._compact()
        return len(old)

    def _compact(self) -> None:
        """Drop the postings of events gone, and the terms no longer counted nor in any
        centroid (renumbering the rest: every id array follows)."""
        profiles = self.profiles
        postings: dict[int, array[int]] = {}
        for term_id, events in self._postings.items():
            alive = [e for e in dict.fromkeys(events) if e in profiles]
            if alive:
                postings[term_id] = array(self._posting_type, alive)
        used = np.zeros(len(self.stats.hashes), dtype=bool)
        for profile in profiles.values():
            used[profile.term_ids] = True
        mapping = self.stats.compact(used)
        # A term can be listed for a live event without being in its centroid: an event
        # dropped from the window and started again under its id (a late exact copy of an
        # old entry) left its old lists behind. Such terms may be forgotten here.
        self._postings = {
            int(mapping[t]): events for t, events in postings.items() if mapping[t] >= 0
        }
        # id() of a centroid's old ids -> (old ids, new ids); the old arrays are held here,
        # so no other array can take their id() while members are renumbered.
        renumbered: dict[int, tuple[IdArray, IdArray]] = {}
        for profile in profiles.values():
            old_ids = profile.term_ids
            profile.term_ids = mapping[old_ids]  # the order is kept: still ascending
            renumbered[id(old_ids)] = (old_ids, profile.term_ids)
        for member in self._members.values():
            shared = renumbered.get(id(member.term_ids))
            # A member sharing its event's ids (see `EventProfile.add`) keeps sharing them.
            if shared is not None and member.term_ids is shared[0]:
                member.term_ids = shared[1]
            else:
                member.term_ids = mapping[member.term_ids]
        self._postings_total = self._postings_live = sum(len(e) for e in postings.values())


def shared_terms(
    vectors: Iterable[Mapping[str, float]], stats: TermStatistics, top: int = 8, *,
    background: bool = False,
) -> list[str]:  # fmt: skip
    """The most distinctive terms that at least two of the vectors share (for `explain`),
    weighed as the decisions weighed them (`background` for headline events)."""
    seen: Counter[str] = Counter()
    for vector in vectors:
        seen.update(vector.keys())
    common = [term for term, count in seen.items() if count >= 2]
    common.sort(key=lambda t: (-seen[t] * stats.idf(t, background=background), t))
    return common[:top]
