"""The in-memory LSH index over the entries of the dedup window.

A cache of the database, never the source of truth: rebuilt at start-up from the
signatures stored as BLOBs, trimmed as the window moves. LSH over title signatures
(headlines repeated or lightly edited) and over body signatures (copies of the text).
Candidates from either are verified in `grouping` before anything merges.

The candidates are exactly those of two datasketch `MinHashLSH` (one per signature kind,
with the thresholds below): the same banding (datasketch's own choice of bands b and rows
r for the threshold and `num_perm`), and an indexed entry is a candidate when one of its b
bands (r consecutive hash values) equals the query's band in either kind. The layout is
what differs, to keep a window of a million entries in a couple of GB and rebuild it in
seconds:

- columns, not objects: ids, times and sizes in numpy arrays (times as int64
  microseconds, given back as UTC datetimes: equal to the ones added), the signatures of
  each kind in one contiguous uint32 matrix, one row per slot; `Fingerprint` objects are
  built only for the candidates a query returns;
- each band of each entry is hashed to a 64-bit key: the top bits name the band (6 bits
  for the 25 title and 32 body bands of 128 permutations), the other 58 are those of a
  64-bit mix of the band's values. Keys live in sorted runs (keys, slots) searched with
  `searchsorted`; the newest entries wait in a small dict until a run is made of them.
  Equal bands always give equal keys, so no candidate is ever lost; two different bands
  of the same band number may collide (about 2**-58 per pair), which adds a spurious
  candidate: harmless, because `grouping` verifies every candidate's similarity on the
  signatures themselves;
- removal marks a slot dead (queries skip it); once dead slots are an eighth of the live
  ones, everything is compacted (filtering keeps runs sorted, nothing is re-hashed).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt

from aggregator.dedup.signature import Signatures, Signer

# LSH thresholds are deliberately below the verification thresholds in `grouping`: LSH
# only proposes candidates (a missed candidate is a missed merge), verification decides.
TITLE_LSH_THRESHOLD = 0.5
BODY_LSH_THRESHOLD = 0.4
# datasketch's default weights of false positives and false negatives when it picks b, r.
_LSH_WEIGHTS = (0.5, 0.5)

# Times are kept as int64 microseconds since the epoch (exact for every datetime), and a
# missing `published` as the smallest int64.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
NO_TIME = int(np.iinfo(np.int64).min)

# Entries added one by one wait in a dict until this many are indexed as one sorted run.
_BUFFER_ITEMS = 1024
# A run is merged into the one before it while that one is at most this many times larger:
# a logarithmic number of runs to search, each key copied a logarithmic number of times.
_RUN_RATIO = 4
# Compact when dead slots reach this share of live ones (and at least _MIN_DEAD).
_DEAD_SHARE = 8
_MIN_DEAD = 1024
# Keys per bucket of a run's directory, on average; above this many in one bucket (many
# copies of one item), a run is searched by bisection instead.
_BUCKET = 16
_MAX_BUCKET_SCAN = 256
# A query with more band hits than this counts them with numpy (one headline repeated
# through a whole feed hits every one of its items in every title band).
_FEW_HITS = 4096
# Hits are counted by slot in a dense array while its span is at most this many per hit.
_DENSE_HITS = 4
# Slots are below 2**32 (uint32 in the runs): the low bits of a ranking key.
_SLOT_BITS = 32
_SLOT_BITS_MASK = (1 << _SLOT_BITS) - 1
# Rows hashed at a time in bulk: temporaries stay in the CPU caches.
_HASH_CHUNK = 8192
_MASK64 = (1 << 64) - 1
_MIX1 = np.uint64(0x9E3779B97F4A7C15)
_MIX2 = np.uint64(0xBF58476D1CE4E5B9)
_MIX3 = np.uint64(0x94D049BB133111EB)

# The fingerprint of a slot beyond its id and signatures, as one record.
_META = np.dtype(
    [
        ("feed", np.int64), ("event", np.int64), ("first_seen", np.int64),
        ("published", np.int64), ("title_words", np.int64), ("body_shingles", np.int64),
        ("headline_only", np.bool_),
    ]
)  # fmt: skip
# The per-slot arrays of SimilarityIndex, grown and compacted together.
_COLUMNS = ("_ids", "_alive", "_meta", "_title", "_body")

U32Matrix = npt.NDArray[np.uint32]
I64Array = npt.NDArray[np.int64]
U64Array = npt.NDArray[np.uint64]


@functools.lru_cache(maxsize=16)
def lsh_bands(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows per band) as datasketch's `MinHashLSH(threshold, num_perm)` picks them.

    datasketch's own function (private, but MinHashLSH calls nothing else: the unit tests
    compare with `MinHashLSH(...).b, .r`); cached, because it integrates numerically
    (about 0.1 s a call). Imported here, not with the module: datasketch imports scipy
    (over a second), and the commands that only read (digest, status, feeds, serve) import
    this module through the store without ever building an index."""
    from datasketch.lsh import _optimal_param

    bands, rows = _optimal_param(threshold, num_perm, *_LSH_WEIGHTS)
    return int(bands), int(rows)


def to_microseconds(value: datetime) -> int:
    """Microseconds since the epoch of an aware datetime (exact, integer arithmetic)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("naive datetimes are not indexed: every time is UTC")
    return (value - EPOCH) // _MICROSECOND


def from_microseconds(value: int) -> datetime:
    return EPOCH + timedelta(microseconds=value)


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """What dedup needs to know about an entry already seen."""

    entry_id: int
    feed_id: int
    event_id: int
    first_seen: datetime  # arrival time: the window is about what we received recently
    published: datetime | None
    signatures: Signatures


@dataclass(frozen=True, slots=True)
class FingerprintColumns:
    """Many fingerprints as columns (row i is one entry): what a bulk rebuild reads.

    Times are microseconds since the epoch (`to_microseconds`), NO_TIME for a missing
    `published`; signatures are (rows, num_perm) uint32 matrices.
    """

    entry_ids: I64Array
    feed_ids: I64Array
    event_ids: I64Array
    first_seen: I64Array
    published: I64Array
    title: U32Matrix
    body: U32Matrix
    title_words: I64Array
    body_shingles: I64Array
    headline_only: npt.NDArray[np.bool_]

    def __len__(self) -> int:
        return len(self.entry_ids)

    @classmethod
    def from_fingerprints(
        cls, fingerprints: Sequence[Fingerprint], num_perm: int
    ) -> FingerprintColumns:
        """Columns of `fingerprints` (signatures copied into two matrices)."""
        count = len(fingerprints)
        title = np.empty((count, num_perm), dtype=np.uint32)
        body = np.empty((count, num_perm), dtype=np.uint32)
        for row, fp in enumerate(fingerprints):
            if len(fp.signatures.title) != num_perm or len(fp.signatures.body) != num_perm:
                raise ValueError(f"entry {fp.entry_id}: signatures of another size than {num_perm}")
            title[row] = fp.signatures.title
            body[row] = fp.signatures.body
        return cls(
            entry_ids=_int64([fp.entry_id for fp in fingerprints]),
            feed_ids=_int64([fp.feed_id for fp in fingerprints]),
            event_ids=_int64([fp.event_id for fp in fingerprints]),
            first_seen=_int64([to_microseconds(fp.first_seen) for fp in fingerprints]),
            published=_int64(
                [
                    NO_TIME if fp.published is None else to_microseconds(fp.published)
                    for fp in fingerprints
                ]
            ),
            title=title,
            body=body,
            title_words=_int64([fp.signatures.title_words for fp in fingerprints]),
            body_shingles=_int64([fp.signatures.body_shingles for fp in fingerprints]),
            headline_only=np.array(
                [fp.signatures.headline_only for fp in fingerprints], dtype=np.bool_
            ),
        )

    def fingerprints(self) -> list[Fingerprint]:
        """The rows as `Fingerprint` objects (the inverse of `from_fingerprints`)."""
        rows = zip(
            self.entry_ids.tolist(), self.feed_ids.tolist(), self.event_ids.tolist(),
            self.first_seen.tolist(), self.published.tolist(), self.title_words.tolist(),
            self.body_shingles.tolist(), self.headline_only.tolist(), strict=True,
        )  # fmt: skip
        return [
            _fingerprint(entry, feed, event, first, published, self.title[i].copy(),
                         self.body[i].copy(), words, shingles, headline)
            for i, (entry, feed, event, first, published, words, shingles, headline)
            in enumerate(rows)
        ]  # fmt: skip

    @staticmethod
    def concatenate(parts: Sequence[FingerprintColumns]) -> FingerprintColumns:
        """The rows of every part, in order."""
        return FingerprintColumns(
            *(np.concatenate([getattr(part, name) for part in parts])
              for name in FingerprintColumns.__slots__)
        )  # fmt: skip


def _int64(values: Sequence[int]) -> I64Array:
    return np.array(values, dtype=np.int64).reshape(len(values))


def _splitmix64(value: int) -> int:
    value = (value + 0x9E3779B97F4A7C15) & _MASK64
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK64
    return value ^ (value >> 31)


class _Bands:
    """The LSH bands of both signature kinds, and their 64-bit keys.

    Title bands are numbered first, then body bands. A band's key: each of its r values
    plus a constant of its position (band and row), mixed by a bijection of 64-bit words
    (multiply by an odd constant, xor-shift), summed over the band, mixed again. The top
    bits are then replaced by the band's number, so that a run sorted band by band is
    sorted, and keys of different bands never collide. Everything is elementwise over a
    (rows, values) matrix, so one entry and a million take the same code: a query's keys
    are the keys its entry would get in bulk.
    """

    def __init__(self, title: tuple[int, int], body: tuple[int, int], num_perm: int) -> None:
        self.num_perm = num_perm
        (title_bands, title_rows), (body_bands, body_rows) = title, body
        self.count = title_bands + body_bands
        self.title_count = title_bands  # bands 0 .. title_count-1 are the title's
        self._title_used = title_bands * title_rows
        self._body_used = body_bands * body_rows
        used = self._title_used + self._body_used
        self._constants = np.array([_splitmix64(i) for i in range(used)], dtype=np.uint64)
        widths = [title_rows] * title_bands + [body_rows] * body_bands
        self._starts = np.cumsum([0, *widths[:-1]], dtype=np.int64)
        self.tag_bits = tag_bits = max(1, (self.count - 1).bit_length())
        self._tag_shift = np.uint64(tag_bits)
        self._tags = np.array(
            [band << (64 - tag_bits) for band in range(self.count)], dtype=np.uint64
        )

    def keys(self, title: U32Matrix, body: U32Matrix) -> U64Array:
        """(bands, rows) keys of the rows of two (rows, num_perm) matrices: band i of row j
        at [i, j]."""
        count = len(title)
        out = np.empty((self.count, count), dtype=np.uint64)
        for start in range(0, count, _HASH_CHUNK):
            end = min(count, start + _HASH_CHUNK)
            values = np.empty((end - start, len(self._constants)), dtype=np.uint64)
            values[:, : self._title_used] = title[start:end, : self._title_used]
            values[:, self._title_used :] = body[start:end, : self._body_used]
            out[:, start:end] = self._hash(values).T
        return out

    def keys_of_one(self, title: npt.NDArray[Any], body: npt.NDArray[Any]) -> U64Array:
        """The (bands,) keys of one entry (the same arithmetic as `keys`)."""
        values = np.concatenate(
            (title[: self._title_used], body[: self._body_used]), dtype=np.uint64
        )
        return self._hash(values)

    def _hash(self, values: U64Array) -> U64Array:
        """Keys of (..., used values) uint64, which are overwritten: (..., bands)."""
        # Per value (the bulk of the work, so few passes): add the position's constant,
        # multiply, xor-shift. Per band sum: a full finaliser.
        values += self._constants
        values *= _MIX1
        values ^= values >> np.uint64(32)
        hashed = np.add.reduceat(values, self._starts, axis=-1)
        hashed ^= hashed >> np.uint64(30)
        hashed *= _MIX2
        hashed ^= hashed >> np.uint64(27)
        hashed *= _MIX3
        hashed ^= hashed >> np.uint64(31)
        hashed >>= self._tag_shift
        hashed |= self._tags
        return hashed


class _Run:
    """Sorted band keys, the slot each came from, and a directory of the keys.

    The directory maps the top `bits` of a key to where keys with those bits start: a
    lookup reads one directory entry and one bucket (about _BUCKET keys, contiguous)
    instead of binary-searching the whole run, whose cache misses dominated queries.
    """

    __slots__ = ("_shift", "_starts", "_width", "keys", "slots")

    def __init__(self, keys: U64Array, slots: npt.NDArray[np.uint32]) -> None:
        self.keys = keys
        self.slots = slots
        bits = max(1, (len(keys) // _BUCKET).bit_length())
        self._shift = np.uint64(64 - bits)
        counts = np.bincount((keys >> self._shift).astype(np.int64), minlength=1 << bits)
        # int32 positions while they fit: the directory is then under 0.5 B per key.
        position = np.int32 if len(keys) < 2**31 else np.int64
        self._starts: npt.NDArray[Any] = np.zeros(len(counts) + 1, dtype=position)
        np.cumsum(counts, out=self._starts[1:])
        self._width = int(counts.max()) if len(counts) else 0  # the largest bucket

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def directory_bytes(self) -> int:
        return int(self._starts.nbytes)

    def find(self, query: U64Array) -> npt.NDArray[np.uint32]:
        """Slots of every key equal to one of `query`."""
        keys = self.keys
        if len(keys) == 0:
            return np.empty(0, dtype=np.uint32)
        if self._width > _MAX_BUCKET_SCAN:
            # Many equal keys (an item copied many times): binary search, equal ranges.
            low = np.searchsorted(keys, query, side="left")
            high = np.searchsorted(keys, query, side="right")
            hits = np.flatnonzero(high - low)
            return np.concatenate(
                [self.slots[low[i] : high[i]] for i in hits.tolist()] or [np.empty(0, np.uint32)]
            )
        bucket = (query >> self._shift).astype(np.int64)
        start, stop = self._starts[bucket], self._starts[bucket + 1]
        at = start[:, None] + np.arange(self._width)
        equal = (keys.take(at, mode="clip") == query[:, None]) & (at < stop[:, None])
        found: npt.NDArray[np.uint32] = self.slots[at[equal]]
        return found


def _make_run(band_keys: U64Array, first_slot: int, tag_bits: int) -> _Run:
    """A run from (bands, count) keys of the consecutive slots from `first_slot`."""
    bands, count = band_keys.shape
    keys = np.empty(bands * count, dtype=np.uint64)
    slots = np.empty(bands * count, dtype=np.uint32)
    index_bits = max(1, (count - 1).bit_length())
    for band in range(bands):
        # Every key of band i is below every key of band i+1 (the tag): sorting band by
        # band (cache-sized sorts) sorts the whole run.
        order = _sort_order(band_keys[band], tag_bits, index_bits)
        keys[band * count : (band + 1) * count] = band_keys[band][order]
        slots[band * count : (band + 1) * count] = order + first_slot
    return _Run(keys, slots)


def _sort_order(keys: U64Array, tag_bits: int, index_bits: int) -> npt.NDArray[np.int64]:
    """The order that sorts the keys of one band (same tag): an argsort.

    Faster than `argsort` (which pays a cache miss per comparison on large arrays): the
    hash bits, their low bits replaced by each key's index, sorted as plain integers
    (vectorised sort); the index is read back from the low bits. Keys that agree on all
    the hash bits kept can come out of order; checked, and argsort then."""
    if index_bits > 40:
        return np.argsort(keys)
    low = np.uint64((1 << index_bits) - 1)
    packed = (keys << np.uint64(tag_bits)) & ~low
    packed |= np.arange(len(keys), dtype=np.uint64)
    packed.sort()
    order = (packed & low).astype(np.int64)
    ordered = keys[order]
    if not bool(np.all(ordered[1:] >= ordered[:-1])):
        return np.argsort(keys)
    return order


def _merge_runs(a: _Run, b: _Run) -> _Run:
    """One sorted run of both (linear: `b`'s keys placed between `a`'s)."""
    where = np.searchsorted(a.keys, b.keys, side="right") + np.arange(len(b), dtype=np.int64)
    keys = np.empty(len(a) + len(b), dtype=np.uint64)
    slots = np.empty(len(a) + len(b), dtype=np.uint32)
    from_a = np.ones(len(keys), dtype=np.bool_)
    from_a[where] = False
    keys[where] = b.keys
    slots[where] = b.slots
    keys[from_a] = a.keys
    slots[from_a] = a.slots
    return _Run(keys, slots)


class SimilarityIndex:
    """Entry id -> fingerprint, with LSH over both signatures (see the module's doc)."""

    def __init__(self, signer: Signer) -> None:
        self.signer = signer
        self.num_perm = num_perm = signer.params.num_perm
        self._bands = _Bands(
            lsh_bands(TITLE_LSH_THRESHOLD, num_perm), lsh_bands(BODY_LSH_THRESHOLD, num_perm),
            num_perm,
        )  # fmt: skip
        self._slots = 0  # slots used, dead ones included
        self._live = 0
        self._capacity = 0
        # Per slot: the id (contiguous, for binary search), whether it is live, the rest
        # of the fingerprint in one record (one gather per query), the two signatures.
        self._ids = np.empty(0, dtype=np.int64)
        self._alive = np.empty(0, dtype=np.bool_)
        self._meta = np.empty(0, dtype=_META)
        self._title = np.empty((0, num_perm), dtype=np.uint32)
        self._body = np.empty((0, num_perm), dtype=np.uint32)
        self._runs: list[_Run] = []
        # Slots from _buffer_start on are in no run yet: their keys band by band (to make
        # the run), and key -> slot, or slots when several share it (for queries).
        self._buffer_start = 0
        self._buffer_keys = np.empty((self._bands.count, _BUFFER_ITEMS), dtype=np.uint64)
        self._buffer: dict[int, int | list[int]] = {}
        # Entry id -> slot: a binary search while ids were added in increasing order (the
        # database's order, and new entries' ids only grow), else this dict.
        self._slot_of: dict[int, int] | None = None
        self._max_id: int | None = None  # the largest id ever added

    # -- size and lookup -----------------------------------------------------------------

    def __len__(self) -> int:
        return self._live

    def __contains__(self, entry_id: int) -> bool:
        return self._slot(entry_id) is not None

    def _slot(self, entry_id: int) -> int | None:
        if self._slot_of is not None:
            return self._slot_of.get(entry_id)
        slot = int(np.searchsorted(self._ids[: self._slots], entry_id))
        if slot < self._slots and self._ids[slot] == entry_id and self._alive[slot]:
            return slot
        return None

    def footprint(self) -> dict[str, int]:
        """Bytes held for the slots in use, by part (capacity reserved but never written
        is not resident memory, so it is not counted)."""
        used = self._slots
        return {
            "signatures": used * (self._title.itemsize + self._body.itemsize) * self.num_perm,
            "band_runs": sum(run.keys.nbytes + run.slots.nbytes for run in self._runs),
            "run_directories": sum(run.directory_bytes for run in self._runs),
            "columns": used * (self._ids.itemsize + self._alive.itemsize + _META.itemsize),
            "buffer_keys": self._buffer_keys.nbytes,
            "slots": used,
            "live": self._live,
        }

    # -- adding --------------------------------------------------------------------------

    def add(self, fingerprint: Fingerprint) -> None:
        """Index one entry (a new version replaces an indexed one with the same id)."""
        entry_id = fingerprint.entry_id
        signatures = fingerprint.signatures
        if len(signatures.title) != self.num_perm or len(signatures.body) != self.num_perm:
            raise ValueError(f"entry {entry_id}: signatures of another size than {self.num_perm}")
        published = fingerprint.published
        record = (
            fingerprint.feed_id, fingerprint.event_id, to_microseconds(fingerprint.first_seen),
            NO_TIME if published is None else to_microseconds(published),
            signatures.title_words, signatures.body_shingles, signatures.headline_only,
        )  # fmt: skip
        after_all = self._max_id is None or entry_id > self._max_id
        if not after_all:
            self.remove(entry_id)
        slot = self._slots
        self._reserve(slot + 1)
        self._ids[slot] = entry_id
        self._alive[slot] = True
        self._meta[slot] = record
        self._title[slot] = signatures.title
        self._body[slot] = signatures.body
        self._slots += 1
        self._live += 1
        self._max_id = entry_id if after_all else self._max_id
        if self._slot_of is None and not after_all:
            self._slot_of = self._live_slots_by_id()
        elif self._slot_of is not None:
            self._slot_of[entry_id] = slot
        keys = self._bands.keys_of_one(self._title[slot], self._body[slot])
        self._buffer_keys[:, slot - self._buffer_start] = keys
        buffer = self._buffer
        listed = keys.tolist()
        shared = buffer.keys() & listed  # rare (copies share bands): set operations in C
        if shared:
            for key in shared:
                held = buffer[key]
                buffer[key] = [*held, slot] if isinstance(held, list) else [held, slot]
            buffer.update((key, slot) for key in listed if key not in shared)
        else:
            buffer.update(zip(listed, itertools.repeat(slot)))
        if self._slots - self._buffer_start == _BUFFER_ITEMS:
            self._flush_buffer()

    def add_all(self, fingerprints: Iterable[Fingerprint]) -> None:
        """Add many fingerprints: the bulk path (columns, then one sorted run)."""
        chunk: list[Fingerprint] = []
        parts: list[FingerprintColumns] = []
        for fingerprint in fingerprints:
            chunk.append(fingerprint)
            if len(chunk) == _HASH_CHUNK:
                # Compact columns as we go: the objects of a long iterator can be freed.
                parts.append(FingerprintColumns.from_fingerprints(chunk, self.num_perm))
                chunk = []
        if chunk or not parts:
            parts.append(FingerprintColumns.from_fingerprints(chunk, self.num_perm))
        self.add_columns(parts[0] if len(parts) == 1 else FingerprintColumns.concatenate(parts))

    def add_columns(self, columns: FingerprintColumns) -> None:
        """Add many entries given as columns; an id already indexed (or repeated in
        `columns`) is replaced by its last version, as `add` one by one would do.

        An empty index takes over the signature matrices of `columns` (no copy): they must
        not be changed afterwards."""
        count = len(columns)
        if count == 0:
            return
        for name, matrix in (("title", columns.title), ("body", columns.body)):
            if matrix.shape != (count, self.num_perm):
                raise ValueError(
                    f"{name} signatures of shape {matrix.shape}: expected ({count}, "
                    f"{self.num_perm})"
                )
        ids = np.asarray(columns.entry_ids, dtype=np.int64)
        increasing = bool(np.all(ids[1:] > ids[:-1]))
        if not increasing:
            # Keep each id's last row, in the order given.
            _, last = np.unique(ids[::-1], return_index=True)
            columns = _take(columns, np.sort(count - 1 - last))
            ids = columns.entry_ids
            count = len(ids)
        # The common case (a rebuild, a new entry): every id is above every id seen.
        after_all = self._max_id is None or int(ids[0]) > self._max_id
        if not (increasing and after_all):
            for entry_id in ids.tolist():
                self.remove(entry_id)
        # The buffered slots become a run first: the new ones follow them.
        self._flush_buffer()
        first = self._slots
        end = first + count
        if first == 0:
            self._adopt(columns)
        else:
            self._reserve(end)
        self._ids[first:end] = ids
        self._alive[first:end] = True
        meta = self._meta[first:end]
        meta["feed"] = columns.feed_ids
        meta["event"] = columns.event_ids
        meta["first_seen"] = columns.first_seen
        meta["published"] = columns.published
        meta["title_words"] = columns.title_words
        meta["body_shingles"] = columns.body_shingles
        meta["headline_only"] = columns.headline_only
        for mine, given in ((self._title, columns.title), (self._body, columns.body)):
            if mine.base is not given:  # not adopted: copied
                mine[first:end] = given
        self._slots = self._buffer_start = end
        self._live += count
        top = int(ids.max())
        self._max_id = top if self._max_id is None else max(self._max_id, top)
        if self._slot_of is None and not (increasing and after_all):
            self._slot_of = self._live_slots_by_id()
        elif self._slot_of is not None:
            self._slot_of.update(zip(ids.tolist(), range(first, end), strict=True))
        keys = self._bands.keys(self._title[first:end], self._body[first:end])
        self._push_run(_make_run(keys, first, self._bands.tag_bits))

    def _adopt(self, columns: FingerprintColumns) -> None:
        """Size the columns of an empty index to `columns`, taking over their signature
        matrices when they are C-contiguous uint32 (a rebuild's matrices are read for the
        index: copying them would cost time and, for a moment, twice their memory)."""
        count = len(columns)
        self._capacity = count
        self._ids = np.empty(count, dtype=np.int64)
        self._alive = np.empty(count, dtype=np.bool_)
        self._meta = np.empty(count, dtype=_META)
        for name in ("title", "body"):
            matrix = getattr(columns, name)
            if matrix.dtype == np.uint32 and matrix.flags.c_contiguous:
                # A view: the index holds the caller's matrix, and `base` says it was adopted.
                setattr(self, "_" + name, matrix[:])
            else:
                setattr(self, "_" + name, np.empty((count, self.num_perm), dtype=np.uint32))

    def _reserve(self, needed: int) -> None:
        """Grow every column to hold `needed` slots (doubling: amortised constant time).

        Untouched capacity is not resident memory: large numpy arrays are mmap'd pages
        that the OS backs only when written."""
        if needed <= self._capacity:
            return
        capacity = max(needed, 2 * self._capacity, 64)
        for name in _COLUMNS:
            old = getattr(self, name)
            new = np.empty((capacity, *old.shape[1:]), dtype=old.dtype)
            new[: self._slots] = old[: self._slots]
            setattr(self, name, new)
        self._capacity = capacity

    def _flush_buffer(self) -> None:
        """Index the buffered slots as one sorted run."""
        count = self._slots - self._buffer_start
        if count > 0:
            self._push_run(
                _make_run(self._buffer_keys[:, :count], self._buffer_start, self._bands.tag_bits)
            )
        self._buffer.clear()
        self._buffer_start = self._slots

    def _push_run(self, run: _Run) -> None:
        self._runs.append(run)
        while len(self._runs) >= 2 and len(self._runs[-2]) <= _RUN_RATIO * len(self._runs[-1]):
            last = self._runs.pop()
            self._runs[-1] = _merge_runs(self._runs[-1], last)

    # -- removing ------------------------------------------------------------------------

    def remove(self, entry_id: int) -> None:
        slot = self._slot(entry_id)
        if slot is None:
            return
        self._alive[slot] = False
        self._live -= 1
        if self._slot_of is not None:
            del self._slot_of[entry_id]
        self._compact_if_sparse()

    def move_to_event(self, entry_id: int, event_id: int) -> None:
        """Record that an indexed entry now belongs to another event."""
        slot = self._slot(entry_id)
        if slot is not None:
            self._meta["event"][slot] = event_id

    def drop_older_than(self, cutoff: datetime) -> int:
        """Trim the window; returns how many entries left the index."""
        used = self._slots
        first_seen = self._meta["first_seen"][:used]
        old = np.flatnonzero(self._alive[:used] & (first_seen < to_microseconds(cutoff)))
        if len(old) == 0:
            return 0
        self._alive[old] = False
        self._live -= len(old)
        if self._slot_of is not None:
            for entry_id in self._ids[old].tolist():
                del self._slot_of[entry_id]
        self._compact_if_sparse()
        return len(old)

    def _compact_if_sparse(self) -> None:
        dead = self._slots - self._live
        if dead >= _MIN_DEAD and dead * _DEAD_SHARE >= self._live:
            self.compact()

    def compact(self) -> None:
        """Drop dead slots from the columns and the runs (runs stay sorted: no re-sort)."""
        self._flush_buffer()
        alive = self._alive[: self._slots]
        new_slot = (np.cumsum(alive, dtype=np.int64) - 1).astype(np.uint32)
        runs: list[_Run] = []
        for run in self._runs:
            keep = alive[run.slots]
            runs.append(_Run(run.keys[keep], new_slot[run.slots[keep]]))
        self._runs = []
        for run in runs:
            if len(run):
                self._push_run(run)
        live = np.flatnonzero(alive)
        for name in _COLUMNS:
            setattr(self, name, getattr(self, name)[live])
        self._slots = self._capacity = self._buffer_start = len(live)
        ids = self._ids
        self._slot_of = None if bool(np.all(ids[1:] > ids[:-1])) else self._live_slots_by_id()

    def _live_slots_by_id(self) -> dict[int, int]:
        live = np.flatnonzero(self._alive[: self._slots])
        return dict(zip(self._ids[live].tolist(), live.tolist(), strict=True))

    # -- querying ------------------------------------------------------------------------

    def candidates(self, signatures: Signatures, limit: int | None = None) -> list[Fingerprint]:
        """Indexed entries whose title or body may be similar, in entry-id order.

        With a `limit`, at most that many: the ones sharing the most LSH bands with the
        query, half ranked by body bands and half by title bands (see `_best_slots`)."""
        if len(signatures.title) != self.num_perm or len(signatures.body) != self.num_perm:
            raise ValueError(f"signatures of another size than {self.num_perm}")
        query = self._bands.keys_of_one(signatures.title, signatures.body)
        hits = self._found(query)
        if len(hits) == 0:
            return []
        alive = self._alive
        if len(hits) <= _FEW_HITS:
            # Few candidates as a rule: Python sets and sorts cost less than numpy calls here.
            slots = sorted(slot for slot in set(hits.tolist()) if alive[slot])
            if limit is not None and len(slots) > limit:
                slots = sorted(self._best_slots(query, limit).tolist())
        elif limit is not None:
            slots = sorted(self._best_slots(query, limit).tolist())
        else:
            unique = np.unique(hits)
            slots = unique[alive[unique]].tolist()
        if self._slot_of is not None:  # ids out of slot order: sort by id
            slots.sort(key=self._ids.__getitem__)
        return self._fingerprints(np.array(slots, dtype=np.int64))

    def _found(self, query: U64Array) -> npt.NDArray[Any]:
        """The slots (dead ones included) of every indexed band key equal to one of `query`,
        once per equal key."""
        found: list[npt.NDArray[Any]] = []
        buffer = self._buffer
        if buffer:
            extra: list[int] = []
            for key in buffer.keys() & query.tolist():
                held = buffer[key]
                if isinstance(held, list):
                    extra.extend(held)
                else:
                    extra.append(held)
            if extra:
                found.append(np.array(extra, dtype=np.int64))
        for run in self._runs:
            hit = run.find(query)
            if len(hit):
                found.append(hit)
        if not found:
            return np.empty(0, dtype=np.int64)
        return np.concatenate(found)

    def _best_slots(self, query: U64Array, limit: int) -> npt.NDArray[np.int64]:
        """The live candidate slots sharing the most bands with `query`, at most `limit`.

        Half by body bands shared (a copy of the text), the rest by title bands shared (a
        repeated headline), ties by the other kind, then the oldest slot: one ranking would
        let a thousand items under one title crowd out a copy of the text under another."""
        title_count = self._bands.title_count
        title_hits = self._found(query[:title_count]).astype(np.int64)
        body_hits = self._found(query[title_count:]).astype(np.int64)
        slots, title, body = _hit_counts(title_hits, body_hits)
        live = self._alive[slots]
        slots, title, body = slots[live], title[live], body[live]
        if len(slots) <= limit:
            return slots
        # One int64 key per ranking, unique per slot: bands (6 bits each) above the slot.
        older_first = np.int64(_SLOT_BITS_MASK) - slots
        body_first = (((body << 6) | title) << _SLOT_BITS) | older_first
        title_first = (((title << 6) | body) << _SLOT_BITS) | older_first
        by_body = _largest(body_first, limit - limit // 2)
        title_first[by_body] = np.iinfo(np.int64).min  # already chosen
        by_title = _largest(title_first, limit // 2)
        chosen: npt.NDArray[np.int64] = slots[np.concatenate((by_body, by_title))]
        return chosen

    def _fingerprints(self, slots: npt.NDArray[np.int64]) -> list[Fingerprint]:
        # Fancy indexing copies: the returned signatures never alias the index's matrix.
        titles = self._title[slots]
        bodies = self._body[slots]
        rows = zip(self._ids[slots].tolist(), self._meta[slots].tolist(), strict=True)
        return [
            _fingerprint(entry, feed, event, first, published, titles[i], bodies[i], words,
                         shingles, headline)
            for i, (entry, (feed, event, first, published, words, shingles, headline))
            in enumerate(rows)
        ]  # fmt: skip


def _largest(keys: I64Array, count: int) -> npt.NDArray[np.intp]:
    """Positions of the `count` largest of distinct `keys` (fewer than len(keys)), any order."""
    if count <= 0:
        return np.empty(0, dtype=np.intp)
    return np.argpartition(keys, len(keys) - count)[len(keys) - count :]


def _hit_counts(title_hits: I64Array, body_hits: I64Array) -> tuple[I64Array, I64Array, I64Array]:
    """The distinct slots of both hit lists (sorted), and how often each is in either."""
    both = np.concatenate((title_hits, body_hits))
    if len(both) == 0:
        return both, both, both
    low = int(both.min())
    span = int(both.max()) - low + 1
    if span > _DENSE_HITS * len(both):
        # Few hits spread over many slots: sort them.
        slots, inverse = np.unique(both, return_inverse=True)
        title = np.bincount(inverse[: len(title_hits)], minlength=len(slots))
        body = np.bincount(inverse[len(title_hits) :], minlength=len(slots))
        return slots, title, body
    # Many hits over few slots (one headline repeated in a feed): count, no sort.
    title = np.bincount(title_hits - low, minlength=span)
    body = np.bincount(body_hits - low, minlength=span)
    present = np.flatnonzero(title + body)
    return present + low, title[present], body[present]


def _fingerprint(
    entry_id: int, feed_id: int, event_id: int, first_seen: int, published: int,
    title: npt.NDArray[np.uint32], body: npt.NDArray[np.uint32], title_words: int,
    body_shingles: int, headline_only: bool,
) -> Fingerprint:  # fmt: skip
    """A `Fingerprint` from one row of columns (times in microseconds, NO_TIME for none)."""
    return Fingerprint(
        entry_id=entry_id,
        feed_id=feed_id,
        event_id=event_id,
        first_seen=from_microseconds(first_seen),
        published=None if published == NO_TIME else from_microseconds(published),
        signatures=Signatures(
            title=title,
            body=body,
            title_words=title_words,
            body_shingles=body_shingles,
            headline_only=headline_only,
        ),
    )


def _take(columns: FingerprintColumns, rows: npt.NDArray[np.int64]) -> FingerprintColumns:
    return FingerprintColumns(
        entry_ids=columns.entry_ids[rows], feed_ids=columns.feed_ids[rows],
        event_ids=columns.event_ids[rows], first_seen=columns.first_seen[rows],
        published=columns.published[rows], title=columns.title[rows], body=columns.body[rows],
        title_words=columns.title_words[rows], body_shingles=columns.body_shingles[rows],
        headline_only=columns.headline_only[rows],
    )  # fmt: skip
