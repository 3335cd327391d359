"""Event models whose decisions are known cosines, for the tests of what a decision does
(apart from what the fitted model decides)."""

from __future__ import annotations

from aggregator.dedup.event_model import FEATURES, EventModel


def at_cosine(cosine: float) -> EventModel:
    """A decision that is reached at this cosine and depends on nothing else."""
    weights = tuple(20.0 if name == "similarity" else 0.0 for name in FEATURES)
    return EventModel(weights=weights, bias=-20.0 * cosine, threshold=0.5)


def linking_model(join: EventModel | float, story_cosine: float) -> EventModel:
    """A join (a model, or one reached at a cosine) with a story link at `story_cosine`."""
    joining = at_cosine(join) if isinstance(join, float) else join
    return EventModel(
        joining.weights, joining.bias, joining.threshold, joining.trained_on,
        story=at_cosine(story_cosine),
    )  # fmt: skip
