"""Grouping quality on held-out folds of the labelled data and on judged real-feed pairs
must not drop.

Floors are what this version reaches (`make eval-report`; docs/eval/) minus 0.02; a change
that loses quality fails here. Skipped when `../shared` is absent.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from aggregator.evaluation import calibration, datasets, heldout, syndication
from aggregator.evaluation.folds import FoldReport

MARGIN = 0.02
FOLDS = 5

# Reached by this version, mean of the held-out folds (`make eval-report`, docs/eval/):
# (data set, folder, B-cubed precision, B-cubed F1). Nothing is fitted yet, so the folds
# measure the shipped thresholds on stories split by unit, each within the whole stream.
REACHED = [
    ("uci", "uci-news-aggregator-sample", 0.901, 0.821),
    ("ecbplus", "ecbplus", 0.905, 0.911),
    ("rpm2", "rpm2-french-news-clusters", 0.975, 0.752),
]


@pytest.mark.parametrize(("dataset", "folder", "precision", "f1"), REACHED)
def test_held_out_folds(
    shared_data: Callable[[str], Path], dataset: str, folder: str, precision: float, f1: float
) -> None:
    """Five held-out folds by story (UCI's whole 4,244 headlines take about 30 s): the
    mean B-cubed precision and F1 stay within the margin of what this version reaches."""
    report: FoldReport = heldout.item_folds(dataset, shared_data(folder), FOLDS)
    mean = report.mean()
    assert mean["bcubed_p"] >= precision - MARGIN, report.text()
    assert mean["bcubed_f1"] >= f1 - MARGIN, report.text()


def test_semeval_held_out_folds(shared_data: Callable[[str], Path]) -> None:
    """SemEval pairs in five folds (pairs sharing an article together): reached mean
    accuracy 0.837."""
    report = heldout.pair_folds(shared_data("semeval2022-task8"), FOLDS)
    assert report.mean()["accuracy"] >= 0.837 - MARGIN, report.text()


def test_judged_real_feed_pairs(shared_data: Callable[[str], Path]) -> None:
    """778 judged pairs of the real feeds, five folds by connected pairs, the story link
    fitted on the training folds: reached mean same-event together 0.840, different events
    apart 0.816 and precision of "together" 0.673 (far from the issue's targets, 0.85 and
    0.97: what the next change must move); at story level, precision of "one story" 0.817,
    same-story pairs in one story 0.575 (target 0.80), unrelated pairs in two stories
    0.810 (the link learnt from RPM2's themes too: 0.857, 0.534 and 0.847 before, when it
    kept the seed's storyline apart)."""
    report = heldout.judged_folds(shared_data(""), FOLDS)
    mean = report.mean()
    assert mean["same_together"] >= 0.840 - MARGIN, report.text()
    assert mean["different_apart"] >= 0.816 - MARGIN, report.text()
    assert mean["event_p"] >= 0.673 - MARGIN, report.text()
    assert mean["story_p"] >= 0.817 - MARGIN, report.text()
    assert mean["story_together"] >= 0.575 - MARGIN, report.text()
    assert mean["unrelated_apart"] >= 0.810 - MARGIN, report.text()


def test_story_link_is_calibrated_on_held_out_folds(shared_data: Callable[[str], Path]) -> None:
    """The story link fitted on training folds, on the held-out items' candidates: reached
    expected calibration error 0.004 (`aggregator eval calibration`). The join as shipped
    is not fitted and reads 0.202: what fitting it must bring down."""
    report = calibration.judged_calibration(shared_data(""), FOLDS)
    assert report.story.ece <= 0.004 + MARGIN, report.text()
    assert report.story.count > 0 and report.join.count > 0


def test_syndicated_copies(shared_data: Callable[[str], Path]) -> None:
    """Copies of 150 ECB+ and 150 RPM2 articles: reached P 0.998 / R 0.997."""
    items = datasets.load_ecbplus(shared_data("ecbplus"), limit=150) + datasets.load_rpm2(
        shared_data("rpm2-french-news-clusters"), limit=150
    )
    result = syndication.evaluate(syndication.build(items))
    assert result.scores.precision >= 0.99, result.report()
    assert result.scores.recall >= 0.997 - MARGIN, result.report()
