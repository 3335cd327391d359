"""Pipelines for tests: one fed by hand (`Pipeline.ingest`: three feeds and a clock the
test moves), and one updating changing local feeds in a thread (`ChangingFeeds`)."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from pathlib import Path

from aggregator.config import parse_config
from aggregator.models import Config, FeedSpec, Settings
from aggregator.pipeline import Pipeline
from aggregator.store import Store, open_store
from tests.support.clock import FixedClock


def hand_fed_pipeline(
    database: Path, start: datetime
) -> tuple[Store, list[FeedSpec], Config, FixedClock, Pipeline]:
    """A store at `database`, three feeds ("feed 0" .. "feed 2"), a clock at `start`, and
    the pipeline over them."""
    store = open_store(database)
    specs = [FeedSpec(name=f"feed {n}", group="news", url=f"https://{n}.example/feed")
             for n in range(3)]  # fmt: skip
    config = Config(path=database.parent / "feeds.yaml", feeds=tuple(specs), settings=Settings())
    clock = FixedClock(start)
    return store, specs, config, clock, Pipeline(store=store, config=config, clock=clock)


class ChangingFeeds:
    """Four local feeds of ten items whose items all change every round, and a pipeline
    that updates them round after round in a thread, as the daemon would while a reader
    marks what it shows (`start`, `running`, `finish`)."""

    FEEDS, ITEMS, ROUNDS = 4, 10, 5
    STORED = FEEDS * ITEMS * (ROUNDS + 1)  # entries once every round is stored

    def __init__(self, directory: Path, start: datetime) -> None:
        self.feeds = directory / "feeds"
        self.feeds.mkdir()
        self.names = [f"f{n}" for n in range(self.FEEDS)]
        text = "groups:\n  live:\n    feeds:\n" + "".join(
            f"      - name: {name}\n        path: feeds/{name}.xml\n" for name in self.names
        )
        self.db = directory / "live.db"
        self._write(0)
        self.now = start
        self.pipeline = Pipeline(
            store=open_store(self.db), config=parse_config(text, directory / "feeds.yaml"),
            clock=lambda: self.now,
        )  # fmt: skip
        self.pipeline.run(all_feeds=True)
        self.failures: list[str] = []
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._update)

    def _write(self, round_: int) -> None:
        for n, name in enumerate(self.names):
            items = "".join(
                f"<item><guid>{name}-{round_}-{i}</guid><title>Story {name} {round_} {i} about"
                f" topic {n * 100 + round_ * 10 + i} in town {i}</title>"
                f"<description>Text {round_} {i} of {name}, number {n * 1000 + i}.</description>"
                "</item>"
                for i in range(self.ITEMS)
            )
            (self.feeds / f"{name}.xml").write_text(
                f'<rss version="2.0"><channel><title>{name}</title>{items}</channel></rss>'
            )

    def _update(self) -> None:
        try:
            for round_ in range(1, self.ROUNDS + 1):
                self._write(round_)
                self.now += timedelta(minutes=1)
                report = self.pipeline.run(all_feeds=True)
                self.failures.extend(str(feed.error) for feed in report.failed)
        except Exception as exc:  # reported by `finish`, not lost in the thread
            self.failures.append(repr(exc))
        finally:
            self._done.set()

    def start(self) -> None:
        self._thread.start()

    def running(self) -> bool:
        return not self._done.is_set()

    def finish(self) -> list[str]:
        """Wait for the last round, close the pipeline; the failures of every round."""
        self._thread.join(timeout=120)
        self.pipeline.close()
        self.pipeline.store.close()
        return self.failures
