"""One update pass: fetch -> parse -> normalise -> dedup -> store, per feed.

The pipeline calls the other modules in order and decides nothing itself: `fetch` says
what came back, `parse`/`normalize` what it holds, `dedup.grouping` where each entry
belongs, `schedule` when to look again, `store` keeps it.

Fetches run concurrently (they wait on the network, each under a hard deadline); parsing,
dedup and storage run one feed at a time in the calling thread, one transaction per feed,
because dedup decisions depend on everything stored before them.

A feed's failure is a value in the run report, never an exception that stops the run.
An unexpected exception (a bug) is logged with the feed and the run goes on.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime

from aggregator import schedule
from aggregator.clock import utc_now
from aggregator.dedup.grouping import MIN_TITLE_WORDS, best_match, choose_canonical
from aggregator.dedup.index import Fingerprint, SimilarityIndex
from aggregator.dedup.signature import DEFAULT_PARAMS, Signer
from aggregator.dedup.text import tokens
from aggregator.errors import AggregatorError, FetchError, ParseError
from aggregator.fetch import Fetcher
from aggregator.models import Config, Entry, FeedReport, FeedSpec, FetchResult, JoinLevel
from aggregator.normalize import normalize_entry
from aggregator.parse import parse_feed
from aggregator.store import Store

log = logging.getLogger(__name__)

# Concurrent fetches: network waits overlap, the CPU work after them is serial anyway.
FETCH_WORKERS = 4


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
    ) -> None:
        self.store = store
        self.config = config
        self.fetcher = fetcher or Fetcher(
            max_body_bytes=config.settings.max_body_bytes,
            total_timeout=config.settings.fetch_timeout,
        )
        self.signer = signer or Signer(DEFAULT_PARAMS)
        self.clock = clock
        self.rng = rng or random.Random()
        self.store.check_dedup_params(self.signer.params)
        self.index = SimilarityIndex(self.signer)
        cutoff = self.clock() - config.settings.dedup_window
        self.index.add_all(self.store.fingerprints_since(cutoff))
        self._feed_ids = self.store.sync_feeds(config.feeds, self.clock())

    def close(self) -> None:
        self.fetcher.close()

    # -- a pass --------------------------------------------------------------------------

    def due_feeds(self, now: datetime) -> list[FeedSpec]:
        due = self.store.due_feed_ids(now)
        return [f for f in self.config.enabled_feeds() if self._feed_ids[f.location] in due]

    def run(self, *, all_feeds: bool = False, stop: threading.Event | None = None) -> RunReport:
        """Update the due feeds (every enabled feed with `all_feeds`)."""
        started = time.monotonic()
        now = self.clock()
        self.index.drop_older_than(now - self.config.settings.dedup_window)
        feeds = list(self.config.enabled_feeds()) if all_feeds else self.due_feeds(now)
        report = RunReport()
        report.feeds = self.update_feeds(feeds, stop=stop)
        report.elapsed = time.monotonic() - started
        return report

    def update_feeds(
        self, feeds: Sequence[FeedSpec], *, stop: threading.Event | None = None
    ) -> list[FeedReport]:
        reports: list[FeedReport] = []
        if not feeds:
            return reports
        with ThreadPoolExecutor(
            max_workers=min(FETCH_WORKERS, len(feeds)), thread_name_prefix="fetch"
        ) as pool:
            futures: dict[Future[FetchResult], tuple[FeedSpec, float]] = {}
            for spec in feeds:
                etag, last_modified = self.store.feed_cache_headers(self._feed_ids[spec.location])
                future = pool.submit(
                    self.fetcher.fetch, spec, etag=etag, last_modified=last_modified
                )
                futures[future] = (spec, time.monotonic())
            for future in as_completed(futures):
                spec, started = futures[future]
                if stop is not None and stop.is_set():
                    # Stopping: finish nothing new; what is committed stays committed.
                    continue
                report = self._ingest(spec, future, started)
                log.info(report.log_line())
                reports.append(report)
        return reports

    # -- one feed ------------------------------------------------------------------------

    def _ingest(self, spec: FeedSpec, future: Future[FetchResult], started: float) -> FeedReport:
        feed_id = self._feed_ids[spec.location]
        now = self.clock()
        try:
            fetched = future.result()
            if fetched.not_modified:
                self.store.record_feed_success(
                    feed_id, now=now, status="not_modified",
                    next_due=schedule.next_due_after_success(now, spec.interval, self.rng),
                    etag=fetched.etag, last_modified=fetched.last_modified,
                    location=fetched.location,
                )  # fmt: skip
                return FeedReport(spec.name, "not_modified", elapsed=time.monotonic() - started)
            parsed = parse_feed(fetched.body, headers=fetched.headers, location=fetched.location)
            entries = [normalize_entry(raw, feed_link=parsed.link) for raw in parsed.entries]
            report = self._store_entries(spec, feed_id, entries, now)
            self.store.record_feed_success(
                feed_id, now=now, status="ok",
                next_due=schedule.next_due_after_success(
                    now, spec.interval, self.rng, ttl_minutes=parsed.ttl_minutes
                ),
                etag=fetched.etag, last_modified=fetched.last_modified,
                location=fetched.location, title=parsed.title, link=parsed.link,
            )  # fmt: skip
        except (FetchError, ParseError) as exc:
            return self._failed(spec, feed_id, now, exc.reason, started)
        except AggregatorError as exc:
            return self._failed(spec, feed_id, now, f"{type(exc).__name__}: {exc}", started)
        except Exception as exc:  # a bug: log it with the feed, keep the daemon alive
            log.exception("feed=%r unexpected error", spec.name)
            return self._failed(spec, feed_id, now, f"internal:{type(exc).__name__}", started)
        return FeedReport(
            spec.name, "ok", new=report.new, updated=report.updated,
            duplicates=report.duplicates, events=report.events,
            elapsed=time.monotonic() - started,
        )  # fmt: skip

    def _failed(
        self, spec: FeedSpec, feed_id: int, now: datetime, error: str, started: float
    ) -> FeedReport:
        failures = self.store.feed_failures(feed_id) + 1
        self.store.record_feed_failure(
            feed_id, now=now, error=error,
            next_due=schedule.next_due_after_failure(now, spec.interval, failures, self.rng),
        )  # fmt: skip
        return FeedReport(spec.name, "error", error=error, elapsed=time.monotonic() - started)

    def _store_entries(
        self, spec: FeedSpec, feed_id: int, entries: Sequence[Entry], now: datetime
    ) -> FeedReport:
        """Store a feed's entries and their events in one transaction.

        The index learns each entry as it is stored (entries of one feed can copy each
        other); if the transaction rolls back, those index additions are undone.
        """
        added_to_index: list[int] = []
        touched_events: set[int] = set()
        new = updated = duplicates = 0
        try:
            with self.store.transaction():
                for entry in entries:
                    existing = self.store.existing_entry(feed_id, entry.identity)
                    if existing is not None:
                        if existing.content_key != entry.content_key:
                            signatures = self.signer.sign(entry.title, entry.text)
                            self.store.update_entry_content(existing.id, entry, signatures, now=now)
                            updated += 1
                            if existing.event_id is not None:
                                touched_events.add(existing.event_id)
                        continue
                    entry_id, event_id, level = self._place(feed_id, entry, now)
                    added_to_index.append(entry_id)
                    touched_events.add(event_id)
                    new += 1
                    duplicates += level is not JoinLevel.FOUNDER
                for event_id in sorted(touched_events):
                    members = self.store.event_members(event_id)
                    canonical, reason = choose_canonical(members, self.config.settings.canonical)
                    self.store.set_event_summary(
                        event_id, canonical_entry_id=canonical.id, reason=reason, now=now
                    )
        except BaseException:
            for entry_id in added_to_index:
                self.index.remove(entry_id)
            raise
        return FeedReport(
            spec.name, "ok", new=new, updated=updated, duplicates=duplicates,
            events=len(touched_events),
        )  # fmt: skip

    def _place(self, feed_id: int, entry: Entry, now: datetime) -> tuple[int, int, JoinLevel]:
        """Insert a new entry into the event it copies, or a new event of its own."""
        signatures = self.signer.sign(entry.title, entry.text)
        # An empty text and a short title ("Live updates") is not distinctive content.
        by_content = bool(entry.text) or len(tokens(entry.title)) >= MIN_TITLE_WORDS
        exact = self.store.exact_duplicate(entry, by_content=by_content)
        matched_entry: int | None = None
        similarity: float | None = None
        rule: str | None = None
        if exact is not None:
            matched_entry, event_id = exact
            level, similarity, rule = JoinLevel.EXACT, 1.0, "same_url_or_text"
        else:
            candidates = self.index.candidates(signatures)
            sizes = self.store.event_sizes(c.event_id for c in candidates)
            match = best_match(signatures, candidates, event_sizes=sizes)
            if match is not None:
                matched_entry, event_id = match.entry_id, match.event_id
                level, similarity, rule = match.level, match.similarity, match.rule
            else:
                event_id = self.store.create_event(now)
                level = JoinLevel.FOUNDER
        entry_id = self.store.insert_entry(
            feed_id, entry, signatures, now=now, event_id=event_id, level=level,
            similarity=similarity, matched_entry_id=matched_entry, match_rule=rule,
        )  # fmt: skip
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
        return entry_id, event_id, level
