"""Clustering scores against labels (pure): pairwise and B-cubed precision/recall/F1.

Pairwise scores count pairs of items; B-cubed scores average, per item, the share of its
predicted group that has its label (precision) and the share of its label that is in its
predicted group (recall). A single giant group has high recall and worthless precision,
so the two are always reported together.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Hashable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Scores:
    precision: float
    recall: float

    @property
    def f1(self) -> float:
        total = self.precision + self.recall
        return 2 * self.precision * self.recall / total if total else 0.0

    def __str__(self) -> str:
        return f"P {self.precision:.3f} / R {self.recall:.3f} / F1 {self.f1:.3f}"


def _pairs(n: int) -> int:
    return n * (n - 1) // 2


def pairwise(
    predicted: Mapping[str, Hashable], gold: Mapping[str, Hashable],
    over: Collection[str] | None = None,
) -> Scores:  # fmt: skip
    """Precision and recall over all pairs of items put together; with `over`, only the
    pairs with at least one item of `over` (the other may be any item of `gold`)."""
    if over is None:
        items = list(gold)
        joint = Counter((predicted[i], gold[i]) for i in items)
        predicted_pairs = sum(_pairs(n) for n in Counter(predicted[i] for i in items).values())
        gold_pairs = sum(_pairs(n) for n in Counter(gold[i] for i in items).values())
        both = sum(_pairs(n) for n in joint.values())
    else:
        # Pairs inside `over` plus pairs between `over` and the rest, from group sizes.
        def count(key: Callable[[str], Hashable]) -> int:
            inside = Counter(key(i) for i in gold if i in over)
            outside = Counter(key(i) for i in gold if i not in over)
            return sum(_pairs(n) + n * outside[group] for group, n in inside.items())

        predicted_pairs = count(lambda i: predicted[i])
        gold_pairs = count(lambda i: gold[i])
        both = count(lambda i: (predicted[i], gold[i]))
    return Scores(
        precision=both / predicted_pairs if predicted_pairs else 1.0,
        recall=both / gold_pairs if gold_pairs else 1.0,
    )


def bcubed(
    predicted: Mapping[str, Hashable], gold: Mapping[str, Hashable],
    over: Collection[str] | None = None,
) -> Scores:  # fmt: skip
    """B-cubed precision and recall, averaged over items (over the items of `over` only,
    each scored against its whole predicted group and its whole label)."""
    items = list(gold)
    scored = items if over is None else [i for i in items if i in over]
    if not scored:
        return Scores(1.0, 1.0)
    joint = Counter((predicted[i], gold[i]) for i in items)
    predicted_sizes = Counter(predicted[i] for i in items)
    gold_sizes = Counter(gold[i] for i in items)
    precision = recall = 0.0
    for item in scored:
        overlap = joint[(predicted[item], gold[item])]
        precision += overlap / predicted_sizes[predicted[item]]
        recall += overlap / gold_sizes[gold[item]]
    return Scores(precision / len(scored), recall / len(scored))


def decision_accuracy(decisions: list[tuple[bool, bool]]) -> Scores:
    """Precision and recall of `same` decisions given (predicted, expected) pairs."""
    true_positive = sum(1 for p, e in decisions if p and e)
    predicted = sum(1 for p, _ in decisions if p)
    expected = sum(1 for _, e in decisions if e)
    return Scores(
        precision=true_positive / predicted if predicted else 1.0,
        recall=true_positive / expected if expected else 1.0,
    )
