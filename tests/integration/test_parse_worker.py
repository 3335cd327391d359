"""ParserPool: parsing in worker processes under a memory limit and a wall deadline."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator

import pytest

from aggregator.errors import ParseError
from aggregator.parse_worker import ParserPool
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
