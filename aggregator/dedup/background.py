"""How common each term is in ordinary language: the background against which a window's
bursts show (pure: wordfreq's word lists in, a table out; `aggregator.word_frequencies`
reads it once per machine, in a child process, and caches it).

Inverse document frequency over the window discounts the words many documents use. Inside
a 72-hour window, the documents that use a story's own words most are that story's: while
a story runs, "Bieber" was in 5% of the UCI headlines, and its IDF fell to that of an
ordinary word. Headlines of one story share little else, so the story came apart into
fragments (UCI B-cubed recall 0.586). A word that is rare in ordinary language but frequent
in the window is a story's word, not a common one; the background keeps its weight.

The background is wordfreq's small word lists (the words of each of its 42 languages
down to one occurrence in 100,000 words, `MIN_WORD_FREQUENCY`), folded and cut to terms
as the event level cuts them. A term's frequency is the sum over the words that make it,
in the language where it is most common: no language needs to be configured or detected,
and a word common in any language counts as common.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from aggregator.dedup.text import tokens
from aggregator.dedup.vectors import HEADLINE_WORDS, Background

# Rarer words are left out (they count as rare as a word no list holds), which barely moves
# the groups and saves about a quarter of the build time.
MIN_WORD_FREQUENCY = 1e-5
# Names the cached table's recipe: bump it when `term_frequencies` changes what it returns
# (the prefix length and wordfreq's version are in the name already).
BACKGROUND_RECIPE = f"1-min{MIN_WORD_FREQUENCY:g}"


def term_frequencies(
    prefix_length: int, hash_terms: Callable[[list[str]], npt.NDArray[np.uint64]]
) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.float64]]:
    """Each term's frequency in ordinary language (a share of words), by term hash: the sum
    over the words whose folded form starts with the term, in the language where that sum
    is largest. Returns the hashes, ascending, and the frequencies. About 2.5 s; see
    `aggregator.word_frequencies` for where it runs."""
    from wordfreq import available_languages, get_frequency_list  # only when needed

    hash_parts: list[npt.NDArray[np.uint64]] = []
    frequency_parts: list[npt.NDArray[np.float64]] = []
    for language in sorted(available_languages(wordlist="small")):
        sums: defaultdict[str, float] = defaultdict(float)
        buckets = get_frequency_list(language, wordlist="small")
        # wordfreq keeps every list it read (about 5 MB a language, 200 MB for all): a
        # daemon would carry them for nothing.
        get_frequency_list.cache_clear()
        # Words by frequency, the most frequent first: bucket i holds the words of
        # frequency 10^(-i/100) (wordfreq's "centibels").
        for index, bucket in enumerate(buckets):
            frequency = 10.0 ** (-index / 100)
            if frequency < MIN_WORD_FREQUENCY:
                break
            for word in bucket:
                for folded in tokens(word):
                    sums[folded[:prefix_length]] += frequency
        hash_parts.append(hash_terms(list(sums)))
        frequency_parts.append(np.fromiter(sums.values(), dtype=np.float64, count=len(sums)))
    hashes = np.concatenate(hash_parts)
    frequencies = np.concatenate(frequency_parts)
    order = np.lexsort((-frequencies, hashes))  # by hash, the largest frequency first
    hashes, frequencies = hashes[order], frequencies[order]
    first = np.ones(len(hashes), dtype=np.bool_)
    first[1:] = hashes[1:] != hashes[:-1]
    return hashes[first], frequencies[first]


def document_shares(
    frequencies: npt.NDArray[np.float64], words_per_document: int
) -> npt.NDArray[np.float64]:
    """The chance that a document of `words_per_document` words holds a word of each
    frequency at least once (words drawn independently: the same approximation IDF makes):
    1 - (1 - f)^n, computed without rounding 1 - f for small f."""
    with np.errstate(divide="ignore"):  # log1p(-1) is -inf: a share of 1, as it should be
        shares: npt.NDArray[np.float64] = -np.expm1(
            words_per_document * np.log1p(-np.minimum(frequencies, 1.0))
        )
    return shares


Frequencies = tuple[npt.NDArray[np.uint64], npt.NDArray[np.float64]]


def background_table(frequencies: Frequencies) -> Background:
    """The background's term hashes, ascending, and each term's IDF in ordinary language:
    1 + ln(1 / share), the share of `HEADLINE_WORDS`-word headlines that hold it (the
    window's IDF is 1 + ln((documents + 1) / (frequency + 1)), the same scale)."""
    hashes, shares = frequencies
    return hashes, 1.0 - np.log(document_shares(shares, HEADLINE_WORDS))
