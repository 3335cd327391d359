"""The pipeline over HTTP: seed feeds served by a real server on 127.0.0.1."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aggregator.config import parse_config
from aggregator.ingest.prepare import PreparedEntry, PreparedFeed
from aggregator.models import Config
from aggregator.pipeline import Pipeline
from aggregator.store import Store, open_store
from tests.conftest import MAISON_BLANCHE, REPO
from tests.support.clock import FixedClock
from tests.support.http_server import LocalHTTPServer, Response
from tests.support.http_server import http_server as http_server

SEED_FEEDS = REPO / "seeds" / "feeds"
LAST_MODIFIED = "Tue, 22 Aug 2023 12:00:00 GMT"


def http_config(server: LocalHTTPServer, tmp_path: Path, extra: str = "", head: str = "") -> Config:
    text = f"""{head}
groups:
  seeds:
    allow_private: true   # the test server is on loopback
    feeds:
      - name: related
        url: {server.url("/003.rss")}
      - name: article
        url: {server.url("/000.atom")}
{extra}"""
    return parse_config(text, tmp_path / "feeds.yaml")


def serve_seeds(server: LocalHTTPServer) -> None:
    server.serve_bytes(
        "/003.rss", (SEED_FEEDS / "003-related.rss").read_bytes(),
        content_type="application/rss+xml", etag='"rss-1"', gzip=True,
    )  # fmt: skip
    server.serve_bytes(
        "/000.atom", (SEED_FEEDS / "000-article.atom").read_bytes(),
        content_type="application/atom+xml", last_modified=LAST_MODIFIED,
    )  # fmt: skip


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    db = open_store(tmp_path / "http.db")
    yield db
    db.close()


@pytest.mark.parametrize(
    "settings",
    ["", "settings:\n  parse_memory: 64MiB"],
    ids=["workers-prepare", "workers-too-small-to-prepare"],
)
def test_seeds_over_http_group_like_local_files(
    http_server: LocalHTTPServer, tmp_path: Path, store: Store, clock: FixedClock, settings: str
) -> None:
    """Fetched over HTTP (one gzipped), the seeds give the same six events, whether the
    parse workers prepare the entries or, limited below what preparing needs, only parse
    (the pipeline then prepares them itself)."""
    serve_seeds(http_server)
    config = http_config(http_server, tmp_path, head=settings)
    pipeline = Pipeline(store=store, config=config, clock=clock)
    report = pipeline.run(all_feeds=True)
    assert pipeline._parser().can_prepare == (settings == "")
    pipeline.close()
    assert sorted(r.status for r in report.feeds) == ["ok", "ok"]
    events = store.events_since(clock() - pipeline.config.settings.dedup_window)
    assert len(events) == 6
    repeated = [e for e in events if e.canonical.title == MAISON_BLANCHE]
    assert len(repeated) == 1 and len(repeated[0].members) == 2


def test_second_pass_uses_conditional_get_and_writes_nothing(
    http_server: LocalHTTPServer, tmp_path: Path, store: Store, clock: FixedClock
) -> None:
    """The stored ETag and Last-Modified go back verbatim; 304s change nothing."""
    serve_seeds(http_server)
    pipeline = Pipeline(store=store, config=http_config(http_server, tmp_path), clock=clock)
    pipeline.run(all_feeds=True)
    counts = store.counts()
    http_server.clear_requests()
    report = pipeline.run(all_feeds=True)
    pipeline.close()
    assert {r.status for r in report.feeds} == {"not_modified"}
    assert http_server.requests_for("/003.rss")[0].headers.get("if-none-match") == '"rss-1"'
    assert http_server.requests_for("/000.atom")[0].headers.get("if-modified-since") == (
        LAST_MODIFIED
    )
    assert store.counts() == counts


def test_a_broken_feed_fails_alone_with_its_reason(
    http_server: LocalHTTPServer, tmp_path: Path, store: Store, clock: FixedClock
) -> None:
    """A 500, an HTML page and a crashing document fail with reasons; the seeds still land."""
    serve_seeds(http_server)
    http_server.route("/500", lambda _r: Response(status=500, body=b"oops"))
    http_server.serve_bytes("/page", b"<html><body>Hello</body></html>", content_type="text/html")
    # feedparser 6.0.14 raises on an orphan </width> inside <image> (reliability-anchors 0.2).
    crash = (
        b'<?xml version="1.0"?><rss version="2.0"><channel><image></width></image></channel></rss>'
    )
    http_server.serve_bytes("/crash", crash)
    extra = "\n".join(
        f"      - name: {name}\n        url: {http_server.url(path)}"
        for name, path in (("five-hundred", "/500"), ("html", "/page"), ("crash", "/crash"))
    )
    config = http_config(http_server, tmp_path, extra)
    pipeline = Pipeline(store=store, config=config, clock=clock)
    report = pipeline.run(all_feeds=True)
    pipeline.close()
    by_feed = {r.feed: r for r in report.feeds}
    assert by_feed["related"].status == "ok" and by_feed["related"].new == 6
    assert by_feed["article"].status == "ok"
    assert by_feed["five-hundred"].error == "http_500"
    assert by_feed["html"].error == "not_a_feed"
    assert by_feed["crash"].error == "parser_crash:TypeError"
    states = {s.name: s for s in store.feed_states()}
    assert states["five-hundred"].status == "error"
    assert states["five-hundred"].error == "http_500"
    assert states["five-hundred"].failures == 1
    assert states["five-hundred"].next_due is not None and states["five-hundred"].next_due > clock()
    assert states["html"].error == "not_a_feed"


def test_private_address_is_refused_without_allow_private(
    http_server: LocalHTTPServer, tmp_path: Path, store: Store, clock: FixedClock
) -> None:
    """Without allow_private, a loopback feed is refused and the server sees no request."""
    serve_seeds(http_server)
    text = f"groups:\n  g:\n    feeds:\n      - url: {http_server.url('/003.rss')}\n"
    pipeline = Pipeline(store=store, config=parse_config(text, tmp_path / "f.yaml"), clock=clock)
    report = pipeline.run(all_feeds=True)
    pipeline.close()
    assert report.feeds[0].error == "private_address"
    assert http_server.requests == []


def _small_feed(number: int) -> bytes:
    items = "".join(
        f"<item><guid>f{number}-{n}</guid><title>Council {number} votes on proposal {n} "
        f"after a long debate</title><description>Report {number}.{n}: the council of town "
        f"{number} met on Tuesday and voted on proposal {n}.</description></item>"
        for n in range(5)
    )
    return f'<rss version="2.0"><channel><title>F{number}</title>{items}</channel></rss>'.encode()


def test_runs_cut_short_by_their_budget_carry_documents_over_and_fetch_nothing_twice(
    http_server: LocalHTTPServer, tmp_path: Path, store: Store, clock: FixedClock
) -> None:
    """Runs that end at once (budget 0) leave fetches and documents being parsed in
    flight; later runs store them: every feed once, fetched once, no entry lost."""
    feeds = 12
    for number in range(feeds):
        http_server.serve_bytes(f"/f{number}.rss", _small_feed(number), etag=f'"{number}"')
    listed = "\n".join(
        f"      - name: f{number}\n        url: {http_server.url(f'/f{number}.rss')}"
        for number in range(feeds)
    )
    text = f"groups:\n  g:\n    allow_private: true\n    feeds:\n{listed}\n"
    pipeline = Pipeline(store=store, config=parse_config(text, tmp_path / "f.yaml"), clock=clock)
    specs = list(pipeline.config.enabled_feeds())
    reports = pipeline.update_feeds(specs, budget=0.0)
    carried_documents = False
    give_up = time.monotonic() + 60
    while pipeline.in_flight and time.monotonic() < give_up:
        carried_documents |= pipeline.in_flight > len(pipeline._pool)
        time.sleep(0.005)
        # Every feed not stored yet is asked for again: those in flight must not be
        # fetched twice.
        stored = {r.feed for r in reports}
        reports += pipeline.update_feeds([s for s in specs if s.name not in stored], budget=0.0)
    pipeline.close()
    assert carried_documents, "no run ended with a document still in the parse workers"
    assert sorted(r.feed for r in reports) == sorted(f"f{n}" for n in range(feeds))
    assert {r.status for r in reports} == {"ok"} and sum(r.new for r in reports) == 5 * feeds
    assert store.counts()["entries"] == 5 * feeds
    for number in range(feeds):
        assert len(http_server.requests_for(f"/f{number}.rss")) == 1


def test_entries_stored_unchanged_are_not_prepared_again(
    http_server: LocalHTTPServer, tmp_path: Path, store: Store, clock: FixedClock
) -> None:
    """A server without validators sends the whole document on every poll: the parse
    workers prepare only the entries that are new or changed; the others come back plain
    and are not stored again. A changed entry is still prepared and updated."""
    http_server.serve_bytes("/f.rss", _small_feed(0))  # no ETag, no Last-Modified
    url = http_server.url("/f.rss")
    text = f"groups:\n  g:\n    allow_private: true\n    feeds:\n      - url: {url}\n"
    pipeline = Pipeline(store=store, config=parse_config(text, tmp_path / "f.yaml"), clock=clock)
    parser = pipeline._parser()
    documents: list[PreparedFeed] = []
    real_prepare = parser.prepare

    def recording_prepare(*args: Any) -> PreparedFeed:
        documents.append(real_prepare(*args))
        return documents[-1]

    parser.prepare = recording_prepare  # type: ignore[method-assign]
    first = pipeline.run(all_feeds=True).feeds[0]
    second = pipeline.run(all_feeds=True).feeds[0]
    edited = _small_feed(0).replace(b"voted on proposal 3.", b"rejected proposal 3 by 9 to 2.")
    http_server.serve_bytes("/f.rss", edited)
    third = pipeline.run(all_feeds=True).feeds[0]
    pipeline.close()
    assert (first.new, second.new, second.updated, third.new, third.updated) == (5, 0, 0, 0, 1)
    prepared = [[isinstance(e, PreparedEntry) for e in d.entries] for d in documents]
    assert prepared == [[True] * 5, [False] * 5, [False, False, False, True, False]]
    (text_now,) = store.db.conn.execute(
        "select text from entries where identity like '%f0-3%'"
    ).fetchone()
    assert "rejected proposal 3" in text_now
