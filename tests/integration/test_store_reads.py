"""The store's reads for the digest and the web page, on real SQLite files: FTS5 search,
windows, groups, batches."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aggregator.models import EventQuery, FeedSpec
from aggregator.store import Store, open_store
from tests.conftest import MAISON_BLANCHE
from tests.support.browser import SEED_NOW, seed_database
from tests.support.hostile import ingest

ITEM = """<item><guid>{guid}</guid><title>{title}</title>
<link>https://local.test/{guid}</link><description>{text}</description>
<pubDate>{date}</pubDate></item>"""


def rss(*items: str) -> bytes:
    body = "".join(items)
    return f'<rss version="2.0"><channel><title>t</title>{body}</channel></rss>'.encode()


@pytest.fixture
def seed_store(database: str) -> Store:
    """The seed's events in a database of each backend: search reads alike in both."""
    store = open_store(seed_database(database))
    yield store
    store.close()


def titles(events: list[object]) -> set[str]:
    return {e.canonical.title for e in events}  # type: ignore[attr-defined]


def test_search_folds_accents_and_needs_every_word(seed_store: Store) -> None:
    """'coree' finds 'Corée'; two words must both be present; no word is FTS syntax."""
    found = seed_store.find_events(EventQuery(search="coree munitions"))
    assert MAISON_BLANCHE in titles(found) and len(found) == 2
    assert titles(seed_store.find_events(EventQuery(search="Tesla Chatsworth"))) == {
        "Tesla va transformer les Pacific Theatres fermés à Chatsworth en centre de "
        "livraison et centre de services"
    }
    assert seed_store.find_events(EventQuery(search="Tesla Moscou")) == []
    for syntax in ('"', "NOT", "a OR b", "x AND", "(", "NEAR(", "*", "-", "title:x"):
        seed_store.find_events(EventQuery(search=syntax))  # never an FTS5 syntax error


def test_windows_on_arrival_and_on_publication(seed_store: Store) -> None:
    """arrived_since is about first_seen; the published range about the item's date."""
    assert len(seed_store.find_events(EventQuery(arrived_since=SEED_NOW))) == 6
    assert seed_store.find_events(EventQuery(arrived_since=SEED_NOW + timedelta(1))) == []
    day = datetime(2023, 8, 8, tzinfo=UTC)
    on_day = seed_store.find_events(
        EventQuery(published_from=day, published_until=day + timedelta(days=1))
    )
    assert titles(on_day) == {MAISON_BLANCHE}
    before = seed_store.find_events(EventQuery(published_until=datetime(2023, 4, 1, tzinfo=UTC)))
    assert len(before) == 1


def test_group_filter_and_latest(seed_store: Store) -> None:
    """Groups filter on the member feeds' group; `latest` keeps the most recently joined."""
    assert len(seed_store.find_events(EventQuery(groups=("seeds", "other")))) == 6
    assert seed_store.find_events(EventQuery(groups=("other",))) == []
    latest = seed_store.find_events(EventQuery(), latest=2)
    assert [e.id for e in latest] == sorted((e.id for e in latest), reverse=True)
    assert len(latest) == 2
    assert seed_store.group_names() == ["seeds"]


def test_events_by_id_keeps_order_skips_unknown_and_reads_explanations(
    seed_store: Store,
) -> None:
    """The batch loader returns the asked order, members with how they joined."""
    ids = [e.id for e in seed_store.find_events(EventQuery())]
    assert [e.id for e in seed_store.events_by_id([ids[2], 999_999, ids[0]])] == [
        ids[2], ids[0],
    ]  # fmt: skip
    grouped = next(e for e in seed_store.events_by_id(ids) if e.others)
    joined = grouped.canonical
    assert joined.matched_entry_id == grouped.others[0].id
    assert joined.match_rule == "same_headline"


def test_search_index_follows_updates_in_place(tmp_path: Path) -> None:
    """An item edited by its publisher is found by its new words, not its old ones."""
    feed = tmp_path / "local.rss"
    date = "Fri, 28 Jul 2023 12:00:00 GMT"
    feed.write_bytes(rss(ITEM.format(guid="a", title="Orchard harvest", text="apples", date=date)))
    spec = FeedSpec(name="local", group="g", path=feed)
    ingest(tmp_path / "u.db", (spec,), now=SEED_NOW)
    feed.write_bytes(rss(ITEM.format(guid="a", title="Orchard harvest", text="pears", date=date)))
    later = SEED_NOW.timestamp() + 3600
    os.utime(feed, (later, later))
    report = ingest(tmp_path / "u.db", (spec,), now=SEED_NOW + timedelta(hours=2))
    assert report.feeds[0].updated == 1
    store = open_store(tmp_path / "u.db")
    try:
        assert len(store.find_events(EventQuery(search="pears"))) == 1
        assert store.find_events(EventQuery(search="apples")) == []
    finally:
        store.close()


def test_search_migration_indexes_existing_entries(tmp_path: Path) -> None:
    """Adding the index to a SQLite database that already holds entries indexes them all."""
    seed_store = open_store(seed_database(tmp_path / "seed.db"))
    seed_store.db["entries"].disable_fts()
    seed_store.db.execute("drop index entries_effective_time")
    seed_store._schema_digest()
    assert len(seed_store.find_events(EventQuery(search="coree"))) == 2
