"""Arrival order changes little: shuffling items inside a window gives nearly the same groups.

The items go through the daemon's own path (`replay`: normalise, SQLite, dedup), once in a
reference order and then in orders Hypothesis chooses; each partition is scored against
the reference partition with B-cubed.
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aggregator.evaluation.datasets import LabeledItem
from aggregator.evaluation.metrics import bcubed
from aggregator.evaluation.replay import replay

START = datetime(2026, 3, 2, 8, tzinfo=UTC)
STORIES = {
    "quake": ["Sumatra", "earthquake", "magnitude", "tsunami", "Padang", "rescuers"],
    "merger": ["Vodafone", "Verizon", "stake", "billion", "deal", "shareholders"],
    "trial": ["Pistorius", "trial", "Steenkamp", "Pretoria", "witness", "court"],
    "launch": ["SpaceX", "Falcon", "rocket", "launch", "Canaveral", "satellite"],
}
MIN_AGREEMENT = 0.75
FILLER = ["says", "report", "today", "latest", "update", "officials", "news", "after"]


def corpus() -> list[LabeledItem]:
    rng = random.Random(11)
    items = []
    for story, words in STORIES.items():
        for number in range(8):
            title = " ".join(rng.sample(words, 4) + rng.sample(FILLER, 2))
            text = " ".join(rng.sample(words, 5) + rng.sample(FILLER, 4)) + "."
            items.append(
                LabeledItem(
                    id=f"{story}-{number}",
                    source=f"outlet {number % 5}",
                    title=title,
                    text=text if number % 2 else "",
                    url=None,
                    published=START + timedelta(minutes=rng.randrange(240)),
                    label=story,
                )
            )
    return items


ITEMS = corpus()
REFERENCE = replay(sorted(ITEMS, key=lambda i: (i.published, i.id))).predicted


def test_reference_partition_finds_the_stories() -> None:
    """The reference run groups the synthetic stories well (else the property is vacuous)."""
    gold = {item.id: item.label for item in ITEMS}
    scores = bcubed(REFERENCE, gold)
    assert scores.precision >= 0.9 and scores.recall >= 0.5


@settings(
    max_examples=8, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(st.permutations(range(len(ITEMS))))
def test_shuffled_arrival_gives_nearly_the_same_partition(order: list[int]) -> None:
    """Within one window, any arrival order yields a partition close to the reference."""
    times = sorted(item.published for item in ITEMS)
    # The same items and the same arrival times, handed out in another order.
    shuffled = [replace(ITEMS[index], published=times[p]) for p, index in enumerate(order)]
    predicted = replay(shuffled).predicted
    agreement = bcubed(predicted, REFERENCE)
    # Measured over 30 random orders: agreement F1 0.816 to 0.972, median 0.87; the worst
    # order Hypothesis has found scores 0.775. Online grouping is not order-free (a headline
    # that arrives before its story's names are known starts a group of its own), but it
    # must stay this close.
    assert agreement.f1 >= MIN_AGREEMENT, agreement
