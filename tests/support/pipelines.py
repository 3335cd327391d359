"""A pipeline fed by hand (`Pipeline.ingest`): three feeds and a clock the test moves."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from aggregator.models import Config, FeedSpec, Settings
from aggregator.pipeline import Pipeline
from aggregator.store import Store
from tests.support.clock import FixedClock


def hand_fed_pipeline(
    database: Path, start: datetime
) -> tuple[Store, list[FeedSpec], Config, FixedClock, Pipeline]:
    """A store at `database`, three feeds ("feed 0" .. "feed 2"), a clock at `start`, and
    the pipeline over them."""
    store = Store.open(database)
    specs = [FeedSpec(name=f"feed {n}", group="news", url=f"https://{n}.example/feed")
             for n in range(3)]  # fmt: skip
    config = Config(path=database.parent / "feeds.yaml", feeds=tuple(specs), settings=Settings())
    clock = FixedClock(start)
    return store, specs, config, clock, Pipeline(store=store, config=config, clock=clock)
