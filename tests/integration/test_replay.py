"""The evaluation replay goes through the daemon's code path, window trimming included."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from aggregator.evaluation.datasets import LabeledItem
from aggregator.evaluation.replay import REPLAY_TICK, replay
from aggregator.pipeline import Pipeline

START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def test_the_replay_trims_the_window_at_each_tick_as_the_daemon_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A replay spanning more than the window forgets what a daemon would have forgotten:
    it trims when its clock has moved by a tick, not at every item."""
    trims: list[tuple[datetime, int]] = []
    real_trim = Pipeline.trim_window

    def recording_trim(self: Pipeline, now: datetime) -> None:
        real_trim(self, now)
        trims.append((now, len(self.events._members)))

    monkeypatch.setattr(Pipeline, "trim_window", recording_trim)
    offsets = [timedelta(0), timedelta(seconds=10), REPLAY_TICK + timedelta(seconds=5),
               timedelta(days=41), timedelta(days=41, seconds=1)]  # fmt: skip
    items = [
        LabeledItem(str(n), "wire", f"Council vote number {n} on the budget", "", None,
                    START + offset, str(n))
        for n, offset in enumerate(offsets)
    ]  # fmt: skip
    result = replay(items)
    assert result.items == 5
    # Trimmed before the first item, one tick later, and 41 days later, when the three
    # first items have left the window (the members counted after each trim).
    assert trims == [
        (START, 0),
        (START + REPLAY_TICK + timedelta(seconds=5), 2),
        (START + timedelta(days=41), 0),
    ]
