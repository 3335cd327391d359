"""A feed's template: the terms many of its own items carry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aggregator.dedup.events import EventIndex
from aggregator.dedup.feed_terms import FeedTerms, TemplateRule
from aggregator.dedup.vectors import event_terms
from aggregator.word_frequencies import ordinary_language

FEED, OTHER = 1, 2


def test_a_term_most_items_of_a_feed_carry_is_its_template() -> None:
    terms = FeedTerms(TemplateRule(share=0.3, min_items=3))
    for story in range(10):
        terms.add(FEED, [100, 200 + story])  # 100 is in every title, the rest is the story
    assert terms.template(FEED, [100, 203, 999]).tolist() == [True, False, False]
    assert not terms.template(OTHER, [100]).any()  # another feed's items are not its own


def test_two_items_sharing_a_word_are_no_template() -> None:
    terms = FeedTerms(TemplateRule(share=0.1, min_items=3))
    terms.add(FEED, [1, 2])
    terms.add(FEED, [1, 3])
    assert not terms.template(FEED, [1]).any()
    terms.add(FEED, [1, 4])
    assert terms.template(FEED, [1]).all()


def test_items_leaving_the_window_are_uncounted() -> None:
    terms = FeedTerms(TemplateRule(share=0.5, min_items=2))
    for story in range(4):
        terms.add(FEED, [7, story])
    assert terms.template(FEED, [7]).all()
    for story in range(3):
        terms.remove(FEED, [7, story])
    assert terms.items(FEED) == 1
    assert not terms.template(FEED, [7]).any()


def test_an_update_counts_before_its_first_item_is_placed() -> None:
    """A feed's first fetch shows its template at once: the first item placed already
    sees it, and placing the pending items does not count them twice."""
    terms = FeedTerms(TemplateRule(share=0.5, min_items=3))
    update = [[9, story] for story in range(4)]
    terms.pend(FEED, update)
    assert terms.template(FEED, [9]).all()
    for item in update:
        terms.add(FEED, item, pending=True)
    assert terms.items(FEED) == 4
    terms.end_update(FEED)
    assert terms.items(FEED) == 4 and terms.template(FEED, [9]).all()


def test_an_update_that_ends_forgets_what_it_did_not_place() -> None:
    terms = FeedTerms(TemplateRule(share=0.5, min_items=3))
    terms.pend(FEED, [[5, story] for story in range(5)])
    terms.end_update(FEED)
    assert terms.items(FEED) == 0 and not terms.template(FEED, [5]).any()


def test_the_index_weighs_a_feed_s_template_only_against_its_own_items() -> None:
    """Through the event index: an item of a feed whose titles all end in its show's name
    has part of its weight in the template, against its feed's events only; an index whose
    model gives the template no weight counts nothing."""
    now = datetime(2026, 12, 7, tzinfo=UTC)
    index = EventIndex(timedelta(hours=72), count_templates=True, background=ordinary_language)
    subjects = ["storm hits Brest", "hail over Lyon", "snow in Grenoble", "flood in Nimes"]
    for number, subject in enumerate(subjects, start=1):
        vector = event_terms(f"{subject} Temoins Showname", "")
        index.add_member(number, number, vector, headline_only=True, when=now, observed=False,
                         feed_id=FEED)  # fmt: skip
    query = event_terms("storm over Lille Temoins Showname", "")
    index.observe(query)
    found = index.candidates(query, headline_only=True, now=now, feed_id=FEED)
    assert found and all(c.own_feed and c.own_template_share > 0.0 for _, c, _ in found)
    other = index.candidates(query, headline_only=True, now=now, feed_id=OTHER)
    assert other and not any(c.own_feed or c.own_template_share for _, c, _ in other)
    assert EventIndex(timedelta(hours=72)).feed_terms is None  # the shipped model: no weight
