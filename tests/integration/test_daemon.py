"""The daemon: hung feeds cannot starve healthy ones, signals, reload, one writer, cron.

The tarpit test runs the real Daemon (APScheduler, fetch pool, store) in this process with
a clock the test moves; the others run `python -m aggregator run` as a real process. Each
runs on a SQLite file and on a real PostgreSQL server.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from aggregator.config import load_config, parse_config
from aggregator.daemon import Daemon
from aggregator.pipeline import Pipeline
from aggregator.store import open_store, to_db_time
from tests.conftest import REPO
from tests.support import sql
from tests.support.clock import FixedClock
from tests.support.daemon import (
    DaemonProcess,
    Item,
    rows,
    rss,
    run_cli,
    wait_for,
    write_config,
)
from tests.support.http_server import LocalHTTPServer, Request, Response, trickle
from tests.support.http_server import http_server as http_server

TARPITS = 10
HEALTHY = 5
# Far longer than the test: the tarpits must still be hanging when it checks the others.
TARPIT_FETCH_TIMEOUT = "3m"


def items(prefix: str, count: int) -> list[Item]:
    return [
        Item(
            guid=f"{prefix}-{n}",
            title=f"{prefix} headline number {n} about the harbour council vote",
            text=f"Story {n} of {prefix}: " + " ".join(f"word{prefix}{n}x{k}" for k in range(30)),
            link=f"https://example.org/{prefix}/{n}",
        )
        for n in range(count)
    ]


def tarpit(request: Request) -> Response | None:
    """Answers 200 and then one byte a second, until the server stops: a per-read timeout
    never fires, only the fetch's total deadline would."""
    return Response(
        headers=[("Content-Type", "application/rss+xml")],
        body=trickle(b"<?xml version='1.0'?>" + b" " * 100_000, interval=1.0),
    )


def feed_rows(db: Path | str) -> dict[str, tuple[str, str | None, int]]:
    """name -> (status, last_success, enabled)."""
    return {
        name: (status, last_success, enabled)
        for name, status, last_success, enabled in rows(
            db, "select name, status, last_success, enabled from feeds"
        )
    }


def entries_of(db: Path | str, name: str) -> int:
    found = rows(
        db,
        "select count(*) from entries join feeds on feeds.id = entries.feed_id where name = ?",
        [name],
    )
    return int(found[0][0]) if found else 0


# -- hung feeds ------------------------------------------------------------------------------


@pytest.fixture
def servers() -> Iterator[tuple[list[LocalHTTPServer], LocalHTTPServer]]:
    """Ten tarpit servers (one host each: per-host limits cannot hide them) and one
    server of healthy feeds."""
    with ExitStack() as stack:
        tarpits = [stack.enter_context(LocalHTTPServer()) for _ in range(TARPITS)]
        for server in tarpits:
            server.route("/feed", tarpit)
        healthy = stack.enter_context(LocalHTTPServer())
        for n in range(HEALTHY):
            healthy.serve_bytes(f"/h{n}", rss(f"healthy {n}", items(f"h{n}", 3)))
        yield tarpits, healthy


def test_hung_feeds_do_not_delay_healthy_ones(
    servers: tuple[list[LocalHTTPServer], LocalHTTPServer], database: str, tmp_path: Path,
    clock: FixedClock,
) -> None:  # fmt: skip
    """10 tarpits listed first, 5 healthy feeds: the healthy ones are stored while every
    tarpit still hangs (their deadline far away), and stored again when due again, without
    the tarpits being fetched twice; the daemon then stops at once despite them."""
    tarpits, healthy = servers
    tarpit_feeds = "\n".join(
        f"      - {{name: tarpit-{n}, url: '{server.url('/feed')}'}}"
        for n, server in enumerate(tarpits)
    )
    healthy_feeds = "\n".join(
        f"      - {{name: healthy-{n}, url: '{healthy.url(f'/h{n}')}'}}" for n in range(HEALTHY)
    )
    text = (
        f"settings:\n  fetch_timeout: {TARPIT_FETCH_TIMEOUT}\ngroups:\n"
        f"  tarpits:\n    allow_private: true\n    interval: 1m\n    feeds:\n{tarpit_feeds}\n"
        f"  healthy:\n    allow_private: true\n    interval: 1m\n    feeds:\n{healthy_feeds}\n"
    )
    db = database
    store = open_store(db)
    pipeline = Pipeline(store=store, config=parse_config(text, tmp_path / "f.yaml"), clock=clock)
    daemon = Daemon(pipeline, tick_seconds=0.2, maintenance=())
    healthy_names = [f"healthy-{n}" for n in range(HEALTHY)]
    tarpit_names = [f"tarpit-{n}" for n in range(TARPITS)]
    daemon.start()
    try:
        wait_for(
            lambda: all(feed_rows(db).get(n, ("",))[0] == "ok" for n in healthy_names),
            what="every healthy feed stored",
        )
        states = feed_rows(db)
        assert [len(server.requests) for server in tarpits] == [1] * TARPITS  # all hanging
        assert all(states[name][0] == "new" for name in tarpit_names)  # none timed out yet
        assert all(entries_of(db, name) == 3 for name in healthy_names)

        clock.advance(timedelta(minutes=2))  # healthy feeds due again; tarpits in flight
        second = to_db_time(clock())
        wait_for(
            lambda: all(feed_rows(db)[n][1] == second for n in healthy_names),
            what="every healthy feed updated a second time",
        )
        assert [len(healthy.requests_for(f"/h{n}")) for n in range(HEALTHY)] == [2] * HEALTHY
        assert [len(server.requests) for server in tarpits] == [1] * TARPITS
        assert all(feed_rows(db)[name][0] == "new" for name in tarpit_names)
    finally:
        daemon.stop()
        waiter = threading.Thread(target=daemon.wait)
        waiter.start()
        waiter.join(timeout=10)
        stopped = not waiter.is_alive()
        pipeline.close()
        store.close()
    assert stopped, "the daemon did not stop while fetches were hanging"


def test_maintenance_jobs_run_on_the_scheduler(database: str, tmp_path: Path) -> None:
    """Prune, optimize and checkpoint are scheduler jobs: each runs and is recorded."""
    config = parse_config(
        f"groups:\n  g:\n    feeds:\n      - path: {REPO / 'seeds/feeds/000-article.atom'}\n",
        tmp_path / "f.yaml",
    )
    store = open_store(database)
    pipeline = Pipeline(store=store, config=config)
    daemon = Daemon(pipeline, tick_seconds=0.2, maintenance_delay=timedelta(0))
    daemon.start()
    try:
        wait_for(
            lambda: len(rows(database, "select key from meta where key like 'maint%'")) == 3,
            what="the three maintenance jobs",
        )
    finally:
        daemon.stop()
        daemon.wait()
        pipeline.close()
        store.close()
    keys = {key for (key,) in rows(database, "select key from meta")}
    assert {"maintenance.prune", "maintenance.optimize", "maintenance.checkpoint"} <= keys
    assert "daemon.heartbeat" in keys


# -- a real process ----------------------------------------------------------------------------


def feed_file(directory: Path, name: str, count: int) -> Path:
    path = directory / f"{name}.rss"
    path.write_bytes(rss(name, items(name, count)))
    return path


def local_config(path: Path, feeds: dict[str, str], *, extra: str = "") -> Path:
    """A config of local feeds: name -> interval."""
    lines = "\n".join(
        f"      - {{name: {name}, path: {name}.rss, interval: {interval}}}"
        for name, interval in feeds.items()
    )
    return write_config(path, f"groups:\n  g:\n    feeds:\n{lines}\n{extra}")


def rewrite_keeping_stamp(path: Path, text: str) -> None:
    """New content with the same size, mtime and inode: only SIGHUP can reveal it."""
    before = path.stat()
    padded = text + "#" * (before.st_size - len(text.encode()) - 1) + "\n"
    assert len(padded.encode()) == before.st_size
    path.write_text(padded, encoding="utf-8")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


def daemon_args(config: Path, db: Path | str) -> list[str]:
    return ["run", "--tick", "0.2", "--config", str(config), "--db", str(db), "--log-format",
            "json"]  # fmt: skip


def test_sighup_starts_new_feeds_and_stops_removed_ones(database: str, tmp_path: Path) -> None:
    """After SIGHUP (the file's size and mtime unchanged), a new feed is fetched and a
    removed one is disabled with its entries kept."""
    feed_file(tmp_path, "alpha", 2)
    feed_file(tmp_path, "beta", 3)
    room = "# room for the edit " + "-" * 80 + "\n"
    config = local_config(tmp_path / "feeds.yaml", {"alpha": "1m"}, extra=room)
    db = database
    with DaemonProcess(*daemon_args(config, db), log=tmp_path / "log") as daemon:
        wait_for(lambda: entries_of(db, "alpha") == 2, what="alpha stored")
        new_text = config.read_text(encoding="utf-8").replace("alpha", "beta").replace(room, "")
        rewrite_keeping_stamp(config, new_text)
        daemon.send(signal.SIGHUP)
        wait_for(lambda: entries_of(db, "beta") == 3, what="beta stored after SIGHUP")
        code, _ = daemon.stop()
    assert code == 0
    states = feed_rows(db)
    assert states["alpha"][2] == 0 and entries_of(db, "alpha") == 2
    messages = [r["message"] for r in daemon.records()]
    assert "received SIGHUP, reloading the config at the next tick" in messages
    assert "config reloaded: 1 feeds added, 1 removed, 0 rescheduled" in messages


def test_changed_file_reloads_and_an_invalid_one_keeps_the_last_valid(
    database: str, tmp_path: Path
) -> None:
    """An invalid file is reported once and the daemon goes on; the next valid file is
    applied without a signal: its new feed starts and the changed interval reschedules."""
    feed_file(tmp_path, "alpha", 2)
    feed_file(tmp_path, "beta", 1)
    config = local_config(tmp_path / "feeds.yaml", {"alpha": "60m"})
    db = database

    def last_tick() -> str:
        found = rows(db, "select value from meta where key = 'daemon.heartbeat'")
        return str(json.loads(found[0][0])["last_tick"]) if found else ""

    with DaemonProcess(*daemon_args(config, db), log=tmp_path / "log") as daemon:
        wait_for(lambda: entries_of(db, "alpha") == 2, what="alpha stored")
        write_config(config, "groups:\n  g: [unclosed\n")
        wait_for(lambda: "config reload failed" in daemon.text(), what="the reload error")
        for _ in range(3):  # the daemon keeps ticking on the last valid config
            seen = last_tick()
            wait_for(lambda seen=seen: last_tick() != seen, what="another tick")
        local_config(config, {"alpha": "5m", "beta": "1m"})
        wait_for(lambda: entries_of(db, "beta") == 1, what="beta stored after the edit")
        code, _ = daemon.stop()
    assert code == 0
    failures = [r for r in daemon.records() if "config reload failed" in r["message"]]
    assert len(failures) == 1 and "feeds.yaml:3: invalid YAML" in failures[0]["message"]
    ((last_fetch, next_due),) = rows(
        db, "select last_fetch, next_due from feeds where name='alpha'"
    )
    wait = datetime.fromisoformat(next_due) - datetime.fromisoformat(last_fetch)
    assert timedelta(minutes=4.5) <= wait <= timedelta(minutes=5.5)  # 5m +-10% jitter
    assert "1 rescheduled" in " ".join(r["message"] for r in daemon.records())


def test_one_writer_per_database_and_readers_work_meanwhile(database: str, tmp_path: Path) -> None:
    """A second daemon and an update are refused with the holder's pid; digest and status
    read while the daemon runs, and status reports it."""
    db = database
    config = REPO / "config" / "feeds.yaml"
    with DaemonProcess(*daemon_args(config, db), log=tmp_path / "log") as daemon:
        wait_for(lambda: rows(db, "select 1 from meta where key='daemon.heartbeat'"),
                 what="the first tick")  # fmt: skip
        for command in ("run", "update"):
            second = run_cli(command, "--config", str(config), "--db", str(db))
            assert second.returncode == 1, second.stderr
            assert second.stderr.count("\n") == 1 and "Traceback" not in second.stderr
            assert f"pid {daemon.pid}" in second.stderr and "already writing" in second.stderr
        digest = run_cli("digest", "--db", str(db), "--config", str(config))
        assert digest.returncode == 0 and "Digest" in digest.stdout
        status = run_cli("status", "--db", str(db), "--config", str(config), "--format", "json")
        assert status.returncode == 0, status.stderr
        document = json.loads(status.stdout)
        assert document["daemon"]["running"] is True
        assert document["daemon"]["pid"] == daemon.pid
        code, _ = daemon.stop()
    assert code == 0
    after = json.loads(run_cli("status", "--db", str(db), "--format", "json").stdout)
    assert after["daemon"]["running"] is False and after["daemon"]["last_tick_by"] == "run"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stop_signal_with_a_hung_fetch_exits_0_within_10s(
    sig: signal.Signals, http_server: LocalHTTPServer, database: str, tmp_path: Path
) -> None:
    """SIGTERM or SIGINT while a fetch hangs (its deadline minutes away): exit 0 within
    the 10 s a service manager waits, the seed feed stored before it kept."""
    http_server.route("/hang", tarpit)
    config = write_config(
        tmp_path / "f.yaml",
        f"settings:\n  fetch_timeout: 5m\ngroups:\n  g:\n    allow_private: true\n"
        f"    feeds:\n      - {{name: hung, url: '{http_server.url('/hang')}'}}\n"
        f"      - {{name: seed, path: {REPO / 'seeds/feeds/000-article.atom'}}}\n",
    )
    db = database
    with DaemonProcess(*daemon_args(config, db), log=tmp_path / "log") as daemon:
        wait_for(lambda: http_server.requests_for("/hang"), what="the hung request")
        wait_for(lambda: entries_of(db, "seed") == 1, what="the seed feed stored")
        code, seconds = daemon.stop(sig)
    assert code == 0
    assert seconds < 10, f"took {seconds:.1f}s to stop"
    assert entries_of(db, "seed") == 1
    if not sql.is_postgresql(db):  # the file's own check; the server has none to ask
        assert rows(db, "pragma integrity_check") == [("ok",)]
    assert f"received {sig.name}, stopping" in daemon.text()


def test_run_once_updates_due_feeds_and_runs_due_maintenance(database: str) -> None:
    """`run --once` (cron): the due feeds, then the maintenance that is due, each job's
    line in its engine's words; a second run right after finds nothing due."""
    db = database
    first = run_cli("run", "--once", "--db", str(db))
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("2 feeds updated (0 failed): 7 new")
    done = {
        line.split("maintenance ", 1)[1].split(":", 1)[0]: line.split(": ", 1)[1]
        for line in first.stderr.splitlines()
        if " maintenance " in line
    }
    assert set(done) == {"prune", "optimize", "checkpoint"}, first.stderr
    assert done["prune"].startswith("pruned 0 events and 0 entries older than 30 days")
    if sql.is_postgresql(db):
        assert done["optimize"].startswith("ANALYZE done: planner statistics of ")
        assert done["checkpoint"].startswith("nothing to do: the PostgreSQL server checkpoints")
    else:
        assert done["optimize"] == "PRAGMA optimize done"
        assert done["checkpoint"].startswith("WAL checkpoint: ")
        assert done["checkpoint"].endswith(" frames copied, WAL truncated")
    second = run_cli("run", "--once", "--db", str(db))
    assert second.returncode == 0, second.stderr
    assert second.stdout.startswith("0 feeds updated")
    assert "maintenance" not in second.stderr
    beat = json.loads(rows(db, "select value from meta where key='daemon.heartbeat'")[0][0])
    assert beat["command"] == "run --once"


def test_reload_waits_a_tick_reports_a_missing_file_once_then_recovers(
    database: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Driven tick by tick: a changed file is applied on the tick after it settled; a
    deleted file is reported once, not on every tick; when it comes back it is applied."""
    feed_file(tmp_path, "alpha", 1)
    feed_file(tmp_path, "beta", 1)
    config = local_config(tmp_path / "feeds.yaml", {"alpha": "1m"})
    store = open_store(database)
    pipeline = Pipeline(store=store, config=load_config(config))
    daemon = Daemon(pipeline, tick_seconds=60, maintenance=())
    try:
        daemon.tick()
        local_config(config, {"alpha": "1m", "beta": "1m"})
        daemon.tick()  # the change is seen, not applied yet
        assert [f.name for f in pipeline.config.feeds] == ["alpha"]
        daemon.tick()
        assert [f.name for f in pipeline.config.feeds] == ["alpha", "beta"]
        config.unlink()
        for _ in range(4):
            daemon.tick()
        failures = [r for r in caplog.records if "config reload failed" in r.getMessage()]
        assert len(failures) == 1 and "config file not found" in failures[0].getMessage()
        assert [f.name for f in pipeline.config.feeds] == ["alpha", "beta"]  # still running
        local_config(config, {"beta": "1m"})
        daemon.tick()
        daemon.tick()
        assert [f.name for f in pipeline.config.feeds] == ["beta"]
    finally:
        pipeline.close()
        store.close()
