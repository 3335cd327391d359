"""Shared fixtures: paths of the repository, the seed config, a fixed clock, a database of
each backend (a SQLite file, a real PostgreSQL server)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.support.clock import FixedClock
from tests.support.postgresql import Server
from tests.support.postgresql import binaries as postgresql_binaries
from tests.support.postgresql import start as start_postgresql

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SEED_CONFIG = REPO / "config" / "feeds.yaml"
MAISON_BLANCHE = (
    "La Maison Blanche affirme qu'un haut responsable russe a demandé à la Corée du Nord "
    "d'augmenter ses ventes de munitions à Moscou"
)


@pytest.fixture(scope="session", autouse=True)
def cache_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The user's cache directory (the word frequencies' table), one per test session:
    built once, shared by the commands the tests run, never the developer's own."""
    path = tmp_path_factory.mktemp("cache")
    previous = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(path)
    yield path
    if previous is None:
        del os.environ["XDG_CACHE_HOME"]
    else:
        os.environ["XDG_CACHE_HOME"] = previous


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 11, 22, 8, 0, tzinfo=UTC))


@pytest.fixture
def shared_data() -> Callable[[str], Path]:
    """Path into ../shared/data; skips the test when ../shared is absent."""

    def locate(relative: str) -> Path:
        path = SHARED / "data" / relative
        if not path.exists():
            pytest.skip(f"{path} is absent")
        return path

    return locate


@pytest.fixture(scope="session")
def postgresql_server() -> Iterator[Server]:
    """A real PostgreSQL server for the session (skips when PostgreSQL is not installed:
    Debian's `postgresql` package; CI installs it)."""
    if postgresql_binaries() is None:
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    # Not under pytest's tmp dir: the server runs as `nobody` when the tests run as root,
    # and pytest's directories are private to their owner.
    root = Path(tempfile.mkdtemp(prefix="aggregator-pg-"))
    server = start_postgresql(root)
    try:
        yield server
    finally:
        from aggregator.store.postgresql import close_pools

        close_pools()
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A new, empty database of each backend: a SQLite path, a PostgreSQL URL (its
    connections in this process closed after the test: a session of hundreds of tests
    must stay under the server's max_connections)."""
    if request.param == "sqlite":
        yield str(tmp_path / "aggregator.db")
        return
    server: Server = request.getfixturevalue("postgresql_server")
    url = server.database()
    yield url
    release(url)


def release(url: str) -> None:
    """Close this process's connections to the database at `url` (its pool, and the
    connection `tests.support.sql.at` keeps)."""
    from aggregator.store.postgresql import close_pools
    from tests.support import sql

    close_pools(url)
    sql.forget(url)
