"""The store's protocols: what the pipeline, dedup, the digest, the web page and the daemon
may ask of a database, whatever its engine (lemon24/reader's storage protocol is the model).

Every method raises only StoreError (reads too) for a database that cannot be used, and
takes and returns UTC-aware times. Signatures and term vectors reach the store encoded by
dedup (`Signatures`, `dedup.vectors`); the store keeps them as bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Protocol

from aggregator.dedup.index import FingerprintColumns
from aggregator.dedup.signature import MinHashParams, Signatures
from aggregator.models import (
    Entry,
    EventQuery,
    EventView,
    FeedSpec,
    FeedState,
    FilterRow,
    JoinLevel,
    Mark,
    MemberFacts,
    PlacedEntry,
    Reasons,
    StoredEntry,
    StoryLink,
    WindowEntry,
)
from aggregator.store.records import (
    ExistingEntry,
    FeedFetchState,
    Heartbeat,
    Lease,
    PruneResult,
    StagedUpdate,
)


class FeedStore(Protocol):
    """Feeds from the config and their fetch state (the fetch side of the pipeline)."""

    def sync_feeds(self, specs: Sequence[FeedSpec], now: datetime) -> dict[str, int]:
        """Make the feeds table match the config; returns location -> feed id.

        Feeds removed from the config are disabled, never deleted: their entries stay.
        """
        ...

    def due_feed_ids(self, now: datetime) -> set[int]: ...

    def record_feed_success(
        self, feed_id: int, *, now: datetime, next_due: datetime, status: str,
        etag: str | None, last_modified: str | None, location: str,
        title: str | None = None, link: str | None = None,
    ) -> None: ...  # fmt: skip

    def record_feed_failure(
        self, feed_id: int, *, now: datetime, next_due: datetime, error: str
    ) -> int:
        """Store the reason and count the failure; returns the consecutive failure count."""
        ...

    def feed_failures(self, feed_id: int) -> int: ...

    def feed_fetch_state(self, feed_id: int) -> FeedFetchState:
        """What the next fetch of a feed needs: validators, where it moved, whether retired."""
        ...

    def set_schedule_hints(
        self, feed_id: int, *, ttl_minutes: int | None, skip_hours: Iterable[int],
        skip_days: Iterable[int],
    ) -> None:  # fmt: skip
        """Remember the publisher's <ttl>, <skipHours> and <skipDays> for later 304s."""
        ...

    def note_permanent_redirect(
        self, feed_id: int, target: str | None, *, confirmations: int
    ) -> str | None:
        """Count a fetch's permanent-redirect target (None: the fetch had none). When the
        same target was seen on `confirmations` consecutive fetches, it becomes the feed's
        effective URL, which is returned; otherwise returns None."""
        ...

    def retire_feed(self, feed_id: int, *, now: datetime, reason: str) -> None:
        """Stop fetching a feed for good (its entries stay): `reason` is shown with it."""
        ...

    def hold_feeds(self, feed_ids: Iterable[int], until: datetime) -> None:
        """No feed of `feed_ids` is due before `until` (a host asked us to slow down)."""
        ...

    def feed_states(self) -> list[FeedState]: ...

    def failing_feed_ids(self) -> set[int]:
        """Feeds whose last fetch failed: the pipeline queues them after the others."""
        ...

    def set_next_due(self, feed_id: int, when: datetime) -> None: ...

    def group_names(self) -> list[str]:
        """The groups of the known feeds, by name."""
        ...


class EntryEventStore(Protocol):
    """Entries, events and stories: what the pipeline and dedup write and read back."""

    def check_dedup_params(self, params: MinHashParams) -> None:
        """Record the MinHash parameters, or refuse signatures made with other ones."""
        ...

    def check_term_recipe(self, recipe: str) -> int:
        """Record the recipe of the stored event term vectors; under another recipe,
        forget them (they are derived from the text until the window has turned over).
        Returns the number of vectors forgotten."""
        ...

    def set_dedup_params(self, params: MinHashParams) -> None: ...

    def existing_entry(self, feed_id: int, identity: str) -> ExistingEntry | None: ...

    def stored_versions(self, feed_id: int, limit: int) -> dict[str, str]:
        """identity -> content key of the feed's `limit` newest stored entries."""
        ...

    def exact_duplicate(self, entry: Entry) -> tuple[int, int] | None:
        """(entry id, event id) of a stored entry with the same canonical URL or (when the
        content is distinctive) the same normalised title and text, oldest first."""
        ...

    def insert_entry(
        self, feed_id: int, entry: Entry, signatures: Signatures, *, now: datetime,
        event_id: int, level: JoinLevel, similarity: float | None = None,
        matched_entry_id: int | None = None, match_rule: str | None = None,
        vector: Mapping[str, float] | None = None, hidden_by: str | None = None,
    ) -> int:  # fmt: skip
        """Insert a new entry; `vector` is its event term vector (`dedup.events`), if
        known (else it is derived from the text when the window is rebuilt); `hidden_by`:
        the filter rule that hides it, if one does."""
        ...

    def update_entry_content(
        self, entry_id: int, entry: Entry, signatures: Signatures, *, now: datetime,
        vector: Mapping[str, float] | None = None, hidden_by: str | None = None,
    ) -> None:  # fmt: skip
        """The publisher changed the item: update it in place, keep its event."""
        ...

    def fingerprint_columns_since(self, cutoff: datetime, num_perm: int) -> FingerprintColumns:
        """The fingerprints of the entries first seen at or after `cutoff` (the dedup
        window), as columns for `SimilarityIndex.add_columns`: one query, read in batches;
        the signature BLOBs of a batch joined and read as one matrix. (`fingerprints()`
        of the result gives them as objects.)"""
        ...

    def create_event(self, now: datetime) -> int:
        """A new, empty event, unread, under an id no event has had before."""
        ...

    def event_sizes(self, event_ids: Iterable[int]) -> dict[int, int]: ...

    def event_members(self, event_id: int) -> list[StoredEntry]: ...

    def member_facts(self, event_id: int) -> list[MemberFacts]:
        """What the canonical choice needs of each member of an event, by arrival.

        SQLite's `length` of a text counts characters up to the first NUL, the same as
        Python's `len` here: normalisation removes control characters from every text."""
        ...

    def entries_for_events_since(self, cutoff: datetime, recipe: str) -> Iterator[WindowEntry]:
        """The entries first seen at or after `cutoff`, oldest first, as what rebuilds the
        event centroids: the stored term vector if it was made by `recipe`, else title,
        text and link to derive it from; the title also when it holds a digit (it may name
        a part of a series or a date: `dedup.series`)."""
        ...

    def entry_event(self, entry_id: int) -> int | None: ...

    def delete_event(self, event_id: int) -> None:
        """Delete an event that has no members left."""
        ...

    def event_exists(self, event_id: int) -> bool: ...

    def merge_events(
        self, keep: int, gone: int, *, similarity: float | None, reason: str, now: datetime
    ) -> list[int]:
        """Move every entry of event `gone` into `keep`, record why, delete `gone`.

        Returns the ids of the entries moved. Separations of `gone` carry over to `keep`.
        """
        ...

    def move_entry_to_new_event(self, entry_id: int, *, now: datetime) -> int:
        """Split: the entry leaves its event for a new event of its own (a manual act),
        which starts with the old event's read and starred state, in its story."""
        ...

    def link_stories(
        self, event_id: int, linked_event_id: int, *, similarity: float,
        probability: float | None, now: datetime, reasons: Reasons = (),
    ) -> int:  # fmt: skip
        """Put the stories of two events together (an event found related to another, not
        the same happening), record why, and return the story id they now share."""
        ...

    def record_join_reasons(self, entry_id: int, probability: float, reasons: Reasons) -> None:
        """Why a write-up joined its event: the model's probability and deciding features."""
        ...

    def story_event_ids(self, event_id: int) -> set[int]:
        """The events of this event's story, itself included."""
        ...

    def story_links_of(self, event_id: int) -> list[StoryLink]:
        """Why this event is in its story: the links it takes part in, oldest first."""
        ...

    def separate_events(self, event_id: int, other_event_id: int, *, now: datetime) -> None: ...

    def separated_from(self, event_id: int) -> set[int]: ...

    def set_event_summary(
        self,
        event_id: int,
        *,
        canonical_entry_id: int,
        reason: str,
        now: datetime,
        hidden: bool = False,
    ) -> None:
        """Store the canonical choice and recount members, sources and times; `hidden`:
        filter rules hide every member."""
        ...

    def matched_entries(self, event_id: int) -> dict[int, tuple[int | None, str | None]]:
        """entry id -> (entry it matched, rule) for the members of an event."""
        ...

    def event_merge_history(self, event_id: int) -> list[dict[str, Any]]: ...

    def all_entry_texts(self) -> Iterator[tuple[int, str, str]]: ...

    def replace_signatures(self, entry_id: int, signatures: Signatures) -> None: ...

    def match_tombstone(self, feed_id: int, entry: Entry, *, keep_until: datetime) -> bool:
        """Whether `entry` was pruned earlier: the same identity in the same feed, or the
        same canonical URL or the same distinctive content in any feed (the keys exact
        dedup uses). A match extends the tombstone to `keep_until`, so an item that feeds
        keep serving stays known for as long as they serve it."""
        ...

    def filters_judged_by(self) -> str | None:
        """The digest of the rules the stored entries were last judged by (None: never)."""
        ...

    def set_filters_judged_by(self, fingerprint: str) -> None: ...

    def entries_to_filter(self, *, hidden_only: bool = False) -> Iterator[FilterRow]:
        """Every entry (`hidden_only`: every hidden one) with what filter rules read of
        it and the rule hiding it now."""
        ...

    def set_hidden_by(self, changes: Iterable[tuple[int, str | None]]) -> None:
        """(entry id, the rule that now hides it or None) for each entry whose verdict
        changed; its event is to be refreshed (`refresh_event`)."""
        ...

    def placed_entries(self) -> Iterator[PlacedEntry]:
        """Every entry with its feed, event and story, in arrival order."""
        ...

    def event_of_identities(self) -> dict[str, int | None]:
        """Each entry's identity (`guid:...`, `link:...`) and the event it is in."""
        ...


class DigestReads(Protocol):
    """What the digest, the web page and the Google Reader API read, and the marks they give."""

    def events_since(self, since: datetime, *, limit: int | None = None) -> list[EventView]:
        """Events with a member first seen at or after `since`, most sources first,
        then most recent."""
        ...

    def event(self, event_id: int) -> EventView | None: ...

    def find_events(self, query: EventQuery, *, latest: int | None = None) -> list[EventView]:
        """The events matching `query` (see EventQuery), unranked: the digest ranks them.

        With `latest`, only that many: the events that most recently gained a member (what
        a feed of the digest carries).
        """
        ...

    def events_by_id(self, event_ids: Sequence[int]) -> list[EventView]:
        """The events with these ids, in the order given; unknown ids are left out.

        Members are read in batches (one query per batch, not one per event).
        """
        ...

    def count_events(self, query: EventQuery) -> int:
        """How many events `query` matches (the unread count of a page, for one)."""
        ...

    def current_event_id(self, event_id: int) -> int | None:
        """The event an id stands for now: itself, or the event it was merged into (through
        every later merge); None when it never existed or has been pruned."""
        ...

    def mark_events(self, event_ids: Iterable[int], mark: Mark, *, now: datetime) -> int:
        """Give existing events a mark; the time of a mark already set is kept. Returns how
        many events changed."""
        ...

    def stream_event_ids(
        self, *, feed_ids: Sequence[int] | None = None, groups: Sequence[str] = (),
        read: bool | None = None, starred: bool | None = None,
        first_seen_from: datetime | None = None, first_seen_until: datetime | None = None,
        after: tuple[str, int] | None = None, oldest_first: bool = False,
        limit: int | None = None,
    ) -> list[tuple[int, str]]:  # fmt: skip
        """Events (id, first_seen as stored) with a member in one of `feed_ids` or of
        `groups` when given, in a read and starred state when given, that first arrived in
        [first_seen_from, first_seen_until); ordered by first arrival (newest first unless
        `oldest_first`), then id, and starting after the position `after` of that order."""
        ...

    def unread_by_feed(self) -> dict[int, tuple[int, datetime]]:
        """For each feed with unread events: how many, and when the newest first arrived."""
        ...

    def unread_by_group(self) -> dict[str, tuple[int, datetime]]:
        """For each config group with unread events: how many, and the newest's arrival."""
        ...

    def secret(self, name: str) -> bytes:
        """A random 32-byte secret kept in `meta` under `name`, made on first use (the API's
        token signing key: tokens then survive a restart of the server)."""
        ...

    def feed_overlap(self) -> list[tuple[str, int, int]]:
        """(feed name, entries, entries whose event also holds another feed's entry)."""
        ...

    def counts(self) -> dict[str, int]: ...


class Operations(Protocol):
    """Retention, maintenance and health: the daemon's housekeeping and `status`."""

    def prune(
        self, *, before: datetime, keep_tombstones_until: datetime, now: datetime,
        batch: int = ...,
    ) -> PruneResult:  # fmt: skip
        """Delete the events whose newest member arrived before `before`, with all their
        members, and the entries without an event that arrived before it; keep each
        deleted entry's keys as a tombstone until `keep_tombstones_until`; delete the
        tombstones that expired before `now`.

        A whole event goes or stays: an event with one recent member keeps its old ones,
        so no event is ever left with a missing canonical entry or a wrong count. One
        transaction per batch of events, so a kill -9 leaves only whole events.
        """
        ...

    def tombstone_count(self) -> int: ...

    def optimize(self) -> str:
        """Refresh the statistics the engine's query planner uses; what was done, in the
        engine's own words (the maintenance log line)."""
        ...

    def checkpoint(self) -> str:
        """Move the engine's journal into the main files where the engine leaves that to
        its client; what was done, in the engine's own words (the maintenance log line)."""
        ...

    def check_writable(self) -> None:
        """Raise StoreError unless this process can write the database now; writes nothing."""
        ...

    def record_heartbeat(self, beat: Heartbeat) -> None:
        """The daemon's sign of life, read by `aggregator status`."""
        ...

    def heartbeat(self) -> Heartbeat | None: ...

    def record_maintenance(self, job: str, now: datetime) -> None: ...

    def maintenance_runs(self) -> dict[str, datetime]:
        """When each maintenance job last ran, by name."""
        ...

    def storage_bytes(self) -> tuple[int, int]:
        """(bytes of the database, bytes of its journal not yet folded in), for `status`."""
        ...


class Cluster(Protocol):
    """Several processes on one database (`aggregator.roles`): fetch workers lease due
    feeds and stage what they fetched; the one grouping leader applies it in order."""

    def claim_feeds(
        self, owner: str, *, now: datetime, until: datetime, limit: int, per_host: int,
        host_of: Callable[[str], str | None],
    ) -> list[int]:  # fmt: skip
        """Lease up to `limit` due feeds to `owner` until `until` (none leased to another
        owner meanwhile, at most `per_host` at once per host across owners); their ids."""
        ...

    def release_leases(self, owner: str, feed_ids: Iterable[int]) -> None: ...

    def holds_lease(self, feed_id: int, owner: str, now: datetime) -> bool: ...

    def stage_update(self, feed_id: int, entries: bytes, *, now: datetime) -> int:
        """Stage a fetched feed's entries (`ingest.staged`) for the leader; its id."""
        ...

    def staged_updates(self, limit: int) -> list[StagedUpdate]:
        """The oldest staged updates, in the order they were staged."""
        ...

    def delete_staged(self, staged_id: int) -> None: ...

    def staged_count(self) -> int: ...

    def leases(self, now: datetime) -> list[Lease]:
        """The running leases, by owner and feed."""
        ...

    def set_fence(self, check: Callable[[], None]) -> None:
        """Call `check` as every outermost transaction begins (the leader's lock check)."""
        ...


class Store(FeedStore, EntryEventStore, DigestReads, Operations, Cluster, Protocol):
    """A whole database: the five protocols, a transaction, where it is, and closing it."""

    @property
    def location(self) -> str:
        """Where the database is, for messages (never with a password)."""
        ...

    def transaction(self) -> AbstractContextManager[None]:
        """One atomic unit of work (a savepoint when nested); StoreError after a rollback."""
        ...

    def close(self) -> None: ...
