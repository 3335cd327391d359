"""Folds that never split a story: deterministic, balanced, fitted on training folds only."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from aggregator.evaluation.folds import assign, connected_units, cross_validate, split
from aggregator.evaluation.learning import Params


def test_elements_sharing_a_key_transitively_share_a_unit() -> None:
    """a-b and b-c chain: one unit named by its smallest key; d stays alone."""
    units = connected_units([("b", "a"), ("c", "b"), ("d",)])
    assert units == ["a", "a", "d"]


def test_a_unit_without_a_key_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one key"):
        connected_units([()])


def test_no_story_lies_in_two_folds_and_order_is_kept() -> None:
    """Every element of a story lands in one fold, and each fold keeps arrival order."""
    elements = [(story, position) for position in range(40) for story in "abcdefg"
                if (position + ord(story)) % 3 == 0]  # fmt: skip
    folds = split(elements, lambda element: (element[0],), 3)
    fold_of_story: dict[str, int] = {}
    for index, fold in enumerate(folds):
        assert fold == sorted(fold, key=elements.index)
        for story, _ in fold:
            assert fold_of_story.setdefault(story, index) == index
    assert sorted(e for fold in folds for e in fold) == sorted(elements)


def test_folds_are_balanced_and_the_same_on_every_run() -> None:
    sizes = {f"story-{n}": 1 + n % 4 for n in range(30)}
    first, again = assign(sizes, 5), assign(dict(reversed(sizes.items())), 5)
    assert first == again
    totals = [sum(size for unit, size in sizes.items() if first[unit] == fold) for fold in range(5)]
    assert max(totals) - min(totals) <= max(sizes.values())


def test_too_few_units_or_folds_is_an_error() -> None:
    with pytest.raises(ValueError, match="cannot fill"):
        assign({"a": 1, "b": 1}, 3)
    with pytest.raises(ValueError, match="at least 2"):
        assign({"a": 1, "b": 1}, 1)


class _Recorder:
    """A learner that records what it was shown and names its parameters after it."""

    name = "recorder"

    def __init__(self) -> None:
        self.shown: list[set[str]] = []

    def fit(self, train: Sequence[str]) -> Params:
        self.shown.append(set(train))
        return Params(name=",".join(sorted(train)))


def test_each_fold_is_scored_with_what_the_other_folds_taught() -> None:
    """The learner never sees the held-out fold; the score gets the fitted parameters."""
    elements = [f"s{n}" for n in range(9)]
    learner = _Recorder()
    scored: list[tuple[set[str], str]] = []

    def score(held_out: Sequence[str], params: Params) -> tuple[dict[str, int], dict[str, float]]:
        scored.append((set(held_out), params.name))
        return {"n": len(held_out)}, {"share": len(held_out) / len(elements)}

    report = cross_validate(
        elements, keys=lambda e: (e,), k=3, learner=learner, score=score, dataset="toy",
        unit="element",
    )  # fmt: skip
    assert len(report.folds) == 3
    for shown, (held_out, params_name) in zip(learner.shown, scored, strict=True):
        assert not shown & held_out
        assert shown | held_out == set(elements)
        assert params_name == ",".join(sorted(shown))
    assert report.mean()["share"] == pytest.approx(1 / 3)
    assert report.worst()["share"] == min(f.figures["share"] for f in report.folds)
    assert "mean" in report.text() and report.as_json()["units"] == 9
