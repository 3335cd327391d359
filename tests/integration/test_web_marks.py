"""Marking events read and starred on the served page: POST forms with an anti-forgery
token, over real HTTP on 127.0.0.1 and through `WebApp.handle`, on a real SQLite file;
and marks made while the daemon's pipeline is writing the same database."""

from __future__ import annotations

import http.client
import re
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest

from aggregator.models import EventQuery, ReadingState
from aggregator.store import open_store
from aggregator.web import WebApp, loopback_hosts
from tests.support.browser import SEED_NOW, seed_database, served
from tests.support.hostile import unsafe_markup
from tests.support.pipelines import ChangingFeeds

HOST = {"host": "127.0.0.1:8080"}
FORM = {**HOST, "content-type": "application/x-www-form-urlencoded"}


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return seed_database(tmp_path / "seed.db")


@pytest.fixture
def app(db: Path) -> WebApp:
    return WebApp(
        db, base_url="http://127.0.0.1:8080", clock=lambda: SEED_NOW,
        allowed_hosts=loopback_hosts("127.0.0.1", 8080),
    )  # fmt: skip


def page(app: WebApp, target: str = "/") -> str:
    response = app.handle("GET", target, HOST)
    assert response.status == 200, response.body[:300]
    return response.body.decode()


def shown_ids(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'<li class="event[^"]*" id="event-(\d+)"', html)]


def token_of(html: str) -> str:
    tokens = set(re.findall(r'name="csrf" value="([^"]+)"', html))
    assert len(tokens) == 1
    return tokens.pop()


def post(app: WebApp, fields: list[tuple[str, object]], headers: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    body = urlencode([(name, str(value)) for name, value in fields]).encode()
    return app.handle("POST", "/mark", headers if headers is not None else FORM, body)


def state(db: Path, event_id: int) -> tuple[bool, bool]:
    store = open_store(db, create=False)
    try:
        event = store.event(event_id)
    finally:
        store.close()
    assert event is not None
    return event.read, event.starred


def test_marking_read_takes_an_event_off_the_unread_page(app: WebApp, db: Path) -> None:
    """The default page is the unread events with their count; "Mark read" answers 303 to
    the page it came from, which no longer lists the event; "all" still shows it, read."""
    html = page(app)
    ids = shown_ids(html)
    assert len(ids) == 6 and "6 unread" in html and unsafe_markup(html) == []
    token = token_of(html)
    answer = post(app, [("csrf", token), ("action", "read"), ("event", ids[0]),
                        ("back", "/?since=all")])  # fmt: skip
    assert answer.status == 303
    assert dict(answer.headers)["Location"] == "/?since=all"
    after = page(app)
    assert ids[0] not in shown_ids(after) and "5 unread" in after
    every = page(app, "/?show=all")
    assert sorted(shown_ids(every)) == sorted(ids)
    assert f'<li class="event read" id="event-{ids[0]}"' in every and "Mark unread" in every
    assert post(app, [("csrf", token), ("action", "star"), ("event", ids[0])]).status == 303
    assert shown_ids(page(app, "/?show=starred")) == [ids[0]]
    assert state(db, ids[0]) == (True, True)


def test_read_up_to_here_marks_the_events_above_and_no_other(app: WebApp, db: Path) -> None:
    """The bulk form lists the page's events in order; its button for the third marks the
    first three read."""
    html = page(app)
    ids = shown_ids(html)
    bulk = re.search(r'<form id="bulk".*?</form>', html, re.S)
    assert bulk is not None
    listed = [int(n) for n in re.findall(r'name="event" value="(\d+)" ?>', bulk.group(0))]
    assert listed == ids
    fields: list[tuple[str, object]] = [("csrf", token_of(html)), ("action", "read")]
    answer = post(app, [*fields, *(("event", i) for i in listed), ("upto", ids[2])])
    assert answer.status == 303
    assert [state(db, i)[0] for i in ids] == [True, True, True, False, False, False]


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({"csrf": None}, 403),
        ({"csrf": "forged"}, 403),
        ({"action": "delete"}, 400),
        ({"event": "1; drop table events"}, 400),
        ({"event": None}, 400),
        ({"upto": "999999"}, 400),
        ({"event": "999999"}, 404),
    ],
)
def test_a_bad_form_is_refused_and_writes_nothing(
    app: WebApp, db: Path, change: dict[str, str | None], status: int
) -> None:
    """A missing or forged token, an unknown action, an id that is not one, an upto that
    was not on the page, an unknown event: a clear 4xx, no event marked."""
    html = page(app)
    first = shown_ids(html)[0]
    values: dict[str, str | None] = {"csrf": token_of(html), "action": "read", "event": str(first)}
    values.update(change)
    answer = post(app, [(k, v) for k, v in values.items() if v is not None])
    assert answer.status == status
    assert "Traceback" not in answer.body.decode()
    assert len(shown_ids(page(app))) == 6


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({**FORM, "origin": "http://evil.test"}, 403),
        ({**FORM, "sec-fetch-site": "cross-site"}, 403),
        ({**HOST, "content-type": "text/plain"}, 415),
    ],
)
def test_a_form_from_another_site_is_refused(
    app: WebApp, db: Path, headers: dict[str, str], status: int
) -> None:
    """A cross-site form (by Origin or Sec-Fetch-Site) or a body that is not a form:
    refused, even with the right token."""
    html = page(app)
    first = shown_ids(html)[0]
    answer = post(app, [("csrf", token_of(html)), ("action", "read"), ("event", first)], headers)
    assert answer.status == status
    assert state(db, first) == (False, False)


def test_a_browser_s_null_origin_with_the_token_is_accepted(app: WebApp, db: Path) -> None:
    """Under `Referrer-Policy: no-referrer` Chromium sends `Origin: null` on the form's
    POST: the token and Sec-Fetch-Site decide."""
    html = page(app)
    first = shown_ids(html)[0]
    headers = {**FORM, "origin": "null", "sec-fetch-site": "same-origin"}
    answer = post(app, [("csrf", token_of(html)), ("action", "read"), ("event", first)], headers)
    assert answer.status == 303 and state(db, first) == (True, False)


def test_after_a_mark_the_browser_stays_on_this_site(app: WebApp) -> None:
    """`back` can only be a path here: another host, a scheme or a backslash go to /."""
    html = page(app)
    first = shown_ids(html)[0]
    for back, expected in [("//evil.test/x", "/"), ("https://evil.test/", "/"),
                           ("/\\evil.test", "/"), ("/?show=all", "/?show=all")]:  # fmt: skip
        fields = [("csrf", token_of(html)), ("action", "star"), ("event", first), ("back", back)]
        answer = post(app, fields)
        assert dict(answer.headers)["Location"] == expected


def test_marks_over_real_http(db: Path) -> None:
    """Over a socket: GET the page, POST its form, follow the 303; a GET on /mark is 405
    with Allow: POST; a body over the limit is 413 and is not read."""
    with served(db) as base_url:
        parts = urlsplit(base_url)

        def call(method: str, path: str, body: bytes = b"", **headers: str):  # type: ignore[no-untyped-def]
            connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
            try:
                connection.request(method, path, body=body or None, headers=headers)
                response = connection.getresponse()
                return response.status, dict(response.getheaders()), response.read()
            finally:
                connection.close()

        status, _, body = call("GET", "/")
        html = body.decode()
        first = shown_ids(html)[0]
        form = urlencode(
            [("csrf", token_of(html)), ("action", "read"), ("event", first), ("back", "/")]
        ).encode()
        kind = {"Content-Type": "application/x-www-form-urlencoded", "Origin": base_url}
        status, headers, _ = call("POST", "/mark", form, **kind)
        assert status == 303 and headers["Location"] == "/"
        assert first not in shown_ids(call("GET", "/")[2].decode())
        status, headers, _ = call("GET", "/mark")
        assert status == 405 and headers["Allow"] == "POST"
        status, _, _ = call("POST", "/mark", b"x" * (300 * 1024), **kind)
        assert status == 413


def test_marks_while_the_daemon_writes_are_never_lost(tmp_path: Path) -> None:
    """The pipeline updates changing feeds in a thread while the page marks every event
    read, one POST at a time: every POST succeeds, every mark is kept, every update stores."""
    live = ChangingFeeds(tmp_path, SEED_NOW)
    app = WebApp(live.db, base_url="http://127.0.0.1:8080", clock=lambda: SEED_NOW,
                 allowed_hosts=loopback_hosts("127.0.0.1", 8080))  # fmt: skip
    live.start()
    marked: set[int] = set()
    try:
        while live.running() or not marked:
            html = page(app, "/?since=all&limit=5000")
            for event_id in shown_ids(html)[:3]:
                answer = post(
                    app, [("csrf", token_of(html)), ("action", "read"), ("event", event_id)]
                )
                assert answer.status == 303, answer.body[:300]
                marked.add(event_id)
    finally:
        failures = live.finish()
    assert failures == []
    check = open_store(live.db, create=False)
    try:
        unread = {e.id for e in check.find_events(EventQuery(state=ReadingState.UNREAD))}
        stored = check.counts()["entries"]
    finally:
        check.close()
    assert marked and not marked & unread
    assert stored == ChangingFeeds.STORED


def test_an_event_page_marks_its_event_and_comes_back(app: WebApp, db: Path) -> None:
    """The event page has Mark read and Star (no "up to here": it lists one event); a mark
    from it returns to it, which then offers Mark unread."""
    first = shown_ids(page(app))[0]
    html = page(app, f"/event/{first}")
    assert "Mark read" in html and "Read up to here" not in html and unsafe_markup(html) == []
    fields = [("csrf", token_of(html)), ("action", "read"), ("event", first),
              ("back", f"/event/{first}")]  # fmt: skip
    answer = post(app, fields)
    assert dict(answer.headers)["Location"] == f"/event/{first}"
    assert "Mark unread" in page(app, f"/event/{first}") and state(db, first) == (True, False)
