"""The Google Reader API over real HTTP on 127.0.0.1, on real SQLite files filled by the
real pipeline: a NetNewsWire sync as its ReaderAPICaller sends it, streams, pages and
counts, an event carried by two feeds, ids across merges, prunes and restarts, and bad
input (each a clear 4xx in plain text, nothing written)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote, urlencode

import feedparser
import pytest

from aggregator.greader.ids import ITEM_BASE, long_item_id
from aggregator.greader.passwords import parse_hash, verify_password
from aggregator.models import EventQuery, ReadingState
from aggregator.render.common import one_line
from aggregator.store import open_store
from tests.support.browser import SEED_NOW, seed_database, served
from tests.support.greader import (
    FIXTURE_NOW,
    FORM,
    KEPT_UNREAD,
    PASSWORD,
    READ,
    READING_LIST,
    SHARED_LINK,
    STARRED,
    USER,
    ReaderClient,
    aggregator_cli,
    api_user,
    many_feed_database,
    send,
    two_feed_database,
    write_config,
)
from tests.support.hostile import HOSTILE_SUBJECTS, ingest, unsafe_markup, write_hostile_feeds
from tests.support.pipelines import ChangingFeeds

API = "/reader/api/0"


@pytest.fixture
def seed_db(database: str) -> Path | str:
    """The seed in a database of each backend: the API reads both alike."""
    return seed_database(database)


@pytest.fixture
def seed_url(seed_db: Path) -> Iterator[str]:
    with served(seed_db, users=[api_user()]) as base_url:
        yield base_url


@pytest.fixture
def client(seed_url: str) -> ReaderClient:
    client = ReaderClient(seed_url)
    assert client.login().status == 200
    return client


def states(db: Path) -> dict[int, tuple[bool, bool]]:
    store = open_store(db, create=False)
    try:
        return {e.id: (e.read, e.starred) for e in store.find_events(EventQuery())}
    finally:
        store.close()


def unread_count(db: Path) -> int:
    store = open_store(db, create=False)
    try:
        return store.count_events(EventQuery(state=ReadingState.UNREAD))
    finally:
        store.close()


# -- a NetNewsWire sync ------------------------------------------------------------------------


def test_a_netnewswire_sync_of_the_seed(client: ReaderClient, seed_db: Path) -> None:
    """Login, token, tags, subscriptions, unread and starred ids, the items (asked as
    unpadded hex), marks as edit-tag bodies: what NetNewsWire sees is the digest."""
    assert client.auth and client.edit_token()
    info = client.get(f"{API}/user-info", [("output", "json")]).json()
    assert info["userName"] == USER and info["userId"].isdigit()
    tags = client.get(f"{API}/tag/list", [("output", "json")]).json()["tags"]
    assert {"id": STARRED} in tags and {"id": "user/-/label/seeds", "type": "folder"} in tags
    subscriptions = client.subscriptions()
    assert sorted(s["title"] for s in subscriptions) == [
        "Seed 000 — article", "Seed 003 — related headlines"
    ]  # fmt: skip
    assert all(s["id"].startswith("feed/") and s["categories"] == [
        {"id": "user/-/label/seeds", "label": "seeds"}] for s in subscriptions)  # fmt: skip
    assert {s["htmlUrl"] for s in subscriptions} == {
        "https://seeds.invalid/000/", "https://seeds.invalid/003/"
    }  # fmt: skip
    unread = client.unread_ids()
    assert len(unread) == len(set(unread)) == unread_count(seed_db) == 6
    assert client.starred_ids() == []
    answer = client.contents(unread)
    assert answer.status == 200
    document = answer.json()
    assert {"id", "updated", "items"} <= set(document)
    items = document["items"]
    assert [item["id"] for item in items] == [long_item_id(n - ITEM_BASE) for n in unread]
    feeds = {s["id"] for s in subscriptions}
    for item in items:
        assert item["origin"]["streamId"] in feeds
        assert READING_LIST in item["categories"] and "user/-/label/seeds" in item["categories"]
        assert READ not in item["categories"]
        assert item["alternate"][0]["href"].startswith("https://seeds.invalid/")
        assert isinstance(item["published"], int) and item["timestampUsec"].isdigit()
    copied = [item for item in items if "Also reported by" in item["summary"]["content"]]
    assert len(copied) == 1 and "La Maison Blanche" in copied[0]["title"]
    assert "Why these are grouped" in copied[0]["summary"]["content"]

    assert client.set_state(unread[:2], READ, add=True).text == "OK"
    assert client.set_state(unread[2:3], STARRED, add=True).text == "OK"
    assert sorted(client.unread_ids()) == sorted(unread[2:])
    assert client.starred_ids() == [unread[2]]
    marked = states(seed_db)
    assert [marked[n - ITEM_BASE] for n in unread[:3]] == [(True, False), (True, False),
                                                           (False, True)]  # fmt: skip
    assert client.set_state(unread[:1], READ, add=False).text == "OK"
    assert unread_count(seed_db) == 5


def test_stream_contents_pages_through_a_stream_with_its_continuation(
    client: ReaderClient,
) -> None:
    """n=2 over the reading list: three pages, every event once, newest first, then the
    same oldest first; excluding read items after a mark."""
    seen: list[str] = []
    continuation: str | None = None
    for _ in range(5):
        params = [("n", "2")] + ([("c", continuation)] if continuation else [])
        page = client.get(f"{API}/stream/contents/{READING_LIST}", params).json()
        assert page["id"] == READING_LIST and len(page["items"]) <= 2
        seen += [item["id"] for item in page["items"]]
        continuation = page.get("continuation")
        if continuation is None:
            break
    assert len(seen) == len(set(seen)) == 6
    oldest = client.get(f"{API}/stream/contents", [("s", READING_LIST), ("n", "6"), ("r", "o")])
    assert [item["id"] for item in oldest.json()["items"]] == seen[::-1]
    client.set_state([int(seen[0].rsplit("/", 1)[1], 16)], READ, add=True)
    unread = client.get(f"{API}/stream/contents/{READING_LIST}", [("n", "10"), ("xt", READ)])
    assert [item["id"] for item in unread.json()["items"]] == seen[1:]
    read = client.get(f"{API}/stream/contents/{quote(READ, safe='')}").json()
    assert [item["id"] for item in read["items"]] == seen[:1]
    assert READ in read["items"][0]["categories"]


def test_a_larger_stream_pages_without_repeats_or_gaps(tmp_path: Path) -> None:
    """About 700 events over 12 feeds: pages of 100 give each once; a mark made between
    two pages neither repeats nor skips an item; the counts are ours."""
    db = many_feed_database(tmp_path)
    with served(db, now=FIXTURE_NOW, users=[api_user()]) as base_url:
        client = ReaderClient(base_url)
        client.login()
        total = unread_count(db)
        assert sorted(client.unread_ids()) == sorted(ITEM_BASE + e for e in states(db))
        seen: list[str] = []
        continuation = None
        while True:
            params = [("n", "100")] + ([("c", continuation)] if continuation else [])
            page = client.get(f"{API}/stream/contents/{READING_LIST}", params).json()
            seen += [item["id"] for item in page["items"]]
            if len(seen) == 100:  # a mark between pages changes no position
                client.set_state([int(seen[-1].rsplit("/", 1)[1], 16)], READ, add=True)
            continuation = page.get("continuation")
            if continuation is None:
                break
        assert len(seen) == len(set(seen)) == total
        counts = client.get(f"{API}/unread-count").json()["unreadcounts"]
        by_id = {c["id"]: c["count"] for c in counts}
        assert by_id[READING_LIST] == unread_count(db) == total - 1
        labels = {k: v for k, v in by_id.items() if k.startswith("user/-/label/")}
        assert set(labels) == {"user/-/label/world", "user/-/label/nation", "user/-/label/city"}
        assert sum(labels.values()) >= total - 1  # a story two groups carried counts in both


def test_unread_counts_are_ours(client: ReaderClient, seed_db: Path) -> None:
    counts = {c["id"]: c["count"] for c in client.get(f"{API}/unread-count").json()["unreadcounts"]}
    subscriptions = {s["id"] for s in client.subscriptions()}
    assert counts[READING_LIST] == counts["user/-/label/seeds"] == unread_count(seed_db) == 6
    assert sum(counts[feed] for feed in subscriptions) == 6
    client.set_state(client.unread_ids()[:3], READ, add=True)
    counts = {c["id"]: c["count"] for c in client.get(f"{API}/unread-count").json()["unreadcounts"]}
    assert counts[READING_LIST] == unread_count(seed_db) == 3


def test_the_atom_form_of_a_stream(client: ReaderClient) -> None:
    """/reader/atom/<stream> parses as Atom; each entry's id is the long item id, its read
    state a category in Google's scheme, its source the canonical copy's feed."""
    feed_id = next(s["id"] for s in client.subscriptions() if "003" in s["title"])
    answer = client.get(f"/reader/atom/{quote(feed_id, safe='')}", [("n", "1000")])
    assert answer.status == 200 and answer.headers["content-type"].startswith(
        "application/atom+xml")  # fmt: skip
    parsed = feedparser.parse(answer.body)
    assert not parsed.bozo and len(parsed.entries) == 5
    first = parsed.entries[0]
    assert first.id.startswith("tag:google.com,2005:reader/item/")
    labels = {
        tag.get("label")
        for tag in first.tags
        if tag.get("scheme") == "http://www.google.com/reader/"
    }
    assert "fresh" in labels and "read" not in labels
    client.set_state([int(first.id.rsplit("/", 1)[1], 16)], READ, add=True)
    again = feedparser.parse(client.get(f"/reader/atom/{quote(feed_id, safe='')}").body)
    labels = {tag.get("label") for tag in again.entries[0].tags if tag.get("label")}
    assert "read" in labels and "fresh" not in labels
    assert again.entries[0].source.get("id", "").endswith(feed_id)


# -- one story, two feeds ------------------------------------------------------------------------


def test_a_story_carried_by_two_feeds_is_one_item_under_both(tmp_path: Path) -> None:
    """The harbour story is in both feeds' streams with one id; its origin is the canonical
    copy's feed; its content links the other copy; read once, it is read under both."""
    db = two_feed_database(tmp_path)
    with served(db, now=FIXTURE_NOW, users=[api_user()]) as base_url:
        client = ReaderClient(base_url)
        client.login()
        subscriptions = {s["title"]: s["id"] for s in client.subscriptions()}
        streams = {
            title: client.get(f"{API}/stream/contents/{stream}", [("n", "50")]).json()["items"]
            for title, stream in subscriptions.items()
        }
        harbour = {
            title: [i for i in items if i["alternate"][0]["href"] == SHARED_LINK]
            for title, items in streams.items()
        }
        assert all(len(found) == 1 for found in harbour.values())
        wire, paper = harbour["Wire — world"][0], harbour["Paper — front page"][0]
        assert wire["id"] == paper["id"]
        assert wire["origin"]["streamId"] in subscriptions.values()
        assert "Also reported by" in wire["summary"]["content"]
        assert {"user/-/label/world", "user/-/label/front"} <= set(wire["categories"])
        assert len(client.unread_ids()) == 4
        number = int(wire["id"].rsplit("/", 1)[1], 16)
        assert client.set_state([number], READ, add=True).text == "OK"
        for stream in subscriptions.values():
            unread = client.get(f"{API}/stream/items/ids", [("s", stream), ("xt", READ)]).json()
            assert str(number) not in {ref["id"] for ref in unread["itemRefs"]}
        assert len(client.unread_ids()) == 3
        # mark-all-as-read on one feed: its events, and only them.
        body = f"s={subscriptions['Paper — front page']}&T={client.edit_token()}"
        assert client.post(f"{API}/mark-all-as-read", body).text == "OK"
        left = client.get(f"{API}/stream/contents/{READING_LIST}", [("xt", READ)]).json()
        assert sorted(i["title"] for i in left["items"]) == [
            "Central bank holds its rate at four percent",
            "Storm closes three mountain passes overnight",
        ]


def test_mark_all_as_read_keeps_what_arrived_after_ts(tmp_path: Path) -> None:
    db = two_feed_database(tmp_path)
    with served(db, now=FIXTURE_NOW, users=[api_user()]) as base_url:
        client = ReaderClient(base_url)
        client.login()
        before = int((FIXTURE_NOW - timedelta(seconds=1)).timestamp() * 1_000_000)
        body = f"s={READING_LIST}&ts={before}&T={client.edit_token()}"
        assert client.post(f"{API}/mark-all-as-read", body).text == "OK"
        assert len(client.unread_ids()) == 4  # all arrived at FIXTURE_NOW
        body = f"s={READING_LIST}&ts={before + 1_000_000}&T={client.edit_token()}"
        assert client.post(f"{API}/mark-all-as-read", body).text == "OK"
        assert client.unread_ids() == [] and unread_count(db) == 0


def test_hostile_feeds_reach_the_apps_inert(tmp_path: Path) -> None:
    """The hostile corpus through the real pipeline, read through the API: every item's
    content is sanitised (nothing that runs, loads or submits), titles are one clean
    line, the Atom form re-parses, and every hostile subject is still there as text."""
    db = tmp_path / "hostile.db"
    ingest(db, write_hostile_feeds(tmp_path / "feeds"), now=SEED_NOW)
    with served(db, users=[api_user()]) as base_url:
        client = ReaderClient(base_url)
        client.login()
        items = client.contents(client.unread_ids()).json()["items"]
        assert items
        for item in items:
            assert unsafe_markup(item["summary"]["content"]) == []
            assert "\u202e" not in item["title"] and "\x1b" not in item["title"]
            assert "\n" not in item["title"]
        # Each event once, its canonical copy's title as one clean line; the copies that
        # joined another event are that event's "also reported by" links.
        store = open_store(db, create=False)
        try:
            events = store.find_events(EventQuery())
        finally:
            store.close()
        assert sorted(item["title"] for item in items) == sorted(
            one_line(event.canonical.title) or "(no title)" for event in events
        )
        shown = " ".join(item["title"] + item["summary"]["content"] for item in items)
        assert len([word for word in HOSTILE_SUBJECTS if word in shown]) >= len(events)
        for subscription in client.subscriptions():
            body = client.get(f"/reader/atom/{quote(subscription['id'], safe='')}").body
            atom = feedparser.parse(body)
            assert not atom.bozo, atom.bozo_exception
            for entry in atom.entries:
                assert unsafe_markup(entry.content[0].value) == []


# -- ids and tokens over time ------------------------------------------------------------------


def test_an_id_follows_its_event_through_a_merge_and_is_never_reused(tmp_path: Path) -> None:
    """Merged away, an id still names its story (marks land on the event it joined);
    pruned, it names nothing, and the events that come later get new ids."""
    db = seed_database(tmp_path / "seed.db")
    with served(db, users=[api_user()]) as base_url:
        client = ReaderClient(base_url)
        client.login()
        ids = sorted(n - ITEM_BASE for n in client.unread_ids())
        kept, gone = ids[0], ids[1]
        result = aggregator_cli("events", "merge", str(kept), str(gone), "--db", str(db))
        assert result.returncode == 0, result.stderr
        answer = client.contents([ITEM_BASE + gone]).json()
        assert [item["id"] for item in answer["items"]] == [long_item_id(kept)]
        assert client.set_state([ITEM_BASE + gone], READ, add=True).text == "OK"
        assert states(db)[kept] == (True, False)
        store = open_store(db, create=False)
        try:
            with store.transaction():
                store.prune(
                    before=SEED_NOW + timedelta(days=1),
                    keep_tombstones_until=SEED_NOW + timedelta(days=2), now=SEED_NOW,
                )  # fmt: skip
            assert states(db) == {}
        finally:
            store.close()
        assert client.contents([ITEM_BASE + kept]).json()["items"] == []
        missing = client.set_state([ITEM_BASE + kept], READ, add=True)
        assert missing.status == 404 and "no such item" in missing.text
    store = open_store(db, create=False)
    try:
        with store.transaction():
            assert store.create_event(SEED_NOW) > max(ids)  # the next event: a new id
    finally:
        store.close()


def test_a_token_survives_a_restart_of_the_server(seed_db: Path) -> None:
    """Signed with the database's secret: a new server on the same database and config
    accepts it. (A new password hash in the config revokes it: tests/unit/greader.)"""
    user = api_user()
    with served(seed_db, users=[user]) as base_url:
        client = ReaderClient(base_url)
        client.login()
        token, auth = client.edit_token(), client.auth
    with served(seed_db, users=[user]) as base_url:
        again = ReaderClient(base_url)
        again.auth, again.token = auth, token
        assert again.get(f"{API}/user-info").status == 200
        assert again.set_state(again.unread_ids()[:1], READ, add=True).text == "OK"


def test_a_token_of_another_database_is_refused(seed_db: Path, tmp_path: Path) -> None:
    user = api_user()
    with served(seed_db, users=[user]) as base_url:
        client = ReaderClient(base_url)
        client.login()
        auth = client.auth
    other = seed_database(tmp_path / "other.db")
    with served(other, users=[user]) as base_url:
        stranger = ReaderClient(base_url)
        stranger.auth = auth
        answer = stranger.get(f"{API}/user-info")
        assert answer.status == 401


# -- bad input: a clear 4xx, never a traceback, nothing written --------------------------------


def refusal(answer, status: int) -> str:  # type: ignore[no-untyped-def]
    assert answer.status == status, (answer.status, answer.body[:300])
    assert answer.headers["content-type"].startswith("text/plain"), answer.headers
    assert b"Traceback" not in answer.body and len(answer.body) < 1000
    return str(answer.text)


def test_bad_requests_are_refused_and_write_nothing(client: ReaderClient, seed_db: Path) -> None:
    before = states(seed_db)
    T = client.edit_token()
    number = client.unread_ids()[0]
    edit = f"{API}/edit-tag"
    cases = [
        (client.post(edit, f"i={number:016x}&a={READ}"), 401, "edit token"),
        (client.post(edit, f"i={number:016x}&a={READ}&T=1796644842.{'A' * 43}"), 401, "edit token"),
        (client.post(edit, f"i={number:016x}&a={READ}&T={T}x"), 401, "edit token"),
        (client.post(edit, f"i=42&a={READ}&T={T}"), 400, "not an item id"),
        (client.post(edit, f"i=ZZZ&a={READ}&T={T}"), 400, "not an item id"),
        (client.post(edit, f"i={ITEM_BASE + 10**9:016x}&a={READ}&T={T}"), 404, "no such item"),
        (client.post(edit, f"i={number:016x}&a=user/-/label/seeds&T={T}"), 400, "labels"),
        (client.post(edit, f"i={number:016x}&a={READ}&r={READ}&T={T}"), 400, "both read"),
        (client.post(edit, f"i={number:016x}&a={READ}&a={KEPT_UNREAD}&T={T}"), 400, "both"),
        (client.post(edit, f"a={READ}&T={T}"), 400, "at least one item id"),
        (client.post(edit, f"i={number:016x}&T={T}"), 400, "at least one tag"),
        (client.post(edit, f"T={T}&" + "&".join(["i=1"] * 10_100)), 400, "at most"),
        (client.post(edit, f"a={READ}&T={T}&" + "&".join(["i=1"] * 10_001)), 400,
         "at most 10000 item"),
        (client.post(f"{API}/mark-all-as-read", f"s=feed/999&T={T}"), 404, "no such feed"),
        (client.post(f"{API}/mark-all-as-read", f"s=user/-/label/nope&T={T}"), 404, "label"),
        (client.post(f"{API}/mark-all-as-read", f"s={READING_LIST}&ts=soon&T={T}"), 400, "ts"),
        (client.post(f"{API}/mark-all-as-read", f"T={T}"), 400, "s: a stream id"),
        (client.post(f"{API}/subscription/quickadd", f"quickadd=https://x.invalid/&T={T}"),
         403, "feeds.yaml"),
        (client.post(f"{API}/subscription/edit", f"ac=unsubscribe&s=feed/1&T={T}"), 403,
         "feeds.yaml"),
        (client.post(f"{API}/rename-tag", f"s=user/-/label/seeds&dest=x&T={T}"), 403, "feeds"),
        (client.post(f"{API}/subscription/edit", "ac=unsubscribe&s=feed/1"), 401, "edit token"),
    ]  # fmt: skip
    for answer, status, words in cases:
        assert words in refusal(answer, status), (status, words, answer.text)
    bad_token = client.post(edit, f"i={number:016x}&a={READ}&T=nope")
    assert bad_token.headers.get("x-reader-google-bad-token") == "true"
    latin1 = send(client.base_url, "POST", edit, body=f"T={T}&i=\xe9".encode("latin-1"),
                  headers={**client.headers, **FORM})  # fmt: skip
    assert "UTF-8" in refusal(latin1, 400)
    json_body = send(client.base_url, "POST", edit, body=b'{"i": 1}',
                     headers={**client.headers, "Content-Type": "application/json"})  # fmt: skip
    refusal(json_body, 415)
    assert states(seed_db) == before


def test_bad_reads_are_refused(client: ReaderClient) -> None:
    ids = f"{API}/stream/items/ids"
    cases = [
        (client.get(ids, [("s", "feed/999")]), 404, "no such feed"),
        (client.get(ids, [("s", "feed/https://elsewhere.invalid/rss")]), 404, "no such feed"),
        (client.get(ids, [("s", "user/-/label/nope")]), 404, "no such label"),
        (client.get(ids, [("s", "splice/1")]), 400, "unknown stream id"),
        (client.get(ids, [("s", "user/-/state/com.google/broadcast")]), 400, "unknown state"),
        (client.get(ids, []), 400, "s: a stream id is required"),
        (client.get(ids, [("s", READING_LIST), ("n", str(10**9))]), 400, "n: a whole number"),
        (client.get(ids, [("s", READING_LIST), ("n", "0")]), 400, "n: a whole number"),
        (client.get(ids, [("s", READING_LIST), ("c", "20")]), 400, "continuation"),
        (client.get(ids, [("s", READING_LIST), ("c", "WyIyMDI2IiwyXQ.AAAAAAAAAAAAAAAAAAAAAA")]),
         400, "continuation"),
        (client.get(ids, [("s", READING_LIST), ("ot", "-5")]), 400, "ot"),
        (client.get(ids, [("s", READING_LIST), ("xt", "user/-/label/seeds")]), 400, "xt"),
        (client.get(f"{API}/stream/contents/feed%2F999"), 404, "no such feed"),
        (client.get(f"/reader/atom/{quote('user/-/label/nope', safe='')}"), 404, "label"),
        (client.get(f"{API}/stream/items/contents", [("i", "nope")]), 400, "not an item id"),
        (client.get(f"{API}/stream/items/contents"), 400, "at least one item id"),
        (client.get(f"{API}/edit-tag"), 405, "only POST"),
        (client.get(f"{API}/no-such-call"), 404, "no such API call"),
        (client.get(f"{API}/{'a' * 5000}"), 404, "no such API call"),
        (client.get(ids, [("n", "1")] * 10_100), 400, "at most"),
    ]  # fmt: skip
    for answer, status, words in cases:
        assert words in refusal(answer, status), (status, words, answer.text)
    # A page of an id that was never issued is not an error: nothing there.
    assert client.contents([ITEM_BASE + 10**9]).json()["items"] == []


def test_without_a_valid_login_nothing_is_answered(seed_url: str) -> None:
    for headers in ({}, {"Authorization": "GoogleLogin auth=forged"},
                    {"Authorization": "Bearer x"}, {"Authorization": "GoogleLogin"}):  # fmt: skip
        for path in (f"{API}/subscription/list", f"{API}/token", "/reader/atom/feed%2F1",
                     f"{API}/stream/items/ids?s={READING_LIST}"):  # fmt: skip
            answer = send(seed_url, "GET", path, headers=headers)
            assert "Unauthorized" in refusal(answer, 401)
            assert answer.headers["www-authenticate"].startswith("GoogleLogin")
    assert refusal(send(seed_url, "GET", "/accounts/ClientLogin"), 405)
    query = f"/accounts/ClientLogin?{urlencode({'Email': USER, 'Passwd': PASSWORD})}"
    assert "POST body" in refusal(send(seed_url, "POST", query, body=b"", headers=FORM), 400)


def test_repeated_failed_logins_lock_the_user_out(seed_url: str) -> None:
    client = ReaderClient(seed_url)
    for _ in range(5):
        assert "BadAuthentication" in refusal(client.login(password="guess"), 401)
    locked = client.login()
    assert "TooManyFailedLogins" in refusal(locked, 429)
    assert int(locked.headers["retry-after"]) > 0
    assert ReaderClient(seed_url).login(user="bob", password="x").status == 401


def test_a_huge_or_unsized_body_is_refused_before_it_is_read(client: ReaderClient) -> None:
    big = client.post(f"{API}/edit-tag", "i=" + "1" * (300 * 1024))
    assert big.status == 413
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(client.base_url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
    try:
        connection.putrequest("POST", f"{API}/edit-tag")
        for name, value in {**client.headers, **FORM}.items():
            connection.putheader(name, value)
        connection.endheaders()
        assert connection.getresponse().status == 411
    finally:
        connection.close()


def test_a_feedhq_url_with_a_trailing_slash_still_works(seed_url: str) -> None:
    """newsboat appends /accounts/ClientLogin and /reader/... to `feedhq-url` as written:
    with its trailing slash (its default has one), paths start with //."""
    body = urlencode({"Email": USER, "Passwd": PASSWORD}).encode()
    login = send(seed_url, "POST", "//accounts/ClientLogin", body=body, headers=FORM)
    assert login.status == 200
    auth = {"Authorization": "GoogleLogin auth=" + login.text.split("Auth=")[1].strip()}
    answer = send(seed_url, "GET", "//reader/api/0/subscription/list?output=json", headers=auth)
    assert answer.status == 200 and len(answer.json()["subscriptions"]) == 2


def test_beyond_loopback_the_pages_ask_for_a_user_too(seed_db: Path) -> None:
    """No Host check (listening beyond loopback) and users: every page wants HTTP Basic
    with an API user's password; the API keeps its own login; five wrong passwords lock
    the name out here too."""
    import base64

    def basic(user: str, password: str) -> dict[str, str]:
        pair = base64.b64encode(f"{user}:{password}".encode()).decode()
        return {"Authorization": f"Basic {pair}"}

    with served(seed_db, users=[api_user()], allowed_hosts=None) as base_url:
        for path in ("/", "/event/1", "/feeds", "/feed.atom", "/api/events"):
            answer = send(base_url, "GET", path)
            assert answer.status == 401, path
            assert answer.headers["www-authenticate"].startswith('Basic realm="aggregator"')
        assert send(base_url, "GET", "/", headers=basic(USER, PASSWORD)).status == 200
        assert send(base_url, "GET", "/feed.atom", headers=basic(USER, PASSWORD)).status == 200
        assert send(base_url, "GET", "/", headers={"Authorization": "Basic !!"}).status == 401
        client = ReaderClient(base_url)
        assert client.login().status == 200 and client.unread_ids()
        for _ in range(5):
            assert send(base_url, "GET", "/", headers=basic(USER, "guess")).status == 401
        # A browser that already logged in keeps its pair (remembered for minutes); any
        # other password for the name is locked out.
        assert send(base_url, "GET", "/", headers=basic(USER, PASSWORD)).status == 200
        assert send(base_url, "GET", "/", headers=basic(USER, "guess")).status == 429
        assert ReaderClient(base_url).login().status == 429
    with served(seed_db, users=[api_user()]) as base_url:  # on loopback: as before
        assert send(base_url, "GET", "/").status == 200


def test_the_host_check_covers_the_api(seed_url: str) -> None:
    answer = send(seed_url, "POST", "/accounts/ClientLogin", headers={**FORM,
                  "Host": "evil.example"}, body=b"Email=alice&Passwd=x")  # fmt: skip
    assert answer.status == 421


# -- the commands --------------------------------------------------------------------------


def test_passwd_prints_a_users_block_that_the_config_accepts(tmp_path: Path) -> None:
    result = subprocess_passwd("s3cret phrase\n")
    assert result.returncode == 0, result.stderr
    assert "s3cret" not in result.stdout
    config = tmp_path / "feeds.yaml"
    config.write_text("groups:\n  world:\n    feeds: []\n" + result.stdout, encoding="utf-8")
    from aggregator.config import load_config

    (user,) = load_config(config).users
    assert user.name == "alice" and verify_password("s3cret phrase", parse_hash(user.password_hash))
    assert subprocess_passwd("\n").returncode == 2


def subprocess_passwd(stdin: str):  # type: ignore[no-untyped-def]
    import os
    import subprocess
    import sys

    from tests.support.greader import REPO

    return subprocess.run(
        [sys.executable, "-m", "aggregator", "passwd", "alice"], input=stdin,
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, cwd=REPO,
        timeout=60, check=False,
    )  # fmt: skip


def test_serve_refuses_to_listen_beyond_loopback_without_users(tmp_path: Path) -> None:
    db = seed_database(tmp_path / "seed.db")
    config = write_config(tmp_path / "feeds.yaml", [], ["seeds"])
    result = aggregator_cli("serve", "--host", "0.0.0.0", "--port", "0", "--config",
                            str(config), "--db", str(db))  # fmt: skip
    assert result.returncode == 2
    assert "listens beyond this machine" in result.stderr and "Traceback" not in result.stderr


def test_api_marks_while_the_daemon_writes_are_never_lost(tmp_path: Path) -> None:
    """The pipeline updates changing feeds in a thread while an app marks every unread
    item read through edit-tag, a page at a time: every request succeeds, every mark is
    kept, every update stores."""
    live = ChangingFeeds(tmp_path, SEED_NOW)
    marked: set[int] = set()
    with served(live.db, users=[api_user()]) as base_url:
        reader = ReaderClient(base_url)
        assert reader.login().status == 200
        live.start()
        try:
            while live.running() or not marked:
                unread = reader.unread_ids()[:5]
                if unread:
                    answer = reader.set_state(unread, READ, add=True)
                    assert answer.status == 200, answer
                    marked.update(unread)
        finally:
            failures = live.finish()
        assert failures == []
        still_unread = set(reader.unread_ids())
    check = open_store(live.db, create=False)
    try:
        stored = check.counts()["entries"]
        read = {e.id for e in check.find_events(EventQuery()) if e.read}
        # An event merged away since it was marked lives on in the event it joined.
        now_in = {check.current_event_id(number - ITEM_BASE) for number in marked}
    finally:
        check.close()
    assert marked and not marked & still_unread
    assert now_in <= read
    assert stored == ChangingFeeds.STORED
