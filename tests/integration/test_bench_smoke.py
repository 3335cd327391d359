"""The benchmark harness runs end to end on a toy corpus (no timings are checked here:
timings never go into tests; `make bench` measures them)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from bench import corpus, dedup, run


@pytest.mark.shared
def test_toy_corpus_has_copies_across_feeds(shared_data: Callable[[str], Path]) -> None:
    built = corpus.build(4, 5, data=shared_data(""))
    assert built.items == 20
    copies = [item for feed in built.feeds for item in feed if item.copy_of]
    assert len(copies) == 6  # 30% of 20
    feed_of = {item.guid: n for n, feed in enumerate(built.feeds) for item in feed}
    assert all(feed_of[c.copy_of] != feed_of[c.guid] for c in copies if c.copy_of)
    assert corpus.rss(0, built.feeds[0]).startswith(b"<?xml")


@pytest.mark.shared
def test_end_to_end_cold_then_warm(shared_data: Callable[[str], Path]) -> None:
    """Our pipeline stores every item cold, and the warm update is all 304s."""
    shared_data("")  # skips without the data
    result = run.end_to_end(3, 4)
    ours = result["ours"]
    assert ours["cold"]["new_items"] == 12, ours
    assert ours["warm"]["statuses"] == {"not_modified": 3}
    assert set(ours["cold"]["stages_s"]) >= {"fetch", "parse", "dedup", "store"}
    assert result["feedparser_alone"]["items"] == 12, result["feedparser_alone"]


def test_lsh_rates_run_on_a_tiny_window() -> None:
    rates = dedup.lsh_rates(50, queries=5)
    assert rates["window"] == 50


@pytest.mark.shared
def test_restart_reads_the_stored_window(shared_data: Callable[[str], Path]) -> None:
    """A start over stored items rebuilds one event per item, from vectors and from text."""
    shared_data("")
    result = dedup.restart_time(60)
    assert result["items"] == result["events"] == 60
    assert result["terms"] > 100
    assert "start_deriving_vectors_s" in result
