"""Held-out folds of the labelled sets, each scored through the daemon's code path.

A held-out fold is replayed alone (`replay.replay`, a fresh database, its items in their
arrival order), so its window holds only its own stories: a fold's figures are those of
a smaller stream than the whole set's, and both are reported, never mixed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from aggregator.evaluation import datasets
from aggregator.evaluation.folds import FoldReport, cross_validate
from aggregator.evaluation.learning import Learner, NoLearning, Params
from aggregator.evaluation.replay import replay, replay_pairs

# What each data set's unit is: broader than the label where the data set has a broader
# grouping, so that a look-alike of a held-out story is never in the training folds.
UNITS = {
    "uci": "STORY id",
    "ecbplus": "ECB+ topic (both events of a topic)",
    "rpm2": "RPM2 theme (C1 and C2 of a theme)",
    "semeval": "SemEval pair, pairs sharing an article joined",
}
LOADERS = {
    "uci": datasets.load_uci, "ecbplus": datasets.load_ecbplus, "rpm2": datasets.load_rpm2,
}  # fmt: skip


def score_items(
    items: Sequence[datasets.LabeledItem], params: Params
) -> tuple[dict[str, int], dict[str, float]]:
    """B-cubed and pairwise figures of one fold, replayed as the daemon would."""
    result = replay(items, settings=params.settings)
    counts = {"items": result.items, "labels": result.labels, "groups": result.groups}
    figures = {
        "bcubed_p": result.bcubed.precision, "bcubed_r": result.bcubed.recall,
        "bcubed_f1": result.bcubed.f1, "pair_p": result.pairwise.precision,
        "pair_r": result.pairwise.recall, "pair_f1": result.pairwise.f1,
    }  # fmt: skip
    return counts, figures


def score_pairs(
    pairs: Sequence[datasets.LabeledPair], params: Params
) -> tuple[dict[str, int], dict[str, float]]:
    """Accuracy and same-event precision/recall of one fold of pairs."""
    result = replay_pairs(pairs, settings=params.settings)
    same = sum(1 for pair in pairs if pair.same_event)
    counts = {"pairs": result.pairs, "same": same, "different": result.pairs - same}
    figures = {
        "accuracy": result.accuracy, "same_p": result.scores.precision,
        "same_r": result.scores.recall, "same_f1": result.scores.f1,
    }  # fmt: skip
    return counts, figures


def item_folds(
    dataset: str, path: Path, k: int, *, limit: int | None = None,
    learner: Learner[datasets.LabeledItem] | None = None,
) -> FoldReport:  # fmt: skip
    """`k` held-out folds of UCI, ECB+ or RPM2, split by unit."""
    items = LOADERS[dataset](path, limit=limit)
    notes = [f"first {limit} items only (--limit)"] if limit else []
    return cross_validate(
        items, keys=lambda item: (item.fold_unit,), k=k, learner=learner or NoLearning(),
        score=score_items, dataset=dataset, unit=UNITS[dataset], notes=notes,
    )  # fmt: skip


def pair_folds(
    path: Path, k: int, *, limit: int | None = None,
    learner: Learner[datasets.LabeledPair] | None = None,
) -> FoldReport:  # fmt: skip
    """`k` held-out folds of SemEval pairs, pairs sharing an article in one fold."""
    pairs = datasets.load_semeval(path, limit=limit)
    notes = [f"first {limit} pairs only (--limit)"] if limit else []
    return cross_validate(
        pairs, keys=lambda pair: pair.articles, k=k, learner=learner or NoLearning(),
        score=score_pairs, dataset="semeval", unit=UNITS["semeval"], notes=notes,
    )  # fmt: skip
