"""Each command, run as a real process (`python -m aggregator`) on a real SQLite file and
on a real PostgreSQL server."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import MAISON_BLANCHE, REPO, release
from tests.support import sql

COMMANDS = ["run", "update", "digest", "feeds", "serve"]


def aggregator(
    *args: str, cwd: Path = REPO, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aggregator", *args],
        cwd=cwd, capture_output=True, text=True, timeout=timeout,
        env={**os.environ, "PYTHONUTF8": "1"},
    )  # fmt: skip


@pytest.fixture
def fresh_db(database: str, tmp_path: Path) -> str:
    """No database yet, of each backend: a SQLite path in a directory that does not exist
    yet, an empty PostgreSQL database."""
    if sql.is_postgresql(database):
        return database
    return str(tmp_path / "data" / "aggregator.db")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def updated_db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The seed feeds stored by `update --all`, once per backend for the module's reading
    tests (which change nothing)."""
    if request.param == "sqlite":
        location = str(tmp_path_factory.mktemp("cli") / "data" / "aggregator.db")
    else:
        location = request.getfixturevalue("postgresql_server").database("cli")
    result = aggregator("update", "--all", "--db", location)
    assert result.returncode == 0, result.stderr
    yield location
    if request.param == "postgresql":
        release(location)


@pytest.mark.parametrize("command", COMMANDS)
def test_help_shows_an_example_and_the_common_options(command: str) -> None:
    """`--help` of every command shows an example, --db and --config."""
    result = aggregator(command, "--help")
    assert result.returncode == 0
    assert "example:" in result.stdout
    assert "--db" in result.stdout and "--config" in result.stdout


@pytest.mark.parametrize("command", ["digest", "status", "feeds"])
def test_reading_commands_do_not_import_scipy(command: str, updated_db: str) -> None:
    """The commands that only read never build an index, so they do not import datasketch,
    which imports scipy (over a second added to every `aggregator digest`), nor read the
    background's word lists (wordfreq)."""
    probe = (
        "import sys\n"
        "from aggregator.cli import main\n"
        f"code = main([{command!r}, '--db', {updated_db!r}])\n"
        "heavy = {'datasketch', 'scipy', 'wordfreq'}\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & heavy)\n"
        "print('heavy:', ','.join(heavy))\n"
        "raise SystemExit(code)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONUTF8": "1"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "heavy: "


def test_update_prints_a_summary_and_logs_one_line_per_feed(fresh_db: str) -> None:
    """`update --all` stores the seeds and logs `feed=... status=ok new=N ...` per feed."""
    result = aggregator("update", "--all", "--db", fresh_db)
    assert result.returncode == 0, result.stderr
    assert "2 feeds updated (0 failed): 7 new" in result.stdout
    log_lines = [line for line in result.stderr.splitlines() if "feed=" in line]
    assert len(log_lines) == 2
    assert any("status=ok new=6" in line and "duplicates=1" in line for line in log_lines)
    assert sql.at(fresh_db, "select count(*) from entries") == [(7,)]


def test_update_without_all_skips_feeds_not_due(updated_db: str) -> None:
    """Right after an update nothing is due, so a plain `update` touches no feed."""
    result = aggregator("update", "--db", updated_db)
    assert result.returncode == 0
    assert result.stdout.startswith("0 feeds updated")


def test_digest_text(updated_db: str) -> None:
    """The text digest shows the repeated headline once as an event (a story line may
    name it again), with its other source."""
    result = aggregator("digest", "--db", updated_db)
    assert result.returncode == 0, result.stderr
    titles = [line for line in result.stdout.splitlines() if line[:1].isdigit()]
    assert sum(MAISON_BLANCHE in line for line in titles) == 1
    assert "also reported by 1: Seed 003 — related headlines" in result.stdout
    assert "6 of 6 events" in result.stdout


def test_digest_json_and_limit(updated_db: str) -> None:
    """JSON output parses; --limit cuts the list but reports the total."""
    result = aggregator("digest", "--db", updated_db, "--format", "json", "--limit", "2")
    document = json.loads(result.stdout)
    assert document["total"] == 6
    assert len(document["events"]) == 2
    top = document["events"][0]
    assert top["title"] == MAISON_BLANCHE
    assert len(top["also_reported_by"]) == 1
    # The list headline arrived first (founder); the article joined it and is canonical.
    assert top["also_reported_by"][0]["join_level"] == "founder"
    assert top["canonical"]["join_level"] == "near_duplicate"


def test_digest_markdown(updated_db: str) -> None:
    """Markdown output has a heading per event and links each other copy."""
    result = aggregator("digest", "--db", updated_db, "--format", "markdown")
    assert result.stdout.startswith("# Digest since")
    assert result.stdout.count("\n## ") == 6
    assert "- [Seed 003 — related headlines](<https://seeds.invalid/003/related/3-" in result.stdout


def test_digest_since_excludes_older_arrivals(updated_db: str) -> None:
    """A window that starts after every arrival is empty."""
    time.sleep(1.2)
    result = aggregator("digest", "--db", updated_db, "--since", "1s")
    assert result.returncode == 0
    assert "0 of 0 events" in result.stdout
    assert "Nothing new in this window." in result.stdout


def test_feeds_lists_state(updated_db: str) -> None:
    """`feeds` shows each feed with status ok and its item count."""
    result = aggregator("feeds", "--db", updated_db)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["FEED", "GROUP", "STATUS"]
    related = next(line for line in lines if line.startswith("Seed 003"))
    assert " ok " in related and " 6" in related
    article = next(line for line in lines if line.startswith("Seed 000"))
    assert " ok " in article and " 1" in article


def test_feeds_before_any_update(fresh_db: str) -> None:
    """With no database yet, every feed shows as never fetched (and no database is
    created: no file, no table in the empty PostgreSQL database)."""
    result = aggregator("feeds", "--db", fresh_db)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("never fetched") == 2
    if sql.is_postgresql(fresh_db):
        tables = "select table_name from information_schema.tables where table_schema = 'public'"
        assert sql.at(fresh_db, tables) == []
    else:
        assert not Path(fresh_db).exists()


def test_digest_without_database_is_a_clear_error(fresh_db: str) -> None:
    """No database: one line saying what to do, exit 1, no traceback."""
    result = aggregator("digest", "--db", fresh_db)
    assert result.returncode == 1
    assert "aggregator update" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        ("groups:\n  g:\n    feeds:\n      - url: https://e.com/a\n        intervall: 5m\n", ":5:"),
        ("groups: [1, 2]\n", ":1:"),
        ("groups:\n  g:\n    feeds:\n      - path: missing.rss\n", "missing.rss"),
    ],
)
def test_bad_config_is_one_line_and_exit_2(tmp_path: Path, yaml_text: str, expected: str) -> None:
    """A config error prints file:line: key: problem on one line and exits 2. (SQLite
    only: the config is refused before any database is opened.)"""
    config = tmp_path / "feeds.yaml"
    config.write_text(yaml_text, encoding="utf-8")
    for command in ("update", "feeds", "run"):
        result = aggregator(command, "--config", str(config), "--db", str(tmp_path / "x.db"))
        assert result.returncode == 2, (command, result.stderr)
        assert "Traceback" not in result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and str(config) in lines[0] and expected in lines[0]


def test_bad_since_is_exit_2(updated_db: str) -> None:
    """A duration without a unit is refused with a usage error."""
    result = aggregator("digest", "--db", updated_db, "--since", "12")
    assert result.returncode == 2
    assert "--since" in result.stderr


def test_config_relative_paths_resolve_against_the_config_file(
    database: str, tmp_path: Path
) -> None:
    """A config copied elsewhere with its feeds still finds them, from any working directory."""
    shutil.copytree(REPO / "seeds" / "feeds", tmp_path / "seeds" / "feeds")
    (tmp_path / "config").mkdir()
    shutil.copy(REPO / "config" / "feeds.yaml", tmp_path / "config" / "feeds.yaml")
    db = database if sql.is_postgresql(database) else "out.db"  # relative to the cwd too
    result = aggregator(
        "update", "--all", "--config", "config/feeds.yaml", "--db", db, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "7 new" in result.stdout


def test_run_polls_at_once_prints_the_digest_and_stops_on_sigterm(fresh_db: str) -> None:
    """The daemon polls every feed at start, prints the digest, and exits 0 on SIGTERM."""
    process = subprocess.Popen(
        [sys.executable, "-m", "aggregator", "run", "--db", fresh_db, "--digest", "--tick", "1"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUTF8": "1"},
    )  # fmt: skip
    try:
        assert process.stdout is not None
        first = process.stdout.readline()  # blocks until the digest is printed
        assert first.startswith("Digest: 6 of 6 events")
        process.send_signal(signal.SIGTERM)
        stopped_at = time.monotonic()
        _, stderr = process.communicate(timeout=15)
        assert process.returncode == 0
        assert time.monotonic() - stopped_at < 10
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert "received SIGTERM" in stderr and "daemon stopped" in stderr
    assert sum("status=ok" in line for line in stderr.splitlines()) == 2
