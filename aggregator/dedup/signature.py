"""Shingles and MinHash signatures of an entry.

Each entry gets two signatures:

- a *title* signature over character 5-grams of the folded title, because headlines are
  too short for word shingles (one edited word changes most word 3-grams of a headline);
- a *body* signature over the title and text: word 3-grams for texts of at least
  `MIN_WORDS_FOR_WORD_SHINGLES` words, character 5-grams below that (teasers).

Shingles are never built as strings: each is hashed to 64 bits with numpy, from hashes of
its parts, over all the n-grams of a text at once (the string shingles, `char_shingles`
and `word_shingles`, are the definition, and what datasketch is given in the benchmark):

- a word n-gram from the xxh64 hashes of its words (each distinct word hashed once, kept
  in a bounded per-`Signer` cache: vocabularies repeat);
- a character n-gram from the Unicode code points of the words joined by single spaces;
- either way, the n parts are combined by Horner's rule with an odd 64-bit multiplier
  (mod 2^64) and finished with MurmurHash3's 64-bit finaliser (`_fmix64`), so that the
  high 32 bits are as good as those of a random hash. A text shorter than n gives one
  shingle, padded with a value that is no code point (characters) or no likely word hash.

The MinHash of a set of shingles is datasketch's scheme "affine32" applied to the high 32
bits of each distinct shingle hash, computed in numpy with the permutations of a
datasketch `MinHash` (a unit test holds it equal to datasketch's `update_batch`). One
Python call per shingle (building its bytes, then xxh32) was most of the time of a
signature; now Python touches each word once (a dict look-up) and each character never.

The MinHash scheme and the shingle hashing are named explicitly (`MinHashParams.scheme`,
`MinHashParams.hashfunc`): datasketch 2.0 changed the default scheme, and signatures made
under different parameters must never be compared. `MinHashParams` is stored in the
database's meta table for that reason; a database signed with other parameters asks for
`aggregator reindex`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import cached_property
from operator import itemgetter
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import xxhash

from aggregator.dedup.text import tokens

if TYPE_CHECKING:
    from datasketch import LeanMinHash

# Below this many words a text is a headline or a teaser: word 3-grams of it are too few
# and too fragile, so character shingles are used instead.
MIN_WORDS_FOR_WORD_SHINGLES = 20
CHAR_NGRAM = 5
WORD_NGRAM = 3
# The name of the shingle hashing described in the module docstring. It changes whenever
# the hash of a shingle changes, so that stored signatures are recomputed.
SHINGLE_HASH = "xxh64-tokens"
SCHEME = "affine32"

U64 = npt.NDArray[np.uint64]
U32 = npt.NDArray[np.uint32]

# Horner's multiplier (odd, so multiplying is a bijection mod 2^64): 2^64 / golden ratio.
_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)
# Pads a text shorter than n: above the last code point, and a word hash of 0 has a
# chance of 2^-64.
_CHAR_PAD = 0x110000
_WORD_PAD = 0
# Distinct words whose hashes are kept; the cache is emptied when it is full. 2^17 words
# cost about 16 MB (the words included); the 938 ECB+ and RPM2 articles hold 25,000.
_TOKEN_CACHE_SIZE = 1 << 17
# Shingles permuted at a time: a huge text must not take num_perm times its size at once.
_MAX_BATCH = 8192
# MurmurHash3 finalisers: 64-bit for our shingle hashes, 32-bit as datasketch's pre-mix.
_FMIX64 = (np.uint64(33), np.uint64(0xFF51AFD7ED558CCD), np.uint64(0xC4CEB9FE1A85EC53))
_FMIX32 = (np.uint32(0x85EBCA6B), np.uint32(0xC2B2AE35))
_SHIFT13, _SHIFT16, _SHIFT32 = np.uint32(13), np.uint32(16), np.uint64(32)


def is_headline_only(title_words: list[str], text_words: list[str]) -> bool:
    """An entry with no text beyond its title (folded words). Some feeds repeat the title
    as the description: that is still a headline only."""
    return len(text_words) < 8 or text_words == title_words


@dataclass(frozen=True, slots=True)
class MinHashParams:
    """Everything that makes two signatures comparable."""

    num_perm: int = 128
    seed: int = 1
    scheme: str = SCHEME
    hashfunc: str = SHINGLE_HASH
    char_ngram: int = CHAR_NGRAM
    word_ngram: int = WORD_NGRAM
    min_words_for_word_shingles: int = MIN_WORDS_FOR_WORD_SHINGLES

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> MinHashParams:
        return cls(**json.loads(text))


DEFAULT_PARAMS = MinHashParams()


@dataclass(frozen=True, slots=True)
class Signatures:
    """The two signatures of one entry and the sizes of the sets they summarise."""

    title: np.ndarray  # uint32 hash values
    body: np.ndarray
    title_words: int
    body_shingles: int  # distinct shingles of the body
    headline_only: bool  # no text beyond the title

    def title_bytes(self) -> bytes:
        return self.title.astype("<u4").tobytes()

    def body_bytes(self) -> bytes:
        return self.body.astype("<u4").tobytes()


def char_shingles(words: Sequence[str], n: int) -> set[bytes]:
    """Character n-grams of the words joined by single spaces (the whole text if shorter)."""
    text = " ".join(words)
    if len(text) <= n:
        return {text.encode()} if text else set()
    return {text[i : i + n].encode() for i in range(len(text) - n + 1)}


def word_shingles(words: Sequence[str], n: int) -> set[bytes]:
    """Word n-grams (the whole text as one shingle if shorter)."""
    if len(words) <= n:
        return {" ".join(words).encode()} if words else set()
    return {" ".join(words[i : i + n]).encode() for i in range(len(words) - n + 1)}


def body_shingles(words: Sequence[str], params: MinHashParams = DEFAULT_PARAMS) -> set[bytes]:
    """The shingles of a body as strings: what `Signer.body_hashes` hashes."""
    if len(words) < params.min_words_for_word_shingles:
        return char_shingles(words, params.char_ngram)
    return word_shingles(words, params.word_ngram)


def _fmix64(h: U64) -> U64:
    """MurmurHash3's 64-bit finaliser, in place: every output bit depends on every input
    bit, so the high 32 bits of a Horner sum (a linear form) hash like random bits."""
    shift, m1, m2 = _FMIX64
    h ^= h >> shift
    h *= m1
    h ^= h >> shift
    h *= m2
    h ^= h >> shift
    return h


def ngram_hashes(parts: U64, n: int, pad: int) -> U64:
    """64-bit hashes of all the n-grams of `parts` (one hash per position, so repeats
    included); a sequence shorter than n is one n-gram, padded with `pad`."""
    count = len(parts)
    if count == 0:
        return np.empty(0, dtype=np.uint64)
    if count < n:
        parts = np.concatenate([parts, np.full(n - count, pad, dtype=np.uint64)])
        count = n
    grams = count - n + 1
    h = parts[:grams].copy()
    for i in range(1, n):
        h *= _MULTIPLIER
        h += parts[i : i + grams]
    return _fmix64(h)


def char_ngram_hashes(words: Sequence[str], n: int) -> U64:
    """Hashes of the character n-grams of the words joined by single spaces."""
    text = " ".join(words)
    points = np.frombuffer(text.encode("utf-32-le"), dtype="<u4").astype(np.uint64)
    return ngram_hashes(points, n, _CHAR_PAD)


def premixed(values: U32) -> U32:
    """datasketch's "affine32" pre-mix of 32-bit input hashes: MurmurHash3's 32-bit
    finaliser (`datasketch.minhash._fmix`), in uint32 arithmetic."""
    m1, m2 = _FMIX32
    h = values ^ (values >> _SHIFT16)
    h *= m1
    h ^= h >> _SHIFT13
    h *= m2
    h ^= h >> _SHIFT16
    return h


def distinct(hashes: U64) -> U64:
    """The distinct values, sorted (`np.unique` costs ten times as much on small arrays)."""
    ordered = np.sort(hashes)
    if len(ordered) < 2:
        return ordered
    keep = np.empty(len(ordered), dtype=np.bool_)
    keep[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    return ordered[keep]


class _WordHashes(dict[str, bytes]):
    """Word -> its xxh64 hash as 8 bytes in native order (so that the hashes of a text
    join into a uint64 array), computed at the first sight of the word and emptied when
    full (`_TOKEN_CACHE_SIZE`)."""

    def __missing__(self, word: str) -> bytes:
        if len(self) >= _TOKEN_CACHE_SIZE:
            self.clear()
        value = xxhash.xxh64_intdigest(word.encode()).to_bytes(8, sys.byteorder)
        self[word] = value
        return value


class Signer:
    """Computes signatures with one fixed set of parameters.

    The permutations are drawn once by datasketch (drawing them per MinHash costs more
    than hashing a headline) and applied here in numpy; word hashes are cached.

    `permutations` gives them packed, and `Signer(params, permutations=...)` makes the
    same Signer from them without datasketch: the parse workers sign that way, because
    importing datasketch imports scipy (a second and about 100 MB of address space in a
    worker whose memory is limited)."""

    def __init__(
        self, params: MinHashParams = DEFAULT_PARAMS, *, permutations: bytes = b""
    ) -> None:
        if params.hashfunc != SHINGLE_HASH:
            raise ValueError(f"unsupported shingle hash {params.hashfunc!r}")
        if params.scheme != SCHEME:
            raise ValueError(f"unsupported MinHash scheme {params.scheme!r}")
        self.params = params
        count = params.num_perm
        if permutations:
            values = np.frombuffer(permutations, dtype="<u4").astype(np.uint32)
            if len(values) != 3 * count:
                raise ValueError(f"{len(values)} packed values for {count} permutations")
            a, b, empty = values[:count], values[count : 2 * count], values[2 * count :]
        else:
            from datasketch import MinHash  # only here: see the class docstring

            # Only its permutations and empty hash values are used: datasketch defines them.
            template = MinHash(num_perm=count, seed=params.seed, scheme=params.scheme)
            a = np.asarray(template.permutations[0], dtype=np.uint32)
            b = np.asarray(template.permutations[1], dtype=np.uint32)
            empty = np.asarray(template.hashvalues, dtype=np.uint32)
        self._a: U32 = a.reshape(-1, 1)  # a column
        self._b: U32 = b.reshape(-1, 1)
        self._empty: U32 = empty.copy()
        self._word_hashes = _WordHashes()

    @cached_property  # sent with every document the parse workers prepare
    def permutations(self) -> bytes:
        """The permutations (a, then b) and the empty hash values, as little-endian uint32:
        what `Signer(params, permutations=...)` needs."""
        return (
            np.concatenate([self._a.ravel(), self._b.ravel(), self._empty]).astype("<u4").tobytes()
        )

    def word_hashes(self, words: Sequence[str]) -> U64:
        """The xxh64 hash of each word, in order."""
        if not words:
            return np.empty(0, dtype=np.uint64)
        # One C call for all the look-ups and one join for the array: a list of ints
        # given to np.array took a third longer.
        found = itemgetter(*words)(self._word_hashes)
        return np.frombuffer(b"".join(found) if len(words) > 1 else found, dtype=np.uint64)

    def word_ngram_hashes(self, words: Sequence[str]) -> U64:
        """Hashes of the word n-grams of `words` (one per position)."""
        return ngram_hashes(self.word_hashes(words), self.params.word_ngram, _WORD_PAD)

    def minhash32(self, values: U32) -> U32:
        """The hash values of datasketch's `MinHash(num_perm, seed, scheme="affine32")`
        after `update_batch` with a hash function that gives `values`: per permutation
        (a, b), the minimum over the values of a * premixed(value) + b (mod 2^32)."""
        if len(values) == 0:
            return self._empty.copy()
        if len(values) > _MAX_BATCH:  # bounds the temporary array (4 MB at 128 permutations)
            parts = [values[i : i + _MAX_BATCH] for i in range(0, len(values), _MAX_BATCH)]
            merged: U32 = np.minimum.reduce([self.minhash32(part) for part in parts])
            return merged
        # One row per permutation, so that the minimum runs along contiguous memory.
        permuted = self._a * premixed(values)
        permuted += self._b
        result: U32 = permuted.min(axis=1)
        return result

    def signature(self, shingle_hashes: U64) -> U32:
        """The MinHash of a set of shingles, given their 64-bit hashes (repeats allowed)."""
        return self.minhash32((shingle_hashes >> _SHIFT32).astype(np.uint32))

    def body_hashes(self, words: Sequence[str]) -> U64:
        """The distinct shingle hashes of a body (sorted): word n-grams from enough words,
        character n-grams below that."""
        params = self.params
        if len(words) < params.min_words_for_word_shingles:
            hashes = char_ngram_hashes(words, params.char_ngram)
        else:
            hashes = self.word_ngram_hashes(words)
        return distinct(hashes)

    def body_signature(self, words: Sequence[str]) -> tuple[U32, int]:
        """The body signature of these words and its number of distinct shingles."""
        hashes = self.body_hashes(words)
        return self.signature(hashes), len(hashes)

    def sign(self, title: str, text: str) -> Signatures:
        title_words = tokens(title)
        text_words = tokens(text)
        headline_only = is_headline_only(title_words, text_words)
        title_hashes = char_ngram_hashes(title_words, self.params.char_ngram)
        title_signature = self.signature(title_hashes)
        if headline_only and len(title_words) < self.params.min_words_for_word_shingles:
            # The body is the title's own character shingles: no need to sign them twice.
            body, body_size = title_signature.copy(), len(distinct(title_hashes))
        else:
            all_words = title_words if headline_only else title_words + text_words
            body, body_size = self.body_signature(all_words)
        return Signatures(
            title=title_signature,
            body=body,
            title_words=len(title_words),
            body_shingles=body_size,
            headline_only=headline_only,
        )

    def lean(self, hashvalues: np.ndarray) -> LeanMinHash:
        """A LeanMinHash for datasketch's `MinHashLSH`, tagged with our scheme."""
        from datasketch import LeanMinHash

        return LeanMinHash(seed=self.params.seed, hashvalues=hashvalues, scheme=self.params.scheme)


def signature_from_bytes(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype="<u4").astype(np.uint32)


def estimated_jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Share of equal MinHash slots: an unbiased estimate of the Jaccard similarity."""
    return float(np.count_nonzero(a == b)) / len(a)
