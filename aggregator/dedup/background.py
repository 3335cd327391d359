"""How common each term is in ordinary language: the background against which a window's
bursts show (wordfreq's word lists, read once per process, in a child process).

Inverse document frequency over the window discounts the words many documents use. Inside
a 72-hour window, the documents that use a story's own words most are that story's: while
a story runs, "Bieber" was in 5% of the UCI headlines, and its IDF fell to that of an
ordinary word. Headlines of one story share little else, so the story came apart into
fragments (UCI B-cubed recall 0.586). A word that is rare in ordinary language but frequent
in the window is a story's word, not a common one; the background keeps its weight.

The background is wordfreq's small word lists (the words of each of its 42 languages
down to one occurrence in 100,000 words, `MIN_WORD_FREQUENCY`), folded and cut to terms
as the event level cuts them. A term's frequency is the sum over the words that make it,
in the language where it is most common: no language needs to be configured or detected,
and a word common in any language counts as common.
"""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
import threading
import zipfile
from collections import defaultdict
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import numpy as np
import numpy.typing as npt

from aggregator.children import child_environment
from aggregator.dedup.text import tokens

log = logging.getLogger(__name__)

_CHILD_TIMEOUT = 120.0  # seconds; the build takes about 3.5
_lock = threading.Lock()
_started: subprocess.Popen[bytes] | None = None  # see `start_reading`

# Rarer words are left out (they count as rare as a word no list holds), which barely moves
# the groups and saves about a quarter of the build time.
MIN_WORD_FREQUENCY = 1e-5
# Names the cached table's recipe: bump it when `term_frequencies` changes what it returns
# (the prefix length and wordfreq's version are in the name already).
BACKGROUND_RECIPE = f"1-min{MIN_WORD_FREQUENCY:g}"


def term_frequencies(
    prefix_length: int, hash_terms: Callable[[list[str]], npt.NDArray[np.uint64]]
) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.float64]]:
    """Each term's frequency in ordinary language (a share of words), by term hash: the sum
    over the words whose folded form starts with the term, in the language where that sum
    is largest. Returns the hashes, ascending, and the frequencies. About 2.5 s; see
    `read_term_frequencies` for where it runs."""
    from wordfreq import available_languages, get_frequency_list  # only when needed

    hash_parts: list[npt.NDArray[np.uint64]] = []
    frequency_parts: list[npt.NDArray[np.float64]] = []
    for language in sorted(available_languages(wordlist="small")):
        sums: defaultdict[str, float] = defaultdict(float)
        buckets = get_frequency_list(language, wordlist="small")
        # wordfreq keeps every list it read (about 5 MB a language, 200 MB for all): a
        # daemon would carry them for nothing.
        get_frequency_list.cache_clear()
        # Words by frequency, the most frequent first: bucket i holds the words of
        # frequency 10^(-i/100) (wordfreq's "centibels").
        for index, bucket in enumerate(buckets):
            frequency = 10.0 ** (-index / 100)
            if frequency < MIN_WORD_FREQUENCY:
                break
            for word in bucket:
                for folded in tokens(word):
                    sums[folded[:prefix_length]] += frequency
        hash_parts.append(hash_terms(list(sums)))
        frequency_parts.append(np.fromiter(sums.values(), dtype=np.float64, count=len(sums)))
    hashes = np.concatenate(hash_parts)
    frequencies = np.concatenate(frequency_parts)
    order = np.lexsort((-frequencies, hashes))  # by hash, the largest frequency first
    hashes, frequencies = hashes[order], frequencies[order]
    first = np.ones(len(hashes), dtype=np.bool_)
    first[1:] = hashes[1:] != hashes[:-1]
    return hashes[first], frequencies[first]


def document_shares(
    frequencies: npt.NDArray[np.float64], words_per_document: int
) -> npt.NDArray[np.float64]:
    """The chance that a document of `words_per_document` words holds a word of each
    frequency at least once (words drawn independently: the same approximation IDF makes):
    1 - (1 - f)^n, computed without rounding 1 - f for small f."""
    with np.errstate(divide="ignore"):  # log1p(-1) is -inf: a share of 1, as it should be
        shares: npt.NDArray[np.float64] = -np.expm1(
            words_per_document * np.log1p(-np.minimum(frequencies, 1.0))
        )
    return shares


Frequencies = tuple[npt.NDArray[np.uint64], npt.NDArray[np.float64]]


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
        [sys.executable, "-m", "aggregator.dedup.background", str(prefix_length)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=child_environment(), close_fds=True,
    )  # fmt: skip


def _main(argv: list[str]) -> int:
    from aggregator.dedup.vectors import term_hashes  # the event level names terms by hash

    prefix_length = int(argv[0])
    hashes, frequencies = term_frequencies(prefix_length, lambda t: term_hashes(t, len(t)))
    if not _save(cache_path(prefix_length), hashes, frequencies):
        np.save(sys.stdout.buffer, hashes, allow_pickle=False)
        np.save(sys.stdout.buffer, frequencies, allow_pickle=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
