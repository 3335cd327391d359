"""One update pass: fetch -> parse -> normalise -> dedup -> store, per feed.

The pipeline calls the other modules in order and decides nothing itself: `fetch` says
what came back, `parse`/`normalize` what it holds, `dedup.grouping` where each entry
belongs, `schedule` when to look again, `store` keeps it.

Fetches run concurrently (they wait on the network, each under a hard deadline). Each
fetched document is then parsed and its entries prepared (normalised, signed, vectorised:
`aggregator.ingest.prepare`) in the parse workers, while the calling thread stores the feeds
prepared before it; dedup and storage run one feed at a time in the calling thread, one
transaction per feed, because dedup decisions depend on everything stored before them.

A feed's failure is a value in the run report, never an exception that stops the run.
An unexpected exception (a bug) is logged with the feed and the run goes on.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from itertools import islice
from typing import Any

from aggregator import feed_policy, schedule
from aggregator.clock import utc_now
from aggregator.dedup.canonical import choose_canonical
from aggregator.dedup.decide import Placement, decide_merge, decide_placement
from aggregator.dedup.event_model import EventModel
from aggregator.dedup.events import EventIndex, EventMatch
from aggregator.dedup.index import Fingerprint, SimilarityIndex
from aggregator.dedup.signature import DEFAULT_PARAMS, Signer
from aggregator.dedup.vectors import (
    TERM_VECTOR_RECIPE,
    TermVector,
    window_vector,
)
from aggregator.errors import (
    AggregatorError,
    FetchError,
    HTTPStatusError,
    ParseError,
    RetiredFeedError,
    StoreError,
)
from aggregator.filters import SHOWN, FilterItem, Verdict, fingerprint, judge
from aggregator.ingest.fetch import Fetcher
from aggregator.ingest.fetch_pool import HARD_DEADLINE_GRACE_SECONDS, FetchPool
from aggregator.ingest.parse_worker import DEFAULT_WORKERS as PARSE_WORKERS
from aggregator.ingest.parse_worker import ParserPool
from aggregator.ingest.prepare import PreparedEntry, PreparedFeed, prepare_entry, unprepared_feed
from aggregator.models import (
    CanonicalRule,
    Config,
    Entry,
    FeedReport,
    FeedSpec,
    FetchResult,
    FilterRow,
    JoinLevel,
    Mark,
    ParsedFeed,
)
from aggregator.store import Store
from aggregator.word_frequencies import ordinary_language, prefetch

log = logging.getLogger(__name__)

# A new member can make its event converge with a few others; more in one step means the
# centroids are too generic to trust, so stop there.
MAX_MERGES_PER_ENTRY = 3
# Entries of the window added to the event level at a time when it is rebuilt.
REBUILD_BATCH = 4096

# A 301/308 moves a feed once this many consecutive fetches saw the same target: one could
# be a misconfigured server for a minute (reliability-anchors.md section 6).
PERMANENT_REDIRECT_CONFIRMATIONS = 2


def _refuse_retired(reason: str) -> FetchResult:
    raise RetiredFeedError(reason, "the feed is retired; give it a new url to fetch it again")


def _failure_of(error: str | FetchError | ParseError) -> feed_policy.Failure:
    """A caught failure described for `feed_policy` (a plain string is a bug's reason)."""
    if isinstance(error, str):
        return feed_policy.Failure(reason=error)
    if isinstance(error, HTTPStatusError):
        return feed_policy.Failure(error.reason, error.status, error.retry_after)
    return feed_policy.Failure(error.reason, already_retired=isinstance(error, RetiredFeedError))


# How long `update_feeds` waits on the fetch pool at a time: the longest it takes to
# notice a stop request while fetches are running.
WAIT_SLICE_SECONDS = 0.2
# Documents in the parse workers or prepared and not stored yet, at most: enough to keep
# both workers busy, bounded because preparing outruns storing and would hold every feed.
PREPARE_BACKLOG = 2 * PARSE_WORKERS


def refresh_event(
    store: Store, event_id: int, rules: Sequence[CanonicalRule], *, now: datetime
) -> None:
    """Choose an event's canonical member again and recount it (after any change of its
    members: a new entry, a merge, a correction by hand). An event left empty is deleted."""
    members = store.member_facts(event_id)
    if not members:
        store.delete_event(event_id)
        return
    # A hidden copy is shown only when every copy is hidden (then the event is).
    shown = [member for member in members if not member.hidden]
    canonical, reason = choose_canonical(shown or members, rules)
    store.set_event_summary(
        event_id, canonical_entry_id=canonical.id, reason=reason, now=now, hidden=not shown
    )


def judge_stored(
    store: Store, config: Config, feed_ids: Mapping[str, int]
) -> Iterator[tuple[FilterRow, Verdict]]:
    """Each stored entry with what the config's filter rules say of it now. With no rule
    anywhere, only the entries hidden until now are read (only they can change)."""
    rules = {
        feed_ids[spec.location]: spec.filters
        for spec in config.feeds
        if spec.filters and spec.location in feed_ids
    }
    for row in store.entries_to_filter(hidden_only=not rules):
        feed_rules = rules.get(row.feed_id)
        if not feed_rules:
            yield row, SHOWN
            continue
        yield row, judge(feed_rules, FilterItem(row.title, row.text, row.author, row.link))


def apply_filter_rules(
    store: Store, config: Config, feed_ids: Mapping[str, int], *, now: datetime
) -> int:
    """Judge every stored entry again by the config's filter rules if they are not the
    rules it was judged by (a changed rule hides or shows what is stored, not only what
    comes), refreshing the events whose members changed. Returns how many changed."""
    digest = fingerprint((spec.name, spec.filters) for spec in config.feeds)
    if store.filters_judged_by() == digest:
        return 0
    changes: list[tuple[int, str | None]] = []
    events: set[int] = set()
    for row, verdict in judge_stored(store, config, feed_ids):
        label = verdict.hidden_label
        if label != row.hidden_by:
            changes.append((row.entry_id, label))
            if row.event_id is not None:
                events.add(row.event_id)
    with store.transaction():
        store.set_hidden_by(changes)
        for event_id in sorted(events):
            refresh_event(store, event_id, config.settings.canonical, now=now)
        store.set_filters_judged_by(digest)
    if changes:
        log.info("filter rules changed: %d stored entries judged again", len(changes))
    return len(changes)


@dataclass(slots=True)
class RunReport:
    """What one pass did, feed by feed."""

    feeds: list[FeedReport] = field(default_factory=list)
    elapsed: float = 0.0

    def total(self, attribute: str) -> int:
        return sum(int(getattr(report, attribute)) for report in self.feeds)

    @property
    def failed(self) -> list[FeedReport]:
        return [report for report in self.feeds if report.status == "error"]

    def summary(self) -> str:
        return (
            f"{len(self.feeds)} feeds updated ({len(self.failed)} failed): "
            f"{self.total('new')} new, {self.total('updated')} updated, "
            f"{self.total('duplicates')} duplicates, {self.total('events')} events touched "
            f"in {self.elapsed:.2f}s"
        )


@dataclass(frozen=True, slots=True)
class ReloadReport:
    """What a config reload changed."""

    added: int  # feeds enabled that were not
    removed: int  # feeds no longer enabled (their entries stay)
    rescheduled: int  # feeds whose interval changed

    def summary(self) -> str:
        return (
            f"config reloaded: {self.added} feeds added, {self.removed} removed, "
            f"{self.rescheduled} rescheduled"
        )


@dataclass(slots=True)
class _Preparing:
    """A fetched document being parsed and prepared in a parse worker."""

    spec: FeedSpec
    fetched: FetchResult
    started: float  # monotonic time its fetch started
    future: Future[PreparedFeed | ParsedFeed]  # parsed only: prepared here


def _pool_limits(config: Config) -> dict[str, Any]:
    settings = config.settings
    return {
        "workers": settings.fetch_workers,
        "per_host": settings.fetch_per_host,
        "hard_deadline": settings.fetch_timeout + HARD_DEADLINE_GRACE_SECONDS,
    }


def _stopping(stop: threading.Event | None) -> bool:
    return stop is not None and stop.is_set()


def _log_fields(report: FeedReport) -> dict[str, Any]:
    """The feed report as fields for structured (JSON) logs."""
    fields: dict[str, Any] = {"feed": report.feed, "status": report.status}
    if report.status == "error":
        fields["error"] = report.error
    else:
        fields.update(new=report.new, updated=report.updated, duplicates=report.duplicates,
                      events=report.events)  # fmt: skip
    fields["elapsed"] = round(report.elapsed, 3)
    return fields


class Pipeline:
    """Holds the long-lived parts of a run: store, fetcher, signer and the LSH window."""

    def __init__(
        self,
        *,
        store: Store,
        config: Config,
        fetcher: Fetcher | None = None,
        signer: Signer | None = None,
        clock: Callable[[], datetime] = utc_now,
        rng: random.Random | None = None,
        model: EventModel | None = None,
        window: bool = True,
    ) -> None:
        """`window` False: no dedup window is read (a fetch worker, which groups nothing)."""
        self.store = store
        self.model = model
        self.config = config
        self.fetcher = fetcher or Fetcher(
            max_body_bytes=config.settings.max_body_bytes,
            total_timeout=config.settings.fetch_timeout,
        )
        self.signer = signer or Signer(DEFAULT_PARAMS)
        self.clock = clock
        self.rng = rng or random.Random()
        self.store.check_dedup_params(self.signer.params)
        forgotten = self.store.check_term_recipe(TERM_VECTOR_RECIPE)
        if forgotten:
            log.info("term vectors changed recipe: %d stored vectors to derive again", forgotten)
        self.index = SimilarityIndex(self.signer)
        self.events = EventIndex(config.settings.dedup_window, background=ordinary_language)
        if window:
            self.rebuild_window(self.clock())
        self._feed_ids = self.store.sync_feeds(config.feeds, self.clock())
        apply_filter_rules(self.store, config, self._feed_ids, now=self.clock())
        self._owns_fetcher = fetcher is None  # a reload may replace only our own
        self._pool: FetchPool[FetchResult] = FetchPool(**_pool_limits(config))
        self._parser_pool: ParserPool | None = None  # started on the first parse
        # Fetched documents in the parse workers, by feed location, to be stored when ready
        # (carried over to the next run when a run's budget ends first, like fetches).
        self._preparing: dict[str, _Preparing] = {}
        self._preparer: ThreadPoolExecutor | None = None  # waits on the parse workers

    def close(self) -> None:
        self.fetcher.close()
        if self._preparer is not None:
            self._preparer.shutdown(wait=False, cancel_futures=True)
        self._preparing.clear()
        if self._parser_pool is not None:
            self._parser_pool.close()  # a preparation still running ends with its worker

    # -- a pass --------------------------------------------------------------------------

    def due_feeds(self, now: datetime) -> list[FeedSpec]:
        due = self.store.due_feed_ids(now)
        return [f for f in self.config.enabled_feeds() if self._feed_ids[f.location] in due]

    def run(
        self,
        *,
        all_feeds: bool = False,
        stop: threading.Event | None = None,
        budget: float | None = None,
    ) -> RunReport:
        """Update the due feeds (every enabled feed with `all_feeds`).

        `budget`: seconds to spend storing results; fetches still running then carry over
        to the next run (the daemon's ticks). None waits for every fetch, each under its
        deadline (`update`, `run --once`).
        """
        started = time.monotonic()
        now = self.clock()
        self.trim_window(now)
        feeds = list(self.config.enabled_feeds()) if all_feeds else self.due_feeds(now)
        report = RunReport()
        report.feeds = self.update_feeds(feeds, stop=stop, budget=budget)
        report.elapsed = time.monotonic() - started
        return report

    def trim_window(self, now: datetime) -> None:
        """Forget, in memory, the entries first seen before the dedup window (and the
        events no longer active in it): they stay stored, and no longer match."""
        cutoff = now - self.config.settings.dedup_window
        self.index.drop_older_than(cutoff)
        self.events.drop_older_than(cutoff)

    @property
    def in_flight(self) -> int:
        """Feeds queued, being fetched or being prepared, whose results a later run will
        store."""
        return len(self._pool) + len(self._preparing)

    def update_feeds(
        self,
        feeds: Sequence[FeedSpec],
        *,
        stop: threading.Event | None = None,
        budget: float | None = None,
    ) -> list[FeedReport]:
        """Fetch `feeds` in the pool, parse and prepare each document in the parse workers
        as soon as it arrives, and store each prepared feed as soon as it is ready.

        Feeds already in flight (from an earlier run) are not fetched twice; their results
        are stored here too. Storing happens in this thread, one feed at a time, because
        each dedup decision depends on everything stored before it; the parse workers
        prepare the next documents meanwhile. A stop request ends the run between two
        feeds: fetched results not stored yet are dropped (the feeds stay due, so they are
        fetched again). A StoreError (the database is full, read-only or locked) ends the
        run too and propagates: it is not one feed's fault.
        """
        self._queue_fetches(feeds)
        if feeds:
            self._parser().start()  # the workers boot while the first fetches run
        ends = None if budget is None else time.monotonic() + budget
        reports: list[FeedReport] = []
        enabled = {spec.location: spec for spec in self.config.enabled_feeds()}
        while (len(self._pool) or self._preparing) and not _stopping(stop):
            remaining = WAIT_SLICE_SECONDS if ends is None else ends - time.monotonic()
            slice_ = min(WAIT_SLICE_SECONDS, max(0.0, remaining))
            # With documents in the workers, take the fetches that ended without waiting:
            # the wait below is for the first preparation to end.
            collected = (
                self._pool.collect(0.0 if self._preparing else slice_)
                if len(self._preparing) < PREPARE_BACKLOG
                else []
            )
            for done in collected:
                if _stopping(stop):
                    break  # stop taking work; what is committed stays committed
                spec = enabled.get(done.key)
                if spec is None:
                    log.info(
                        "feed %s left the config while it was fetched: result dropped", done.key
                    )
                    continue
                report = self._take_fetch(spec, done.future, done.started)
                if report is not None:
                    log.info(report.log_line(), extra=_log_fields(report))
                    reports.append(report)
            for preparing in self._prepared(slice_):
                if _stopping(stop):
                    break
                spec = enabled.get(preparing.spec.location)
                if spec is None:
                    log.info("feed %s left the config while it was parsed: result dropped",
                             preparing.spec.location)  # fmt: skip
                    continue
                report = self._store_prepared(spec, preparing)
                log.info(report.log_line(), extra=_log_fields(report))
                reports.append(report)
            if ends is not None and time.monotonic() >= ends:
                break
        return reports

    def _prepared(self, timeout: float) -> list[_Preparing]:
        """The preparations that ended (waiting up to `timeout` for the first one), in the
        order their documents arrived; taken out of `_preparing`."""
        if not self._preparing:
            return []
        wait([p.future for p in self._preparing.values()], timeout, FIRST_COMPLETED)
        ready = [p for p in self._preparing.values() if p.future.done()]
        for preparing in ready:
            del self._preparing[preparing.spec.location]
        return ready

    def _queue_fetches(self, feeds: Sequence[FeedSpec]) -> None:
        """Queue the fetch of each feed not already in flight; feeds whose last fetch
        failed go last, so feeds known to work never wait behind known-broken ones."""
        failing = self.store.failing_feed_ids()
        ordered = sorted(feeds, key=lambda spec: self._feed_ids[spec.location] in failing)
        for spec in ordered:
            if spec.location in self._pool or spec.location in self._preparing:
                continue
            # The fetcher is bound now: a reload that replaces it leaves this fetch alone.
            job = self._fetch_job(spec)
            # Per-host limits count where the feed is fetched from now (after a 301).
            moved_to = self.store.feed_fetch_state(self._feed_ids[spec.location]).effective_url
            self._pool.submit(spec.location, job, host=schedule.host_key(moved_to or spec.url))

    # -- configuration reload ------------------------------------------------------------

    def reload(self, config: Config) -> ReloadReport:
        """Switch to a new, already validated config, without a restart.

        New feeds become due at once; removed (or disabled) feeds are disabled in the
        database, keep their entries, and a fetch of theirs in flight is dropped; a feed
        whose interval changed is rescheduled from its last fetch with the new interval
        (feeds backing off after failures keep their backoff). Fetch settings, pool
        limits and the dedup window take effect for the fetches and runs that follow.
        """
        now = self.clock()
        before = {spec.location: spec for spec in self.config.feeds}
        was_enabled = {spec.location for spec in self.config.enabled_feeds()}
        ids = self.store.sync_feeds(config.feeds, now)
        states = {state.location: state for state in self.store.feed_states()}
        now_enabled = {spec.location for spec in config.enabled_feeds()}
        rescheduled = 0
        for spec in config.enabled_feeds():
            old, state = before.get(spec.location), states.get(spec.location)
            if old is None or old.interval == spec.interval or state is None:
                continue
            if state.failures == 0 and state.last_fetch is not None:
                next_due = schedule.next_due_after_success(
                    state.last_fetch, spec.interval, self.rng
                )
                self.store.set_next_due(ids[spec.location], next_due)
                rescheduled += 1
        self._pool.discard(was_enabled - now_enabled)
        for location in was_enabled - now_enabled:
            preparing = self._preparing.pop(location, None)
            if preparing is not None:
                preparing.future.cancel()  # if it is running, its result is dropped
        old_settings, settings = self.config.settings, config.settings
        if self._owns_fetcher and (
            old_settings.fetch_timeout != settings.fetch_timeout
            or old_settings.max_body_bytes != settings.max_body_bytes
        ):
            # Not closed: fetches in flight still use the old one (bound when queued).
            # Its connections are one-shot anyway; it goes when they let go of it.
            self.fetcher = Fetcher(
                max_body_bytes=settings.max_body_bytes, total_timeout=settings.fetch_timeout
            )
        if settings.dedup_window != old_settings.dedup_window:
            # The in-memory indexes are built for one window: rebuild them from SQLite.
            self.config = config
            self.rebuild_window(now)
        self._pool.configure(**_pool_limits(config))
        self.config = config
        self._feed_ids = ids
        apply_filter_rules(self.store, config, ids, now=now)
        return ReloadReport(
            added=len(now_enabled - was_enabled),
            removed=len(was_enabled - now_enabled),
            rescheduled=rescheduled,
        )

    # -- retention -----------------------------------------------------------------------

    def _tombstoned(self, feed_id: int, entry: Entry, now: datetime) -> bool:
        """Whether `entry` is one pruned by retention (so not new): see Store.prune."""
        keep = timedelta(days=self.config.settings.tombstone_days)
        return self.store.match_tombstone(feed_id, entry, keep_until=now + keep)

    # -- one feed ------------------------------------------------------------------------

    def _fetch_job(self, spec: FeedSpec) -> Callable[[], FetchResult]:
        """The fetch of `spec` to run in the pool, bound now (in the calling thread) to the
        fetcher and to the feed's stored state: validators, the URL it moved to, and
        whether it is retired (then no request is made at all)."""
        state = self.store.feed_fetch_state(self._feed_ids[spec.location])
        if state.retired is not None:
            return partial(_refuse_retired, state.retired)
        return partial(
            self.fetcher.fetch, spec, etag=state.etag, last_modified=state.last_modified,
            url=state.effective_url,
        )  # fmt: skip

    def _parser(self) -> ParserPool:
        """The parse workers, started on first use; replaced when a reload changed their
        limits."""
        settings = self.config.settings
        limits = (settings.parse_timeout, settings.parse_memory, settings.max_entries)
        pool = self._parser_pool
        if pool is not None and (pool.timeout, pool.memory_limit, pool.max_entries) != limits:
            # Closing kills busy workers: let the documents in them finish first.
            wait([p.future for p in self._preparing.values()])
            pool.close()
            pool = None
        if pool is None:
            pool = ParserPool(
                timeout=settings.parse_timeout, memory_limit=settings.parse_memory,
                max_entries=settings.max_entries,
            )  # fmt: skip
            self._parser_pool = pool
        return pool

    def _preparations(self) -> ThreadPoolExecutor:
        """Threads that hand documents to the parse workers and wait for them (one per
        worker: the work itself is in the workers' processes)."""
        if self._preparer is None:
            self._preparer = ThreadPoolExecutor(PARSE_WORKERS, thread_name_prefix="prepare")
        return self._preparer

    def _take_fetch(
        self, spec: FeedSpec, future: Future[FetchResult], started: float
    ) -> FeedReport | None:
        """What one fetch returned: a failure or a 304 is recorded now (its report is
        returned); a document goes to the parse workers (None: `_store_prepared` follows).

        Every failure is a value: the feed's reason is stored and the report says so.
        """
        feed_id = self._feed_ids[spec.location]
        now = self.clock()
        try:
            fetched = future.result()
            self._note_redirect(spec, feed_id, fetched)
            if fetched.not_modified:
                state = self.store.feed_fetch_state(feed_id)
                publisher_delay = schedule.cache_delay(fetched.headers, now)
                self.store.record_feed_success(
                    feed_id, now=now, status="not_modified",
                    next_due=schedule.next_due_after_success(
                        now, spec.interval, self.rng, ttl_minutes=state.ttl_minutes,
                        publisher_delay=publisher_delay, skip_hours=state.skip_hours,
                        skip_days=state.skip_days,
                    ),
                    etag=fetched.etag, last_modified=fetched.last_modified,
                    location=fetched.location,
                )  # fmt: skip
                return FeedReport(spec.name, "not_modified", elapsed=time.monotonic() - started)
            parser = self._parser()
            document = (fetched.body, fetched.headers, fetched.location)
            job: Callable[[], PreparedFeed | ParsedFeed]
            if parser.can_prepare:
                # Entries already stored unchanged need no preparing: the newest the
                # document could hold (a server ignoring conditional GET resends them all).
                stored = self.store.stored_versions(feed_id, self.config.settings.max_entries)
                job = partial(parser.prepare, *document, self.signer, stored)
            else:  # workers limited below what numpy needs only parse: this thread prepares
                job = partial(parser.parse, *document)
            submitted: Future[PreparedFeed | ParsedFeed] = self._preparations().submit(job)
            self._preparing[spec.location] = _Preparing(spec, fetched, started, submitted)
            return None
        except Exception as exc:
            return self._failure(spec, feed_id, now, exc, started)

    def _store_prepared(self, spec: FeedSpec, preparing: _Preparing) -> FeedReport:
        """Store a prepared document's entries and the feed's schedule."""
        feed_id = self._feed_ids[spec.location]
        now = self.clock()
        fetched, started = preparing.fetched, preparing.started
        try:
            result = preparing.future.result()
            prepared = (
                result
                if isinstance(result, PreparedFeed)
                else unprepared_feed(result, fetched.location)  # prepared when stored
            )
            parsed = prepared.feed
            if parsed.total_entries is not None and parsed.total_entries > len(prepared.entries):
                log.info(
                    "feed=%r kept the newest %d of %d entries", spec.name,
                    len(prepared.entries), parsed.total_entries,
                )  # fmt: skip
            report = self._store_entries(spec, feed_id, prepared.entries, now)
            self.store.set_schedule_hints(
                feed_id, ttl_minutes=parsed.ttl_minutes, skip_hours=parsed.skip_hours,
                skip_days=parsed.skip_days,
            )  # fmt: skip
            self.store.record_feed_success(
                feed_id, now=now, status="ok",
                next_due=schedule.next_due_after_success(
                    now, spec.interval, self.rng, ttl_minutes=parsed.ttl_minutes,
                    publisher_delay=schedule.cache_delay(fetched.headers, now),
                    skip_hours=parsed.skip_hours, skip_days=parsed.skip_days,
                ),
                etag=fetched.etag, last_modified=fetched.last_modified,
                location=fetched.location, title=parsed.title, link=parsed.link,
            )  # fmt: skip
        except Exception as exc:
            return self._failure(spec, feed_id, now, exc, started)
        return FeedReport(
            spec.name, "ok", new=report.new, updated=report.updated,
            duplicates=report.duplicates, events=report.events,
            elapsed=time.monotonic() - started,
        )  # fmt: skip

    def _failure(
        self, spec: FeedSpec, feed_id: int, now: datetime, exc: Exception, started: float
    ) -> FeedReport:
        """A feed's failure as a value (called from the `except` block that caught it)."""
        error: str | FetchError | ParseError
        if isinstance(exc, FetchError | ParseError):
            if exc.reason.startswith("prepare_crash:"):  # a bug, with the worker's traceback
                log.error("feed=%r preparing its entries failed:\n%s", spec.name, exc.detail)
            error = exc
        elif isinstance(exc, AggregatorError):
            error = f"{type(exc).__name__}: {exc}"
        else:  # a bug: log it with the feed, keep the daemon alive
            log.exception("feed=%r unexpected error", spec.name)
            error = f"internal:{type(exc).__name__}"
        try:
            return self._failed(spec, feed_id, now, error, started)
        except StoreError:
            raise  # the database, not the feed: ends the run (`update_feeds`)
        except Exception as bug:  # the policy never raises; if it did, the pass goes on
            log.exception("feed=%r deciding what to do after its failure failed", spec.name)
            return self._failed(spec, feed_id, now, f"internal:{type(bug).__name__}", started)

    def _note_redirect(self, spec: FeedSpec, feed_id: int, fetched: FetchResult) -> None:
        """Count a permanent redirect; the second consecutive one to the same target moves
        the feed (the YAML is never rewritten: `aggregator feeds` shows the new URL)."""
        if spec.url is None:
            return
        moved_to = self.store.note_permanent_redirect(
            feed_id, fetched.permanent_redirect, confirmations=PERMANENT_REDIRECT_CONFIRMATIONS
        )
        if moved_to is not None:
            log.info("feed=%r moved permanently: %s -> %s", spec.name, spec.url, moved_to)

    def _failed(
        self,
        spec: FeedSpec,
        feed_id: int,
        now: datetime,
        error: str | FetchError | ParseError,
        started: float,
    ) -> FeedReport:
        """Record a failure as `feed_policy.after_failure` decides: retire the feed, or
        count the failure and schedule the next attempt, holding the host if asked."""
        action = feed_policy.after_failure(
            _failure_of(error), now=now, interval=spec.interval,
            failures=self.store.feed_failures(feed_id) + 1, rng=self.rng,
        )  # fmt: skip
        if action.retire:
            self.store.retire_feed(feed_id, now=now, reason=action.reason)
            log.warning("feed=%r retired: 410 Gone, no further requests", spec.name)
        elif action.record and action.next_due is not None:
            if action.hold_host_until is not None:
                self._hold_host(spec, feed_id, action.hold_host_until)
            self.store.record_feed_failure(
                feed_id, now=now, error=action.reason, next_due=action.next_due
            )
        return FeedReport(
            spec.name, "error", error=action.reason, elapsed=time.monotonic() - started
        )

    def _hold_host(self, spec: FeedSpec, feed_id: int, until: datetime) -> None:
        """A 429 is about the host, not the feed: no feed of that host is due before
        `until`."""
        url_of = {
            location: self.store.feed_fetch_state(fid).effective_url or location
            for location, fid in self._feed_ids.items()
        }
        host = schedule.host_key(url_of.get(spec.location))
        if host is None:
            return
        same_host = [
            fid for location, fid in self._feed_ids.items()
            if fid != feed_id and schedule.host_key(url_of[location]) == host
        ]  # fmt: skip
        self.store.hold_feeds(same_host, until)

    def ingest(self, spec: FeedSpec, entries: Sequence[Entry]) -> FeedReport:
        """Store already-normalised entries as one update of `spec` at `clock()`.

        The dedup path of a fetch, without the fetch (the entries are prepared here, in
        this thread): `aggregator eval` replays labelled data through it.
        """
        return self._store_entries(spec, self._feed_ids[spec.location], entries, self.clock())

    def _store_entries(
        self,
        spec: FeedSpec,
        feed_id: int,
        entries: Sequence[PreparedEntry | Entry],
        now: datetime,
    ) -> FeedReport:
        """Store a feed's entries and their events in one transaction.

        A plain `Entry` is prepared here if it is to be stored: an entry stored unchanged
        before (the usual case for a plain one, `aggregator.ingest.prepare`) or tombstoned never is.

        The in-memory indexes learn each entry as it is stored (entries of one feed can
        copy each other); if the transaction rolls back, they are rebuilt from the database,
        which is the source of truth.
        """
        touched_events: set[int] = set()
        new = updated = duplicates = 0
        # The update's items count in the feed's template before the first is placed.
        self.events.pend_update(
            feed_id, (item.vector for item in entries if isinstance(item, PreparedEntry))
        )
        try:
            with self.store.transaction():
                for item in entries:
                    entry = item.entry if isinstance(item, PreparedEntry) else item
                    existing = self.store.existing_entry(feed_id, entry.identity)
                    not_placed = existing is not None or self._tombstoned(feed_id, entry, now)
                    if not_placed and isinstance(item, PreparedEntry):
                        self.events.unpend(feed_id, item.vector)
                    if existing is not None:
                        if existing.content_key != entry.content_key:
                            prepared = self._prepared_entry(item)
                            self.store.update_entry_content(
                                existing.id, entry, prepared.signatures, now=now,
                                vector=prepared.vector,
                                hidden_by=self._judge(spec, entry).hidden_label,
                            )  # fmt: skip
                            updated += 1
                            if existing.event_id is not None:
                                touched_events.add(existing.event_id)
                        continue
                    if not_placed:  # tombstoned by retention (daemon issue): pruned
                        continue  # earlier, so already seen: not new again
                    verdict = self._judge(spec, entry)
                    _, event_id, level, merged_away = self._place(
                        feed_id, self._prepared_entry(item), now,
                        pending=isinstance(item, PreparedEntry), hidden_by=verdict.hidden_label,
                    )  # fmt: skip
                    if (
                        verdict.read_by is not None
                        and level is JoinLevel.FOUNDER
                        and not merged_away
                    ):
                        # Only an event it founds arrives read: copies of other
                        # feeds made an event it joins unread, and it stays so.
                        self.store.mark_events([event_id], Mark(read=True), now=now)
                    touched_events -= merged_away
                    touched_events.add(event_id)
                    new += 1
                    duplicates += level in (JoinLevel.EXACT, JoinLevel.NEAR_DUPLICATE)
                for event_id in sorted(touched_events):
                    self._refresh_event(event_id, now)
        except BaseException:
            self.rebuild_window(now)
            raise
        finally:
            self.events.end_update(feed_id)
        return FeedReport(
            spec.name, "ok", new=new, updated=updated, duplicates=duplicates,
            events=len(touched_events),
        )  # fmt: skip

    @staticmethod
    def _judge(spec: FeedSpec, entry: Entry) -> Verdict:
        """What the feed's filter rules say of an entry; a pattern that ran out of time
        on it is logged (it did not match), and the entry goes on."""
        if not spec.filters:
            return SHOWN
        item = FilterItem(entry.title, entry.text, entry.author, entry.canonical_url or entry.url)
        verdict = judge(spec.filters, item)
        for timeout in verdict.timed_out:
            log.warning("feed=%r filter %s on entry %r", spec.name, timeout, entry.identity)
        return verdict

    def _prepared_entry(self, item: PreparedEntry | Entry) -> PreparedEntry:
        return item if isinstance(item, PreparedEntry) else prepare_entry(item, self.signer)

    def _refresh_event(self, event_id: int, now: datetime) -> None:
        refresh_event(self.store, event_id, self.config.settings.canonical, now=now)

    def rebuild_window(self, now: datetime) -> None:
        """Rebuild the in-memory indexes (signatures and event centroids) from SQLite."""
        cutoff = now - self.config.settings.dedup_window
        prefetch()  # its child process works while the window is read
        self.index = SimilarityIndex(self.signer)
        self.index.add_columns(
            self.store.fingerprint_columns_since(cutoff, self.signer.params.num_perm)
        )
        self.events = EventIndex(
            self.config.settings.dedup_window, model=self.model, background=ordinary_language
        )
        stored = self.store.entries_for_events_since(cutoff, TERM_VECTOR_RECIPE)
        while batch := [(e, *window_vector(e)) for e in islice(stored, REBUILD_BATCH)]:
            self.events.add_stored_members(batch)

    def _place(
        self, feed_id: int, prepared: PreparedEntry, now: datetime, *, pending: bool = False,
        hidden_by: str | None = None,
    ) -> tuple[int, int, JoinLevel, set[int]]:  # fmt: skip
        """Insert a new entry into the event it belongs to, or a new event of its own, as
        `decide_placement` decides; then the merges and the story link it allows. Returns
        the entry, its event, its level, and the events merged away into that event.
        `hidden_by`: the filter rule that hides it (placed all the same: a hidden copy
        still counts as a source).
        """
        entry, signatures, vector = prepared.entry, prepared.signatures, prepared.vector
        self.events.observe(vector)
        placement = decide_placement(
            entry, signatures, vector, feed_id=feed_id, now=now, facts=self.store,
            copies=self.index, events=self.events, marks=prepared.marks,
        )  # fmt: skip
        level, related = placement.level, placement.story
        if placement.event_id is not None:
            event_id = placement.event_id
        else:
            event_id = self.store.create_event(now)
            if related is not None:
                self._link(event_id, related, now)
        entry_id = self.store.insert_entry(
            feed_id, entry, signatures, now=now, event_id=event_id, level=level,
            similarity=placement.similarity, matched_entry_id=placement.matched_entry_id,
            match_rule=placement.rule, vector=vector, hidden_by=hidden_by,
        )  # fmt: skip
        join = placement.join
        if join is not None and join.probability is not None:
            self.store.record_join_reasons(entry_id, join.probability, join.reasons)
        self.index.add(
            Fingerprint(
                entry_id=entry_id,
                feed_id=feed_id,
                event_id=event_id,
                first_seen=now,
                published=entry.published,
                signatures=signatures,
            )
        )
        self.events.add_member(
            entry_id, event_id, vector, headline_only=signatures.headline_only, when=now,
            published=entry.published, feed_id=feed_id, pending=pending, marks=prepared.marks,
        )  # fmt: skip
        # Only a new write-up can bring the event closer to an article it missed (a copy adds
        # the same words again), so copies trigger no search.
        new_write_up = vector if level is JoinLevel.SAME_EVENT else None
        event_id, merged_away = self._merge_converged(event_id, new_write_up, now, placement)
        if level is JoinLevel.SAME_EVENT and related is not None:
            # A new write-up can relate its event to another one (its search found it).
            self._link_alone(event_id, related, now)
        elif placement.search_story:
            # So can an article joining its own headline or teaser (it says more than
            # they did); a copy of the same text cannot.
            self._link_story(event_id, prepared, feed_id, now)
        return entry_id, event_id, level, merged_away

    def _link_story(
        self, event_id: int, prepared: PreparedEntry, feed_id: int, now: datetime
    ) -> None:
        """Link the entry's event, while it is a story of its own, to the story of the
        event the entry is most probably related to, if any is (`EventIndex.search`)."""
        if self.events.model.story is None:
            return
        story = self.store.story_event_ids(event_id)
        if len(story) > 1:
            return  # an event of a story stays in it: links never unite two stories
        related = self.events.search(
            prepared.vector, headline_only=prepared.signatures.headline_only, now=now,
            published=prepared.entry.published, feed_id=feed_id, same_story=story,
            joining=False, marks=prepared.marks,
        ).story  # fmt: skip
        if related is not None:
            self._link(event_id, related, now)

    def _link_alone(self, event_id: int, related: EventMatch, now: datetime) -> None:
        """Link the event to `related`'s story if it is still a story of its own."""
        if related.event_id == event_id or not self.store.event_exists(related.event_id):
            return  # merged into this event, or away, since it was found
        if len(self.store.story_event_ids(event_id)) == 1:
            self._link(event_id, related, now)

    def _link(self, event_id: int, related: EventMatch, now: datetime) -> None:
        self.store.link_stories(
            event_id, related.event_id, similarity=round(related.similarity, 4),
            probability=related.probability, now=now, reasons=related.reasons,
        )  # fmt: skip

    def _merge_converged(
        self, event_id: int, write_up: TermVector | None, now: datetime, placement: Placement
    ) -> tuple[int, set[int]]:
        """Carry out the merges `decide_merge` decides, one after another (at most
        `MAX_MERGES_PER_ENTRY`)."""
        merged_away: set[int] = set()
        trace = placement.trace
        # The search of the entry that founded the event holds for its first merge search
        # only; a write-up's ranking for every late join it allows.
        founded_by = trace if placement.level is JoinLevel.FOUNDER else None
        ranked = trace.ranked if trace is not None and write_up is not None else None
        for _ in range(MAX_MERGES_PER_ENTRY):
            merge = decide_merge(
                event_id, write_up, now=now, facts=self.store, events=self.events,
                founded_by=founded_by, ranked=ranked,
            )  # fmt: skip
            founded_by = None
            if merge is None:
                break
            moved = self.store.merge_events(
                merge.keep, merge.gone, similarity=merge.similarity, reason=merge.reason,
                now=now,
            )  # fmt: skip
            self.events.merge(merge.keep, merge.gone)
            for moved_entry in moved:
                self.index.move_to_event(moved_entry, merge.keep)
            self._refresh_event(merge.keep, now)
            merged_away.add(merge.gone)
            event_id = merge.keep
        return event_id, merged_away
