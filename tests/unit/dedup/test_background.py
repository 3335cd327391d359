"""Unit tests for the background: how common each term is in ordinary language."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import pytest
from wordfreq import word_frequency

from aggregator.dedup.background import (
    MIN_WORD_FREQUENCY,
    Frequencies,
    document_shares,
    term_frequencies,
)
from aggregator.dedup.vectors import PREFIX_LENGTH, term_hash, term_hashes
from aggregator.word_frequencies import cache_path, read_term_frequencies


@pytest.fixture(scope="module")
def table() -> Frequencies:
    """The table as the daemon reads it: from the child process."""
    return read_term_frequencies(PREFIX_LENGTH)


def frequency(table: Frequencies, term: str) -> float:
    hashes, frequencies = table
    at = int(np.searchsorted(hashes, np.uint64(term_hash(term))))
    found = at < len(hashes) and int(hashes[at]) == term_hash(term)
    return float(frequencies[at]) if found else 0.0


def test_common_words_of_any_language_are_common(table: Frequencies) -> None:
    """Function words of English, French and German are among the most frequent terms,
    with no language named; a made-up word and a rare name are not in the table."""
    assert frequency(table, "the") > 0.01
    assert min(frequency(table, word) for word in ("les", "der", "que")) > 0.005
    assert frequency(table, "zqxjkv") == 0.0
    assert frequency(table, "bieber") < MIN_WORD_FREQUENCY * 10
    hashes = table[0]
    assert len(hashes) > 100_000 and bool(np.all(hashes[1:] > hashes[:-1]))


def test_a_term_sums_the_words_it_stands_for(table: Frequencies) -> None:
    """Terms are folded 6-letter prefixes, as the event level cuts words: "presid" holds
    "president" and "presidential" (and the accented French "présidentielle")."""
    english = word_frequency("president", "en") + word_frequency("presidential", "en")
    assert frequency(table, "presid") >= english
    assert frequency(table, "présid") == 0.0  # folded: accents are gone


def test_the_child_process_reads_what_the_process_itself_would(table: Frequencies) -> None:
    """The daemon reads the table from a child process (its memory is then freed with it);
    the result is the table computed in place."""
    hashes, frequencies = term_frequencies(PREFIX_LENGTH, lambda t: term_hashes(t, len(t)))
    assert np.array_equal(table[0], hashes) and np.array_equal(table[1], frequencies)


def test_the_table_is_cached_between_processes(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, table: Frequencies
) -> None:
    """The first process builds the table and writes it to the user's cache directory;
    the next reads it back (the same arrays) and starts no child; a damaged file is
    built again."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    path = cache_path(PREFIX_LENGTH)
    assert path is not None and path.parent.parent == tmp_path and not path.exists()
    built = read_term_frequencies(PREFIX_LENGTH)
    assert path.is_file()
    assert np.array_equal(built[0], table[0]) and np.array_equal(built[1], table[1])
    monkeypatch.setattr(sys, "executable", "/nonexistent/python")  # no child can start
    again = read_term_frequencies(PREFIX_LENGTH)
    assert np.array_equal(again[0], table[0]) and np.array_equal(again[1], table[1])
    path.write_bytes(b"not an npz file")
    monkeypatch.undo()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    rebuilt = read_term_frequencies(PREFIX_LENGTH)
    assert np.array_equal(rebuilt[0], table[0])
    assert np.array_equal(np.load(path)["hashes"], table[0])


def test_a_cache_that_cannot_be_written_still_gives_the_table(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, table: Frequencies
) -> None:
    """Where no cache directory can be made (its parent is a file), the child sends the
    table on its stdout instead, and the next process builds it again."""
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    hashes, frequencies = read_term_frequencies(PREFIX_LENGTH)
    assert np.array_equal(hashes, table[0]) and np.array_equal(frequencies, table[1])
    assert hashes.dtype == np.uint64 and frequencies.dtype == np.float64


def test_without_word_lists_headlines_fall_back_to_the_window(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    """A child that cannot start gives an empty background and a warning, not a crash."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # nothing cached there
    monkeypatch.setattr(sys, "executable", "/nonexistent/python")
    with caplog.at_level(logging.WARNING, logger="aggregator.word_frequencies"):
        hashes, frequencies = read_term_frequencies(PREFIX_LENGTH)
    assert len(hashes) == len(frequencies) == 0
    assert "word frequencies unavailable" in caplog.text


def test_document_shares() -> None:
    """The chance that a document of n words holds a word: its frequency for one word,
    about n times it for a rare word, 1 - (1 - f)^n in general, never more than 1."""
    one, rare, common, over = document_shares(np.array([0.01, 1e-5, 0.3, 2.0]), 12)
    assert document_shares(np.array([0.01]), 1)[0] == pytest.approx(0.01)
    assert rare == pytest.approx(12e-5, rel=1e-3)
    assert common == pytest.approx(1 - 0.7**12) and one == pytest.approx(1 - 0.99**12)
    assert over == 1.0
