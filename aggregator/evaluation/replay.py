"""Replay labelled items through the daemon's own code path and score the groups.

Each item becomes a RawEntry of its source's feed, is normalised like a fetched item,
and is stored by `Pipeline.ingest` at its own time (a hand-moved clock), one feed update
per item, in time order. The window is trimmed as the daemon trims it, at every tick
(`Pipeline.run`): without it, a replay spanning more than the window kept in its term
statistics what a daemon has forgotten (RPM2's two halves are a month apart). The
groups are then read back from the SQLite file.
"""

from __future__ import annotations

import re
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from html import escape
from pathlib import Path

from aggregator.dedup.event_model import EventModel
from aggregator.evaluation.datasets import LabeledItem, LabeledPair, iter_sources
from aggregator.evaluation.metrics import Scores, bcubed, decision_accuracy, pairwise
from aggregator.ingest.normalize import normalize_entry
from aggregator.models import Config, FeedSpec, RawEntry, Settings
from aggregator.pipeline import Pipeline
from aggregator.store import open_store

# How often the replay trims the window: the daemon's default tick (`aggregator.daemon`).
REPLAY_TICK = timedelta(seconds=30)


class _HandClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass(slots=True)
class ReplayResult:
    """Groups found, scores and speed of one replay."""

    items: int
    labels: int
    groups: int
    pairwise: Scores
    bcubed: Scores
    seconds: float
    predicted: dict[str, int] = field(repr=False, default_factory=dict)

    @property
    def ms_per_item(self) -> float:
        return 1000 * self.seconds / self.items if self.items else 0.0

    def report(self, name: str) -> str:
        return (
            f"{name}: {self.items} items, {self.labels} labels, {self.groups} groups\n"
            f"  pairwise  {self.pairwise}\n"
            f"  B-cubed   {self.bcubed}\n"
            f"  time      {self.ms_per_item:.2f} ms/item ({self.seconds:.1f} s)"
        )


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "source"


def _specs(items: Sequence[LabeledItem]) -> dict[str, FeedSpec]:
    specs: dict[str, FeedSpec] = {}
    for number, source in enumerate(iter_sources(list(items))):
        specs[source] = FeedSpec(
            name=source or f"source {number}",
            group="eval",
            url=f"https://{number}-{_slug(source)}.invalid/feed",
        )
    return specs


def _raw(item: LabeledItem) -> RawEntry:
    return RawEntry(
        guid=item.id, link=item.url, title=item.title, summary_html="",
        content_html=_as_html(item.text), author=None, published=item.published, updated=None,
    )  # fmt: skip


def _as_html(text: str) -> str:
    # Paragraphs as the feed would carry them; the text is escaped, never trusted.
    return "".join(f"<p>{escape(line)}</p>" for line in text.splitlines() if line.strip())


def replay(
    items: Sequence[LabeledItem],
    *,
    settings: Settings | None = None,
    model: EventModel | None = None,
    database: Path | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> ReplayResult:
    """Replay `items` (already in arrival order) and score the partition found."""
    specs = _specs(items)
    with tempfile.TemporaryDirectory(prefix="aggregator-eval-") as scratch:
        path = database or Path(scratch) / "eval.db"
        store = open_store(path)
        clock = _HandClock(items[0].published if items else datetime.now().astimezone())
        config = Config(
            path=Path(scratch) / "eval.yaml", feeds=tuple(specs.values()),
            settings=settings or Settings(),
        )  # fmt: skip
        pipeline = Pipeline(store=store, config=config, clock=clock, model=model)
        started = time.perf_counter()
        trimmed: datetime | None = None
        for position, item in enumerate(items):
            clock.now = max(clock.now, item.published)
            if trimmed is None or clock.now - trimmed >= REPLAY_TICK:
                pipeline.trim_window(clock.now)
                trimmed = clock.now
            entry = normalize_entry(_raw(item))
            pipeline.ingest(specs[item.source], [entry])
            if on_progress is not None and position % 500 == 0:
                on_progress(position)
        seconds = time.perf_counter() - started
        predicted = {
            identity[len("guid:") :]: int(event_id)
            for identity, event_id in store.event_of_identities().items()
            if event_id is not None
        }
        pipeline.close()
        store.close()
    gold = {item.id: item.label for item in items}
    return ReplayResult(
        items=len(items),
        labels=len(set(gold.values())),
        groups=len(set(predicted.values())),
        pairwise=pairwise(predicted, gold),
        bcubed=bcubed(predicted, gold),
        seconds=seconds,
        predicted=predicted,
    )


@dataclass(slots=True)
class PairResult:
    pairs: int
    scores: Scores
    accuracy: float
    by_language: dict[str, tuple[int, int]]  # language pair -> (correct, total)

    def report(self, name: str) -> str:
        languages = ", ".join(
            f"{lang} {ok}/{total}" for lang, (ok, total) in sorted(self.by_language.items())
        )
        return (
            f"{name}: {self.pairs} pairs (same: Overall <= 1.5, different: >= 3)\n"
            f"  same-event decisions  {self.scores}\n"
            f"  accuracy              {self.accuracy:.3f}\n"
            f"  by language           {languages}"
        )


def replay_pairs(
    pairs: Sequence[LabeledPair], *, settings: Settings | None = None,
    model: EventModel | None = None,
) -> PairResult:  # fmt: skip
    """Each pair replayed alone (a fresh database): did the second join the first's event?"""
    decisions: list[tuple[bool, bool]] = []
    by_language: dict[str, tuple[int, int]] = {}
    for pair in pairs:
        result = replay([pair.first, pair.second], settings=settings, model=model)
        predicted_same = result.predicted[pair.first.id] == result.predicted[pair.second.id]
        decisions.append((predicted_same, pair.same_event))
        ok, total = by_language.get(pair.language, (0, 0))
        by_language[pair.language] = (ok + (predicted_same == pair.same_event), total + 1)
    correct = sum(1 for p, e in decisions if p == e)
    return PairResult(
        pairs=len(pairs),
        scores=decision_accuracy(decisions),
        accuracy=correct / len(decisions) if decisions else 0.0,
        by_language=by_language,
    )
