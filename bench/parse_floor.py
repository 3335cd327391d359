"""The floor under any client that parses with feedparser: `feedparser.parse` alone over
the same corpus documents the end-to-end run serves, in one process, nothing fetched or
stored. reader parses with feedparser too, so its throughput can not exceed this by more
than the number of cores it parses on (reader parses in its calling thread)::

    python -m bench.parse_floor 200 50

Prints one JSON object: documents, items, seconds (best of `--repeat`), items per second.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import feedparser

from bench.corpus import build, rss


def parse_floor(feeds: int, items: int, repeat: int = 2) -> dict[str, Any]:
    corpus = build(feeds, items)
    documents = [rss(index, feed) for index, feed in enumerate(corpus.feeds)]
    best = float("inf")
    parsed = 0
    for _ in range(repeat):
        started = time.perf_counter()
        parsed = sum(len(feedparser.parse(document).entries) for document in documents)
        best = min(best, time.perf_counter() - started)
    return {
        "documents": len(documents), "items": parsed, "seconds": round(best, 2),
        "items_per_s": round(parsed / best), "note": "feedparser.parse alone, one process",
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description="feedparser alone over the corpus")
    parser.add_argument("feeds", type=int)
    parser.add_argument("items", type=int)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    print(json.dumps(parse_floor(args.feeds, args.items, args.repeat)))


if __name__ == "__main__":
    main()
