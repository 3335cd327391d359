"""Helpers for tests that run the real daemon: feeds to serve, a process, waiting, reading.

The daemon runs as `python -m aggregator run ...` with its logs in a file (a pipe that
nobody reads could fill up and block it); the database (a SQLite file or a PostgreSQL
URL) is read through a separate connection, as `aggregator digest` would.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from tests.conftest import REPO
from tests.support import sql

# Bounds that detect a hang; none of them measures speed.
HANG_SECONDS = 60.0
PUBLISHED = datetime(2026, 11, 20, 12, tzinfo=UTC)  # every item's date: reruns match


@dataclass(frozen=True)
class Item:
    guid: str
    title: str
    text: str
    link: str


def rss(title: str, items: Sequence[Item]) -> bytes:
    """An RSS 2.0 document with these items."""
    published = format_datetime(PUBLISHED, usegmt=True)
    body = "".join(
        f"<item><guid isPermaLink='false'>{escape(item.guid)}</guid>"
        f"<title>{escape(item.title)}</title><link>{escape(item.link)}</link>"
        f"<description>{escape(item.text)}</description><pubDate>{published}</pubDate></item>"
        for item in items
    )
    return (
        "<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel>"
        f"<title>{escape(title)}</title><link>https://example.org/</link>{body}"
        "</channel></rss>"
    ).encode()


def wait_for(predicate: Callable[[], object], *, what: str, timeout: float = HANG_SECONDS) -> None:
    """Poll `predicate` until it is true; fail naming `what` if it never is."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def rows(db: Path | str, query: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Run a read query on its own connection (the daemon may be writing): a SQLite path
    or a PostgreSQL URL (`tests.support.sql.at`)."""
    return sql.at(db, query, params)


def write_config(path: Path, body: str) -> Path:
    path.write_text(body, encoding="utf-8")
    return path


class DaemonProcess:
    """`aggregator run` (or any command) as a child process, logs in a file."""

    def __init__(self, *args: str, log: Path, cwd: Path = REPO) -> None:
        self.log = log
        self._log_file = log.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "aggregator", *args],
            cwd=cwd, stdout=subprocess.DEVNULL, stderr=self._log_file,
            env={**os.environ, "PYTHONUTF8": "1"},
        )  # fmt: skip

    @property
    def pid(self) -> int:
        return self.process.pid

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def records(self) -> list[dict[str, Any]]:
        """The JSON log records so far (with `--log-format json`)."""
        found = []
        for line in self.text().splitlines():
            if line.startswith("{"):
                try:
                    found.append(json.loads(line))
                except json.JSONDecodeError:
                    continue  # the last line may be half-written when the process was killed
        return found

    def send(self, sig: signal.Signals) -> None:
        self.process.send_signal(sig)

    def wait(self, timeout: float = HANG_SECONDS) -> int:
        try:
            return self.process.wait(timeout=timeout)
        finally:
            self._log_file.close()

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> tuple[int, float]:
        """Send `sig`, wait; returns (exit code, seconds it took to exit)."""
        started = time.monotonic()
        self.process.send_signal(sig)
        code = self.wait()
        return code, time.monotonic() - started

    def kill(self) -> None:
        """kill -9, if it is still running."""
        if self.process.poll() is None:
            self.process.kill()
        self.wait()

    def __enter__(self) -> DaemonProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()


def run_cli(
    *args: str, cwd: Path = REPO, timeout: float = HANG_SECONDS
) -> subprocess.CompletedProcess[str]:
    """`python -m aggregator ARGS` to completion."""
    return subprocess.run(
        [sys.executable, "-m", "aggregator", *args],
        cwd=cwd, capture_output=True, text=True, timeout=timeout,
        env={**os.environ, "PYTHONUTF8": "1"},
    )  # fmt: skip
