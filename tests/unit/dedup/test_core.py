"""Unit tests for the pure dedup core: folding, shingles, signatures, verification."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from aggregator.dedup.canonical import RANKINGS, choose_canonical
from aggregator.dedup.grouping import (
    MAX_EVENT_MEMBERS,
    best_match,
    containment,
    verify,
)
from aggregator.dedup.index import Fingerprint, SimilarityIndex
from aggregator.dedup.signature import (
    MinHashParams,
    Signer,
    char_shingles,
    estimated_jaccard,
    signature_from_bytes,
    word_shingles,
)
from aggregator.dedup.text import fold, tokens
from aggregator.models import CanonicalRule, JoinLevel, StoredEntry

NOW = datetime(2026, 1, 1, tzinfo=UTC)
HEADLINE = (
    "La Maison Blanche affirme qu'un haut responsable russe a demandé à la Corée du Nord "
    "d'augmenter ses ventes de munitions à Moscou"
)
ARTICLE = " ".join(
    f"Paragraph {i} says the minister met officials in the capital about shells and rockets "
    f"number {i * 7} while analysts disagreed about what comes next."
    for i in range(12)
)


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer()


def fingerprint(
    signer: Signer, entry_id: int, title: str, text: str, event_id: int = 0
) -> Fingerprint:
    return Fingerprint(
        entry_id=entry_id, feed_id=1, event_id=event_id or entry_id, first_seen=NOW,
        published=None, signatures=signer.sign(title, text),
    )  # fmt: skip


def test_fold_removes_accents_case_and_french_elisions() -> None:
    """Accents and case fold; l', d', qu' are split off and dropped."""
    assert tokens("L'Iran d'abord qu'un Été") == ["iran", "abord", "un", "ete"]
    assert fold("Corée") == "coree"


def test_fold_handles_typographic_apostrophes() -> None:
    """Typographic and straight apostrophes fold to the same tokens."""
    assert tokens("l’administration") == tokens("l'administration")


def test_shingles() -> None:
    """Character and word shingles cover the text; short texts give one shingle."""
    assert char_shingles(["abc", "de"], 5) == {b"abc d", b"bc de"}
    assert char_shingles(["ab"], 5) == {b"ab"}
    assert word_shingles(["a", "b", "c", "d"], 3) == {b"a b c", b"b c d"}
    assert word_shingles([], 3) == set()


def test_identical_text_has_identical_signature(signer: Signer) -> None:
    """Same input, same signature; the estimate of self-similarity is 1."""
    a, b = signer.sign(HEADLINE, ARTICLE), signer.sign(HEADLINE, ARTICLE)
    assert estimated_jaccard(a.body, b.body) == 1.0
    assert signature_from_bytes(a.body_bytes()).tolist() == a.body.tolist()


def test_headline_only_detection(signer: Signer) -> None:
    """No text, or text equal to the title, is a headline only."""
    assert signer.sign(HEADLINE, "").headline_only
    assert signer.sign(HEADLINE, HEADLINE).headline_only
    assert not signer.sign(HEADLINE, ARTICLE).headline_only


def test_params_round_trip_through_json() -> None:
    """Stored parameters read back equal, and differ when any field differs."""
    params = MinHashParams()
    assert MinHashParams.from_json(params.to_json()) == params
    assert MinHashParams(num_perm=64) != params


def test_repeated_headline_matches_its_article(signer: Signer) -> None:
    """A headline-only item matches the full article with the same headline."""
    article = fingerprint(signer, 1, HEADLINE, ARTICLE)
    match = verify(signer.sign(HEADLINE, ""), article)
    assert match is not None and match.rule == "same_headline"
    assert match.level is JoinLevel.NEAR_DUPLICATE


def test_edited_copy_matches(signer: Signer) -> None:
    """A copy with a changed headline, a boilerplate line and the last sentence cut matches."""
    original = fingerprint(signer, 1, HEADLINE, ARTICLE)
    edited = ARTICLE.rsplit("Paragraph 11", 1)[0] + " Subscribe to our newsletter for more."
    match = verify(signer.sign("Russia asks North Korea for shells", edited), original)
    assert match is not None and match.rule == "same_text"


def test_unrelated_items_do_not_match(signer: Signer) -> None:
    """Different headlines with no text do not match, nor do different articles."""
    tesla = fingerprint(signer, 1, "Tesla va transformer les Pacific Theatres fermés", "")
    assert verify(signer.sign(HEADLINE, ""), tesla) is None
    other = fingerprint(signer, 2, "Weather", "Sunny days ahead " * 30)
    assert verify(signer.sign(HEADLINE, ARTICLE), other) is None


def test_short_titles_never_match_on_title_alone(signer: Signer) -> None:
    """'Live updates' twice is not a duplicate: titles under five words need text."""
    first = fingerprint(signer, 1, "Live updates", "")
    assert verify(signer.sign("Live updates", ""), first) is None


def test_containment_estimate() -> None:
    """A set inside one ten times larger has containment 1 and Jaccard 0.1."""
    assert containment(0.1, 10, 100) == pytest.approx(1.0)
    assert containment(0.0, 10, 100) == 0.0


def test_best_match_prefers_highest_similarity_and_skips_full_events(signer: Signer) -> None:
    """The best verified candidate wins; an event at the size cap takes no one."""
    exact = fingerprint(signer, 1, HEADLINE, ARTICLE, event_id=10)
    edited = fingerprint(signer, 2, HEADLINE, ARTICLE + " One more line at the end.", event_id=20)
    new = signer.sign(HEADLINE, ARTICLE)
    best = best_match(new, [edited, exact])
    assert best is not None and best.event_id == 10
    capped = best_match(new, [edited, exact], event_sizes={10: MAX_EVENT_MEMBERS})
    assert capped is not None and capped.event_id == 20


def test_index_finds_candidates_and_forgets_removed(signer: Signer) -> None:
    """The LSH index proposes a copy, and stops once it is removed or trimmed."""
    index = SimilarityIndex(signer)
    index.add(fingerprint(signer, 1, HEADLINE, ARTICLE))
    index.add(fingerprint(signer, 2, "Tesla va transformer les Pacific Theatres", ""))
    found = [c.entry_id for c in index.candidates(signer.sign(HEADLINE, ""))]
    assert found == [1]
    index.remove(1)
    assert index.candidates(signer.sign(HEADLINE, "")) == []
    assert index.drop_older_than(NOW + timedelta(seconds=1)) == 1
    assert len(index) == 0


def stored(entry_id: int, *, priority: int = 0, day: int = 1, text: str = "") -> StoredEntry:
    return StoredEntry(
        id=entry_id, feed_id=entry_id, feed_name=f"feed{entry_id}", feed_group="g",
        feed_priority=priority, identity=str(entry_id), url=None, title="t", text=text,
        html="", author=None, published=datetime(2023, 1, day, tzinfo=UTC), first_seen=NOW,
        event_id=1, join_level=JoinLevel.FOUNDER, similarity=None,
    )  # fmt: skip


def test_choose_canonical_follows_rule_order() -> None:
    """Priority first, then earliest, then longest; the reason names the deciding rule."""
    rules = (CanonicalRule.PRIORITY, CanonicalRule.EARLIEST, CanonicalRule.LONGEST)
    high = stored(1, priority=5, day=3)
    early = stored(2, day=1)
    chosen, reason = choose_canonical([early, high], rules)
    assert chosen is high and reason.startswith("priority")
    chosen, reason = choose_canonical([stored(3, day=2), early], rules)
    assert chosen is early and reason.startswith("earliest")
    longer = stored(4, day=1, text="x" * 50)
    chosen, reason = choose_canonical([early, longer], rules)
    assert chosen is longer and reason.startswith("longest")


def test_choose_canonical_other_order_and_ties() -> None:
    """With 'longest' first the longest text wins; a full tie goes to the first arrival."""
    chosen, _ = choose_canonical(
        [stored(1, priority=9), stored(2, text="long text")], (CanonicalRule.LONGEST,)
    )
    assert chosen.id == 2
    chosen, reason = choose_canonical([stored(7), stored(6)], (CanonicalRule.EARLIEST,))
    assert chosen.id == 6 and "tied" in reason
    with pytest.raises(ValueError):
        choose_canonical([], (CanonicalRule.EARLIEST,))


def test_canonical_reason_names_the_rule_beyond_a_tied_copy() -> None:
    """The runner-up is an exact copy (tied on every rule): the reason still names the
    rule that beat the rest of the event, and the copy that lost on arrival only."""
    rules = (CanonicalRule.PRIORITY, CanonicalRule.EARLIEST, CanonicalRule.LONGEST)
    first, copy, later = stored(5, day=1), stored(9, day=1), stored(3, day=2)
    chosen, reason = choose_canonical([later, copy, first], rules)
    assert chosen is first
    assert reason == (
        "earliest: published 2023-01-01T00:00:00+00:00 (tied with #9, which arrived later)"
    )
    chosen, reason = choose_canonical([copy, first, stored(12, day=1), later], rules)
    assert reason.endswith("(tied with #9 and #12, which arrived later)")


def test_every_canonical_rule_has_a_ranking() -> None:
    """A `CanonicalRule` without its row in the table fails here, not in a user's config."""
    assert set(RANKINGS) == set(CanonicalRule)
