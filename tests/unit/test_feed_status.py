"""The state of a feed as `aggregator status` and `aggregator feeds` report it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aggregator.models import Config, FeedSpec, FeedState
from aggregator.status import feed_status

NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


def state(**changes: object) -> FeedState:
    values: dict[str, object] = {
        "id": 1, "name": "Le Monde", "group": "world", "location": "https://e.org/f",
        "enabled": True, "last_fetch": NOW, "last_success": NOW, "status": "ok",
        "error": None, "failures": 0, "next_due": NOW + timedelta(hours=1), "etag": None,
        "last_modified": None, "entry_count": 12,
    }  # fmt: skip
    values.update(changes)
    return FeedState(**values)  # type: ignore[arg-type]


CONFIG = Config(
    path=Path("feeds.yaml"),
    feeds=(FeedSpec(name="Le Monde", group="world", url="https://e.org/f", enabled=False),),
)


@pytest.mark.parametrize(
    ("changes", "config", "expected"),
    [
        ({}, None, ("ok", False, None)),
        ({"status": "not_modified", "next_due": NOW}, None, ("ok", True, None)),
        ({"status": "error", "error": "http_500", "failures": 3}, None,
         ("failing", False, "http_500")),
        ({"status": "error", "error": "timeout", "failures": 1}, None,
         ("retrying", False, "timeout")),
        ({"status": "new", "next_due": None}, None, ("new", True, None)),
        ({"enabled": False}, None, ("retired", False, "disabled")),
        ({"enabled": False}, CONFIG, ("retired", False, "disabled in the config")),
        ({"enabled": False, "location": "https://e.org/old"}, CONFIG,
         ("retired", False, "removed from the config")),
        ({"retired": "gone", "next_due": NOW}, None, ("retired", False, "gone")),
    ],
)  # fmt: skip
def test_feed_status(
    changes: dict[str, object], config: Config | None, expected: tuple[str, bool, str | None]
) -> None:
    """Each stored feed state maps to ok / retrying / failing / new / retired, due or not,
    with why."""
    found = feed_status(state(**changes), config, NOW)
    assert (found.state, found.due, found.reason) == expected
