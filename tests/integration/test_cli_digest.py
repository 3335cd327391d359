"""`aggregator digest` options and `aggregator serve`, run as real processes."""

from __future__ import annotations

import http.client
import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import MAISON_BLANCHE, REPO
from tests.support.hostile import unsafe_markup

ENV = {**os.environ, "PYTHONUTF8": "1"}


def aggregator(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aggregator", *args],
        cwd=REPO, capture_output=True, text=True, timeout=60, env=ENV,
    )  # fmt: skip


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "seed.db"
    result = aggregator("update", "--all", "--db", str(path))
    assert result.returncode == 0, result.stderr
    return path


def test_date_window_is_about_publication(db: Path) -> None:
    """--date picks the events published that day, whatever their arrival."""
    result = aggregator("digest", "--db", str(db), "--date", "2023-08-08")
    assert result.returncode == 0, result.stderr
    assert "1 of 1 events published on 2023-08-08 (UTC)" in result.stdout
    assert MAISON_BLANCHE in result.stdout


def test_search_finds_words_without_accents_in_all_time(db: Path) -> None:
    """--search matches every word, accents folded, over everything stored."""
    result = aggregator(
        "digest", "--db", str(db), "--search", "coree munitions", "--format", "json"
    )
    document = json.loads(result.stdout)
    assert document["total"] == 2 and document["window"]["arrived_since"] is None
    assert document["events"][0]["title"] == MAISON_BLANCHE


def test_group_filter_and_unknown_group(db: Path) -> None:
    """--group narrows to a config group; a group no feed has is a usage error (exit 2)."""
    ok = aggregator("digest", "--db", str(db), "--group", "seeds", "--format", "markdown")
    assert ok.returncode == 0 and "\n## seeds\n" in ok.stdout and ok.stdout.count("\n### ") == 6
    bad = aggregator("digest", "--db", str(db), "--group", "nope")
    assert bad.returncode == 2
    assert bad.stderr == "aggregator: --group: no feed in group 'nope' (groups: seeds)\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--date", "28/07/2023"], "--date: expected YYYY-MM-DD"),
        (["--since", "soon"], "--since:"),
        (["--search", "  "], "--search needs at least one word"),
        (["--since", "1h", "--date", "2023-07-28"], "not allowed with argument"),
    ],
)
def test_bad_digest_options_exit_2(db: Path, args: list[str], message: str) -> None:
    """Bad windows and empty searches are one-line usage errors, never tracebacks."""
    result = aggregator("digest", "--db", str(db), *args)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


def test_html_format_is_one_self_contained_inert_file(db: Path, tmp_path: Path) -> None:
    """--format html writes a page with its own CSP, its style inline, and no script."""
    result = aggregator("digest", "--db", str(db), "--format", "html")
    assert result.returncode == 0
    page = result.stdout
    assert page.startswith("<!doctype html>") and page.count('class="event"') == 6
    assert 'http-equiv="Content-Security-Policy"' in page and "<style>" in page
    assert "<details" in page and 'href="/' not in page
    assert unsafe_markup(page) == []


def run_on_terminal(*args: str, env: dict[str, str]) -> str:
    """Run the command with stdout on a pseudo-terminal; what it wrote."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "aggregator", *args],
        cwd=REPO, stdout=terminal, stderr=subprocess.DEVNULL, env=env,
    )  # fmt: skip
    os.close(terminal)
    output = b""
    while True:
        ready, _, _ = select.select([controller], [], [], 30)
        if not ready:
            break
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the terminal closed: the process is done
            break
        if not chunk:
            break
        output += chunk
    process.wait(timeout=30)
    os.close(controller)
    return output.decode("utf-8")


def test_terminal_gets_colours_and_width_pipes_get_plain_text(db: Path) -> None:
    """On a terminal: SGR colours and lines wrapped to COLUMNS; NO_COLOR and pipes: none."""
    args = ("digest", "--db", str(db))
    coloured = run_on_terminal(*args, env={**ENV, "COLUMNS": "60", "TERM": "xterm"})
    assert "\x1b[1m" in coloured
    plain_lines = re.sub(r"\x1b\[[0-9;]*m", "", coloured).splitlines()
    assert all(len(line) <= 60 or "https://" in line for line in plain_lines)
    no_color = run_on_terminal(*args, env={**ENV, "COLUMNS": "60", "NO_COLOR": "1"})
    assert "\x1b[" not in no_color
    piped = aggregator(*args).stdout
    assert "\x1b[" not in piped
    assert any(len(line) > 100 for line in piped.splitlines())  # not wrapped


def test_serve_answers_then_stops_on_sigterm(db: Path) -> None:
    """`serve --port 0` prints its address, serves the page, exits 0 on SIGTERM."""
    process = subprocess.Popen(
        [sys.executable, "-m", "aggregator", "serve", "--db", str(db), "--port", "0"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.match(r"Serving the digest on http://127\.0\.0\.1:(\d+)/", line)
        assert match, line
        connection = http.client.HTTPConnection("127.0.0.1", int(match.group(1)), timeout=30)
        connection.request("GET", "/")
        response = connection.getresponse()
        assert response.status == 200 and b"La Maison Blanche affirme" in response.read()
        connection.close()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_serve_reports_a_busy_port_and_a_missing_database(db: Path, tmp_path: Path) -> None:
    """A port already taken and a database not made yet are one-line errors, exit 1."""
    first = subprocess.Popen(
        [sys.executable, "-m", "aggregator", "serve", "--db", str(db), "--port", "0"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
    )  # fmt: skip
    try:
        assert first.stdout is not None
        port = re.findall(r":(\d+)/", first.stdout.readline())[0]
        busy = aggregator("serve", "--db", str(db), "--port", port)
        assert busy.returncode == 1
        assert busy.stderr.startswith(f"aggregator: cannot listen on 127.0.0.1:{port}: ")
        assert busy.stderr.count("\n") == 1
    finally:
        first.terminate()
        first.wait(timeout=30)
    missing = aggregator("serve", "--db", str(tmp_path / "none.db"), "--port", "0")
    assert missing.returncode == 1 and "aggregator update" in missing.stderr


def test_mark_read_hides_an_event_from_the_unread_digest(tmp_path: Path) -> None:
    """`mark read ID` takes the event out of `digest --unread`; `mark unread` brings it
    back; `mark star` shows it under `--starred`; an unknown id is a usage error."""
    path = tmp_path / "seed.db"
    assert aggregator("update", "--all", "--db", str(path)).returncode == 0

    def unread() -> list[dict[str, object]]:
        result = aggregator(
            "digest", "--db", str(path), "--since", "all", "--unread", "--format", "json"
        )
        assert result.returncode == 0, result.stderr
        events: list[dict[str, object]] = json.loads(result.stdout)["events"]
        return events

    before = unread()
    assert len(before) == 6 and not any(event["read"] for event in before)
    first, second = (int(str(event["event_id"])) for event in before[:2])
    marked = aggregator("mark", "read", str(first), str(second), "--db", str(path))
    assert marked.returncode == 0, marked.stderr
    assert marked.stdout.splitlines() == [f"event {first}: read", f"event {second}: read"]
    assert [event["event_id"] for event in unread()] == [e["event_id"] for e in before[2:]]
    assert aggregator("mark", "unread", str(second), "--db", str(path)).returncode == 0
    assert len(unread()) == 5
    assert aggregator("mark", "star", str(first), "--db", str(path)).returncode == 0
    starred = aggregator("digest", "--db", str(path), "--since", "all", "--starred")
    assert f"#{first} · starred · read" in starred.stdout and "1 of 1 events" in starred.stdout
    missing = aggregator("mark", "read", "999999", "--db", str(path))
    assert missing.returncode == 2 and "no event 999999" in missing.stderr
    assert len(unread()) == 5  # nothing was written by the refused command
