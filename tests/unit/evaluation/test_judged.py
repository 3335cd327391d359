"""Judged real-feed pairs: the file's checks and the figures of the decisions (pure)."""

from __future__ import annotations

from pathlib import Path

import pytest

from aggregator.errors import JudgedSetError
from aggregator.evaluation.judged import (
    COLUMNS,
    Placed,
    Verdict,
    decide,
    load_pairs,
)

HEADER = ",".join(COLUMNS)


def _write(tmp_path: Path, *rows: str) -> Path:
    path = tmp_path / "pairs.csv"
    path.write_text("\n".join((HEADER, *rows)) + "\n", encoding="utf-8")
    return path


def test_a_valid_file_is_read(tmp_path: Path) -> None:
    path = _write(tmp_path, 'f/a.xml,g1,f/b.xml,g2,same_event,wire,"one launch, two outlets"')
    (pair,) = load_pairs(path)
    assert (pair.line, pair.verdict, pair.reason) == (
        2,
        Verdict.SAME_EVENT,
        "one launch, two outlets",
    )
    assert pair.items == ("f/a.xml#g1", "f/b.xml#g2")


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (["f/a.xml,g1,f/b.xml,g2,maybe,wire,x"], "not one of"),
        (["f/a.xml,,f/b.xml,g2,different,wire,x"], "empty"),
        (["f/a.xml,g1,f/a.xml,g1,different,wire,x"], "itself"),
        (["f/a.xml,g1,f/b.xml,g2,different,x,x", "f/b.xml,g2,f/a.xml,g1,different,x,x"], "twice"),
    ],
)
def test_malformed_rows_are_refused_with_their_line(
    tmp_path: Path, rows: list[str], message: str
) -> None:
    with pytest.raises(JudgedSetError, match=message) as raised:
        load_pairs(_write(tmp_path, *rows))
    assert f":{1 + len(rows)}:" in str(raised.value)


def test_a_wrong_header_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "pairs.csv"
    path.write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(JudgedSetError, match="header"):
        load_pairs(path)


def test_figures_count_together_and_apart_by_verdict(tmp_path: Path) -> None:
    """Two same-event pairs (one together, one apart in one story), one unrelated pair
    joined, one same-story pair apart, one pair whose item was never placed (counted, not
    scored)."""
    path = _write(
        tmp_path,
        "f/a.xml,1,f/b.xml,2,same_event,wire,x",
        "f/a.xml,3,f/b.xml,4,same_event,wire,x",
        "f/a.xml,5,f/a.xml,6,different,template,x",
        "f/a.xml,7,f/b.xml,8,same_story,topic,x",
        "f/a.xml,9,f/b.xml,missing,different,topic,x",
    )
    events = {"1": 10, "2": 10, "3": 11, "4": 12, "5": 13, "6": 13, "7": 14, "8": 15, "9": 16}
    # Events 11 and 12 are one story (a same-event pair in one story but apart).
    stories = {11: 11, 12: 11}
    placed = {
        (feed, item): Placed(int(item), event, stories.get(event, event))
        for item, event in events.items() for feed in ("f/a.xml", "f/b.xml")
    }  # fmt: skip
    result = decide(load_pairs(path), placed)
    figures = result.figures()
    assert figures["event_p"] == 0.5  # two joined: one right, one unrelated
    assert figures["same_together"] == 0.5
    assert figures["different_apart"] == 0.5  # the same-story pair apart, the template joined
    assert figures["story_together"] == 0.0
    # In one story: 1-2 and 5-6 (one event each) and 3-4; 5-6 is unrelated.
    assert figures["story_p"] == 2 / 3
    assert figures["unrelated_apart"] == 0.0  # the only one resolved is joined
    assert result.counts()["unresolved"] == 1
    assert [d.pair.line for d in result.misses()] == [3, 4]
    assert "not found (line 6)" in result.report()
