"""The event model: its file, its arithmetic and how it is fitted."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from aggregator.dedup.event_model import (
    FEATURES,
    Candidate,
    EventModel,
    choose_threshold,
    fit_logistic,
    hours_between,
    shipped_model,
)
from aggregator.errors import ModelFileError

NOW = datetime(2026, 12, 7, 12, tzinfo=UTC)


def probe(**changes: object) -> Candidate:
    facts: dict[str, object] = {
        "hours_outside_span": 0.0, "hours_since_first": 0.0, "own_feed": False,
        "own_template_share": 0.0, "headline_item": False, "headline_event": False,
        "members": 1, "terms": 40,
    }  # fmt: skip
    facts.update(changes)
    return Candidate(**facts)  # type: ignore[arg-type]


def model(**weights: float) -> EventModel:
    return EventModel(
        weights=tuple(weights.get(name, 0.0) for name in FEATURES), bias=-3.0, threshold=0.5
    )


def test_the_shipped_file_loads_and_names_every_feature() -> None:
    shipped = shipped_model()
    assert len(shipped.weights) == len(FEATURES)
    assert 0.0 < shipped.threshold < 1.0
    assert shipped.trained_on


def test_a_file_round_trips(tmp_path: Path) -> None:
    fitted = model(similarity=10.0, own_feed=-1.5, log_hours_since_first=-0.5)
    path = tmp_path / "model.json"
    path.write_text(json.dumps(fitted.as_json()), encoding="utf-8")
    assert EventModel.load(path) == fitted


@pytest.mark.parametrize(
    "data",
    [
        "not json",
        json.dumps({"format": 99}),
        json.dumps({"format": 1, "features": ["similarity"], "weights": [1.0]}),
        json.dumps(
            {"format": 1, "features": list(FEATURES), "weights": [1.0], "bias": 0, "threshold": 0.5}
        ),
        json.dumps(
            {
                "format": 1,
                "features": list(FEATURES),
                "weights": [0.0] * len(FEATURES),
                "bias": 0,
                "threshold": 1.5,
            }
        ),
    ],
)
def test_a_bad_file_is_refused_with_a_reason(tmp_path: Path, data: str) -> None:
    path = tmp_path / "model.json"
    path.write_text(data, encoding="utf-8")
    with pytest.raises(ModelFileError):
        EventModel.load(path)


def test_the_least_cosine_is_where_the_probability_reaches_the_value_asked() -> None:
    fitted = model(similarity=12.0, similarity_by_log_terms=0.5, own_feed=-1.0,
                   log_hours_outside_span=-0.7)  # fmt: skip
    for candidate in (probe(), probe(own_feed=True, hours_outside_span=30.0, terms=300)):
        least = fitted.needed_similarity(candidate, 0.6)
        assert fitted.probability(candidate, least) == pytest.approx(0.6, abs=1e-9)
        assert (
            fitted.probability(candidate, least - 0.01)
            < 0.6
            < fitted.probability(candidate, least + 0.01)
        )


def test_a_model_that_does_not_grow_with_the_cosine_scores_every_candidate() -> None:
    assert model(similarity=-1.0).needed_similarity(probe(), 0.9) == 0.0


def test_time_outside_the_span_and_since_the_first_item() -> None:
    assert hours_between(NOW, NOW - timedelta(hours=5), NOW - timedelta(hours=2)) == (2.0, 5.0)
    assert hours_between(NOW, NOW - timedelta(hours=1), NOW + timedelta(hours=1)) == (0.0, 1.0)
    assert hours_between(NOW, None, None) == (0.0, 0.0)


def test_the_template_share_counts_only_against_the_entry_s_own_feed() -> None:
    assert probe(own_template_share=0.4).rest()[FEATURES.index("own_template_share") - 3] == 0.0
    own = probe(own_feed=True, own_template_share=0.4)
    assert own.rest()[FEATURES.index("own_template_share") - 3] == 0.4


def test_contributions_name_the_features_that_decided_largest_first() -> None:
    fitted = model(similarity=10.0, own_feed=-2.0, log_members=0.1)
    parts = fitted.contributions(probe(own_feed=True, members=3), 0.5)
    assert [name for name, _ in parts] == ["similarity", "own_feed", "log_members"]
    assert parts[0][1] == pytest.approx(5.0)


def test_logistic_fit_recovers_the_weights_it_was_drawn_from() -> None:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(20_000, 3))
    truth, bias = np.array([2.0, -1.0, 0.5]), -0.5
    y = (rng.random(len(x)) < 1 / (1 + np.exp(-(x @ truth + bias)))).astype(np.float64)
    weights, fitted_bias = fit_logistic(x, y, l2=0.01)
    assert np.allclose(weights, truth, atol=0.1)
    assert math.isclose(fitted_bias, bias, abs_tol=0.1)


def test_sample_weights_count_as_repeated_rows() -> None:
    x = np.array([[0.0], [1.0], [2.0], [3.0]])
    y = np.array([0.0, 1.0, 0.0, 1.0])
    weighted = fit_logistic(x, y, l2=0.01, sample_weight=np.array([1.0, 1.0, 3.0, 1.0]))
    repeated = fit_logistic(
        np.vstack([x, [[2.0], [2.0]]]), np.concatenate([y, [0.0, 0.0]]), l2=0.01
    )
    assert np.allclose(weighted[0], repeated[0], atol=1e-6)
    assert math.isclose(weighted[1], repeated[1], abs_tol=1e-6)


def test_the_threshold_gives_up_recall_for_precision() -> None:
    # The best candidates' probabilities, best first: right, right, wrong, right, wrong.
    best = [0.9, 0.8, 0.7, 0.6, 0.2]
    right = [True, True, False, True, False]
    present = [True, True, True, True, True]
    threshold = choose_threshold(best, right, present, beta=0.5)
    assert 0.7 < threshold < 0.8  # joining the two surest is the best F0.5
    assert choose_threshold(best, right, present, beta=4.0) < 0.6  # recall first: four


def story_model(**changes: object) -> EventModel:
    join = model(similarity=10.0)
    story = model(similarity=20.0, own_feed=-1.0)
    return EventModel(join.weights, join.bias, join.threshold, "test", story=story)


def test_a_file_with_a_story_model_round_trips(tmp_path: Path) -> None:
    both = story_model()
    path = tmp_path / "model.json"
    path.write_text(json.dumps(both.as_json()), encoding="utf-8")
    loaded = EventModel.load(path)
    assert loaded == both and loaded.story is not None


def test_a_story_model_has_no_story_of_its_own() -> None:
    inner = story_model()
    with pytest.raises(ModelFileError, match="no story model of its own"):
        EventModel(inner.weights, inner.bias, inner.threshold, story=inner)


def test_a_story_model_that_is_not_an_object_is_refused(tmp_path: Path) -> None:
    data = story_model().as_json()
    data["story"] = [1, 2]
    path = tmp_path / "model.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ModelFileError, match="story model is not an object"):
        EventModel.load(path)


def test_the_shipped_file_links_stories() -> None:
    story = shipped_model().story
    assert story is not None and story.trained_on
    assert 0.0 < story.threshold < 1.0
