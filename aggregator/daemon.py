"""The long-running worker: APScheduler 3.x wiring, signals, config reload, maintenance.

One `BackgroundScheduler` in UTC with a one-thread executor, so its jobs never run at the
same time and only one thread ever uses the database connection and the dedup index:

- the **tick**, every `tick` seconds, first at once: reload the config if asked to; store
  the results of fetches that finished meanwhile; queue the due feeds into the fetch pool
  (`fetch_pool`: bounded, per host, hard deadline); keep storing results as they arrive
  for up to half a tick. Fetches still running then carry over to the next tick, so a
  hung server never holds up a tick, nor the feeds that come due in the next one.
- the **maintenance** jobs (`maintenance.JOBS`: prune, optimize, checkpoint), each on its
  own interval, counted from its last run as stored in the database, so restarts do not
  postpone them.

Every job has `coalesce=True` (runs missed while the machine slept collapse into one),
`max_instances=1` (a slow run is never stacked on itself) and a misfire grace time (a run
that could not start on time still runs if it is at most that late).

Signals: SIGTERM and SIGINT stop the daemon: no new feed is started or stored, the feed
being stored finishes (its transaction commits or rolls back), fetches in flight are
abandoned (their threads are daemon threads), documents in the parse workers are dropped
(the workers are killed when the pipeline closes), and the process exits 0, normally
within a second; at worst the feed being stored takes its transaction.
SIGHUP reloads the config at the next tick; so does a change of the YAML file, once it
has stayed unchanged for a whole tick (an editor may be half-way through writing it). An
invalid file is reported once and the last valid config keeps running.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType

from apscheduler.executors.pool import ThreadPoolExecutor as SchedulerThreadPool
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from aggregator.config import load_config
from aggregator.errors import ConfigError, LeadershipLost, StoreError
from aggregator.maintenance import JOBS, MaintenanceJob, due_jobs, next_run, run_job
from aggregator.models import Config
from aggregator.pipeline import Pipeline, RunReport
from aggregator.store import Heartbeat

log = logging.getLogger(__name__)

DEFAULT_TICK_SECONDS = 30.0
# A run that could not start on time (machine asleep, long previous run) still runs if it
# is at most this late; later ones are coalesced into the next.
MISFIRE_GRACE_SECONDS = 300
# Share of a tick spent storing results: the rest of the tick is slack, so a tick always
# ends before the next is due and APScheduler never has to skip one.
TICK_BUDGET_FRACTION = 0.5
# Maintenance that never ran waits this long after start: the first poll goes first.
MAINTENANCE_START_DELAY = timedelta(minutes=1)
# How often the main thread looks at the stop flag (signals also wake it).
_STOP_POLL_SECONDS = 0.5

ConfigLoader = Callable[[Path], Config]
SignalHandler = Callable[[int, FrameType | None], object] | int | signal.Handlers | None
Stamp = tuple[int, int, int] | None


def _stamp(path: Path) -> Stamp:
    """What tells us the config file changed: modification time, size and inode (an
    editor that saves by renaming changes the inode)."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size, st.st_ino


class Daemon:
    """Runs `pipeline` on a schedule until a signal or `stop()`."""

    def __init__(
        self,
        pipeline: Pipeline,
        *,
        tick_seconds: float = DEFAULT_TICK_SECONDS,
        after_first_pass: Callable[[RunReport], None] | None = None,
        maintenance: Sequence[MaintenanceJob] = JOBS,
        maintenance_delay: timedelta = MAINTENANCE_START_DELAY,
        load: ConfigLoader = load_config,
        command: str | None = "run",
    ) -> None:
        """`command`: how the heartbeat names this process (`status` reads it); None: no
        heartbeat (a fetch worker: the leader's is the cluster's)."""
        self.pipeline = pipeline
        self.tick_seconds = tick_seconds
        self.after_first_pass = after_first_pass
        self.maintenance = tuple(maintenance)
        self.maintenance_delay = maintenance_delay
        self._load = load
        self.command = command
        self.config_path = pipeline.config.path
        self._config_stamp = _stamp(self.config_path)
        # Wrapped in a 1-tuple, so that "nothing" (None) differs from "the file is gone"
        # (a stamp of None).
        self._pending: tuple[Stamp] | None = None  # a change seen, settling for a tick
        self._failed: tuple[Stamp] | None = None  # an invalid (or missing) file, reported
        self._stop = threading.Event()
        self._reload = threading.Event()
        self._first_poll: RunReport | None = RunReport()  # None once reported
        self.lost: LeadershipLost | None = None  # the writer lock, when it was lost
        self.started = pipeline.clock()
        self.scheduler = BackgroundScheduler(
            timezone=UTC,
            executors={"default": SchedulerThreadPool(max_workers=1)},
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": MISFIRE_GRACE_SECONDS,
            },
        )

    # -- control -------------------------------------------------------------------------

    def stop(self, signum: int | None = None, frame: FrameType | None = None) -> None:
        """Ask the daemon to stop (also the SIGTERM and SIGINT handler)."""
        if signum is not None:
            log.info("received %s, stopping", signal.Signals(signum).name)
        self._stop.set()

    def request_reload(self, signum: int | None = None, frame: FrameType | None = None) -> None:
        """Reload the config at the next tick (also the SIGHUP handler)."""
        if signum is not None:
            log.info(
                "received %s, reloading the config at the next tick", signal.Signals(signum).name
            )
        self._reload.set()

    def start(self) -> None:
        """Schedule the tick and the maintenance jobs and start the scheduler thread."""
        now = self.pipeline.clock()
        self.scheduler.add_job(
            self.tick, IntervalTrigger(seconds=self.tick_seconds, timezone=UTC),
            id="tick", name="tick", next_run_time=datetime.now(UTC),
        )  # fmt: skip
        last_runs = self.pipeline.store.maintenance_runs()
        for job in self.maintenance:
            first = max(next_run(job, last_runs, now), now + self.maintenance_delay)
            self.scheduler.add_job(
                self.maintain, IntervalTrigger(seconds=job.interval.total_seconds(), timezone=UTC),
                args=[job], id=f"maintenance-{job.name}", name=job.name,
                next_run_time=datetime.now(UTC) + (first - now),
            )  # fmt: skip
        self.scheduler.start()
        log.info(
            "daemon started: %d feeds, tick every %gs, pid %d",
            len(self.pipeline.config.enabled_feeds()), self.tick_seconds, os.getpid(),
        )  # fmt: skip

    def wait(self) -> None:
        """Block until `stop()` (or a signal), then shut the scheduler down: the job
        running finishes first."""
        while not self._stop.wait(timeout=_STOP_POLL_SECONDS):
            pass
        self.scheduler.shutdown(wait=True)
        log.info("daemon stopped")

    def run(self) -> int:
        """Start, block until stopped, return the exit code. Installs the signal handlers
        (so it must run in the main thread)."""
        previous = self._install_signals()
        try:
            self.start()
            self.wait()
        finally:
            if self.scheduler.running:
                self.scheduler.shutdown(wait=True)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return 0 if self.lost is None else 1

    def run_once(self) -> RunReport:
        """One tick with no time limit, then the maintenance jobs that are due: what cron
        runs (`aggregator run --once`)."""
        previous = self._install_signals()
        try:
            report = self.pipeline.run(stop=self._stop)
            for job in due_jobs(
                self.maintenance, self.pipeline.store.maintenance_runs(), self.pipeline.clock()
            ):
                if not self._stop.is_set():
                    run_job(job, self.pipeline, self.pipeline.clock())
            self._heartbeat(command="run --once", tick_seconds=None)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if self.after_first_pass is not None:
            self.after_first_pass(report)
        return report

    def _install_signals(self) -> dict[signal.Signals, SignalHandler]:
        """Install our handlers; returns the previous ones, to restore."""
        handlers: dict[signal.Signals, SignalHandler] = {
            signal.SIGINT: self.stop,
            signal.SIGTERM: self.stop,
            signal.SIGHUP: self.request_reload,
        }
        return {sig: signal.signal(sig, handler) for sig, handler in handlers.items()}

    # -- jobs ----------------------------------------------------------------------------

    def tick(self) -> None:
        """Reload if asked, update the due feeds for up to half a tick, record a heartbeat.
        Never raises: a tick that fails is logged and the next one tries again."""
        if self._stop.is_set():
            return
        try:
            self._maybe_reload()
            report = self.pipeline.run(
                stop=self._stop, budget=self.tick_seconds * TICK_BUDGET_FRACTION
            )
            if self.command is not None:
                self._heartbeat(command=self.command, tick_seconds=self.tick_seconds)
        except LeadershipLost as exc:
            self._stand_down(exc)
            return
        except StoreError as exc:
            log.error("database error, trying again at the next tick: %s", exc)
            return
        except Exception:  # a bug: logged with its traceback, the daemon goes on
            log.exception("tick failed")
            return
        if report.feeds:
            log.info(report.summary())
        self._after_tick(report)

    def maintain(self, job: MaintenanceJob) -> None:
        """One maintenance job (a scheduler job); skipped once stopping."""
        if not self._stop.is_set():
            try:
                run_job(job, self.pipeline, self.pipeline.clock())
            except LeadershipLost as exc:
                self._stand_down(exc)

    def _stand_down(self, exc: LeadershipLost) -> None:
        """A standby leads now: this process must write nothing more, so it stops."""
        log.error("%s", exc)
        self.lost = exc
        self._stop.set()

    def _after_tick(self, report: RunReport) -> None:
        """Call `after_first_pass` once every feed of the first poll has been stored."""
        if self._first_poll is None:
            return
        self._first_poll.feeds.extend(report.feeds)
        self._first_poll.elapsed += report.elapsed
        if self.pipeline.in_flight == 0:
            first, self._first_poll = self._first_poll, None
            if self.after_first_pass is not None:
                self.after_first_pass(first)

    def _heartbeat(self, *, command: str, tick_seconds: float | None) -> None:
        self.pipeline.store.record_heartbeat(
            Heartbeat(
                pid=os.getpid(), command=command, started=self.started,
                last_tick=self.pipeline.clock(), tick_seconds=tick_seconds,
            )
        )  # fmt: skip

    # -- reload --------------------------------------------------------------------------

    def _maybe_reload(self) -> None:
        """Reload on SIGHUP, or when the config file changed and then stayed unchanged for
        a tick. An invalid file is logged (once per version of the file) and ignored."""
        stamp = _stamp(self.config_path)
        requested = self._reload.is_set()
        if not requested:
            if stamp == self._config_stamp or (stamp,) == self._failed:
                self._pending = None
                return
            if (stamp,) != self._pending:
                self._pending = (stamp,)  # changed: give the writer a tick to finish
                return
        self._reload.clear()
        self._pending = None
        try:
            config = self._load(self.config_path)
        except ConfigError as exc:
            self._failed = (stamp,)
            log.error("config reload failed, still running the last valid config: %s", exc)
            return
        report = self.pipeline.reload(config)
        self._config_stamp, self._failed = stamp, None
        log.info(report.summary())
