"""Acceptance on the seed feeds: the repeated headline is one event, nothing else merges;
the two events of the storyline (000 and the 003 article) are one story.

Runs the real pipeline over config/feeds.yaml into a real SQLite file.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from aggregator.config import load_config
from aggregator.models import JoinLevel
from aggregator.pipeline import Pipeline
from aggregator.store import open_store
from tests.conftest import MAISON_BLANCHE, SEED_CONFIG
from tests.support.clock import FixedClock

UNRELATED = ("Tesla va transformer", "Taille et prévisions", "NWTC recherche", "Machine Fest")


@pytest.fixture
def pipeline(tmp_path: Path, clock: FixedClock) -> Pipeline:
    store = open_store(tmp_path / "seed.db")
    pipe = Pipeline(store=store, config=load_config(SEED_CONFIG), clock=clock)
    yield pipe
    pipe.close()
    store.close()


def test_first_update_groups_the_repeated_headline(pipeline: Pipeline) -> None:
    """One event holds both occurrences of the Maison Blanche headline."""
    report = pipeline.run(all_feeds=True)
    assert [r.status for r in report.feeds] == ["ok", "ok"]
    events = pipeline.store.events_since(pipeline.clock() - pipeline.config.settings.dedup_window)
    with_headline = [e for e in events if any(m.title == MAISON_BLANCHE for m in e.members)]
    assert len(with_headline) == 1
    event = with_headline[0]
    assert len(event.members) == 2
    assert {m.identity for m in event.members} == {
        "guid:seed-003-related-3",
        "guid:seed-003-article",
    }
    # The article (full text) is canonical: same priority and date, longest text wins.
    assert event.canonical.identity == "guid:seed-003-article"
    assert event.canonical_reason.startswith("longest")
    levels = {m.identity: m.join_level for m in event.members}
    assert levels == {
        "guid:seed-003-related-3": JoinLevel.FOUNDER,
        "guid:seed-003-article": JoinLevel.NEAR_DUPLICATE,
    }
    assert event.canonical.similarity is not None and event.canonical.similarity >= 0.8


def test_every_other_item_is_its_own_event(pipeline: Pipeline) -> None:
    """The 000 article and each unrelated headline stand alone: 6 events for 7 items."""
    pipeline.run(all_feeds=True)
    events = pipeline.store.events_since(pipeline.clock() - pipeline.config.settings.dedup_window)
    assert len(events) == 6
    assert pipeline.store.counts()["entries"] == 7
    singles = [e for e in events if len(e.members) == 1]
    titles = [e.canonical.title for e in singles]
    for fragment in (*UNRELATED, "Les États-unis Accusent La Russie"):
        assert sum(fragment in title for title in titles) == 1, fragment


def test_the_two_events_of_the_storyline_are_one_story(pipeline: Pipeline) -> None:
    """000 (March) and the 003 article (July) are two events of one story; nothing else is
    in a story with anything."""
    pipeline.run(all_feeds=True)
    events = pipeline.store.events_since(pipeline.clock() - pipeline.config.settings.dedup_window)
    article = next(e for e in events if e.canonical.identity == "guid:seed-003-article")
    march = next(e for e in events if "Les États-unis Accusent La Russie" in e.canonical.title)
    assert article.id != march.id and article.story_id == march.story_id
    assert [other.id for other in article.story] == [march.id]
    alone = [e for e in events if e.id not in (article.id, march.id)]
    assert len(alone) == 4 and all(not e.story for e in alone)


def test_second_update_adds_and_changes_nothing(pipeline: Pipeline, clock: FixedClock) -> None:
    """A second pass (files unchanged) stores nothing new and changes no event."""
    pipeline.run(all_feeds=True)
    before = pipeline.store.counts()
    snapshot = list(pipeline.store.db.query("select * from events order by id"))
    entries = list(pipeline.store.db.query("select id, title, event_id from entries order by id"))
    report = pipeline.run(all_feeds=True)
    assert {r.status for r in report.feeds} == {"not_modified"}
    assert report.total("new") == 0 and report.total("updated") == 0
    assert pipeline.store.counts() == before
    assert list(pipeline.store.db.query("select * from events order by id")) == snapshot
    assert (
        list(pipeline.store.db.query("select id, title, event_id from entries order by id"))
        == entries
    )


def test_reparsing_unchanged_content_changes_nothing(pipeline: Pipeline) -> None:
    """Even when the bytes are fetched and parsed again, existing entries are left alone."""
    pipeline.run(all_feeds=True)
    before = pipeline.store.counts()
    pipeline.store.db.execute("update feeds set last_modified = null, etag = null")
    report = pipeline.run(all_feeds=True)
    assert {r.status for r in report.feeds} == {"ok"}
    assert report.total("new") == 0 and report.total("updated") == 0
    assert pipeline.store.counts() == before


def test_restart_rebuilds_the_window_and_still_groups(tmp_path: Path, clock: FixedClock) -> None:
    """A new process over the same database finds copies of entries stored before."""
    config = load_config(SEED_CONFIG)
    store = open_store(tmp_path / "seed.db")
    first = Pipeline(store=store, config=config, clock=clock)
    first.run(all_feeds=True)
    first.close()
    second = Pipeline(store=store, config=config, clock=clock)
    assert len(second.index) == 7
    store.close()
