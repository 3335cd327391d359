"""Document frequencies over the window, for inverse document frequency (pure)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import repeat

import numpy as np
import numpy.typing as npt

from aggregator.dedup.vectors import (
    Background,
    CountArray,
    FloatArray,
    HashArray,
    IdArray,
    term_hash,
)

# Terms in more than this share of the window's documents propose no candidates: they
# would return nearly every event, and alone never reach a threshold.
CANDIDATE_MAX_DOCUMENT_SHARE = 0.2


@dataclass(slots=True)
class TermStatistics:
    """Document frequencies over the window, for inverse document frequency.

    Terms get ids so that frequencies, centroids and the vectors kept for the window are
    arrays, because dictionaries of strings held about 20 KB per item of the window. A
    term is known by its hash
    (`term_hash`, what the store keeps), and the terms of live vectors also by their text:
    looking a string up costs less than hashing it again."""

    documents: int = 0
    vocabulary: dict[int, int] = field(default_factory=dict)  # term hash -> id
    hashes: list[int] = field(default_factory=list)  # id -> term hash
    by_text: dict[str, int] = field(default_factory=dict)  # term -> id, for live vectors
    count_by_id: CountArray = field(default_factory=lambda: np.zeros(1024, dtype=np.int64))
    # log(frequency + 1) of each term, kept as frequencies change: the IDF of a term is
    # then a subtraction, not a logarithm (norms of large centroids take thousands).
    log_by_id: FloatArray = field(default_factory=lambda: np.zeros(1024))
    # Each term's IDF in ordinary language (`background`); inf for a term the background
    # lacks: rare, so it gets the largest IDF the window gives.
    background_by_id: FloatArray = field(default_factory=lambda: np.full(1024, np.inf))
    # The table those come from (dedup/background.py), or what gives it, called at the
    # first look-up (a daemon's is read while it starts); None: no background, headlines
    # are weighed by the window alone.
    background: Background | Callable[[], Background] | None = None

    def intern(self, hashes: HashArray) -> IdArray:
        """The ids of these term hashes, new terms getting the next free ids in the order
        of their hashes. Array work but for a lookup per distinct hash: a restart interns
        every term of the window, a batch of entries at a time. (New ids in order of first
        occurrence needed `np.unique`'s `return_index`, a stable sort: a third of the
        interning. Candidates break ties by hash, not id; the numbering changes only the
        order in which dot products add up, in their last bits.)"""
        distinct, where = np.unique(hashes, return_inverse=True)
        listed = distinct.tolist()
        ids = np.fromiter(map(self.vocabulary.get, listed, repeat(-1)), np.int64, len(listed))
        new = np.flatnonzero(ids < 0)
        if len(new):
            start = len(self.hashes)
            ids[new] = np.arange(start, start + len(new))
            added = distinct[new].tolist()
            self.vocabulary.update(zip(added, range(start, start + len(new)), strict=True))
            self.hashes.extend(added)
            self._grow()
            self._look_up_background(ids[new], distinct[new])
        return ids[where.reshape(-1)].astype(np.int32)

    def ids(self, terms: Iterable[str], count: int) -> IdArray:
        """The ids of `count` terms (new terms get ids, with no documents yet)."""
        listed = terms if isinstance(terms, list) else list(terms)
        by_text = self.by_text
        unknown = [term for term in listed if term not in by_text]
        if unknown:
            # A few terms per entry, one at a time: `intern`'s numpy calls cost more here
            # than they save (about 7% of an update's storing thread, py-spy).
            vocabulary, hashes = self.vocabulary, self.hashes
            first_new = len(hashes)
            for term in unknown:
                hashed = term_hash(term)
                term_id = vocabulary.get(hashed)
                if term_id is None:
                    term_id = vocabulary[hashed] = len(hashes)
                    hashes.append(hashed)
                by_text[term] = term_id
            self._grow()
            if len(hashes) > first_new:
                self._look_up_background(
                    np.arange(first_new, len(hashes)),
                    np.array(hashes[first_new:], dtype=np.uint64),
                )
        return np.fromiter(map(by_text.__getitem__, listed), dtype=np.int32, count=count)

    def _grow(self) -> None:
        if len(self.hashes) > len(self.count_by_id):
            grown = max(len(self.hashes), 2 * len(self.count_by_id))
            self.count_by_id = np.concatenate(
                [self.count_by_id, np.zeros(grown - len(self.count_by_id), dtype=np.int64)]
            )
            self.log_by_id = np.concatenate([self.log_by_id, np.zeros(grown - len(self.log_by_id))])
            self.background_by_id = np.concatenate(
                [self.background_by_id, np.full(grown - len(self.background_by_id), np.inf)]
            )

    def _look_up_background(self, ids: npt.NDArray[np.integer], hashes: HashArray) -> None:
        if self.background is None or not len(ids):
            return
        if callable(self.background):
            self.background = self.background()
        known, idf = self.background
        if not len(known):
            return
        at = np.minimum(np.searchsorted(known, hashes), len(known) - 1)
        self.background_by_id[ids] = np.where(known[at] == hashes, idf[at], np.inf)

    def add(self, vector: Mapping[str, float]) -> IdArray:
        """Count one document with these terms; returns their ids."""
        ids = self.ids(vector, len(vector))
        self.add_ids(ids)
        return ids

    def add_ids(self, ids: IdArray) -> None:
        self.documents += 1
        self._count(ids, 1)

    def remove_ids(self, ids: IdArray) -> None:
        self.documents = max(0, self.documents - 1)
        self._count(ids, -1)

    def add_hashed_documents(self, documents: Sequence[HashArray]) -> IdArray:
        """Count documents given by their terms' hashes (`intern`, then `add_documents`);
        returns the ids of all their terms, document after document. What reads a batch of
        the window's stored vectors calls this, not `add_ids` once per document: interning
        one document at a time is a few numpy calls for ~140 terms (a window of 100,000
        corpus entries: 29.9 s that way, 4.8 s in batches of 4,096, in one run)."""
        if not documents:
            return np.zeros(0, dtype=np.int32)
        ids = self.intern(np.concatenate(documents))
        self.add_documents(ids, len(documents))
        return ids

    def add_documents(self, ids: IdArray, documents: int) -> None:
        """Count `documents` documents at once, `ids` the concatenation of their terms'
        ids (a restart: one `bincount` instead of a step per document)."""
        self.documents += documents
        counts = np.bincount(ids, minlength=len(self.hashes))
        touched = np.flatnonzero(counts)
        self.count_by_id[touched] += counts[touched]
        self._refresh_logs(touched)

    def _count(self, ids: IdArray, step: int) -> None:
        """Add `step` to the frequency of each term (the ids of one document: distinct)."""
        self.count_by_id[ids] = np.maximum(self.count_by_id[ids] + step, 0)
        self._refresh_logs(ids)

    def _refresh_logs(self, ids: npt.NDArray[np.integer]) -> None:
        self.log_by_id[ids] = np.log(self.count_by_id[ids] + 1.0)  # 0 for a term in none

    def idf_base(self) -> float:
        """The IDF of a term in no document; `idf(t)` is this minus log(frequency + 1)."""
        return math.log(self.documents + 1) + 1.0

    def idf(self, term: str, *, background: bool = False) -> float:
        """The term's IDF over the window; with `background`, at least its IDF in ordinary
        language (what headline decisions use, see HEADLINE_WORDS)."""
        term_id = self.by_text.get(term)
        if term_id is None:
            term_id = self.vocabulary.get(term_hash(term))
        if term_id is None:
            return self.idf_base()
        return float(self.idf_of(np.array([term_id]), background=background)[0])

    def idf_of(self, ids: npt.NDArray[np.integer], *, background: bool) -> FloatArray:
        """`idf` of many term ids at once."""
        base = self.idf_base()
        window: FloatArray = base - self.log_by_id[ids]
        if not background:
            return window
        floor: FloatArray = np.minimum(self.background_by_id[ids], base)
        return np.maximum(window, floor)

    def common_above(self) -> float:
        """Terms in more documents than this are common (see CANDIDATE_MAX_DOCUMENT_SHARE)."""
        return CANDIDATE_MAX_DOCUMENT_SHARE * max(self.documents, 20)

    def compact(self, keep: npt.NDArray[np.bool_]) -> IdArray:
        """Forget the terms not in `keep` (indexed by id; terms still counted are always
        kept) and renumber the rest in the same order; returns old id -> new id (-1 for
        forgotten). Without this the vocabulary would hold every stem seen since start."""
        size = len(self.hashes)
        keep = keep[:size] | (self.count_by_id[:size] > 0)
        mapping = np.full(size, -1, dtype=np.int32)
        mapping[keep] = np.arange(int(keep.sum()), dtype=np.int32)
        self.hashes = [h for h, kept in zip(self.hashes, keep.tolist(), strict=True) if kept]
        self.vocabulary = {term: term_id for term_id, term in enumerate(self.hashes)}
        renumbered = mapping.tolist()
        self.by_text = {
            term: renumbered[term_id]
            for term, term_id in self.by_text.items()
            if renumbered[term_id] >= 0
        }
        capacity = max(1024, 2 * len(self.hashes))
        counts = np.zeros(capacity, dtype=np.int64)
        counts[: len(self.hashes)] = self.count_by_id[:size][keep]
        logs = np.zeros(capacity)
        logs[: len(self.hashes)] = self.log_by_id[:size][keep]
        backgrounds = np.full(capacity, np.inf)
        backgrounds[: len(self.hashes)] = self.background_by_id[:size][keep]
        self.count_by_id, self.log_by_id, self.background_by_id = counts, logs, backgrounds
        return mapping
