"""Parsing in worker processes with a memory limit and a wall-clock deadline.

feedparser 6.0.14 has regexes that take minutes on 20-40 KB inputs and a fallback parser
that can allocate gigabytes (`reliability-anchors.md`, sections 0.3-0.4): a parse in the
daemon's own process could stall every feed or take the daemon down. So `ParserPool`
keeps a few long-lived worker processes:

* each worker is a fresh interpreter (`python -m aggregator.ingest.parse_worker`), never a fork
  of the daemon, whose threads may hold locks, and never a re-import of the caller's
  `__main__` (which `multiprocessing`'s spawn and forkserver methods do); requests and
  replies are pickled frames on the worker's stdin and stdout. Starting one costs about
  0.3 s (importing feedparser); reusing it costs about 1 ms per parse;
* each worker sets `RLIMIT_AS` on itself (default 512 MiB), so a runaway allocation ends in
  a MemoryError inside the worker instead of the machine's memory;
* the parent waits on the reply at most `timeout` seconds (default 10), then kills the
  worker (SIGKILL: a regex in C does not listen to anything gentler) and starts another
  for the next parse;
* bytes go in, a picklable ParsedFeed (or a reason) comes out. Nothing else is shared.

`ParserPool.prepare` also has the worker normalise, sign and vectorise the entries
(`aggregator.ingest.prepare`), so that this work overlaps with the caller's; the worker reports
the number of entries once parsed, and the parent then allows
`PREPARE_SECONDS_PER_ENTRY` per entry for the rest: the parse keeps its own deadline
(the hostile documents are the parser's), and a healthy feed of 500 long articles is not
failed for taking longer than one parse may.

Outcomes become ParseError reasons: `parse_timeout`, `parse_oom` (a MemoryError, or the
worker killed by a signal it did not get from us), `parser_crash:<Type>`, the reasons
of `parse_feed`, and for `prepare` `prepare_timeout` and `prepare_crash:<Type>` (a bug:
the detail holds the worker's traceback). Nothing a document does can raise anything
else out of `parse()` or `prepare()`.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import queue
import select
import signal
import struct
import subprocess
import sys
import threading
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any

from aggregator.children import child_environment
from aggregator.errors import ParseError
from aggregator.ingest.parse import parse_feed
from aggregator.models import (
    DEFAULT_MAX_ENTRIES,
    DEFAULT_PARSE_MEMORY,
    DEFAULT_PARSE_TIMEOUT,
    ParsedFeed,
)

if TYPE_CHECKING:  # imported by the worker only when asked to prepare (numpy)
    from aggregator.dedup.signature import Signer
    from aggregator.ingest.prepare import PreparedFeed

# Two workers: the pipeline parses one feed at a time, a second covers a caller in another
# thread (and the machine this was sized for has two cores).
DEFAULT_WORKERS = 2
# A worker is replaced after this many parses, so that memory fragmented by one huge feed
# does not stay with the worker for the daemon's lifetime.
MAX_PARSES_PER_WORKER = 500
# How long a worker that was asked to stop may take before it is killed.
_STOP_GRACE_SECONDS = 2.0
# Time to start a worker and get its first reply: a cold interpreter importing feedparser
# on a slow machine must not make the first parse a timeout.
_START_ALLOWANCE_SECONDS = 20.0
_FRAME = struct.Struct("!Q")  # length prefix of a pickled frame
# How often a caller waiting for a busy worker looks whether the pool was closed.
_CLOSED_POLL_SECONDS = 0.25
# Wall-clock seconds allowed per entry to normalise, sign and vectorise it after the parse
# (`prepare`). An entry of the benchmark corpus (250 words of text on average) takes about
# 3 ms here: this is 15 times that, so only a stuck worker reaches it.
PREPARE_SECONDS_PER_ENTRY = 0.05
# Preparing needs numpy in the worker, whose import alone needs about 100 MiB of address
# space (its BLAS; at most 1 thread of it, `_Worker`): workers limited to less only parse,
# and the caller prepares (`ParserPool.can_prepare`).
PREPARE_MIN_MEMORY = 192 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class _Request:
    body: bytes
    headers: dict[str, str]
    location: str
    max_entries: int
    # Set: also prepare the entries, with the Signer of these parameters (`MinHashParams`
    # as JSON) and permutations (`Signer.permutations`); plain values, so that reading a
    # request never imports the dedup modules. Two replies then.
    prepare_with: tuple[str, bytes] | None = None
    # What the caller has stored of the feed (identity -> content key): entries found
    # there unchanged are not prepared (`aggregator.ingest.prepare.prepare_feed`).
    stored: dict[str, str] | None = None


def _write_frame(stream: IO[bytes], payload: object) -> None:
    data = pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
    pending = memoryview(_FRAME.pack(len(data)) + data)
    while pending:  # an unbuffered pipe (the parent's) may take part of it at a time
        pending = pending[stream.write(pending) or 0 :]
    stream.flush()


def _read_exactly(stream: IO[bytes], size: int) -> bytes:
    chunks: list[bytes] = []
    while size:
        chunk = stream.read(size)
        if not chunk:
            raise EOFError("the other end closed the pipe")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _read_frame(stream: IO[bytes]) -> Any:
    (size,) = _FRAME.unpack(_read_exactly(stream, _FRAME.size))
    return pickle.loads(_read_exactly(stream, size))


def _limit_memory(limit: int) -> None:
    try:
        import resource  # POSIX only; without it the deadline still applies

        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ImportError, ValueError, OSError):
        pass


def _answer(request: _Request) -> tuple[Any, ...]:
    try:
        return (
            "ok",
            parse_feed(
                request.body,
                headers=request.headers,
                location=request.location,
                max_entries=request.max_entries,
            ),
        )
    except ParseError as exc:
        return ("error", exc.reason, exc.detail)
    except MemoryError:
        return ("error", "parse_oom", "the parse hit the worker's memory limit")
    except RecursionError as exc:  # parse_feed maps Exception; be explicit about this one
        return ("error", "parser_crash:RecursionError", str(exc)[:200])


_signers: dict[tuple[str, bytes], Signer] = {}  # in the worker: one per Signer asked for


def _prepared(request: _Request, parsed: Any) -> tuple[Any, ...]:
    """The second reply of a `prepare` request."""
    params = request.prepare_with
    assert params is not None
    try:
        from aggregator.dedup.signature import MinHashParams, Signer
        from aggregator.ingest.prepare import prepare_feed

        signer = _signers.get(params)
        if signer is None:
            signer = Signer(MinHashParams.from_json(params[0]), permutations=params[1])
            _signers[params] = signer
        return ("ok", prepare_feed(parsed, request.location, signer, request.stored))
    except MemoryError:
        return ("error", "parse_oom", "preparing the entries hit the worker's memory limit")
    except Exception as exc:  # a bug: the parent logs the traceback with the feed
        return ("error", f"prepare_crash:{type(exc).__name__}", traceback.format_exc()[-2000:])


def serve(memory_limit: int, *, preload: bool = False) -> None:
    """The worker's loop: one request in, one reply out, until stdin closes or None.

    `preload`: import what preparing needs now, while no request waits for it."""
    # Ctrl-C in a terminal signals the whole process group: the parent decides when its
    # workers stop (it closes their stdin), so a worker must not die of it mid-reply, nor
    # print a KeyboardInterrupt traceback under the daemon's last lines.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The protocol owns the real stdout; anything a library prints goes to stderr instead.
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    requests = sys.stdin.buffer
    _limit_memory(memory_limit)
    if preload:
        with contextlib.suppress(ImportError, MemoryError):  # a prepare will say why
            import aggregator.ingest.prepare  # noqa: F401
    while True:
        try:
            request = _read_frame(requests)
        except (EOFError, OSError):
            return  # the parent went away
        if request is None:
            return
        reply = _answer(request)
        if request.prepare_with is not None and reply[0] == "ok":
            if not _send(replies, ("parsed", len(reply[1].entries))):
                return
            reply = _prepared(request, reply[1])
        del request
        if not _send(replies, reply):
            return
        if reply[0] == "error" and reply[1] == "parse_oom":
            return  # an interrupted allocation can leave state behind: start afresh


def _send(replies: IO[bytes], reply: tuple[Any, ...]) -> bool:
    """Write a reply; False when the parent has gone."""
    try:
        _write_frame(replies, reply)
    except MemoryError:
        _write_frame(replies, ("error", "parse_oom", "the result did not fit the limit"))
    except OSError:
        return False
    return True


class _Worker:
    """One worker process and the parent's ends of its pipes."""

    def __init__(self, memory_limit: int, *, preload: bool = False) -> None:
        env = child_environment()  # numpy is loaded when preparing: BLAS on one thread
        self.process = subprocess.Popen(
            [sys.executable, "-m", "aggregator.ingest.parse_worker", str(memory_limit)]
            + (["preload"] if preload else []),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            close_fds=True,
            # Unbuffered: `ready` asks select() whether a reply has come, which cannot see
            # bytes a buffered reader has already taken from the pipe (a `prepare` sends
            # two frames, and the first read could take both: the second then looked
            # missing until the deadline).
            bufsize=0,
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self.requests: IO[bytes] = self.process.stdin
        self.replies: IO[bytes] = self.process.stdout
        self.parses = 0
        self.started = False  # has it answered once (imports done)?
        self.prepared = False  # has it prepared once (the dedup modules imported)?

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            self.process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=_STOP_GRACE_SECONDS)
        self._close_pipes()

    def stop(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            _write_frame(self.requests, None)
        try:
            self.process.wait(timeout=_STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            self.kill()
            return
        self._close_pipes()

    def _close_pipes(self) -> None:
        for stream in (self.requests, self.replies):
            with contextlib.suppress(OSError, ValueError):
                stream.close()

    def ready(self, timeout: float) -> bool:
        """Wait until a reply (or EOF) can be read, at most `timeout` seconds."""
        readable, _, _ = select.select([self.replies], [], [], timeout)
        return bool(readable)


class ParserPool:
    """Parses feed documents in worker processes; safe to share between threads.

    Workers start on first use and are reused. `close()` stops them; the pool cannot be
    used afterwards.
    """

    def __init__(
        self,
        *,
        workers: int = DEFAULT_WORKERS,
        timeout: float = DEFAULT_PARSE_TIMEOUT,
        memory_limit: int = DEFAULT_PARSE_MEMORY,
        max_entries: int = DEFAULT_MAX_ENTRIES,
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        if timeout <= 0 or memory_limit <= 0 or max_entries < 1:
            raise ValueError("timeout, memory_limit and max_entries must be positive")
        self.timeout = timeout
        self.memory_limit = memory_limit
        self.max_entries = max_entries
        # Slots, not workers: a None slot is a worker to start when it is next needed.
        self._idle: queue.LifoQueue[_Worker | None] = queue.LifoQueue()
        for _ in range(workers):
            self._idle.put(None)
        self._busy: set[_Worker] = set()
        self._lock = threading.Lock()
        self._closed = False
        self.replaced = 0  # workers killed or lost and replaced (for logs and tests)

    def __enter__(self) -> ParserPool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def parse(
        self, body: bytes, headers: Mapping[str, str] | None = None, location: str = ""
    ) -> ParsedFeed:
        """Parse one document in a worker. Returns a ParsedFeed; raises ParseError."""
        result = self._call(_Request(bytes(body), dict(headers or {}), location, self.max_entries))
        if isinstance(result, ParsedFeed):
            return result
        raise ParseError("parser_crash:BadReply", repr(result)[:200])

    @property
    def can_prepare(self) -> bool:
        """Whether the workers' memory limit leaves room to prepare (`PREPARE_MIN_MEMORY`)."""
        return self.memory_limit >= PREPARE_MIN_MEMORY

    def prepare(
        self,
        body: bytes,
        headers: Mapping[str, str] | None,
        location: str,
        signer: Signer,
        stored: Mapping[str, str] | None = None,
    ) -> PreparedFeed:
        """Parse one document and prepare its entries (`aggregator.ingest.prepare.prepare_feed`)
        with a copy of `signer`, in a worker, except those found unchanged in `stored`
        (identity -> content key). Raises ParseError."""
        from aggregator.ingest.prepare import PreparedFeed

        if not self.can_prepare:
            raise ValueError(f"workers limited to {self.memory_limit} bytes cannot prepare")
        with_signer = (signer.params.to_json(), signer.permutations)
        request = _Request(
            bytes(body), dict(headers or {}), location, self.max_entries, with_signer,
            dict(stored) if stored else None,
        )  # fmt: skip
        result = self._call(request)
        if isinstance(result, PreparedFeed):
            return result
        raise ParseError("parser_crash:BadReply", repr(result)[:200])

    def _call(self, request: _Request) -> object:
        """One request through a worker: the reply's result, or ParseError."""
        if self._closed:
            raise RuntimeError("ParserPool is closed")
        worker = self._checkout()
        healthy = False
        try:
            reply = self._exchange(worker, request)
            # After an OOM the worker exits by itself: never hand it another document.
            healthy = reply[:2] != ("error", "parse_oom")
        finally:
            self._checkin(worker, healthy=healthy)
        if reply[0] == "ok" and len(reply) == 2:
            return reply[1]
        if reply[0] == "error" and len(reply) == 3:
            raise ParseError(str(reply[1]), str(reply[2]))
        raise ParseError("parser_crash:BadReply", repr(reply)[:200])

    def close(self) -> None:
        """Stop every worker (idle ones politely, busy ones are killed)."""
        with self._lock:
            self._closed = True
            busy = list(self._busy)
        for worker in busy:
            worker.kill()
        while True:
            try:
                slot = self._idle.get_nowait()
            except queue.Empty:
                break
            if slot is not None:
                slot.stop()

    def start(self) -> None:
        """Start the workers not running yet, without waiting for them: their start
        (an interpreter, feedparser, numpy) then overlaps with the caller's fetches."""
        slots = []
        while True:
            try:
                slots.append(self._idle.get_nowait())
            except queue.Empty:
                break
        try:
            for number, slot in enumerate(slots):
                if slot is None and not self._closed:
                    slots[number] = _Worker(self.memory_limit, preload=self.can_prepare)
        finally:
            for slot in slots:
                self._idle.put(slot)

    def worker_pids(self) -> list[int]:
        """Process ids of the workers alive now (logs; tests check that workers are reused)."""
        with self._lock:
            workers = [*self._busy, *(w for w in list(self._idle.queue) if w is not None)]
        return [w.process.pid for w in workers if w.alive()]

    # -- internals -----------------------------------------------------------------------

    def _checkout(self) -> _Worker:
        # Waits while every worker is busy. `close()` from another thread (the pipeline's
        # prepare threads use the pool) takes the idle slots away: the wait looks at it
        # now and then, so that a caller never waits for a slot that cannot come.
        while True:
            try:
                slot = self._idle.get(timeout=_CLOSED_POLL_SECONDS)
                break
            except queue.Empty:
                if self._closed:
                    raise RuntimeError("ParserPool is closed") from None
        if self._closed:  # closed while this slot was being taken: `close()` missed it
            if slot is not None:
                slot.kill()
            raise RuntimeError("ParserPool is closed")
        if slot is None or not slot.alive():
            if slot is not None:
                slot.kill()
            try:
                slot = _Worker(self.memory_limit, preload=self.can_prepare)
            except BaseException:
                self._idle.put(None)
                raise
        with self._lock:
            self._busy.add(slot)
        return slot

    def _checkin(self, worker: _Worker, *, healthy: bool) -> None:
        with self._lock:
            self._busy.discard(worker)
            closed = self._closed
        worker.parses += 1
        if closed:
            worker.kill()
            return
        if healthy and worker.alive() and worker.parses < MAX_PARSES_PER_WORKER:
            self._idle.put(worker)
            return
        if healthy:
            worker.stop()  # retired after many parses, or exited on its own after an OOM
        else:
            worker.kill()
            self.replaced += 1
        self._idle.put(None)

    def _exchange(self, worker: _Worker, request: _Request) -> tuple[Any, ...]:
        """Send a request, wait for the reply under the deadline; raises ParseError when
        the worker has to be given up (the caller then kills it)."""
        try:
            _write_frame(worker.requests, request)
        except (OSError, ValueError) as exc:  # BrokenPipeError: the worker is gone
            raise self._lost(worker) from exc
        allowance = self.timeout if worker.started else self.timeout + _START_ALLOWANCE_SECONDS
        if not worker.ready(allowance):
            raise ParseError("parse_timeout", f"no result within {self.timeout:g}s")
        reply = self._reply(worker)
        if reply[0] == "parsed" and len(reply) == 2 and isinstance(reply[1], int):
            # Parsed: now the entries are prepared, under a deadline of their own.
            allowance = PREPARE_SECONDS_PER_ENTRY * reply[1] + (
                self.timeout if worker.prepared else self.timeout + _START_ALLOWANCE_SECONDS
            )
            if not worker.ready(allowance):
                raise ParseError(
                    "prepare_timeout", f"{reply[1]} entries not prepared within {allowance:g}s"
                )
            reply = self._reply(worker)
            worker.prepared = True
        return reply

    def _reply(self, worker: _Worker) -> tuple[Any, ...]:
        try:
            reply: tuple[Any, ...] = _read_frame(worker.replies)
        except (EOFError, OSError, pickle.UnpicklingError) as exc:
            raise self._lost(worker) from exc
        worker.started = True
        return reply

    def _lost(self, worker: _Worker) -> ParseError:
        """The worker died under us: by a signal (the kernel's OOM killer, a crash in C) or
        an exit; either way the document is what killed it."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            worker.process.wait(timeout=_STOP_GRACE_SECONDS)
        code = worker.process.returncode
        if code is not None and code < 0:
            return ParseError("parse_oom", f"the parse worker was killed by signal {-code}")
        return ParseError("parser_crash:WorkerExit", f"the parse worker exited with {code}")


if __name__ == "__main__":
    serve(
        int(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_PARSE_MEMORY,
        preload=sys.argv[2:3] == ["preload"],
    )
