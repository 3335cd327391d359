"""A bounded pool for fetches: a cap per host, late fetches set aside, a hard deadline.

Why not `concurrent.futures.ThreadPoolExecutor`: its queue is first in, first out, so a
handful of hung servers occupy every worker and the healthy feeds queued behind them wait
for the hung ones' deadlines; its workers are joined at interpreter exit, so a stopping
daemon would wait for them too. Here:

* **Decisions in the caller's thread.** Which queued fetch starts next, which one is late,
  which one has outlived its deadline: all decided in `collect()`, in the thread that calls
  it (the daemon's tick). Worker threads only run one job each and report.
* **At most `per_host` fetches per host** (the caller names each job's host:
  `schedule.host_key`, host and port; local files have none). A queued fetch whose host
  is busy is skipped, not waited for, so one slow host delays only its own feeds.
* **Late fetches give their slot back.** A fetch still running after `late_after`
  seconds is almost certainly waiting on a slow or hung server (most feeds answer within
  a second or two). It keeps its thread but stops counting against `workers`, up to
  `workers` such late fetches; past that they keep their slots. So hung servers cannot
  stop healthy feeds from starting, and there are never more than `2 * workers` threads.
* **A hard deadline.** The fetcher enforces its own total deadline, but some waits cannot
  be interrupted (name resolution). A job still running `hard_deadline` seconds after it
  started is reported as a `timeout` failure and abandoned: its thread is left to finish
  on its own (daemon threads: they never delay exit) and its result is dropped.
* **No results piling up.** Nothing starts between two `collect()` calls, so at most
  `2 * workers` finished results wait in memory for the caller.
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Generic, TypeVar

from aggregator.errors import FetchError

T = TypeVar("T")

# Past this, a running fetch stops holding a worker slot (see the module docstring).
LATE_AFTER_SECONDS = 5.0
# The pool's deadline is the fetcher's total deadline plus this: the fetcher's own
# watchdog should always fire first; the pool's is the backstop for uninterruptible waits.
HARD_DEADLINE_GRACE_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Finished(Generic[T]):
    """A job that ended: its future holds the result or the exception it raised."""

    key: str
    future: Future[T]
    started: float  # monotonic time the job started


@dataclass(slots=True)
class _Job(Generic[T]):
    key: str
    host: str | None
    run: Callable[[], T]
    token: int = 0
    started: float = 0.0


class FetchPool(Generic[T]):
    """Runs keyed jobs (one per feed) under the limits of the module docstring.

    Not thread-safe: `submit`, `collect`, `discard` and `configure` must be called from
    one thread (the pipeline's). Each key is queued or running at most once.
    """

    def __init__(
        self,
        *,
        workers: int,
        per_host: int,
        hard_deadline: float,
        late_after: float = LATE_AFTER_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
        thread_name: str = "fetch",
    ) -> None:
        self._monotonic = monotonic
        self._thread_name = thread_name
        self.configure(
            workers=workers, per_host=per_host, hard_deadline=hard_deadline, late_after=late_after
        )
        self._queued: list[_Job[T]] = []
        self._running: dict[int, _Job[T]] = {}
        self._abandoned: dict[int, _Job[T]] = {}  # threads still alive, results dropped
        self._results: queue.SimpleQueue[tuple[int, Future[T]]] = queue.SimpleQueue()
        self._tokens = itertools.count(1)

    def configure(
        self, *, workers: int, per_host: int, hard_deadline: float, late_after: float | None = None
    ) -> None:
        """Change the limits; they apply to the jobs started from now on."""
        if workers < 1 or per_host < 1 or hard_deadline <= 0:
            raise ValueError("workers and per_host must be at least 1, the deadline positive")
        self.workers = workers
        self.per_host = per_host
        self.hard_deadline = hard_deadline
        if late_after is not None:
            self.late_after = late_after

    # -- the queue ---------------------------------------------------------------------

    def submit(self, key: str, run: Callable[[], T], *, host: str | None = None) -> bool:
        """Queue a job behind the others; False (and nothing queued) when `key` is
        already queued or running."""
        if key in self:
            return False
        self._queued.append(_Job(key=key, host=host, run=run))
        return True

    def discard(self, keys: Iterable[str]) -> None:
        """Forget these keys: queued jobs are dropped, running ones' results ignored."""
        gone = set(keys)
        self._queued = [job for job in self._queued if job.key not in gone]
        for token, job in list(self._running.items()):
            if job.key in gone:
                self._abandoned[token] = self._running.pop(token)

    def __contains__(self, key: object) -> bool:
        return any(job.key == key for job in self._queued) or any(
            job.key == key for job in self._running.values()
        )

    def keys(self) -> list[str]:
        """The keys of the fetches queued or running."""
        return [job.key for job in (*self._queued, *self._running.values())]

    def __len__(self) -> int:
        """Jobs queued or running (abandoned ones excluded)."""
        return len(self._queued) + len(self._running)

    @property
    def threads(self) -> int:
        """Worker threads alive, abandoned ones included."""
        return len(self._running) + len(self._abandoned)

    # -- running -----------------------------------------------------------------------

    def collect(self, timeout: float) -> list[Finished[T]]:
        """Start what may start, then wait up to `timeout` seconds for jobs to end.

        Returns as soon as at least one job ended (all those that did, in the order they
        ended, jobs past the hard deadline included as `timeout` failures), or when the
        time is up, or at once when nothing is queued or running.
        """
        until = self._monotonic() + max(0.0, timeout)
        finished: list[Finished[T]] = []
        while True:
            self._drain(finished, block=None)
            self._expire(finished)
            self._start_ready()
            if finished or (not self._queued and not self._running):
                return finished
            now = self._monotonic()
            if now >= until:
                return finished
            # Wake up at the next change we must act on: the time limit, a job turning
            # late (its slot frees up) or passing the hard deadline.
            wake = min([until, *self._next_changes()])
            self._drain(finished, block=max(0.0, wake - now))

    def _drain(self, finished: list[Finished[T]], *, block: float | None) -> None:
        """Move reported results into `finished`; wait up to `block` s for the first."""
        try:
            item = self._results.get(timeout=block) if block else self._results.get_nowait()
        except queue.Empty:
            return
        while True:
            token, future = item
            self._abandoned.pop(token, None)
            job = self._running.pop(token, None)
            if job is not None:
                finished.append(Finished(key=job.key, future=future, started=job.started))
            try:
                item = self._results.get_nowait()
            except queue.Empty:
                return

    def _expire(self, finished: list[Finished[T]]) -> None:
        now = self._monotonic()
        for token, job in list(self._running.items()):
            if now - job.started >= self.hard_deadline:
                self._abandoned[token] = self._running.pop(token)
                future: Future[T] = Future()
                future.set_exception(
                    FetchError(
                        "timeout",
                        f"no result within the hard deadline of {self.hard_deadline:g}s; "
                        "the fetch was abandoned",
                    )
                )
                finished.append(Finished(key=job.key, future=future, started=job.started))

    def _start_ready(self) -> None:
        now = self._monotonic()
        late = sum(1 for job in self._running.values() if now - job.started >= self.late_after)
        # Abandoned threads are late fetches too: they fill the late allowance first.
        set_aside = min(late + len(self._abandoned), self.workers)
        busy_slots = len(self._running) + len(self._abandoned) - set_aside
        per_host = Counter(
            job.host
            for job in (*self._running.values(), *self._abandoned.values())
            if job.host is not None
        )
        waiting: list[_Job[T]] = []
        for job in self._queued:
            if busy_slots >= self.workers or (
                job.host is not None and per_host[job.host] >= self.per_host
            ):
                waiting.append(job)
                continue
            self._start(job, now)
            busy_slots += 1
            if job.host is not None:
                per_host[job.host] += 1
        self._queued = waiting

    def _start(self, job: _Job[T], now: float) -> None:
        job.token = next(self._tokens)
        job.started = now
        self._running[job.token] = job
        thread = threading.Thread(
            target=self._work, args=(job.token, job.run),
            name=f"{self._thread_name}-{job.token}", daemon=True,
        )  # fmt: skip
        thread.start()

    def _work(self, token: int, run: Callable[[], T]) -> None:
        future: Future[T] = Future()
        try:
            future.set_result(run())
        except BaseException as exc:  # reported to the caller through the future
            future.set_exception(exc)
        self._results.put((token, future))

    def _next_changes(self) -> list[float]:
        """Monotonic times at which a running job turns late or passes the deadline."""
        now = self._monotonic()
        changes: list[float] = []
        for job in self._running.values():
            if now - job.started < self.late_after:
                changes.append(job.started + self.late_after)
            changes.append(job.started + self.hard_deadline)
        return changes
