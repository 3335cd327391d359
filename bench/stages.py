"""Time per stage of a pipeline run, by wrapping the functions of each stage.

Exclusive time: a store call made from inside a dedup function counts as store, not
dedup. Times are per thread: fetches run in the fetch pool's threads, and parsing with the
preparation of entries (normalised, signed, vectorised) in the parse workers, waited on by
the pipeline's prepare threads, at the same time as the rest; so `fetch` and `parse` are
busy time summed over threads (they overlap the others). Dedup and store run one after
another in the calling thread, and add up to its time with `wait` (for a fetch or a
preparation to end: the calling thread idle) and what is not wrapped.
The wrappers cost about a microsecond a call, a few hundred milliseconds in a large run.
"""

from __future__ import annotations

import functools
import inspect
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import aggregator.pipeline as pipeline_module
from aggregator.dedup.events import EventIndex
from aggregator.dedup.index import SimilarityIndex
from aggregator.dedup.signature import Signer
from aggregator.ingest.fetch import Fetcher
from aggregator.ingest.fetch_pool import FetchPool
from aggregator.ingest.parse_worker import ParserPool
from aggregator.store import Store
from aggregator.store.sql import SqlStore
from aggregator.store.sqlite import SqliteStore

DEDUP_METHODS = {
    Signer: ("sign",),
    SimilarityIndex: ("add", "candidates", "drop_older_than", "move_to_event"),
    EventIndex: ("observe", "search", "add_member", "merge_candidate",
                 "late_member_candidate", "merge", "drop_older_than"),
}  # fmt: skip
# `prepare_entry` runs in the calling thread only for `Pipeline.ingest` (replays).
DEDUP_FUNCTIONS = ("prepare_entry", "decide_placement", "decide_merge", "choose_canonical")


class StageTimer:
    def __init__(self) -> None:
        self.seconds: defaultdict[str, float] = defaultdict(float)
        self.calls: Counter[str] = Counter()
        self._local = threading.local()
        self._lock = threading.Lock()
        self._undo: list[tuple[Any, str, Any]] = []

    @contextmanager
    def span(self, stage: str) -> Iterator[None]:
        stack: list[list[Any]] | None = getattr(self._local, "stack", None)
        if stack is None:
            stack = self._local.stack = []
        now = time.perf_counter()
        if stack:  # pause the enclosing stage
            outer = stack[-1]
            self._add(outer[0], now - outer[1])
        stack.append([stage, now])
        try:
            yield
        finally:
            end = time.perf_counter()
            stage_, started = stack.pop()
            self._add(stage_, end - started)
            self.calls[stage_] += 1
            if stack:
                stack[-1][1] = end

    def _add(self, stage: str, seconds: float) -> None:
        with self._lock:
            self.seconds[stage] += seconds

    def _wrap(self, stage: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self.span(stage):
                return fn(*args, **kwargs)

        return wrapper

    def _patch(self, owner: Any, name: str, replacement: Any) -> None:
        self._undo.append((owner, name, owner.__dict__[name]))
        setattr(owner, name, replacement)

    def install(self) -> None:
        """Wrap the stages' functions (before the Pipeline is made)."""
        self._patch(Fetcher, "fetch", self._wrap("fetch", Fetcher.fetch))
        self._patch(ParserPool, "parse", self._wrap("parse", ParserPool.parse))
        self._patch(ParserPool, "prepare", self._wrap("parse", ParserPool.prepare))
        self._patch(FetchPool, "collect", self._wrap("wait", FetchPool.collect))
        self._patch(
            pipeline_module.Pipeline, "_prepared",
            self._wrap("wait", pipeline_module.Pipeline._prepared),
        )  # fmt: skip
        for owner, names in DEDUP_METHODS.items():
            for name in names:
                self._patch(owner, name, self._wrap("dedup", getattr(owner, name)))
        for name in DEDUP_FUNCTIONS:
            self._patch(pipeline_module, name, self._wrap("dedup", getattr(pipeline_module, name)))
        for owner in (SqlStore, SqliteStore):
            for name, member in list(vars(owner).items()):
                if name.startswith("_") or name in ("transaction", "open", "close"):
                    continue
                if inspect.isfunction(member):
                    self._patch(owner, name, self._wrap("store", member))
        self._patch(SqliteStore, "transaction", self._timed_transaction(SqliteStore.transaction))

    def _timed_transaction(self, original: Callable[[Store], Any]) -> Callable[[Store], Any]:
        """The commit happens when the block ends: time entering and leaving as store."""
        timer = self

        @contextmanager
        def transaction(self: Store) -> Iterator[Any]:
            manager = original(self)
            with timer.span("store"):
                db = manager.__enter__()
            try:
                yield db
            except BaseException:
                with timer.span("store"):
                    if not manager.__exit__(*sys.exc_info()):
                        raise
            else:
                with timer.span("store"):
                    manager.__exit__(None, None, None)

        return transaction

    def uninstall(self) -> None:
        while self._undo:
            owner, name, original = self._undo.pop()
            setattr(owner, name, original)

    def snapshot(self) -> dict[str, float]:
        with self._lock:
            return {stage: round(seconds, 3) for stage, seconds in sorted(self.seconds.items())}

    def reset(self) -> None:
        with self._lock:
            self.seconds.clear()
            self.calls.clear()
