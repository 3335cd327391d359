"""The shipped systemd unit: runs the daemon, reloads, and has a writable cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from aggregator.cli import build_parser
from aggregator.dedup.vectors import PREFIX_LENGTH
from aggregator.word_frequencies import cache_path


def test_systemd_unit_gives_the_word_frequency_table_a_writable_cache(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Under the unit's ProtectHome and ProtectSystem=strict, the home's cache is not
    writable: the unit points XDG_CACHE_HOME at the cache directory systemd creates."""
    unit = (Path(__file__).parents[2] / "config" / "aggregator.service").read_text()
    lines = [line for line in unit.splitlines() if "=" in line and line[0] != "#"]
    settings = dict(line.split("=", 1) for line in lines)
    environment = dict(line.split("=", 2)[1:] for line in lines if line.startswith("Environment="))
    assert settings["ProtectHome"] == "yes" and settings["ProtectSystem"] == "strict"
    monkeypatch.setenv("XDG_CACHE_HOME", environment["XDG_CACHE_HOME"])
    path = cache_path(PREFIX_LENGTH)
    assert path is not None
    assert path.parent == Path("/var/cache") / settings["CacheDirectory"]


def test_systemd_unit_runs_the_daemon_and_reloads_with_sighup() -> None:
    """The shipped unit starts `aggregator run` with arguments the CLI accepts, reloads
    with SIGHUP, stops with SIGTERM, and does not restart in a loop on a bad config."""
    unit = (Path(__file__).parents[2] / "config" / "aggregator.service").read_text()
    settings = dict(
        line.split("=", 1) for line in unit.splitlines() if "=" in line and line[0] != "#"
    )
    program, *args = settings["ExecStart"].split()
    assert program.endswith("/aggregator") and args[0] == "run"
    assert build_parser().parse_args(args).command == "run"
    assert settings["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert settings["KillSignal"] == "SIGTERM" and int(settings["TimeoutStopSec"]) >= 10
    assert settings["RestartPreventExitStatus"] == "2"
