"""Folds that never split a story, and the scores of each held-out fold.

Elements (items, pairs) carry keys; elements that share a key, directly or through others,
form one unit (a story, a topic, SemEval pairs sharing an article) and a unit lies in
exactly one fold. Units are dealt largest first to the fold with the fewest elements so
far, equal sizes in the order of a salted hash: the same data and seed give the same folds
on every machine, and a renamed unit does not move the others.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aggregator.evaluation.learning import Learner, Params

T = TypeVar("T")

# Fixed, so that the folds of a report can be rebuilt; a new seed is a new experiment.
FOLD_SEED = "aggregator-folds-v1"


def _salted(seed: str, name: str) -> str:
    return hashlib.sha256(f"{seed}:{name}".encode()).hexdigest()


def connected_units(keys: Sequence[Iterable[Hashable]]) -> list[str]:
    """The unit of each element: elements sharing a key (transitively) share a unit,
    named by the smallest of its keys (as text), so the name does not depend on order."""
    parent: dict[str, str] = {}

    def find(key: str) -> str:
        root = key
        while parent[root] != root:
            root = parent[root]
        while parent[key] != root:  # path compression
            parent[key], key = root, parent[key]
        return root

    named: list[list[str]] = []
    for element_keys in keys:
        texts = [str(key) for key in element_keys]
        if not texts:
            raise ValueError("every element needs at least one key")
        named.append(texts)
        for text in texts:
            parent.setdefault(text, text)
        first = find(texts[0])
        for text in texts[1:]:
            other = find(text)
            if other != first:
                # The smaller name becomes the root: the unit's name is its smallest key.
                low, high = sorted((first, other))
                parent[high] = low
                first = low
    return [find(texts[0]) for texts in named]


def assign(sizes: dict[str, int], k: int, *, seed: str = FOLD_SEED) -> dict[str, int]:
    """Unit -> fold (0 .. k-1): largest units first, each to the lightest fold so far."""
    if k < 2:
        raise ValueError(f"need at least 2 folds, got {k}")
    if len(sizes) < k:
        raise ValueError(f"{len(sizes)} units cannot fill {k} folds")
    totals = [0] * k
    folds: dict[str, int] = {}
    for unit in sorted(sizes, key=lambda name: (-sizes[name], _salted(seed, name))):
        fold = min(range(k), key=lambda index: (totals[index], index))
        folds[unit] = fold
        totals[fold] += sizes[unit]
    return folds


def split(
    elements: Sequence[T], keys: Callable[[T], Iterable[Hashable]], k: int, *,
    seed: str = FOLD_SEED,
) -> list[list[T]]:  # fmt: skip
    """`k` folds of `elements`, each in the input order (arrival order is kept)."""
    units = connected_units([keys(element) for element in elements])
    sizes: dict[str, int] = {}
    for unit in units:
        sizes[unit] = sizes.get(unit, 0) + 1
    fold_of = assign(sizes, k, seed=seed)
    folds: list[list[T]] = [[] for _ in range(k)]
    for element, unit in zip(elements, units, strict=True):
        folds[fold_of[unit]].append(element)
    return folds


@dataclass(frozen=True, slots=True)
class FoldScore:
    """One held-out fold: its sizes (items, labels, pairs...) and its figures."""

    fold: int
    counts: dict[str, int]
    figures: dict[str, float]
    params: str = ""


@dataclass(frozen=True, slots=True)
class FoldReport:
    """Every held-out fold of one data set, with the mean and the worst fold."""

    dataset: str
    k: int
    seed: str
    units: int
    unit: str  # what a unit is, in words
    learner: str
    folds: tuple[FoldScore, ...]
    notes: tuple[str, ...] = field(default=())

    @property
    def figure_names(self) -> list[str]:
        return list(self.folds[0].figures) if self.folds else []

    def mean(self) -> dict[str, float]:
        return {
            name: sum(fold.figures[name] for fold in self.folds) / len(self.folds)
            for name in self.figure_names
        }

    def worst(self) -> dict[str, float]:
        """The lowest value of each figure over the folds (every figure is better high)."""
        return {name: min(fold.figures[name] for fold in self.folds) for name in self.figure_names}

    def as_json(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset, "folds": self.k, "seed": self.seed, "units": self.units,
            "unit": self.unit, "learner": self.learner, "notes": list(self.notes),
            "per_fold": [
                {"fold": fold.fold, **fold.counts, "figures": fold.figures,
                 "params": fold.params}
                for fold in self.folds
            ],
            "mean": self.mean(), "worst": self.worst(),
        }  # fmt: skip

    def text(self) -> str:
        names = self.figure_names
        lines = [
            f"{self.dataset}: {self.k} folds by {self.unit} ({self.units} units, seed "
            f"{self.seed}); learner: {self.learner}",
            "  fold  " + "  ".join(f"{name:>12}" for name in names),
        ]
        for fold in self.folds:
            values = "  ".join(f"{fold.figures[name]:>12.3f}" for name in names)
            lines.append(f"  {fold.fold:>4}  {values}")
        for label, row in (("mean", self.mean()), ("worst", self.worst())):
            lines.append(f"  {label:>5} " + "  ".join(f"{row[name]:>12.3f}" for name in names))
        lines.extend(f"  note: {note}" for note in self.notes)
        return "\n".join(lines)


Scorer = Callable[[Sequence[T], Params], tuple[dict[str, int], dict[str, float]]]


def cross_validate(
    elements: Sequence[T], *, keys: Callable[[T], Iterable[Hashable]], k: int,
    learner: Learner[T], score: Scorer[T], dataset: str, unit: str,
    seed: str = FOLD_SEED, notes: Sequence[str] = (),
) -> FoldReport:  # fmt: skip
    """For each fold: fit on the other folds, score the held-out fold with what was fitted."""
    folds = split(elements, keys, k, seed=seed)
    scores = []
    for index, held_out in enumerate(folds):
        train = [element for other, fold in enumerate(folds) if other != index for element in fold]
        params = learner.fit(train)
        counts, figures = score(held_out, params)
        scores.append(FoldScore(index, counts, figures, params.name))
    units = len(set(connected_units([keys(element) for element in elements])))
    return FoldReport(
        dataset=dataset, k=k, seed=seed, units=units, unit=unit, learner=learner.name,
        folds=tuple(scores), notes=tuple(notes),
    )  # fmt: skip
