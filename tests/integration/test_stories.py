"""Stories on a real SQLite file: the seed's two events of one storyline linked through the
real pipeline (by a story link at a known cosine: what the link does, apart from what the
fitted model decides), links, merges, splits, pruning, the upgrade of a database that had
no stories, and every output."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from aggregator.config import load_config
from aggregator.dedup.event_model import EventModel, shipped_model
from aggregator.digest import build_digest
from aggregator.models import EventQuery, EventView
from aggregator.pipeline import Pipeline
from aggregator.render.atom import render_atom
from aggregator.render.common import FeedInfo
from aggregator.render.html import Site, render_event_page
from aggregator.render.json import event_to_dict
from aggregator.render.jsonfeed_writer import render_json_feed
from aggregator.render.text import render_text
from aggregator.store import Store, open_store
from aggregator.store.sqlite import SqliteStore
from tests.conftest import SEED_CONFIG
from tests.integration.test_store import store_before
from tests.support import sql
from tests.support.browser import SEED_NOW
from tests.support.models import linking_model

LATER = SEED_NOW + timedelta(hours=1)
ARTICLE_003 = "La Maison Blanche affirme qu'un haut responsable russe"
ARTICLE_000 = "Les États-unis Accusent La Russie"


def cosine_story_model(cosine: float) -> EventModel:
    """The shipped join with a story link at `cosine` and nothing else."""
    return linking_model(shipped_model(), cosine)


def seeded(
    path: Path | str, model: EventModel | None = None, *, order: tuple[int, ...] = (0, 1)
) -> Store:
    """The seed feeds through the real pipeline, one feed at a time in `order`."""
    store = open_store(path)
    config = load_config(SEED_CONFIG)
    pipeline = Pipeline(store=store, config=config, clock=lambda: SEED_NOW, model=model)
    try:
        for number in order:
            pipeline.update_feeds([config.feeds[number]])
    finally:
        pipeline.close()
    return store


@pytest.fixture
def store(database: str) -> Store:
    """The seeds with the storyline linked (a link at cosine 0.3), in each backend."""
    opened = seeded(database, cosine_story_model(0.3))
    yield opened
    opened.close()


def by_title(store: Store, start: str) -> EventView:
    found = [e for e in store.events_since(SEED_NOW - timedelta(days=3650))
             if e.canonical.title.startswith(start)]  # fmt: skip
    assert len(found) == 1, start
    return found[0]


@pytest.mark.parametrize("order", [(0, 1), (1, 0)])
def test_a_related_event_links_to_the_story_in_either_arrival_order(
    database: str, order: tuple[int, ...]
) -> None:
    """000 (March: food for arms) and 003 (July: Shoigu in Pyongyang) are two events of
    one story whichever feed comes first: 000 founding its event beside 003's, or 003's
    article joining its own headline beside 000; every unrelated headline stays alone."""
    store = seeded(database, cosine_story_model(0.3), order=order)
    march, july = by_title(store, ARTICLE_000), by_title(store, ARTICLE_003)
    assert march.id != july.id and march.story_id == july.story_id
    assert [other.id for other in march.story] == [july.id]
    assert [other.id for other in july.story] == [march.id]
    others = [e for e in store.events_since(SEED_NOW - timedelta(days=3650))
              if e.id not in (march.id, july.id)]  # fmt: skip
    assert len(others) == 4
    assert all(not event.story for event in others)
    assert len({event.story_id for event in others}) == 4
    (link,) = store.story_links_of(march.id)
    assert {link.event_id, link.linked_event_id} == {march.id, july.id}
    assert link.similarity is not None and link.similarity >= 0.3
    assert link.reasons and link.reasons[0][0] == "similarity"
    store.close()


def test_a_stricter_link_leaves_the_events_alone(database: str) -> None:
    store = seeded(database, cosine_story_model(0.6))
    assert all(not event.story for event in store.events_since(SEED_NOW - timedelta(days=3650)))
    assert sql.one(store, "select count(*) from story_links") == (0,)
    store.close()


def test_linking_two_stories_gives_every_event_the_older_story(store: Store) -> None:
    march, july = by_title(store, ARTICLE_000), by_title(store, ARTICLE_003)
    lone = by_title(store, "Tesla va transformer")
    with store.transaction():
        story = store.link_stories(lone.id, march.id, similarity=0.2, probability=0.6, now=LATER)
    assert story == min(march.story_id, lone.story_id)
    assert store.story_event_ids(july.id) == {march.id, july.id, lone.id}


def test_a_merge_unites_the_two_stories_and_a_split_stays_in_the_story(store: Store) -> None:
    march, july = by_title(store, ARTICLE_000), by_title(store, ARTICLE_003)
    lone = by_title(store, "Tesla va transformer")
    with store.transaction():
        store.merge_events(lone.id, march.id, similarity=None, reason="by hand", now=LATER)
    assert store.story_event_ids(lone.id) == {lone.id, july.id}
    merged = store.event(lone.id)
    assert merged is not None and [other.id for other in merged.story] == [july.id]
    # The link that named the event merged away names the event that absorbed it.
    assert {link.event_id for link in store.story_links_of(lone.id)} | {
        link.linked_event_id for link in store.story_links_of(lone.id)
    } == {lone.id, july.id}
    # Merging the two linked events leaves no link of an event with itself.
    with store.transaction():
        store.merge_events(lone.id, july.id, similarity=None, reason="by hand", now=LATER)
    assert all(link.event_id != link.linked_event_id for link in store.story_links_of(lone.id))
    assert store.story_event_ids(lone.id) == {lone.id}
    entry = next(m.id for m in store.event_members(lone.id) if m.title.startswith(ARTICLE_000))
    with store.transaction():
        new = store.move_entry_to_new_event(entry, now=LATER)
    assert store.story_event_ids(new) == {lone.id, new}


def test_pruning_removes_the_links_with_the_events(store: Store) -> None:
    later = SEED_NOW + timedelta(days=400)
    store.prune(before=later, keep_tombstones_until=later, now=later)
    assert sql.one(store, "select count(*) from story_links") == (0,)


def test_upgrade_makes_every_event_its_own_story(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    store = store_before(path, SqliteStore._schema_stories)
    for number in (1, 2):
        store.db.execute(
            "insert into events (id, first_seen, last_seen) values (?, '2025-01-01', '2025-01-01')",
            [number],
        )
    store.close()
    upgraded = open_store(path)
    rows = upgraded.db.execute("select id, story_id from events order by id").fetchall()
    assert rows == [(1, 1), (2, 2)]
    assert "story_links" in upgraded.db.table_names()
    upgraded.close()


def test_every_output_names_the_other_events_of_the_story(store: Store) -> None:
    """The terminal, the JSON digest, the event page and both feed formats."""
    march, july = by_title(store, ARTICLE_000), by_title(store, ARTICLE_003)
    as_json = event_to_dict(march)["story"]
    assert as_json["story_id"] == march.story_id
    assert [other["event_id"] for other in as_json["other_events"]] == [july.id]
    assert as_json["other_events"][0]["title"] == july.canonical.title

    query = EventQuery()
    digest = build_digest(store.find_events(query), now=LATER, query=query)
    text = render_text(digest)
    assert f"same story: 1 other event: «{july.canonical.title}» (#{july.id}" in text

    page = render_event_page(march, site=Site())
    assert f'href="/event/{july.id}"' in page and "Same story: 1 other event" in page

    feed = FeedInfo(base_url="http://127.0.0.1:8080", self_path="/feed.json")
    items = json.loads(render_json_feed([march], feed=feed))["items"]
    story = items[0]["_aggregator"]["story"]
    assert story["other_events"][0]["event_url"] == f"http://127.0.0.1:8080/event/{july.id}"
    atom = render_atom([march], feed=feed, generated_at=LATER).decode()
    assert f"http://127.0.0.1:8080/event/{july.id}" in atom and "Same story" in atom
