"""The ordinary-language table the event level weighs headlines against, read once per
machine (the edge of `dedup/background.py`, which computes it).

The table takes about 3.5 s to build, so it is cached in the user's cache directory
(`$XDG_CACHE_HOME/aggregator`, else `~/.cache/aggregator`), and it is built in a child
process (`python -m aggregator.word_frequencies`), because importing wordfreq in the daemon
left tens of MB taken for good. A daemon starts the child early (`prefetch`) and reads
the table at its first headline decision (`ordinary_language`).
"""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
import threading
import zipfile
from functools import cache
from importlib import metadata
from pathlib import Path

import numpy as np
import numpy.typing as npt

from aggregator.children import child_environment
from aggregator.dedup.background import (
    BACKGROUND_RECIPE,
    Frequencies,
    background_table,
    term_frequencies,
)
from aggregator.dedup.vectors import PREFIX_LENGTH, Background, term_hashes

log = logging.getLogger(__name__)

_CHILD_TIMEOUT = 120.0  # seconds; the build takes about 3.5
_lock = threading.Lock()
_started: subprocess.Popen[bytes] | None = None  # see `start_reading`


@cache
def ordinary_language() -> Background:
    """This process's background table (`background_table`), read once: 3.5 s in a child
    process the first time on a machine, 15 ms from the cache."""
    return background_table(read_term_frequencies(PREFIX_LENGTH))


def prefetch() -> None:
    """Start building `ordinary_language`'s table in its child process, unless read."""
    if not ordinary_language.cache_info().currsize:
        start_reading(PREFIX_LENGTH)


def cache_path(prefix_length: int) -> Path | None:
    """Where the table is kept between processes (the user's cache directory), named by
    everything that makes it: None when wordfreq is not installed."""
    try:
        version = metadata.version("wordfreq")
    except metadata.PackageNotFoundError:
        return None
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    name = f"background-{BACKGROUND_RECIPE}-p{prefix_length}-wordfreq{version}.npz"
    return base / "aggregator" / name


def start_reading(prefix_length: int) -> None:
    """Start `read_term_frequencies`' child now, unless the table is cached, so that it
    works while the caller does something else (a daemon's start reads its window from
    SQLite meanwhile)."""
    global _started
    cached = cache_path(prefix_length)
    with _lock:
        if _started is None and not (cached is not None and cached.is_file()):
            _started = _spawn(prefix_length)


def read_term_frequencies(prefix_length: int) -> Frequencies:
    """`term_frequencies`, read from the cache, else computed in a child process
    (`python -m` this module), which writes the cache.

    The cache: every process that decides events needs the table, and building it takes
    about 3.5 s (the test suite's CLI runs took minutes more). The child: in the process
    itself, importing wordfreq and reading its lists left 31-48 MB of the daemon's memory
    taken for good (its modules, and freed objects scattered over the allocator's
    arenas), for two arrays of 1.4 MB. The child sends the table on its stdout only when
    it could not write the cache: otherwise a child started early and never waited for
    would block on a full pipe, holding its memory. When the lists cannot be read, the
    reason is logged and the background is empty: headlines are then weighed by the
    window alone, as before it existed, and the daemon goes on."""
    global _started
    path = cache_path(prefix_length)
    with _lock:
        child, _started = _started, None
    if child is None:
        cached = _load(path)
        if cached is not None:
            return cached
    try:
        child = child or _spawn(prefix_length)
        out, err = child.communicate(timeout=_CHILD_TIMEOUT)
        if child.returncode != 0:
            lines = err.decode(errors="replace").strip().splitlines()
            raise ValueError(lines[-1] if lines else f"exit status {child.returncode}")
        if out:  # the cache could not be written
            stream = io.BytesIO(out)
            return np.load(stream).astype(np.uint64), np.load(stream).astype(np.float64)
        written = _load(path)
        if written is None:
            raise ValueError(f"the table was not in {path}")
        return written
    except (OSError, ValueError, subprocess.SubprocessError) as error:
        if child is not None and child.poll() is None:
            child.kill()
            child.wait()
        log.warning(
            "word frequencies unavailable, headlines weighed by the window alone: %s", error
        )
        return np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.float64)


def _load(path: Path | None) -> Frequencies | None:
    if path is None or not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as stored:
            hashes, frequencies = stored["hashes"], stored["frequencies"]
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        return None  # damaged: built again, and written over
    if hashes.dtype != np.uint64 or frequencies.dtype != np.float64:
        return None
    if len(hashes) != len(frequencies):
        return None
    return hashes, frequencies


def _save(
    path: Path | None, hashes: npt.NDArray[np.uint64], frequencies: npt.NDArray[np.float64]
) -> bool:
    """Write the cache atomically (a reader sees the old file or the whole new one). A
    cache that cannot be written only costs the next process the build."""
    if path is None:
        return False
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with partial.open("wb") as handle:
            np.savez(handle, hashes=hashes, frequencies=frequencies)
        os.replace(partial, path)
    except OSError as error:
        log.info("word frequencies not cached (%s): %s", path, error)
        return False
    return True


def _spawn(prefix_length: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "aggregator.word_frequencies", str(prefix_length)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=child_environment(), close_fds=True,
    )  # fmt: skip


def _main(argv: list[str]) -> int:
    prefix_length = int(argv[0])
    hashes, frequencies = term_frequencies(prefix_length, lambda t: term_hashes(t, len(t)))
    if not _save(cache_path(prefix_length), hashes, frequencies):
        np.save(sys.stdout.buffer, hashes, allow_pickle=False)
        np.save(sys.stdout.buffer, frequencies, allow_pickle=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
