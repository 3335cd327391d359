"""Decisions: does a new entry copy one already seen.

Precision first: a wrong merge hides news from the reader, a missed merge only repeats
it. So every LSH candidate proposed is verified here (the likeliest
MAX_VERIFIED_CANDIDATES), and a new entry joins the event of its single best verified
match; it never merges two existing events (one bridging item must not chain two
unrelated stories together).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aggregator.dedup.index import Fingerprint
from aggregator.dedup.signature import Signatures, estimated_jaccard
from aggregator.dedup.text import distinctive_title
from aggregator.models import JoinLevel

# An edited copy of a text keeps a high word 3-gram Jaccard while two write-ups of one story
# share few 3-grams; 0.6 keeps near-duplicate precision at 0.99 (`aggregator eval syndication`).
NEAR_DUPLICATE_BODY_JACCARD = 0.6
# A headline repeated as an item with no text (related-headline lists, teasers) against
# the same headline elsewhere: character 5-gram Jaccard of titles.
SAME_HEADLINE_JACCARD = 0.8
# A teaser whose text is mostly contained in a longer text under the same headline.
TEASER_CONTAINMENT = 0.8
TEASER_TITLE_JACCARD = 0.6
# An event never grows past this: a giant group is a matching bug, not news.
MAX_EVENT_MEMBERS = 200
# LSH candidates verified per entry, best-first (`SimilarityIndex.candidates`): more than
# the longest candidate list of the labelled data (59, UCI; bounds down to 4 changed no
# decision there), and a live blog's item then costs twice an ordinary one, not twenty
# times (bench/results/pathological.md; 128 and 256 cost more).
MAX_VERIFIED_CANDIDATES = 64


@dataclass(frozen=True, slots=True)
class Match:
    """A verified match of a new entry with one already indexed."""

    entry_id: int
    event_id: int
    level: JoinLevel
    similarity: float
    rule: str  # which rule verified it, for `explain`


def containment(jaccard: float, size_small: int, size_large: int) -> float:
    """Estimated share of the smaller set inside the larger, from their Jaccard and sizes.

    |A ∩ B| = J (|A| + |B|) / (1 + J); divided by |A| for the smaller set A.
    """
    if size_small <= 0:
        return 0.0
    intersection = jaccard * (size_small + size_large) / (1.0 + jaccard)
    return min(1.0, intersection / size_small)


def verify(new: Signatures, candidate: Fingerprint) -> Match | None:
    """Whether `new` copies `candidate`, and by which rule; None when it does not."""
    old = candidate.signatures
    body = estimated_jaccard(new.body, old.body)
    if not new.headline_only and not old.headline_only and body >= NEAR_DUPLICATE_BODY_JACCARD:
        return _match(candidate, body, "same_text")

    title = estimated_jaccard(new.title, old.title)
    long_enough = distinctive_title(min(new.title_words, old.title_words))
    if long_enough and (new.headline_only or old.headline_only) and title >= SAME_HEADLINE_JACCARD:
        return _match(candidate, title, "same_headline")

    if long_enough and title >= TEASER_TITLE_JACCARD:
        small, large = sorted((new.body_shingles, old.body_shingles))
        if containment(body, small, large) >= TEASER_CONTAINMENT:
            return _match(candidate, body, "teaser_of_text")
    return None


def _match(candidate: Fingerprint, similarity: float, rule: str) -> Match:
    return Match(
        entry_id=candidate.entry_id,
        event_id=candidate.event_id,
        level=JoinLevel.NEAR_DUPLICATE,
        similarity=round(similarity, 4),
        rule=rule,
    )


def best_match(
    new: Signatures,
    candidates: Sequence[Fingerprint],
    *,
    event_sizes: dict[int, int] | None = None,
) -> Match | None:
    """The verified candidate with the highest similarity (ties: the oldest entry).

    Events already at `MAX_EVENT_MEMBERS` take no new members.
    """
    sizes = event_sizes or {}
    best: Match | None = None
    for candidate in candidates:
        if sizes.get(candidate.event_id, 0) >= MAX_EVENT_MEMBERS:
            continue
        match = verify(new, candidate)
        if match is not None and (best is None or match.similarity > best.similarity):
            best = match
    return best
