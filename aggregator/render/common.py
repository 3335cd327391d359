"""Formatting shared by the writers."""

from __future__ import annotations

from datetime import datetime

from aggregator.models import EventView
from aggregator.normalize import clean_text


def when(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC")


def one_line(text: str) -> str:
    """Stored text is already clean; this is the last guard before a terminal."""
    return clean_text(text, single_line=True)


def also_reported_by(event: EventView) -> str | None:
    """'also reported by N: a, b' over the other copies (N copies, names deduplicated)."""
    if not event.others:
        return None
    names: dict[str, None] = {}
    for member in event.others:
        names.setdefault(one_line(member.feed_name), None)
    return f"also reported by {len(event.others)}: {', '.join(names)}"
