"""Judged real-feed pairs, placed by the daemon's code path over the real feed files.

Skipped when `../shared` is absent. The shipped set is checked for what it promises:
every row names an item that exists, and no row carries publisher text.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from pathlib import Path

import feedparser
import pytest

from aggregator.evaluation import judged

FR = "feeds-fr-2025-02-10/feeds"


def _items(root: Path, folder: str) -> dict[str, list[tuple[str, str]]]:
    """identifier -> [(feed file, title)] for every item of the folder's feeds."""
    found: dict[str, list[tuple[str, str]]] = {}
    for path in sorted((root / folder).iterdir()):
        if path.suffix.lower() not in judged.FEED_SUFFIXES:
            continue
        for entry in feedparser.parse(path.read_bytes()).entries:
            identifier = entry.get("id") or entry.get("link")
            if identifier:
                relative = path.relative_to(root).as_posix()
                found.setdefault(identifier, []).append((relative, entry.get("title", "")))
    return found


def test_one_item_in_two_sections_is_one_event_and_unrelated_items_are_not(
    shared_data: Callable[[str], Path], tmp_path: Path
) -> None:
    """Pairs built from the files: the same link in two section feeds is together (an
    exact copy), two items of different outlets and subjects apart, and an identifier
    that is not in its feed is reported as not found, not scored."""
    root = shared_data("")
    items = _items(root, FR)
    shared = [(i, feeds) for i, feeds in items.items() if len({f for f, _ in feeds}) > 1][:3]
    singles = [(i, feeds[0][0]) for i, feeds in items.items() if len(feeds) == 1]
    liberation = next(s for s in singles if "liberation" in s[1])
    figaro_golf = next(s for s in singles if "figaro-golf" in s[1])
    path = tmp_path / "pairs.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(judged.COLUMNS)
        for identifier, feeds in shared:
            writer.writerow([feeds[0][0], identifier, feeds[1][0], identifier, "same_event",
                             "sections", "one item in two sections"])  # fmt: skip
        writer.writerow([liberation[1], liberation[0], figaro_golf[1], figaro_golf[0],
                         "different", "topic", "different outlets and subjects"])  # fmt: skip
        writer.writerow([liberation[1], "urn:not-in-this-feed", figaro_golf[1], figaro_golf[0],
                         "different", "topic", "an identifier that is not there"])  # fmt: skip
    result = judged.evaluate(root, judged.load_pairs(path))
    assert [d.together for d in result.decisions] == [True, True, True, False, None]
    assert result.figures()["same_together"] == 1.0
    assert result.figures()["different_apart"] == 1.0
    assert len(result.unresolved) == 1


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.casefold())


def test_the_shipped_set_names_real_items_and_quotes_no_publisher(
    shared_data: Callable[[str], Path],
) -> None:
    """Every judged item exists in its feed file, and no reason repeats five consecutive
    words of any title of the feeds it names (identifiers and verdicts only)."""
    root = shared_data("")
    pairs = judged.load_pairs(judged.SHIPPED_PAIRS)
    assert len(pairs) >= 400
    titles: set[tuple[str, ...]] = set()
    known: set[tuple[str, str]] = set()
    for folder in sorted(judged.folders_of(pairs)):
        for identifier, feeds in _items(root, folder).items():
            for feed, title in feeds:
                known.add((feed, identifier))
                words = _words(title)
                titles.update(tuple(words[i : i + 5]) for i in range(len(words) - 4))
    for pair in pairs:
        assert (pair.feed_a, pair.item_a) in known, f"line {pair.line}: item a not found"
        assert (pair.feed_b, pair.item_b) in known, f"line {pair.line}: item b not found"
        words = _words(pair.reason)
        quoted = [
            words[i : i + 5] for i in range(len(words) - 4) if tuple(words[i : i + 5]) in titles
        ]
        assert not quoted, f"line {pair.line}: the reason quotes a title"


@pytest.mark.parametrize("verdict", list(judged.Verdict))
def test_the_shipped_set_has_every_verdict(verdict: judged.Verdict) -> None:
    """The set judges each kind of pair (no one-sided set that a constant answer passes)."""
    pairs = judged.load_pairs(judged.SHIPPED_PAIRS)
    assert sum(1 for pair in pairs if pair.verdict is verdict) >= 30
