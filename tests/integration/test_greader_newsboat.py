"""The Google Reader API tested with a client nobody here wrote: Debian's newsboat 2.21 in
its FeedHQ mode (ClientLogin, subscription/list, token, edit-tag, mark-all-as-read, and the
streams in Google's Atom form under /reader/atom/), run unattended against `aggregator
serve` started as a process, on the seed database, on a fixture where one story is carried
by two feeds, and on 68 real French news feeds.

newsboat runs with a throwaway home, config and cache, and contacts nothing but the
server. Its unread count (`-x reload print-unread`) must be ours; marks made in newsboat's
own screens (driven on a pseudo-terminal) must reach our digest, and marks made through the
API must reach newsboat. These tests skip only when the newsboat binary is absent
(`.ci/run` installs it).
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import pytest

from aggregator.greader.ids import ITEM_BASE, long_item_id
from aggregator.models import EventQuery, FeedSpec, ReadingState
from aggregator.store import open_store
from tests.support.browser import seed_database
from tests.support.greader import (
    FIXTURE_NOW,
    KEPT_UNREAD,
    NEWSBOAT,
    PASSWORD,
    READ,
    USER,
    Newsboat,
    ReaderClient,
    atom_url,
    many_feed_database,
    on_screen,
    our_unread_count,
    serve_process,
    two_feed_database,
    when,
    write_config,
)
from tests.support.hostile import ingest

pytestmark = pytest.mark.skipif(
    NEWSBOAT is None, reason="newsboat is absent (Debian: apt-get install newsboat)"
)


def unread_ids(db: Path) -> set[int]:
    store = open_store(db, create=False)
    try:
        return {e.id for e in store.find_events(EventQuery(state=ReadingState.UNREAD))}
    finally:
        store.close()


def all_events(db: Path) -> dict[int, set[int]]:
    """Every event -> the feeds that carried a copy of it."""
    store = open_store(db, create=False)
    try:
        return {e.id: {m.feed_id for m in e.members} for e in store.find_events(EventQuery())}
    finally:
        store.close()


def feed_names(db: Path) -> dict[int, str]:
    store = open_store(db, create=False)
    try:
        return {state.id: state.name for state in store.feed_states()}
    finally:
        store.close()


def listed_order(db: Path) -> list[int]:
    """The feeds in subscription/list's order (group, then name), as newsboat lists them."""
    store = open_store(db, create=False)
    try:
        return [state.id for state in store.feed_states()]
    finally:
        store.close()


def config_for(tmp_path: Path, db: Path) -> Path:
    store = open_store(db, create=False)
    try:
        groups = store.group_names()
    finally:
        store.close()
    return write_config(tmp_path / "feeds.yaml", [(USER, PASSWORD)], groups)


def test_newsboat_logs_in_lists_the_feeds_and_counts_what_we_count(tmp_path: Path) -> None:
    """On the seed: newsboat logs in, subscribes to every feed under its name, downloads
    every event once (its guid is the event's item id), and its unread count is ours."""
    db = seed_database(tmp_path / "seed.db")
    with serve_process(config_for(tmp_path, db), db) as base_url:
        newsboat = Newsboat(tmp_path / "newsboat", base_url)
        count = newsboat.reload_and_count()
        log = newsboat.log.read_text(encoding="utf-8", errors="replace")
    assert count == our_unread_count(db) == 6
    assert "FeedHqApi::retrieve_auth" in log and "Auth=" in log
    names = feed_names(db)
    assert newsboat.cached_feeds() == {
        atom_url(base_url, f"feed/{feed_id}"): name for feed_id, name in names.items()
    }
    items = newsboat.cached_items()
    assert set(items) == {long_item_id(event_id) for event_id in all_events(db)}
    assert all(unread for _, unread in items.values())


def test_marks_made_in_newsboat_reach_our_digest(tmp_path: Path) -> None:
    """newsboat's own screens on a terminal: opening an article marks its event read
    (edit-tag), "mark feed read" marks the feed's events read (mark-all-as-read); both are
    in our digest, and newsboat's next reload agrees."""
    db = seed_database(tmp_path / "seed.db")
    events = all_events(db)
    first, second = listed_order(db)
    first_events = {e for e, feeds in events.items() if first in feeds}
    assert len(first_events) == 1 and len(events) == 6
    with serve_process(config_for(tmp_path, db), db) as base_url:
        newsboat = Newsboat(tmp_path / "newsboat", base_url)
        assert newsboat.reload_and_count() == 6
        # newsboat marks an article read at the first key pressed in its view.
        newsboat.interactive([
            (b"\r", on_screen("Articles in feed")),  # open the first feed
            (b"\r", on_screen("Link:")),  # open its article
            (b"q", when(lambda: unread_ids(db) == set(events) - first_events)),
            (b"q", on_screen("Your feeds")),  # back to the feed list
            (b"\x1bOB", bool),  # the cursor down to the second feed (a redraw)
            (b"A", when(lambda: not unread_ids(db))),  # mark feed read
            (b"q", lambda _screen: True),
        ])  # fmt: skip
        assert our_unread_count(db) == 0
        assert newsboat.reload_and_count() == 0
    assert {e for e, feeds in events.items() if second in feeds} == set(events) - first_events


def test_marks_made_through_the_api_reach_newsboat(tmp_path: Path) -> None:
    """Marked read as NetNewsWire marks (edit-tag, a=read), and unread again as newsboat
    does (r=read, a=kept-unread): newsboat's next reload counts what we count."""
    db = seed_database(tmp_path / "seed.db")
    with serve_process(config_for(tmp_path, db), db) as base_url:
        newsboat = Newsboat(tmp_path / "newsboat", base_url)
        assert newsboat.reload_and_count() == 6
        client = ReaderClient(base_url)
        assert client.login().status == 200
        ids = client.unread_ids()
        assert client.set_state(ids[:2], READ, add=True).text == "OK"
        assert our_unread_count(db) == 4
        assert newsboat.reload_and_count() == 4
        body = (
            f"i={long_item_id(ids[0] - ITEM_BASE)}&r={READ}&a={KEPT_UNREAD}"
            f"&a=user/-/state/com.google/tracking-kept-unread&ac=edit&T={client.edit_token()}"
        )  # what newsboat posts to mark an article unread
        answer = client.post("/reader/api/0/edit-tag", body)
        assert answer.status == 200 and answer.text == "OK"
        assert our_unread_count(db) == 5
        assert newsboat.reload_and_count() == 5
        assert newsboat.cached_items()[long_item_id(ids[0] - ITEM_BASE)][1] is True


def test_a_story_two_feeds_carried_is_one_article_read_once(tmp_path: Path) -> None:
    """The harbour story is in both feeds' streams with one id: newsboat holds it once and
    counts four unread, as we do; read through the API, it is read under both feeds."""
    db = two_feed_database(tmp_path)
    events = all_events(db)
    shared = [e for e, feeds in events.items() if len(feeds) == 2]
    assert len(events) == 4 and len(shared) == 1
    with serve_process(config_for(tmp_path, db), db) as base_url:
        newsboat = Newsboat(tmp_path / "newsboat", base_url)
        assert newsboat.reload_and_count() == our_unread_count(db) == 4
        items = newsboat.cached_items()
        assert set(items) == {long_item_id(e) for e in events}
        client = ReaderClient(base_url)
        client.login()
        for feed_id in events[shared[0]]:
            atom = client.get(f"/reader/atom/feed%2F{feed_id}").text
            carried = [e for e, feeds in events.items() if feed_id in feeds]
            assert atom.count("<entry ") == len(carried)
            assert long_item_id(shared[0]) in atom
        assert client.set_state([ITEM_BASE + shared[0]], READ, add=True).text == "OK"
        assert newsboat.reload_and_count() == our_unread_count(db) == 3
        items = newsboat.cached_items()
        assert items[long_item_id(shared[0])][1] is False
        assert sum(unread for _, unread in items.values()) == 3


def test_newsboat_on_a_larger_fixture_counts_every_story_once(tmp_path: Path) -> None:
    """12 feeds in three groups, about 1,000 items, a quarter of the stories carried by two
    or three feeds: newsboat's count is ours and each event is one article; a feed marked
    read in newsboat is read in our digest, including its stories other feeds carried."""
    db = many_feed_database(tmp_path)
    events = all_events(db)
    multi = [e for e, feeds in events.items() if len(feeds) > 1]
    assert len(events) > 500 and len(multi) > 100
    with serve_process(config_for(tmp_path, db), db) as base_url:
        newsboat = Newsboat(tmp_path / "newsboat", base_url)
        assert newsboat.reload_and_count() == our_unread_count(db) == len(events)
        assert set(newsboat.cached_items()) == {long_item_id(e) for e in events}
        first = listed_order(db)[0]  # newsboat lists subscription/list's order
        of_first = {e for e, feeds in events.items() if first in feeds}
        newsboat.interactive([
            (b"A", when(lambda: unread_ids(db) == set(events) - of_first)),
            (b"q", lambda _screen: True),
        ])  # fmt: skip
        assert newsboat.reload_and_count() == our_unread_count(db) == len(events) - len(of_first)
        assert any(len(events[e]) > 1 for e in of_first)


FRENCH_FEEDS = "feeds-fr-2025-02-10"


def french_feeds(root: Path) -> tuple[FeedSpec, ...]:
    """The 68 RSS files of the French corpus, one feed each, grouped by outlet."""
    with (root / "manifest.csv").open(encoding="utf-8") as manifest:
        rows = [row for row in csv.DictReader(manifest) if row["kind"] == "rss2"]
    return tuple(
        FeedSpec(name=f"{row['outlet']} — {row['section']}", group=row["outlet"],
                 path=root / row["file"])
        for row in rows
    )  # fmt: skip


def test_newsboat_on_68_real_feeds_counts_every_story_once(
    tmp_path: Path, shared_data: Callable[[str], Path]
) -> None:
    """68 French news feeds saved at one moment (1,603 items; the same article in several
    sections, the same news at several outlets): newsboat's count is ours, each event is
    one article whatever the number of feeds that carried it, and marking stories that
    several feeds carried read through the API lowers its count by exactly that many."""
    root = shared_data(FRENCH_FEEDS)
    db = tmp_path / "french.db"
    ingest(db, french_feeds(root), now=FIXTURE_NOW)
    events = all_events(db)
    multi = sorted(e for e, feeds in events.items() if len(feeds) > 1)
    assert len(events) > 1000 and len(multi) > 50
    with serve_process(config_for(tmp_path, db), db) as base_url:
        newsboat = Newsboat(tmp_path / "newsboat", base_url)
        count = newsboat.reload_and_count()
        assert count == our_unread_count(db) == len(events)
        items = newsboat.cached_items()
        assert set(items) == {long_item_id(e) for e in events}
        client = ReaderClient(base_url)
        client.login()
        assert sorted(client.unread_ids()) == sorted(ITEM_BASE + e for e in events)
        marked = client.set_state([ITEM_BASE + e for e in multi[:10]], READ, add=True)
        assert marked.text == "OK"
        assert newsboat.reload_and_count() == our_unread_count(db) == len(events) - 10
