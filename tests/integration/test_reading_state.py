"""Read and starred state per event on a real SQLite file and a real PostgreSQL server:
marks, merges, splits, pruning, ids that are never given twice, and the upgrade of a
SQLite database that had no state."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from aggregator.models import EventQuery, Mark, ReadingState
from aggregator.store import Store, open_store
from aggregator.store.sqlite import MIGRATIONS, SqliteStore
from tests.integration.test_store import store_before
from tests.support import sql
from tests.support.browser import SEED_NOW, seed_database

LATER = SEED_NOW + timedelta(hours=1)


@pytest.fixture
def store(database: str) -> Store:
    """The seed's events in a database of each backend."""
    opened = open_store(seed_database(database))
    yield opened
    opened.close()


def ids(store: Store, state: ReadingState | None = None) -> list[int]:
    return sorted(event.id for event in store.find_events(EventQuery(state=state)))


def test_events_start_unread_and_marks_filter_them(store: Store) -> None:
    """Every new event is unread and unstarred; a mark changes only what it names, once."""
    every = ids(store)
    assert len(every) == 6 and ids(store, ReadingState.UNREAD) == every
    assert ids(store, ReadingState.STARRED) == []
    first, second, *_ = every
    with store.transaction():
        assert store.mark_events([first, second], Mark(read=True), now=LATER) == 2
        assert store.mark_events([first], Mark(read=True), now=LATER) == 0  # already read
        assert store.mark_events([second], Mark(starred=True), now=LATER) == 1
    assert ids(store, ReadingState.UNREAD) == every[2:]
    assert ids(store, ReadingState.STARRED) == [second]
    assert store.count_events(EventQuery(state=ReadingState.UNREAD)) == 4
    event = store.event(second)
    assert event is not None and event.read and event.starred
    with store.transaction():
        assert store.mark_events([second], Mark(read=False, starred=False), now=LATER) == 2
    assert ids(store, ReadingState.UNREAD) == every[1:]


@pytest.mark.parametrize(
    ("kept", "absorbed", "read", "starred"),
    [
        ({}, {}, False, False),
        ({"read": True}, {}, True, False),
        ({}, {"read": True, "starred": True}, True, True),
        ({"starred": True}, {"read": True}, True, True),
    ],
)
def test_a_merge_is_unread_only_if_both_were_and_keeps_any_star(
    store: Store, kept: dict[str, bool], absorbed: dict[str, bool], read: bool, starred: bool
) -> None:
    """Merging A and B: read when either was read (its story was seen); starred when either
    was starred."""
    keep, gone, *_ = ids(store)
    with store.transaction():
        store.mark_events([keep], Mark(**kept), now=LATER)
        store.mark_events([gone], Mark(**absorbed), now=LATER)
        store.merge_events(keep, gone, similarity=None, reason="by hand", now=LATER)
    event = store.event(keep)
    assert event is not None and (event.read, event.starred) == (read, starred)


def test_a_split_gives_the_new_event_the_old_state(store: Store) -> None:
    """An entry split off a read, starred event starts read and starred."""
    keep, gone, *_ = ids(store)
    with store.transaction():
        store.merge_events(keep, gone, similarity=None, reason="by hand", now=LATER)
        store.mark_events([keep], Mark(read=True, starred=True), now=LATER)
        entry = store.event_members(keep)[-1].id
        new = store.move_entry_to_new_event(entry, now=LATER)
    view = store.event_members(new)
    assert [member.id for member in view] == [entry]
    new_state = sql.one(
        store, "select read_at is not null, starred_at is not null from events where id = ?", [new]
    )
    assert new_state == (True, True)


def test_ids_are_never_given_twice_and_old_ids_follow_merges(store: Store) -> None:
    """The newest event merged away: the next event gets a new id, and the old id leads
    to the event that absorbed it (through every later merge)."""
    first, second, *_, newest = ids(store)
    with store.transaction():
        store.merge_events(second, newest, similarity=None, reason="by hand", now=LATER)
        store.merge_events(first, second, similarity=None, reason="by hand", now=LATER)
        fresh = store.create_event(LATER)
    assert fresh > newest
    assert store.current_event_id(newest) == first
    assert store.current_event_id(second) == first
    assert store.current_event_id(first) == first
    assert store.current_event_id(fresh + 1000) is None


def test_pruning_removes_the_state_with_the_event(store: Store) -> None:
    """A pruned event's marks go with it; its id leads nowhere afterwards."""
    every = ids(store)
    with store.transaction():
        store.mark_events(every, Mark(read=True, starred=True), now=LATER)
    later = SEED_NOW + timedelta(days=400)
    store.prune(before=later, keep_tombstones_until=later, now=later)
    assert ids(store) == []
    assert sql.one(store, "select count(*) from events") == (0,)
    assert store.current_event_id(every[0]) is None


def test_upgrade_leaves_every_event_unread_and_ids_above_every_old_one(tmp_path: Path) -> None:
    """A database from before reading state: every event unread, and the next event's
    id above every id used, even one merged away."""
    path = tmp_path / "old.db"
    old = store_before(path, SqliteStore._schema_reading)
    for event_id in (1, 2, 3):
        old.db.execute(
            "insert into events (id, first_seen, last_seen, member_count, source_count,"
            " updated) values (?, 'x', 'x', 0, 0, 'x')",
            [event_id],
        )
    old.db.execute(
        "insert into event_merges (kept_event_id, absorbed_event_id, reason, at)"
        " values (1, 9, 'auto', 'x')"
    )
    old.close()
    upgraded = open_store(path)
    rows = upgraded.db.execute("select read_at, starred_at from events").fetchall()
    assert rows == [(None, None)] * 3
    with upgraded.transaction():
        assert upgraded.create_event(LATER) == 10
    assert int(upgraded._meta("schema_version") or 0) == len(MIGRATIONS)
    upgraded.close()
