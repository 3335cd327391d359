"""The reliability bins and the calibration error of held-out probabilities."""

from __future__ import annotations

import pytest

from aggregator.evaluation.calibration import reliability


def test_a_calibrated_model_has_no_calibration_error() -> None:
    """Ten decisions at 0.3, three right; ten at 0.8, eight right: every bin observes what
    it predicts."""
    probabilities = [0.3] * 10 + [0.8] * 10
    labels = [True] * 3 + [False] * 7 + [True] * 8 + [False] * 2
    found = reliability("test", probabilities, labels)
    assert found.count == 20 and found.ece == pytest.approx(0.0)
    (low,) = [b for b in found.bins if b.count and b.low == pytest.approx(0.3)]
    assert low.predicted == pytest.approx(0.3) and low.observed == pytest.approx(0.3)


def test_an_overconfident_model_shows_its_gap() -> None:
    """Everything said at 0.95, half of it right: a gap of 0.45 in one bin."""
    found = reliability("test", [0.95] * 4, [True, False, True, False])
    assert found.ece == pytest.approx(0.45)
    (top,) = [b for b in found.bins if b.count]
    assert top.low == pytest.approx(0.9) and top.high == pytest.approx(1.0)
    assert "ECE 0.450" in "\n".join(found.lines())


def test_a_probability_of_one_falls_in_the_last_bin() -> None:
    found = reliability("test", [1.0, 0.0], [True, False])
    assert [b.count for b in found.bins if b.count] == [1, 1]
    assert found.ece == pytest.approx(0.0)
