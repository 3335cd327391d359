"""One client updating the served corpus twice: cold, then warm (every answer a 304).

Run in a process of its own per client, so that peak memory is that client's alone::

    python -m bench.end_to_end ours --port 8000 --feeds 200 --workers 8
    python -m bench.end_to_end reader --port 8000 --feeds 200 --workers 8

Prints one JSON object: wall time, items stored, items per second and, for ours, the
time per stage of each update. Peak memory is the process's maximum resident set size
(`ru_maxrss`); our parse worker processes are not included (they are separate
processes of about 40 MB each, whose memory is capped at 512 MiB).
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

WARM_FACTOR_NOTE = "warm: every feed answered 304 Not Modified"


def _peak_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _urls(port: int, feeds: int) -> list[str]:
    return [f"http://127.0.0.1:{port}/feed/{i}.xml" for i in range(feeds)]


def run_ours(port: int, feeds: int, workers: int, scratch: Path) -> dict[str, Any]:
    from aggregator.config import parse_config
    from aggregator.pipeline import Pipeline
    from aggregator.store import open_store
    from bench.stages import StageTimer

    lines = "\n".join(f"      - name: feed{i}\n        url: {url}"
                      for i, url in enumerate(_urls(port, feeds)))  # fmt: skip
    text = f"""
settings:
  fetch_workers: {workers}
  fetch_per_host: {min(workers, 8)}   # every feed is on one local server
groups:
  bench:
    allow_private: true   # the corpus is served on loopback
    feeds:
{lines}
"""
    config = parse_config(text, scratch / "feeds.yaml")
    timer = StageTimer()
    timer.install()
    store = open_store(scratch / "ours.db")
    started = time.perf_counter()
    pipeline = Pipeline(store=store, config=config)
    startup = time.perf_counter() - started
    result: dict[str, Any] = {"client": "ours", "startup_s": round(startup, 3)}
    for phase in ("cold", "warm"):
        timer.reset()
        started = time.perf_counter()
        report = pipeline.run(all_feeds=True)
        wall = time.perf_counter() - started
        statuses: dict[str, int] = {}
        for feed in report.feeds:
            statuses[feed.status] = statuses.get(feed.status, 0) + 1
        stages = timer.snapshot()
        in_thread = sum(v for k, v in stages.items() if k not in ("fetch", "parse"))
        stages["other_in_calling_thread"] = round(max(0.0, wall - in_thread), 3)
        result[phase] = {
            "wall_s": round(wall, 3),
            "new_items": report.total("new"),
            "statuses": statuses,
            "stages_s": stages,
            "peak_rss_mb": _peak_mb(),
        }
    result["stored"] = store.counts()
    pipeline.close()
    store.close()
    timer.uninstall()
    return result


def run_reader(port: int, feeds: int, workers: int, scratch: Path) -> dict[str, Any]:
    from reader import make_reader

    started = time.perf_counter()
    reader = make_reader(str(scratch / "reader.sqlite"))
    for url in _urls(port, feeds):
        reader.add_feed(url)
    result: dict[str, Any] = {
        "client": "reader",
        "startup_s": round(time.perf_counter() - started, 3),
    }
    before = 0
    for phase in ("cold", "warm"):
        started = time.perf_counter()
        # scheduled=False: update every feed now, as `run(all_feeds=True)` does for ours.
        reader.update_feeds(workers=workers, scheduled=False)
        wall = time.perf_counter() - started
        total = reader.get_entry_counts().total or 0
        broken = sum(1 for feed in reader.get_feeds() if feed.last_exception)
        result[phase] = {
            "wall_s": round(wall, 3),
            "new_items": total - before,
            "broken_feeds": broken,
            "peak_rss_mb": _peak_mb(),
        }
        before = total
    reader.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description="update the served corpus twice")
    parser.add_argument("client", choices=("ours", "reader"))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--feeds", type=int, required=True)
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-e2e-") as scratch:
        run = run_ours if args.client == "ours" else run_reader
        result = run(args.port, args.feeds, args.workers, Path(scratch))
    for phase in ("cold", "warm"):
        data = result[phase]
        data["items_per_s"] = round(data["new_items"] / data["wall_s"], 1) if data["wall_s"] else 0
    result["workers"] = args.workers
    print(json.dumps(result))


if __name__ == "__main__":
    main()
