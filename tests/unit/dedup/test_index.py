"""The columnar SimilarityIndex proposes exactly the candidates of datasketch's MinHashLSH.

The reference is what the index replaced: one `MinHashLSH` per signature kind (title at
0.5, body at 0.4) and a dict of fingerprints. Every comparison is of whole candidate
lists (ids in order, and every field of every fingerprint), after adds one by one and in
bulk, removals, moves, re-adds and trims of the window.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from datasketch import MinHashLSH

from aggregator.dedup import index as index_module
from aggregator.dedup.index import (
    BODY_LSH_THRESHOLD,
    NO_TIME,
    TITLE_LSH_THRESHOLD,
    Fingerprint,
    FingerprintColumns,
    SimilarityIndex,
    from_microseconds,
    lsh_bands,
    to_microseconds,
)
from aggregator.dedup.signature import DEFAULT_PARAMS, Signatures, Signer

NOW = datetime(2026, 1, 1, tzinfo=UTC)
PERM = DEFAULT_PARAMS.num_perm
STORY = (
    "the council voted on tuesday to approve a new budget for schools and roads after "
    "months of debate between the mayor and residents who opposed the tax increase "
    "while the storm moved north across the coast closing airports and ports as "
    "officials urged people to stay home and prepare for power cuts lasting days"
)


class Reference:
    """The index as it was: two datasketch MinHashLSH and a dict of fingerprints."""

    def __init__(self, signer: Signer) -> None:
        self.signer = signer
        self.title = MinHashLSH(threshold=TITLE_LSH_THRESHOLD, num_perm=PERM)
        self.body = MinHashLSH(threshold=BODY_LSH_THRESHOLD, num_perm=PERM)
        self.fingerprints: dict[int, Fingerprint] = {}

    def add(self, fp: Fingerprint) -> None:
        self.remove(fp.entry_id)
        self.fingerprints[fp.entry_id] = fp
        self.title.insert(fp.entry_id, self.signer.lean(fp.signatures.title))
        self.body.insert(fp.entry_id, self.signer.lean(fp.signatures.body))

    def remove(self, entry_id: int) -> None:
        if self.fingerprints.pop(entry_id, None) is not None:
            self.title.remove(entry_id)
            self.body.remove(entry_id)

    def move_to_event(self, entry_id: int, event_id: int) -> None:
        if entry_id in self.fingerprints:
            self.fingerprints[entry_id] = replace(self.fingerprints[entry_id], event_id=event_id)

    def drop_older_than(self, cutoff: datetime) -> int:
        old = [k for k, fp in self.fingerprints.items() if fp.first_seen < cutoff]
        for key in old:
            self.remove(key)
        return len(old)

    def candidates(self, signatures: Signatures) -> list[Fingerprint]:
        keys = set(self.title.query(self.signer.lean(signatures.title)))
        keys.update(self.body.query(self.signer.lean(signatures.body)))
        return [self.fingerprints[k] for k in sorted(keys)]


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer(DEFAULT_PARAMS)


def same(a: list[Fingerprint], b: list[Fingerprint]) -> bool:
    """Equal candidate lists, field by field (numpy arrays compared by value)."""
    if [fp.entry_id for fp in a] != [fp.entry_id for fp in b]:
        return False
    for x, y in zip(a, b, strict=True):
        if (x.feed_id, x.event_id, x.first_seen, x.published) != (
            y.feed_id, y.event_id, y.first_seen, y.published,
        ):  # fmt: skip
            return False
        sx, sy = x.signatures, y.signatures
        if (sx.title_words, sx.body_shingles, sx.headline_only) != (
            sy.title_words, sy.body_shingles, sy.headline_only,
        ):  # fmt: skip
            return False
        if not (np.array_equal(sx.title, sy.title) and np.array_equal(sx.body, sy.body)):
            return False
    return True


class Family:
    """Random signatures that share values with a few base signatures, so that some share
    whole bands (candidates) and most do not: a copy keeps each value of its base with a
    probability drawn per signature (fully random signatures would share no band)."""

    def __init__(self, seed: int, bases: int = 40) -> None:
        self.rng = np.random.default_rng(seed)
        self.bases = self.rng.integers(0, 2**32, size=(bases, 2, PERM), dtype=np.uint32)

    def signatures(self) -> Signatures:
        base = self.bases[self.rng.integers(0, len(self.bases))]
        keep = self.rng.random((2, PERM)) < self.rng.uniform(0.2, 1.0)
        values = self.rng.integers(0, 2**32, size=(2, PERM), dtype=np.uint32)
        values[keep] = base[keep]
        return Signatures(
            title=values[0], body=values[1], title_words=int(self.rng.integers(0, 20)),
            body_shingles=int(self.rng.integers(0, 5000)),
            headline_only=bool(self.rng.integers(0, 2)),
        )  # fmt: skip

    def fingerprints(self, ids: Iterator[int] | range) -> list[Fingerprint]:
        result = []
        for entry_id in ids:
            published = None if entry_id % 5 == 0 else NOW - timedelta(microseconds=entry_id)
            result.append(
                Fingerprint(
                    entry_id=entry_id,
                    feed_id=entry_id % 7,
                    event_id=entry_id // 3,
                    first_seen=NOW + timedelta(minutes=int(self.rng.integers(0, 600))),
                    published=published,
                    signatures=self.signatures(),
                )
            )
        return result


def assert_same_candidates(
    index: SimilarityIndex, reference: Reference, queries: list[Signatures]
) -> int:
    """Every query gives the same candidates; returns how many candidates in all."""
    assert len(index) == len(reference.fingerprints)
    found = 0
    for signatures in queries:
        expected = reference.candidates(signatures)
        got = index.candidates(signatures)
        assert same(got, expected), (
            [fp.entry_id for fp in got],
            [fp.entry_id for fp in expected],
        )
        found += len(expected)
    return found


def test_banding_is_datasketch_choice() -> None:
    for threshold in (TITLE_LSH_THRESHOLD, BODY_LSH_THRESHOLD, 0.8):
        lsh = MinHashLSH(threshold=threshold, num_perm=PERM)
        assert lsh_bands(threshold, PERM) == (lsh.b, lsh.r)


def test_one_shared_band_makes_a_candidate_and_almost_does_not(signer: Signer) -> None:
    """A single identical body band is enough; r-1 equal values in every band is not."""
    bands, rows = lsh_bands(BODY_LSH_THRESHOLD, PERM)
    title_bands, title_rows = lsh_bands(TITLE_LSH_THRESHOLD, PERM)
    rng = np.random.default_rng(7)
    stored = rng.integers(0, 2**32, size=(2, PERM), dtype=np.uint32)
    index = SimilarityIndex(signer)
    index.add(Fingerprint(1, 1, 1, NOW, None, Signatures(stored[0], stored[1], 5, 50, False)))
    for band in range(bands):
        query = rng.integers(0, 2**32, size=(2, PERM), dtype=np.uint32)
        query[1, band * rows : (band + 1) * rows] = stored[1, band * rows : (band + 1) * rows]
        found = index.candidates(Signatures(query[0], query[1], 5, 50, False))
        assert [fp.entry_id for fp in found] == [1]
    almost = stored.copy()
    almost[1, ::rows] += 1  # one value changed in every body band
    almost[0, ::title_rows] += 1  # and in every title band
    assert index.candidates(Signatures(almost[0], almost[1], 5, 50, False)) == []
    # Values past the last band (128 = 25 x 5 + 3 for titles) are in no band.
    unbanded = rng.integers(0, 2**32, size=(2, PERM), dtype=np.uint32)
    unbanded[0, title_bands * title_rows :] = stored[0, title_bands * title_rows :]
    assert index.candidates(Signatures(unbanded[0], unbanded[1], 5, 50, False)) == []


def test_random_signatures_one_by_one_and_in_bulk(signer: Signer) -> None:
    family = Family(seed=1)
    fingerprints = family.fingerprints(range(1, 3001))
    queries = [family.signatures() for _ in range(300)]
    reference = Reference(signer)
    for fp in fingerprints:
        reference.add(fp)
    one_by_one = SimilarityIndex(signer)
    for fp in fingerprints:  # past the buffer: runs made and merged
        one_by_one.add(fp)
    bulk = SimilarityIndex(signer)
    bulk.add_all(iter(fingerprints))
    assert assert_same_candidates(one_by_one, reference, queries) > 300
    assert_same_candidates(bulk, reference, queries)
    # The stored entries find themselves (and their copies).
    assert_same_candidates(bulk, reference, [fp.signatures for fp in fingerprints[:200]])


def test_removals_moves_readds_and_trims(signer: Signer, monkeypatch: pytest.MonkeyPatch) -> None:
    # Small buffer and compaction thresholds, so that this test crosses them many times.
    monkeypatch.setattr(index_module, "_BUFFER_ITEMS", 37)
    monkeypatch.setattr(index_module, "_MIN_DEAD", 25)
    family = Family(seed=2)
    rng = np.random.default_rng(3)
    index = SimilarityIndex(signer)
    reference = Reference(signer)
    first = family.fingerprints(range(1, 801))
    index.add_all(first)
    for fp in first:
        reference.add(fp)
    queries = [family.signatures() for _ in range(60)]
    next_id = 801
    for step in range(12):
        for fp in family.fingerprints(range(next_id, next_id + 60)):
            index.add(fp)
            reference.add(fp)
        next_id += 60
        known = sorted(reference.fingerprints)
        for entry_id in rng.choice(known, size=25, replace=False).tolist():
            index.remove(entry_id)
            reference.remove(entry_id)
        index.remove(10**9)  # unknown: nothing happens
        for entry_id in rng.choice(sorted(reference.fingerprints), size=20).tolist():
            index.move_to_event(entry_id, 10_000 + step)
            reference.move_to_event(entry_id, 10_000 + step)
        if step % 3 == 2:
            cutoff = NOW + timedelta(minutes=40 * step)
            assert index.drop_older_than(cutoff) == reference.drop_older_than(cutoff)
        if step % 4 == 1:
            # A new version of an indexed entry, and an old id back: ids out of order.
            old = sorted(reference.fingerprints)[::50]
            for fp in family.fingerprints(iter(old)):
                index.add(fp)
                reference.add(fp)
        assert all((entry_id in index) for entry_id in reference.fingerprints)
        assert_same_candidates(index, reference, queries)
        assert_same_candidates(
            index, reference, [fp.signatures for fp in list(reference.fingerprints.values())[:40]]
        )
    assert index.drop_older_than(NOW + timedelta(days=1)) == reference.drop_older_than(
        NOW + timedelta(days=1)
    )
    assert len(index) == 0
    assert index.candidates(queries[0]) == []


def test_bulk_add_replaces_known_and_repeated_ids(signer: Signer) -> None:
    family = Family(seed=4)
    index = SimilarityIndex(signer)
    reference = Reference(signer)
    batch = family.fingerprints(range(1, 400))
    # The same ids again (new versions), some repeated within the batch: the last wins.
    again = family.fingerprints(iter([5, 300, 5, 17, 1000, 2, 300]))
    for fp in batch + again:
        reference.add(fp)
    index.add_all(batch)
    index.add_all(again)
    assert len(index) == len(reference.fingerprints) == 400
    queries = [fp.signatures for fp in batch + again] + [family.signatures() for _ in range(50)]
    assert_same_candidates(index, reference, queries)


def test_real_signatures_of_edited_headlines_and_texts(signer: Signer) -> None:
    """Signatures of real-like text: wire copies with edits, teasers, other stories."""
    rng = np.random.default_rng(5)
    words = STORY.split()
    texts = []
    for _ in range(400):
        start = int(rng.integers(0, len(words) - 30))
        story = words[start : start + int(rng.integers(8, 30))]
        edited = [w for w in story if rng.random() > 0.1]
        title = " ".join(edited[:8])
        text = " ".join(edited) if rng.random() > 0.3 else ""
        texts.append((title, text))
    fingerprints = [
        Fingerprint(n, n % 4, n, NOW, None, signer.sign(title, text))
        for n, (title, text) in enumerate(texts[:300], 1)
    ]
    reference = Reference(signer)
    index = SimilarityIndex(signer)
    for fp in fingerprints:
        reference.add(fp)
    index.add_all(fingerprints[:150])
    for fp in fingerprints[150:]:
        index.add(fp)
    queries = [signer.sign(title, text) for title, text in texts]
    assert assert_same_candidates(index, reference, queries) > len(queries)


def test_columns_and_times_round_trip(signer: Signer) -> None:
    family = Family(seed=6)
    fingerprints = family.fingerprints(range(1, 50))
    columns = FingerprintColumns.from_fingerprints(fingerprints, PERM)
    assert len(columns) == 49
    assert columns.published[4] == NO_TIME  # entry 5: no published time
    index = SimilarityIndex(signer)
    index.add_columns(columns)
    got = {fp.entry_id: fp for fp in index.candidates(fingerprints[10].signatures)}
    assert same([got[11]], [fingerprints[10]])
    when = datetime(2026, 3, 29, 1, 30, 0, 123457, tzinfo=UTC)
    assert from_microseconds(to_microseconds(when)) == when
    with pytest.raises(ValueError, match="naive"):
        to_microseconds(datetime(2026, 1, 1))
    short = replace(
        fingerprints[0], signatures=replace(fingerprints[0].signatures, title=np.zeros(64))
    )
    with pytest.raises(ValueError):
        index.add(short)


def test_runs_with_many_equal_keys_are_bisected(
    signer: Signer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Exact copies pile equal keys into one bucket: past a width, runs are bisected."""
    monkeypatch.setattr(index_module, "_MAX_BUCKET_SCAN", 3)
    family = Family(seed=8, bases=3)
    fingerprints = family.fingerprints(range(1, 1500))
    copies = [replace(fp, entry_id=fp.entry_id + 10_000) for fp in fingerprints[:40]]
    reference = Reference(signer)
    index = SimilarityIndex(signer)
    for fp in fingerprints + copies:
        reference.add(fp)
    index.add_all(fingerprints[:700])
    for fp in fingerprints[700:] + copies:
        index.add(fp)
    queries = [fp.signatures for fp in fingerprints[:30]] + [family.signatures() for _ in range(30)]
    assert assert_same_candidates(index, reference, queries) > 60


def shared_bands(query: Signatures, fp: Fingerprint) -> tuple[int, int]:
    """(title bands, body bands) of `fp` equal to the query's, counted value by value."""
    counts = []
    for threshold, mine, theirs in (
        (TITLE_LSH_THRESHOLD, query.title, fp.signatures.title),
        (BODY_LSH_THRESHOLD, query.body, fp.signatures.body),
    ):
        bands, rows = lsh_bands(threshold, PERM)
        equal = mine[: bands * rows].reshape(bands, rows) == theirs[: bands * rows].reshape(
            bands, rows
        )
        counts.append(int(equal.all(axis=1).sum()))
    return counts[0], counts[1]


def expected_best(query: Signatures, candidates: list[Fingerprint], limit: int) -> set[int]:
    """The ids `candidates(query, limit)` must give: all when they fit, else half by body
    bands shared and the rest by title bands, ties by the other kind, then the oldest."""
    if len(candidates) <= limit:
        return {fp.entry_id for fp in candidates}
    counts = {fp.entry_id: shared_bands(query, fp) for fp in candidates}
    by_body = sorted(counts, key=lambda e: (-counts[e][1], -counts[e][0], e))
    chosen = set(by_body[: limit - limit // 2])
    rest = sorted((e for e in counts if e not in chosen), key=lambda e: (-counts[e][0],
                  -counts[e][1], e))  # fmt: skip
    return chosen | set(rest[: limit // 2])


@pytest.mark.parametrize(("few_hits", "dense_hits"), [(4096, 4), (0, 0), (0, 10**9)])
def test_a_limit_keeps_the_candidates_sharing_most_bands(
    signer: Signer, monkeypatch: pytest.MonkeyPatch, few_hits: int, dense_hits: int
) -> None:
    """Under a limit the candidates are exactly those without it when they fit, else the
    best by body bands and by title bands; through the Python and numpy counts, the dense
    and the sorted ones, runs and the buffer."""
    monkeypatch.setattr(index_module, "_FEW_HITS", few_hits)
    monkeypatch.setattr(index_module, "_DENSE_HITS", dense_hits)
    family = Family(seed=3, bases=8)
    fingerprints = family.fingerprints(range(1, 1801))
    reference = Reference(signer)
    index = SimilarityIndex(signer)
    for fp in fingerprints:
        reference.add(fp)
    index.add_all(fingerprints[:1000])
    for fp in fingerprints[1000:]:
        index.add(fp)
    queries = [family.signatures() for _ in range(40)] + [fp.signatures for fp in fingerprints[:20]]
    limited = 0
    for query in queries:
        everything = reference.candidates(query)
        assert same(index.candidates(query), everything)
        for limit in (1, 7, 64, 10_000):
            got = index.candidates(query, limit=limit)
            assert [fp.entry_id for fp in got] == sorted(fp.entry_id for fp in got)
            assert {fp.entry_id for fp in got} == expected_best(query, everything, limit)
            kept = {fp.entry_id for fp in got}
            assert same(got, [fp for fp in everything if fp.entry_id in kept])
            limited += len(everything) > limit
    assert limited > 100  # the limits did cut
