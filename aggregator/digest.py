"""Select, rank and group the events of a digest (pure).

The window: `--since 12h` is about arrival (an event is in it when one of its members was
first seen in the last 12 hours): a morning digest answers "what reached me since
yesterday", whatever date a feed put on its items, and feeds back-date or forget dates.
`--date 2023-07-28` is about the story's date (a member published that UTC day, or that
arrived that day when its feed gave no date): looking back at a day means "what happened
then", and arrival would put everything fetched by a first run on the same day. With
neither, the window is the last 24 hours; a search with neither looks at everything,
because searching is for finding a story whenever it arrived.

Ranking, each key breaking the ties of the previous one:

1. more distinct sources first: a story that several outlets carry matters more;
2. more copies: an outlet that lists a story in several places is featuring it;
3. the highest priority among the member feeds: the user's stated preference;
4. the newest story first: the latest published time of a member, never later than its
   arrival (a feed that dates its items in the future gains nothing).

Priority comes before recency on purpose: inside a window every event is recent, and a
continuous time as second key would leave priority deciding nothing.

Grouping: an event is listed under the config group of its canonical item. With a group
filter, an event that a feed of a requested group reported is listed under that group,
even when its canonical copy came from another group. Sections follow the order of the
groups in the config file, then any other group by name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from aggregator.config import parse_duration
from aggregator.models import EventQuery, EventView, ReadingState, StoredEntry

# The window when none is asked for: one day of arrivals, the rhythm of a daily digest.
DEFAULT_WINDOW = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class Section:
    """The events of one config group, ranked."""

    group: str
    events: tuple[EventView, ...]


@dataclass(frozen=True, slots=True)
class Digest:
    """The events of one window, ranked and grouped."""

    generated_at: datetime
    query: EventQuery
    sections: tuple[Section, ...]
    total: int  # events that matched before `limit`
    limit: int | None = None
    groups: tuple[str, ...] = field(default=())  # every known group, in display order

    @property
    def events(self) -> tuple[EventView, ...]:
        """Every shown event, in display order (section by section)."""
        return tuple(event for section in self.sections for event in section.events)

    def describe(self) -> str:
        """The window and filters in words: 'since 2026-11-21 13:56 UTC in group world'."""
        return describe_query(self.query)


@dataclass(frozen=True, slots=True)
class Window:
    """The digest window as asked for: a duration, a day, everything, or the default."""

    since: timedelta | None = None
    on_date: date | None = None
    all_time: bool = False


def parse_window(since: str | None, on_date: str | None) -> Window:
    """`since` ("12h", "all") and `on_date` ("2023-07-28") as typed by a user, in the CLI
    or in a query string; ValueError names the part that is wrong."""
    all_time = since == "all"
    duration = None
    if since and not all_time:
        try:
            duration = parse_duration(since)
        except ValueError as exc:
            raise ValueError(f"since: {exc}") from exc
    day = None
    if on_date:
        try:
            day = date.fromisoformat(on_date)
        except ValueError as exc:
            raise ValueError(f"date: expected YYYY-MM-DD, got {on_date!r}") from exc
    if (duration is not None or all_time) and day is not None:
        raise ValueError("give either since or date, not both")
    return Window(since=duration, on_date=day, all_time=all_time)


def make_query(
    *,
    now: datetime,
    since: timedelta | None = None,
    on_date: date | None = None,
    all_time: bool = False,
    groups: Sequence[str] = (),
    search: str | None = None,
    window: Window | None = None,
    state: ReadingState | None = None,
) -> EventQuery:
    """The EventQuery of a digest request, with the default window applied (see above);
    a parsed `window` stands for `since`, `on_date` and `all_time`."""
    if window is not None:
        since, on_date, all_time = window.since, window.on_date, window.all_time
    if since is not None and on_date is not None:
        raise ValueError("a window is either a duration (since) or a date, not both")
    words = " ".join(search.split()) if search else None
    arrived_since: datetime | None = None
    published_from: datetime | None = None
    published_until: datetime | None = None
    if on_date is not None:
        published_from = datetime.combine(on_date, time(0), tzinfo=UTC)
        published_until = published_from + timedelta(days=1)
    elif since is not None:
        arrived_since = now - since
    elif not all_time and not words:
        arrived_since = now - DEFAULT_WINDOW
    unique_groups = tuple(dict.fromkeys(g for g in groups if g))
    return EventQuery(
        arrived_since=arrived_since,
        published_from=published_from,
        published_until=published_until,
        groups=unique_groups,
        search=words or None,
        state=state,
    )


def describe_query(query: EventQuery) -> str:
    """One phrase for headers: the window, then the filters."""
    parts: list[str] = []
    if query.arrived_since is not None:
        parts.append(f"since {query.arrived_since.strftime('%Y-%m-%d %H:%M UTC')}")
    if query.published_from is not None and query.published_until is not None:
        last_day = query.published_until - timedelta(days=1)
        if last_day.date() == query.published_from.date():
            parts.append(f"published on {query.published_from.date().isoformat()} (UTC)")
        else:
            parts.append(
                f"published {query.published_from.date().isoformat()} to "
                f"{last_day.date().isoformat()} (UTC)"
            )
    if query.groups:
        label = "group" if len(query.groups) == 1 else "groups"
        parts.append(f"in {label} {', '.join(query.groups)}")
    if query.search:
        parts.append(f'matching "{query.search}"')
    phrase = " ".join(parts) or "of all time"
    return f"{phrase} ({query.state.value} only)" if query.state is not None else phrase


def story_time(entry: StoredEntry) -> datetime:
    """When the story appeared: published time, but never later than its arrival."""
    return min(entry.effective_time, entry.first_seen)


def newest_story_time(event: EventView) -> datetime:
    return max(story_time(member) for member in event.members)


def top_priority(event: EventView) -> int:
    return max(member.feed_priority for member in event.members)


def rank_key(event: EventView) -> tuple[float, ...]:
    """Sort key: distinct outlets, distinct feeds, copies, feed priority, recency (all
    descending), then the newest event id, so the order is total and repeatable. Outlets
    first: one site's section feeds repeating a story is not wider coverage."""
    return (
        -len(event.outlets),
        -len(event.sources),
        -len(event.members),
        -top_priority(event),
        -newest_story_time(event).timestamp(),
        -event.id,
    )


def event_group(event: EventView, wanted: Sequence[str] = ()) -> str:
    """The section an event is listed in: its canonical item's group, or the first
    requested group that one of its members comes from."""
    own = event.canonical.feed_group
    if not wanted or own in wanted:
        return own
    member_groups = {member.feed_group for member in event.members}
    return next((group for group in wanted if group in member_groups), own)


def order_groups(names: Sequence[str], group_order: Sequence[str]) -> list[str]:
    """Config order first, then any other group by name."""
    position = {name: i for i, name in enumerate(dict.fromkeys(group_order))}
    return sorted(set(names), key=lambda name: (position.get(name, len(position)), name))


def build_digest(
    events: Sequence[EventView],
    *,
    now: datetime,
    query: EventQuery,
    limit: int | None = None,
    group_order: Sequence[str] = (),
    known_groups: Sequence[str] = (),
) -> Digest:
    """Rank `events` (already selected by `query`), keep the first `limit`, group them."""
    ranked = sorted(events, key=rank_key)
    shown = ranked if limit is None else ranked[:limit]
    by_group: dict[str, list[EventView]] = {}
    for event in shown:
        by_group.setdefault(event_group(event, query.groups), []).append(event)
    sections = tuple(
        Section(group=name, events=tuple(by_group[name]))
        for name in order_groups(list(by_group), group_order)
    )
    all_groups = order_groups([*known_groups, *by_group], group_order)
    return Digest(
        generated_at=now,
        query=query,
        sections=sections,
        total=len(ranked),
        limit=limit,
        groups=tuple(all_groups),
    )
