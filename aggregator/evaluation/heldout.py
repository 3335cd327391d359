"""Held-out folds of the labelled sets, each scored through the daemon's code path.

The whole set is replayed as one stream (`replay.replay`, a fresh database, arrival
order) with the parameters fitted on the other folds, and a fold is scored on its own
items, each against its whole predicted group: replayed alone, a fold would hold a fifth
of the look-alike stories, and scored only among themselves its items would hide every
wrong join with another fold's story. With nothing fitted every fold shares one replay.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from aggregator.evaluation import datasets, judged
from aggregator.evaluation.folds import FoldReport, cross_validate
from aggregator.evaluation.learning import Learner, NoLearning, Params
from aggregator.evaluation.metrics import bcubed, pairwise
from aggregator.evaluation.replay import replay, replay_pairs
from aggregator.evaluation.training import StoryLearner

# What each data set's unit is: broader than the label where the data set has a broader
# grouping, so that a look-alike of a held-out story is never in the training folds.
UNITS = {
    "uci": "STORY id",
    "ecbplus": "ECB+ topic (both events of a topic)",
    "rpm2": "RPM2 theme (C1 and C2 of a theme)",
    "semeval": "SemEval pair, pairs sharing an article joined",
    "judged": "judged pair, pairs sharing an item joined",
}
LOADERS = {
    "uci": datasets.load_uci, "ecbplus": datasets.load_ecbplus, "rpm2": datasets.load_rpm2,
}  # fmt: skip


class StreamScorer:
    """Scores a fold of items within the replay of the whole stream, one replay per set
    of parameters."""

    def __init__(self, items: Sequence[datasets.LabeledItem]) -> None:
        self.items = items
        self._predicted: dict[Params, dict[str, int]] = {}

    def __call__(
        self, held_out: Sequence[datasets.LabeledItem], params: Params
    ) -> tuple[dict[str, int], dict[str, float]]:
        """B-cubed and pairwise figures of the held-out items' groups in the stream."""
        predicted = self._predicted.get(params)
        if predicted is None:
            predicted = replay(self.items, settings=params.settings, model=params.model).predicted
            self._predicted[params] = predicted
        ids = {item.id for item in held_out}
        gold = {item.id: item.label for item in self.items}
        pairs, cubed = pairwise(predicted, gold, ids), bcubed(predicted, gold, ids)
        counts = {"items": len(ids), "labels": len({item.label for item in held_out}),
                  "groups": len({predicted[identity] for identity in ids})}  # fmt: skip
        figures = {
            "bcubed_p": cubed.precision, "bcubed_r": cubed.recall, "bcubed_f1": cubed.f1,
            "pair_p": pairs.precision, "pair_r": pairs.recall, "pair_f1": pairs.f1,
        }  # fmt: skip
        return counts, figures


def score_pairs(
    pairs: Sequence[datasets.LabeledPair], params: Params
) -> tuple[dict[str, int], dict[str, float]]:
    """Accuracy and same-event precision/recall of one fold of pairs."""
    result = replay_pairs(pairs, settings=params.settings, model=params.model)
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
        score=StreamScorer(items), dataset=dataset, unit=UNITS[dataset], notes=notes,
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


def judged_folds(
    root: Path, k: int, *, pairs_file: Path = judged.SHIPPED_PAIRS,
    learner: Learner[judged.JudgedPair] | None = None,
) -> FoldReport:  # fmt: skip
    """`k` held-out folds of the judged real-feed pairs, pairs sharing an item in one fold.

    The feeds are placed once for each set of parameters learnt: a fold only chooses
    which of the pairs are scored. By default the story link is fitted on the training
    folds (`StoryLearner`): the shipped one has seen every judged pair."""
    pairs = judged.load_pairs(pairs_file)
    return cross_validate(
        pairs, keys=lambda pair: pair.items, k=k, learner=learner or StoryLearner(root),
        score=judged.FoldScorer(root, judged.folders_of(pairs)), dataset="judged",
        unit=UNITS["judged"],
    )  # fmt: skip
