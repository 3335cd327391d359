"""Parsing in worker processes with a memory limit and a wall-clock deadline.

feedparser 6.0.14 has regexes that take minutes on 20-40 KB inputs and a fallback parser
that can allocate gigabytes (`reliability-anchors.md`, sections 0.3-0.4): a parse in the
daemon's own process could stall every feed or take the daemon down. So `ParserPool`
keeps a few long-lived worker processes:

* each worker is a fresh interpreter (`python -m aggregator.parse_worker`), never a fork
  of the daemon, whose threads may hold locks, and never a re-import of the caller's
  `__main__` (which `multiprocessing`'s spawn and forkserver methods do); requests and
  replies are pickled frames on the worker's stdin and stdout. Starting one costs about
  0.3 s (importing feedparser); reusing it costs about 1 ms per parse (docs/design.md);
* each worker sets `RLIMIT_AS` on itself (default 512 MiB), so a runaway allocation ends in
  a MemoryError inside the worker instead of the machine's memory;
* the parent waits on the reply at most `timeout` seconds (default 10), then kills the
  worker (SIGKILL: a regex in C does not listen to anything gentler) and starts another
  for the next parse;
* bytes go in, a picklable ParsedFeed (or a reason) comes out. Nothing else is shared.

Outcomes become ParseError reasons: `parse_timeout`, `parse_oom` (a MemoryError, or the
worker killed by a signal it did not get from us), `parser_crash:<Type>` and the reasons
of `parse_feed`. Nothing a document does can raise anything else out of `parse()`.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import queue
import select
import struct
import subprocess
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from aggregator.errors import ParseError
from aggregator.models import (
    DEFAULT_MAX_ENTRIES,
    DEFAULT_PARSE_MEMORY,
    DEFAULT_PARSE_TIMEOUT,
    ParsedFeed,
)
from aggregator.parse import parse_feed

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
# The directory holding the `aggregator` package, so the worker imports this very copy.
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[1])


@dataclass(frozen=True, slots=True)
class _Request:
    body: bytes
    headers: dict[str, str]
    location: str
    max_entries: int


def _write_frame(stream: IO[bytes], payload: object) -> None:
    data = pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_FRAME.pack(len(data)) + data)
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


def serve(memory_limit: int) -> None:
    """The worker's loop: one request in, one reply out, until stdin closes or None."""
    # The protocol owns the real stdout; anything a library prints goes to stderr instead.
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    requests = sys.stdin.buffer
    _limit_memory(memory_limit)
    while True:
        try:
            request = _read_frame(requests)
        except (EOFError, OSError):
            return  # the parent went away
        if request is None:
            return
        reply = _answer(request)
        del request
        try:
            _write_frame(replies, reply)
        except MemoryError:
            _write_frame(replies, ("error", "parse_oom", "the result did not fit the limit"))
        except OSError:
            return
        if reply[0] == "error" and reply[1] == "parse_oom":
            return  # an interrupted allocation can leave state behind: start afresh


class _Worker:
    """One worker process and the parent's ends of its pipes."""

    def __init__(self, memory_limit: int) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_PACKAGE_ROOT, env.get("PYTHONPATH")) if p)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "aggregator.parse_worker", str(memory_limit)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            close_fds=True,
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self.requests: IO[bytes] = self.process.stdin
        self.replies: IO[bytes] = self.process.stdout
        self.parses = 0
        self.started = False  # has it answered once (imports done)?

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
        if self._closed:
            raise RuntimeError("ParserPool is closed")
        request = _Request(bytes(body), dict(headers or {}), location, self.max_entries)
        worker = self._checkout()
        healthy = False
        try:
            reply = self._exchange(worker, request)
            # After an OOM the worker exits by itself: never hand it another document.
            healthy = reply[:2] != ("error", "parse_oom")
        finally:
            self._checkin(worker, healthy=healthy)
        if reply[0] == "ok" and isinstance(reply[1], ParsedFeed):
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

    def worker_pids(self) -> list[int]:
        """Process ids of the workers alive now (logs; tests check that workers are reused)."""
        with self._lock:
            workers = [*self._busy, *(w for w in list(self._idle.queue) if w is not None)]
        return [w.process.pid for w in workers if w.alive()]

    # -- internals -----------------------------------------------------------------------

    def _checkout(self) -> _Worker:
        slot = self._idle.get()  # blocks while every worker is busy
        if slot is None or not slot.alive():
            if slot is not None:
                slot.kill()
            try:
                slot = _Worker(self.memory_limit)
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
    serve(int(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_PARSE_MEMORY)
