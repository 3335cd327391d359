"""Unit tests for the event level: term vectors, centroids, the time window, merges."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from aggregator.dedup.event_model import Candidate, EventModel, shipped_model
from aggregator.dedup.events import (
    TEXT_LATE_JOIN_THRESHOLD,
    EventIndex,
    Query,
    cosine,
    cosine_if_reaches,
)
from aggregator.dedup.term_stats import TermStatistics
from aggregator.dedup.vectors import (
    event_terms,
    names_and_numbers,
    term_hash,
    url_words,
    window_vector,
)
from aggregator.models import WindowEntry
from aggregator.word_frequencies import ordinary_language
from tests.support.models import linking_model
from tests.support.stories import ERUPTION, ERUPTION_AIRPORT, ERUPTION_BOTH

NOW = datetime(2026, 1, 5, 12, tzinfo=UTC)
WINDOW = timedelta(hours=72)
REHAB_REID = (
    "Tara Reid enters rehab",
    "Actress Tara Reid, 33, has entered the Promises Treatment Center in Malibu, her "
    "publicist said on Tuesday. Reid starred in American Pie.",
)
REHAB_LOHAN = (
    "Lindsay Lohan enters rehab",
    "Actress Lindsay Lohan has entered a treatment center in Malibu, her lawyer said on "
    "Friday. Lohan was ordered to spend 90 days in rehab.",
)


def least_cosine(*, headline: bool) -> float:
    """The least cosine at which the shipped model joins a lone entry to a fresh event."""
    model = shipped_model()
    probe = Candidate(
        hours_outside_span=0.0, hours_since_first=0.0, own_feed=False, own_template_share=0.0,
        headline_item=headline, headline_event=headline, members=1,
    )  # fmt: skip
    return model.needed_similarity(probe, model.threshold)


def test_event_terms_are_unit_length_and_stemmed() -> None:
    """Vectors have length 1; words are cut to a 6-letter prefix, short words dropped."""
    vector = event_terms("Tapering talk", "The Fed is tapering.")
    assert sum(w * w for w in vector.values()) == pytest.approx(1.0)
    assert "taperi" in vector and "the" in vector and "is" not in vector


def test_title_counts_more_than_text() -> None:
    """A word of the title weighs more than a word of the text."""
    vector = event_terms("Carney", "banks")
    assert vector["carney"] > vector["banks"]


def test_names_and_numbers_inside_sentences() -> None:
    """Capitalised words and numbers after the first word of a sentence count as names."""
    assert names_and_numbers("Actress Tara Reid, 33, entered. The clinic said so.") == [
        "tara",
        "reid",
        "33",
    ]


def test_url_words_take_slugs_only() -> None:
    """Slug segments give words; ids, short segments and the host do not."""
    url = "https://news.example/2014/03/10/fed-plosser-sees-high-bar.html?id=4"
    assert url_words(url) == ["fed", "plosser", "sees", "high", "bar"]
    assert url_words("https://e.example/a/123456") == []
    assert url_words(None) == []


def test_cosine_weights_rare_terms() -> None:
    """A shared rare term counts for more than a shared common one."""
    stats = TermStatistics()
    for _ in range(50):
        stats.add({"common": 1.0})
    stats.add({"rare": 1.0})
    a = {"rare": 0.7, "common": 0.7, "x": 0.1}
    rare_match = cosine(a, {"rare": 1.0}, stats)
    common_match = cosine(a, {"common": 1.0}, stats)
    assert rare_match > common_match > 0
    assert cosine(a, {"other": 1.0}, stats) == 0.0


def add(index: EventIndex, entry_id: int, event_id: int, title: str, text: str = "", *,
        when: datetime = NOW) -> None:  # fmt: skip
    vector = event_terms(title, text)
    index.observe(vector)
    index.add_member(entry_id, event_id, vector, headline_only=not text, when=when)


def background(index: EventIndex) -> None:
    """Unrelated stories, so that document frequencies mean something."""
    topics = ["weather storm coast", "football cup final", "election vote count",
              "market shares fall", "film festival prize", "train strike union"]  # fmt: skip
    for number, words in enumerate(topics * 3, start=100):
        add(index, number, number, f"{words} report {number}")


def test_headline_joins_the_event_it_is_about() -> None:
    """A headline sharing the event's names joins it; an unrelated one does not."""
    index = EventIndex(WINDOW, background=ordinary_language)
    background(index)
    add(index, 1, 1, "Justin Bieber deposition video released")
    add(index, 2, 1, "Justin Bieber snaps during deposition")
    joining = event_terms("Bieber deposition: the full video", "")
    index.observe(joining)
    match = index.best_event(joining, headline_only=True, now=NOW)
    assert match is not None and match.event_id == 1
    assert match.similarity >= least_cosine(headline=True)
    other = event_terms("Selena Gomez changes phone numbers", "")
    index.observe(other)
    assert index.best_event(other, headline_only=True, now=NOW) is None


def test_look_alike_events_stay_apart() -> None:
    """Two rehab stories with different people are different events, in a window where
    rehab stories are common (as in ECB+): the names decide, not the shared vocabulary."""
    index = EventIndex(WINDOW, background=ordinary_language)
    background(index)
    for number, person in enumerate(["Amy Winehouse", "Charlie Sheen", "Britney Spears"]):
        text = f"Singer {person} has entered a treatment center in Malibu, a publicist said."
        add(index, 200 + number, 200 + number, f"{person} enters rehab", text)
    add(index, 1, 1, *REHAB_REID)
    lohan = event_terms(*REHAB_LOHAN)
    index.observe(lohan)
    assert index.best_event(lohan, headline_only=False, now=NOW) is None


def test_publication_times_far_apart_never_join() -> None:
    """The same words published months apart are not the same event."""
    index = EventIndex(WINDOW, background=ordinary_language)
    background(index)
    add(index, 1, 1, *REHAB_REID)
    again = event_terms(*REHAB_REID)
    index.observe(again)
    assert index.best_event(again, headline_only=False, now=NOW) is not None
    later = NOW + timedelta(days=120)
    assert index.best_event(again, headline_only=False, now=NOW, published=later) is None


def test_refused_events_are_skipped() -> None:
    """An event kept apart by hand is never proposed."""
    index = EventIndex(WINDOW, background=ordinary_language)
    background(index)
    add(index, 1, 1, *REHAB_REID)
    again = event_terms(*REHAB_REID)
    index.observe(again)
    assert index.best_event(again, headline_only=False, now=NOW, refused=[1]) is None


def test_headline_events_merge_when_centroids_converge() -> None:
    """Two groups of headlines about one story merge; the index then knows one event."""
    index = EventIndex(WINDOW, background=ordinary_language)
    background(index)
    add(index, 1, 1, "Titanfall launches on Xbox One")
    add(index, 2, 1, "Titanfall Xbox One bundle price")
    add(index, 3, 2, "Xbox One Titanfall bundle on sale")
    match = index.merge_candidate(2, NOW)
    assert match is not None and match.event_id == 1
    index.merge(1, 2)
    assert 2 not in index.profiles and index.profiles[1].members == 3
    stray = event_terms("Xbox One Titanfall bundle", "")
    index.observe(stray)
    found = index.best_event(stray, headline_only=True, now=NOW)
    assert found is not None and found.event_id == 1


def test_text_events_never_merge_by_centroid() -> None:
    """Events of full texts do not merge through their centroids."""
    index = EventIndex(WINDOW, background=ordinary_language)
    add(index, 1, 1, *REHAB_REID)
    add(index, 2, 2, *REHAB_REID)
    assert index.merge_candidate(2, NOW) is None


def decide(index: EventIndex, entry_id: int, title: str, text: str, *, founds: int) -> int:
    """Place an article as the pipeline does: in its best event, else in event `founds`."""
    vector = event_terms(title, text)
    index.observe(vector)
    match = index.best_event(vector, headline_only=False, now=NOW)
    event_id = founds if match is None else match.event_id
    index.add_member(entry_id, event_id, vector, headline_only=False, when=NOW)
    return event_id


def test_an_article_that_missed_an_event_joins_it_once_the_event_has_grown_close() -> None:
    """The airport story founds its own event; after the third story joins the first
    event, that event proposes the airport story's one-member event, above the late-join
    threshold (which is higher than the join threshold)."""
    index = EventIndex(WINDOW, background=ordinary_language)
    background(index)
    assert decide(index, 1, *ERUPTION, founds=1) == 1
    assert decide(index, 2, *ERUPTION_AIRPORT, founds=2) == 2
    first = event_terms(*ERUPTION)
    assert index.late_member_candidate(1, first, NOW) is None  # one member: nothing grew
    assert decide(index, 3, *ERUPTION_BOTH, founds=3) == 1
    both = event_terms(*ERUPTION_BOTH)
    match = index.late_member_candidate(1, both, NOW)
    assert match is not None and match.event_id == 2
    assert match.similarity >= TEXT_LATE_JOIN_THRESHOLD
    assert least_cosine(headline=False) < TEXT_LATE_JOIN_THRESHOLD
    assert index.late_member_candidate(1, both, NOW, refused=[2]) is None  # apart by hand
    airport = event_terms(*ERUPTION_AIRPORT)
    assert index.late_member_candidate(2, airport, NOW) is None  # one member pulls nothing


def test_a_late_join_reusing_the_write_ups_search_finds_what_a_fresh_search_finds() -> None:
    """After the write-up's own search, the late-join search reuses its ranking (handed
    on in the search's trace); the same index searched again from nothing gives the same
    answer."""
    index = EventIndex(WINDOW, background=ordinary_language)
    background(index)
    decide(index, 1, *ERUPTION, founds=1)
    decide(index, 2, *ERUPTION_AIRPORT, founds=2)
    both = event_terms(*ERUPTION_BOTH)
    index.observe(both)
    search = index.search(both, headline_only=False, now=NOW)
    joined = search.join
    assert joined is not None and joined.event_id == 1 and search.trace is not None
    index.add_member(3, 1, both, headline_only=False, when=NOW)
    reused = index.late_member_candidate(1, both, NOW, ranked=search.trace.ranked)
    fresh = index.late_member_candidate(1, both, NOW)
    assert reused is not None and reused == fresh and reused.event_id == 2


def test_a_late_join_takes_only_one_member_text_events_in_the_time_window() -> None:
    """Events of two members, headline events and articles published outside the window
    of the grown event's span are never proposed."""
    for other in ("two members", "headline", "published later"):
        index = EventIndex(WINDOW, background=ordinary_language)
        background(index)
        add(index, 1, 1, *ERUPTION)
        add(index, 3, 1, *ERUPTION_BOTH)
        vector = event_terms(*ERUPTION_AIRPORT)
        index.observe(vector)
        published = NOW + timedelta(days=5) if other == "published later" else None
        index.add_member(
            2, 2, vector, headline_only=other == "headline", when=NOW, published=published
        )
        if other == "two members":
            add(index, 4, 2, *ERUPTION_AIRPORT)
        grown = index.profiles[1]
        query = Query(grown.term_ids, grown.weights, index.stats, background=False)
        close = cosine_if_reaches(query, index.profiles[2], 0.0)
        assert close is not None and close >= TEXT_LATE_JOIN_THRESHOLD, other  # the premise
        assert index.late_member_candidate(1, event_terms(*ERUPTION_BOTH), NOW) is None, other


def test_window_forgets_old_entries() -> None:
    """Entries and events older than the cutoff leave the index."""
    index = EventIndex(WINDOW, background=ordinary_language)
    add(index, 1, 1, "Old story", when=NOW - timedelta(days=10))
    add(index, 2, 2, "New story", when=NOW)
    assert index.drop_older_than(NOW - WINDOW) == 1
    assert set(index.profiles) == {2}
    assert index.stats.documents == 1


def _centroids(members: dict[int, list[dict[str, float]]]) -> dict[int, dict[str, float]]:
    """Each event's centroid by its plain definition: the sum of its members' vectors."""
    sums: dict[int, dict[str, float]] = {}
    for event_id, vectors in members.items():
        total: dict[str, float] = {}
        for vector in vectors:
            for term, weight in vector.items():
                total[term] = total.get(term, 0.0) + weight
        sums[event_id] = total
    return sums


def test_scores_are_the_cosine_of_the_definition() -> None:
    """The array scoring (centroids by term id, bound, searchsorted) gives the cosine of
    the dictionaries, for joins, merges and a second member added to an event."""
    index = EventIndex(WINDOW, background=ordinary_language)
    background(index)
    members: dict[int, list[dict[str, float]]] = {}
    # The second copy of REHAB_REID adds no new term to its centroid (the in-place sum).
    stories = [(1, REHAB_REID), (1, REHAB_REID), (1, ("Tara Reid in rehab again", "Reid.")),
               (2, REHAB_LOHAN), (3, ("Lindsay Lohan rehab deal", "Lohan, 90 days."))]  # fmt: skip
    for entry_id, (event_id, (title, text)) in enumerate(stories, start=1):
        vector = event_terms(title, text)
        index.observe(vector)
        index.add_member(entry_id, event_id, vector, headline_only=False, when=NOW)
        members.setdefault(event_id, []).append(vector)
    queries = [("Lohan rehab: 90 days in a treatment center", "Lindsay Lohan."),
               ("Tara Reid enters rehab in Malibu", "Tara Reid, 33, in rehab.")]  # fmt: skip
    for title, text in queries:
        query = event_terms(title, text)
        index.observe(query)
        match = index.best_event(query, headline_only=False, now=NOW)
        expected = {e: cosine(query, c, index.stats) for e, c in _centroids(members).items()}
        best = max(expected, key=lambda e: expected[e])
        assert match is not None and match.event_id == best
        assert match.similarity == pytest.approx(expected[best], rel=1e-12)


BIEBER_DEPOSITION = [
    "Justin Bieber deposition video released", "Bieber snaps at lawyer in deposition",
    "Watch Bieber's testy deposition", "Bieber deposition: the singer refuses to answer",
    "Justin Bieber rolls his eyes in court video", "Bieber video: 'detrimental to my career'",
    "Bieber questioned about Usher in deposition", "Bieber's lawyers tried to hide the video",
]  # fmt: skip
BIEBER_TOUR = "Bieber can't remember his Australian tour"


def _centroid(vectors: list[dict[str, float]]) -> dict[str, float]:
    centroid: dict[str, float] = {}
    for vector in vectors:
        for term, weight in vector.items():
            centroid[term] = centroid.get(term, 0.0) + weight
    return centroid


def test_a_story_flooding_the_window_keeps_the_weight_of_its_name() -> None:
    """While one story fills the window, its name is in many documents and the window's
    IDF discounts it; its IDF in ordinary language does not. A headline of the story that
    shares only the name joins with the background's weights and would not without."""
    index = EventIndex(WINDOW, background=ordinary_language)
    background(index)
    for entry_id, title in enumerate(BIEBER_DEPOSITION, start=1):
        add(index, entry_id, 1, title)
    query = event_terms(BIEBER_TOUR, "")
    index.observe(query)
    centroid = _centroid([event_terms(title, "") for title in BIEBER_DEPOSITION])
    plain = cosine(query, centroid, index.stats)
    floored = cosine(query, centroid, index.stats, background=True)
    assert plain < least_cosine(headline=True) <= floored
    match = index.best_event(query, headline_only=True, now=NOW)
    assert match is not None and match.event_id == 1
    assert match.similarity == pytest.approx(floored, rel=1e-12)
    # A rare name gets the largest IDF the window gives; a common word ("the", in 2 of
    # the 27 headlines) keeps the window's, higher than its background's.
    stats = index.stats
    assert stats.idf("bieber", background=True) == stats.idf_base() > stats.idf("bieber")
    assert stats.idf("the", background=True) == stats.idf("the")
    assert stats.idf("deposi", background=True) > stats.idf("the") > stats.idf("deposi")


def test_a_headline_weighs_an_event_of_articles_by_the_window_alone() -> None:
    """Articles of two look-alike events share their names, which the background would
    weigh up: a headline is scored against an event of articles with the window's IDF."""
    index = EventIndex(WINDOW, background=ordinary_language)
    background(index)
    second = ("Tara Reid in rehab", "Tara Reid entered a treatment center in Malibu.")
    add(index, 1, 1, *REHAB_REID)
    add(index, 2, 1, *second)
    query = event_terms("Tara Reid enters rehab in Malibu", "")
    index.observe(query)
    centroid = _centroid([event_terms(*REHAB_REID), event_terms(*second)])
    match = index.best_event(query, headline_only=True, now=NOW)
    plain = cosine(query, centroid, index.stats)
    assert plain != pytest.approx(cosine(query, centroid, index.stats, background=True))
    assert match is not None and match.similarity == pytest.approx(plain, rel=1e-12)


def test_compaction_forgets_gone_events_and_old_terms() -> None:
    """After the window moves on, the index holds what a fresh index of the surviving
    entries holds: the same scores, no postings of events gone, no terms of old entries."""
    old = NOW - timedelta(days=10)
    compacted = EventIndex(WINDOW, background=ordinary_language, compact_after=0)
    fresh = EventIndex(WINDOW, background=ordinary_language)
    # Old entries with more terms than the live ones, so that compaction is due.
    filler = " ".join("".join(chr(97 + (7 * i + 3 * j) % 26) for j in range(i % 5 + 3))
                      for i in range(150))  # fmt: skip
    for number, words in enumerate(["zanzibar ferry sinks", "quokka census begins"]):
        add(compacted, 500 + number, 500 + number, words, filler, when=old)
    for index in (compacted, fresh):
        background(index)
        add(index, 1, 1, *REHAB_REID)
    assert compacted.drop_older_than(NOW - WINDOW) == 2
    assert term_hash("zanzib") not in compacted.stats.vocabulary
    assert "zanzib" not in compacted.stats.by_text
    assert len(compacted.stats.hashes) == len(fresh.stats.hashes)
    listed = {e for events in compacted._postings.values() for e in events}
    assert listed == set(compacted.profiles) == set(fresh.profiles)
    again = event_terms(*REHAB_REID)
    scores = []
    for index in (compacted, fresh):
        index.observe(again)
        match = index.best_event(again, headline_only=False, now=NOW)
        assert match is not None and match.event_id == 1
        scores.append(match.similarity)
    assert scores[0] == pytest.approx(scores[1], rel=1e-12)
    for term in [*again, "storm", "zanzib"]:  # renumbered with the background's IDF
        assert compacted.stats.idf(term, background=True) == fresh.stats.idf(term, background=True)


def test_an_event_started_again_under_its_id_compacts_cleanly() -> None:
    """An event dropped from the window and started again under its id (a late exact copy
    of an old entry) leaves lists of its old terms; compaction forgets those terms and
    lists every remaining term only for events whose centroid holds it."""
    old = NOW - timedelta(days=10)
    filler = " ".join("".join(chr(97 + (5 * i + 11 * j) % 26) for j in range(i % 4 + 4))
                      for i in range(120))  # fmt: skip
    index = EventIndex(WINDOW, background=ordinary_language, compact_after=10**9)
    add(index, 1, 7, "Zanzibar ferry sinks", filler, when=old)
    add(index, 2, 8, "Storm closes ports along the coast")
    index.drop_older_than(NOW - WINDOW)
    add(index, 3, 7, *REHAB_REID)
    index.compact_after = 0
    index.drop_older_than(NOW - WINDOW)
    assert term_hash("zanzib") not in index.stats.vocabulary
    assert min(index._postings) >= 0
    for term_id, events in index._postings.items():
        for event_id in events:
            assert term_id in index.profiles[event_id].term_ids


def test_event_ids_beyond_four_bytes_widen_the_postings() -> None:
    """Postings hold event ids in 4 bytes; an id that needs 8 (live or read back at a
    restart) widens every list, and the events before and after it are found as before."""
    huge = 2**31 + 7
    live = EventIndex(WINDOW, background=ordinary_language)
    background(live)
    add(live, 1, 1, *REHAB_LOHAN)
    assert {events.itemsize for events in live._postings.values()} == {4}
    add(live, 2, huge, *REHAB_REID)
    assert {events.itemsize for events in live._postings.values()} == {8}
    stored = EventIndex(WINDOW, background=ordinary_language)
    # Read back without stored vectors: derived from title and text.
    read_back = [
        WindowEntry(n, event_id, False, NOW, None, None, None, *story, None)
        for n, (event_id, story) in enumerate([(1, REHAB_LOHAN), (huge, REHAB_REID)])
    ]
    window = [(entry, *window_vector(entry)) for entry in read_back]
    stored.add_stored_members(window[:1])
    assert {events.itemsize for events in stored._postings.values()} == {4}
    stored.add_stored_members(window[1:])
    assert {events.itemsize for events in stored._postings.values()} == {8}
    for index in (live, stored):
        for event_id, story in [(1, REHAB_LOHAN), (huge, REHAB_REID)]:
            again = event_terms(*story)
            index.observe(again)
            match = index.best_event(again, headline_only=False, now=NOW)
            assert match is not None and match.event_id == event_id


def test_a_single_member_shares_its_term_ids_with_the_centroid() -> None:
    """Most events of a window have one member: its term ids are held once (memory), also
    after compaction renumbers them, and a second member does not change the first's."""
    old = NOW - timedelta(days=10)
    index = EventIndex(WINDOW, background=ordinary_language, compact_after=0)
    # An old entry with more terms than the live ones, so that compaction is due.
    filler = " ".join("".join(chr(97 + (7 * i + 3 * j) % 26) for j in range(i % 5 + 3))
                      for i in range(150))  # fmt: skip
    add(index, 9, 9, "Zanzibar ferry sinks", filler, when=old)
    add(index, 1, 1, *REHAB_REID)
    add(index, 2, 2, *REHAB_LOHAN)
    assert index._members[1].term_ids is index.profiles[1].term_ids
    before = [index.stats.hashes[i] for i in index._members[1].term_ids.tolist()]
    index.drop_older_than(NOW - WINDOW)  # compacts: ids renumbered
    assert term_hash("zanzib") not in index.stats.vocabulary
    assert index._members[1].term_ids is index.profiles[1].term_ids
    add(index, 3, 1, "Tara Reid leaves rehab in Malibu", "Reid left the clinic on Friday.")
    assert [index.stats.hashes[i] for i in index._members[1].term_ids.tolist()] == before
    assert len(index.profiles[1].term_ids) > len(before)


def test_members_of_merged_events_keep_their_terms_through_compaction() -> None:
    """Members no longer record their event: after a merge, compaction still renumbers
    each member's own terms (shared with a centroid or not), and members leaving later
    uncount exactly what they counted."""
    old = NOW - timedelta(days=10)
    index = EventIndex(WINDOW, background=ordinary_language, compact_after=0)
    filler = " ".join("".join(chr(97 + (7 * i + 3 * j) % 26) for j in range(i % 5 + 3))
                      for i in range(150))  # fmt: skip
    add(index, 9, 9, "Zanzibar ferry sinks", filler, when=old)
    background(index)
    add(index, 1, 1, "Titanfall launches on Xbox One")
    add(index, 2, 2, "Xbox One Titanfall bundle on sale")
    add(index, 3, 3, "Quokka census finds record numbers")
    index.merge(1, 2)

    def member_terms() -> dict[int, list[int]]:
        hashes = index.stats.hashes
        return {
            entry_id: sorted(hashes[i] for i in member.term_ids.tolist())
            for entry_id, member in index._members.items()
            if entry_id != 9
        }

    before = member_terms()
    assert index.drop_older_than(NOW - WINDOW) == 1  # the old entry leaves: compaction
    assert term_hash("zanzib") not in index.stats.vocabulary
    assert member_terms() == before
    assert index._members[3].term_ids is index.profiles[3].term_ids
    assert index.drop_older_than(NOW + timedelta(seconds=1)) == len(before)
    assert index.stats.documents == 0
    assert not index.stats.count_by_id.any()


def test_terms_read_back_by_hash_are_the_terms_of_live_vectors() -> None:
    """A restart knows the window's terms by hash only; a live vector's terms then find
    the same ids and frequencies (not new terms with no documents)."""
    stored = EventIndex(WINDOW, background=ordinary_language)
    vector = event_terms(*REHAB_REID)
    hashes = np.array([term_hash(term) for term in vector], dtype=np.uint64)
    ids = stored.stats.intern(hashes)
    stored.stats.add_documents(ids, 1)
    live = EventIndex(WINDOW, background=ordinary_language)
    live.observe(vector)
    assert stored.stats.ids(vector, len(vector)).tolist() == ids.tolist()
    assert len(stored.stats.hashes) == len(vector)  # no term counted twice
    for term in vector:
        assert stored.stats.idf(term) == live.stats.idf(term)
        assert stored.stats.idf(term, background=True) == live.stats.idf(term, background=True)
    assert stored.stats.idf("zanzibar") == stored.stats.idf_base()


def test_documents_counted_in_a_batch_count_as_one_by_one() -> None:
    """`add_hashed_documents` (a restart, `aggregator explain`) gives the frequencies and
    IDF of counting each document's hashes on its own, and the ids of every term in
    order."""
    stories = [REHAB_REID, REHAB_LOHAN, ERUPTION, REHAB_REID]
    documents = [
        np.array([term_hash(term) for term in event_terms(*story)], dtype=np.uint64)
        for story in stories
    ]
    batched, one_by_one = TermStatistics(), TermStatistics()
    ids = batched.add_hashed_documents(documents)
    for hashes in documents:
        one_by_one.add_ids(one_by_one.intern(hashes))
    assert [batched.hashes[i] for i in ids.tolist()] == np.concatenate(documents).tolist()
    assert batched.documents == one_by_one.documents == len(stories)

    def frequencies(stats: TermStatistics) -> dict[int, int]:
        return {h: int(stats.count_by_id[i]) for i, h in enumerate(stats.hashes)}

    assert frequencies(batched) == frequencies(one_by_one)
    assert frequencies(batched)[term_hash("rehab")] == 3
    for story in stories:
        for term in event_terms(*story):
            assert batched.idf(term) == one_by_one.idf(term)
    assert len(batched.add_hashed_documents([])) == 0 and batched.documents == len(stories)


def test_a_founders_merge_search_reuses_its_missed_search_exactly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A headline that matched no event founds one, whose merge search then reuses the
    miss (same ranking, no second cosine for the events already scored): the same answer
    as searching again from nothing, with fewer cosines."""
    import aggregator.dedup.events as events_module

    words = ["titanfall", "xbox", "bundle", "price", "launch", "review", "console", "sale"]
    words += ["storm", "coast", "ferry", "budget", "vote", "rehab", "actress", "festival"]
    words += ["quokka", "census", "island", "record", "strike", "union", "train", "final"]
    rng = random.Random(7)
    shortcut = EventIndex(WINDOW, background=ordinary_language)
    fresh = EventIndex(WINDOW, background=ordinary_language)
    background(shortcut)
    background(fresh)
    cosines = 0
    real_cosine = events_module.cosine_if_reaches

    def counted(*args: Any) -> float | None:
        nonlocal cosines
        cosines += 1
        return real_cosine(*args)

    monkeypatch.setattr(events_module, "cosine_if_reaches", counted)
    # Few candidates per search, so that the limit is reached and must count alike.
    monkeypatch.setattr(events_module, "MAX_CANDIDATE_EVENTS", 3)
    founders = merges = 0
    reused_cosines = searched_cosines = 0
    for number in range(1, 401):
        headline = " ".join(rng.sample(words, 3))
        vector = event_terms(headline, "")
        for index in (shortcut, fresh):
            index.observe(vector)
        search = shortcut.search(vector, headline_only=True, now=NOW)
        found = search.join
        assert found == fresh.best_event(vector, headline_only=True, now=NOW)
        event_id = found.event_id if found else 1000 + number
        for index in (shortcut, fresh):
            index.add_member(number, event_id, vector, headline_only=True, when=NOW)
        before = cosines
        # The founder's search handed on; the reference searches from nothing.
        founded_by = search.trace if found is None else None
        reused = shortcut.merge_candidate(event_id, NOW, founded_by=founded_by)
        middle = cosines
        searched = fresh.merge_candidate(event_id, NOW)
        assert reused == searched  # the same event and the same float
        if found is None:
            founders += 1
            reused_cosines += middle - before
            searched_cosines += cosines - middle
        if searched is not None:
            merges += 1
            for index in (shortcut, fresh):
                index.merge(searched.event_id, event_id)
    assert founders > 20 and merges > 0
    assert reused_cosines < searched_cosines / 2


def test_a_search_finds_the_story_of_an_event_it_does_not_join() -> None:
    """Below the join threshold and above the story threshold, the search names the
    event whose story a new event links to; above the join threshold, the join, and no
    story link to the event joined."""
    index = EventIndex(WINDOW, background=ordinary_language, model=linking_model(0.99, 0.05))
    background(index)
    add(index, 1, 1, *ERUPTION)
    vector = event_terms(*ERUPTION_AIRPORT)
    index.observe(vector)
    found = index.search(vector, headline_only=False, now=NOW)
    assert found.join is None
    assert found.story is not None and found.story.event_id == 1
    assert found.story.probability is not None and found.story.probability >= 0.5
    # An event already of the entry's story is not proposed again.
    again = index.search(vector, headline_only=False, now=NOW, same_story={1})
    assert again.story is None
    joining = EventIndex(WINDOW, background=ordinary_language, model=linking_model(0.05, 0.01))
    background(joining)
    add(joining, 1, 1, *ERUPTION)
    joining.observe(vector)
    joined = joining.search(vector, headline_only=False, now=NOW)
    assert joined.join is not None and joined.join.event_id == 1
    assert joined.story is None  # the event joined is not its own story's link


def test_a_story_reaches_past_the_publication_window() -> None:
    """A write-up months after an event cannot join it, but can be of its story."""
    index = EventIndex(WINDOW, background=ordinary_language, model=linking_model(0.05, 0.05))
    background(index)
    add(index, 1, 1, *ERUPTION)
    vector = event_terms(*ERUPTION_AIRPORT)
    index.observe(vector)
    later = NOW + timedelta(days=120)
    found = index.search(vector, headline_only=False, now=NOW, published=later)
    assert found.join is None
    assert found.story is not None and found.story.event_id == 1


def test_without_a_story_model_nothing_is_linked() -> None:
    plain = linking_model(0.99, 0.05)
    index = EventIndex(
        WINDOW,
        background=ordinary_language,
        model=EventModel(plain.weights, plain.bias, plain.threshold),
    )
    background(index)
    add(index, 1, 1, *ERUPTION)
    vector = event_terms(*ERUPTION_AIRPORT)
    index.observe(vector)
    assert index.search(vector, headline_only=False, now=NOW).story is None


def test_a_write_up_that_joins_names_the_story_of_another_event() -> None:
    """The search that joins the eruption's event also names the next most related event
    (the airport story's own event) for the story link."""
    index = EventIndex(WINDOW, background=ordinary_language, model=linking_model(0.25, 0.05))
    background(index)
    add(index, 1, 1, *ERUPTION)
    add(index, 2, 2, *ERUPTION_AIRPORT)
    vector = event_terms(*ERUPTION_BOTH)
    index.observe(vector)
    found = index.search(vector, headline_only=False, now=NOW)
    assert found.join is not None and found.story is not None
    assert {found.join.event_id, found.story.event_id} == {1, 2}
    assert found.story.reasons and found.story.reasons[0][0] == "similarity"


def test_a_background_table_handed_in_weighs_the_headlines() -> None:
    """The ordinary-language table is the index's own when one is handed in: a term the
    table calls common keeps only the window's IDF in headline decisions, while under a
    table that lacks it the same term counts as rare (the largest IDF), as under no table;
    a table handed in as what reads it is read at the first look-up."""
    common = "volcan"
    table = (np.array([term_hash(common)], dtype=np.uint64), np.array([1.5]))
    empty = (np.array([], dtype=np.uint64), np.array([]))
    read: list[bool] = []

    def reader() -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.float64]]:
        read.append(True)
        return table

    figures = []
    choices: list[Any] = [table, empty, None, reader]
    for background in choices:
        index = EventIndex(WINDOW, background=background)
        for number in range(20):
            add(index, number, number, f"report {number} on the weather")
        add(index, 50, 50, "Volcano erupts near Grindavik")
        stats = index.stats
        figures.append((stats.idf(common, background=True), stats.idf(common), stats.idf_base()))
    (known, window, base), (unknown, _, _), (without, _, _), (from_reader, _, _) = figures
    assert window == pytest.approx(base - math.log(2))
    assert known == pytest.approx(window) == pytest.approx(from_reader)  # max(window, 1.5)
    assert unknown == pytest.approx(base) == pytest.approx(without)
    assert read == [True]  # once, not per look-up
