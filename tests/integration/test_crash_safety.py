"""Crash safety: kill -9 at random moments, disk full, a read-only and a locked database.

The kill test follows reliability-anchors section 5: the real daemon ingests feeds that
change every round from a server on 127.0.0.1; it is killed at a seeded random moment
and restarted on the same database. After every kill: integrity, no half-written event,
nothing that was committed lost (every feed update the daemon logged, which it does after
the commit, is in the database), and at the end a complete run adds every item and a
re-run adds nothing. It runs on a SQLite file and on a real PostgreSQL server (fewer
rounds there); the disk-full, read-only and locked tests are about the SQLite file.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from aggregator.config import parse_config
from aggregator.errors import StoreError
from aggregator.pipeline import Pipeline
from aggregator.store import open_store
from tests.support import sql
from tests.support.daemon import DaemonProcess, Item, rows, rss, run_cli, wait_for, write_config
from tests.support.http_server import LocalHTTPServer, Request, Response
from tests.support.http_server import http_server as http_server

SEED = 20261122
ROUNDS = 24  # every STOP_EVERY-th round is a SIGTERM, the others kill -9 (20 of them)
POSTGRESQL_ROUNDS = 12  # 10 kill -9 and 2 SIGTERM: the same moments, half as many
STOP_EVERY = 6
FEEDS = 5
NEW_PER_ROUND = 6  # new items per feed and round
KEPT_ROUNDS = 2  # a feed lists the items of its last two rounds (12 items)
VOCABULARY = [f"{a}{b}" for a in ("ka", "lo", "mi", "nu", "po", "ri", "sa", "te")
              for b in ("bar", "den", "fil", "gor", "han", "jel", "kos", "mur")]  # fmt: skip


def story_words(round_no: int, index: int, count: int) -> list[str]:
    rng = random.Random(f"{SEED}-{round_no}-{index}")
    return [rng.choice(VOCABULARY) for _ in range(count)]


def feed_items(feed: int, round_no: int) -> list[Item]:
    """What feed `feed` lists in round `round_no`. A quarter of the items is the same
    story in every feed (exact copies), a quarter the same story with one word changed
    per feed (near-duplicates), the rest belongs to one feed: multi-member events."""
    found = []
    for r in range(max(0, round_no - KEPT_ROUNDS + 1), round_no + 1):
        for i in range(NEW_PER_ROUND):
            kind = i % 4
            words = story_words(r, i if kind < 2 else i * 100 + feed, 60)
            if kind == 1:
                words[30] = f"variant{feed}"
            title = " ".join(words[:8]).capitalize()
            found.append(
                Item(
                    guid=f"f{feed}-r{r}-i{i}",
                    title=title,
                    text=" ".join(words),
                    link=f"https://news{feed}.example/r{r}/i{i}",
                )
            )
    return found


class ChangingFeeds:
    """Serves FEEDS feeds whose content moves on each round."""

    def __init__(self, server: LocalHTTPServer) -> None:
        self.round = 0
        for feed in range(FEEDS):
            server.route(f"/feed{feed}", self._handler(feed))

    def _handler(self, feed: int):  # type: ignore[no-untyped-def]
        def handle(_request: Request) -> Response:
            body = rss(f"feed {feed}", feed_items(feed, self.round))
            return Response(headers=[("Content-Type", "application/rss+xml")], body=body)

        return handle


def check_database(db: Path | str) -> None:
    """Integrity, and no event that is half-written or inconsistent."""
    if not sql.is_postgresql(db):  # the file's own checks (the server enforces its keys)
        assert rows(db, "pragma integrity_check") == [("ok",)]
        assert rows(db, "pragma foreign_key_check") == []
    assert rows(db, "select count(*) from entries where event_id is null") == [(0,)]
    broken = rows(
        db,
        """
        select e.id from events e
        where e.canonical_entry_id is null
           or not exists (select 1 from entries x
                          where x.id = e.canonical_entry_id and x.event_id = e.id)
           or e.member_count != (select count(*) from entries x where x.event_id = e.id)
           or e.source_count != (select count(distinct x.feed_id) from entries x
                                 where x.event_id = e.id)
        """,
    )
    assert broken == [], f"half-written or inconsistent events: {broken}"
    duplicated = rows(db, "select feed_id, identity from entries group by 1, 2 having count(*) > 1")
    assert duplicated == []


def stored_keys(db: Path | str) -> set[tuple[str, str]]:
    """(feed name, guid) of every stored entry."""
    return {
        (name, guid)
        for name, guid in rows(
            db, "select feeds.name, guid from entries join feeds on feeds.id = feed_id"
        )
    }


def wait_for_first_store(daemon: DaemonProcess, timeout: float = 30.0) -> None:
    """Return as soon as the daemon has logged a stored feed update (checked every 5 ms:
    `wait_for` looks every 50, longer than a pass of these feeds may take)."""
    deadline = time.monotonic() + timeout
    while not any(r.get("status") == "ok" for r in daemon.records()):
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the first stored feed update")
        time.sleep(0.005)


def make_all_due(db: Path | str) -> None:
    """Time passes between rounds: every feed is due again."""
    sql.write_at(db, "update feeds set next_due = null")


def test_kill_9_at_random_moments_loses_nothing_committed(
    http_server: LocalHTTPServer, database: str, tmp_path: Path
) -> None:
    """20 kill -9 and 4 SIGTERM at seeded random moments of the real daemon's ingest
    (every other round in the first 0.6 s after the start, the others within 50 ms of
    the first feed update stored): integrity and whole events after each; every logged
    (committed) feed update present and nothing stored earlier lost; SIGTERM exits 0
    within 10 s; then a complete run stores every item and a re-run adds nothing. On
    PostgreSQL 10 kill -9 and 2 SIGTERM, the same checks."""
    feeds = ChangingFeeds(http_server)
    lines = "\n".join(
        f"      - {{name: feed{n}, url: '{http_server.url(f'/feed{n}')}'}}" for n in range(FEEDS)
    )
    config = write_config(
        tmp_path / "feeds.yaml", f"groups:\n  g:\n    allow_private: true\n    feeds:\n{lines}\n"
    )
    db = database
    rounds = POSTGRESQL_ROUNDS if sql.is_postgresql(db) else ROUNDS
    rng = random.Random(SEED)
    before: set[tuple[str, str]] = set()
    interrupted = 0  # rounds stopped with some feeds stored and others not
    for round_no in range(rounds):
        feeds.round = round_no
        make_all_due(db)
        log = tmp_path / f"round{round_no}.log"
        args = ["run", "--tick", "0.2", "--config", str(config), "--db", str(db),
                "--log-format", "json"]  # fmt: skip
        with DaemonProcess(*args, log=log) as daemon:
            wait_for(lambda: "daemon started" in daemon.text(), what="the daemon's start")
            if round_no % 2:
                # Just after the first feed update is stored: inside the pass, wherever the
                # pass falls after the start on this machine (a loaded one starts later).
                wait_for_first_store(daemon)
                time.sleep(rng.uniform(0.0, 0.05))
            else:
                time.sleep(rng.uniform(0.0, 0.6))
            if round_no % STOP_EVERY == STOP_EVERY - 1:
                code, seconds = daemon.stop(signal.SIGTERM)
                assert code == 0 and seconds < 10, (code, seconds)
            else:
                daemon.kill()
        check_database(db)
        now = stored_keys(db)
        assert before <= now, f"round {round_no}: lost {sorted(before - now)[:5]}"
        acked = {r["feed"] for r in daemon.records() if r.get("status") == "ok"}
        for name in acked:
            served = {(name, item.guid) for item in feed_items(int(name[4:]), round_no)}
            assert served <= now, f"round {round_no}: {name} logged as stored, items missing"
        interrupted += 0 < len(acked) < FEEDS
        before = now
    assert interrupted >= 1, "no kill landed in the middle of a pass"

    make_all_due(db)
    complete = run_cli("run", "--once", "--config", str(config), "--db", str(db))
    assert complete.returncode == 0, complete.stderr
    check_database(db)
    final = stored_keys(db)
    last_round = rounds - 1
    for feed in range(FEEDS):
        assert {(f"feed{feed}", item.guid) for item in feed_items(feed, last_round)} <= final
    make_all_due(db)
    again = run_cli("run", "--once", "--config", str(config), "--db", str(db))
    assert again.returncode == 0, again.stderr
    assert f"{FEEDS} feeds updated (0 failed): 0 new" in again.stdout
    assert stored_keys(db) == final
    check_database(db)


# -- disk full, read-only, locked ----------------------------------------------------------


def local_feed(path: Path, prefix: str, count: int, words: int = 40) -> None:
    items = [
        Item(
            guid=f"{prefix}{n}",
            title=f"{prefix} story {n} " + " ".join(story_words(n, 1, 4)),
            text=" ".join(story_words(n, 2, words)) + f" {prefix}{n}",
            link=f"https://example.org/{prefix}/{n}",
        )
        for n in range(count)
    ]
    path.write_bytes(rss(prefix, items))


# SQLite only: it sets the file's max_page_count (a server's disk cannot be filled here).
def test_disk_full_is_a_clear_error_and_loses_nothing(tmp_path: Path) -> None:
    """With the database at its size limit, an update that needs more room fails with
    "is full", leaves the stored entries and the dedup index as they were, and succeeds
    once there is room again."""
    feed = tmp_path / "big.rss"
    local_feed(feed, "first", 5)
    config = parse_config("groups:\n  g:\n    feeds:\n      - path: big.rss\n", tmp_path / "f.yaml")
    store = open_store(tmp_path / "full.db")
    pipeline = Pipeline(store=store, config=config)
    try:
        assert pipeline.run(all_feeds=True).total("new") == 5
        counts, indexed = store.counts(), len(pipeline.index)
        local_feed(feed, "second", 300, words=200)
        pages = store.db.execute("pragma page_count").fetchone()[0]
        store.db.execute(f"pragma max_page_count = {pages + 2}")
        try:
            report = pipeline.run(all_feeds=True)
        except StoreError as exc:  # if the pass stops at the first store error
            message = str(exc)
        else:  # if the feed records it as its failure and the pass goes on
            assert report.feeds[0].status == "error"
            message = report.feeds[0].error or ""
        assert "is full" in message and "nothing committed is lost" in message
        assert store.counts() == counts
        assert len(pipeline.index) == indexed  # rolled-back entries left the index too
        assert store.db.execute("pragma integrity_check").fetchone()[0] == "ok"
        store.db.execute("pragma max_page_count = 1073741823")
        assert pipeline.run(all_feeds=True).total("new") == 300
        assert store.counts()["entries"] == 305
    finally:
        pipeline.close()
        store.close()


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[None]:
    """Make `path` unwritable for this process: `chattr +i` as root (root ignores file
    modes), a 0444 mode otherwise."""
    if os.geteuid() != 0:
        path.chmod(0o444)
        try:
            yield
        finally:
            path.chmod(0o644)
        return
    chattr = shutil.which("chattr")
    if chattr is None or subprocess.run([chattr, "+i", str(path)]).returncode != 0:
        pytest.skip("running as root without chattr +i: cannot make a file read-only")
    try:
        yield
    finally:
        subprocess.run([chattr, "-i", str(path)], check=True)


# SQLite only: it makes the .db file itself unwritable.
def test_read_only_database_is_refused_at_start_and_still_readable(tmp_path: Path) -> None:
    """`update` and `run` on a read-only database exit 1 with one clear line; the digest
    and status still read it; nothing is lost."""
    db = tmp_path / "ro.db"
    assert run_cli("update", "--all", "--db", str(db)).returncode == 0
    counts = rows(db, "select count(*) from entries")
    with read_only(db):
        for command in (["update", "--all"], ["run", "--once"], ["run"]):
            result = run_cli(*command, "--db", str(db))
            assert result.returncode == 1, (command, result.stderr)
            assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
            assert "is read-only" in result.stderr and str(db) in result.stderr
        digest = run_cli("digest", "--db", str(db))
        assert digest.returncode == 0 and "6 of 6 events" in digest.stdout
        assert run_cli("status", "--db", str(db)).returncode == 0
    assert rows(db, "select count(*) from entries") == counts
    assert rows(db, "pragma integrity_check") == [("ok",)]


# SQLite only: it holds the file's write lock (BEGIN EXCLUSIVE), which PostgreSQL has not.
def test_locked_database_is_a_clear_error_and_loses_nothing(tmp_path: Path) -> None:
    """Another connection holding the write lock: `update` waits the busy timeout, exits
    1 with one line saying so, and writes nothing; once released, it works."""
    db = tmp_path / "locked.db"
    assert run_cli("update", "--all", "--db", str(db)).returncode == 0
    counts = rows(db, "select count(*) from entries")
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("begin exclusive")
    try:
        result = run_cli("update", "--all", "--db", str(db))
    finally:
        holder.execute("rollback")
        holder.close()
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "is locked by another process" in result.stderr
    assert rows(db, "select count(*) from entries") == counts
    again = run_cli("update", "--all", "--db", str(db))
    assert again.returncode == 0, again.stderr
    assert rows(db, "select count(*) from entries") == counts  # nothing new, nothing twice
