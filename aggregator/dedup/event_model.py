"""The same-event decision: a logistic model over what an entry and a candidate event share
(pure; numpy only).

One cosine cannot tell a feed's series or its daily bulletins from one event told twice:
they share words, but are days apart and come from one feed that repeats them. So the
decision weighs the cosine with the time outside the event's span, the event's age, whether
the event already holds items of this feed and how much of the entry's weight is that feed's
template (dedup/feed_terms.py), and what kind of items they are. The weights and the join
threshold are fitted offline on training folds (`aggregator.evaluation.training`, `make
train`) and shipped as a small versioned file the daemon reads.

The same file holds a second decision over the same features, the story link: an entry
that founds an event links it to the story of the event it is most probably related to
(the same ongoing storyline, not the same happening), fitted on the judged real-feed pairs
that say "same story" or "same event" against "different".

The probability is linear in the cosine for a given candidate (`needed_similarity`), so the
index still skips candidates whose cosine bound cannot reach the probability needed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from aggregator.errors import ModelFileError

FORMAT_VERSION = 3  # 2: the story link beside the join; 3: `another_part`
SHIPPED_MODEL = Path(__file__).with_name("event_model.json")

# The features, in the order of the weights; `similarity` first (see `needed_similarity`).
FEATURES = (
    "similarity",  # IDF-weighted cosine of the entry and the event's centroid
    "similarity_if_headline",  # the same, for an entry with no text (its own slope)
    "similarity_by_log_terms",  # the same times log(terms of the entry): long texts share
    # a smaller part of their vocabulary with another write-up than short ones do
    "log_hours_outside_span",  # log(1 + hours between the entry and the event's span)
    "log_hours_since_first",  # log(1 + hours between the event's first item and the entry)
    "own_feed",  # the event holds an item of the entry's feed
    "own_template_share",  # the entry's weight in its feed's template, against its own feed
    "headline_item",  # the entry has no text
    "headline_event",  # most of the event's items have no text
    "log_members",  # log of the event's size
    "log_terms",  # log of the number of terms of the entry
    "another_part",  # the entry is another part or edition of a series of the event's feed
)
# How each feature reads in an explanation ("decided by: ...").
FEATURE_WORDS = {
    "similarity": "the words they share",
    "similarity_if_headline": "the words they share, between headlines",
    "similarity_by_log_terms": "the words they share, for a text this long",
    "log_hours_outside_span": "the time outside the event's span",
    "log_hours_since_first": "the time since the event's first report",
    "own_feed": "the event already holds an item of this feed",
    "own_template_share": "words this feed repeats in many of its items",
    "headline_item": "the item has no text",
    "headline_event": "the event is mostly headlines",
    "log_members": "the event's size",
    "log_terms": "the item's length",
    "another_part": "it is another part or edition of a series of this feed",
}


def decided_by(probability: float | None, reasons: Sequence[tuple[str, float]]) -> str:
    """'probability 0.93, decided by the words they share (+20.60) and the item has no
    text (-0.75)'; '' when the decision had no probability (a copy, a founder)."""
    if probability is None:
        return ""
    parts = [f"{FEATURE_WORDS.get(name, name)} ({part:+.2f})" for name, part in reasons]
    named = ", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else "".join(parts)
    return f"probability {probability:.2f}" + (f", decided by {named}" if named else "")


SIMILARITY_FEATURES = 3  # the first three are the cosine (times 1, `headline_item`, log terms)


@dataclass(frozen=True, slots=True)
class Candidate:
    """What the decision knows of an entry against one candidate event, but the cosine."""

    hours_outside_span: float
    hours_since_first: float
    own_feed: bool
    own_template_share: float
    headline_item: bool
    headline_event: bool
    members: int
    terms: int = 1  # of the entry's vector
    another_part: bool = False  # dedup/series.py

    @property
    def log_terms(self) -> float:
        return math.log(max(1, self.terms))

    def slope(self, weights: Sequence[float]) -> float:
        """How much the log-odds grow per unit of cosine."""
        return weights[0] + weights[1] * self.headline_item + weights[2] * self.log_terms

    def rest(self) -> list[float]:
        """The features after the similarity ones."""
        return [
            math.log1p(self.hours_outside_span),
            math.log1p(self.hours_since_first),
            float(self.own_feed),
            self.own_template_share if self.own_feed else 0.0,
            float(self.headline_item),
            float(self.headline_event),
            math.log(max(1, self.members)),
            self.log_terms,
            float(self.another_part),
        ]

    def features(self, similarity: float) -> list[float]:
        return [
            similarity, similarity * self.headline_item, similarity * self.log_terms,
            *self.rest(),
        ]  # fmt: skip


def hours_between(
    published: datetime, earliest: datetime | None, latest: datetime | None
) -> tuple[float, float]:
    """Hours of `published` outside the span [earliest, latest], and since `earliest`."""
    if earliest is None or latest is None:
        return 0.0, 0.0
    if published < earliest:
        outside = (earliest - published).total_seconds()
    elif published > latest:
        outside = (published - latest).total_seconds()
    else:
        outside = 0.0
    return outside / 3600.0, abs((published - earliest).total_seconds()) / 3600.0


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))


def _logit(p: float) -> float:
    p = min(max(p, 1e-12), 1.0 - 1e-12)
    return math.log(p / (1.0 - p))


@dataclass(frozen=True, slots=True)
class EventModel:
    """Weights of `FEATURES`, bias, and the probability at which an entry joins; `story`:
    the model of the story link (None: events are never linked into stories)."""

    weights: tuple[float, ...]
    bias: float
    threshold: float
    trained_on: str = ""
    story: EventModel | None = None

    def __post_init__(self) -> None:
        if len(self.weights) != len(FEATURES):
            raise ModelFileError(f"{len(self.weights)} weights for {len(FEATURES)} features")
        if not 0.0 < self.threshold < 1.0:
            raise ModelFileError(f"join threshold {self.threshold} is not a probability")
        if self.story is not None and self.story.story is not None:
            raise ModelFileError("a story model has no story model of its own")

    def weighs(self, feature: str) -> bool:
        """Whether the feature moves the probability at all (else nobody computes it)."""
        return self.weights[FEATURES.index(feature)] != 0.0

    def probability(self, candidate: Candidate, similarity: float) -> float:
        z = self.bias + sum(
            w * x for w, x in zip(self.weights, candidate.features(similarity), strict=True)
        )
        return _sigmoid(z)

    def needed_similarity(self, candidate: Candidate, probability: float) -> float:
        """The least cosine at which `candidate` reaches `probability` (0 when the model
        does not grow with the cosine: then every candidate is scored)."""
        slope = candidate.slope(self.weights)
        if slope <= 0.0:
            return 0.0
        rest = sum(
            w * x for w, x in zip(self.weights[SIMILARITY_FEATURES:], candidate.rest(), strict=True)
        )
        return max(0.0, (_logit(probability) - self.bias - rest) / slope)

    def reasons(
        self, candidate: Candidate, similarity: float, count: int = 3
    ) -> tuple[tuple[str, float], ...]:
        """The `count` features that moved the log-odds most, with their parts."""
        return tuple((name, round(part, 2)) for name, part in
                     self.contributions(candidate, similarity)[:count])  # fmt: skip

    def contributions(self, candidate: Candidate, similarity: float) -> list[tuple[str, float]]:
        """Each feature's part of the log-odds, largest effect first (for `explain`)."""
        parts = [
            (name, w * x)
            for name, w, x in zip(
                FEATURES, self.weights, candidate.features(similarity), strict=True
            )
            if w * x
        ]
        return sorted(parts, key=lambda part: -abs(part[1]))

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"format": FORMAT_VERSION, "features": list(FEATURES)}
        data.update(self._decision_json())
        if self.story is not None:
            data["story"] = self.story._decision_json()
        return data

    def _decision_json(self) -> dict[str, Any]:
        return {
            "weights": [round(w, 6) for w in self.weights],
            "bias": round(self.bias, 6),
            "threshold": round(self.threshold, 6),
            "trained_on": self.trained_on,
        }

    @classmethod
    def from_json(cls, data: Any) -> EventModel:
        if not isinstance(data, dict) or data.get("format") != FORMAT_VERSION:
            raise ModelFileError(f"not an event model of format {FORMAT_VERSION}")
        if data.get("features") != list(FEATURES):
            raise ModelFileError("the model's features are not this version's")
        story = data.get("story")
        if story is not None and not isinstance(story, dict):
            raise ModelFileError("event model: the story model is not an object")
        return cls._decision(data, None if story is None else cls._decision(story, None))

    @classmethod
    def _decision(cls, data: dict[str, Any], story: EventModel | None) -> EventModel:
        try:
            return cls(
                weights=tuple(float(w) for w in data["weights"]),
                bias=float(data["bias"]),
                threshold=float(data["threshold"]),
                trained_on=str(data.get("trained_on", "")),
                story=story,
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ModelFileError(f"event model: {error}") from error

    @classmethod
    def load(cls, path: Path) -> EventModel:
        try:
            return cls.from_json(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError) as error:
            raise ModelFileError(f"{path}: {error}") from error


@cache
def shipped_model() -> EventModel:
    return EventModel.load(SHIPPED_MODEL)


FloatMatrix = npt.NDArray[np.float64]


def fit_logistic(
    x: FloatMatrix, y: npt.NDArray[np.float64], *, l2: float = 1.0, steps: int = 50,
    sample_weight: npt.NDArray[np.float64] | None = None,
) -> tuple[npt.NDArray[np.float64], float]:  # fmt: skip
    """Weights and bias of an L2-regularised, weighted logistic regression (Newton's
    method on standardised features; the bias is not penalised)."""
    weight = np.ones(len(x)) if sample_weight is None else sample_weight
    mean = np.average(x, axis=0, weights=weight)
    scale = np.sqrt(np.average((x - mean) ** 2, axis=0, weights=weight))
    scale[scale == 0.0] = 1.0
    z = np.hstack([(x - mean) / scale, np.ones((len(x), 1))])
    beta = np.zeros(z.shape[1])
    penalty = np.full(z.shape[1], l2)
    penalty[-1] = 0.0
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-np.clip(z @ beta, -30, 30)))
        gradient = z.T @ (weight * (p - y)) + penalty * beta
        hessian = (
            (z * (weight * p * (1 - p))[:, None]).T @ z
            + np.diag(penalty)
            + 1e-9 * np.eye(len(beta))
        )
        step = np.linalg.solve(hessian, gradient)
        beta -= step
        if float(np.abs(step).max()) < 1e-8:
            break
    weights = beta[:-1] / scale
    bias = float(beta[-1] - np.dot(weights, mean))
    return weights, bias


def choose_threshold(
    best: Sequence[float], right: Sequence[bool], present: Sequence[bool], *, beta: float = 0.5
) -> float:
    """The join probability maximising F-beta (precision weighed first) of the decisions
    "join the most probable candidate": `best` its probability, `right` whether it is the
    entry's event, `present` whether the entry's event was there to join."""
    order = np.argsort(-np.asarray(best, dtype=np.float64), kind="stable")
    probabilities = np.asarray(best, dtype=np.float64)[order]
    hits = np.cumsum(np.asarray(right, dtype=np.float64)[order])
    joins = np.arange(1, len(order) + 1, dtype=np.float64)
    relevant = max(1.0, float(np.sum(present)))
    precision, recall = hits / joins, hits / relevant
    b2 = beta * beta
    score = (1 + b2) * precision * recall / np.maximum(b2 * precision + recall, 1e-12)
    if not len(score):
        return 0.5
    at = int(np.argmax(score))
    # Halfway to the next lower probability: the threshold is not one example's value.
    below = probabilities[at + 1] if at + 1 < len(probabilities) else 0.0
    return float(min(max((probabilities[at] + below) / 2.0, 1e-6), 1.0 - 1e-6))
