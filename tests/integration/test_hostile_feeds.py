"""The torture suite of reliability-anchors.md section 8 (groups A to D: fetching and
parsing), through the real pipeline against a real HTTP server on 127.0.0.1.

Most items share one pass (`torture`): every hostile feed and one healthy feed are updated
together, and each test checks one feed's outcome: the reason stored on the feed, and that
the healthy feed still updated. Items that need several passes, their own host (a 429 holds
the whole host) or a patched address check have their own tests.

Traffic only ever goes to 127.0.0.1. For private-address cases the address check is told
that 127.0.0.1 is public (so a first hop can be made) and every other address is refused
and recorded at `create_connection`, so a broken guard can never send traffic anywhere.
"""

from __future__ import annotations

import ipaddress
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import urllib3.util.connection

import aggregator.ingest.fetch
from aggregator.config import parse_config
from aggregator.models import FeedReport, FeedState
from aggregator.pipeline import Pipeline
from aggregator.store import Store, open_store
from tests.conftest import REPO
from tests.support import sql
from tests.support.clock import FixedClock
from tests.support.http_server import (
    LocalHTTPServer,
    Request,
    Response,
    Stream,
    trickle,
    unused_port,
)

MiB = 1024 * 1024
START = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
SEED = (REPO / "seeds" / "feeds" / "003-related.rss").read_bytes()
SETTINGS = """
settings:
  fetch_timeout: 2s
  parse_timeout: 3s
  max_entries: 500
"""


def rss(items: bytes = b"<item><title>fine</title><guid>1</guid></item>", *, head: bytes = b"",
        channel: bytes = b"<title>T</title>") -> bytes:  # fmt: skip
    return head + b'<rss version="2.0"><channel>' + channel + items + b"</channel></rss>"


def gzip_zeros(size: int) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(MiB)
    return b"".join(compressor.compress(block) for _ in range(size // MiB)) + compressor.flush()


def config_text(server: LocalHTTPServer, feeds: dict[str, str], *, private: bool = True) -> str:
    lines = [SETTINGS, "groups:", "  torture:", f"    allow_private: {str(private).lower()}",
             "    feeds:"]  # fmt: skip
    for name, target in feeds.items():
        url = target if "://" in target else server.url(target)
        lines += [f"      - name: {name}", f"        url: {url}"]
    return "\n".join(lines) + "\n"


@dataclass
class Pass:
    """The outcome of one pipeline pass over a set of feeds."""

    reports: dict[str, FeedReport]
    states: dict[str, FeedState]
    store: Store
    server: LocalHTTPServer

    def error(self, name: str) -> str | None:
        return self.reports[name].error

    def titles(self, name: str) -> list[str]:
        feed_id = self.states[name].id
        rows = sql.rows(self.store, "select title from entries where feed_id = ?", [feed_id])
        return [row[0] for row in rows]

    def column(self, name: str, column: str) -> list[str]:
        feed_id = self.states[name].id
        rows = sql.rows(self.store, f"select {column} from entries where feed_id = ?", [feed_id])
        return [row[0] for row in rows]


def run_pass(pipeline: Pipeline, store: Store, server: LocalHTTPServer, **kwargs: bool) -> Pass:
    report = pipeline.run(**kwargs)
    return Pass(
        reports={r.feed: r for r in report.feeds},
        states={s.name: s for s in store.feed_states()},
        store=store,
        server=server,
    )


# ------------------------------------------------------------------------ the shared pass


def raw_response(head: bytes) -> Callable[[Request], None]:
    """A handler that writes `head` itself (malformed or never-ending responses)."""

    def handler(request: Request) -> None:
        assert request.wfile is not None
        request.wfile.write(head)
        request.wfile.flush()

    return handler


def stalled_headers(request: Request) -> None:
    """Accept the request and never answer (A2)."""
    request.stopping.wait(30)


def endless(stream: Stream) -> None:
    """A body that never ends, 64 KiB at a time (A8)."""
    block = b"<item><title>x</title></item>" * 2000
    for _ in range(1000):
        stream.write(block)
        if stream.stopping.is_set():
            return


SENTINEL = "SENTINEL-e3b0c44298fc"


def serve_torture(server: LocalHTTPServer, tmp: Path) -> dict[str, str]:
    """Route every hostile feed; returns feed name -> path (or URL)."""
    feeds: dict[str, str] = {"healthy": "/healthy"}
    server.serve_bytes("/healthy", SEED, content_type="application/rss+xml")

    # A. network and HTTP
    feeds["a1-refused"] = f"http://127.0.0.1:{unused_port()}/feed"
    server.route("/a2", stalled_headers)
    feeds["a2-no-headers"] = "/a2"
    server.route("/a3", lambda _r: Response(body=trickle(rss(), interval=0.5)))
    feeds["a3-trickle"] = "/a3"
    server.route(
        "/a4",
        lambda _r: Response(headers=[("Content-Length", "100000")], body=trickle(b"<", interval=5)),
    )
    feeds["a4-body-never-ends"] = "/a4"
    bomb = gzip_zeros(64 * MiB)
    server.route("/a5", lambda _r: Response(headers=[("Content-Encoding", "gzip")], body=bomb))
    feeds["a5-gzip-bomb"] = "/a5"
    double = zlib.compress(zlib.compress(b"<" * MiB))
    server.route(
        "/a6", lambda _r: Response(headers=[("Content-Encoding", "gzip, gzip")], body=double)
    )
    feeds["a6-gzip-gzip"] = "/a6"
    server.route("/a7", lambda _r: Response(headers=[("Content-Encoding", "br")], body=b"x"))
    feeds["a7-brotli"] = "/a7"
    server.route("/a8", lambda _r: Response(body=endless))
    feeds["a8-endless"] = "/a8"
    server.route("/a9", lambda _r: Response(headers=[("Content-Length", "999999999999")], body=b""))
    feeds["a9-huge-length"] = "/a9"
    many = b"".join(b"X-H%d: v\r\n" % i for i in range(200))
    server.route("/a10", raw_response(b"HTTP/1.1 200 OK\r\n" + many + b"\r\n" + rss()))
    feeds["a10-200-headers"] = "/a10"
    server.redirect("/a13-file", "file:///etc/passwd")
    server.redirect("/a13-ftp", "ftp://127.0.0.1/feed")
    server.redirect("/a13-gopher", "gopher://127.0.0.1/feed")
    server.redirect("/a13-data", "data:text/xml,<rss/>")
    feeds.update({f"a13-{s}": f"/a13-{s}" for s in ("file", "ftp", "gopher", "data")})
    server.redirect("/a14-loop", "/a14-loop")
    feeds["a14-loop"] = "/a14-loop"
    for hop in range(6):
        server.redirect(f"/a14-chain{hop}", f"/a14-chain{hop + 1}")
    server.serve_bytes("/a14-chain6", rss())
    feeds["a14-six-hops"] = "/a14-chain0"
    server.route(
        "/a18",
        lambda _r: Response(
            status=503, headers=[("Content-Type", "text/html")], body=b"<html>down</html>"
        ),
    )
    feeds["a18-503-page"] = "/a18"
    server.serve_bytes(
        "/a19", b"<html><body><form>login</form></body></html>", content_type="text/html"
    )
    feeds["a19-login-page"] = "/a19"
    server.serve_bytes("/a20", b"")
    feeds["a20-empty"] = "/a20"

    # B. XML, entities, size, CPU
    sentinel = tmp / "sentinel.txt"
    sentinel.write_text(SENTINEL)
    xxe = f'<!ENTITY xxe SYSTEM "file://{sentinel}">'.encode()
    server.serve_bytes(
        "/b1-lines",
        rss(b"<item><title>&xxe;</title><description>&xxe;</description></item>",
            head=b'<?xml version="1.0"?>\n<!DOCTYPE rss [\n' + xxe + b"\n]>\n"),
    )  # fmt: skip
    server.serve_bytes(
        "/b1-one-line",
        rss(b"<item><title>&xxe;</title></item>",
            head=b'<?xml version="1.0"?><!DOCTYPE rss [' + xxe + b"]>"),
    )  # fmt: skip
    feeds.update({"b1-xxe-lines": "/b1-lines", "b1-xxe-one-line": "/b1-one-line"})
    dtd = server.url("/b2-evil.dtd").encode()
    server.serve_bytes(
        "/b2",
        rss(head=b'<?xml version="1.0"?>\n<!DOCTYPE rss SYSTEM "' + dtd + b'" [\n'
            b'<!ENTITY % p SYSTEM "' + dtd + b'">\n%p;\n]>\n'),
    )  # fmt: skip
    feeds["b2-external-dtd"] = "/b2"
    laughs = b'<!ENTITY l0 "lol">' + b"".join(
        b'<!ENTITY l%d "%s">' % (i, b"&l%d;" % (i - 1) * 10) for i in range(1, 10)
    )
    server.serve_bytes(
        "/b3-lines", rss(b"<item><title>&l9;</title></item>",
                         head=b"<!DOCTYPE rss [\n" + laughs.replace(b">", b">\n") + b"]>\n"),
    )  # fmt: skip
    server.serve_bytes(
        "/b3-one-line", rss(b"<item><title>&l9;</title></item>",
                            head=b"<!DOCTYPE rss [" + laughs + b"]>"),
    )  # fmt: skip
    feeds.update({"b3-laughs-lines": "/b3-lines", "b3-laughs-one-line": "/b3-one-line"})
    for name, size, refs in (("b4-quadratic-25k", 10_000, 5_000), ("b4-quadratic-200k", 50_000,
                                                                     50_000)):  # fmt: skip
        server.serve_bytes(
            f"/{name}",
            rss(b"<item><title>t</title><description>" + b"&a;" * refs + b"</description></item>",
                head=b'<!DOCTYPE rss [\n<!ENTITY a "' + b"x" * size + b'">\n]>\n'),
        )  # fmt: skip
        feeds[name] = f"/{name}"
    server.route("/b5", lambda _r: Response(headers=[("Content-Length", str(50 * MiB))], body=b""))
    feeds["b5-50mb"] = "/b5"
    item = b"<item><title>t%d</title><guid>%d</guid><pubDate>Tue, 08 Aug 2023 %02d:%02d:00 GMT</pubDate></item>"  # noqa: E501
    server.serve_bytes(
        "/b7", rss(b"".join(item % (i, i, (i // 60) % 24, i % 60) for i in range(3000)))
    )
    feeds["b7-3000-items"] = "/b7"
    server.serve_bytes("/b8", b"<?" + b'encoding="' * 4000 + b"\n" + rss())
    feeds["b8-cubic-declaration"] = "/b8"
    author = b"<item><title>t</title><author>x@" + b"a-" * 20_000 + b"</author></item>"
    server.serve_bytes("/b9", rss(author * 100))
    feeds["b9-author-redos"] = "/b9"
    server.serve_bytes(
        "/b10", rss(b"<item><title>deep</title><description>" + b"<div>" * 100_000
                    + b"</description></item>"),
    )  # fmt: skip
    feeds["b10-nesting"] = "/b10"

    # C. inputs that make feedparser 6.0.14 raise
    for name, title in (("c1-surrogate", b"&#xD800;"), ("c2-past-unicode", b"&#x110000;"),
                        ("c3-overflow", b"&#99999999999999999999;")):  # fmt: skip
        server.serve_bytes(f"/{name}", rss(b"<item><title>a" + title + b"b</title></item>"))
        feeds[name] = f"/{name}"
    server.serve_bytes(
        "/c4", rss(b"<item><title>&path;</title></item>",
                   head=b'<!DOCTYPE rss [\n<!ENTITY path "C:\\data">\n]>\n'),
    )  # fmt: skip
    feeds["c4-backslash-entity"] = "/c4"
    server.serve_bytes(
        "/c5",
        b'<rss version="2.0" xmlns:georss="http://www.georss.org/georss" '
        b'xmlns:gml="http://www.opengis.net/gml"><channel><item><title>g</title><georss:where>'
        b'<gml:Point srsName="urn:ogc:def:crs:EPSG::abc"><gml:pos>1 2</gml:pos></gml:Point>'
        b"</georss:where></item></channel></rss>",
    )
    feeds["c5-gml-epsg"] = "/c5"
    server.serve_bytes("/c6", b"<rss><channel><image></height></image></channel></rss>")
    feeds["c6-orphan-height"] = "/c6"

    # D. encoding and text hygiene
    server.serve_bytes(
        "/d1-latin1-as-utf8",
        b'<?xml version="1.0" encoding="utf-8"?>' + rss(b"<item><title>caf\xe9</title></item>"),
    )
    server.serve_bytes(
        "/d1-utf8-as-latin1",
        b'<?xml version="1.0" encoding="iso-8859-1"?>'
        + rss(b"<item><title>caf\xc3\xa9</title></item>"),
    )
    server.serve_bytes(
        "/d1-invalid-utf8", rss(b"<item><title>x\xff\xfe\xc3\x28\xed\xa0\x80y</title></item>")
    )
    server.serve_bytes(
        "/d1-utf16-no-bom",
        ('<?xml version="1.0" encoding="utf-8"?>'
         '<rss version="2.0"><channel><item><title>café</title></item></channel></rss>'
         ).encode("utf-16-le"),
    )  # fmt: skip
    server.serve_bytes(
        "/d1-klingon",
        b'<?xml version="1.0" encoding="x-klingon"?>' + rss(b"<item><title>ok</title></item>"),
    )
    encodings = ("latin1-as-utf8", "utf8-as-latin1", "invalid-utf8", "utf16-no-bom", "klingon")
    feeds.update({f"d1-{name}": f"/d1-{name}" for name in encodings})
    server.serve_bytes(
        "/d2",
        rss(b"<item><title>a&#0;b&#x1b;c\x0bd\x1b]0;pwned\x07e</title><guid>d2</guid></item>"),
    )
    feeds["d2-controls"] = "/d2"
    server.serve_bytes(
        "/d3",
        rss("<item><title>exe\u202etxt.\u2066x\u2069\u200by</title></item>".encode()),
    )
    feeds["d3-bidi"] = "/d3"
    server.serve_bytes(
        "/d5",
        rss(b'<item><title>links</title><link>javascript:alert(1)</link>'
            b"<guid>java&#x09;script:alert(2)</guid><description>"
            b"&lt;a href=\"JaVaScRiPt&amp;#58;alert(3)\"&gt;x&lt;/a&gt;"
            b"&lt;a href=\"  JAVASCRIPT:alert(4)\"&gt;y&lt;/a&gt;"
            b"&lt;form action=\"https://evil.example/\"&gt;&lt;input&gt;&lt;/form&gt;"
            b"&lt;svg onload=\"alert(5)\"&gt;&lt;/svg&gt;&lt;iframe src=\"https://e.example/\"&gt;"
            b"&lt;/iframe&gt;&lt;img src=\"data:image/png;base64,AAAA\"&gt;"
            b"</description></item>"),
    )  # fmt: skip
    feeds["d5-schemes"] = "/d5"
    server.serve_bytes(
        "/d8", rss(b"<item><title>'); DROP TABLE entries;-- \"</title><guid>d8</guid></item>")
    )
    feeds["d8-sql"] = "/d8"
    return feeds


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def torture(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pass]:
    """One pass of the pipeline over every hostile feed above plus a healthy one, into a
    database of each backend."""
    tmp = tmp_path_factory.mktemp("torture")
    clock = FixedClock(START)
    if request.param == "sqlite":
        database = str(tmp / "torture.db")
    else:
        database = request.getfixturevalue("postgresql_server").database("torture")
    with LocalHTTPServer() as server:
        feeds = serve_torture(server, tmp)
        config = parse_config(config_text(server, feeds), tmp / "feeds.yaml")
        store = open_store(database)
        pipeline = Pipeline(store=store, config=config, clock=clock)
        try:
            yield run_pass(pipeline, store, server, all_feeds=True)
        finally:
            pipeline.close()
            store.close()


def test_the_healthy_feed_still_updates(torture: Pass) -> None:
    """Whatever the hostile feeds did, the healthy one on the same host was stored."""
    assert torture.reports["healthy"].status == "ok"
    assert torture.reports["healthy"].new == 6
    assert len(torture.reports) == len(torture.states)  # every feed got a report


@pytest.mark.parametrize(
    ("feed", "reason"),
    [
        ("a1-refused", "connection_refused"),
        ("a2-no-headers", "timeout"),
        ("a3-trickle", "timeout"),
        ("a4-body-never-ends", "timeout"),
        ("a5-gzip-bomb", "too_large"),
        ("a6-gzip-gzip", "unsupported_encoding"),
        ("a7-brotli", "unsupported_encoding"),
        ("a8-endless", "too_large"),
        ("a9-huge-length", "too_large"),
        ("a10-200-headers", "protocol_error"),
        ("a13-file", "bad_redirect"),
        ("a13-ftp", "bad_redirect"),
        ("a13-gopher", "bad_redirect"),
        ("a13-data", "bad_redirect"),
        ("a14-loop", "too_many_redirects"),
        ("a14-six-hops", "too_many_redirects"),
        ("a18-503-page", "http_503"),
        ("a19-login-page", "not_a_feed"),
        ("a20-empty", "empty_body"),
        ("b3-laughs-lines", "entity_declarations"),
        ("b3-laughs-one-line", "entity_declarations"),
        ("b4-quadratic-25k", "entity_declarations"),
        ("b4-quadratic-200k", "entity_declarations"),
        ("b5-50mb", "too_large"),
        ("b8-cubic-declaration", "not_a_feed"),
        ("b9-author-redos", "parse_timeout"),
        ("c5-gml-epsg", "parser_crash:ValueError"),
        ("c6-orphan-height", "parser_crash:TypeError"),
    ],
)
def test_hostile_feed_fails_alone_with_its_reason(torture: Pass, feed: str, reason: str) -> None:
    """Each hostile feed is marked failed with its reason, a failure count and a later due
    time (backoff), and no entry of it is stored."""
    assert torture.error(feed) == reason
    state = torture.states[feed]
    assert (state.status, state.error, state.failures) == ("error", reason, 1)
    assert state.next_due is not None and state.next_due > START
    assert state.entry_count == 0


def test_first_fetch_sends_no_validators_and_the_exact_user_agent(torture: Pass) -> None:
    """Requests carry the exact User-Agent, no validators on a first fetch, no cookies (A21)."""
    (request,) = torture.server.requests_for("/healthy")
    assert request.headers["user-agent"].startswith("aggregator/")
    assert "(+https://" in request.headers["user-agent"]
    assert "if-none-match" not in request.headers and "cookie" not in request.headers


def test_an_external_entity_never_reads_a_local_file(torture: Pass) -> None:
    """External entities are never resolved: the sentinel text is nowhere in the database (B1)."""
    for feed in ("b1-xxe-lines", "b1-xxe-one-line"):
        assert torture.reports[feed].status == "ok"
    dump = repr(sql.dump(torture.store))
    assert "b1-xxe-lines" in dump  # the dump holds what was stored
    assert SENTINEL not in dump


def test_an_external_dtd_and_parameter_entity_are_not_fetched(torture: Pass) -> None:
    """No request reaches the DTD URL; the feed itself parses (B2)."""
    assert torture.reports["b2-external-dtd"].status == "ok"
    assert torture.server.requests_for("/b2-evil.dtd") == []


def test_entries_of_a_huge_feed_are_capped_to_the_newest(torture: Pass) -> None:
    """3,000 items: the newest 500 are stored (B7)."""
    assert torture.reports["b7-3000-items"].status == "ok"
    titles = torture.titles("b7-3000-items")
    assert len(titles) == 500
    published = torture.column("b7-3000-items", "published")
    assert min(published) >= "2023-08-08T15:40"  # the 500 latest of 3,000 minutes' items


def test_deep_nesting_parses_or_fails_cleanly(torture: Pass) -> None:
    """100,000 nested elements never raise a RecursionError out of the pipeline (B10)."""
    report = torture.reports["b10-nesting"]
    assert report.status == "ok" or (report.error or "").startswith(("parse_", "parser_crash"))
    assert not (report.error or "").startswith("internal:")


def test_invalid_character_references_are_repaired_and_stored(torture: Pass) -> None:
    """Invalid character references become U+FFFD; a backslash entity value stays text (C1-C4)."""
    for feed in ("c1-surrogate", "c2-past-unicode", "c3-overflow"):
        assert torture.reports[feed].status == "ok", torture.error(feed)
        assert torture.titles(feed) == ["a\ufffdb"]
    assert torture.titles("c4-backslash-entity") == ["C:\\data"]


def test_wrong_and_unknown_encodings_are_stored_as_valid_text(torture: Pass) -> None:
    """Mis-declared, invalid and unknown encodings still give a stored, valid title (D1)."""
    expected = {
        "d1-latin1-as-utf8": "café",
        "d1-utf8-as-latin1": "café",
        "d1-utf16-no-bom": "café",
        "d1-klingon": "ok",
    }
    for feed, title in expected.items():
        assert torture.reports[feed].status == "ok", torture.error(feed)
        assert torture.titles(feed) == [title]
    (garbled,) = torture.titles("d1-invalid-utf8")
    assert garbled.startswith("x") and garbled.endswith("y")
    garbled.encode("utf-8")  # valid text: no lone surrogates


def test_control_and_bidi_characters_are_removed(torture: Pass) -> None:
    """NUL, ESC, VT, BEL and bidi overrides never reach the database (D2, D3)."""
    (controls,) = torture.titles("d2-controls")
    assert controls == "abcd]0;pwnede"
    (bidi,) = torture.titles("d3-bidi")
    assert bidi == "exetxt.xy"


def test_dangerous_links_and_markup_are_dropped(torture: Pass) -> None:
    """javascript: links give no URL; content keeps no script scheme, form, svg or iframe
    (D5, D6)."""
    assert torture.column("d5-schemes", "url") == [None]
    (html,) = torture.column("d5-schemes", "html")
    lowered = html.lower()
    for needle in ("javascript", "<form", "<svg", "onload", "<iframe", "data:"):
        assert needle not in lowered


def test_sql_in_a_title_is_stored_verbatim(torture: Pass) -> None:
    """Quotes and SQL in a title are data; the schema is unchanged (D8)."""
    assert torture.titles("d8-sql") == ["'); DROP TABLE entries;-- \""]
    assert {"entries", "events", "feeds"} <= sql.table_names(torture.store)


# ------------------------------------------------------------------------ several passes


@pytest.fixture
def server() -> Iterator[LocalHTTPServer]:
    with LocalHTTPServer() as started:
        yield started


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


def make_pipeline(
    server: LocalHTTPServer, database: str, tmp_path: Path, clock: FixedClock,
    feeds: dict[str, str], *, private: bool = True, extra: str = "",
) -> tuple[Pipeline, Store]:  # fmt: skip
    text = config_text(server, feeds, private=private) + extra
    store = open_store(database)
    return Pipeline(store=store, config=parse_config(text, tmp_path / "f.yaml"), clock=clock), store


def test_two_consecutive_301s_move_the_feed_302_never(
    server: LocalHTTPServer, database: str, tmp_path: Path, clock: FixedClock
) -> None:
    """The effective URL changes after the second consecutive 301 (then the new URL is
    fetched directly); a 302 is followed every time and never stored."""
    server.redirect("/old", "/new", status=301)
    server.redirect("/temp", "/new", status=302)
    server.serve_bytes("/new", rss())
    pipeline, store = make_pipeline(
        server, database, tmp_path, clock, {"moved": "/old", "temp": "/temp"}
    )
    try:
        first = run_pass(pipeline, store, server, all_feeds=True)
        assert first.states["moved"].effective_url is None
        clock.advance(timedelta(hours=2))
        second = run_pass(pipeline, store, server, all_feeds=True)
        assert second.states["moved"].effective_url == server.url("/new")
        assert second.states["temp"].effective_url is None
        server.clear_requests()
        clock.advance(timedelta(hours=2))
        run_pass(pipeline, store, server, all_feeds=True)
        assert server.requests_for("/old") == []  # fetched at its new address directly
        assert len(server.requests_for("/temp")) == 1
    finally:
        pipeline.close()
        store.close()


def test_an_interrupted_301_streak_does_not_move(
    server: LocalHTTPServer, database: str, tmp_path: Path, clock: FixedClock
) -> None:
    """301, then a plain 200, then 301 again: never two consecutive, never moved."""
    server.redirect("/old", "/new", status=301)
    server.serve_bytes("/new", rss())
    pipeline, store = make_pipeline(server, database, tmp_path, clock, {"moved": "/old"})
    try:
        run_pass(pipeline, store, server, all_feeds=True)
        server.serve_bytes("/old", rss())
        run_pass(pipeline, store, server, all_feeds=True)
        server.redirect("/old", "/new", status=301)
        last = run_pass(pipeline, store, server, all_feeds=True)
        assert last.states["moved"].effective_url is None
    finally:
        pipeline.close()
        store.close()


def test_410_retires_the_feed_and_it_is_never_requested_again(
    server: LocalHTTPServer, database: str, tmp_path: Path, clock: FixedClock
) -> None:
    """410 Gone: reason `gone`, not due any more, no request even with --all."""
    server.route("/gone", lambda _r: Response(status=410))
    pipeline, store = make_pipeline(server, database, tmp_path, clock, {"gone": "/gone"})
    try:
        first = run_pass(pipeline, store, server, all_feeds=True)
        assert first.error("gone") == "gone"
        assert first.states["gone"].retired == "gone"
        clock.advance(timedelta(days=30))
        assert pipeline.due_feeds(clock()) == []
        again = run_pass(pipeline, store, server, all_feeds=True)
        assert again.error("gone") == "gone"
        assert len(server.requests_for("/gone")) == 1
    finally:
        pipeline.close()
        store.close()


@pytest.mark.parametrize(
    ("retry_after", "wait"),
    [
        ("3600", timedelta(hours=1)),
        ("Sun, 22 Nov 2026 10:00:00 GMT", timedelta(hours=2)),
        ("99999999999", timedelta(days=7)),
        ("1", timedelta(minutes=1)),
    ],
)
def test_429_waits_for_retry_after_and_holds_the_host(
    server: LocalHTTPServer, database: str, tmp_path: Path, clock: FixedClock, retry_after: str,
    wait: timedelta,
) -> None:  # fmt: skip
    """No request to the feed, nor to another feed of the same host, before the clamped
    Retry-After; the feed is requested again once it has passed."""
    server.route("/busy", lambda _r: Response(status=429, headers=[("Retry-After", retry_after)]))
    server.serve_bytes("/other", rss())
    pipeline, store = make_pipeline(
        server, database, tmp_path, clock, {"busy": "/busy", "other": "/other"}
    )
    try:
        first = run_pass(pipeline, store, server, all_feeds=True)
        assert first.error("busy") == "http_429"
        assert first.states["busy"].next_due == START + wait
        assert first.states["other"].next_due is not None
        assert first.states["other"].next_due >= START + min(wait, timedelta(minutes=54))
        server.clear_requests()
        clock.advance(wait - timedelta(seconds=1))
        run_pass(pipeline, store, server)
        assert server.requests_for("/busy") == []
        clock.advance(timedelta(seconds=2))
        run_pass(pipeline, store, server)
        assert len(server.requests_for("/busy")) == 1
    finally:
        pipeline.close()
        store.close()


@pytest.mark.parametrize(
    ("status", "retry_after"),
    [(503, "-1"), (503, "soon"), (503, None), (429, "²"), (503, "³600"), (429, "9" * 300),
     (503, "Mon, 01 Jan 99999999999999 00:00:00 GMT"), (429, "Fri, 31 Dec 9999 23:59:59 -2359")],
)  # fmt: skip
def test_unreadable_retry_after_backs_off_and_the_pass_goes_on(
    server: LocalHTTPServer, database: str, tmp_path: Path, clock: FixedClock, status: int,
    retry_after: str | None,
) -> None:  # fmt: skip
    """A missing or unreadable Retry-After (junk, non-ASCII digits, absurd dates) means
    the usual backoff, never an immediate retry, and the healthy feed of the pass is stored."""
    headers = [("Retry-After", retry_after)] if retry_after is not None else []
    server.route("/busy", lambda _r: Response(status=status, headers=headers))
    with LocalHTTPServer() as elsewhere:
        elsewhere.serve_bytes("/healthy", SEED)
        feeds = {"busy": "/busy", "healthy": elsewhere.url("/healthy")}
        pipeline, store = make_pipeline(server, database, tmp_path, clock, feeds)
        try:
            result = run_pass(pipeline, store, server, all_feeds=True)
        finally:
            pipeline.close()
            store.close()
    state = result.states["busy"]
    assert state.error == f"http_{status}"
    assert state.next_due is not None
    assert state.next_due - START >= timedelta(minutes=54)  # the interval, jittered
    assert result.reports["healthy"].status == "ok"
    assert result.reports["healthy"].new == 6


def test_backoff_grows_and_resets_on_success(
    server: LocalHTTPServer, database: str, tmp_path: Path, clock: FixedClock
) -> None:
    """Consecutive 500s count up and push the next poll out; a 200 resets the count."""
    server.route("/flaky", lambda _r: Response(status=500))
    pipeline, store = make_pipeline(server, database, tmp_path, clock, {"flaky": "/flaky"})
    try:
        for _ in range(4):
            state = run_pass(pipeline, store, server, all_feeds=True).states["flaky"]
        assert state.failures == 4 and state.error == "http_500"
        server.serve_bytes("/flaky", rss())
        state = run_pass(pipeline, store, server, all_feeds=True).states["flaky"]
        assert (state.failures, state.status, state.error) == (0, "ok", None)
    finally:
        pipeline.close()
        store.close()


def test_credentials_are_not_sent_to_another_origin(
    server: LocalHTTPServer, database: str, tmp_path: Path, clock: FixedClock
) -> None:
    """Basic credentials go to the feed's origin only; the redirect target gets none (A24)."""
    with LocalHTTPServer() as other:
        other.serve_bytes("/feed", rss())
        server.redirect("/private", other.url("/feed"))
        extra = "        username: reader\n        password: secret\n"
        pipeline, store = make_pipeline(
            server, database, tmp_path, clock, {"auth": "/private"}, extra=extra
        )
        try:
            result = run_pass(pipeline, store, server, all_feeds=True)
        finally:
            pipeline.close()
            store.close()
        assert result.reports["auth"].status == "ok"
        (first,) = server.requests_for("/private")
        assert first.headers["authorization"] == "Basic cmVhZGVyOnNlY3JldA=="
        (second,) = other.requests_for("/feed")
        assert "authorization" not in second.headers


def test_304_means_no_parse_and_no_writes(
    server: LocalHTTPServer, database: str, tmp_path: Path, clock: FixedClock
) -> None:
    """With validators stored, the second pass gets a 304 and stores nothing new."""
    server.serve_bytes("/cached", rss(), etag='"v1"', headers=[("Cache-Control", "max-age=7200")])
    pipeline, store = make_pipeline(server, database, tmp_path, clock, {"cached": "/cached"})
    try:
        first = run_pass(pipeline, store, server, all_feeds=True)
        assert first.states["cached"].next_due == START + timedelta(hours=2)  # max-age floor
        counts = store.counts()
        second = run_pass(pipeline, store, server, all_feeds=True)
        assert second.reports["cached"].status == "not_modified"
        assert store.counts() == counts
        assert server.requests_for("/cached")[1].headers["if-none-match"] == '"v1"'
    finally:
        pipeline.close()
        store.close()


# ------------------------------------------------------------------------ private addresses


@pytest.fixture
def loopback_is_public(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """127.0.0.1 counts as public (the test server stands in for the internet); every other
    address still goes through the real check. Connections to anything but 127.0.0.1 are
    refused and recorded, never made."""
    real_check = aggregator.ingest.fetch._is_non_public
    server_ip = ipaddress.ip_address("127.0.0.1")
    monkeypatch.setattr(
        aggregator.ingest.fetch, "_is_non_public", lambda ip: ip != server_ip and real_check(ip)
    )
    attempts: list[tuple[str, int]] = []
    real_connect = urllib3.util.connection.create_connection

    def guarded(address: tuple[str, int], *args: object, **kwargs: object) -> object:
        if address[0] != "127.0.0.1":
            attempts.append(address)
            raise ConnectionRefusedError(f"test refused a connection to {address}")
        return real_connect(address, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(urllib3.util.connection, "create_connection", guarded)
    return attempts


@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.2:{port}/admin",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/",
        "http://[::1]:{port}/",
        "http://[::ffff:127.0.0.2]:{port}/",
        "http://0x7f000002:{port}/",
        "http://2130706434:{port}/",
    ],
)
def test_a_redirect_to_a_private_address_is_refused(
    server: LocalHTTPServer, database: str, tmp_path: Path, clock: FixedClock,
    loopback_is_public: list[tuple[str, int]], target: str,
) -> None:  # fmt: skip
    """A public feed redirecting to a private, loopback or link-local address (A11, A12; in any
    spelling) fails with private_address, and no connection is attempted."""
    server.redirect("/start", target.format(port=server.port))
    pipeline, store = make_pipeline(
        server, database, tmp_path, clock, {"ssrf": "/start"}, private=False
    )
    try:
        result = run_pass(pipeline, store, server, all_feeds=True)
    finally:
        pipeline.close()
        store.close()
    assert result.error("ssrf") in {"private_address", "dns_error"}
    assert loopback_is_public == []
    assert [r.route_path for r in server.requests] == ["/start"]


def test_private_feed_url_is_refused_before_any_connection(
    database: str, tmp_path: Path, clock: FixedClock,
    loopback_is_public: list[tuple[str, int]],
) -> None:  # fmt: skip
    """A feed that is itself at a link-local address is refused before connecting."""
    with LocalHTTPServer() as server:
        pipeline, store = make_pipeline(
            server,
            database,
            tmp_path,
            clock,
            {"meta": "http://169.254.169.254/feed"},
            private=False,
        )
        try:
            result = run_pass(pipeline, store, server, all_feeds=True)
        finally:
            pipeline.close()
            store.close()
    assert result.error("meta") == "private_address"
    assert loopback_is_public == []


def test_a_name_resolving_to_loopback_is_refused(
    database: str, tmp_path: Path, clock: FixedClock
) -> None:
    """`localhost` is refused after resolution (no allow_private): the server sees nothing (A12)."""
    with LocalHTTPServer() as server:
        server.serve_bytes("/feed", rss())
        url = f"http://localhost:{server.port}/feed"
        pipeline, store = make_pipeline(
            server, database, tmp_path, clock, {"local": url}, private=False
        )
        try:
            result = run_pass(pipeline, store, server, all_feeds=True)
        finally:
            pipeline.close()
            store.close()
        assert result.error("local") == "private_address"
        assert server.requests == []
