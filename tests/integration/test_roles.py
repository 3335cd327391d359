"""Several processes on one real PostgreSQL database: one grouping leader, two standbys and
three fetch workers over 60 feeds served on 127.0.0.1, with kill -9 of a random process at
a random moment in each of 20 rounds. After every round: every served item stored once,
every event consistent, no feed fetched by two workers at once; at the end a pass adds
nothing. Also: a leader stopped (SIGSTOP) long enough loses its lock to a standby and,
woken, stands down without writing."""

from __future__ import annotations

import bisect
import itertools
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from aggregator.store import Store, from_db_time, open_store
from tests.conftest import REPO
from tests.support import sql
from tests.support.http_server import LocalHTTPServer, Request, Response
from tests.support.postgresql import Server

FEEDS = 60
ROUNDS = 20
ITEMS_PER_ROUND = 2
LEASE_S = 4


@dataclass(frozen=True)
class Fetch:
    """One request of a feed: its monotonic span, its wall-clock start, and the lease the
    feed was under when the request arrived (owner's pid, until when), read from the
    database by the handler."""

    started: float
    ended: float
    wall: float
    owner_pid: int | None
    lease_until: float | None


class Feeds:
    """60 RSS feeds whose items grow each round; every request recorded with its time and
    the lease it was made under (once `url` names the database)."""

    def __init__(self, server: LocalHTTPServer) -> None:
        self.server = server
        self.round = 0
        self.url: str | None = None
        self.fetches: dict[int, list[Fetch]] = {n: [] for n in range(FEEDS)}
        for number in range(FEEDS):
            server.route(f"/feed/{number}.xml", self._handler(number))

    def items(self, number: int, upto: int | None = None) -> list[str]:
        last = self.round if upto is None else upto
        return [f"{number}-{r}-{i}" for r in range(last + 1) for i in range(ITEMS_PER_ROUND)]

    def _lease(self, number: int) -> tuple[int | None, float | None]:
        if self.url is None:
            return None, None
        found = sql.at(self.url, "select lease_owner, lease_until from feeds where name = ?",
                       [f"f{number}"])  # fmt: skip
        if not found or found[0][0] is None:
            return None, None
        owner, until = found[0]
        moment = from_db_time(until)
        return int(str(owner).rsplit(":", 1)[1]), moment.timestamp() if moment else None

    def _handler(self, number: int) -> Callable[[Request], Response]:
        def answer(request: Request) -> Response:
            started, wall = time.monotonic(), time.time()
            owner, until = self._lease(number)
            items = "".join(
                f"<item><guid>{key}</guid><title>Story {key} of feed {number}: "
                f"{'council budget vote' if key.endswith('0') else 'storm closes ports'}"
                f" number {key}</title><link>https://feeds.example/{key}</link>"
                f"<description>Body {key} with words w{key} and x{key}.</description></item>"
                for key in self.items(number)
            )
            time.sleep(0.05)  # long enough for two overlapping fetches to be seen
            self.fetches[number].append(Fetch(started, time.monotonic(), wall, owner, until))
            body = f'<rss version="2.0"><channel><title>F{number}</title>{items}</channel></rss>'
            return Response(body=body.encode(), headers={"Content-Type": "application/rss+xml"})

        return answer

    def served(self) -> set[str]:
        return {f"guid:{key}" for number in range(FEEDS) for key in self.items(number)}


def config_text(server: LocalHTTPServer) -> str:
    feeds = "".join(
        f"      - name: f{n}\n        url: {server.url(f'/feed/{n}.xml')}\n" for n in range(FEEDS)
    )
    return (
        "settings:\n  fetch_per_host: 4\n  fetch_workers: 4\n"
        "groups:\n  local:\n    interval: 6h\n    allow_private: true\n"
        f"    feeds:\n{feeds}"
    )


class Cluster:
    def __init__(self, url: str, config: Path, logs: Path) -> None:
        self.url, self.config, self.logs = url, config, logs
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.started = 0
        self.killed: list[tuple[int, float]] = []  # (pid, wall-clock time of its kill -9)

    def start(self, name: str) -> None:
        role = "group" if name.startswith("group") else "fetch"
        self.started += 1
        log = (self.logs / f"{name}-{self.started}.log").open("wb")
        self.processes[name] = subprocess.Popen(
            [sys.executable, "-m", "aggregator", "run", "--role", role, "--db", self.url,
             "--config", str(self.config), "--tick", "1", "--lease", str(LEASE_S)],
            cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip

    def kill(self, name: str) -> None:
        process = self.processes[name]
        self.killed.append((process.pid, time.time()))
        process.send_signal(signal.SIGKILL)
        process.wait()

    def stop_all(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture
def cluster(postgresql_server: Server, tmp_path: Path) -> Iterator[tuple[Cluster, Feeds, str]]:
    url = postgresql_server.database()
    with LocalHTTPServer() as server:
        feeds = Feeds(server)
        feeds.url = url
        config = tmp_path / "feeds.yaml"
        config.write_text(config_text(server), encoding="utf-8")
        made = Cluster(url, config, tmp_path)
        try:
            yield made, feeds, url
        finally:
            made.stop_all()


def settled(store: Store, feeds: Feeds, timeout: float = 90) -> None:
    """Wait until every served item is stored and nothing is staged or due."""
    ends = time.monotonic() + timeout
    want = len(feeds.served())
    while time.monotonic() < ends:
        (stored,) = sql.one(store, "select count(*) from entries")
        (staged,) = sql.one(store, "select count(*) from staged_updates")
        if stored == want and staged == 0:
            return
        time.sleep(0.5)
    raise AssertionError(f"not settled: {stored} of {want} entries, {staged} staged")


def consistent(store: Store, feeds: Feeds) -> None:
    identities = [row[0] for row in sql.rows(store, "select identity from entries")]
    assert len(identities) == len(set(identities))  # one feed per guid here: once each
    assert set(identities) == feeds.served()
    assert sql.rows(store, "select count(*) from entries where event_id is null") == [(0,)]
    bad = sql.rows(
        store,
        "select e.id from events e where e.member_count <>"
        " (select count(*) from entries where event_id = e.id)"
        " or e.canonical_entry_id not in (select id from entries where event_id = e.id)",
    )
    assert bad == []
    empty = sql.rows(store, "select id from events e where not exists"
                     " (select 1 from entries where event_id = e.id)")  # fmt: skip
    assert empty == []


def no_overlapping_fetches(feeds: Feeds) -> None:
    for number, fetches in feeds.fetches.items():
        ordered = sorted(fetches, key=lambda fetch: fetch.started)
        for earlier, later in itertools.pairwise(ordered):
            assert later.started >= earlier.ended, f"feed {number} fetched by two workers at once"


def no_fetch_twice_in_an_interval(
    feeds: Feeds, due_at: list[float], killed: list[tuple[int, float]]
) -> None:
    """A feed is requested once per interval (from one `force_due` to the next: its next
    fetch is then hours away). The one exception: when the worker holding the earlier
    request's lease was killed after that request began and before the later one began,
    and the later one began once that lease had run out (the dead worker never staged)."""
    for number, fetches in feeds.fetches.items():
        for fetch in fetches:
            assert fetch.owner_pid is not None, f"feed {number} requested with no lease held"
        ordered = sorted(fetches, key=lambda fetch: fetch.wall)
        for earlier, later in itertools.pairwise(ordered):
            if bisect.bisect(due_at, earlier.wall) != bisect.bisect(due_at, later.wall):
                continue  # another interval: the feed was due again
            assert earlier.lease_until is not None
            excused = (
                later.owner_pid != earlier.owner_pid
                and later.wall >= earlier.lease_until
                and any(
                    pid == earlier.owner_pid and earlier.wall <= when <= later.wall
                    for pid, when in killed
                )
            )
            assert excused, (
                f"feed {number} requested twice in one interval: at {earlier.wall:.3f} under the"
                f" lease of pid {earlier.owner_pid} until {earlier.lease_until:.3f}, and at"
                f" {later.wall:.3f} by pid {later.owner_pid}; kills: {killed}"
            )


def force_due(store: Store, due_at: list[float] | None = None) -> None:
    """Every feed due now: a new interval begins (its time appended to `due_at`)."""
    if due_at is not None:
        due_at.append(time.time())
    sql.execute(store, "update feeds set next_due = null")


@pytest.mark.skipif(os.cpu_count() == 1, reason="six processes on one core take too long")
def test_workers_and_leaders_killed_at_random_lose_and_repeat_nothing(
    cluster: tuple[Cluster, Feeds, str],
) -> None:
    processes, feeds, url = cluster
    rng = random.Random(20261207)
    names = ["group-a", "group-b", "group-c", "fetch-a", "fetch-b", "fetch-c"]
    processes.start("group-a")
    time.sleep(1)  # the first leader is the first one started
    for name in names[1:]:
        processes.start(name)
    store = open_store(url, create=False) if _wait_for_schema(url) else None
    assert store is not None
    due_at: list[float] = []  # when each interval after the first began
    try:
        settled(store, feeds, timeout=180)
        for number in range(ROUNDS):
            feeds.round = number + 1
            force_due(store, due_at)
            time.sleep(rng.uniform(0.2, 2.5))
            victim = rng.choice(names)
            processes.kill(victim)
            processes.start(victim)
            settled(store, feeds)
            consistent(store, feeds)
            no_overlapping_fetches(feeds)
            no_fetch_twice_in_an_interval(feeds, due_at, processes.killed)
        force_due(store, due_at)
        counts = "select (select count(*) from entries), (select count(*) from events)"
        before = sql.one(store, counts)
        # A pass of every feed (each requested and its fetch committed), nothing new in any.
        wait_for(lambda: all(any(fetch.wall >= due_at[-1] for fetch in fetches)
                             for fetches in feeds.fetches.values()), 90)  # fmt: skip
        wait_for(lambda: sql.one(store, "select count(*) from feeds where next_due is null")
                 == (0,), 90)  # fmt: skip
        settled(store, feeds)
        assert sql.one(store, counts) == before
        consistent(store, feeds)
        no_fetch_twice_in_an_interval(feeds, due_at, processes.killed)
    finally:
        store.close()


def _wait_for_schema(url: str, timeout: float = 60) -> bool:
    ends = time.monotonic() + timeout
    while time.monotonic() < ends:
        try:
            open_store(url, create=False).close()
            return True
        except Exception:
            time.sleep(0.3)
    return False


def leader_pid(url: str) -> int | None:
    from aggregator.store.coordination import server_holder

    found = server_holder(url)
    return found[0] if found is not None else None


def wait_for(condition: Callable[[], bool], timeout: float) -> float:
    """Seconds until `condition` held; AssertionError after `timeout`."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if condition():
            return time.monotonic() - started
        time.sleep(0.25)
    raise AssertionError(f"not within {timeout}s")


def test_a_stopped_or_cut_off_leader_is_replaced_and_stands_down(
    cluster: tuple[Cluster, Feeds, str], postgresql_server: Server
) -> None:
    """SIGSTOP the leader: a standby leads within 30 s; SIGCONT: the old leader notices
    before its next write and exits 1. Then pg_terminate_backend the new leader's lock
    session: it stands down too, and the third process leads. Nothing is lost or doubled."""
    import psycopg

    processes, feeds, url = cluster
    processes.start("group-a")
    assert _wait_for_schema(url)
    wait_for(lambda: leader_pid(url) == processes.processes["group-a"].pid, 60)
    processes.start("group-b")
    processes.start("fetch-a")
    store = open_store(url, create=False)
    try:
        settled(store, feeds, timeout=180)
        first = processes.processes["group-a"]
        first.send_signal(signal.SIGSTOP)
        feeds.round = 1
        force_due(store)
        took = wait_for(lambda: leader_pid(url) == processes.processes["group-b"].pid, 30)
        settled(store, feeds)  # the new leader applies the round
        first.send_signal(signal.SIGCONT)
        assert first.wait(timeout=30) == 1  # stood down at its next write, exit 1
        log = next(processes.logs.glob("group-a-*.log")).read_text()
        assert "standing down" in log
        processes.start("group-c")
        second = processes.processes["group-b"]
        with psycopg.connect(postgresql_server.url(), autocommit=True) as admin:
            admin.execute(
                "select pg_terminate_backend(pid) from pg_stat_activity"
                " where application_name = %s",
                [f"aggregator {second.pid} run --role group"],
            )
        feeds.round = 2
        force_due(store)
        assert second.wait(timeout=30) == 1
        wait_for(lambda: leader_pid(url) == processes.processes["group-c"].pid, 30)
        settled(store, feeds)
        consistent(store, feeds)
        assert took < 30
        shown = subprocess.run(
            [sys.executable, "-m", "aggregator", "status", "--db", url, "--config",
             str(processes.config)], capture_output=True, text=True, cwd=REPO, check=False,
        )  # fmt: skip
        leader = processes.processes["group-c"].pid
        assert f"running, pid {leader}" in shown.stdout, shown.stdout + shown.stderr
    finally:
        store.close()


STAGED_ROUND = 8  # every feed lists 18 items: 1,080 entries staged for the leader


def report_lines(logs: Path, number: int) -> list[str]:
    """The leader's report lines (after each commit) of feed `number`, in every group log."""
    return [
        line
        for log in sorted(logs.glob("group-*.log"))
        for line in log.read_text(errors="replace").splitlines()
        if f"feed='f{number}' status=" in line
    ]


def test_a_leader_whose_store_session_is_cut_while_applying_applies_each_update_once(
    cluster: tuple[Cluster, Feeds, str], postgresql_server: Server
) -> None:
    """Fetch workers stage all 60 feeds (1,080 entries) before any leader runs; a leader
    starts applying them (a standby waits), and every connection of its store
    (application_name `aggregator <pid> store`, not its lock session) is ended by
    pg_terminate_backend midway. No traceback; each staged update applied once: every
    entry stored once, events consistent, nothing left staged, no feed reported twice."""
    import psycopg

    processes, feeds, url = cluster
    feeds.round = STAGED_ROUND
    processes.start("fetch-a")
    processes.start("fetch-b")
    assert _wait_for_schema(url)
    store = open_store(url, create=False)
    try:
        wait_for(lambda: sql.one(store, "select count(*) from staged_updates") == (FEEDS,), 90)
        for name in ("fetch-a", "fetch-b"):
            processes.processes[name].send_signal(signal.SIGTERM)
            assert processes.processes[name].wait(timeout=30) == 0
        assert sql.one(store, "select count(*) from entries") == (0,)
        processes.start("group-a")
        leader = processes.processes["group-a"]
        wait_for(lambda: leader_pid(url) == leader.pid, 60)
        processes.start("group-b")
        wait_for(lambda: sql.one(store, "select count(*) from entries")[0] >= 150, 90)
        with psycopg.connect(postgresql_server.url(), autocommit=True) as admin:
            ended = admin.execute(
                "select pg_terminate_backend(pid) from pg_stat_activity"
                " where application_name = %s",
                [f"aggregator {leader.pid} store"],
            ).fetchall()
        (left,) = sql.one(store, "select count(*) from staged_updates")
        assert ended and all(done for (done,) in ended)
        assert 0 < left < FEEDS, "the store's session was not cut while applying"
        settled(store, feeds)
        consistent(store, feeds)  # every served entry stored once, whole events
        assert sql.one(store, "select count(*) from entries") == (len(feeds.served()),)
        assert sql.one(store, "select count(*) from staged_updates") == (0,)
        items = len(feeds.items(0, STAGED_ROUND))
        for number in range(FEEDS):
            reported = report_lines(processes.logs, number)
            assert len(reported) <= 1, reported  # applied (and committed) once at most
            assert all(f"status=ok new={items} " in line for line in reported), reported
        log = "\n".join(p.read_text(errors="replace") for p in processes.logs.glob("group-*"))
        assert "Traceback" not in log
        assert "lost the connection" in log or "reconnecting" in log  # the cut was seen
    finally:
        store.close()
