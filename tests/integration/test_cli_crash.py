"""The CLI's last line of defence: a bug in any command prints one line naming it and
where its traceback was written, exits 1, and never shows a raw traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

# A bug planted in a command's handler: the real CLI then runs in a real process.
PROBE = """
import importlib, sys
cli = importlib.import_module("aggregator.cli.main")
def broken(args):
    raise KeyError("planted bug\\nwith a second line")
name = "_" + sys.argv[1]
(family,) = [module for module in cli.FAMILIES if hasattr(module, name)]
setattr(family, name, broken)
sys.exit(cli.main(sys.argv[1:]))
"""


@pytest.mark.parametrize(
    "argv",
    [["update"], ["digest"], ["status"], ["feeds"], ["run"], ["serve"], ["stats", "overlap"],
     ["reindex"]],
)  # fmt: skip
def test_a_bug_in_any_command_is_one_line_and_a_report(argv: list[str], tmp_path: Path) -> None:
    """Exit 1, one line on stderr naming the exception and the report file, no traceback;
    the report holds the traceback."""
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *argv, "--db", str(tmp_path / "a.db")],
        cwd=REPO, capture_output=True, text=True, timeout=60,
        env={**os.environ, "TMPDIR": str(tmp_path), "PYTHONUTF8": "1"},
    )  # fmt: skip
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"aggregator: internal error in `{argv[0]}`: KeyError:")
    (report,) = tmp_path.glob("aggregator-crash-*.txt")
    assert str(report) in line
    text = report.read_text(encoding="utf-8")
    assert "Traceback (most recent call last)" in text and "planted bug" in text
    assert report.stat().st_mode & 0o077 == 0  # the user's only: it may quote feed data
