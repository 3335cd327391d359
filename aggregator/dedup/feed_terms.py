"""A feed's template: the terms it repeats in many of its own items (pure).

A feed's recurring words ("Témoins BFMTV", a show's name, "(2/6)", "Météo du jour") are rare
in the window as a whole, so the window's IDF makes them look like strong evidence that
two of the feed's items tell one event; they only say that one feed wrote both. A term
that at least a share `TemplateRule.share` (and at least `TemplateRule.min_items`) of a
feed's items carry is that feed's template, and its items are matched on the rest of their
words.

A feed's items are its members in the window plus the items of the update being placed
(`pend`): the first fetch of a feed brings its whole template at once, and a template
seen only after its third copy would have joined the first three.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Mask = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class TemplateRule:
    """When a term is a feed's template. `share` is chosen on training folds
    (`aggregator eval judged --folds`); `min_items` says a template recurs (two items
    sharing a word are as likely one event as one template)."""

    share: float = 0.2
    min_items: int = 3

    def threshold(self, items: int) -> float:
        """How many of a feed's `items` must carry a term for it to be the template."""
        return max(float(self.min_items), self.share * items)


class _FeedCounts:
    __slots__ = ("items", "terms")

    def __init__(self) -> None:
        self.items = 0
        self.terms: Counter[int] = Counter()

    def add(self, hashes: Iterable[int], step: int) -> None:  # the distinct terms of an item
        self.items += step
        terms = self.terms
        for term in hashes:
            count = terms[term] + step
            if count > 0:
                terms[term] = count
            else:
                del terms[term]


class FeedTerms:
    """Per feed, how many of its items carry each term (by term hash, which stays the same
    when the window renumbers its term ids)."""

    def __init__(self, rule: TemplateRule | None = None) -> None:
        self.rule = rule or TemplateRule()
        self._window: dict[int, _FeedCounts] = {}
        self._pending: dict[int, _FeedCounts] = {}

    def add(self, feed_id: int, hashes: Sequence[int], *, pending: bool = False) -> None:
        """A member of the window from `feed_id`; `pending`: it was counted by `pend`."""
        self._counts(self._window, feed_id).add(hashes, 1)
        if pending:
            self.unpend(feed_id, hashes)

    def remove(self, feed_id: int, hashes: Sequence[int]) -> None:
        self._uncount(self._window, feed_id, hashes)

    def pend(self, feed_id: int, documents: Iterable[Sequence[int]]) -> None:
        """Count the items of an update of `feed_id` before any of them is placed."""
        counts = self._counts(self._pending, feed_id)
        for hashes in documents:
            counts.add(hashes, 1)

    def unpend(self, feed_id: int, hashes: Sequence[int]) -> None:
        """A pending item placed (now a member) or not to be placed."""
        self._uncount(self._pending, feed_id, hashes)

    def end_update(self, feed_id: int) -> None:
        self._pending.pop(feed_id, None)

    def items(self, feed_id: int) -> int:
        return sum(c[feed_id].items for c in (self._window, self._pending) if feed_id in c)

    def template(self, feed_id: int, hashes: Sequence[int]) -> Mask:
        """Which of `hashes` are the template of `feed_id`."""
        sources = [c[feed_id] for c in (self._window, self._pending) if feed_id in c]
        items = sum(source.items for source in sources)
        needed = self.rule.threshold(items)
        if items < needed:
            return np.zeros(len(hashes), dtype=bool)
        carried = np.zeros(len(hashes), dtype=np.int64)
        for source in sources:
            terms = source.terms
            carried += np.fromiter((terms.get(term, 0) for term in hashes), np.int64, len(hashes))
        return carried >= needed

    @staticmethod
    def _uncount(table: dict[int, _FeedCounts], feed_id: int, hashes: Sequence[int]) -> None:
        counts = table.get(feed_id)
        if counts is not None:
            counts.add(hashes, -1)
            if counts.items <= 0:
                del table[feed_id]

    @staticmethod
    def _counts(table: dict[int, _FeedCounts], feed_id: int) -> _FeedCounts:
        counts = table.get(feed_id)
        if counts is None:
            counts = table[feed_id] = _FeedCounts()
        return counts
