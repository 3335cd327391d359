"""Filter rules of the feed list on real feed files, in a real SQLite file and on a real
PostgreSQL server alike: hidden items
are stored and deduplicated, their events hidden only when every copy is; `keep`,
`mark_read`; a rule changed later judges what is stored; `aggregator filters test`."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from aggregator.cli import main
from aggregator.config import load_config
from aggregator.models import EventQuery, ReadingState
from aggregator.pipeline import Pipeline
from aggregator.store import Store, open_store
from tests.support import sql
from tests.support.clock import FixedClock
from tests.support.daemon import PUBLISHED, Item, rss

SUMMIT = Item(
    "summit-1", "AI summit opens in Paris with sixty companies",
    "Sixty companies signed a pledge at the AI summit at the Grand Palais in Paris on "
    "Monday, the organisers said, ahead of talks between heads of state.",
    "https://wire.example/summit",
)  # fmt: skip
HOROSCOPE = Item(
    "horo-1", "Your horoscope for Monday",
    "Aries: a day for new projects. Taurus: patience pays. Gemini: call a friend.",
    "https://wire.example/horoscope",
)  # fmt: skip
STORM = Item(
    "storm-1", "Storm Herminia floods the Breton coast",
    "Storm Herminia brought floods to the Breton coast overnight, and 600 people left "
    "their homes in Ille-et-Vilaine, the prefecture said on Monday.",
    "https://wire.example/storm",
)  # fmt: skip


def write_feeds(directory: Path, wire: list[Item], paper: list[Item]) -> None:
    (directory / "wire.rss").write_bytes(rss("Wire", wire))
    (directory / "paper.rss").write_bytes(rss("Paper", paper))


def config_text(global_rules: str = "", wire_rules: str = "") -> str:
    return (
        (f"filters:\n{global_rules}" if global_rules else "")
        + "groups:\n  news:\n    feeds:\n"
        + "      - path: wire.rss\n"
        + (f"        filters:\n{wire_rules}" if wire_rules else "")
        + "      - path: paper.rss\n"
    )


def update(directory: Path, database: str, text: str) -> Store:
    """One pass over both feeds with the config `text`; the store of `database`, open."""
    path = directory / "feeds.yaml"
    path.write_text(text, encoding="utf-8")
    store = open_store(database)
    pipeline = Pipeline(store=store, config=load_config(path), clock=FixedClock(PUBLISHED))
    try:
        pipeline.update_feeds(list(pipeline.config.feeds))
    finally:
        pipeline.close()
    return store


def contents(database: str) -> tuple[bytes, dict[str, list[tuple[object, ...]]]]:
    """What the database holds: every row of every table, and a SQLite file's bytes."""
    store = open_store(database, create=False)
    try:
        rows = sql.dump(store)
    finally:
        store.close()
    return (b"" if sql.is_postgresql(database) else Path(database).read_bytes()), rows


def shown_titles(store: Store, **query: object) -> list[str]:
    return sorted(e.canonical.title for e in store.find_events(EventQuery(**query)))  # type: ignore[arg-type]


def test_a_blocked_item_is_stored_but_its_event_is_hidden(database: str, tmp_path: Path) -> None:
    write_feeds(tmp_path, [SUMMIT, HOROSCOPE], [])
    store = update(tmp_path, database, config_text("  - block: {title: horoscope}\n"))
    assert shown_titles(store) == [SUMMIT.title]
    assert shown_titles(store, hidden=True) == sorted([SUMMIT.title, HOROSCOPE.title])
    (summit, horoscope) = sql.rows(store, "select title, hidden_by from entries order by id")
    assert [summit[0], horoscope[0]] == [SUMMIT.title, HOROSCOPE.title]
    assert horoscope[1].endswith("feeds.yaml:2: block title=horoscope")
    assert summit[1] is None


def test_an_event_shows_while_one_copy_is_unfiltered_and_shows_that_copy(
    database: str,
    tmp_path: Path,
) -> None:
    """The wire's copy is blocked, the paper's is not: one event, shown with the paper's
    copy first, the blocked copy still a source."""
    paper = Item("p-1", SUMMIT.title, SUMMIT.text, "https://paper.example/summit")
    write_feeds(tmp_path, [SUMMIT], [paper])
    store = update(tmp_path, database, config_text(wire_rules="          - block: {any: summit}\n"))
    (event,) = store.find_events(EventQuery())
    assert event.canonical.url == paper.link
    assert len(event.members) == 2 and len(event.sources) == 2


def test_keep_shows_only_what_it_matches_in_its_scope(database: str, tmp_path: Path) -> None:
    """A `keep` rule of the wire hides the wire's other items, not the paper's."""
    write_feeds(tmp_path, [SUMMIT, STORM], [HOROSCOPE])
    store = update(
        tmp_path, database, config_text(wire_rules="          - keep: {title: '/storm/i'}\n")
    )
    assert shown_titles(store) == sorted([STORM.title, HOROSCOPE.title])


def test_mark_read_makes_an_event_it_founds_arrive_read(database: str, tmp_path: Path) -> None:
    write_feeds(tmp_path, [SUMMIT, STORM], [])
    store = update(tmp_path, database, config_text("  - mark_read: {text: prefecture}\n"))
    assert shown_titles(store, state=ReadingState.UNREAD) == [SUMMIT.title]
    assert shown_titles(store) == sorted([SUMMIT.title, STORM.title])  # read, not hidden


def test_mark_read_leaves_an_event_it_joins_unread(database: str, tmp_path: Path) -> None:
    """The paper's copy arrives first (unread); the wire's, under mark_read, joins it."""
    paper = Item("p-1", STORM.title, STORM.text, "https://paper.example/storm")
    (tmp_path / "paper.rss").write_bytes(rss("Paper", [paper]))
    (tmp_path / "wire.rss").write_bytes(rss("Wire", []))
    rules = "          - mark_read: {any: storm}\n"
    store = update(tmp_path, database, config_text(wire_rules=rules))
    store.close()
    write_feeds(tmp_path, [STORM], [paper])
    store = update(tmp_path, database, config_text(wire_rules=rules))
    (event,) = store.find_events(EventQuery())
    assert len(event.members) == 2 and not event.read


def test_a_rule_added_later_hides_what_is_stored_and_removing_it_shows_it(
    database: str,
    tmp_path: Path,
) -> None:
    write_feeds(tmp_path, [SUMMIT, HOROSCOPE], [])
    store = update(tmp_path, database, config_text())
    assert len(shown_titles(store)) == 2
    store.close()
    store = update(tmp_path, database, config_text("  - block: {title: horoscope}\n"))
    assert shown_titles(store) == [SUMMIT.title]
    store.close()
    store = update(tmp_path, database, config_text())
    assert len(shown_titles(store)) == 2


def test_a_backtracking_pattern_costs_one_item_a_moment_and_the_pass_goes_on(
    database: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    hostile = Item("h-1", "x" * 900, "x" * 5000, "https://wire.example/x")
    write_feeds(tmp_path, [hostile, HOROSCOPE], [])
    rules = "  - block: {any: '/(x+x+)+y/'}\n  - block: {title: horoscope}\n"
    with caplog.at_level(logging.WARNING, logger="aggregator.pipeline"):
        store = update(tmp_path, database, config_text(rules))
    assert shown_titles(store) == ["x" * 900]
    assert any("ran past" in message for message in caplog.messages)


def test_filters_test_lists_what_the_rules_would_hide_and_changes_nothing(
    database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_feeds(tmp_path, [SUMMIT, HOROSCOPE], [])
    update(tmp_path, database, config_text()).close()
    (tmp_path / "feeds.yaml").write_text(config_text("  - block: {title: horoscope}\n"))
    before = contents(database)
    code = main(["filters", "test", "--config", str(tmp_path / "feeds.yaml"),
                 "--db", database])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    assert "would hide 1" in out and "1 change" in out
    assert "block title=horoscope (shown now)" in out and HOROSCOPE.title in out
    assert SUMMIT.title not in out
    assert contents(database) == before


def test_a_bad_pattern_is_a_file_and_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """(SQLite only: the config is refused before any database is opened.)"""
    write_feeds(tmp_path, [SUMMIT], [])
    path = tmp_path / "feeds.yaml"
    path.write_text(config_text("  - block: {title: '/(unclosed/'}\n"))
    code = main(["update", "--all", "--config", str(path), "--db", str(tmp_path / "agg.db")])
    err = capsys.readouterr().err
    assert code != 0
    assert f"{path}:2: filters[0].block.title: invalid regular expression" in err


def test_the_reader_api_streams_and_counts_leave_hidden_events_out(
    database: str, tmp_path: Path
) -> None:
    """What the Google Reader API lists and counts follows the filters as the digest does."""
    write_feeds(tmp_path, [SUMMIT, HOROSCOPE], [])
    store = update(tmp_path, database, config_text())
    assert len(store.stream_event_ids()) == 2
    (counted,) = store.unread_by_feed().values()
    assert counted[0] == 2
    store.close()
    store = update(tmp_path, database, config_text("  - block: {title: horoscope}\n"))
    (shown,) = store.find_events(EventQuery())
    assert [event_id for event_id, _ in store.stream_event_ids()] == [shown.id]
    assert [count for count, _ in store.unread_by_feed().values()] == [1]
    assert [count for count, _ in store.unread_by_group().values()] == [1]


def test_a_reload_with_new_rules_judges_what_is_stored(database: str, tmp_path: Path) -> None:
    """The daemon's reload (SIGHUP) applies changed rules at once, without a restart."""
    write_feeds(tmp_path, [SUMMIT, HOROSCOPE], [])
    path = tmp_path / "feeds.yaml"
    path.write_text(config_text(), encoding="utf-8")
    store = open_store(database)
    pipeline = Pipeline(store=store, config=load_config(path), clock=FixedClock(PUBLISHED))
    try:
        pipeline.update_feeds(list(pipeline.config.feeds))
        assert len(shown_titles(store)) == 2
        path.write_text(config_text("  - block: {title: horoscope}\n"), encoding="utf-8")
        pipeline.reload(load_config(path))
        assert shown_titles(store) == [SUMMIT.title]
    finally:
        pipeline.close()


def test_explain_names_the_filter_hiding_a_copy(
    database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paper = Item("p-1", SUMMIT.title, SUMMIT.text, "https://paper.example/summit")
    write_feeds(tmp_path, [SUMMIT], [paper])
    text = config_text(wire_rules="          - block: {any: summit}\n")
    update(tmp_path, database, text).close()
    store = open_store(database, create=False)
    (event,) = store.find_events(EventQuery())
    store.close()
    code = main(["explain", str(event.id), "--config", str(tmp_path / "feeds.yaml"),
                 "--db", database])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    hidden = [line for line in out.splitlines() if "hidden by the filter" in line]
    assert len(hidden) == 1 and "block any=summit" in hidden[0]
