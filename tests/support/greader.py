"""Helpers of the Google Reader API tests: a client that sends what NetNewsWire and
newsboat send, a small two-feed fixture with a story carried by both feeds, `aggregator
serve` as a real process, and newsboat run in a throwaway home."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import random
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from aggregator.greader.passwords import hash_password
from aggregator.models import ApiUser, FeedSpec
from tests.support.hostile import ingest
from tests.support.http_client import Answer, send

REPO = Path(__file__).resolve().parents[2]
USER, PASSWORD = "alice", "correct horse battery staple"
# A cheap scrypt cost for tests (the default takes about 50 ms a check).
CHEAP_N = 2**10
NEWSBOAT = shutil.which("newsboat")
READ = "user/-/state/com.google/read"
STARRED = "user/-/state/com.google/starred"
KEPT_UNREAD = "user/-/state/com.google/kept-unread"
READING_LIST = "user/-/state/com.google/reading-list"


def api_user(name: str = USER, password: str = PASSWORD) -> ApiUser:
    return ApiUser(name, hash_password(password, n=CHEAP_N))


FORM = {"Content-Type": "application/x-www-form-urlencoded"}


class ReaderClient:
    """Requests shaped as NetNewsWire's ReaderAPICaller sends them (form bodies written
    by hand, `i=` and `a=` unescaped, T first), plus newsboat's edit-tag bodies."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.auth: str | None = None
        self.token: str | None = None

    def login(self, user: str = USER, password: str = PASSWORD) -> Answer:
        body = urlencode({"Email": user, "Passwd": password}).encode()
        answer = send(self.base_url, "POST", "/accounts/ClientLogin", body=body, headers=FORM)
        if answer.status == 200:
            # NetNewsWire splits each line on "=" and keeps the second part.
            lines = dict(line.split("=") for line in answer.text.splitlines())
            self.auth = lines["Auth"]
        return answer

    @property
    def headers(self) -> dict[str, str]:
        assert self.auth is not None, "log in first"
        return {"Authorization": f"GoogleLogin auth={self.auth}"}

    def get(self, path: str, params: Sequence[tuple[str, str]] = ()) -> Answer:
        target = path + (f"?{urlencode(list(params))}" if params else "")
        return send(self.base_url, "GET", target, headers=self.headers)

    def edit_token(self) -> str:
        if self.token is None:
            answer = self.get("/reader/api/0/token")
            assert answer.status == 200, answer
            self.token = answer.text
        return self.token

    def post(self, path: str, raw_body: str) -> Answer:
        return send(
            self.base_url, "POST", path, body=raw_body.encode(), headers={**self.headers, **FORM}
        )

    # -- what NetNewsWire does ---------------------------------------------------------

    def subscriptions(self) -> list[dict[str, Any]]:
        answer = self.get("/reader/api/0/subscription/list", [("output", "json")])
        assert answer.status == 200, answer
        subscriptions: list[dict[str, Any]] = answer.json()["subscriptions"]
        return subscriptions

    def unread_ids(self) -> list[int]:
        answer = self.get(
            "/reader/api/0/stream/items/ids",
            [("s", READING_LIST), ("n", "10000"), ("xt", READ), ("output", "json")],
        )
        assert answer.status == 200, answer
        return [int(ref["id"]) for ref in answer.json()["itemRefs"]]

    def starred_ids(self) -> list[int]:
        answer = self.get(
            "/reader/api/0/stream/items/ids", [("s", STARRED), ("n", "10000"), ("output", "json")]
        )
        assert answer.status == 200, answer
        return [int(ref["id"]) for ref in answer.json()["itemRefs"]]

    def contents(self, ids: Sequence[int]) -> Answer:
        # NetNewsWire: the decimal ids of stream/items/ids, as unpadded hex.
        items = "&".join(f"i={number:x}" for number in ids)
        return self.post(
            "/reader/api/0/stream/items/contents", f"T={self.edit_token()}&output=json&{items}"
        )

    def set_state(self, ids: Sequence[int], state: str, *, add: bool) -> Answer:
        items = "&".join(f"i={number:016x}" for number in ids)
        action = "a" if add else "r"
        return self.post(
            "/reader/api/0/edit-tag", f"T={self.edit_token()}&{items}&{action}={state}"
        )


# -- a fixture where one story is carried by two feeds ----------------------------------------

FIXTURE_NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
SHARED_LINK = "https://wire.invalid/2026/11/22/harbour-bridge-reopens"


def _rss(title: str, items: Sequence[tuple[str, str, str, str]]) -> str:
    entries = "".join(
        f"<item><title>{t}</title><link>{link}</link><guid>{guid}</guid>"
        f"<pubDate>{date}</pubDate><description>{t}: the full text of the story.</description>"
        "</item>"
        for t, link, guid, date in items
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>{title}</title>'
        f"<link>https://{title.split()[0].lower()}.invalid/</link><description>d</description>"
        f"{entries}</channel></rss>"
    )


def write_two_feeds(directory: Path) -> tuple[FeedSpec, ...]:
    """Two feeds in two groups; the harbour story is in both (the same link), the other
    three stories in one each: four events, one of them under both feeds."""
    directory.mkdir(parents=True, exist_ok=True)
    wire = _rss("Wire world", [
        ("Harbour bridge reopens after two years of repairs", SHARED_LINK, "w1",
         "Sun, 22 Nov 2026 06:00:00 +0000"),
        ("Central bank holds its rate at four percent", "https://wire.invalid/rates", "w2",
         "Sun, 22 Nov 2026 05:00:00 +0000"),
        ("Storm closes three mountain passes overnight", "https://wire.invalid/storm", "w3",
         "Sun, 22 Nov 2026 04:00:00 +0000"),
    ])  # fmt: skip
    paper = _rss("Paper front", [
        ("Harbour bridge reopens after two years of repairs", SHARED_LINK, "p1",
         "Sun, 22 Nov 2026 06:30:00 +0000"),
        ("Museum returns a stolen painting to its owners", "https://paper.invalid/museum", "p2",
         "Sun, 22 Nov 2026 03:00:00 +0000"),
    ])  # fmt: skip
    (directory / "wire.rss").write_text(wire, encoding="utf-8")
    (directory / "paper.rss").write_text(paper, encoding="utf-8")
    return (
        FeedSpec(name="Wire — world", group="world", path=directory / "wire.rss"),
        FeedSpec(name="Paper — front page", group="front", path=directory / "paper.rss"),
    )


_VOCABULARY = (
    "harbour council budget railway strike museum festival election river bridge storm "
    "school hospital airport tunnel market bank court minister mayor police fire flood "
    "drought harvest vineyard orchard factory mine port ferry island mountain valley lake "
    "forest glacier volcano earthquake satellite rocket telescope library archive theatre "
    "opera stadium marathon cyclist sailor pilot nurse doctor teacher student farmer baker "
    "union treaty summit border customs tariff pension salary rent housing tram metro bus "
    "motorway canal dam reservoir wind solar nuclear coal gas oil battery vaccine virus "
    "census survey poll verdict appeal prison parliament senate province village city"
)
_WORDS = tuple(_VOCABULARY.split())


def write_many_feeds(directory: Path, *, feeds: int = 12, items: int = 60) -> tuple[FeedSpec, ...]:
    """A larger fixture, made up but deterministic: `feeds` feeds in three groups, each
    with `items` stories of random words; about one story in four is also carried by one
    or two other feeds (the same link and text), as wire copy is."""
    rng = random.Random(20261122)
    directory.mkdir(parents=True, exist_ok=True)
    stories = [
        (" ".join(rng.sample(_WORDS, 8)).capitalize(), f"https://news.invalid/{n}",
         " ".join(rng.choice(_WORDS) for _ in range(60)) + ".")
        for n in range(feeds * items)
    ]  # fmt: skip
    carried: list[list[tuple[str, str, str]]] = [[] for _ in range(feeds)]
    for n, story in enumerate(stories):
        home = n % feeds
        carried[home].append(story)
        if rng.random() < 0.25:
            for other in rng.sample([f for f in range(feeds) if f != home], rng.randint(1, 2)):
                carried[other].append(story)
    specs = []
    for index, entries in enumerate(carried):
        dates = [
            (FIXTURE_NOW - timedelta(minutes=17 * n)).strftime("%a, %d %b %Y %H:%M:%S +0000")
            for n in range(len(entries))
        ]
        rows = "".join(
            f"<item><title>{title}</title><link>{link}</link><guid>{index}-{link}</guid>"
            f"<pubDate>{date}</pubDate><description>{text}</description></item>"
            for date, (title, link, text) in zip(dates, entries, strict=True)
        )
        path = directory / f"feed-{index:02d}.rss"
        path.write_text(
            '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
            f"<title>Outlet {index}</title><link>https://outlet{index}.invalid/</link>"
            f"<description>d</description>{rows}</channel></rss>",
            encoding="utf-8",
        )
        group = ("world", "nation", "city")[index % 3]
        specs.append(FeedSpec(name=f"Outlet {index:02d} — {group}", group=group, path=path))
    return tuple(specs)


def many_feed_database(directory: Path) -> Path:
    db = directory / "many.db"
    ingest(db, write_many_feeds(directory / "feeds"), now=FIXTURE_NOW)
    return db


def two_feed_database(directory: Path) -> Path:
    db = directory / "two.db"
    ingest(db, write_two_feeds(directory / "feeds"), now=FIXTURE_NOW)
    return db


def write_config(path: Path, users: Sequence[tuple[str, str]], groups: Sequence[str]) -> Path:
    """A config for `serve`: its groups (no feeds: serve reads the database) and users."""
    lines = ["groups:"] + [f"  {group}:\n    feeds: []" for group in groups]
    if users:
        lines.append("users:")
        for name, password in users:
            lines.append(f"  {name}:\n    password_hash: {hash_password(password, n=CHEAP_N)}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# -- `aggregator serve` as a process ------------------------------------------------------------


@contextmanager
def serve_process(config: Path, db: Path, *extra: str) -> Iterator[str]:
    """`python -m aggregator serve --port 0` on 127.0.0.1; yields its base URL."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [sys.executable, "-m", "aggregator", "serve", "--config", str(config), "--db", str(db),
         "--port", "0", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.search(r"on (http://127\.0\.0\.1:\d+)/", line)
        if match is None:
            process.kill()
            _, errors = process.communicate(timeout=10)
            raise AssertionError(f"serve did not start: {line!r} {errors!r}")
        yield match.group(1)
    finally:
        process.terminate()
        process.wait(timeout=10)


def aggregator_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "aggregator", *args], capture_output=True, text=True, env=env,
        cwd=REPO, timeout=120, check=False,
    )  # fmt: skip


def our_unread_count(db: Path) -> int:
    """What `aggregator digest --unread --since all --format json` counts."""
    result = aggregator_cli("digest", "--db", str(db), "--since", "all", "--unread",
                            "--format", "json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    return int(json.loads(result.stdout)["total"])


# -- newsboat -----------------------------------------------------------------------------------


@dataclass
class Newsboat:
    """newsboat 2.21 in FeedHQ mode against a server, with its own home, config and cache
    (nothing of the user's is read or written, nothing but the server is contacted)."""

    home: Path
    base_url: str
    user: str = USER
    password: str = PASSWORD

    def __post_init__(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.config = self.home / "config"
        self.urls = self.home / "urls"
        self.cache = self.home / "cache.db"
        self.log = self.home / "newsboat.log"
        self.urls.touch()
        self.config.write_text(
            'urls-source "feedhq"\n'
            f'feedhq-url "{self.base_url}"\n'
            f'feedhq-login "{self.user}"\n'
            f'feedhq-password "{self.password}"\n'
            # Every item of a feed, not newsboat's default 20 (it follows no continuation).
            "feedhq-min-items 1000\n"
            # Its special feeds are addresses at feedhq.org: never fetched here.
            "feedhq-show-special-feeds no\n"
            "reload-threads 2\n",
            encoding="utf-8",
        )

    @property
    def argv(self) -> list[str]:
        assert NEWSBOAT is not None
        return [NEWSBOAT, "-C", str(self.config), "-u", str(self.urls), "-c", str(self.cache),
                "-d", str(self.log), "-l", "6"]  # fmt: skip

    @property
    def env(self) -> dict[str, str]:
        return {
            "HOME": str(self.home), "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8", "TERM": "xterm", "XDG_CONFIG_HOME": str(self.home / ".config"),
            "XDG_DATA_HOME": str(self.home / ".local"), "http_proxy": "", "https_proxy": "",
        }  # fmt: skip

    def reload_and_count(self) -> int:
        """`newsboat -x reload print-unread`: its unread count after a reload."""
        result = subprocess.run(
            [*self.argv, "-x", "reload", "print-unread"], capture_output=True, text=True,
            env=self.env, timeout=300, check=False,
        )  # fmt: skip
        assert result.returncode == 0, (result.stdout, result.stderr)
        match = re.search(r"(\d+) unread articles", result.stdout)
        assert match is not None, result.stdout
        return int(match.group(1))

    def cached_items(self) -> dict[str, tuple[str, bool]]:
        """newsboat's cache: guid -> (feed URL, unread)."""
        import sqlite3

        connection = sqlite3.connect(self.cache)
        try:
            rows = connection.execute("select guid, feedurl, unread from rss_item").fetchall()
        finally:
            connection.close()
        return {str(guid): (str(feed), bool(unread)) for guid, feed, unread in rows}

    def cached_feeds(self) -> dict[str, str]:
        import sqlite3

        connection = sqlite3.connect(self.cache)
        try:
            rows = connection.execute("select rssurl, title from rss_feed").fetchall()
        finally:
            connection.close()
        return {str(url): str(title) for url, title in rows}

    def interactive(self, steps: Sequence[tuple[bytes, Callable[[bytes], bool]]]) -> None:
        """newsboat's own screens on a pseudo-terminal (80x24): it is started, its feed
        list awaited, then each step's keys typed and its condition (on what newsboat
        wrote since, or on what the server has seen) awaited, up to 30 s each."""
        pid, fd = pty.fork()
        if pid == 0:  # the child: newsboat, nothing else
            os.execve(self.argv[0], self.argv, self.env)
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        try:
            self._await(fd, lambda screen: b"Your feeds" in screen, "its feed list")
            for keys, condition in steps:
                os.write(fd, keys)
                self._await(fd, condition, repr(keys))
        finally:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            os.waitpid(pid, 0)
            os.close(fd)

    @staticmethod
    def _await(fd: int, condition: Callable[[bytes], bool], what: str) -> None:
        screen = b""
        deadline = time.monotonic() + 30
        while not condition(screen):
            assert time.monotonic() < deadline, f"newsboat: nothing came of {what}: {screen!r}"
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:
                with suppress(OSError):
                    screen += os.read(fd, 65536)


def on_screen(text: str) -> Callable[[bytes], bool]:
    return lambda screen: text.encode() in screen


def when(check: Callable[[], bool]) -> Callable[[bytes], bool]:
    return lambda _screen: check()


def atom_url(base_url: str, stream_id: str, n: int = 1000) -> str:
    """The address newsboat reads a subscription from."""
    return f"{base_url}/reader/atom/{quote(stream_id, safe='')}?n={n}"
