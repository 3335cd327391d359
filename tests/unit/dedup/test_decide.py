"""The placement decision without a database: stored facts from a dict, the two real
in-memory indexes, and each level of the cascade."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from aggregator.dedup.decide import Merge, Placement, decide_merge, decide_placement
from aggregator.dedup.event_model import EventModel
from aggregator.dedup.events import EventIndex
from aggregator.dedup.grouping import MAX_EVENT_MEMBERS
from aggregator.dedup.index import Fingerprint, SimilarityIndex
from aggregator.dedup.signature import Signer
from aggregator.dedup.vectors import event_terms
from aggregator.models import Entry, JoinLevel
from aggregator.word_frequencies import ordinary_language
from tests.support.models import linking_model
from tests.support.stories import ERUPTION, ERUPTION_AIRPORT, ERUPTION_BOTH

NOW = datetime(2026, 1, 5, 12, tzinfo=UTC)
BACKGROUND = ["Storm closes ports on the coast", "Cup final ends in a draw",
              "Election count goes on overnight", "Shares fall on the market open",
              "Film festival gives its top prize", "Train strike called by the union"]  # fmt: skip


@dataclass
class Facts:
    """What a store would answer: exact duplicates by link, and event sizes."""

    by_link: dict[str, tuple[int, int]] = field(default_factory=dict)
    sizes: dict[int, int] = field(default_factory=dict)
    split: set[frozenset[int]] = field(default_factory=set)

    def exact_duplicate(self, entry: Entry) -> tuple[int, int] | None:
        return self.by_link.get(entry.canonical_url or "")

    def event_sizes(self, event_ids: Iterable[int]) -> dict[int, int]:
        return {i: self.sizes[i] for i in event_ids if i in self.sizes}

    def separated_from(self, event_id: int) -> set[int]:
        return {other for pair in self.split if event_id in pair for other in pair} - {event_id}


def entry(number: int, title: str, text: str, link: str | None = None) -> Entry:
    return Entry(
        identity=f"guid:{number}", guid=str(number), url=link, canonical_url=link, title=title,
        text=text, html="", author=None, published=NOW + timedelta(minutes=number),
        updated=None, content_key=f"key-{number}", distinctive=True,
    )  # fmt: skip


class World:
    """Entries placed as the pipeline would: each its own event unless told otherwise."""

    def __init__(self, chosen: EventModel) -> None:
        self.signer = Signer()
        self.copies = SimilarityIndex(self.signer)
        self.events = EventIndex(timedelta(hours=72), model=chosen, background=ordinary_language)
        self.facts = Facts()

    def decide(self, item: Entry) -> Placement:
        vector = event_terms(item.title, item.text, item.url)
        self.events.observe(vector)
        return decide_placement(
            item, self.signer.sign(item.title, item.text), vector, feed_id=1, now=NOW,
            facts=self.facts, copies=self.copies, events=self.events,
        )  # fmt: skip

    def add(self, number: int, item: Entry, event_id: int) -> None:
        signatures = self.signer.sign(item.title, item.text)
        self.copies.add(Fingerprint(number, 1, event_id, NOW, item.published, signatures))
        vector = event_terms(item.title, item.text, item.url)
        self.events.add_member(
            number, event_id, vector, headline_only=signatures.headline_only, when=NOW,
            published=item.published, feed_id=1,
        )  # fmt: skip
        self.facts.sizes[event_id] = self.facts.sizes.get(event_id, 0) + 1
        if item.canonical_url:
            self.facts.by_link.setdefault(item.canonical_url, (number, event_id))


@pytest.fixture
def world() -> World:
    placed = World(linking_model(0.25, 0.05))
    for number, title in enumerate(BACKGROUND, start=100):
        placed.add(number, entry(number, title, ""), number)
    placed.add(1, entry(1, *ERUPTION, link="https://a.example/eruption"), 1)
    return placed


def test_the_same_link_is_an_exact_duplicate(world: World) -> None:
    found = world.decide(entry(2, "Another title", "", link="https://a.example/eruption"))
    assert (found.level, found.event_id, found.matched_entry_id) == (JoinLevel.EXACT, 1, 1)
    assert found.rule == "same_url_or_text" and found.join is None


def test_a_copy_of_the_text_is_a_near_duplicate(world: World) -> None:
    found = world.decide(entry(2, *ERUPTION))
    assert (found.level, found.event_id, found.matched_entry_id) == (
        JoinLevel.NEAR_DUPLICATE, 1, 1,
    )  # fmt: skip
    assert found.rule == "same_text" and not found.search_story  # nothing new to relate


def test_an_article_joining_its_headline_asks_for_a_story_search() -> None:
    placed = World(linking_model(0.25, 0.05))
    for number, title in enumerate(BACKGROUND, start=100):
        placed.add(number, entry(number, title, ""), number)
    placed.add(1, entry(1, ERUPTION[0], ""), 1)
    found = placed.decide(entry(2, *ERUPTION))
    assert found.level is JoinLevel.NEAR_DUPLICATE and found.rule == "same_headline"
    assert found.search_story


def test_a_write_up_joins_with_the_model_s_probability(world: World) -> None:
    found = world.decide(entry(2, *ERUPTION_BOTH))
    assert found.level is JoinLevel.SAME_EVENT and found.event_id == 1
    assert found.rule == "event_centroid" and found.join is not None
    assert found.join.probability is not None and found.join.probability >= 0.5
    assert found.join.reasons[0][0] == "similarity"


def test_a_full_event_takes_no_more_members_and_names_its_story(world: World) -> None:
    world.facts.sizes[1] = MAX_EVENT_MEMBERS
    world.add(3, entry(3, "Volcano erupts near Grindavik", "Lava reached the road."), 1)
    found = world.decide(entry(2, *ERUPTION_BOTH))
    assert found.level is JoinLevel.FOUNDER and found.event_id is None
    assert found.story is not None and found.story.event_id == 1


def test_a_related_article_founds_an_event_in_the_story(world: World) -> None:
    strict = World(linking_model(0.99, 0.05))
    for number, title in enumerate(BACKGROUND, start=100):
        strict.add(number, entry(number, title, ""), number)
    strict.add(1, entry(1, *ERUPTION), 1)
    found = strict.decide(entry(2, *ERUPTION_AIRPORT))
    assert found.level is JoinLevel.FOUNDER and found.event_id is None
    assert found.story is not None and found.story.event_id == 1


def test_an_unrelated_item_founds_an_event_alone() -> None:
    placed = World(linking_model(0.25, 0.5))
    for number, title in enumerate(BACKGROUND, start=100):
        placed.add(number, entry(number, title, ""), number)
    placed.add(1, entry(1, *ERUPTION), 1)
    found = placed.decide(entry(2, "Parliament passes the fisheries bill", ""))
    assert (found.level, found.event_id, found.join, found.story) == (
        JoinLevel.FOUNDER, None, None, None,
    )  # fmt: skip
    # Its search is handed on to the merges: it missed, and ranked the candidates.
    assert found.trace is not None and found.trace.missed


def grown_eruption(world: World) -> World:
    """The airport story founded event 2 beside the eruption's event 1, then the story
    that tells both joined event 1."""
    world.add(2, entry(2, *ERUPTION_AIRPORT), 2)
    both = entry(3, *ERUPTION_BOTH)
    assert world.decide(both).event_id == 1
    world.add(3, both, 1)
    return world


def test_the_grown_event_takes_in_the_article_it_missed(world: World) -> None:
    grown_eruption(world)
    write_up = event_terms(*ERUPTION_BOTH)
    found = decide_merge(1, write_up, now=NOW, facts=world.facts, events=world.events)
    assert isinstance(found, Merge) and (found.keep, found.gone) == (1, 2)
    assert "one article" in found.reason and found.similarity >= 0.40
    # A copy adds no words: no late join is looked for.
    assert decide_merge(1, None, now=NOW, facts=world.facts, events=world.events) is None


def test_events_split_by_hand_are_never_merged_again(world: World) -> None:
    grown_eruption(world)
    world.facts.split.add(frozenset({1, 2}))
    write_up = event_terms(*ERUPTION_BOTH)
    assert decide_merge(1, write_up, now=NOW, facts=world.facts, events=world.events) is None


def test_a_merge_past_the_size_cap_is_not_made(world: World) -> None:
    grown_eruption(world)
    world.facts.sizes[1] = MAX_EVENT_MEMBERS
    write_up = event_terms(*ERUPTION_BOTH)
    assert decide_merge(1, write_up, now=NOW, facts=world.facts, events=world.events) is None
