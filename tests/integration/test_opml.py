"""`aggregator feeds import FILE.opml`, `aggregator feeds export` and the feeds listing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from aggregator.cli import main
from aggregator.config import load_config
from aggregator.opml import read_opml, write_opml
from aggregator.pipeline import Pipeline
from aggregator.store import open_store
from tests.support.clock import FixedClock
from tests.support.http_server import LocalHTTPServer, Response

CONFIG = """\
# My feeds: this comment must survive an import.
settings:
  fetch_timeout: 20s   # and this one

groups:
  world:
    interval: 30m
    feeds:
      - name: Existing
        url: https://example.com/world.xml   # a trailing comment
  # a comment between groups
  tech:
    feeds:
      - name: Tech one
        url: https://example.com/tech.xml

# the end
"""

OPML = b"""<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0"><head><title>Subscriptions</title></head><body>
  <outline text="world" title="world">
    <outline type="rss" text="Wire" xmlUrl="https://wire.example/rss"/>
    <outline type="rss" text="Existing again" xmlUrl="HTTPS://Example.com:443/world.xml"/>
  </outline>
  <outline text="Science">
    <outline type="rss" text="Tech one" xmlUrl="https://science.example/feed"/>
    <outline type="rss" text="Local" xmlUrl="file:///etc/passwd"/>
  </outline>
  <outline type="rss" text="Loose &amp; &quot;quoted&quot; : name" xmlUrl="http://loose.example/"/>
</body></opml>
"""


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "feeds.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    return path


def test_import_adds_feeds_and_keeps_comments(
    config_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """New feeds land in their folder's group (or a new one); the YAML keeps every comment,
    known URLs and non-http URLs are skipped, a clashing name is made unique."""
    opml = tmp_path / "subs.opml"
    opml.write_bytes(OPML)
    code = main(["feeds", "import", str(opml), "--config", str(config_file)])
    out = capsys.readouterr().out
    assert code == 0
    assert "3 feeds added" in out and "already in the config" in out and "file:" in out
    text = config_file.read_text(encoding="utf-8")
    for line in CONFIG.splitlines():
        assert line in text  # nothing of the original changed
    config = load_config(config_file)
    by_name = {spec.name: spec for spec in config.feeds}
    assert by_name["Wire"].group == "world"
    assert by_name["Wire"].interval == by_name["Existing"].interval  # group defaults apply
    assert by_name["Tech one (2)"].url == "https://science.example/feed"
    assert by_name["Tech one (2)"].group == "Science"
    assert by_name['Loose & "quoted" : name'].group == "imported"
    assert len(config.feeds) == 5


def test_import_twice_adds_nothing(config_file: Path, tmp_path: Path) -> None:
    """Importing the same file again changes nothing: every URL is known by then."""
    opml = tmp_path / "subs.opml"
    opml.write_bytes(OPML)
    assert main(["feeds", "import", str(opml), "--config", str(config_file)]) == 0
    after_first = config_file.read_text(encoding="utf-8")
    assert main(["feeds", "import", str(opml), "--config", str(config_file)]) == 0
    assert config_file.read_text(encoding="utf-8") == after_first


@pytest.mark.parametrize(
    "document",
    [
        b"<opml><body><outline",
        b"<rss/>",
        b'<!DOCTYPE opml [<!ENTITY a "b">]><opml version="2.0"><body/></opml>',
    ],
)
def test_bad_opml_is_exit_2_and_leaves_the_config_alone(
    config_file: Path, tmp_path: Path, document: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    """Broken XML, another format or a DOCTYPE: one error line, exit 2, config untouched."""
    opml = tmp_path / "bad.opml"
    opml.write_bytes(document)
    assert main(["feeds", "import", str(opml), "--config", str(config_file)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("aggregator: ") and error.count("\n") == 1
    assert config_file.read_text(encoding="utf-8") == CONFIG


def test_export_round_trips_through_import(
    config_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Exported OPML lists every URL feed by group; importing it elsewhere gives them back."""
    out = tmp_path / "out.opml"
    assert main(["feeds", "export", "--output", str(out), "--config", str(config_file)]) == 0
    feeds, skipped = read_opml(out.read_bytes())
    assert skipped == []
    assert [(f.group, f.name, f.url) for f in feeds] == [
        ("world", "Existing", "https://example.com/world.xml"),
        ("tech", "Tech one", "https://example.com/tech.xml"),
    ]
    assert main(["feeds", "export", "--config", str(config_file)]) == 0
    assert "<opml" in capsys.readouterr().out


def test_export_never_contains_credentials(tmp_path: Path) -> None:
    """user:password in a URL is not exported."""
    path = tmp_path / "f.yaml"
    path.write_text("groups:\n  g:\n    feeds:\n      - url: https://u:pw@example.com/f\n")
    data = write_opml(load_config(path), now=datetime(2026, 1, 1, tzinfo=UTC))
    assert b"pw@" not in data and b"https://example.com/f" in data


@pytest.fixture
def server() -> Iterator[LocalHTTPServer]:
    with LocalHTTPServer() as started:
        yield started


def test_feeds_lists_effective_url_retired_and_failing(
    server: LocalHTTPServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`aggregator feeds` shows where a feed moved, a retired feed and a failing one."""
    rss = (
        b'<rss version="2.0"><channel><title>T</title><item><title>x</title></item></channel></rss>'
    )
    server.redirect("/old", "/new", status=301)
    server.serve_bytes("/new", rss)
    server.route("/gone", lambda _r: Response(status=410))
    server.route("/broken", lambda _r: Response(status=500))
    config_path = tmp_path / "feeds.yaml"
    config_path.write_text(
        "groups:\n  g:\n    allow_private: true\n    feeds:\n"
        + "".join(
            f"      - name: {name}\n        url: {server.url(path)}\n"
            for name, path in (("moved", "/old"), ("gone", "/gone"), ("broken", "/broken"))
        )
    )
    db = tmp_path / "feeds.db"
    store = open_store(db)
    clock = FixedClock(datetime(2026, 11, 22, tzinfo=UTC))
    pipeline = Pipeline(store=store, config=load_config(config_path), clock=clock)
    try:
        for _ in range(3):
            pipeline.run(all_feeds=True)
    finally:
        pipeline.close()
        store.close()
    assert main(["feeds", "--config", str(config_path), "--db", str(db)]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
    assert server.url("/new") + " (moved)" in lines["moved"]
    assert "retired (gone)" in lines["gone"]
    assert "failing (3x)" in lines["broken"] and "http_500" in lines["broken"]
