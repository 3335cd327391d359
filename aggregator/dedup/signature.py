"""Shingles and MinHash signatures of an entry.

Each entry gets two signatures:

- a *title* signature over character 5-grams of the folded title, because headlines are
  too short for word shingles (one edited word changes most word 3-grams of a headline);
- a *body* signature over the title and text: word 3-grams for texts of at least
  `MIN_WORDS_FOR_WORD_SHINGLES` words, character 5-grams below that (teasers).

The MinHash scheme is named explicitly: datasketch 2.0 changed the default, and
signatures made under different parameters must never be compared. `MinHashParams`
is stored in the database's meta table for that reason.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import xxhash
from datasketch import LeanMinHash, MinHash

from aggregator.dedup.text import tokens

# Below this many words a text is a headline or a teaser: word 3-grams of it are too few
# and too fragile, so character shingles are used instead.
MIN_WORDS_FOR_WORD_SHINGLES = 20
CHAR_NGRAM = 5
WORD_NGRAM = 3


@dataclass(frozen=True, slots=True)
class MinHashParams:
    """Everything that makes two signatures comparable."""

    num_perm: int = 128
    seed: int = 1
    scheme: str = "affine32"
    hashfunc: str = "xxh32"
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
    body_shingles: int
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
    if len(words) < params.min_words_for_word_shingles:
        return char_shingles(words, params.char_ngram)
    return word_shingles(words, params.word_ngram)


class Signer:
    """Computes signatures with one fixed set of parameters.

    Permutations are drawn once (drawing them per MinHash costs more than hashing a
    headline), and every signature starts from a copy of the same empty template.
    """

    def __init__(self, params: MinHashParams = DEFAULT_PARAMS) -> None:
        if params.hashfunc != "xxh32":
            raise ValueError(f"unsupported shingle hash {params.hashfunc!r}")
        self.params = params
        self._template = MinHash(
            num_perm=params.num_perm,
            seed=params.seed,
            scheme=params.scheme,
            hashfunc=xxhash.xxh32_intdigest,
        )

    def minhash(self, shingles: set[bytes]) -> np.ndarray:
        """The hash values of a MinHash over `shingles`."""
        m = self._template.copy()
        if shingles:
            m.update_batch(list(shingles))
        return np.asarray(m.hashvalues, dtype=np.uint32)

    def sign(self, title: str, text: str) -> Signatures:
        title_words = tokens(title)
        text_words = tokens(text)
        # Some feeds repeat the title as the description: that is still a headline only.
        headline_only = len(text_words) < 8 or text_words == title_words
        all_words = title_words if headline_only else title_words + text_words
        body = body_shingles(all_words, self.params)
        return Signatures(
            title=self.minhash(char_shingles(title_words, self.params.char_ngram)),
            body=self.minhash(body),
            title_words=len(title_words),
            body_shingles=len(body),
            headline_only=headline_only,
        )

    def lean(self, hashvalues: np.ndarray) -> LeanMinHash:
        """A LeanMinHash for the LSH index, tagged with our scheme."""
        return LeanMinHash(seed=self.params.seed, hashvalues=hashvalues, scheme=self.params.scheme)


def signature_from_bytes(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype="<u4").astype(np.uint32)


def estimated_jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Share of equal MinHash slots: an unbiased estimate of the Jaccard similarity."""
    return float(np.count_nonzero(a == b)) / len(a)
