"""The one test clock: a time the test sets or moves by hand."""

from __future__ import annotations

from datetime import datetime, timedelta


class FixedClock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta
