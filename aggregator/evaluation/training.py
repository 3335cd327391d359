"""Fitting the same-event model (`dedup/event_model.py`) on training data only.

Examples come from two kinds of labelled data:

- **Labelled streams** (UCI, ECB+, RPM2): the training items are played in arrival order
  through an `EventIndex` whose events are the gold groups (as Miranda et al. train their
  cluster model): each entry is weighed against every event `best_event` would score, its own
  gold event being the positive, then joins its gold event.
- **Judged real-feed pairs** (training part): the feeds are placed by the daemon's code and
  the later item of each pair is weighed against the earlier one as a one-item event of the
  final window; "same event" is positive, "same story" and "different" negative.

Each source weighs the same in the fit, so that thousands of UCI candidates do not drown
a few hundred judged pairs. The join threshold maximises F0.5 of the training decisions
(join the most probable candidate): precision first.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

from aggregator.dedup.event_model import (
    SHIPPED_MODEL,
    EventModel,
    choose_threshold,
    fit_logistic,
)
from aggregator.dedup.events import EventIndex, Query, TermVector, event_terms
from aggregator.dedup.signature import DEFAULT_PARAMS, Signer
from aggregator.evaluation import datasets, judged
from aggregator.evaluation.learning import Params
from aggregator.evaluation.replay import REPLAY_TICK, _raw
from aggregator.ingest.normalize import normalize_entry
from aggregator.ingest.prepare import prepare_entry
from aggregator.models import Settings
from aggregator.store import Store
from aggregator.store.sqlite import from_db_time

L2 = 1.0  # ridge on standardised features: the fit barely moves between 0.1 and 10
F_BETA = 0.5  # precision weighs twice recall in the join threshold


@dataclass(slots=True)
class Examples:
    """Feature rows, labels, and per decision: best probability inputs for the threshold."""

    rows: list[list[float]] = field(default_factory=list)
    labels: list[float] = field(default_factory=list)
    decision_of_row: list[int] = field(default_factory=list)
    present: list[bool] = field(default_factory=list)  # per decision: its event was there

    def add_decision(self, rows: Sequence[tuple[list[float], bool]], present: bool) -> None:
        decision = len(self.present)
        self.present.append(present)
        for features, right in rows:
            self.rows.append(features)
            self.labels.append(float(right))
            self.decision_of_row.append(decision)

    def extend(self, other: Examples) -> None:
        offset = len(self.present)
        self.rows += other.rows
        self.labels += other.labels
        self.decision_of_row += [d + offset for d in other.decision_of_row]
        self.present += other.present


def stream_examples(items: Sequence[datasets.LabeledItem]) -> Examples:
    """Examples of labelled items played as a stream into their gold events."""
    examples = Examples()
    if not items:
        return examples
    window = Settings().dedup_window
    index = EventIndex(window, count_templates=True)
    signer = Signer(DEFAULT_PARAMS)
    feeds: dict[str, int] = {}
    events: dict[str, int] = {}
    now: datetime = items[0].published
    trimmed: datetime | None = None
    for position, item in enumerate(sorted(items, key=lambda i: i.published)):
        now = max(now, item.published)
        if trimmed is None or now - trimmed >= REPLAY_TICK:
            index.drop_older_than(now - window)
            trimmed = now
        prepared = prepare_entry(normalize_entry(_raw(item)), signer)
        feed_id = feeds.setdefault(item.source, len(feeds) + 1)
        gold = events.setdefault(item.label, len(events) + 1)
        headline = prepared.signatures.headline_only
        index.observe(prepared.vector)
        published = prepared.entry.published
        candidates = index.candidates(
            prepared.vector, headline_only=headline, now=now, published=published,
            feed_id=feed_id,
        )  # fmt: skip
        rows = [
            (candidate.features(similarity), event_id == gold)
            for event_id, candidate, similarity in candidates
        ]
        profile = index.profiles.get(gold)
        present = profile is not None and profile.within(published or now, window)
        if rows or present:
            examples.add_decision(rows, present)
        index.add_member(
            position, gold, prepared.vector, headline_only=headline, when=now,
            published=published, feed_id=feed_id,
        )  # fmt: skip
    return examples


def judged_examples(root: Path, pairs: Sequence[judged.JudgedPair]) -> Examples:
    """Examples of judged pairs: the later item against the earlier as a one-item event."""
    examples = Examples()
    by_folder: dict[str, list[judged.JudgedPair]] = {}
    for pair in pairs:
        by_folder.setdefault(judged.folder_of(pair.feed_a), []).append(pair)
    for folder, folder_pairs in sorted(by_folder.items()):
        files = judged.feed_files(root / folder)
        with judged.placed_folder(root, files, Settings(), None) as store:
            keys, window = _placed_items(store)
        for pair in folder_pairs:
            first, second = (
                judged.find(keys, pair.feed_a, pair.item_a),
                judged.find(keys, pair.feed_b, pair.item_b),
            )
            if first is None or second is None:
                continue
            row = _pair_features(window, first.entry_id, second.entry_id)
            same = pair.verdict is judged.Verdict.SAME_EVENT
            examples.add_decision([(row, same)], same)
    return examples


@dataclass(slots=True)
class _Window:
    """Every placed item as an event of its own (id: the entry's), with its vector."""

    index: EventIndex
    vectors: dict[int, TermVector] = field(default_factory=dict)


def _placed_items(store: Store) -> tuple[dict[tuple[str, str], judged.Placed], _Window]:
    """Each placed item found by (feed name, GUID or link), and the window of them all,
    counting the feeds' templates."""
    keys: dict[tuple[str, str], judged.Placed] = {}
    index = EventIndex(Settings().dedup_window, count_templates=True)
    vectors: dict[int, TermVector] = {}
    for row in store.db.query(
        "select e.id, e.event_id, e.guid, e.canonical_url, e.url, f.name, e.feed_id, e.title,"
        " e.text, e.published, e.first_seen, e.headline_only from entries e"
        " join feeds f on f.id = e.feed_id order by e.id"
    ):
        entry_id = int(row["id"])
        where = judged.Placed(entry_id, int(row["event_id"]))
        for key in (row["guid"], row["canonical_url"]):
            if key:
                keys.setdefault((str(row["name"]), str(key)), where)
        first_seen = from_db_time(row["first_seen"])
        assert first_seen is not None
        vector = event_terms(
            str(row["title"]), str(row["text"]), row["canonical_url"] or row["url"]
        )
        index.add_member(
            entry_id, entry_id, vector, headline_only=bool(row["headline_only"]),
            when=first_seen, published=from_db_time(row["published"]), observed=False,
            feed_id=int(row["feed_id"]),
        )  # fmt: skip
        vectors[entry_id] = vector
    return keys, _Window(index, vectors)


def _pair_features(window: _Window, a: int, b: int) -> list[float]:
    """The later of items `a` and `b` weighed against the earlier's one-item event."""
    index = window.index
    first, second = index.profiles[a], index.profiles[b]
    if first.earliest and second.earliest and first.earliest > second.earliest:
        first, second = second, first
    assert second.earliest is not None
    feed_id = next(iter(second.feeds))
    headline = second.headline_event
    query = Query.of(window.vectors[second.event_id], index.stats,
                     background=headline and first.headline_event)  # fmt: skip
    similarity = query.score(first, 0.0) or 0.0
    candidate = index.candidate(
        first, second.earliest, feed_id, index.template_share(query, feed_id), headline,
        len(query.ids),
    )  # fmt: skip
    return candidate.features(similarity)


def fit(sources: Sequence[tuple[str, Examples]]) -> EventModel:
    """The model fitted on `sources` (name, examples), each weighing the same."""
    everything = Examples()
    weights: list[float] = []
    for _, examples in sources:
        if examples.rows:
            weights += [1.0 / len(examples.rows)] * len(examples.rows)
            everything.extend(examples)
    x = np.asarray(everything.rows, dtype=np.float64)
    y = np.asarray(everything.labels, dtype=np.float64)
    sample = np.asarray(weights) * len(weights) / max(1, len(sources))
    w, bias = fit_logistic(x, y, l2=L2, sample_weight=sample)
    probabilities = 1.0 / (1.0 + np.exp(-np.clip(x @ w + bias, -30, 30)))
    best = np.full(len(everything.present), -1.0)
    right = np.zeros(len(everything.present), dtype=bool)
    for row, decision in enumerate(everything.decision_of_row):
        if probabilities[row] > best[decision]:
            best[decision] = probabilities[row]
            right[decision] = bool(y[row])
    # A decision with no candidate is a miss whatever the threshold (probability 0).
    threshold = choose_threshold(
        np.maximum(best, 0.0).tolist(), right.tolist(), everything.present, beta=F_BETA
    )
    names = ", ".join(name for name, examples in sources if examples.rows)
    return EventModel(
        weights=tuple(float(v) for v in w), bias=bias, threshold=threshold, trained_on=names
    )


# The labelled streams the model learns from, by data set name: their folders in the data
# root (../shared/data) and loaders.
STREAMS = {
    "uci": ("uci-news-aggregator-sample", datasets.load_uci),
    "ecbplus": ("ecbplus", datasets.load_ecbplus),
    "rpm2": ("rpm2-french-news-clusters", datasets.load_rpm2),
}


class ModelLearner:
    """Fits the event model for one held-out fold of `dataset`: on that data set's training
    folds, plus every other source whole (no story of one data set is in another)."""

    name = "event model (logistic regression, fitted on the training folds)"

    def __init__(self, root: Path, dataset: str) -> None:
        self.root = root
        self.dataset = dataset
        self._others: list[tuple[str, Examples]] | None = None

    def others(self) -> list[tuple[str, Examples]]:
        if self._others is None:
            self._others = [
                (name, stream_examples(load(self.root / folder)))
                for name, (folder, load) in STREAMS.items()
                if name != self.dataset
            ]
            if self.dataset != "judged":
                pairs = judged.load_pairs(judged.SHIPPED_PAIRS)
                self._others.append(("judged", judged_examples(self.root, pairs)))
        return self._others

    def fit(self, train: Sequence[object]) -> Params:
        own: list[tuple[str, Examples]] = []
        if self.dataset in STREAMS:
            items = [item for item in train if isinstance(item, datasets.LabeledItem)]
            own.append((f"{self.dataset} training folds", stream_examples(items)))
        elif self.dataset == "judged":
            pairs = [pair for pair in train if isinstance(pair, judged.JudgedPair)]
            own.append(("judged training folds", judged_examples(self.root, pairs)))
        model = fit([*own, *self.others()])
        return Params(model=model, name=f"event model fitted on {model.trained_on}")


def shipped(root: Path) -> EventModel:
    """The model the daemon ships: fitted on every labelled stream and every judged pair."""
    sources = [
        (name, stream_examples(load(root / folder))) for name, (folder, load) in STREAMS.items()
    ]
    sources.append(("judged", judged_examples(root, judged.load_pairs(judged.SHIPPED_PAIRS))))
    return fit(sources)


def write_shipped(root: Path, path: Path = SHIPPED_MODEL) -> EventModel:
    model = shipped(root)
    path.write_text(json.dumps(model.as_json(), indent=2) + "\n", encoding="utf-8")
    return model
