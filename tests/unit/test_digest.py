"""The digest's decisions (pure): window, ranking, grouping, limit."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from aggregator.digest import (
    DEFAULT_WINDOW,
    Window,
    build_digest,
    describe_query,
    event_group,
    make_query,
    order_groups,
    parse_window,
    rank_key,
    story_time,
)
from aggregator.models import EventQuery
from tests.support.events import NOW
from tests.support.events import make_entry as entry
from tests.support.events import make_event as event


def test_default_window_is_a_day_of_arrivals() -> None:
    """No window asked for: events that arrived in the last 24 hours."""
    query = make_query(now=NOW)
    assert query.arrived_since == NOW - DEFAULT_WINDOW
    assert query.published_from is None and query.search is None


def test_search_alone_looks_at_everything_but_since_still_applies() -> None:
    """A search without a window searches all time; an explicit --since narrows it."""
    assert make_query(now=NOW, search="  corée   munitions ").arrived_since is None
    assert make_query(now=NOW, search="corée").search == "corée"
    assert make_query(now=NOW, search="  corée   munitions ").search == "corée munitions"
    narrowed = make_query(now=NOW, search="x", since=timedelta(hours=12))
    assert narrowed.arrived_since == NOW - timedelta(hours=12)


def test_date_is_one_utc_day_of_publication() -> None:
    """--date 2023-07-28 is [2023-07-28 00:00, 2023-07-29 00:00) UTC on published time."""
    query = make_query(now=NOW, on_date=date(2023, 7, 28))
    assert query.arrived_since is None
    assert query.published_from == datetime(2023, 7, 28, tzinfo=UTC)
    assert query.published_until == datetime(2023, 7, 29, tzinfo=UTC)
    assert describe_query(query) == "published on 2023-07-28 (UTC)"


def test_since_and_date_together_are_refused() -> None:
    """A window is a duration or a date, never both."""
    with pytest.raises(ValueError, match="not both"):
        make_query(now=NOW, since=timedelta(hours=1), on_date=date(2023, 7, 28))


def test_all_time_and_description() -> None:
    """`all` drops the arrival window; the description names every filter."""
    query = make_query(now=NOW, all_time=True, groups=["world", "tech", "world"], search="x")
    assert query.arrived_since is None
    assert query.groups == ("world", "tech")
    assert describe_query(query) == 'in groups world, tech matching "x"'
    assert describe_query(make_query(now=NOW, all_time=True)) == "of all time"
    assert describe_query(make_query(now=NOW)) == "since 2026-11-21 08:00 UTC"


def test_ranking_sources_then_copies_then_priority_then_recency() -> None:
    """Each key decides only when the previous ones tie."""
    old = NOW - timedelta(hours=20)
    two_sources = event(1, entry(1, feed="A", published=old), entry(2, feed="B", published=old))
    two_copies = event(2, entry(3, feed="A"), entry(4, feed="A"))
    preferred_but_old = event(3, entry(5, feed="P", priority=10, published=old))
    newest = event(4, entry(6, feed="A", published=NOW - timedelta(hours=1)))
    older = event(5, entry(7, feed="A", published=NOW - timedelta(hours=2)))
    ranked = sorted([older, newest, preferred_but_old, two_copies, two_sources], key=rank_key)
    assert [e.id for e in ranked] == [1, 2, 3, 4, 5]


def test_future_dates_gain_nothing() -> None:
    """A published time after arrival counts as the arrival time."""
    arrived = NOW - timedelta(hours=3)
    future = entry(1, published=NOW + timedelta(days=365), first_seen=arrived)
    assert story_time(future) == arrived
    honest = event(2, entry(2, published=NOW - timedelta(hours=1)))
    cheat = event(1, future)
    assert sorted([cheat, honest], key=rank_key)[0] is honest


def test_event_group_follows_the_canonical_or_the_filter() -> None:
    """Listed under the canonical's group, or under the requested group a member is from."""
    mixed = event(1, entry(1, group="tech"), entry(2, group="world", feed="B"))
    assert event_group(mixed) == "tech"
    assert event_group(mixed, ("world",)) == "world"
    assert event_group(mixed, ("sport",)) == "tech"


def test_groups_follow_the_config_order_then_names() -> None:
    """Config order first, unknown groups after it, by name."""
    assert order_groups(["b", "z", "a", "c"], ["c", "a"]) == ["c", "a", "b", "z"]


def test_build_digest_limits_after_ranking_and_groups_sections() -> None:
    """The limit keeps the best-ranked events; total counts all; sections keep rank order."""
    events = [
        event(1, entry(1, group="tech")),
        event(2, entry(2, group="world"), entry(3, group="world", feed="B")),
        event(3, entry(4, group="world", published=NOW - timedelta(hours=5))),
        event(4, entry(5, group="tech", published=NOW - timedelta(hours=9))),
    ]
    digest = build_digest(
        events, now=NOW, query=EventQuery(), limit=3, group_order=["world", "tech"]
    )
    assert digest.total == 4
    assert [s.group for s in digest.sections] == ["world", "tech"]
    assert [[e.id for e in s.events] for s in digest.sections] == [[2, 3], [1]]
    assert [e.id for e in digest.events] == [2, 3, 1]
    assert digest.groups == ("world", "tech")


def test_parse_window_reads_a_duration_a_day_or_all_and_names_what_is_wrong() -> None:
    """The one parser of the window that the CLI and the web page share."""
    assert parse_window("12h", None) == Window(since=timedelta(hours=12))
    assert parse_window(None, "2023-07-28") == Window(on_date=date(2023, 7, 28))
    assert parse_window("all", None) == Window(all_time=True)
    assert parse_window(None, None) == Window()
    with pytest.raises(ValueError, match=r"^since: "):
        parse_window("soon", None)
    with pytest.raises(ValueError, match=r"^date: expected YYYY-MM-DD"):
        parse_window(None, "28/07/2023")
    with pytest.raises(ValueError, match="either since or date"):
        parse_window("all", "2023-07-28")
