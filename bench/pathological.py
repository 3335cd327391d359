"""A live blog: one feed of many items under one title, each with its own text.

Every item's title bands equal every earlier item's, so each one is an LSH candidate of
all the others; the per-item cost of `aggregator update` on that feed, against a feed of
as many ordinary items (distinct titles and texts), shows what the candidate bound buys::

    python -m bench.pathological --items 5000 --out bench/results/pathological

Each feed is written to a temporary directory as a local `path:` feed and updated once by
`aggregator update --all` in a process of its own (a fresh database each time, after one
warm-up update that builds the word-frequency cache); the wall time includes start-up,
which the tiny feed's update measures. Prints one JSON object; `--out` also writes .json
and .md, and `--baseline` (the .json of an earlier run, e.g. before a change) adds its
times and the ratios to the .md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

SEED = 20261206
LIVE_TITLE = "Live updates: storm hits the coast"
TEXT_WORDS = 80
# Syllables for made-up words: a vocabulary of a few thousand words, so that two texts
# share about as many words as two unrelated articles do.
_SYLLABLES = ("ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "pe", "da", "gu", "ze", "bi", "fo")


def _vocabulary(rng: random.Random, size: int = 4000) -> list[str]:
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4))))
    return sorted(words)


def feed_document(items: int, *, same_title: bool, seed: int = SEED) -> bytes:
    """An RSS document of `items` items with distinct texts; one title for all when
    `same_title`, else a distinct one each."""
    rng = random.Random(seed)
    vocabulary = _vocabulary(rng)
    start = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
    parts = ['<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>',
             "<title>Bench live blog</title><link>https://example.org/</link>"]  # fmt: skip
    for index in range(items):
        title = LIVE_TITLE if same_title else " ".join(rng.choices(vocabulary, k=9)).capitalize()
        text = " ".join(rng.choices(vocabulary, k=TEXT_WORDS)).capitalize() + "."
        when = format_datetime(start + timedelta(minutes=index), usegmt=True)
        parts.append(
            f"<item><title>{escape(title)}</title>"
            f"<link>https://example.org/live/{index}</link><guid>live-{index}</guid>"
            f"<pubDate>{when}</pubDate><description>{escape(text)}</description></item>"
        )
    parts.append("</channel></rss>\n")
    return "\n".join(parts).encode("utf-8")


def _config(feed: Path, items: int) -> str:
    return f"""
settings:
  max_entries: {max(items, 1)}
  parse_timeout: 5m
groups:
  bench:
    feeds:
      - name: bench
        path: {feed}
"""


def timed_update(scratch: Path, name: str, document: bytes, items: int) -> dict[str, Any]:
    """Write `document` as a feed, update it once into a fresh database: wall time."""
    folder = scratch / name
    folder.mkdir()
    feed = folder / "feed.xml"
    feed.write_bytes(document)
    config = folder / "feeds.yaml"
    config.write_text(_config(feed, items), encoding="utf-8")
    command = [sys.executable, "-m", "aggregator", "update", "--all", "--config", str(config),
               "--db", str(folder / "a.db"), "--log-level", "WARNING"]  # fmt: skip
    env = {**os.environ, "XDG_CACHE_HOME": str(scratch / "cache")}
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{name}: exit {result.returncode}\n{result.stdout}{result.stderr}")
    return {"items": items, "wall_s": round(wall, 3), "summary": result.stdout.strip()[-200:]}


def run(items: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-pathological-") as scratch_name:
        scratch = Path(scratch_name)
        warm_up = timed_update(scratch, "warm-up", feed_document(1, same_title=False), 1)
        startup = timed_update(scratch, "tiny", feed_document(1, same_title=False), 1)
        normal = timed_update(scratch, "normal", feed_document(items, same_title=False), items)
        live = timed_update(scratch, "same-title", feed_document(items, same_title=True), items)
    fixed = startup["wall_s"]
    for run_ in (normal, live):
        run_["ms_per_item"] = round(1000 * max(0.0, run_["wall_s"] - fixed) / items, 2)
    return {
        "items": items,
        "startup_s": fixed,
        "warm_up_s": warm_up["wall_s"],
        "normal": normal,
        "same_title": live,
        "same_title_over_normal": round(live["ms_per_item"] / max(normal["ms_per_item"], 1e-9), 2),
        "note": "ms_per_item = (wall - wall of a 1-item update) / items",
    }


def markdown(result: dict[str, Any], label: str, baseline: dict[str, Any] | None = None) -> str:
    cpu = platform.processor() or platform.machine()
    lines = [
        f"# Pathological grouping cost ({label})",
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, {cpu}, "
        f"Python {platform.python_version()}. `python -m bench.pathological --items "
        f"{result['items']}`: one update of one feed into a fresh database.",
        "",
        "| feed | items | wall s | ms per item |",
        "|---|---|---|---|",
        f"| one item (start-up) | 1 | {result['startup_s']} | - |",
    ]
    for key, name in (("normal", "distinct titles and texts"), ("same_title", "one title")):
        data = result[key]
        lines.append(f"| {name} | {data['items']} | {data['wall_s']} | {data['ms_per_item']} |")
    ratio = result["same_title_over_normal"]
    lines += ["", f"One title over distinct titles, per item: **{ratio}x**."]
    if baseline is not None:
        lines += ["", f"Against the baseline ({baseline.get('label', 'earlier run')}):", "",
                  "| feed | baseline ms per item | this run | baseline / this run |",
                  "|---|---|---|---|"]  # fmt: skip
        for key in ("normal", "same_title"):
            then, now = baseline[key]["ms_per_item"], result[key]["ms_per_item"]
            lines.append(f"| {key} | {then} | {now} | {round(then / max(now, 1e-9), 2)}x |")
        lines += ["", f"Baseline one title over distinct titles: "
                  f"{baseline['same_title_over_normal']}x."]  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description="per-item update cost of a live-blog feed")
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--out", type=Path, default=None, help="write OUT.json and OUT.md")
    parser.add_argument("--label", default="", help="a name for this run in the .md title")
    parser.add_argument("--baseline", type=Path, default=None, help="an earlier run's .json")
    args = parser.parse_args()
    result = run(args.items)
    result["label"] = args.label or "this run"
    baseline = None if args.baseline is None else json.loads(args.baseline.read_text())
    if baseline is not None:
        result["baseline"] = baseline
    if args.out is not None:
        args.out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
        args.out.with_suffix(".md").write_text(markdown(result, result["label"], baseline))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
