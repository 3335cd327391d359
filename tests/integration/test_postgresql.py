"""The PostgreSQL backend against a real server (started by the session: `postgresql_server`),
beside SQLite: the same seed gives the same events, the same searches find the same
events, and the faults of a shared server (unreachable, newer schema, a lost session, a
second writer) each give one clear line and lose nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import astuple
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from aggregator.errors import AlreadyRunning, LeadershipLost, StoreError
from aggregator.models import EventQuery, EventView, Mark
from aggregator.store import SCHEMA_VERSION, Store, open_store
from aggregator.store.coordination import ServerWriterLock, server_holder
from aggregator.store.locations import PASSWORD_ENV
from aggregator.store.postgresql import BASELINE_VERSION, MIGRATIONS, display_url
from aggregator.store.sqlite import MIGRATIONS as SQLITE_MIGRATIONS
from tests.conftest import REPO, SEED_CONFIG
from tests.support import sql
from tests.support.browser import SEED_NOW
from tests.support.postgresql import PASSWORD, Server

SEARCHES = ("coree", "Corée munitions", "Tesla Chatsworth", "Tesla Moscou", "russie",
            "États-Unis", "etats unis", "Shoïgou", "Pyongyang", "Maison Blanche")  # fmt: skip


def shape(view: EventView) -> tuple[Any, ...]:
    """What a reader sees of an event, without the times the two runs differ in."""
    members = sorted((m.feed_name, m.identity, m.title, m.join_level, m.match_rule,
                      m.hidden_by) for m in (view.canonical, *view.others))  # fmt: skip
    return (view.id, view.canonical.identity, tuple(members), view.canonical_reason,
            view.story_id, tuple(e.id for e in view.story), view.read, view.starred)  # fmt: skip


def seeded(location: str | Path) -> Store:
    """The seed feeds through the real pipeline one at a time, in the config's order: the
    two feeds of one pass are stored in the order their parses end, which would give the
    two engines' runs different event ids."""
    from aggregator.config import load_config
    from aggregator.pipeline import Pipeline

    store = open_store(location)
    config = load_config(SEED_CONFIG)
    pipeline = Pipeline(store=store, config=config, clock=lambda: SEED_NOW)
    try:
        for spec in config.feeds:
            pipeline.update_feeds([spec])
    finally:
        pipeline.close()
    return store


def test_the_schema_versions_of_both_backends_agree() -> None:
    """Every SQLite migration after the PostgreSQL baseline has its PostgreSQL twin."""
    assert BASELINE_VERSION + len(MIGRATIONS) == SCHEMA_VERSION == len(SQLITE_MIGRATIONS)


def test_the_seed_gives_the_same_events_and_searches_in_both(
    postgresql_server: Server, tmp_path: Path
) -> None:
    lite, pg = seeded(tmp_path / "seed.db"), seeded(postgresql_server.database())
    try:
        since = SEED_NOW - timedelta(days=3650)
        assert [shape(v) for v in lite.events_since(since)] == [
            shape(v) for v in pg.events_since(since)
        ]
        assert len(pg.events_since(since)) == 6
        for words in SEARCHES:
            found = [sorted(e.id for e in s.find_events(EventQuery(search=words)))
                     for s in (lite, pg)]  # fmt: skip
            assert found[0] == found[1], words
        assert lite.counts() == pg.counts()
        assert [astuple(f)[:7] for f in lite.feed_states()] == [
            astuple(f)[:7] for f in pg.feed_states()
        ]
        assert lite.unread_by_group() == pg.unread_by_group()
        assert lite.feed_overlap() == pg.feed_overlap()
    finally:
        lite.close()
        pg.close()


def test_a_newer_schema_is_refused_with_its_version(postgresql_server: Server) -> None:
    url = postgresql_server.database()
    store = open_store(url)
    sql.execute(store, "update meta set value = ? where key = 'schema_version'",
                [str(SCHEMA_VERSION + 1)])  # fmt: skip
    store.close()
    with pytest.raises(StoreError, match=f"schema version {SCHEMA_VERSION + 1}, newer"):
        open_store(url)


def test_an_empty_database_is_not_created_when_reading(postgresql_server: Server) -> None:
    with pytest.raises(StoreError, match="no aggregator database"):
        open_store(postgresql_server.database(), create=False)


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aggregator", *args], capture_output=True, text=True,
        cwd=REPO, env={**os.environ, **(env or {})}, timeout=120, check=False,
    )  # fmt: skip


def test_an_unreachable_server_is_one_line_and_exit_1_without_the_password(
    postgresql_server: Server,
) -> None:
    closed = postgresql_server.port + 1 if postgresql_server.port < 65535 else 1
    url = f"postgresql://aggregator:{PASSWORD}@127.0.0.1:{closed}/none"
    done = run_cli("digest", "--db", url, "--config", str(SEED_CONFIG))
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("aggregator: cannot connect to database")
    assert "Traceback" not in done.stderr and PASSWORD not in done.stderr
    assert display_url(url) in lines[0]


def test_the_password_comes_from_the_environment_or_a_file(
    postgresql_server: Server, tmp_path: Path
) -> None:
    """No password in the URL: the environment variable, or the config's password file."""
    url = postgresql_server.database().replace(f":{PASSWORD}@", "@")
    without = run_cli("update", "--all", "--db", url, "--config", str(SEED_CONFIG),
                      env={PASSWORD_ENV: "wrong"})  # fmt: skip
    assert without.returncode == 1 and "password authentication failed" in without.stderr
    done = run_cli("update", "--all", "--db", url, "--config", str(SEED_CONFIG),
                   env={PASSWORD_ENV: PASSWORD})  # fmt: skip
    assert done.returncode == 0, done.stderr
    secret = tmp_path / "password"
    secret.write_text(PASSWORD + "\n")
    config = tmp_path / "feeds.yaml"
    text = SEED_CONFIG.read_text(encoding="utf-8")
    text = text.replace("  database: data/aggregator.db", f"  database: {url}")
    text = text.replace("  database_password_file: null", f"  database_password_file: {secret}")
    # The seed feeds are paths relative to the config's directory.
    config.write_text(text.replace("../seeds/", f"{REPO}/seeds/"), encoding="utf-8")
    env = {key: value for key, value in os.environ.items() if key != PASSWORD_ENV}
    shown = subprocess.run(
        [sys.executable, "-m", "aggregator", "digest", "--config", str(config), "--since",
         "100000d", "--format", "json"],
        capture_output=True, text=True, cwd=REPO, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert '"events"' in shown.stdout and PASSWORD not in shown.stdout + shown.stderr


def test_a_password_in_the_configs_url_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "feeds.yaml"
    config.write_text(
        "settings:\n  database: postgresql://u:secret@db.example/agg\ngroups: {}\n",
        encoding="utf-8",
    )
    done = run_cli("update", "--all", "--config", str(config))
    assert done.returncode == 2 and "put it in database_password_file" in done.stderr


def terminate(server: Server, application: str | None = None, pid: int | None = None) -> int:
    """pg_terminate_backend the sessions of one backend pid or one application name."""
    with psycopg.connect(server.url(), autocommit=True) as admin:
        rows = admin.execute(
            "select pg_terminate_backend(pid) from pg_stat_activity"
            " where pid <> pg_backend_pid() and (pid = %s or application_name = %s)",
            [pid, application],
        ).fetchall()
    return len(rows)


def backend_pid(store: Store) -> int:
    return int(sql.one(store, "select pg_backend_pid()")[0])


def test_a_lost_connection_is_replaced_outside_a_transaction_and_fails_cleanly_inside(
    postgresql_server: Server,
) -> None:
    store = seeded(postgresql_server.database())
    try:
        before = store.counts()
        assert terminate(postgresql_server, pid=backend_pid(store)) == 1
        assert store.counts() == before  # a new connection, the read retried
        first = backend_pid(store)
        with pytest.raises(StoreError, match="connection"), store.transaction():
            terminate(postgresql_server, pid=first)
            store.set_next_due(1, SEED_NOW)
        assert store.counts() == before  # and the store works again afterwards
    finally:
        store.close()


def test_one_writer_per_database_and_a_writer_whose_session_ends_stands_down(
    postgresql_server: Server,
) -> None:
    url = postgresql_server.database()
    open_store(url).close()
    first = ServerWriterLock(url, command="run")
    first.acquire()
    try:
        assert server_holder(url) == (os.getpid(), "run")
        with pytest.raises(AlreadyRunning, match=f"pid {os.getpid()}"):
            ServerWriterLock(url, command="update").acquire()
        first.check()
        assert terminate(postgresql_server, application=f"aggregator {os.getpid()} run") == 1
        with pytest.raises(LeadershipLost):
            first.check()
        second = ServerWriterLock(url, command="update")
        second.acquire()  # the lock died with the session
        assert server_holder(url) == (os.getpid(), "update")
        second.release()
        assert server_holder(url) is None
    finally:
        first.release()


def test_status_names_the_server_and_the_writer(postgresql_server: Server) -> None:
    url = postgresql_server.database()
    assert run_cli("update", "--all", "--db", url, "--config", str(SEED_CONFIG)).returncode == 0
    done = run_cli("status", "--db", url, "--config", str(SEED_CONFIG))
    assert done.returncode == 0, done.stderr
    assert "daemon       not running" in done.stdout
    assert display_url(url) in done.stdout and PASSWORD not in done.stdout
    # The server's size, and no SQLite write-ahead file it does not have.
    database = next(line for line in done.stdout.splitlines() if line.startswith("database"))
    assert database.endswith(("B", "KiB", "MiB", "GiB")) and "WAL" not in database


def test_migrate_moves_a_sqlite_database_into_postgresql_and_back(
    postgresql_server: Server, tmp_path: Path
) -> None:
    """Counts, events, members, marks, merges and stories equal after the move; the moved
    database goes on: a new pass adds nothing, a new event gets an id above every old one."""
    path = tmp_path / "old.db"
    store = seeded(path)
    views = store.events_since(SEED_NOW - timedelta(days=3650))
    first, second, third = (view.id for view in views[:3])
    with store.transaction():
        store.mark_events([first], Mark(read=True, starred=True), now=SEED_NOW)
        store.merge_events(first, second, similarity=None, reason="merged by hand", now=SEED_NOW)
        store.link_stories(first, third, similarity=0.5, probability=None, now=SEED_NOW)
    before = [shape(v) for v in store.events_since(SEED_NOW - timedelta(days=3650))]
    history, counts = store.event_merge_history(first), store.counts()
    store.close()
    url = postgresql_server.database()
    done = run_cli("migrate", "--db", str(path), "--to", url)
    assert done.returncode == 0, done.stderr
    assert "copied" in done.stdout and PASSWORD not in done.stdout
    moved = open_store(url)
    try:
        assert [shape(v) for v in moved.events_since(SEED_NOW - timedelta(days=3650))] == before
        assert moved.event_merge_history(first) == history and moved.counts() == counts
        assert moved.current_event_id(second) == first
        with moved.transaction():
            assert moved.create_event(SEED_NOW) > max(v[0] for v in before)
    finally:
        moved.close()
    again = run_cli("migrate", "--db", str(path), "--to", url)
    assert again.returncode == 1 and "is not empty" in again.stderr
    back = tmp_path / "back.db"
    assert run_cli("migrate", "--db", url, "--to", str(back)).returncode == 0
    returned = open_store(back)
    try:
        shapes = [shape(v) for v in returned.events_since(SEED_NOW - timedelta(days=3650))]
        assert shapes == before
    finally:
        returned.close()
    update = run_cli("update", "--all", "--db", url, "--config", str(SEED_CONFIG))
    assert update.returncode == 0, update.stderr
    assert open_store(url).counts()["entries"] == counts["entries"]


def test_the_daemon_rides_out_a_dropped_connection(
    postgresql_server: Server, tmp_path: Path
) -> None:
    """Its store's session ended by the server between passes: the daemon reconnects and
    goes on (no traceback); its writer lock's session ended: it stands down, exit 1."""
    import time

    url = postgresql_server.database()
    log = tmp_path / "daemon.log"
    daemon = subprocess.Popen(
        [sys.executable, "-m", "aggregator", "run", "--db", url, "--config", str(SEED_CONFIG),
         "--tick", "1"], cwd=REPO, stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        store = None
        for _ in range(120):
            try:
                store = open_store(url, create=False)
                if store.counts()["entries"] > 0:
                    break
                store.close()
            except StoreError:
                pass
            time.sleep(0.5)
        assert store is not None
        seen = len(log.read_text())
        assert terminate(postgresql_server, application=f"aggregator {daemon.pid} store") >= 1
        sql.execute(store, "update feeds set next_due = null")  # work for its next tick
        for _ in range(60):
            if "feeds updated" in log.read_text()[seen:]:
                break
            time.sleep(0.5)
        else:
            raise AssertionError("no pass after the connection was dropped:\n" + log.read_text())
        assert daemon.poll() is None  # still running
        assert terminate(postgresql_server, application=f"aggregator {daemon.pid} run") == 1
        sql.execute(store, "update feeds set next_due = null")
        assert daemon.wait(timeout=60) == 1
        store.close()
    finally:
        if daemon.poll() is None:
            daemon.kill()
    text = log.read_text()
    assert "Traceback" not in text, text
    assert "standing down" in text


def test_a_worker_whose_lease_ran_out_writes_nothing(postgresql_server: Server) -> None:
    """Leases that end at once: every fetch succeeds, yet nothing is staged and no feed's
    fetch state moves (validators or next fetch), so the worker that holds a feed now
    never gets a 304 for entries nobody staged."""
    from aggregator.config import load_config
    from aggregator.roles import FetchWorker

    store = open_store(postgresql_server.database())
    worker = FetchWorker(store=store, config=load_config(SEED_CONFIG), lease=timedelta(0))
    try:
        before = [astuple(state) for state in store.feed_states()]
        report = worker.run()
        assert [feed.error for feed in report.feeds] == ["lease expired"] * 2
        assert store.staged_count() == 0
        assert [astuple(state) for state in store.feed_states()] == before
    finally:
        worker.close()
        store.close()


def test_processes_starting_together_insert_the_feeds_list_once(
    postgresql_server: Server,
) -> None:
    """Two stores sync the same new feeds at once (fetch workers started together on an
    empty database): the second waits for the first's transaction, then finds its feeds,
    where it failed on the feeds' unique location."""
    import threading
    from datetime import UTC, datetime

    from aggregator.models import FeedSpec

    url = postgresql_server.database()
    first, second = open_store(url), open_store(url)
    specs = [FeedSpec(name=f"f{n}", group="g", url=f"https://{n}.example/feed") for n in range(3)]
    now = datetime(2026, 12, 8, tzinfo=UTC)
    outcome: dict[str, object] = {}

    def sync() -> None:
        try:
            outcome["ids"] = second.sync_feeds(specs, now)
        except Exception as exc:  # reported below, not lost in the thread
            outcome["error"] = exc

    try:
        with first.transaction():
            ids = first.sync_feeds(specs, now)
            racer = threading.Thread(target=sync)
            racer.start()
            racer.join(timeout=1)
            assert racer.is_alive()  # its turn comes after this transaction
        racer.join(timeout=30)
        assert outcome == {"ids": ids}
        assert sql.one(first, "select count(*) from feeds") == (3,)
    finally:
        first.close()
        second.close()
