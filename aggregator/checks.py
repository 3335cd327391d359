"""Start-up checks: refuse to run on a library or a database that would fail us later.

Run before the daemon (and `update`) starts, each with a message that says what to do:

- **SQLite** at least 3.27.0: the search index's tokenizer option `remove_diacritics 2`
  appeared in 3.27.0 (everything else we use is older: WAL 3.7.0, TRUNCATE checkpoints
  3.8.8, FTS5 3.9.0, `PRAGMA optimize` 3.18.0, UPSERT 3.24.0), and the FTS5 extension
  must be compiled in.
- **expat** at least 2.4.1: 2.4.0 added protection against entity-expansion attacks
  ("billion laughs", CVE-2013-0340) and 2.4.1 fixed its regressions. feedparser parses
  hostile feeds with the expat that Python is linked with.
- **a writable database**: file and directory permissions, and no other process holding
  it locked (`Store.check_writable`), so a read-only mount is reported at start, not as
  a failure on every feed.
"""

from __future__ import annotations

import pyexpat

from aggregator.errors import StartupError
from aggregator.store import Store, fts5_available, sqlite_version

MIN_SQLITE = (3, 27, 0)
MIN_EXPAT = (2, 4, 1)


def _dotted(version: tuple[int, ...]) -> str:
    return ".".join(str(part) for part in version)


def check_sqlite(version: tuple[int, int, int], *, fts5: bool) -> None:
    if version < MIN_SQLITE:
        raise StartupError(
            f"SQLite {_dotted(version)} is too old: the aggregator needs {_dotted(MIN_SQLITE)} "
            "or newer (Python uses the system's libsqlite3: upgrade it, or a newer Python)"
        )
    if not fts5:
        raise StartupError(
            f"SQLite {_dotted(version)} was built without FTS5, which the search index needs: "
            "use a libsqlite3 built with FTS5 (most distributions' are)"
        )


def check_expat(version: tuple[int, int, int]) -> None:
    if version < MIN_EXPAT:
        raise StartupError(
            f"expat {_dotted(version)} is too old: {_dotted(MIN_EXPAT)} or newer is needed "
            "for its protection against entity-expansion attacks in hostile feeds "
            "(upgrade libexpat, or use a newer Python)"
        )


def check_libraries() -> None:
    """The library checks (SQLite, expat): raise StartupError when one fails."""
    check_sqlite(sqlite_version(), fts5=fts5_available())
    check_expat(pyexpat.version_info)


def check_writable(store: Store) -> None:
    """Raise StoreError unless the database can be written now."""
    store.check_writable()
