"""Which part of a series or which edition of a programme a title names (pure).

A feed's numbered series ("L'origine des mèmes (2/6)", "Boxing day #12", "épisode 3") and
its dated programmes ("JT du Sud du dimanche 9 février") repeat their words from item to
item by construction, so their cosine is high, and they are different items by
construction: part 2 is not part 1, Sunday's bulletin is not Saturday's. A title's marks
say so before any word is weighed: an entry whose title names a part or a date of the same
kind as an event's titles, but none of the event's, is another item of the series.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from aggregator.dedup.text import fold

# A mark: its kind ("part", "date") and its value ("2", "9 fevrier").
Mark = tuple[str, str]

_MONTHS = (
    "janvier|fevrier|mars|avril|mai|juin|juillet|aout|septembre|octobre|novembre|decembre|"
    "january|february|march|april|may|june|july|august|september|october|november|december"
)
# Parts: "(2/6)" or "[2/6]", "#4", and a number after a word that counts parts. Bare
# "2/6" is not a part: it is as often a fraction, a score or a date.
_PART = re.compile(
    r"[(\[]\s*(\d{1,3})\s*/\s*\d{1,3}\s*[)\]]"
    r"|#\s?(\d{1,4})\b"
    r"|\b(?:episode|ep|partie|part|chapitre|chapter|volet|saison|season|tome|acte|act)"
    r"\s*\.?\s*(\d{1,4})\b"
)
# Dates: "9 fevrier", "1er mars", "february 9".
_DATE = re.compile(
    rf"\b(\d{{1,2}})(?:er|st|nd|rd|th)?\s+({_MONTHS})\b|\b({_MONTHS})\s+(\d{{1,2}})\b"
)


_DIGIT = re.compile(r"\d")
_NONE: frozenset[Mark] = frozenset()


def title_marks(title: str) -> frozenset[Mark]:
    """The parts and dates a title names (folded: accents and case do not matter)."""
    if not _DIGIT.search(title):
        return _NONE  # every mark holds a number; most titles none
    folded = fold(title)
    found: set[Mark] = set()
    for match in _PART.finditer(folded):
        number = next(group for group in match.groups() if group is not None)
        found.add(("part", str(int(number))))
    for match in _DATE.finditer(folded):
        day, month = (match[1], match[2]) if match[1] else (match[4], match[3])
        found.add(("date", f"{int(day)} {month}"))
    return frozenset(found)


def another_item(entry: Iterable[Mark], event: Iterable[Mark]) -> bool:
    """Whether an entry with marks `entry` is another item of a series whose event has
    the marks `event`: of a kind both name, the entry names no value the event does."""
    by_kind: dict[str, set[str]] = {}
    for kind, value in event:
        by_kind.setdefault(kind, set()).add(value)
    entry_by_kind: dict[str, set[str]] = {}
    for kind, value in entry:
        entry_by_kind.setdefault(kind, set()).add(value)
    return any(
        kind in by_kind and not values & by_kind[kind] for kind, values in entry_by_kind.items()
    )
