"""An article that founded its own event joins the event it missed once that event has
grown close to it: through the pipeline, recorded as a merge, kept across a restart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aggregator.cli import main
from aggregator.dedup.event_model import shipped_model
from aggregator.ingest.normalize import normalize_entry
from aggregator.models import RawEntry
from aggregator.pipeline import Pipeline
from aggregator.render.common import how_joined
from aggregator.store import Store
from tests.support.pipelines import hand_fed_pipeline
from tests.support.stories import ERUPTION, ERUPTION_AIRPORT, ERUPTION_BOTH

START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
BACKGROUND = ["Storm closes ports on the coast", "Cup final ends in a draw",
              "Election count goes on overnight", "Shares fall on the market open",
              "Film festival gives its top prize", "Train strike called by the union"]  # fmt: skip


def raw(number: int, title: str, text: str) -> RawEntry:
    return RawEntry(
        guid=f"item-{number}", link=f"https://news.example/item/{number}", title=title,
        summary_html="", content_html=f"<p>{text}</p>" if text else "", author=None,
        published=START + timedelta(minutes=number), updated=None,
    )  # fmt: skip


def event_of(store: Store, guid: str) -> int:
    (event_id,) = store.db.execute(
        "select event_id from entries where identity = ?", [f"guid:{guid}"]
    ).fetchone()
    return int(event_id)


def test_the_airport_story_joins_the_eruption_once_the_event_has_grown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, specs, config, clock, pipeline = hand_fed_pipeline(tmp_path / "late.db", START)
    stories = [(title, "") for title in BACKGROUND] + [ERUPTION, ERUPTION_AIRPORT]
    for number, (title, text) in enumerate(stories):
        clock.now = START + timedelta(minutes=number)
        pipeline.ingest(specs[number % 3], [normalize_entry(raw(number, title, text))])
    first, airport = event_of(store, "item-6"), event_of(store, "item-7")
    assert first != airport  # the premise: the airport story missed the eruption's event

    clock.now += timedelta(minutes=5)
    pipeline.ingest(specs[2], [normalize_entry(raw(8, *ERUPTION_BOTH))])
    assert event_of(store, "item-8") == event_of(store, "item-7") == event_of(store, "item-6")
    kept = event_of(store, "item-6")
    (merge,) = store.event_merge_history(kept)
    assert merge["absorbed_event_id"] == airport and merge["entries"] == 1
    assert "one article" in merge["reason"] and merge["similarity"] >= 0.40
    assert store.event(airport) is None
    event = store.event(kept)
    assert event is not None and len(event.members) == 3
    # The write-up's join keeps the model's probability and the features that decided.
    (joined,) = [m for m in event.members if m.identity == "guid:item-8"]
    assert joined.probability is not None and joined.probability >= shipped_model().threshold
    assert joined.reasons and joined.reasons[0][0] == "similarity" and joined.reasons[0][1] > 0
    assert "decided by the words they share" in how_joined(joined, {})
    pipeline.close()

    restarted = Pipeline(store=store, config=config, clock=clock)
    assert restarted.events.profiles[kept].members == 3
    assert airport not in restarted.events.profiles
    restarted.close()
    store.close()

    # `aggregator explain` names the merge, and calls neither first member the first.
    (tmp_path / "feeds.yaml").write_text("groups:\n  news:\n    feeds: []\n")
    args = ["explain", str(kept), "--db", str(tmp_path / "late.db")]
    assert main([*args, "--config", str(tmp_path / "feeds.yaml")]) == 0
    shown = capsys.readouterr().out
    assert f"Merged in event {airport} (1 entries): its one article is close" in shown
    assert "first of the event" not in shown
    assert shown.count("first of one of the events merged here") == 2
    assert f"probability {joined.probability:.2f}, decided by the words they share (+" in shown
