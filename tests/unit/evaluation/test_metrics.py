"""Unit tests for the clustering scores (pairwise and B-cubed), on cases worked by hand."""

from __future__ import annotations

import pytest

from aggregator.evaluation.metrics import Scores, bcubed, decision_accuracy, pairwise

GOLD = {"a": 1, "b": 1, "c": 1, "d": 2, "e": 2}


def test_perfect_partition_scores_one() -> None:
    """Predicting the labels exactly gives precision and recall 1."""
    assert pairwise(GOLD, GOLD) == Scores(1.0, 1.0)
    assert bcubed(GOLD, GOLD) == Scores(1.0, 1.0)


def test_all_singletons() -> None:
    """Singletons: pairwise recall 0 (precision vacuous), B-cubed recall = mean 1/|label|."""
    singletons = {item: item for item in GOLD}
    assert pairwise(singletons, GOLD).recall == 0.0
    scores = bcubed(singletons, GOLD)
    assert scores.precision == 1.0
    assert scores.recall == pytest.approx((3 * (1 / 3) + 2 * (1 / 2)) / 5)


def test_one_giant_group_has_worthless_precision() -> None:
    """Everything in one group: recall 1, precision as low as the labels allow."""
    giant = dict.fromkeys(GOLD, 0)
    assert pairwise(giant, GOLD) == Scores(precision=4 / 10, recall=1.0)
    scores = bcubed(giant, GOLD)
    assert scores.precision == pytest.approx((3 * 3 / 5 + 2 * 2 / 5) / 5)
    assert scores.recall == 1.0


def test_one_wrong_member() -> None:
    """d put with a, b, c: worked by hand."""
    predicted = {"a": 1, "b": 1, "c": 1, "d": 1, "e": 2}
    assert pairwise(predicted, GOLD) == Scores(precision=3 / 6, recall=3 / 4)
    scores = bcubed(predicted, GOLD)
    assert scores.precision == pytest.approx((3 * 3 / 4 + 1 / 4 + 1) / 5)
    assert scores.recall == pytest.approx((3 * 1 + 1 / 2 + 1 / 2) / 5)


def test_f1_and_decisions() -> None:
    """F1 is the harmonic mean; decision scores count true positives."""
    assert Scores(0.5, 1.0).f1 == pytest.approx(2 / 3)
    assert Scores(0.0, 0.0).f1 == 0.0
    decisions = [(True, True), (True, False), (False, True), (False, False)]
    assert decision_accuracy(decisions) == Scores(0.5, 0.5)


def test_scores_over_some_items_see_their_wrong_joins_with_the_others() -> None:
    """A held-out item wrongly grouped with an item of another fold loses precision,
    though the other item is not scored; the item-weighted folds add up to the whole."""
    predicted = {"a1": 1, "a2": 1, "b1": 1, "b2": 2}
    gold = {"a1": "A", "a2": "A", "b1": "B", "b2": "B"}
    fold_a, fold_b = {"a1", "a2"}, {"b1", "b2"}
    assert bcubed(predicted, gold, fold_a).precision == pytest.approx(2 / 3)
    whole = bcubed(predicted, gold)
    parts = [bcubed(predicted, gold, fold) for fold in (fold_a, fold_b)]
    assert whole.precision == pytest.approx(sum(p.precision for p in parts) / 2)
    assert whole.recall == pytest.approx(sum(p.recall for p in parts) / 2)
    # Pairs touching fold A: a1-a2 (right), a1-b1 and a2-b1 (wrong joins).
    assert pairwise(predicted, gold, fold_a).precision == pytest.approx(1 / 3)
    assert pairwise(predicted, gold, fold_a).recall == 1.0
    assert pairwise(predicted, gold, set(gold)) == pairwise(predicted, gold)
