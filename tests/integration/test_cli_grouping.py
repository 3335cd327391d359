"""The grouping commands as real processes: explain, events merge/split, stats, reindex, eval."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import MAISON_BLANCHE, REPO


def aggregator(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aggregator", *args], cwd=REPO, capture_output=True, text=True,
        timeout=300, env={**os.environ, "PYTHONUTF8": "1"},
    )  # fmt: skip


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "seed.db"
    assert aggregator("update", "--all", "--db", str(path)).returncode == 0
    return path


def events(db: Path) -> list[dict[str, object]]:
    result = aggregator("digest", "--db", str(db), "--format", "json")
    return list(json.loads(result.stdout)["events"])


def event_with(db: Path, title: str) -> dict[str, object]:
    return next(e for e in events(db) if e["title"] == title)


def test_explain_names_levels_similarity_and_reason(db: Path) -> None:
    """`explain` says how each member joined, with what similarity, and why one is canonical."""
    event = event_with(db, MAISON_BLANCHE)
    result = aggregator("explain", str(event["event_id"]), "--db", str(db))
    assert result.returncode == 0, result.stderr
    assert "2 members" in result.stdout
    assert "near-duplicate copy (MinHash), similarity 1.00" in result.stdout
    assert "same_headline" in result.stdout
    assert "because longest" in result.stdout
    assert "Shared terms: " in result.stdout and "moscou" in result.stdout


def test_split_then_merge_by_hand(db: Path) -> None:
    """Split moves an entry to its own event; merge puts it back; both are recorded."""
    event = event_with(db, MAISON_BLANCHE)
    entry = event["also_reported_by"][0]["entry_id"]  # type: ignore[index]
    split = aggregator("events", "split", str(event["event_id"]), str(entry), "--db", str(db))
    assert split.returncode == 0, split.stderr
    assert len(events(db)) == 7
    new_event = int(split.stdout.split()[-1])
    explained = aggregator("explain", str(event["event_id"]), "--db", str(db)).stdout
    assert f"Kept apart by hand from events: {new_event}" in explained
    merge = aggregator("events", "merge", str(event["event_id"]), str(new_event), "--db", str(db))
    assert merge.returncode == 0, merge.stderr
    assert len(events(db)) == 6
    assert "merged by hand" in aggregator("explain", str(event["event_id"]), "--db", str(db)).stdout


def test_split_is_respected_by_later_updates(db: Path) -> None:
    """After a split, re-reading the feeds does not put the entry back."""
    event = event_with(db, MAISON_BLANCHE)
    entry = event["also_reported_by"][0]["entry_id"]  # type: ignore[index]
    aggregator("events", "split", str(event["event_id"]), str(entry), "--db", str(db))
    update = aggregator("update", "--all", "--db", str(db))
    assert update.returncode == 0
    assert len(events(db)) == 7


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["events", "merge", "1", "1"], "cannot be merged with itself"),
        (["events", "merge", "1", "999"], "no event 999"),
        (["events", "split", "1", "999"], "no entry 999"),
        (["events", "split", "2", "1"], "not in event 2"),
        (["explain", "999"], "no event 999"),
    ],
)
def test_bad_corrections_are_usage_errors(db: Path, args: list[str], message: str) -> None:
    """Impossible corrections exit 2 with one line and change nothing."""
    before = events(db)
    result = aggregator(*args, "--db", str(db))
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert events(db) == before


def test_stats_overlap(db: Path) -> None:
    """`stats overlap` lists each feed with its share of items carried elsewhere."""
    result = aggregator("stats", "overlap", "--db", str(db))
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["FEED", "ITEMS", "ALSO", "ELSEWHERE", "SHARE"]
    assert any(line.startswith("Seed 003") and " 6 " in line for line in lines)


def test_reindex_keeps_groups_and_records_parameters(db: Path) -> None:
    """`reindex` re-signs every entry; the grouping and a later update are unchanged."""
    before = events(db)
    result = aggregator("reindex", "--db", str(db))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("7 entries re-signed")
    assert events(db) == before
    assert aggregator("update", "--all", "--db", str(db)).returncode == 0
    assert len(events(db)) == 6


def test_eval_prints_scores(shared_data: Callable[[str], Path]) -> None:
    """`eval` replays a data set and prints pairwise and B-cubed scores (JSON here)."""
    path = shared_data("rpm2-french-news-clusters")
    result = aggregator("eval", "rpm2", str(path), "--limit", "60", "--format", "json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["items"] == 60
    assert 0.0 < document["bcubed"]["precision"] <= 1.0
    assert document["groups"] >= document["labels"]


def test_eval_missing_folder_is_a_usage_error(tmp_path: Path) -> None:
    """A folder that does not exist is exit 2."""
    result = aggregator("eval", "uci", str(tmp_path / "nope"))
    assert result.returncode == 2 and "no such folder" in result.stderr


def test_eval_folds_reports_each_held_out_fold_and_writes_the_report(
    shared_data: Callable[[str], Path], tmp_path: Path
) -> None:
    """`eval --folds 3` scores three held-out folds of whole themes, with the mean and the
    worst fold, and `--report` writes the same figures as Markdown and JSON."""
    path = shared_data("rpm2-french-news-clusters")
    result = aggregator(
        "eval", "rpm2", str(path), "--folds", "3", "--format", "json", "--report", str(tmp_path)
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    folds = document["per_fold"]
    assert [fold["fold"] for fold in folds] == [0, 1, 2]
    assert sum(fold["items"] for fold in folds) == 400
    mean = sum(fold["figures"]["bcubed_p"] for fold in folds) / 3
    assert document["mean"]["bcubed_p"] == pytest.approx(mean)
    assert document["worst"]["bcubed_f1"] == min(f["figures"]["bcubed_f1"] for f in folds)
    assert json.loads((tmp_path / "rpm2-folds.json").read_text()) == document
    assert "--folds 3" in (tmp_path / "rpm2-folds.md").read_text()


def test_eval_folds_need_stories(shared_data: Callable[[str], Path]) -> None:
    """Syndication has no stories to split by, and one fold is no held-out fold: exit 2."""
    root = shared_data("")
    assert aggregator("eval", "syndication", str(root), "--folds", "3").returncode == 2
    result = aggregator("eval", "rpm2", str(root / "rpm2-french-news-clusters"), "--folds", "1")
    assert result.returncode == 2 and "at least 2" in result.stderr
