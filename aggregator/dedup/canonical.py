"""Which member of an event is shown: the configured canonical rules, as one table.

A rule is a sort key (lower ranks first) and the sentence that explains a win on it.
Adding a rule is one `CanonicalRule` value, one row of `RANKINGS` and, when it needs a
fact the store does not yet read, one property of `CanonicalFacts`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, TypeVar

from aggregator.models import CanonicalRule


class CanonicalFacts(Protocol):
    """What the canonical rules look at (a `StoredEntry` or a `MemberFacts`)."""

    @property
    def id(self) -> int: ...
    @property
    def feed_priority(self) -> int: ...
    @property
    def effective_time(self) -> datetime: ...
    @property
    def text_length(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Ranking:
    """One canonical rule: its sort key and the reason given when it decides."""

    key: Callable[[CanonicalFacts], float]
    reason: Callable[[CanonicalFacts, CanonicalFacts], str]


RANKINGS: dict[CanonicalRule, Ranking] = {
    CanonicalRule.PRIORITY: Ranking(
        key=lambda entry: -entry.feed_priority,
        reason=lambda won, lost: (
            f"priority: feed priority {won.feed_priority} > {lost.feed_priority}"
        ),
    ),
    CanonicalRule.EARLIEST: Ranking(
        key=lambda entry: entry.effective_time.timestamp(),
        reason=lambda won, _lost: f"earliest: published {won.effective_time.isoformat()}",
    ),
    CanonicalRule.LONGEST: Ranking(
        key=lambda entry: -entry.text_length,
        reason=lambda won, _lost: f"longest: {won.text_length} characters of text",
    ),
}


Member = TypeVar("Member", bound=CanonicalFacts)


def choose_canonical(
    members: Sequence[Member], rules: Sequence[CanonicalRule]
) -> tuple[Member, str]:
    """The member shown for the event, and the reason in words.

    Rules apply in order, each breaking the ties of the previous; the entry id (arrival
    order) breaks any tie left, so the choice is deterministic.
    """
    if not members:
        raise ValueError("an event has at least one member")
    rankings = [RANKINGS[rule] for rule in rules]

    def sort_key(entry: Member) -> tuple[float, ...]:
        return (*(ranking.key(entry) for ranking in rankings), entry.id)

    ranked = sorted(members, key=sort_key)
    chosen = ranked[0]
    if len(ranked) == 1:
        return chosen, "only member"
    return chosen, _reason(chosen, ranked[1:], rankings)


def _reason(chosen: Member, others: Sequence[Member], rankings: Sequence[Ranking]) -> str:
    """Name the first rule that separated the chosen entry from the members ranked after
    it. Members tied with it on every rule (an exact copy in another feed, most often)
    lost on arrival only: they are named, so that "first arrived" is not read as the
    reason it beat the rest of the event."""
    tied: list[int] = []
    for other in others:
        decided = _deciding_rule(chosen, other, rankings)
        if decided is None:
            tied.append(other.id)
            continue
        if not tied:
            return decided
        named = " and ".join(f"#{entry_id}" for entry_id in tied)
        return f"{decided} (tied with {named}, which arrived later)"
    return "first arrived (all rules tied)"


def _deciding_rule(chosen: Member, other: Member, rankings: Sequence[Ranking]) -> str | None:
    """The first rule on which `chosen` beat `other`, in words; None when all tie."""
    for ranking in rankings:
        if ranking.key(chosen) != ranking.key(other):
            return ranking.reason(chosen, other)
    return None
