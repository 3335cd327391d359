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

The story link (`EventModel.story`) is fitted on the judged pairs, where "same story" and
"same event" are positive and "different" negative, and on RPM2's themes played as a
stream (`stream_story_examples`: an item against the events of its theme a month earlier,
positive, and of other themes, negative). The judged feeds were captured at one moment, so
their only long gaps are evergreen pages, all unrelated: alone they taught the link that
a month apart means unrelated, and the seed's two events four months apart stayed apart.
Each source weighs the same; the threshold maximises F0.5 of the decisions.

The join model shipped today is not fitted (`UNFITTED_JOIN`: the cosine thresholds of
version 0.2), because no fitted one has yet beaten it on held-out folds; the story model
is. `aggregator train` writes the shipped file from the data, byte for byte.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import numpy.typing as npt

from aggregator.dedup.event_model import (
    SHIPPED_MODEL,
    EventModel,
    choose_threshold,
    fit_logistic,
    shipped_model,
)
from aggregator.dedup.events import EventIndex, Query
from aggregator.dedup.series import Mark, title_marks
from aggregator.dedup.signature import DEFAULT_PARAMS, Signer
from aggregator.dedup.vectors import TermVector, event_terms
from aggregator.evaluation import datasets, judged
from aggregator.evaluation.learning import Params
from aggregator.evaluation.replay import REPLAY_TICK, _raw
from aggregator.ingest.normalize import normalize_entry
from aggregator.ingest.prepare import prepare_entry
from aggregator.models import Settings
from aggregator.store import Store
from aggregator.word_frequencies import ordinary_language

L2 = 1.0  # ridge on standardised features: the fit barely moves between 0.1 and 10
F_BETA = 0.5  # precision weighs twice recall in the join threshold
STORY_F_BETA = 0.5  # and in the story threshold


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
    index = EventIndex(window, count_templates=True, background=ordinary_language)
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
            feed_id=feed_id, marks=prepared.marks,
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
            published=published, feed_id=feed_id, marks=prepared.marks,
        )  # fmt: skip
    return examples


# Labelled streams whose broader group is an ongoing story: an RPM2 theme is one storyline
# a month later (C1, C2). ECB+ topics are not (two happenings of one kind: two earthquakes).
STORY_GROUPS = frozenset({"rpm2"})
# The story examples keep events this long: the C1 events of a theme are still there when
# its C2 arrives a month later (the daemon weighs what its window holds, whatever its age).
STORY_TRAINING_WINDOW = timedelta(days=60)


def stream_story_examples(items: Sequence[datasets.LabeledItem]) -> Examples:
    """Story-link decisions of labelled items played as a stream into their gold events:
    each item against every other event the story search would weigh, positive when that
    event is of the item's group (its story) but not its label (its event)."""
    examples = Examples()
    index = EventIndex(STORY_TRAINING_WINDOW, count_templates=True, background=ordinary_language)
    signer = Signer(DEFAULT_PARAMS)
    feeds: dict[str, int] = {}
    events: dict[str, int] = {}
    group_of: dict[int, str] = {}
    for position, item in enumerate(sorted(items, key=lambda i: i.published)):
        prepared = prepare_entry(normalize_entry(_raw(item)), signer)
        feed_id = feeds.setdefault(item.source, len(feeds) + 1)
        gold = events.setdefault(item.label, len(events) + 1)
        group_of[gold] = item.group
        headline = prepared.signatures.headline_only
        index.observe(prepared.vector)
        published = prepared.entry.published or item.published
        found = index.candidates(
            prepared.vector, headline_only=headline, now=published, published=published,
            feed_id=feed_id, within_span=False, marks=prepared.marks,
        )  # fmt: skip
        rows = [
            (candidate.features(similarity), group_of[event_id] == item.group)
            for event_id, candidate, similarity in found
            if event_id != gold
        ]
        present = any(
            group == item.group and event_id != gold for event_id, group in group_of.items()
        )
        if rows or present:
            examples.add_decision(rows, present)
        index.add_member(
            position, gold, prepared.vector, headline_only=headline, when=published,
            published=published, feed_id=feed_id, marks=prepared.marks,
        )  # fmt: skip
    return examples


def story_streams(root: Path, *, besides: str = "") -> list[tuple[str, Examples]]:
    """The story examples of every labelled stream of `STORY_GROUPS` in `root` but
    `besides` (the data set being held out)."""
    return [
        (name, stream_story_examples(STREAMS[name][1](root / STREAMS[name][0])))
        for name in sorted(STORY_GROUPS)
        if name != besides
    ]


class PairFeatures:
    """The features of judged pairs (the later item against the earlier as a one-item
    event), each folder placed once by the daemon's code however many pairs are asked."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._folders: dict[str, tuple[dict[tuple[str, str], judged.Placed], _Window]] = {}

    def _folder(self, folder: str) -> tuple[dict[tuple[str, str], judged.Placed], _Window]:
        if folder not in self._folders:
            files = judged.feed_files(self.root / folder)
            with judged.placed_folder(self.root, files, Settings(), None) as store:
                self._folders[folder] = _placed_items(store)
        return self._folders[folder]

    def row(self, pair: judged.JudgedPair) -> list[float] | None:
        """None when an item of the pair is not found (its feed failed, or it is gone)."""
        found = self._located(pair)
        if found is None:
            return None
        return _pair_features(self._folder(judged.folder_of(pair.feed_a))[1], *found)

    def examples(self, pairs: Sequence[judged.JudgedPair]) -> Examples:
        """Join decisions: positive when the pair is the same event."""
        examples = Examples()
        for pair in sorted(pairs, key=lambda p: (judged.folder_of(p.feed_a), p.line)):
            row = self.row(pair)
            if row is None:
                continue
            positive = pair.verdict is judged.Verdict.SAME_EVENT
            examples.add_decision([(row, positive)], positive)
        return examples

    def story_examples(self, pairs: Sequence[judged.JudgedPair]) -> Examples:
        """Story-link decisions: the later item of each pair against every earlier item
        the search would weigh for it (one-item events of its folder), positive where a
        pair says the same story or event. Candidates no pair names count as unrelated
        (nearly all are), so that the link is fitted on the candidates the daemon meets,
        not only on the look-alike pairs a person chose to judge; those the daemon put in
        the item's own event are left out (the story search never weighs them)."""
        named: dict[tuple[str, int], dict[int, bool]] = {}
        for pair in pairs:
            folder = judged.folder_of(pair.feed_a)
            found = self._located(pair)
            if found is None:
                continue
            earlier, later = found
            positive = pair.verdict is not judged.Verdict.DIFFERENT
            named.setdefault((folder, later), {})[earlier] = positive
        examples = Examples()
        for (folder, later), partners in sorted(named.items()):
            window = self._folder(folder)[1]
            index = window.index
            profile = index.profiles[later]
            assert profile.earliest is not None
            rows: list[tuple[list[float], bool]] = []
            seen: set[int] = set()
            for event_id, candidate, similarity in index.candidates(
                window.vectors[later], headline_only=profile.headline_event,
                now=profile.earliest, published=profile.earliest,
                feed_id=next(iter(profile.feeds)), within_span=False,
                marks=window.marks.get(later, frozenset()),
            ):  # fmt: skip
                other = index.profiles[event_id]
                if event_id == later or (other.earliest or profile.earliest) > profile.earliest:
                    continue  # itself, or an item that was not there yet
                own_event = window.placed_in.get(event_id) == window.placed_in.get(later)
                if own_event and event_id not in partners:
                    continue  # in the item's own event: never a story decision
                seen.add(event_id)
                rows.append((candidate.features(similarity), partners.get(event_id, False)))
            for earlier, positive in sorted(partners.items()):
                if earlier not in seen:
                    rows.append((_pair_features(window, earlier, later), positive))
            examples.add_decision(rows, any(partners.values()))
        return examples

    def _located(self, pair: judged.JudgedPair) -> tuple[int, int] | None:
        """The entries of the pair's items, earlier first; None when one is not found."""
        keys, window = self._folder(judged.folder_of(pair.feed_a))
        first = judged.find(keys, pair.feed_a, pair.item_a)
        second = judged.find(keys, pair.feed_b, pair.item_b)
        if first is None or second is None:
            return None
        a, b = window.index.profiles[first.entry_id], window.index.profiles[second.entry_id]
        if a.earliest and b.earliest and a.earliest > b.earliest:
            return second.entry_id, first.entry_id
        return first.entry_id, second.entry_id


@dataclass(slots=True)
class _Window:
    """Every placed item as an event of its own (id: the entry's), with its vector."""

    index: EventIndex
    vectors: dict[int, TermVector] = field(default_factory=dict)
    placed_in: dict[int, int] = field(default_factory=dict)  # entry -> the daemon's event
    marks: dict[int, frozenset[Mark]] = field(default_factory=dict)  # entry -> its title's


def _placed_items(store: Store) -> tuple[dict[tuple[str, str], judged.Placed], _Window]:
    """Each placed item found by (feed name, GUID or link), and the window of them all,
    counting the feeds' templates."""
    keys = judged.placed_keys(store)
    index = EventIndex(Settings().dedup_window, count_templates=True, background=ordinary_language)
    vectors: dict[int, TermVector] = {}
    placed_in: dict[int, int] = {}
    marks: dict[int, frozenset[Mark]] = {}
    for row in store.placed_entries():
        entry_id = row.entry_id
        vector = event_terms(row.title, row.text, row.link)
        found = marks[entry_id] = title_marks(row.title)
        index.add_member(
            entry_id, entry_id, vector, headline_only=row.headline_only, when=row.first_seen,
            published=row.published, observed=False, feed_id=row.feed_id, marks=found,
        )  # fmt: skip
        vectors[entry_id] = vector
        assert row.event_id is not None
        placed_in[entry_id] = row.event_id
    return keys, _Window(index, vectors, placed_in, marks)


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
        len(query.ids), window.marks.get(second.event_id, frozenset()),
    )  # fmt: skip
    return candidate.features(similarity)


def fit_story(sources: Sequence[tuple[str, Examples]]) -> EventModel:
    """The story link fitted on story decisions (`PairFeatures.story_examples`,
    `stream_story_examples`), each source weighing the same, its threshold by F-beta of
    "link to the most probable candidate"."""
    return _fit(sources, beta=STORY_F_BETA)


def _decision_threshold(
    logits: npt.NDArray[np.float64], examples: Examples, *, beta: float
) -> float:
    """The threshold maximising F-beta of the decisions "take the most probable candidate
    if it reaches the threshold" (`choose_threshold`)."""
    probabilities = 1.0 / (1.0 + np.exp(-np.clip(logits, -30, 30)))
    best = np.full(len(examples.present), -1.0)
    right = np.zeros(len(examples.present), dtype=bool)
    for row, decision in enumerate(examples.decision_of_row):
        if probabilities[row] > best[decision]:
            best[decision] = probabilities[row]
            right[decision] = bool(examples.labels[row])
    # A decision with no candidate is a miss whatever the threshold (probability 0).
    return choose_threshold(
        np.maximum(best, 0.0).tolist(), right.tolist(), examples.present, beta=beta
    )


def with_story(join: EventModel, story: EventModel) -> EventModel:
    return EventModel(join.weights, join.bias, join.threshold, join.trained_on, story=story)


def fit(sources: Sequence[tuple[str, Examples]]) -> EventModel:
    """The join model fitted on `sources` (name, examples), each weighing the same."""
    return _fit(sources, beta=F_BETA)


def _fit(sources: Sequence[tuple[str, Examples]], *, beta: float) -> EventModel:
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
    threshold = _decision_threshold(x @ w + bias, everything, beta=beta)
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


# The join model shipped until a fitted one beats it on held-out folds: the cosine
# thresholds of version 0.2 (0.285 for an article, 0.30 for a headline) as a model.
UNFITTED_JOIN = EventModel(
    # `another_part` is a rule, not a fit: another part or edition of a feed's series is
    # another item whatever its cosine (-100 keeps any cosine below the threshold).
    weights=(50.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -0.75, 0.0, 0.0, 0.0, -100.0),
    bias=-14.25,
    threshold=0.5,
    trained_on=(
        "not fitted: the cosine thresholds of version 0.2 (0.285 for an article, 0.30 for "
        "a headline) written as a model, until a fitted model beats them on held-out folds "
        "(docs/eval/*-learned-folds.md)"
    ),
)


class ModelLearner:
    """Fits the event model for one held-out fold of `dataset`: on that data set's training
    folds, plus every other source whole (no story of one data set is in another). The
    story link is fitted on the judged pairs: their training folds when `dataset` is the
    judged set, else all of them."""

    name = "event model (logistic regression, fitted on the training folds)"

    def __init__(self, root: Path, dataset: str) -> None:
        self.root = root
        self.dataset = dataset
        self.features = PairFeatures(root)
        self._others: list[tuple[str, Examples]] | None = None
        self._story: EventModel | None = None

    def others(self) -> list[tuple[str, Examples]]:
        if self._others is None:
            self._others = [
                (name, stream_examples(load(self.root / folder)))
                for name, (folder, load) in STREAMS.items()
                if name != self.dataset
            ]
            if self.dataset != "judged":
                pairs = judged.load_pairs(judged.SHIPPED_PAIRS)
                self._others.append(("judged", self.features.examples(pairs)))
        return self._others

    def story(self) -> EventModel:
        if self._story is None:
            pairs = judged.load_pairs(judged.SHIPPED_PAIRS)
            self._story = fit_story(
                [("judged pairs", self.features.story_examples(pairs)),
                 *story_streams(self.root, besides=self.dataset)]
            )  # fmt: skip
        return self._story

    def fit(self, train: Sequence[object]) -> Params:
        own: list[tuple[str, Examples]] = []
        story = self.story() if self.dataset != "judged" else None
        if self.dataset in STREAMS:
            items = [item for item in train if isinstance(item, datasets.LabeledItem)]
            own.append((f"{self.dataset} training folds", stream_examples(items)))
            if self.dataset in STORY_GROUPS:
                story = fit_story(
                    [("judged pairs", self.features.story_examples(
                        judged.load_pairs(judged.SHIPPED_PAIRS))),
                     (f"{self.dataset} training folds", stream_story_examples(items))]
                )  # fmt: skip
        elif self.dataset == "judged":
            pairs = [pair for pair in train if isinstance(pair, judged.JudgedPair)]
            own.append(("judged training folds", self.features.examples(pairs)))
            story = fit_story(
                [("judged training folds", self.features.story_examples(pairs)),
                 *story_streams(self.root)]
            )  # fmt: skip
        assert story is not None
        model = with_story(fit([*own, *self.others()]), story)
        return Params(model=model, name=f"event model fitted on {model.trained_on}")


class StoryLearner:
    """The shipped join model with the story link fitted on the training folds of the
    judged pairs: what the judged folds score by default, because the shipped story link
    is fitted on every judged pair and would be scored on pairs it learnt from."""

    name = "story link fitted on the training folds (join model as shipped)"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.features = PairFeatures(root)
        self._streams: list[tuple[str, Examples]] | None = None

    def fit(self, train: Sequence[object]) -> Params:
        pairs = [pair for pair in train if isinstance(pair, judged.JudgedPair)]
        if self._streams is None:
            self._streams = story_streams(self.root)
        story = fit_story(
            [("judged training folds", self.features.story_examples(pairs)), *self._streams]
        )
        join = shipped_model()
        model = with_story(join, story)
        return Params(model=model, name=f"story link fitted on {story.trained_on}")


def shipped(root: Path, *, fit_join: bool = False) -> EventModel:
    """The model the daemon ships: the join model `UNFITTED_JOIN` (`fit_join`: fitted on
    every labelled stream and every judged pair) and the story link fitted on every judged
    pair."""
    pairs = judged.load_pairs(judged.SHIPPED_PAIRS)
    features = PairFeatures(root)
    join = UNFITTED_JOIN
    if fit_join:
        sources = [
            (name, stream_examples(load(root / folder))) for name, (folder, load) in STREAMS.items()
        ]
        sources.append(("judged", features.examples(pairs)))
        join = fit(sources)
    story = fit_story([("judged pairs", features.story_examples(pairs)), *story_streams(root)])
    return with_story(join, story)


def model_text(model: EventModel) -> str:
    return json.dumps(model.as_json(), indent=2) + "\n"


def write_shipped(root: Path, path: Path = SHIPPED_MODEL, *, fit_join: bool = False) -> EventModel:
    model = shipped(root, fit_join=fit_join)
    path.write_text(model_text(model), encoding="utf-8")
    return model
