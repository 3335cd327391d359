"""The long-running worker: APScheduler 3.x wiring and signals.

One scheduler job, the *tick*, runs every `tick` seconds and updates the feeds that are
due (due times live in SQLite, so a restart resumes where it stopped). The first tick
runs at once. `coalesce=True` and `max_instances=1`: a slow tick is never stacked on
itself, and ticks missed while the machine slept collapse into one.

SIGINT and SIGTERM set a stop flag: the running tick stops taking feeds, what is
committed stays committed, and the process exits 0.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from types import FrameType

from apscheduler.executors.pool import ThreadPoolExecutor as SchedulerThreadPool
from apscheduler.schedulers.background import BackgroundScheduler

from aggregator.pipeline import Pipeline, RunReport

log = logging.getLogger(__name__)

DEFAULT_TICK_SECONDS = 30.0
# A tick that could not start on time (machine asleep, long previous tick) still runs if
# it is at most this late; later ones are coalesced into the next.
MISFIRE_GRACE_SECONDS = 300


class Daemon:
    """Runs `pipeline` on a schedule until a signal or `stop()`."""

    def __init__(
        self,
        pipeline: Pipeline,
        *,
        tick_seconds: float = DEFAULT_TICK_SECONDS,
        after_first_pass: Callable[[RunReport], None] | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.tick_seconds = tick_seconds
        self.after_first_pass = after_first_pass
        self._stop = threading.Event()
        self._passes = 0
        self.scheduler = BackgroundScheduler(
            timezone=UTC,
            executors={"default": SchedulerThreadPool(max_workers=1)},
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": MISFIRE_GRACE_SECONDS,
            },
        )

    def stop(self, signum: int | None = None, frame: FrameType | None = None) -> None:
        if signum is not None:
            log.info("received %s, stopping", signal.Signals(signum).name)
        self._stop.set()

    def tick(self) -> None:
        if self._stop.is_set():
            return
        report = self.pipeline.run(stop=self._stop)
        self._passes += 1
        if report.feeds:
            log.info(report.summary())
        if self._passes == 1 and self.after_first_pass is not None:
            self.after_first_pass(report)

    def run(self) -> int:
        """Block until stopped; returns the exit code."""
        previous = {sig: signal.signal(sig, self.stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.scheduler.add_job(
                self.tick, "interval", seconds=self.tick_seconds, id="tick",
                next_run_time=datetime.now(UTC),
            )  # fmt: skip
            self.scheduler.start()
            log.info(
                "daemon started: %d feeds, tick every %.0fs",
                len(self.pipeline.config.enabled_feeds()), self.tick_seconds,
            )  # fmt: skip
            while not self._stop.wait(timeout=1.0):
                pass
        finally:
            self.scheduler.shutdown(wait=True)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        log.info("daemon stopped")
        return 0
