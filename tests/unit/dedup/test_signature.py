"""Signatures are computed in numpy from hashed shingles; datasketch stays the definition.

- The permutations are datasketch's: for the same 32-bit input hashes, `Signer.minhash32`
  gives exactly the hash values of `MinHash(scheme="affine32").update_batch`.
- The shingles are the string shingles of `char_shingles` / `word_shingles`: each
  shingle's hash depends on that shingle alone (not on its neighbours or position), and
  distinct shingles get distinct hashes, so a signature is datasketch's MinHash of the
  string shingles under the hash function "our hash of this shingle".
- The stored parameters name the new hashing, so that a database signed before asks for
  `aggregator reindex`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from datasketch import MinHash
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.dedup import signature
from aggregator.dedup.signature import (
    DEFAULT_PARAMS,
    MIN_WORDS_FOR_WORD_SHINGLES,
    MinHashParams,
    Signer,
    body_shingles,
    char_ngram_hashes,
    char_shingles,
    distinct,
    word_shingles,
)
from aggregator.dedup.text import tokens
from aggregator.errors import StoreError
from aggregator.store import open_store

ARTICLE = (
    "Le ministre a rencontré les responsables de la capitale au sujet des obus et des "
    "roquettes, tandis que les analystes ne s'accordaient pas sur la suite des événements "
    "dans la région. Les analystes, eux, attendent la suite."
)
WORDS = st.lists(st.sampled_from(["a", "b", "é", "the", "l", "日本", "x_1", "ab"]), max_size=30)


def identity(value: int) -> int:
    return value


def datasketch_minhash(params: MinHashParams, values: list[int]) -> np.ndarray:
    m = MinHash(num_perm=params.num_perm, seed=params.seed, scheme="affine32", hashfunc=identity)
    m.update_batch(values)
    return np.asarray(m.hashvalues)


@pytest.mark.parametrize("params", [DEFAULT_PARAMS, MinHashParams(num_perm=64, seed=7)])
@pytest.mark.parametrize("size", [0, 1, 2, 57, 600, 20_000])  # 20,000: in batches
def test_minhash32_is_datasketch_affine32(params: MinHashParams, size: int) -> None:
    """Same input hashes, same hash values as datasketch, bit for bit (extremes and
    repeated values included)."""
    rng = np.random.default_rng(size)
    values = rng.integers(0, 2**32, size=size, dtype=np.uint32)
    if size > 2:
        values[:3] = [0, 2**32 - 1, values[-1]]
    ours = Signer(params).minhash32(values)
    assert ours.dtype == np.uint32
    assert ours.tolist() == datasketch_minhash(params, values.tolist()).tolist()


def test_signature_of_64_bit_hashes_uses_their_high_half() -> None:
    """The input of the permutations is the high 32 bits of each 64-bit shingle hash."""
    hashes = np.random.default_rng(3).integers(0, 2**64, size=300, dtype=np.uint64)
    expected = datasketch_minhash(DEFAULT_PARAMS, [int(h) >> 32 for h in hashes])
    assert Signer().signature(hashes).tolist() == expected.tolist()


def char_shingle_hash(shingle: bytes) -> int:
    """Our 64-bit hash of one character shingle, hashed on its own."""
    (value,) = char_ngram_hashes([shingle.decode()], DEFAULT_PARAMS.char_ngram)
    return int(value)


def word_shingle_hash(signer: Signer, shingle: bytes) -> int:
    """Our 64-bit hash of one word shingle, hashed on its own (words hold no spaces)."""
    words = shingle.decode().split(" ")
    (value,) = signer.word_ngram_hashes(words)
    return int(value)


@settings(max_examples=300, derandomize=True)
@given(WORDS)
def test_char_shingle_hashes_are_the_hashes_of_the_string_shingles(words: list[str]) -> None:
    shingles = char_shingles(words, DEFAULT_PARAMS.char_ngram)
    alone = {char_shingle_hash(s) for s in shingles}
    in_context = distinct(char_ngram_hashes(words, DEFAULT_PARAMS.char_ngram))
    assert len(alone) == len(shingles)  # distinct shingles, distinct hashes
    assert set(in_context.tolist()) == alone  # a hash does not depend on the neighbours


@settings(max_examples=300, derandomize=True)
@given(WORDS)
def test_word_shingle_hashes_are_the_hashes_of_the_string_shingles(words: list[str]) -> None:
    signer = Signer()
    shingles = word_shingles(words, DEFAULT_PARAMS.word_ngram)
    alone = {word_shingle_hash(signer, s) for s in shingles}
    assert len(alone) == len(shingles)
    assert set(distinct(signer.word_ngram_hashes(words)).tolist()) == alone


def test_near_identical_shingles_get_distinct_32_bit_inputs() -> None:
    """Only the high 32 bits of a shingle hash reach the permutations: shingles that
    differ in their last character only (Horner sums a few units apart) must differ there
    too, which the finaliser ensures."""
    words = [f"shell{c}" for c in "0123456789"] + [f"{c}rock" for c in "abcdefghij"]
    hashes = distinct(char_ngram_hashes(words, DEFAULT_PARAMS.char_ngram))
    assert len(hashes) == len(char_shingles(words, DEFAULT_PARAMS.char_ngram))
    assert len(set((hashes >> np.uint64(32)).tolist())) == len(hashes)


@pytest.mark.parametrize(
    ("title", "text"),
    [
        ("Russie : Poutine rencontre Kim", ""),  # headline only: character shingles
        ("Live: live, live updates", ""),  # repeated shingles, counted once
        ("Russie : Poutine rencontre Kim", "Russie : Poutine rencontre Kim"),  # repeated
        ("Poutine et Kim", "Le ministre a rencontré les responsables de la capitale hier"),
        ("Poutine et Kim", ARTICLE),  # word shingles
        ("Kim", "a"),  # one short word each: a single shingle
        ("", ""),  # nothing: the empty signature
    ],
)
def test_sign_is_datasketch_over_the_string_shingles(title: str, text: str) -> None:
    """End to end: `sign` gives what datasketch gives when fed the string shingles of the
    definition with our per-shingle hash, and counts the distinct body shingles."""
    signer = Signer()
    signatures = signer.sign(title, text)
    title_words, text_words = tokens(title), tokens(text)
    title_shingles = char_shingles(title_words, DEFAULT_PARAMS.char_ngram)
    expected_title = datasketch_minhash(
        DEFAULT_PARAMS, [char_shingle_hash(s) >> 32 for s in title_shingles]
    )
    assert signatures.title.tolist() == expected_title.tolist()

    all_words = title_words if signatures.headline_only else title_words + text_words
    body = body_shingles(all_words, DEFAULT_PARAMS)
    if len(all_words) < MIN_WORDS_FOR_WORD_SHINGLES:
        body_hashes = [char_shingle_hash(s) >> 32 for s in body]
    else:
        body_hashes = [word_shingle_hash(signer, s) >> 32 for s in body]
    assert signatures.body.tolist() == datasketch_minhash(DEFAULT_PARAMS, body_hashes).tolist()
    assert signatures.body_shingles == len(body)
    assert signatures.title_words == len(title_words)


def test_word_hash_cache_is_bounded_and_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    words = tokens(ARTICLE)
    expected = Signer().word_hashes(words).tolist()
    monkeypatch.setattr(signature, "_TOKEN_CACHE_SIZE", 5)
    signer = Signer()
    assert signer.word_hashes(words).tolist() == expected
    assert signer.word_hashes(words).tolist() == expected  # from the cache, partly
    assert len(signer._word_hashes) <= 5


def test_a_database_signed_with_the_old_hash_asks_for_reindex(tmp_path: Path) -> None:
    """Signatures of xxh32-hashed string shingles differ from ours: never compared."""
    assert DEFAULT_PARAMS.hashfunc == "xxh64-tokens"
    with pytest.raises(ValueError, match="unsupported shingle hash"):
        Signer(MinHashParams(hashfunc="xxh32"))
    store = open_store(tmp_path / "old.db")
    try:
        store.set_dedup_params(MinHashParams(hashfunc="xxh32"))
        with pytest.raises(StoreError, match="reindex"):
            store.check_dedup_params(DEFAULT_PARAMS)
    finally:
        store.close()
