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
