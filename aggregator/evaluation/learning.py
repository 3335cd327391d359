"""The training hook of cross-validation: what is learned on the training folds.

A `Learner` sees only the training folds and returns the parameters the held-out fold is
scored with, through the daemon's code path. Today's grouping learns nothing: `NoLearning`
returns the shipped settings whatever it is shown, so today's code is its own baseline.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from aggregator.dedup.event_model import EventModel
from aggregator.models import Settings

Example = TypeVar("Example", contravariant=True)


@dataclass(frozen=True, slots=True)
class Params:
    """What a held-out fold is scored with; hashable, so equal parameters are run once."""

    settings: Settings = field(default_factory=Settings)
    model: EventModel | None = None  # None: the shipped model
    name: str = "shipped settings"


class Learner(Protocol[Example]):
    """Chooses every weight and threshold from the training folds only."""

    @property
    def name(self) -> str: ...

    def fit(self, train: Sequence[Example]) -> Params: ...


class NoLearning:
    """Today's code: nothing is fitted, the shipped settings score every fold."""

    name = "none (shipped settings, nothing fitted)"

    def fit(self, train: Sequence[object]) -> Params:
        return Params()
