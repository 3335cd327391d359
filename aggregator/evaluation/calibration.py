"""How far the model's probabilities can be read as probabilities, on held-out folds.

For each fold of the judged pairs (the folds of `aggregator eval judged --folds K`), the
story link is fitted on the training folds and weighs the held-out items' story decisions
(`PairFeatures.story_examples`); the join model, as shipped (it is not fitted), weighs the
held-out pairs. Each probability is binned with whether the pair was in truth related
(story) or the same event (join): a calibrated model's 0.7 bin is right 70% of the time.
The expected calibration error (ECE) is the count-weighted gap between the two.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from aggregator.dedup.event_model import EventModel, shipped_model
from aggregator.evaluation import judged
from aggregator.evaluation.folds import FOLD_SEED, split
from aggregator.evaluation.training import Examples, PairFeatures, fit_story, story_streams

BINS = 10


@dataclass(frozen=True, slots=True)
class Bin:
    low: float
    high: float
    count: int
    predicted: float  # mean probability in the bin
    observed: float  # share of positives in the bin


@dataclass(frozen=True, slots=True)
class Reliability:
    """The bins of one model's held-out probabilities, and their calibration error."""

    name: str
    bins: tuple[Bin, ...]

    @property
    def count(self) -> int:
        return sum(b.count for b in self.bins)

    @property
    def ece(self) -> float:
        gaps = sum(b.count * abs(b.predicted - b.observed) for b in self.bins)
        return gaps / self.count if self.count else 0.0

    def lines(self) -> list[str]:
        out = [f"{self.name}: {self.count} held-out probabilities, ECE {self.ece:.3f}",
               "  probability      count  mean predicted  observed"]  # fmt: skip
        for b in self.bins:
            if b.count:
                out.append(
                    f"  {b.low:.1f}-{b.high:.1f}  {b.count:>12}  {b.predicted:>14.3f}"
                    f"  {b.observed:>8.3f}"
                )
        return out

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "count": self.count, "ece": round(self.ece, 4),
            "bins": [{"low": b.low, "high": b.high, "count": b.count,
                      "predicted": round(b.predicted, 4), "observed": round(b.observed, 4)}
                     for b in self.bins],
        }  # fmt: skip


def reliability(
    name: str, probabilities: Sequence[float], labels: Sequence[bool], bins: int = BINS
) -> Reliability:
    p = np.asarray(probabilities, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    which = np.minimum((p * bins).astype(np.int64), bins - 1)
    found = []
    for at in range(bins):
        inside = which == at
        count = int(inside.sum())
        predicted = float(p[inside].mean()) if count else 0.0
        observed = float(y[inside].mean()) if count else 0.0
        found.append(Bin(at / bins, (at + 1) / bins, count, predicted, observed))
    return Reliability(name, tuple(found))


def _probabilities(model: EventModel, examples: Examples) -> list[float]:
    x = np.asarray(examples.rows, dtype=np.float64).reshape(-1, len(model.weights))
    z = x @ np.asarray(model.weights) + model.bias
    return [float(v) for v in 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))]


@dataclass(frozen=True, slots=True)
class CalibrationReport:
    k: int
    join: Reliability
    story: Reliability

    def text(self) -> str:
        lines = [
            f"calibration on {self.k} held-out folds of the judged pairs (seed {FOLD_SEED})",
            *self.join.lines(),
            "",
            *self.story.lines(),
        ]
        return "\n".join(lines)

    def as_json(self) -> dict[str, Any]:
        return {"k": self.k, "join": self.join.as_json(), "story": self.story.as_json()}


def judged_calibration(
    root: Path, k: int, *, pairs_file: Path = judged.SHIPPED_PAIRS
) -> CalibrationReport:
    pairs = judged.load_pairs(pairs_file)
    features = PairFeatures(root)
    join_model = shipped_model()
    join_p: list[float] = []
    join_y: list[bool] = []
    story_p: list[float] = []
    story_y: list[bool] = []
    streams = story_streams(root)
    folds = split(pairs, lambda pair: pair.items, k)
    for index, held_out in enumerate(folds):
        train = [pair for other, fold in enumerate(folds) if other != index for pair in fold]
        story = fit_story([("judged training folds", features.story_examples(train)), *streams])
        tested = features.story_examples(held_out)
        story_p += _probabilities(story, tested)
        story_y += [label > 0 for label in tested.labels]
        joins = features.examples(held_out)
        join_p += _probabilities(join_model, joins)
        join_y += [label > 0 for label in joins.labels]
    return CalibrationReport(
        k,
        reliability("join (same event), as shipped, on the held-out pairs", join_p, join_y),
        reliability(
            "story link, fitted on the training folds, on the held-out items' candidates",
            story_p, story_y,
        ),
    )  # fmt: skip
