"""How common each term is in ordinary language: the background against which a window's
bursts show (pure, but for reading wordfreq's word lists once per process).

Inverse document frequency over the window discounts the words many documents use. Inside
a 72-hour window, the documents that use a story's own words most are that story's: while
a story runs, "Bieber" was in 5% of the UCI headlines, and its IDF fell to that of an
ordinary word. Headlines of one story share little else, so the story came apart into
fragments (UCI B-cubed recall 0.586). A word that is rare in ordinary language but frequent
in the window is a story's word, not a common one; the background keeps its weight.

The background is wordfreq's small word lists (the words of each of its 42 languages
down to about one occurrence in a million), folded and cut to terms as the event level
cuts them. A term's frequency is the sum over the words that make it, in the language
where it is most common: no language needs to be configured or detected, and a word
common in any language counts as common.
"""

from __future__ import annotations

from collections import defaultdict

from aggregator.dedup.text import tokens

# Words rarer than this are left out: their IDF would lie above that of a term in one
# document of any window under about 100,000 headlines. Leaving them out (1e-5 against
# 1e-6) moved UCI B-cubed F1 by at most 0.002 and builds the table in a fifth of the time.
MIN_WORD_FREQUENCY = 1e-5


def term_frequencies(prefix_length: int) -> dict[str, float]:
    """Each term's frequency in ordinary language (a share of words): the sum over the words
    whose folded form starts with it, in the language where that sum is largest. About a
    second; callers keep what they need of it (`events` keeps two arrays of 1.4 MB)."""
    from wordfreq import available_languages, get_frequency_list  # only when needed

    most: dict[str, float] = {}
    for language in sorted(available_languages(wordlist="small")):
        language_sums: defaultdict[str, float] = defaultdict(float)
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
                    language_sums[folded[:prefix_length]] += frequency
        for term, frequency in language_sums.items():
            if frequency > most.get(term, 0.0):
                most[term] = frequency
    return most


def document_share(frequency: float, words_per_document: int) -> float:
    """The chance that a document of `words_per_document` words holds a word of this
    frequency at least once (words drawn independently: the same approximation IDF makes)."""
    return 1.0 - (1.0 - min(frequency, 1.0)) ** words_per_document
