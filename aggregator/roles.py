"""The roles of several processes on one PostgreSQL database (`aggregator run --role`).

- `FetchWorker` (any number, any host): leases due feeds (`Store.claim_feeds`: never a
  feed another worker holds, at most `fetch_per_host` at once per host across workers),
  fetches, parses and normalises them as the single process does, records each feed's
  fetch state (validators, schedule, failures, Retry-After holds: all in the database, so
  shared), and stages the entries (`ingest.staged`) in the same transaction that moves the
  feed's next fetch on and gives back its lease. A worker whose lease ran out stages
  nothing: another worker may have the feed now.
- `GroupLeader` (exactly one at a time: the writer lock, `store.coordination`): applies the
  staged updates in the order they were staged, one transaction per update that also
  deletes it, so an update is applied once or not at all; it prepares each entry as the
  parse workers would, so its decisions are the single process's. Standbys wait for the
  lock and rebuild the window from the database when they take over.
"""

from __future__ import annotations

import logging
import os
import platform
import threading
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from aggregator import schedule
from aggregator.ingest.prepare import PreparedEntry, prepare_entry
from aggregator.ingest.staged import decode_entries, encode_entries
from aggregator.models import Entry, FeedReport, FeedSpec
from aggregator.pipeline import Pipeline, RunReport, _Preparing
from aggregator.store.records import StagedUpdate

log = logging.getLogger(__name__)

# How long a claimed feed stays leased: far above a fetch's deadline plus its parse, so a
# live worker never loses a feed it is working on; a dead worker's feeds wait this long.
LEASE = timedelta(minutes=5)
# Feeds a worker claims per tick, per fetch slot it has.
CLAIMS_PER_SLOT = 4
# Staged updates the leader reads per query.
STAGED_BATCH = 50


def worker_name() -> str:
    """How a fetch worker names itself in leases: host and process."""
    return f"{platform.node()}:{os.getpid()}"


class FetchWorker(Pipeline):
    """A pipeline that fetches and stages, and groups nothing (no window in memory)."""

    def __init__(
        self, *, owner: str | None = None, lease: timedelta = LEASE, **kwargs: Any
    ) -> None:
        super().__init__(window=False, **kwargs)
        self.owner = owner or worker_name()
        self.lease = lease
        self._leased: set[int] = set()

    def run(
        self, *, all_feeds: bool = False, stop: threading.Event | None = None,
        budget: float | None = None,
    ) -> RunReport:  # fmt: skip
        started = time.monotonic()
        now = self.clock()
        settings = self.config.settings
        ids = self.store.claim_feeds(
            self.owner, now=now, until=now + self.lease,
            limit=settings.fetch_workers * CLAIMS_PER_SLOT, per_host=settings.fetch_per_host,
            host_of=schedule.host_key,
        )  # fmt: skip
        self._leased.update(ids)
        by_id = {self._feed_ids[spec.location]: spec for spec in self.config.enabled_feeds()}
        feeds = [by_id[feed_id] for feed_id in ids if feed_id in by_id]
        report = RunReport()
        report.feeds = self.update_feeds(feeds, stop=stop, budget=budget)
        in_flight = {self._feed_ids[key] for key in (*self._pool.keys(), *self._preparing)}
        done = self._leased - in_flight
        self.store.release_leases(self.owner, done)
        self._leased -= done
        report.elapsed = time.monotonic() - started
        return report

    def _store_entries(
        self, spec: FeedSpec, feed_id: int, entries: Sequence[PreparedEntry | Entry],
        now: datetime,
    ) -> FeedReport:  # fmt: skip
        """Stage the entries for the leader instead of grouping them here."""
        plain = [item.entry if isinstance(item, PreparedEntry) else item for item in entries]
        self.store.stage_update(feed_id, encode_entries(plain), now=now)
        return FeedReport(spec.name, "ok", new=len(plain))

    def _store_prepared(self, spec: FeedSpec, preparing: _Preparing) -> FeedReport:
        """Stage, record the fetch and give back the lease in one transaction; a worker
        whose lease ran out writes nothing at all (not even the fetch's validators: the
        worker holding the feed now must not get a 304 for entries nobody staged)."""
        feed_id = self._feed_ids[spec.location]
        with self.store.transaction():
            if not self.store.holds_lease(feed_id, self.owner, self.clock()):
                log.warning("feed=%r: lease ran out before its entries were staged: dropped",
                            spec.name)  # fmt: skip
                self._leased.discard(feed_id)
                return FeedReport(spec.name, "error", error="lease expired")
            report = super()._store_prepared(spec, preparing)
            self.store.release_leases(self.owner, [feed_id])
        self._leased.discard(feed_id)
        return report


class GroupLeader(Pipeline):
    """A pipeline that groups what fetch workers staged and fetches nothing itself."""

    # The in-memory window may hold what a failed update's transaction rolled back: it is
    # rebuilt from the database before the next update is grouped.
    _window_stale = False

    def run(
        self, *, all_feeds: bool = False, stop: threading.Event | None = None,
        budget: float | None = None,
    ) -> RunReport:  # fmt: skip
        started = time.monotonic()
        if self._window_stale:
            self.rebuild_window(self.clock())
            self._window_stale = False
        self.trim_window(self.clock())
        report = RunReport()
        ends = None if budget is None else started + budget
        by_id = {self._feed_ids[spec.location]: spec for spec in self.config.feeds
                 if spec.location in self._feed_ids}  # fmt: skip
        while staged := self.store.staged_updates(STAGED_BATCH):
            for update in staged:
                if (stop is not None and stop.is_set()) or (
                    ends is not None and time.monotonic() >= ends
                ):
                    report.elapsed = time.monotonic() - started
                    return report
                applied = self.apply(update, by_id.get(update.feed_id))
                if applied is not None:
                    report.feeds.append(applied)
        report.elapsed = time.monotonic() - started
        return report

    def apply(self, update: StagedUpdate, spec: FeedSpec | None) -> FeedReport | None:
        """Group one staged update of `spec` (None: the feed left the config, or the
        update cannot be read: it is dropped) and delete it, in one transaction."""
        try:
            entries = decode_entries(update.entries)
        except ValueError as exc:
            log.error("staged update %d of feed %d unreadable (%s): dropped", update.id,
                      update.feed_id, exc)  # fmt: skip
            entries = ()
            spec = None
        try:
            with self.store.transaction():
                report = None
                if spec is not None:
                    items = self._as_prepared(update.feed_id, entries)
                    report = self._store_entries(spec, update.feed_id, items, self.clock())
                self.store.delete_staged(update.id)
        except BaseException:
            # `_store_entries` rebuilds the window when its own part rolls back, but from
            # inside this transaction: on a lost connection that rebuild fails too, and
            # the window would keep events the database never got (the next update then
            # joins an entry to one, and fails on its foreign key). Rebuilt at the next
            # pass, on a connection of its own.
            self._window_stale = True
            raise
        if report is not None:
            log.info(report.log_line())
        return report

    def _as_prepared(self, feed_id: int, entries: tuple[Entry, ...]) -> list[PreparedEntry | Entry]:
        """As the parse workers prepare: entries stored unchanged stay plain."""
        stored = self.store.stored_versions(feed_id, self.config.settings.max_entries)
        return [
            entry if stored.get(entry.identity) == entry.content_key
            else prepare_entry(entry, self.signer)
            for entry in entries
        ]  # fmt: skip
