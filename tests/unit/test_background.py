"""Unit tests for the background: how common each term is in ordinary language."""

from __future__ import annotations

import pytest
from wordfreq import word_frequency

from aggregator.dedup.background import MIN_WORD_FREQUENCY, document_share, term_frequencies
from aggregator.dedup.events import PREFIX_LENGTH


def test_common_words_of_any_language_are_common() -> None:
    """Function words of English, French and German are among the most frequent terms,
    with no language named; a made-up word and a rare name are not in the table."""
    table = term_frequencies(PREFIX_LENGTH)
    assert table["the"] > 0.01
    assert table["les"] > 0.005 and table["der"] > 0.005 and table["que"] > 0.005
    assert "zqxjkv" not in table
    assert table.get("bieber", 0.0) < MIN_WORD_FREQUENCY * 10


def test_a_term_sums_the_words_it_stands_for() -> None:
    """Terms are folded 6-letter prefixes, as the event level cuts words: "presid" holds
    "president" and "presidential" (and the accented French "présidentielle")."""
    table = term_frequencies(PREFIX_LENGTH)
    english = word_frequency("president", "en") + word_frequency("presidential", "en")
    assert table["presid"] >= english
    assert "présid" not in table  # folded: accents are gone


def test_document_share() -> None:
    """The chance that a document of n words holds a word: its frequency for one word,
    about n times it for a rare word, never more than 1."""
    assert document_share(0.01, 1) == pytest.approx(0.01)
    assert document_share(1e-5, 12) == pytest.approx(12e-5, rel=1e-3)
    assert document_share(0.3, 12) < 12 * 0.3
    assert document_share(2.0, 12) == 1.0
