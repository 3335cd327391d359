"""Why an event's members are together, and why one of them is canonical (pure).

Every member records how it joined (level, similarity, rule, the entry it matched); the
event records its canonical reason and the merges that built it. The shared terms are the
most distinctive words that members have in common, weighted over the whole window.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aggregator.dedup.event_model import decided_by
from aggregator.dedup.events import shared_terms
from aggregator.dedup.signature import is_headline_only
from aggregator.dedup.term_stats import TermStatistics
from aggregator.dedup.text import tokens
from aggregator.dedup.vectors import TermVector
from aggregator.models import EventView, JoinLevel, Reasons, StoryEvent, StoryLink

_LEVEL_WORDS = {
    JoinLevel.FOUNDER: "first of the event",
    JoinLevel.EXACT: "exact duplicate (same link or same title and text)",
    JoinLevel.NEAR_DUPLICATE: "near-duplicate copy (MinHash)",
    JoinLevel.SAME_EVENT: "another write-up of the event (term centroid)",
    JoinLevel.MANUAL: "placed by hand",
}


@dataclass(frozen=True, slots=True)
class MemberReason:
    entry_id: int
    source: str
    title: str
    published: str
    level: JoinLevel
    similarity: float | None
    matched_entry_id: int | None
    rule: str | None
    probability: float | None = None
    reasons: Reasons = ()
    hidden_by: str | None = None

    def describe(self) -> str:
        text = _LEVEL_WORDS.get(self.level, str(self.level))
        if self.similarity is not None:
            text += f", similarity {self.similarity:.2f}"
        if self.matched_entry_id is not None:
            text += f" to #{self.matched_entry_id}"
        if self.rule and self.level is not JoinLevel.FOUNDER:
            text += f" ({self.rule})"
        if self.probability is not None:
            text += f"; {decided_by(self.probability, self.reasons)}"
        if self.hidden_by is not None:
            text += f"; hidden by the filter {self.hidden_by}"
        return text


@dataclass(frozen=True, slots=True)
class Explanation:
    event_id: int
    title: str
    canonical_entry_id: int
    canonical_reason: str
    members: tuple[MemberReason, ...]
    shared_terms: tuple[str, ...]
    merges: tuple[Mapping[str, Any], ...]
    separated_from: tuple[int, ...]
    story: tuple[StoryEvent, ...] = ()
    story_links: tuple[StoryLink, ...] = ()

    def lines(self) -> list[str]:
        sources = len({m.source for m in self.members})
        out = [
            f"Event {self.event_id}: {self.title}",
            f"  {len(self.members)} members from {sources} sources",
            f"  canonical: #{self.canonical_entry_id}, because {self.canonical_reason}",
            "",
            "Members:",
        ]
        # Events merged together keep each one's first member (a founder each): which
        # one started this event is not recorded, so none is called the first.
        founders = sum(member.level is JoinLevel.FOUNDER for member in self.members)
        for member in self.members:
            out.append(f"  #{member.entry_id} {member.source} · {member.published}")
            out.append(f"      {member.title}")
            if founders > 1 and member.level is JoinLevel.FOUNDER:
                out.append("      first of one of the events merged here (see below)")
            else:
                out.append(f"      {member.describe()}")
        out.append("")
        terms = ", ".join(self.shared_terms) if self.shared_terms else "(none)"
        out.append(f"Shared terms: {terms}")
        for merge in self.merges:
            similarity = merge.get("similarity")
            detail = f", similarity {similarity:.2f}" if similarity is not None else ""
            out.append(
                f"Merged in event {merge['absorbed_event_id']} ({merge['entries']} entries): "
                f"{merge['reason']}{detail}"
            )
        if self.separated_from:
            kept_apart = ", ".join(str(e) for e in self.separated_from)
            out.append(f"Kept apart by hand from events: {kept_apart}")
        if self.story:
            out.append("")
            count = len(self.story)
            out.append(f"Same story: {count} other event" + ("s" if count > 1 else ""))
            for other in self.story:
                out.append(f"  event {other.id} · {other.when:%Y-%m-%d} · {other.title}")
            for link in self.story_links:
                out.append(f"  {_link_words(link)}")
        return out


def _link_words(link: StoryLink) -> str:
    """Why two events were linked into one story, in words."""
    text = f"event {link.event_id} linked to event {link.linked_event_id}"
    details = [
        part
        for part in (
            f"similarity {link.similarity:.2f}" if link.similarity is not None else "",
            decided_by(link.probability, link.reasons),
        )
        if part
    ]
    return text + (f" ({'; '.join(details)})" if details else "")


def explain(
    event: EventView,
    *,
    matched: Mapping[int, tuple[int | None, str | None]],
    vectors: Sequence[TermVector],
    stats: TermStatistics,
    merges: Sequence[Mapping[str, Any]] = (),
    separated_from: Sequence[int] = (),
    story_links: Sequence[StoryLink] = (),
) -> Explanation:
    # As the event level counts it (`EventProfile.headline_event`): most members headlines.
    headlines = sum(is_headline_only(tokens(m.title), tokens(m.text)) for m in event.members)
    headline_event = headlines * 2 > len(event.members)
    members = tuple(
        MemberReason(
            entry_id=m.id,
            source=m.feed_name,
            title=m.title,
            published=m.effective_time.strftime("%Y-%m-%d %H:%M UTC"),
            level=m.join_level,
            similarity=m.similarity,
            matched_entry_id=matched.get(m.id, (None, None))[0],
            rule=matched.get(m.id, (None, None))[1],
            probability=m.probability,
            reasons=m.reasons,
            hidden_by=m.hidden_by,
        )
        for m in sorted(event.members, key=lambda m: m.id)
    )
    return Explanation(
        event_id=event.id,
        title=event.canonical.title,
        canonical_entry_id=event.canonical.id,
        canonical_reason=event.canonical_reason,
        members=members,
        shared_terms=tuple(shared_terms(vectors, stats, background=headline_event)),
        merges=tuple(merges),
        separated_from=tuple(sorted(separated_from)),
        story=event.story,
        story_links=tuple(story_links),
    )
