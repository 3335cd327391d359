"""`aggregator status` and `--log-format json`, as real processes on a real database."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import REPO
from tests.support.daemon import rows, run_cli, write_config
from tests.support.http_server import unused_port

SEEDS = REPO / "seeds" / "feeds"


def config_text(directory: Path, port: int, *, with_old: bool) -> str:
    old = f"      - {{name: old, path: {SEEDS / '000-article.atom'}}}\n" if with_old else ""
    return (
        "groups:\n  g:\n    feeds:\n"
        f"      - {{name: seeds, path: {SEEDS / '003-related.rss'}}}\n"
        f"{old}"
        f"      - {{name: refused, url: 'http://127.0.0.1:{port}/f',"
        " allow_private: true}\n"
        f"      - {{name: paused, path: {directory / 'paused.rss'}, enabled: false}}\n"
    )


def test_status_shows_feeds_by_state_with_reasons_counts_and_sizes(tmp_path: Path) -> None:
    """After a cron run and a config edit: ok, retrying (its reason and next try), retired
    (removed, disabled), entry and event counts, database size, the last run; in text
    and in JSON."""
    db = tmp_path / "s.db"
    (tmp_path / "paused.rss").write_bytes((SEEDS / "003-related.rss").read_bytes())
    port = unused_port()
    config = write_config(tmp_path / "feeds.yaml", config_text(tmp_path, port, with_old=True))
    assert run_cli("run", "--once", "--config", str(config), "--db", str(db)).returncode == 0
    write_config(config, config_text(tmp_path, port, with_old=False))
    assert run_cli("run", "--once", "--config", str(config), "--db", str(db)).returncode == 0

    result = run_cli("status", "--config", str(config), "--db", str(db), "--format", "json")
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    feeds = {feed["name"]: feed for feed in status["feeds"]["list"]}
    assert (feeds["seeds"]["state"], feeds["seeds"]["entries"]) == ("ok", 6)
    assert (feeds["refused"]["state"], feeds["refused"]["reason"]) == (
        "retrying", "connection_refused",
    )  # fmt: skip
    assert feeds["refused"]["failures"] == 1 and feeds["refused"]["next_due"] is not None
    assert (feeds["old"]["state"], feeds["old"]["reason"]) == ("retired", "removed from the config")
    assert (feeds["paused"]["state"], feeds["paused"]["reason"]) == (
        "retired", "disabled in the config",
    )  # fmt: skip
    counts = status["feeds"]
    assert (counts["ok"], counts["retrying"], counts["retired"], counts["due"]) == (1, 1, 2, 0)
    assert status["entries"] == 7 and status["events"] == 6 == len(rows(db, "select * from events"))
    assert status["database"]["bytes"] == db.stat().st_size > 0
    assert status["daemon"]["running"] is False and status["daemon"]["last_tick_by"] == "run --once"
    assert set(status["maintenance"]) == {"prune", "optimize", "checkpoint"}

    text = run_cli("status", "--config", str(config), "--db", str(db))
    assert text.returncode == 0
    lines = text.stdout.splitlines()
    assert lines[0].startswith("daemon       not running; last tick ")
    assert (
        "3 enabled" not in text.stdout and "2 enabled (0 due now): 1 ok, 1 retrying" in text.stdout
    )
    assert any(line.strip().startswith("retrying refused (g): connection_refused, 1 failure")
               for line in lines)  # fmt: skip
    assert any("old (g): removed from the config" in line for line in lines)


def test_status_with_an_invalid_config_still_reports(tmp_path: Path) -> None:
    """An invalid config (the daemon keeps its last valid one) is shown, not fatal."""
    db = tmp_path / "s.db"
    assert run_cli("update", "--all", "--db", str(db)).returncode == 0
    bad = write_config(tmp_path / "bad.yaml", "groups:\n  g:\n    feeds:\n      - intervall: 5m\n")
    result = run_cli("status", "--config", str(bad), "--db", str(db))
    assert result.returncode == 0, result.stderr
    assert f"config       {bad}: INVALID: {bad}:4:" in result.stdout
    assert "7 entries in 6 events" in result.stdout


def test_status_without_a_database_is_one_line_and_exit_1(tmp_path: Path) -> None:
    """No database: one line saying what to do, exit 1, and no database created."""
    result = run_cli("status", "--db", str(tmp_path / "none.db"))
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "aggregator update" in result.stderr
    assert not (tmp_path / "none.db").exists()


def test_json_logs_carry_each_feed_update_as_fields(tmp_path: Path) -> None:
    """`--log-format json`: every stderr line is a JSON object; feed updates carry feed,
    status and counts as fields."""
    result = run_cli("update", "--all", "--db", str(tmp_path / "j.db"), "--log-format", "json")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stderr.splitlines()]
    updates = {r["feed"]: r for r in records if "feed" in r}
    assert updates["Seed 003 — related headlines"]["new"] == 6
    assert updates["Seed 000 — article"]["status"] == "ok"
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
