"""Retention: old events pruned whole, tombstones so pruned items are not new again; on a
SQLite file and on a real PostgreSQL server alike."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from aggregator.config import parse_config
from aggregator.maintenance import prune
from aggregator.pipeline import Pipeline
from aggregator.store import Store, open_store, to_db_time
from tests.support import sql
from tests.support.clock import FixedClock
from tests.support.daemon import Item, rss


def story(key: str, number: int) -> Item:
    """Item `key` telling story `number` (same number, same title and text)."""
    words = " ".join(f"mot{number}x{k}" for k in range(40))
    return Item(
        guid=key,
        title=f"Story {number} about the river crossing and the new bridge",
        text=f"Story {number}: {words}",
        link=f"https://example.org/{key}",
    )


class Feeds:
    """Three local feed files the test rewrites."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def write(self, name: str, *items: Item) -> None:
        (self.directory / f"{name}.rss").write_bytes(rss(name, items))


@pytest.fixture
def feeds(tmp_path: Path) -> Feeds:
    return Feeds(tmp_path)


@pytest.fixture
def pipeline(database: str, tmp_path: Path, feeds: Feeds, clock: FixedClock) -> Iterator[Pipeline]:
    for name in ("a", "b", "c"):
        feeds.write(name, story(f"{name}-seed", 90 + ord(name)))
    text = "groups:\n  g:\n    feeds:\n" + "".join(
        f"      - {{name: {name}, path: {name}.rss}}\n" for name in ("a", "b", "c")
    )
    store = open_store(database)
    made = Pipeline(store=store, config=parse_config(text, tmp_path / "f.yaml"), clock=clock)
    yield made
    made.close()
    store.close()


def guids(store: Store) -> set[str]:
    return {str(row[0]) for row in sql.rows(store, "select guid from entries")}


def tombstone_expiry(store: Store, identity_like: str) -> str:
    found = sql.rows(
        store, "select expires from tombstones where identity like ?", [f"%{identity_like}%"]
    )
    assert len(found) <= 1, found
    return str(found[0][0]) if found else ""


def test_old_events_go_whole_and_pruned_items_are_not_new_again(
    pipeline: Pipeline, feeds: Feeds, clock: FixedClock
) -> None:
    """Events whose newest member is older than 30 days are pruned with every member;
    an event with a recent member stays whole; pruned items that feeds still list, or
    copy (same text, or same URL), are recognised and not stored again."""
    store = pipeline.store
    feeds.write("a", story("a1", 1), story("a2", 2), story("x", 3))
    feeds.write("b", story("b2", 2))  # an exact copy of a2
    assert pipeline.run(all_feeds=True).total("new") == 3 + 1 + 1  # and c's seed item
    clock.advance(timedelta(days=25))
    feeds.write("b", story("b2", 2), story("bx", 3))  # a recent copy of x
    assert pipeline.run(all_feeds=True).total("new") == 1

    clock.advance(timedelta(days=10))  # day 35: a1, a2, b2 and c's seed are old
    summary = prune(pipeline, clock())
    assert summary.startswith("pruned 3 events and 4 entries older than 30 days; 4 tombstones")
    assert guids(store) == {"x", "bx"}  # x is old, but its event has a recent member
    assert store.counts()["events"] == 1

    feeds.write("c", story("c1", 1), Item("c2", "Another title", "Another text", a2_link()))
    report = pipeline.run(all_feeds=True)
    assert report.total("new") == 0  # a1, a2, b2 listed again; c1 copies a1; c2 has a2's URL
    assert guids(store) == {"x", "bx"}

    clock.advance(timedelta(days=5))  # a sighting extends the tombstone (day 40 + 60)
    feeds.write("a", story("a1", 1), story("x", 3))
    assert pipeline.run(all_feeds=True).total("new") == 0
    assert tombstone_expiry(store, "a1") == to_db_time(clock() + timedelta(days=60))


def a2_link() -> str:
    return story("a2", 2).link


def test_tombstones_expire_after_their_days_unseen(
    pipeline: Pipeline, feeds: Feeds, clock: FixedClock
) -> None:
    """A tombstone not seen for `tombstone_days` is deleted; the item is then new again."""
    store = pipeline.store
    feeds.write("a", story("a1", 1))
    pipeline.run(all_feeds=True)
    clock.advance(timedelta(days=31))
    feeds.write("a", story("a9", 9))  # a1 leaves the feed
    pipeline.run(all_feeds=True)
    # a1 and the b, c seed items: old and out of every feed.
    assert prune(pipeline, clock()).endswith("3 tombstones kept 60 days, 0 expired")
    assert tombstone_expiry(store, "a1") == to_db_time(clock() + timedelta(days=60))
    clock.advance(timedelta(days=61))
    assert prune(pipeline, clock()).endswith("1 tombstones kept 60 days, 3 expired")  # a9's
    assert tombstone_expiry(store, "a1") == ""
    feeds.write("a", story("a1", 1), story("a9", 9))
    assert pipeline.run(all_feeds=True).total("new") == 1
    assert "a1" in guids(store)


def test_short_headlines_leave_no_content_tombstone(
    pipeline: Pipeline, feeds: Feeds, clock: FixedClock
) -> None:
    """A headline-only "Live updates" is not distinctive content: after it is pruned,
    another feed's "Live updates" is still new (as exact dedup would not merge them)."""
    feeds.write("a", Item("live-a", "Live updates", "", "https://a.example/live"))
    pipeline.run(all_feeds=True)
    clock.advance(timedelta(days=31))
    prune(pipeline, clock())
    feeds.write("b", Item("live-b", "Live updates", "", "https://b.example/live"))
    assert pipeline.run(all_feeds=True).total("new") == 1


def test_pruning_inside_the_dedup_window_rebuilds_the_indexes(
    database: str, tmp_path: Path, feeds: Feeds, clock: FixedClock
) -> None:
    """Retention shorter than the dedup window: after a prune, a near-copy of a pruned
    item starts a new event instead of joining the deleted one."""
    feeds.write("a", story("a1", 1))
    text = (
        "settings:\n  retention_days: 1\n  dedup_window: 5d\n"
        "groups:\n  g:\n    feeds:\n      - {name: a, path: a.rss}\n"
    )
    store = open_store(database)
    pipeline = Pipeline(store=store, config=parse_config(text, tmp_path / "f.yaml"), clock=clock)
    try:
        pipeline.run(all_feeds=True)
        ((pruned_id,),) = sql.rows(store, "select id from entries")
        clock.advance(timedelta(days=2))
        prune(pipeline, clock())
        assert pruned_id not in pipeline.index
        near = story("a1-edited", 1)
        near = Item(near.guid, near.title, near.text.replace("mot1x20", "changed"), near.link)
        feeds.write("a", near)
        report = pipeline.run(all_feeds=True)
        assert (report.feeds[0].status, report.total("new")) == ("ok", 1)
        assert store.counts()["events"] == 1
    finally:
        pipeline.close()
        store.close()
