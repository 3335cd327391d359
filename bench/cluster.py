"""One process on SQLite against PostgreSQL with 1, 2 and 4 fetch workers and one grouping
leader, cold, on the corpus served on 127.0.0.1; and how long a standby takes to be ready
to lead over a window of many items.

    python -m bench.cluster --feeds 1000 --items 50 --workers 1,2,4 --standby-feeds 2000

Needs Debian's postgresql (a server is started in a temporary directory). Prints the
report (markdown) and writes it with the raw numbers to bench/results/cluster.{md,json}.
Per run: items/s from the first process start to the last item grouped, the staged
backlog over time (a backlog that grows means the leader is the bottleneck), and the CPU
seconds of the leader and of the workers (from /proc).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

from tests.support.postgresql import start as start_postgresql

RESULTS = Path(__file__).parent / "results"
REPO = Path(__file__).resolve().parents[1]
TICK = "1"


def _config(port: int, feeds: int, path: Path) -> Path:
    lines = "\n".join(f"      - name: feed{i}\n        url: http://127.0.0.1:{port}/feed/{i}.xml"
                      for i in range(feeds))  # fmt: skip
    path.write_text(
        "settings:\n  fetch_workers: 8\n  fetch_per_host: 8\n"
        f"groups:\n  bench:\n    allow_private: true\n    interval: 6h\n    feeds:\n{lines}\n",
        encoding="utf-8",
    )
    return path


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    # utime, stime, and those of waited-for children (the parse workers)
    return sum(int(fields[i]) for i in (11, 12, 13, 14)) / ticks


def _aggregator(*args: str, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "aggregator", *args], cwd=REPO,
        stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip


def _counts(url: str) -> tuple[int, int]:
    with psycopg.connect(url, autocommit=True) as connection:
        row = connection.execute(
            "select (select count(*) from entries), (select count(*) from staged_updates)"
        ).fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def _schema_ready(url: str) -> bool:
    try:
        _counts(url)
    except psycopg.Error:
        return False
    return True


def cluster_run(server: Any, port: int, feeds: int, items: int, workers: int,
                scratch: Path) -> dict[str, Any]:  # fmt: skip
    url = server.database("bench")
    config = _config(port, feeds, scratch / f"cluster-{workers}.yaml")
    started = time.monotonic()
    leader = _aggregator("run", "--role", "group", "--db", url, "--config", str(config),
                         "--tick", TICK,
                         log=scratch / f"leader-{workers}.log")  # fmt: skip
    while not _schema_ready(url):
        if leader.poll() is not None:
            raise RuntimeError(
                f"the leader exited: {(scratch / f'leader-{workers}.log').read_text()}"
            )
        time.sleep(0.2)
    fetchers = [
        _aggregator(
            *("run", "--role", "fetch", "--db", url, "--config", str(config), "--tick", TICK),
            log=scratch / f"fetch-{workers}-{n}.log",
        )
        for n in range(workers)
    ]
    want = feeds * items
    backlog: list[tuple[float, int, int]] = []
    try:
        while True:
            stored, staged = _counts(url)
            backlog.append((round(time.monotonic() - started, 1), stored, staged))
            if stored >= want and staged == 0:
                break
            if time.monotonic() - started > 3600:
                raise RuntimeError(f"not done after an hour: {stored} of {want}")
            time.sleep(1.0)
        wall = time.monotonic() - started
        cpu = {"leader": round(_cpu_seconds(leader.pid), 1),
               "fetchers": round(sum(_cpu_seconds(p.pid) for p in fetchers), 1)}  # fmt: skip
    finally:
        for process in (leader, *fetchers):
            process.terminate()
        for process in (leader, *fetchers):
            process.wait(timeout=60)
    peak = max(staged for _, _, staged in backlog)
    # The leader's ceiling: items grouped per second while a backlog waited for it.
    busy = [(t, s) for t, s, staged in backlog if staged > 0]
    ceiling = None
    if len(busy) >= 2 and busy[-1][0] > busy[0][0]:
        ceiling = round((busy[-1][1] - busy[0][1]) / (busy[-1][0] - busy[0][0]), 1)
    return {
        "workers": workers, "wall_s": round(wall, 1), "items": want,
        "items_per_s": round(want / wall, 1), "peak_staged_updates": peak,
        "leader_items_per_s_with_backlog": ceiling, "cpu_s": cpu,
        "backlog": backlog[:: max(1, len(backlog) // 40)],
    }  # fmt: skip


def sqlite_run(port: int, feeds: int) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "bench.end_to_end", "ours", "--port", str(port), "--feeds",
         str(feeds), "--workers", "8"], capture_output=True, text=True, cwd=REPO, check=True,
    )  # fmt: skip
    result: dict[str, Any] = json.loads(done.stdout)
    return {"wall_s": result["cold"]["wall_s"], "items_per_s": result["cold"]["items_per_s"]}


def standby_start(server: Any, port: int, feeds: int, items: int, scratch: Path) -> dict[str, Any]:
    """A database of feeds x items, filled by one process, then a standby started over it:
    seconds from its start until it leads (window rebuilt, scheduler running)."""
    url = server.database("standby")
    config = _config(port, feeds, scratch / "standby.yaml")
    filled = subprocess.run(
        [sys.executable, "-m", "aggregator", "update", "--all", "--db", url, "--config",
         str(config),
         "--log-level", "WARNING"], cwd=REPO, capture_output=True, text=True, check=True,
    )  # fmt: skip
    stored, _ = _counts(url)
    log = scratch / "standby.log"
    started = time.monotonic()
    standby = _aggregator("run", "--role", "group", "--db", url, "--config", str(config),
                          "--tick", "60",
                          log=log)  # fmt: skip
    try:
        while "daemon started" not in log.read_text(errors="replace"):
            if standby.poll() is not None:
                raise RuntimeError(log.read_text())
            time.sleep(0.1)
        ready = time.monotonic() - started
    finally:
        standby.terminate()
        standby.wait(timeout=60)
    return {"items": stored, "ready_s": round(ready, 1), "fill": filled.stdout.strip()[-200:]}


def _serve(feeds: int, items: int) -> tuple[subprocess.Popen[str], int]:
    server = subprocess.Popen(
        [sys.executable, "-m", "bench.server", str(feeds), str(items)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO,
    )  # fmt: skip
    assert server.stdout is not None
    return server, int(json.loads(server.stdout.readline())["port"])


def _stop(server: subprocess.Popen[str]) -> None:
    assert server.stdin is not None
    server.stdin.close()
    server.wait(timeout=30)


def report(results: dict[str, Any]) -> str:
    lines = [
        "# Benchmark `cluster`", "",
        f"{results['started']}, {results['machine']}.", "",
        f"Cold, {results['feeds']} feeds x {results['items']} items served on 127.0.0.1.", "",
        "| setup | wall s | items/s | vs SQLite | peak staged updates |"
        " leader items/s with a backlog | CPU s leader / fetchers |",
        "|---|---|---|---|---|---|---|",
        f"| SQLite, one process | {results['sqlite']['wall_s']} |"
        f" {results['sqlite']['items_per_s']} | 1.00x | | | |",
    ]  # fmt: skip
    for run in results["postgresql"]:
        ratio = run["items_per_s"] / results["sqlite"]["items_per_s"]
        lines.append(
            f"| PostgreSQL, leader + {run['workers']} fetch | {run['wall_s']} |"
            f" {run['items_per_s']} | {ratio:.2f}x | {run['peak_staged_updates']} |"
            f" {run['leader_items_per_s_with_backlog'] or '-'} |"
            f" {run['cpu_s']['leader']} / {run['cpu_s']['fetchers']} |"
        )
    standby = results.get("standby")
    if standby:
        lines += ["", f"A standby over {standby['items']} items is ready to lead in"
                  f" {standby['ready_s']} s (window rebuilt from PostgreSQL)."]  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--items", type=int, default=50)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--standby-feeds", type=int, default=2000)
    parser.add_argument("--name", default="cluster")
    args = parser.parse_args()
    results: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{os.cpu_count()} cores, {platform.processor() or platform.machine()},"
        f" Python {platform.python_version()}",
        "feeds": args.feeds, "items": args.items,
    }  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as scratch_name:
        scratch = Path(scratch_name)
        os.chmod(scratch, 0o755)
        pg = start_postgresql(scratch / "pg")
        try:
            served, port = _serve(args.feeds, args.items)
            try:
                results["sqlite"] = sqlite_run(port, args.feeds)
                results["postgresql"] = [
                    cluster_run(pg, port, args.feeds, args.items, int(k), scratch)
                    for k in args.workers.split(",")
                ]
            finally:
                _stop(served)
            if args.standby_feeds:
                served, port = _serve(args.standby_feeds, args.items)
                try:
                    results["standby"] = standby_start(
                        pg, port, args.standby_feeds, args.items, scratch
                    )
                finally:
                    _stop(served)
        finally:
            pg.stop()
    RESULTS.mkdir(exist_ok=True)
    text = report(results)
    (RESULTS / f"{args.name}.md").write_text(text, encoding="utf-8")
    (RESULTS / f"{args.name}.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
