"""`aggregator serve` over real HTTP on 127.0.0.1: routes, headers, feeds, hostile data.

The server runs in a thread of the test process (the same WebServer and WebApp as the
command); the database is a real SQLite file filled by the real pipeline.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import feedparser
import pytest

from aggregator.render.feeds import FEED_FORMATS
from aggregator.web import WebApp, loopback_hosts
from tests.conftest import MAISON_BLANCHE
from tests.support.browser import SEED_NOW, seed_database, served
from tests.support.hostile import (
    HOSTILE_GROUP,
    HOSTILE_SUBJECTS,
    ingest,
    sanitize_corpus_specs,
    unsafe_markup,
    write_hostile_feeds,
)
from tests.support.http_client import Answer, send

SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'none'; style-src 'self'; img-src data:; form-action 'self'; "
        "base-uri 'none'; frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}


def request(
    base_url: str, path: str, *, method: str = "GET", headers: dict[str, str] | None = None
) -> Answer:
    """One request with http.client (no redirects followed, any Host header allowed)."""
    return send(base_url, method, path, headers=headers)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def seed_db(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path | str:
    """The seed in a database of each backend: every page reads both alike."""
    if request.param == "sqlite":
        return seed_database(tmp_path_factory.mktemp("web") / "seed.db")
    return seed_database(request.getfixturevalue("postgresql_server").database("web"))


@pytest.fixture(scope="module")
def seed_server(seed_db: Path) -> Iterator[str]:
    with served(seed_db) as base_url:
        yield base_url


@pytest.fixture
def get(seed_server: str) -> Callable[..., Answer]:
    def fetch(path: str, **options: object) -> Answer:
        return request(seed_server, path, **options)  # type: ignore[arg-type]

    return fetch


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/", "text/html; charset=utf-8"),
        ("/search?q=cor%C3%A9e", "text/html; charset=utf-8"),
        ("/feeds", "text/html; charset=utf-8"),
        ("/event/3", "text/html; charset=utf-8"),
        ("/feed.atom", "application/atom+xml; charset=utf-8"),
        ("/feed.json", "application/feed+json; charset=utf-8"),
        ("/api/events", "application/json; charset=utf-8"),
        ("/api/events/3", "application/json; charset=utf-8"),
        ("/style.css", "text/css; charset=utf-8"),
        ("/no-such-page", "text/html; charset=utf-8"),
    ],
)
def test_every_route_answers_with_the_security_headers(
    get: Callable[..., Answer], path: str, content_type: str
) -> None:
    """Each route has its type and the strict CSP, nosniff, no-referrer, no framing."""
    answer = get(path)
    assert answer.status == (404 if path == "/no-such-page" else 200)
    assert answer.headers["content-type"] == content_type
    for name, value in SECURITY_HEADERS.items():
        assert answer.headers[name] == value
    assert int(answer.headers["content-length"]) == len(answer.body)


def test_digest_page_shows_the_seed_events(get: Callable[..., Answer]) -> None:
    """Six events, the repeated headline once, its copy linked, a link to why, and the two
    events of the storyline each linked from the other's card."""
    page = get("/").text
    assert page.count('class="event"') == 6
    # Its title, its copy's tooltip, and the story link on the March event's card.
    assert page.count(MAISON_BLANCHE.replace("'", "&#x27;")) == 3
    assert page.count('<div class="story">Same story: 1 other event') == 2
    assert 'href="https://seeds.invalid/003/related/3-' in page
    assert "Why these are grouped" in page
    assert "6 of 6 events since 2026-11-21 08:00 UTC" in page
    assert unsafe_markup(page) == []


def test_event_page_explains_the_grouping(get: Callable[..., Answer]) -> None:
    """The grouped event's page: both copies, how the second joined, the canonical reason."""
    api = json.loads(get("/api/events?since=all").body)
    grouped = next(e for e in api["events"] if e["also_reported_by"])
    page = get(f"/event/{grouped['event_id']}").text
    assert page.count('<td class="num">') == 2
    assert "first item of the event" in page
    assert "near-duplicate of #1 (same headline; similarity" in page
    assert "Reason: longest:" in page
    assert "munitions" in page  # the article's text


def test_window_date_group_and_search_filters(get: Callable[..., Answer]) -> None:
    """?date= is about publication, ?q= searches every item, ?group= narrows, bad input 400."""
    on_day = json.loads(get("/api/events?date=2023-08-08").body)
    assert [e["title"] for e in on_day["events"]] == [MAISON_BLANCHE]
    found = json.loads(get("/api/events?q=coree+munitions").body)  # accents folded
    assert len(found["events"]) == 2 and found["events"][0]["title"] == MAISON_BLANCHE
    assert found["window"]["arrived_since"] is None  # a search looks at everything
    assert json.loads(get("/api/events?group=nope").body)["total"] == 0
    assert json.loads(get("/api/events?group=seeds&limit=2").body)["total"] == 6
    assert get("/?since=soon").status == 400
    assert get("/?date=28/07/2023").status == 400
    assert get("/?since=1h&date=2023-07-28").status == 400
    assert get("/?limit=0").status == 400
    assert get("/?q=" + "x" * 201).status == 400
    assert get("/?" + "&".join(f"p{i}=1" for i in range(60))).status == 400
    assert "since: " in get("/?since=soon").text


def test_search_page_uses_the_form_without_script(get: Callable[..., Answer]) -> None:
    """The header's GET form lands on /search; results are the digest filtered."""
    page = get("/").text
    assert '<form class="search" action="/search" method="get"' in page
    results = get("/search?q=Tesla").text
    assert results.count('class="event"') == 1
    assert 'value="Tesla"' in results


def test_feeds_give_an_etag_and_answer_304(get: Callable[..., Answer]) -> None:
    """Atom and JSON Feed: a strong ETag; If-None-Match with it gives 304 and no body."""
    for path in ("/feed.atom", "/feed.json"):
        first = get(path)
        again = get(path)
        assert first.headers["etag"] == again.headers["etag"] and first.body == again.body
        cached = get(path, headers={"If-None-Match": first.headers["etag"]})
        assert cached.status == 304 and cached.body == b""
        assert cached.headers["etag"] == first.headers["etag"]
        weak = get(path, headers={"If-None-Match": f'"other", W/{first.headers["etag"]}'})
        assert weak.status == 304
        assert get(path, headers={"If-None-Match": '"other"'}).status == 200


def test_atom_feed_reparses_with_one_entry_per_event(
    get: Callable[..., Answer], seed_server: str
) -> None:
    """feedparser reads /feed.atom without complaint: 6 entries, copies as related links."""
    parsed = feedparser.parse(io.BytesIO(get("/feed.atom").body))
    assert not parsed.bozo
    assert len(parsed.entries) == 6
    grouped = next(e for e in parsed.entries if e.title == MAISON_BLANCHE)
    assert [link.rel for link in grouped.links] == ["alternate", "related"]
    api = json.loads(get("/api/events").body)
    event_id = next(e["event_id"] for e in api["events"] if e["title"] == MAISON_BLANCHE)
    assert grouped.id == f"{seed_server}/event/{event_id}"
    feed = json.loads(get("/feed.json?group=seeds").body)
    assert len(feed["items"]) == 6
    assert feed["feed_url"].endswith("/feed.json?group=seeds")


def test_head_and_other_methods(get: Callable[..., Answer]) -> None:
    """HEAD has the headers and no body; POST is refused with Allow."""
    head = get("/feed.atom", method="HEAD")
    assert head.status == 200 and head.body == b"" and int(head.headers["content-length"]) > 0
    post = get("/", method="POST")
    assert post.status == 405 and post.headers["allow"] == "GET, HEAD"


def test_unknown_event_and_bad_ids(get: Callable[..., Answer]) -> None:
    """Missing events are 404 pages (HTML and JSON), ids that are not numbers too."""
    assert get("/event/999999").status == 404
    assert get("/event/abc").status == 404
    missing = get("/api/events/999999")
    assert missing.status == 404 and json.loads(missing.body) == {"error": "no event 999999"}


def test_loopback_server_checks_the_host_header(seed_db: Path) -> None:
    """Bound to 127.0.0.1, only its own names are served: DNS rebinding gets 421."""
    with served(seed_db) as base_url:
        port = urlsplit(base_url).port
        app_hosts = loopback_hosts("127.0.0.1", port or 0)
        assert app_hosts is not None and f"localhost:{port}" in app_hosts
        assert request(base_url, "/").status == 200  # http.client sends 127.0.0.1:port
        assert request(base_url, "/", headers={"Host": f"localhost:{port}"}).status == 200
        rebound = request(base_url, "/", headers={"Host": f"attacker.example:{port}"})
        assert rebound.status == 421
    assert loopback_hosts("0.0.0.0", 8080) is None
    assert "feeds.example:443" in (loopback_hosts("::1", 80, "https://feeds.example:443") or ())


def test_missing_database_is_a_503_page(tmp_path: Path) -> None:
    """Before the first update the page says so instead of failing."""
    app = WebApp(tmp_path / "none.db", base_url="http://127.0.0.1:1")
    answer = app.handle("GET", "/", {})
    assert answer.status == 503
    assert b"aggregator update" in answer.body


def test_hostile_feeds_render_inert_everywhere(tmp_path: Path) -> None:
    """Section 8 group D through the real pipeline: no page carries anything runnable,
    the Atom feed re-parses, and the hostile text is shown as text."""
    db = tmp_path / "hostile.db"
    report = ingest(db, write_hostile_feeds(tmp_path / "feeds"), now=SEED_NOW)
    assert [r.status for r in report.feeds] == ["ok", "ok", "ok"]
    with served(db) as base_url:
        index = request(base_url, "/?since=all").text
        assert unsafe_markup(index) == []
        assert "Serialiser breakers ]]&gt; &lt;/title&gt; &amp; &lt; 𝕏 😀" in index
        assert "&#x27;); DROP TABLE entries;-- &quot;quoted&quot;" in index
        assert "\u202e" not in index and "\x1b" not in index
        event_ids = sorted(set(re.findall(r'id="event-(\d+)"', index)))
        pages = [request(base_url, f"/event/{event_id}").text for event_id in event_ids]
        for page in pages:
            assert unsafe_markup(page) == []
        shown = " ".join(pages)
        assert [word for word in HOSTILE_SUBJECTS if word not in shown] == []
        assert unsafe_markup(request(base_url, "/feeds").text) == []
        assert unsafe_markup(request(base_url, f"/?group={HOSTILE_GROUP}&q=alert").text) == []
        atom = feedparser.parse(io.BytesIO(request(base_url, "/feed.atom").body))
        assert not atom.bozo and len(atom.entries) == len(event_ids)
        for entry in atom.entries:
            assert unsafe_markup(entry.content[0].value) == []


@pytest.mark.shared
def test_feedparser_sanitize_corpus_renders_inert(
    tmp_path: Path, shared_data: Callable[[str], Path]
) -> None:
    """Every file of feedparser's sanitize corpus, ingested: no page, feed entry or API
    answer carries a script, a handler, a frame, a form or an unsafe link."""
    folder = shared_data("feedparser-tests/tests/wellformed/sanitize")
    specs = sanitize_corpus_specs(folder)
    report = ingest(tmp_path / "corpus.db", specs, now=SEED_NOW)
    assert len(report.feeds) == len(specs) > 700
    with served(tmp_path / "corpus.db") as base_url:
        index = request(base_url, "/?since=all&limit=5000").text
        assert unsafe_markup(index) == []
        event_ids = sorted(set(re.findall(r'id="event-(\d+)"', index)))
        assert len(event_ids) > 300
        problems = {
            event_id: found
            for event_id in event_ids
            if (found := unsafe_markup(request(base_url, f"/event/{event_id}").text))
        }
        assert problems == {}
        assert unsafe_markup(request(base_url, "/feeds").text) == []
        feed = json.loads(request(base_url, "/feed.json?limit=5000").body)
        assert [item for item in feed["items"] if unsafe_markup(item["content_html"])] == []
        atom = feedparser.parse(io.BytesIO(request(base_url, "/feed.atom?limit=5000").body))
        assert not atom.bozo and len(atom.entries) == len(event_ids)


def test_every_published_feed_is_served_and_linked_from_the_page(
    get: Callable[..., Answer],
) -> None:
    """The feed table drives the routes and the page's links: each row is served with its
    media type and announced by a rel=alternate link and a footer link."""
    page = get("/").text
    for feed in FEED_FORMATS:
        answer = get(feed.link.route)
        assert answer.status == 200
        assert answer.headers["content-type"] == feed.content_type
        assert f'type="{feed.link.media_type}"' in page
        assert f'href="{feed.link.route}">{feed.link.label}</a>' in page
