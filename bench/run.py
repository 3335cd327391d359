"""Run the benchmarks and write `bench/results/<name>.json` and `<name>.md`.

    python -m bench.run --quick          # under 2 minutes: small sizes (make bench-quick)
    python -m bench.run                  # the sizes of the issue (make bench)
    python -m bench.run --only e2e --sizes 200x50

Every measurement runs in a child process of its own (the corpus server too), so that
timings and peak memory belong to the client measured. Timings vary with the machine:
the results name it (cores, CPU model, Python).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
WORKERS = 8  # the pipeline's default fetch_workers; reader gets the same

QUICK: dict[str, Any] = {
    "sizes": [(50, 20)],
    "headlines": 2000,
    "articles": 200,
    "lsh": [10_000],
    "window_synthetic": [20_000],
    "window_real": [1_000],
    "window_restart": [1_000],
}
FULL: dict[str, Any] = {
    "sizes": [(200, 50), (1000, 50)],
    "headlines": 20_000,
    "articles": 2_000,
    "lsh": [100_000],
    # The columnar index holds 1M items in about 1.8 GB (two MinHashLSH needed ~20 GB).
    "window_synthetic": [100_000, 1_000_000],
    "window_real": [10_000],
    "window_restart": [100_000],
}


def machine() -> dict[str, Any]:
    model = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "system": platform.platform(),
    }


def _child(*args: str, timeout: float | None = None) -> dict[str, Any]:
    """Run `python -m <args>` and return the JSON object it printed last."""
    done = subprocess.run(
        [sys.executable, "-m", *args], capture_output=True, text=True, timeout=timeout,
        check=False,
    )  # fmt: skip
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1:] or ["failed"]}
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def end_to_end(feeds: int, items: int) -> dict[str, Any]:
    server = subprocess.Popen(
        [sys.executable, "-m", "bench.server", str(feeds), str(items)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert server.stdout is not None
        ready = json.loads(server.stdout.readline())
        port = str(ready["port"])
        common = ("--port", port, "--feeds", str(feeds), "--workers", str(WORKERS))
        ours = _child("bench.end_to_end", "ours", *common)
        peer = _child("bench.end_to_end", "reader", *common)
    finally:
        assert server.stdin is not None
        server.stdin.close()  # the server exits when its stdin closes
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
    floor = _child("bench.parse_floor", str(feeds), str(items))
    result: dict[str, Any] = {
        "corpus": ready["corpus"], "ours": ours, "reader": peer, "feedparser_alone": floor,
    }  # fmt: skip
    try:
        result["cold_throughput_ratio"] = round(
            ours["cold"]["items_per_s"] / peer["cold"]["items_per_s"], 2
        )
        result["ours_warm_speedup"] = round(ours["cold"]["wall_s"] / ours["warm"]["wall_s"], 1)
        result["reader_warm_speedup"] = round(peer["cold"]["wall_s"] / peer["warm"]["wall_s"], 1)
    except (KeyError, ZeroDivisionError):
        pass
    return result


def summary(name: str, results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = [
        f"# Benchmark `{name}`",
        "",
        f"{results['started']}, {m['cores']} cores, {m['cpu']}, Python {m['python']}.",
        "",
        "## End to end (cold first update, warm second update: every feed 304)",
        "",
        "| feeds x items | client | cold s | cold items/s | warm s | warm speedup | peak RSS MB"
        " | stages cold (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for size, e2e in results.get("end_to_end", {}).items():
        for client in ("ours", "reader"):
            data = e2e.get(client, {})
            if "cold" not in data:
                lines.append(f"| {size} | {client} | error: {data.get('error')} | | | | | |")
                continue
            cold, warm = data["cold"], data["warm"]
            stages = ", ".join(f"{k} {v}" for k, v in cold.get("stages_s", {}).items()) or "-"
            speedup = round(cold["wall_s"] / warm["wall_s"], 1) if warm["wall_s"] else "-"
            lines.append(
                f"| {size} | {client} | {cold['wall_s']} | {cold['items_per_s']} | "
                f"{warm['wall_s']} | {speedup}x | {warm['peak_rss_mb']} | {stages} |"
            )
        if "cold_throughput_ratio" in e2e:
            lines.append(
                f"| {size} | **ours / reader** | | **{e2e['cold_throughput_ratio']}x** | | | | |"
            )
        floor = e2e.get("feedparser_alone", {})
        if "items_per_s" in floor:
            lines.append(
                f"| {size} | feedparser.parse alone, one process | {floor['seconds']} | "
                f"{floor['items_per_s']} | | | | |"
            )
    lines += ["", "## Signatures per second (one document = title + text)", ""]
    sigs = results.get("signatures", {})
    if sigs:
        keys = [k for k in next(iter(sigs.values())) if k not in ("kind", "count")]
        lines.append("| documents | " + " | ".join(keys) + " |")
        lines.append("|---" * (len(keys) + 1) + "|")
        for kind, data in sigs.items():
            row = " | ".join(str(data.get(k, "-")) for k in keys)
            lines.append(f"| {kind} ({data.get('count')}) | {row} |")
    lines += ["", "## LSH and the window", ""]
    for data in results.get("lsh", []):
        lines.append(f"- LSH: {json.dumps(data)}")
    for data in results.get("window", []):
        lines.append(f"- window: {json.dumps(data)}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description="run the benchmarks")
    parser.add_argument("--quick", action="store_true", help="small sizes, under 2 minutes")
    parser.add_argument("--name", default=None, help="results file name (default: quick/full)")
    parser.add_argument("--only", choices=("e2e", "dedup"), default=None)
    parser.add_argument("--sizes", default=None, help="end-to-end sizes, e.g. 200x50,1000x50")
    args = parser.parse_args()
    plan = dict(QUICK if args.quick else FULL)
    if args.sizes:
        plan["sizes"] = [tuple(int(n) for n in s.split("x")) for s in args.sizes.split(",")]
    name = args.name or ("quick" if args.quick else "full")
    results: dict[str, Any] = {
        "name": name,
        "started": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "workers": WORKERS,
    }
    RESULTS.mkdir(exist_ok=True)

    def save() -> None:
        (RESULTS / f"{name}.json").write_text(json.dumps(results, indent=2) + "\n")
        (RESULTS / f"{name}.md").write_text(summary(name, results))

    started = time.perf_counter()
    if args.only in (None, "dedup"):
        results["signatures"] = {
            "headline": _child("bench.dedup", "signatures", "headline", str(plan["headlines"])),
            "article_500_words": _child(
                "bench.dedup", "signatures", "article", str(plan["articles"])
            ),
        }
        results["lsh"] = [_child("bench.dedup", "lsh", str(n)) for n in plan["lsh"]]
        results["window"] = [
            *(
                _child("bench.dedup", "window", "synthetic", str(n))
                for n in plan["window_synthetic"]
            ),
            *(_child("bench.dedup", "window", "real", str(n)) for n in plan["window_real"]),
            *(_child("bench.dedup", "window", "restart", str(n)) for n in plan["window_restart"]),
        ]
        save()
    if args.only in (None, "e2e"):
        results["end_to_end"] = {}
        for feeds, items in plan["sizes"]:
            results["end_to_end"][f"{feeds}x{items}"] = end_to_end(feeds, items)
            save()
    results["elapsed_s"] = round(time.perf_counter() - started, 1)
    save()
    print(summary(name, results))
    print(f"written: {RESULTS / name}.json and .md")


if __name__ == "__main__":
    main()
