"""ParserPool: parsing in worker processes under a memory limit and a wall deadline."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import replace

import numpy as np
import pytest

from aggregator.dedup.signature import DEFAULT_PARAMS, Signer
from aggregator.errors import ParseError
from aggregator.ingest.normalize import normalize_entry
from aggregator.ingest.parse_worker import PREPARE_MIN_MEMORY, ParserPool, _Worker
from aggregator.ingest.prepare import prepare_entry
from tests.conftest import REPO

SEED = (REPO / "seeds" / "feeds" / "003-related.rss").read_bytes()
# feedparser's author e-mail regex is quadratic (issue #562): minutes on this input.
REDOS = (
    b'<rss version="2.0"><channel>'
    + b"<item><title>t</title><author>x@" + b"a-" * 20_000 + b"</author></item>" * 20
    + b"</channel></rss>"
)  # fmt: skip
MiB = 1024 * 1024


@pytest.fixture
def pool() -> Iterator[ParserPool]:
    with ParserPool(workers=1, timeout=2.0, memory_limit=256 * MiB) as started:
        yield started


def test_parses_in_a_reused_worker(pool: ParserPool) -> None:
    """Results come back as ParsedFeed; the same worker process serves later parses."""
    first = pool.parse(SEED, {"content-type": "application/rss+xml"}, "http://x/")
    pids = pool.worker_pids()
    second = pool.parse(SEED)
    assert first == second and len(first.entries) == 6
    assert pids == pool.worker_pids() and pids[0] != os.getpid()


def test_parse_errors_cross_the_process_boundary(pool: ParserPool) -> None:
    """Reasons of parse_feed arrive as ParseError with reason and detail."""
    with pytest.raises(ParseError) as raised:
        pool.parse(b"<html><body>no</body></html>")
    assert raised.value.reason == "not_a_feed"
    with pytest.raises(ParseError) as raised:
        pool.parse(b"<rss><channel><image></height></image></channel></rss>")
    assert raised.value.reason == "parser_crash:TypeError"


def test_timeout_kills_and_replaces_the_worker(pool: ParserPool) -> None:
    """A parse past the deadline is parse_timeout; a fresh worker serves the next one."""
    pool.parse(SEED)
    (before,) = pool.worker_pids()
    with pytest.raises(ParseError) as raised:
        pool.parse(REDOS)
    assert raised.value.reason == "parse_timeout"
    assert pool.replaced == 1
    assert pool.parse(SEED).title is not None
    (after,) = pool.worker_pids()
    assert after != before


def test_memory_limit_is_parse_oom_and_the_parent_is_untouched() -> None:
    """A document that needs more than the worker's address space is parse_oom; the
    worker is replaced and the next parse works."""
    huge = (
        b'<rss version="2.0"><channel><item><title>big</title><description>'
        + b"<p>x</p>" * (4 * MiB // 8)
        + b"</description></item></channel></rss>"
    )
    with ParserPool(workers=1, timeout=60.0, memory_limit=64 * MiB) as small:
        with pytest.raises(ParseError) as raised:
            small.parse(huge)
        assert raised.value.reason == "parse_oom"
        assert small.parse(SEED).title is not None


def test_a_worker_killed_during_a_parse_is_parse_oom(pool: ParserPool) -> None:
    """A worker that dies under a parse (as under the kernel's OOM killer) is parse_oom."""
    pool.parse(SEED)
    (pid,) = pool.worker_pids()
    killer = threading.Timer(0.5, os.kill, (pid, signal.SIGKILL))
    killer.start()  # the ReDoS parse runs well past 0.5 s; the deadline is 2 s
    try:
        with pytest.raises(ParseError) as raised:
            pool.parse(REDOS)
    finally:
        killer.join()
    assert raised.value.reason == "parse_oom"
    assert pool.parse(SEED).title is not None  # replaced


def test_an_idle_worker_that_died_is_replaced_transparently(pool: ParserPool) -> None:
    """A worker gone between parses costs nothing: the next parse starts a new one."""
    pool.parse(SEED)
    (pid,) = pool.worker_pids()
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    assert pool.parse(SEED).title is not None
    assert pool.worker_pids() != [pid]


def test_close_stops_the_workers() -> None:
    """After close() no worker is left and the pool refuses work."""
    pool = ParserPool(workers=2, timeout=5.0)
    pool.parse(SEED)
    pids = pool.worker_pids()
    pool.close()
    for pid in pids:
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
    with pytest.raises(RuntimeError):
        pool.parse(SEED)


def test_a_terminals_ctrl_c_leaves_the_workers_to_their_parent(pool: ParserPool) -> None:
    """Ctrl-C signals the whole process group; the parent stops its workers itself, so a
    worker ignores SIGINT (it died of it before, printing a traceback) and goes on."""
    pool.parse(SEED)
    (worker,) = pool.worker_pids()
    os.kill(worker, signal.SIGINT)
    time.sleep(0.3)  # a worker that takes the signal is gone by then
    assert len(pool.parse(SEED).entries) == 6
    assert pool.worker_pids() == [worker] and pool.replaced == 0


def test_prepare_gives_what_the_calling_thread_would(pool: ParserPool) -> None:
    """Entries normalised, signed and vectorised in the worker equal the same steps run
    here, value for value; the feed's own fields come back without the raw entries."""
    location = "http://x.example/feeds/003.rss"
    parsed = pool.parse(SEED, {"content-type": "application/rss+xml"}, location)
    signer = Signer(DEFAULT_PARAMS)
    prepared = pool.prepare(SEED, {"content-type": "application/rss+xml"}, location, signer)
    here = [
        prepare_entry(normalize_entry(raw, feed_link=parsed.link or location), signer)
        for raw in parsed.entries
    ]
    assert prepared.feed == replace(parsed, entries=())
    assert [p.entry for p in prepared.entries] == [p.entry for p in here] and len(here) == 6
    assert [p.vector for p in prepared.entries] == [p.vector for p in here]
    for theirs, ours in zip(prepared.entries, here, strict=True):
        assert np.array_equal(theirs.signatures.title, ours.signatures.title)
        assert np.array_equal(theirs.signatures.body, ours.signatures.body)
        assert theirs.signatures.headline_only == ours.signatures.headline_only
        assert theirs.signatures.body_shingles == ours.signatures.body_shingles


class _TruncatedPermutations(Signer):
    @property
    def permutations(self) -> bytes:
        return super().permutations[:12]


def test_a_failure_while_preparing_is_a_reason_and_the_worker_stays(pool: ParserPool) -> None:
    """An exception while preparing (here: permutations no Signer accepts) comes back as
    `prepare_crash:<Type>` with the worker's traceback; the worker serves the next one."""
    with pytest.raises(ParseError) as raised:
        pool.prepare(SEED, {}, "http://x/", _TruncatedPermutations(DEFAULT_PARAMS))
    assert raised.value.reason == "prepare_crash:ValueError"
    assert "Traceback" in raised.value.detail and "3 packed values" in raised.value.detail
    pids = pool.worker_pids()
    assert len(pool.prepare(SEED, {}, "http://x/", Signer(DEFAULT_PARAMS)).entries) == 6
    assert pool.worker_pids() == pids and pool.replaced == 0


def test_parse_errors_of_prepare_are_the_parse_reasons(pool: ParserPool) -> None:
    with pytest.raises(ParseError) as raised:
        pool.prepare(b"<html><body>no</body></html>", {}, "http://x/", Signer(DEFAULT_PARAMS))
    assert raised.value.reason == "not_a_feed"


def test_workers_prepare_at_their_minimum_memory_and_not_below() -> None:
    """At `PREPARE_MIN_MEMORY` a worker imports numpy and prepares; below it, a pool
    refuses to prepare (the caller prepares instead)."""
    signer = Signer(DEFAULT_PARAMS)
    with ParserPool(workers=1, memory_limit=PREPARE_MIN_MEMORY) as lowest:
        assert lowest.can_prepare
        assert len(lowest.prepare(SEED, {}, "http://x/", signer).entries) == 6
    with ParserPool(workers=1, memory_limit=PREPARE_MIN_MEMORY - MiB) as smaller:
        assert not smaller.can_prepare
        with pytest.raises(ValueError):
            smaller.prepare(SEED, {}, "http://x/", signer)
        assert len(smaller.parse(SEED).entries) == 6


def test_a_signer_made_from_packed_permutations_signs_alike() -> None:
    signer = Signer(DEFAULT_PARAMS)
    copy = Signer(DEFAULT_PARAMS, permutations=signer.permutations)
    for title, text in [("Storm hits the coast", ""), ("Vote", "The council voted " * 30)]:
        ours, theirs = signer.sign(title, text), copy.sign(title, text)
        assert np.array_equal(ours.title, theirs.title) and np.array_equal(ours.body, theirs.body)
    assert copy.permutations == signer.permutations  # the empty hash values included


def test_the_two_replies_of_a_prepare_read_back_to_back(monkeypatch: pytest.MonkeyPatch) -> None:
    """When both replies of a prepare are waiting in the pipe (a parent slow to look, as
    with a busy calling thread), the second is seen at once, not at the deadline: a
    buffered pipe once took both with the first read and hid the second from select()."""
    looked = _Worker.ready

    def late(worker: _Worker, timeout: float) -> bool:
        time.sleep(0.3)  # long enough for the worker to write both replies
        return looked(worker, timeout)

    monkeypatch.setattr(_Worker, "ready", late)
    # Small replies, so that the first read of a buffered pipe would have taken both.
    empty = b'<rss version="2.0"><channel><title>Nothing yet</title></channel></rss>'
    signer = Signer(DEFAULT_PARAMS)
    with ParserPool(workers=1, timeout=1.0) as pool:
        for _ in range(3):
            prepared = pool.prepare(empty, {}, "http://x/", signer)
            assert prepared.entries == () and prepared.feed.title == "Nothing yet"
        assert pool.replaced == 0


def test_start_boots_the_workers_before_any_document() -> None:
    """`start` launches every worker at once (the pipeline does it as its fetches begin);
    the documents then go to those very processes."""
    with ParserPool(workers=2) as pool:
        assert pool.worker_pids() == []
        pool.start()
        booted = sorted(pool.worker_pids())
        assert len(booted) == 2
        pool.start()  # nothing more to start
        assert sorted(pool.worker_pids()) == booted
        assert len(pool.prepare(SEED, {}, "http://x/", Signer(DEFAULT_PARAMS)).entries) == 6
        assert sorted(pool.worker_pids()) == booted


def test_a_caller_waiting_for_a_busy_worker_is_released_by_close() -> None:
    """`close` from another thread while a caller waits for the only (busy) worker: the
    caller gets an error at once instead of waiting for good (the pipeline's prepare
    threads would otherwise keep the process from exiting)."""
    pool = ParserPool(workers=1)
    held = pool._checkout()  # the only worker, busy
    outcome: list[BaseException] = []

    def wait_for_a_worker() -> None:
        try:
            pool.parse(SEED)
        except BaseException as exc:  # the outcome is what is tested
            outcome.append(exc)

    waiting = threading.Thread(target=wait_for_a_worker, daemon=True)
    waiting.start()
    time.sleep(0.3)
    pool.close()
    waiting.join(timeout=5)
    pool._checkin(held, healthy=True)  # closed: the worker is killed
    assert not waiting.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], RuntimeError)
    assert not held.alive()
