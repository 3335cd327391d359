"""Every document of the shared corpora goes through fetch, parse and store.

`../shared/data/feedparser-tests` (2,107 documents of feedparser's own test suite: well-formed,
ill-formed, hostile), `feeds-fr-2025-02-10` (71 real French feeds) and `feeds-news-misc`
(real feeds in several languages and encodings) are served from one loopback server and
updated by the real pipeline in one pass per corpus. The pass must give every document a
report and none of them an uncaught exception (`internal:<Type>`); the French manifest
says which files are HTML pages saved as .xml, and those must be `not_a_feed` while every
RSS file is stored. The counts are printed (`pytest -rP`). Skipped when ../shared is absent.
"""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import pytest

from aggregator.config import parse_config
from aggregator.models import FeedReport
from aggregator.pipeline import Pipeline
from aggregator.store import open_store
from tests.support.clock import FixedClock
from tests.support.http_server import LocalHTTPServer, Request, Response

# feedparser's test files declare the HTTP headers their test harness fakes.
_HEADER_LINE = re.compile(rb"^Header:\s*([A-Za-z-]+):\s*(.+?)\s*$", re.MULTILINE)
_NOT_DOCUMENTS = {".md", ".txt", ".csv"}
_CONTENT_TYPES = {".json": "application/feed+json", ".html": "text/html"}


def documents(root: Path) -> list[Path]:
    return sorted(
        path for path in root.rglob("*") if path.is_file() and path.suffix not in _NOT_DOCUMENTS
    )


def declared_headers(body: bytes, suffix: str) -> list[tuple[str, str]]:
    """The `Header:` lines of a feedparser test file, else a content type from the suffix."""
    found = [(k.decode(), v.decode("latin-1")) for k, v in _HEADER_LINE.findall(body[:2048])]
    if not any(name.lower() == "content-type" for name, _ in found):
        found.append(("Content-Type", _CONTENT_TYPES.get(suffix, "application/xml")))
    return found


def serve_corpus(server: LocalHTTPServer, root: Path) -> dict[str, Path]:
    """Serve every document at /<relative path>; returns feed name -> file."""
    files = {path.relative_to(root).as_posix(): path for path in documents(root)}

    def handler(request: Request) -> Response:
        path = files.get(request.route_path.lstrip("/"))
        if path is None:
            return Response(status=404)
        body = path.read_bytes()
        return Response(headers=declared_headers(body, path.suffix), body=body)

    for relative in files:
        server.route("/" + quote(relative), handler)
    return files


def update_corpus(root: Path, tmp_path: Path) -> dict[str, FeedReport]:
    clock = FixedClock(datetime(2026, 11, 22, 8, 0, tzinfo=UTC))
    with LocalHTTPServer() as server:
        files = serve_corpus(server, root)
        lines = ["settings:", "  parse_timeout: 20s", "groups:", "  corpus:",
                 "    allow_private: true", "    feeds:"]  # fmt: skip
        for name in files:
            url = server.url("/" + quote(name))
            lines += [f"      - name: {json.dumps(name)}", f"        url: {json.dumps(url)}"]
        config = parse_config("\n".join(lines) + "\n", tmp_path / "corpus.yaml")
        store = open_store(tmp_path / "corpus.db")
        pipeline = Pipeline(store=store, config=config, clock=clock)
        try:
            reports = {r.feed: r for r in pipeline.run(all_feeds=True).feeds}
        finally:
            pipeline.close()
            store.close()
    return reports


def summary(name: str, reports: dict[str, FeedReport]) -> str:
    reasons = Counter(r.error for r in reports.values() if r.status == "error")
    parsed = sum(r.status == "ok" for r in reports.values())
    entries = sum(r.new + r.updated for r in reports.values())
    detail = ", ".join(f"{reason} {count}" for reason, count in reasons.most_common())
    return (
        f"{name}: {len(reports)} documents, {parsed} parsed and stored ({entries} entries), "
        f"{sum(reasons.values())} failed ({detail or 'none'})"
    )


def check(reports: dict[str, FeedReport], files: int) -> None:
    assert len(reports) == files  # every document got a report
    crashes = {
        name: r.error for name, r in reports.items() if (r.error or "").startswith("internal:")
    }
    assert crashes == {}


@pytest.mark.shared
def test_feedparser_test_corpus(shared_data: Callable[[str], Path], tmp_path: Path) -> None:
    """2,107 feedparser test documents: none raises out of the pipeline."""
    root = shared_data("feedparser-tests")
    reports = update_corpus(root, tmp_path)
    print(summary("feedparser-tests", reports))
    check(reports, len(documents(root)))
    # Its JSON Feed example is read by our own JSON Feed parser.
    (json_feed,) = [r for name, r in reports.items() if name.endswith(".json")]
    assert json_feed.status == "ok" and json_feed.new > 0


@pytest.mark.shared
def test_french_feeds_of_one_morning(shared_data: Callable[[str], Path], tmp_path: Path) -> None:
    """71 real French files: every RSS file is stored, the HTML pages are not_a_feed."""
    root = shared_data("feeds-fr-2025-02-10")
    reports = update_corpus(root, tmp_path)
    print(summary("feeds-fr-2025-02-10", reports))
    check(reports, len(documents(root)))
    with (root / "manifest.csv").open(encoding="utf-8") as handle:
        kinds = {row["file"]: row["kind"] for row in csv.DictReader(handle)}
    for name, report in reports.items():
        if kinds[name] == "html":
            assert report.error == "not_a_feed", name
        else:
            assert report.status == "ok", (name, report.error)


@pytest.mark.shared
def test_misc_news_feeds(shared_data: Callable[[str], Path], tmp_path: Path) -> None:
    """Real feeds in several languages and encodings: every XML file is stored."""
    root = shared_data("feeds-news-misc")
    reports = update_corpus(root, tmp_path)
    print(summary("feeds-news-misc", reports))
    check(reports, len(documents(root)))
    for name, report in reports.items():
        if name.endswith(".xml"):
            assert report.status == "ok", (name, report.error)
