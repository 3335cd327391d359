"""Start-up checks: SQLite, FTS5 and expat versions that are safe to run with."""

from __future__ import annotations

import pytest

from aggregator.checks import (
    MIN_EXPAT,
    MIN_SQLITE,
    check_expat,
    check_libraries,
    check_sqlite,
)
from aggregator.errors import StartupError


def test_this_environment_passes_the_library_checks() -> None:
    """The libraries the tests run on are recent enough (else nothing else would work)."""
    check_libraries()


def test_old_or_incomplete_sqlite_is_refused() -> None:
    """SQLite older than the minimum, or without FTS5, gives a message naming versions."""
    old = (MIN_SQLITE[0], MIN_SQLITE[1] - 1, 0)
    with pytest.raises(StartupError, match=r"SQLite 3\.26\.0 is too old.*3\.27\.0"):
        check_sqlite(old, fts5=True)
    with pytest.raises(StartupError, match="without FTS5"):
        check_sqlite(MIN_SQLITE, fts5=False)
    check_sqlite(MIN_SQLITE, fts5=True)


def test_old_expat_is_refused_for_entity_expansion() -> None:
    """expat before 2.4.1 lacks the entity-expansion protection: refused."""
    with pytest.raises(StartupError, match=r"expat 2\.4\.0 is too old.*entity-expansion"):
        check_expat((2, 4, 0))
    check_expat(MIN_EXPAT)
