"""The fetch pool: per-host caps, late fetches set aside, the hard deadline, dropped keys."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest

from aggregator.errors import FetchError
from aggregator.ingest.fetch_pool import FetchPool, Finished

# A bound to detect a hang, never a measure of speed.
HANG = 10.0


class SkewedClock:
    """Real monotonic time plus an offset the test moves forward (lateness, deadlines)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.offset


class Gate:
    """Jobs that record that they started and then wait until released."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self._lock = threading.Lock()
        self._release: dict[str, threading.Event] = {}

    def job(self, key: str, result: str | None = None) -> Callable[[], str]:
        event = self._release.setdefault(key, threading.Event())

        def run() -> str:
            with self._lock:
                self.started.append(key)
            event.wait(HANG)
            return result if result is not None else f"done:{key}"

        return run

    def release(self, key: str) -> None:
        self._release[key].set()

    def release_all(self) -> None:
        for event in self._release.values():
            event.set()


def wait_started(gate: Gate, count: int) -> None:
    """Until `count` jobs have started (the pool starts them from collect())."""
    deadline = time.monotonic() + HANG
    while len(gate.started) < count:
        assert time.monotonic() < deadline, f"only {gate.started} started"
        time.sleep(0.01)


def collect_until(pool: FetchPool[str], count: int) -> list[Finished[str]]:
    """Call collect() until `count` jobs have finished."""
    finished: list[Finished[str]] = []
    deadline = time.monotonic() + HANG
    while len(finished) < count:
        assert time.monotonic() < deadline, f"only {[f.key for f in finished]} finished"
        finished.extend(pool.collect(0.05))
    return finished


@pytest.fixture
def gate() -> Iterator[Gate]:
    g = Gate()
    yield g
    g.release_all()


def test_results_come_back_as_futures_with_values_and_errors() -> None:
    """A job's value and a job's exception both come back through the future."""
    pool: FetchPool[str] = FetchPool(workers=2, per_host=2, hard_deadline=HANG)

    def fails() -> str:
        raise FetchError("http_500")

    pool.submit("ok", lambda: "value")
    pool.submit("bad", fails)
    finished = {f.key: f for f in collect_until(pool, 2)}
    assert finished["ok"].future.result() == "value"
    with pytest.raises(FetchError, match="http_500"):
        finished["bad"].future.result()
    assert len(pool) == 0


def test_a_key_is_queued_once(gate: Gate) -> None:
    """Submitting a key already queued or running is refused."""
    pool: FetchPool[str] = FetchPool(workers=1, per_host=1, hard_deadline=HANG)
    assert pool.submit("a", gate.job("a"))
    assert not pool.submit("a", gate.job("a"))
    pool.collect(0)
    wait_started(gate, 1)
    assert "a" in pool
    assert not pool.submit("a", gate.job("a"))
    gate.release("a")
    collect_until(pool, 1)
    assert "a" not in pool and pool.submit("a", lambda: "again")


def test_at_most_per_host_fetches_to_one_host_and_others_pass_it(gate: Gate) -> None:
    """Three jobs for one host with per_host=2: two run; a job for another host queued
    behind the third starts at once instead of waiting."""
    pool: FetchPool[str] = FetchPool(workers=8, per_host=2, hard_deadline=HANG)
    for key in ("a1", "a2", "a3"):
        pool.submit(key, gate.job(key), host="a:80")
    pool.submit("b1", gate.job("b1"), host="b:80")
    pool.collect(0)
    wait_started(gate, 3)
    time.sleep(0.1)  # give a wrongly started fourth job the time to show up
    assert sorted(gate.started) == ["a1", "a2", "b1"]
    gate.release("a1")
    assert [f.key for f in collect_until(pool, 1)] == ["a1"]
    pool.collect(0)
    wait_started(gate, 4)
    assert gate.started[-1] == "a3"


def test_workers_cap_the_fetches_that_are_not_late(gate: Gate) -> None:
    """With 2 workers, a third job waits while the first two are young."""
    pool: FetchPool[str] = FetchPool(workers=2, per_host=2, hard_deadline=HANG)
    for key in ("a", "b", "c"):
        pool.submit(key, gate.job(key), host=f"{key}:80")
    pool.collect(0)
    wait_started(gate, 2)
    time.sleep(0.1)
    assert gate.started == ["a", "b"]
    gate.release("b")
    collect_until(pool, 1)
    pool.collect(0)
    wait_started(gate, 3)


def test_late_fetches_give_their_slot_back_up_to_a_limit(gate: Gate) -> None:
    """Once the running jobs are late, queued ones start; at most `workers` late jobs are
    set aside, so threads never exceed twice the workers."""
    clock = SkewedClock()
    pool: FetchPool[str] = FetchPool(
        workers=2, per_host=8, hard_deadline=1000, late_after=5, monotonic=clock
    )
    for index in range(7):
        pool.submit(f"j{index}", gate.job(f"j{index}"), host=f"h{index}:80")
    pool.collect(0)
    wait_started(gate, 2)
    clock.offset += 6  # j0, j1 are late now: their slots free up
    pool.collect(0)
    wait_started(gate, 4)
    clock.offset += 6  # j2, j3 late too, but the late allowance (2) is full
    pool.collect(0)
    time.sleep(0.1)
    assert len(gate.started) == 4
    assert pool.threads == 4


def test_a_job_past_the_hard_deadline_is_reported_and_abandoned(gate: Gate) -> None:
    """A job that never returns is reported as a timeout at the hard deadline; its late
    result is dropped, and its thread stops counting once it ends."""
    clock = SkewedClock()
    pool: FetchPool[str] = FetchPool(workers=1, per_host=1, hard_deadline=30, monotonic=clock)
    pool.submit("stuck", gate.job("stuck"), host="h:80")
    pool.collect(0)
    wait_started(gate, 1)
    clock.offset += 31
    finished = pool.collect(0)
    assert [f.key for f in finished] == ["stuck"]
    with pytest.raises(FetchError) as info:
        finished[0].future.result()
    assert info.value.reason == "timeout"
    assert "stuck" not in pool and pool.threads == 1
    gate.release("stuck")
    deadline = time.monotonic() + HANG
    while pool.threads:
        assert time.monotonic() < deadline
        assert pool.collect(0.05) == []  # the real result never surfaces
    assert len(pool) == 0


def test_an_abandoned_fetch_still_counts_for_its_host(gate: Gate) -> None:
    """While an abandoned fetch's thread lives, its host's cap still counts it: a hung
    server gets no extra connections."""
    clock = SkewedClock()
    pool: FetchPool[str] = FetchPool(workers=4, per_host=1, hard_deadline=30, monotonic=clock)
    pool.submit("first", gate.job("first"), host="h:80")
    pool.collect(0)
    wait_started(gate, 1)
    clock.offset += 31
    pool.collect(0)
    pool.submit("second", gate.job("second"), host="h:80")
    pool.collect(0)
    time.sleep(0.1)
    assert gate.started == ["first"]
    gate.release("first")
    deadline = time.monotonic() + HANG
    while len(gate.started) < 2:
        assert time.monotonic() < deadline
        pool.collect(0.05)
    assert gate.started == ["first", "second"]


def test_discard_drops_queued_jobs_and_ignores_running_ones(gate: Gate) -> None:
    """Discarded keys: the queued one never runs, the running one's result is ignored."""
    pool: FetchPool[str] = FetchPool(workers=1, per_host=1, hard_deadline=HANG)
    pool.submit("running", gate.job("running"))
    pool.collect(0)
    wait_started(gate, 1)
    pool.submit("queued", gate.job("queued"))
    pool.discard(["running", "queued"])
    assert len(pool) == 0
    gate.release("running")
    deadline = time.monotonic() + HANG
    while pool.threads:
        assert time.monotonic() < deadline
        assert pool.collect(0.05) == []
    assert gate.started == ["running"]


def test_collect_returns_at_once_when_idle() -> None:
    """Nothing queued or running: collect() does not wait out its timeout."""
    pool: FetchPool[str] = FetchPool(workers=1, per_host=1, hard_deadline=HANG)
    started = time.monotonic()
    assert pool.collect(HANG) == []
    assert time.monotonic() - started < HANG


def test_limits_are_validated() -> None:
    """Zero workers or a non-positive deadline is a programming error."""
    with pytest.raises(ValueError):
        FetchPool(workers=0, per_host=1, hard_deadline=1)
    with pytest.raises(ValueError):
        FetchPool(workers=1, per_host=1, hard_deadline=0)
