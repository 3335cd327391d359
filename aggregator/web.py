"""The local web page and feeds (thin): a request in, the store read, a renderer called.

Routes (GET and HEAD; POST on /mark only):

    /                  the digest page (?since=12h|all, ?date=2023-07-28, ?group=..., ?q=...,
                       ?limit=N, ?show=unread|all|starred, unread by default); /search is
                       the same page, searching everything by default
    /mark              POST form: action=read|unread|star|unstar, event=ID (repeatable),
                       upto=ID (only the events listed up to it), back=/path, csrf=token;
                       answers 303 to `back`
    /event/<id>        one event: the canonical item and why its members are grouped
    /feeds             every feed with its state
    /feed.atom         Atom 1.0, one entry per event (the latest FEED_SIZE; ?group, ?q)
    /feed.json         JSON Feed 1.1, the same entries
    /api/events        the digest as JSON (same shape as `digest --format json`)
    /api/events/<id>   one event as JSON
    /style.css         the stylesheet
    /accounts/ClientLogin, /reader/...   the Google Reader API (aggregator.greader), for
                       the config's `users:`; when the server listens beyond loopback and
                       has users, every page asks for one of them too (HTTP Basic)

Every response carries a strict Content-Security-Policy (no script may run, nothing loads
but our stylesheet), `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer`
and refuses framing. Every 200 carries an ETag of its body, and a matching If-None-Match
gets a 304: the feed documents are deterministic for the same events, so a feed reader
polling an unchanged digest downloads nothing.

When the server listens on a loopback address it answers only requests whose Host header
names it (127.0.0.1, localhost, [::1] or the --base-url host): a web page elsewhere cannot
point a DNS name at 127.0.0.1 and read the digest through the reader's browser.

A POST must carry the page's anti-forgery token (random per server process, compared in
constant time) and, when the browser sends them, an Origin of this server (or `null`, as
browsers send under no-referrer) and a Sec-Fetch-Site that is not cross-site. Marks are
one short transaction beside the daemon's.

Each request opens its own store connection (SQLite connections are not shared between
the server's threads); WAL lets the daemon write meanwhile.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import re
import secrets
import signal
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from urllib.parse import parse_qs, urlencode, urlsplit

from aggregator import __version__
from aggregator.clock import utc_now
from aggregator.digest import Digest, build_digest, make_query, parse_window
from aggregator.errors import StoreError, UsageError
from aggregator.greader.api import ReaderApi, is_reader_path
from aggregator.models import MARKS, ApiUser, EventQuery, EventView, ReadingState
from aggregator.numbers import ascii_int
from aggregator.render.common import FeedInfo, one_line
from aggregator.render.feeds import FEED_LINKS, FEED_ROUTES, FeedFormat
from aggregator.render.html import (
    MARK_PATH,
    SHOW_CHOICES,
    STYLESHEET_PATH,
    Filters,
    Site,
    content_security_policy,
    render_digest_page,
    render_error_page,
    render_event_page,
    render_feeds_page,
)
from aggregator.render.json import dumps, event_to_dict, render_json
from aggregator.render.style import STYLESHEET
from aggregator.store import Store, open_store

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
# Entries in /feed.atom and /feed.json: the latest events, as most feeds carry tens of
# entries; a reader polling every hour sees every event unless more than this arrive.
FEED_SIZE = 50
# Events on one digest page unless ?limit= says otherwise: a long day stays one page.
PAGE_LIMIT = 200
MAX_LIMIT = 5_000
MAX_SEARCH_CHARS = 200  # longer is not a search, and FTS5 work grows with the words
MAX_PARAMS = 50  # query parameters per request; a page uses a handful
# A mark form lists at most the events of a page, each id in about 25 bytes.
MAX_FORM_BYTES = 256 * 1024
MAX_FORM_FIELDS = MAX_LIMIT + 10
MAX_EVENT_ID = 2**63 - 1  # SQLite's largest integer
# An idle keep-alive connection is closed after this long, freeing its thread.
CONNECTION_TIMEOUT_S = 30

HTML_TYPE = "text/html; charset=utf-8"
JSON_TYPE = "application/json; charset=utf-8"
_EVENT_PATH = re.compile(r"/event/(\d{1,18})")
_API_EVENT_PATH = re.compile(r"/api/events/(\d{1,18})")


@dataclass(frozen=True, slots=True)
class Response:
    """What the app answers: status, headers (without Content-Length), body."""

    status: int
    content_type: str
    body: bytes
    headers: tuple[tuple[str, str], ...] = field(default=())


def loopback_hosts(host: str, port: int, base_url: str | None = None) -> frozenset[str] | None:
    """The Host header values accepted when listening on a loopback address, else None
    (no check: the user chose to serve a network)."""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        return None
    names = {"127.0.0.1", "localhost", "[::1]", host}
    allowed = {f"{name}:{port}" for name in names}
    if port == 80:
        allowed |= names
    if base_url:
        allowed.add(urlsplit(base_url).netloc.lower())
    return frozenset(allowed)


def etag_of(body: bytes) -> str:
    """A strong validator: the body's hash (the same bytes always give the same tag)."""
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def etag_matches(if_none_match: str, etag: str) -> bool:
    """RFC 9110 weak comparison against a list of tags, or `*`."""
    if if_none_match.strip() == "*":
        return True
    wanted = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == wanted for tag in if_none_match.split(","))


class WebApp:
    """Routes a request to the store and a renderer. Holds no connection between requests."""

    def __init__(
        self,
        db_path: Path | str,
        *,
        base_url: str,
        clock: Callable[[], datetime] = utc_now,
        group_order: Sequence[str] = (),
        images: bool = False,
        allowed_hosts: frozenset[str] | None = None,
        feed_size: int = FEED_SIZE,
        users: Sequence[ApiUser] = (),
        password_file: Path | None = None,
    ) -> None:
        self.db_path = db_path  # a SQLite path or a PostgreSQL URL
        self.password_file = password_file
        self.base_url = base_url.rstrip("/")
        self.clock = clock
        self.group_order = tuple(group_order)
        self.allowed_hosts = allowed_hosts
        self.feed_size = feed_size
        self.policy = content_security_policy(images=images)
        self.csrf_token = secrets.token_urlsafe(24)
        self.site = Site(
            standalone=False, images=images, feeds=FEED_LINKS, csrf_token=self.csrf_token
        )
        # Served beyond loopback (no Host check) with API users: the pages ask for one of
        # them too (HTTP Basic), or they would be the one open door.
        self.pages_need_login = allowed_hosts is None and bool(users)
        # The Google Reader API (/accounts/ClientLogin, /reader/...): aggregator.greader.
        self.reader = ReaderApi(
            base_url=self.base_url, users=users, clock=clock, open_store=self._store,
            images=images,
        )  # fmt: skip

    # -- entry point ---------------------------------------------------------------------

    def handle(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes = b""
    ) -> Response:
        """Answer one request. `headers` has lower-cased names. Never raises."""
        try:
            response = self._dispatch(method, target, headers, body)
        except UsageError as exc:
            response = self._error(HTTPStatus.BAD_REQUEST, str(exc))
        except StoreError as exc:
            response = self._error(HTTPStatus.SERVICE_UNAVAILABLE, str(exc))
        except Exception:
            log.exception("internal error answering %s", one_line(target)[:200])
            response = self._error(HTTPStatus.INTERNAL_SERVER_ERROR, "internal error")
        return self._finish(response, method, headers)

    def _dispatch(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes
    ) -> Response:
        if self.allowed_hosts is not None:
            host = headers.get("host", "").strip().lower()
            if host not in self.allowed_hosts:
                return self._error(HTTPStatus.MISDIRECTED_REQUEST, "unexpected Host header")
        if target.startswith("//") and is_reader_path("/" + target.lstrip("/").split("?")[0]):
            target = "/" + target.lstrip("/")  # newsboat's feedhq-url with a trailing slash
        parts = urlsplit(target)
        path = parts.path
        if is_reader_path(path):
            reply = self.reader.handle(method, path, parts.query, headers, body)
            return Response(reply.status, reply.content_type, reply.body, reply.headers)
        if self.pages_need_login and (refusal := self.reader.page_refusal(headers)):
            return Response(refusal.status, refusal.content_type, refusal.body, refusal.headers)
        allowed = ("POST",) if path == MARK_PATH else ("GET", "HEAD")
        if method not in allowed:
            allow = ", ".join(allowed)
            error = self._error(HTTPStatus.METHOD_NOT_ALLOWED, f"only {allow}")
            return Response(error.status, error.content_type, error.body, (("Allow", allow),))
        if path == MARK_PATH:
            return self._mark(headers, body)
        try:
            params = parse_qs(parts.query, keep_blank_values=False, max_num_fields=MAX_PARAMS)
        except ValueError as exc:  # more fields than MAX_PARAMS
            raise UsageError(str(exc)) from exc
        if path in ("/", "/search"):
            return self._digest_page(params)
        if path == "/feeds":
            return self._feeds_page()
        if feed := FEED_ROUTES.get(path):
            return self._feed(params, feed)
        if path == "/api/events":
            return self._api_events(params)
        if path == STYLESHEET_PATH:
            return Response(HTTPStatus.OK, "text/css; charset=utf-8", STYLESHEET.encode())
        if match := _EVENT_PATH.fullmatch(path):
            return self._event_page(int(match.group(1)))
        if match := _API_EVENT_PATH.fullmatch(path):
            return self._api_event(int(match.group(1)))
        return self._error(HTTPStatus.NOT_FOUND, "no such page")

    def _finish(self, response: Response, method: str, headers: Mapping[str, str]) -> Response:
        """Security headers on everything; ETag and 304 on every 200."""
        extra = [
            ("Content-Security-Policy", self.policy),
            ("X-Content-Type-Options", "nosniff"),
            ("Referrer-Policy", "no-referrer"),
            ("X-Frame-Options", "DENY"),
            ("Cross-Origin-Resource-Policy", "same-origin"),
            ("Cache-Control", "no-cache"),
        ]
        if response.status == HTTPStatus.OK:
            etag = etag_of(response.body)
            extra.append(("ETag", etag))
            if_none_match = headers.get("if-none-match")
            if method in ("GET", "HEAD") and if_none_match and etag_matches(if_none_match, etag):
                return Response(
                    HTTPStatus.NOT_MODIFIED, response.content_type, b"", (*response.headers, *extra)
                )
        return Response(
            response.status, response.content_type, response.body, (*response.headers, *extra)
        )

    # -- reading ----------------------------------------------------------------------------

    @contextmanager
    def _store(self) -> Iterator[Store]:
        """The database for one request, closed when it is answered."""
        store = open_store(self.db_path, create=False, password_file=self.password_file)
        try:
            yield store
        finally:
            store.close()

    def _event(self, event_id: int) -> EventView | None:
        with self._store() as store:
            events = store.events_by_id([event_id])
        return events[0] if events else None

    def _digest(self, filters: Filters, *, count_unread: bool = False) -> tuple[Digest, int | None]:
        """The digest asked for and, with `count_unread`, how many events of its window and
        filters are unread (the page shows it; the API does not)."""
        now = self.clock()
        query = self._query(filters, now)
        unread: int | None = None
        with self._store() as store:
            events = store.find_events(query)
            known = store.group_names()
            if count_unread:
                unread = (
                    len(events)
                    if query.state is ReadingState.UNREAD
                    else store.count_events(replace(query, state=ReadingState.UNREAD))
                )
        digest = build_digest(
            events, now=now, query=query, limit=filters.limit, group_order=self.group_order,
            known_groups=known,
        )  # fmt: skip
        return digest, unread

    def _query(self, filters: Filters, now: datetime) -> EventQuery:
        try:
            window = parse_window(filters.since, filters.date)
        except ValueError as exc:
            raise UsageError(str(exc)) from exc
        show = filters.show or SHOW_CHOICES[0]
        state = None if show == "all" else ReadingState(show)
        return make_query(
            now=now, window=window, groups=filters.groups, search=filters.search, state=state
        )

    @staticmethod
    def _filters(params: Mapping[str, list[str]], *, default_limit: int | None) -> Filters:
        def one(name: str) -> str | None:
            values = params.get(name)
            return values[-1].strip() if values else None

        search = one("q")
        if search and len(search) > MAX_SEARCH_CHARS:
            raise UsageError(f"q: at most {MAX_SEARCH_CHARS} characters")
        limit_text = one("limit")
        limit = default_limit
        if limit_text:
            if not limit_text.isdigit() or not 1 <= int(limit_text) <= MAX_LIMIT:
                raise UsageError(f"limit: a whole number from 1 to {MAX_LIMIT}")
            limit = int(limit_text)
        groups = tuple(g.strip() for g in params.get("group", []) if g.strip())
        show = one("show") or None
        if show is not None and show not in SHOW_CHOICES:
            raise UsageError(f"show: one of {', '.join(SHOW_CHOICES)}")
        return Filters(
            since=one("since") or None, date=one("date") or None, groups=groups,
            search=search or None, limit=limit, show=None if show == SHOW_CHOICES[0] else show,
        )  # fmt: skip

    # -- pages -----------------------------------------------------------------------------

    def _digest_page(self, params: Mapping[str, list[str]]) -> Response:
        filters = self._filters(params, default_limit=PAGE_LIMIT)
        digest, unread = self._digest(filters, count_unread=True)
        page = render_digest_page(digest, site=self.site, filters=filters, unread=unread)
        return Response(HTTPStatus.OK, HTML_TYPE, page.encode("utf-8"))

    def _event_page(self, event_id: int) -> Response:
        event = self._event(event_id)
        if event is None:
            return self._error(HTTPStatus.NOT_FOUND, f"no event {event_id}")
        page = render_event_page(event, site=self.site)
        return Response(HTTPStatus.OK, HTML_TYPE, page.encode("utf-8"))

    def _feeds_page(self) -> Response:
        with self._store() as store:
            states = store.feed_states()
        page = render_feeds_page(states, site=self.site, now=self.clock())
        return Response(HTTPStatus.OK, HTML_TYPE, page.encode("utf-8"))

    def _feed(self, params: Mapping[str, list[str]], feed: FeedFormat) -> Response:
        """The latest events as a feed; ?group= and ?q= narrow it, as on the page."""
        filters = self._filters(params, default_limit=None)
        query = EventQuery(groups=filters.groups, search=filters.search)
        with self._store() as store:
            events = store.find_events(query, latest=filters.limit or self.feed_size)
        # The self link is rebuilt from what was understood, never echoed from the request.
        kept = [("group", group) for group in filters.groups]
        kept += [("q", filters.search)] if filters.search else []
        self_path = feed.link.route + (f"?{urlencode(kept)}" if kept else "")
        info = FeedInfo(base_url=self.base_url, self_path=self_path)
        body = feed.write(events, info, self.clock())
        return Response(HTTPStatus.OK, feed.content_type, body)

    def _api_events(self, params: Mapping[str, list[str]]) -> Response:
        filters = self._filters(params, default_limit=None)
        body = render_json(self._digest(filters)[0]).encode("utf-8")
        return Response(HTTPStatus.OK, JSON_TYPE, body)

    def _api_event(self, event_id: int) -> Response:
        event = self._event(event_id)
        if event is None:
            body = dumps({"error": f"no event {event_id}"}).encode("utf-8")
            return Response(HTTPStatus.NOT_FOUND, JSON_TYPE, body)
        return Response(HTTPStatus.OK, JSON_TYPE, dumps(event_to_dict(event)).encode("utf-8"))

    # -- writing ---------------------------------------------------------------------------

    def _mark(self, headers: Mapping[str, str], body: bytes) -> Response:
        """A mark form: checked, applied in one transaction, answered with 303 to `back`."""
        if not self._same_origin(headers):
            return self._error(HTTPStatus.FORBIDDEN, "a form from another site")
        if headers.get("content-type", "").split(";")[0].strip().lower() != (
            "application/x-www-form-urlencoded"
        ):
            return self._error(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "a form (urlencoded) only")
        try:
            form = parse_qs(
                body.decode("utf-8", errors="strict"), max_num_fields=MAX_FORM_FIELDS,
                strict_parsing=False,
            )  # fmt: skip
        except (UnicodeDecodeError, ValueError) as exc:
            raise UsageError(f"a form that cannot be read: {exc}") from exc
        token = (form.get("csrf") or [""])[-1]
        if not hmac.compare_digest(token.encode(), self.csrf_token.encode()):
            return self._error(
                HTTPStatus.FORBIDDEN, "the page is out of date (reload it and try again)"
            )
        action = (form.get("action") or [""])[-1]
        mark = MARKS.get(action)
        if mark is None:
            raise UsageError(f"action: one of {', '.join(MARKS)}")
        ids = [_event_id(value) for value in form.get("event", [])]
        if not ids:
            raise UsageError("event: at least one event id")
        if upto_values := form.get("upto"):
            upto = _event_id(upto_values[-1])
            if upto not in ids:
                raise UsageError(f"upto: event {upto} is not on the page")
            ids = ids[: ids.index(upto) + 1]
        with self._store() as store:
            current = {found for i in ids if (found := store.current_event_id(i)) is not None}
            if not current:
                return self._error(HTTPStatus.NOT_FOUND, "no such event (pruned?)")
            with store.transaction():
                store.mark_events(current, mark, now=self.clock())
        back = _local_path((form.get("back") or ["/"])[-1])
        page = render_error_page(303, "See Other", site=self.site)
        return Response(HTTPStatus.SEE_OTHER, HTML_TYPE, page.encode(), (("Location", back),))

    def _same_origin(self, headers: Mapping[str, str]) -> bool:
        """What the browser says of the form's origin agrees with this server (a header it
        does not send is not held against the request: the token still has to match)."""
        if headers.get("sec-fetch-site", "same-origin").strip().lower() == "cross-site":
            return False
        origin = headers.get("origin")
        # `null` is what a browser sends under our `Referrer-Policy: no-referrer`.
        if origin is None or origin.strip() == "null":
            return True
        netloc = urlsplit(origin.strip()).netloc.lower()
        if self.allowed_hosts is not None:
            return netloc in self.allowed_hosts
        return netloc in {headers.get("host", "").strip().lower(), urlsplit(self.base_url).netloc}

    def _error(self, status: HTTPStatus, message: str) -> Response:
        page = render_error_page(int(status), f"{status.phrase}: {message}", site=self.site)
        return Response(int(status), HTML_TYPE, page.encode("utf-8"))


def _event_id(value: str) -> int:
    event_id = ascii_int(value.strip(), cap=MAX_EVENT_ID, max_chars=18)
    if event_id is None:
        raise UsageError(f"event: {one_line(value)[:40]!r} is not an event id")
    return event_id


def _local_path(value: str) -> str:
    """Where to go after a mark: a path on this server, never another site (`//host`,
    a scheme, a backslash or a control character fall back to the digest)."""
    if (
        not value.startswith("/")
        or value.startswith("//")
        or "\\" in value
        or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value)
        or len(value) > 2000
    ):
        return "/"
    return value


# -- HTTP ---------------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    """Adapts http.server to WebApp.handle; nothing else."""

    server: WebServer
    protocol_version = "HTTP/1.1"  # keep-alive: every response has a Content-Length
    timeout = CONNECTION_TIMEOUT_S

    def version_string(self) -> str:
        return f"aggregator/{__version__}"  # not the Python version: nobody needs to know

    def _answer(self) -> None:
        headers = {name.lower(): value for name, value in self.headers.items()}
        body = b""
        if self.command == "POST":
            length = ascii_int(headers.get("content-length", "").strip(), cap=MAX_FORM_BYTES + 1)
            if length is None:
                self._refuse(HTTPStatus.LENGTH_REQUIRED)
                return
            if length > MAX_FORM_BYTES:
                self._refuse(HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
                return
            body = self.rfile.read(length)
        response = self.server.app.handle(self.command, self.path, headers, body)
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        for name, value in response.headers:
            self.send_header(name, value)
        bodiless = self.command == "HEAD" or response.status in (204, 304)
        if response.status != HTTPStatus.NOT_MODIFIED:
            self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if not bodiless:
            self.wfile.write(response.body)

    def _refuse(self, status: HTTPStatus) -> None:
        """A body we will not read: answered, and the connection closed (its bytes unread)."""
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _answer

    def log_message(self, format: str, *args: object) -> None:
        # The request line is client text: logged through one_line (no terminal escapes).
        log.info("%s %s", self.address_string(), one_line(format % args)[:300])


class WebServer(ThreadingHTTPServer):
    """A threading HTTP server bound to one WebApp.

    `make_app` receives the port actually bound (port 0 picks a free one), which the app
    needs for its absolute links and its Host check.
    """

    daemon_threads = True  # a slow client never keeps the process alive at exit

    def __init__(self, address: tuple[str, int], make_app: Callable[[int], WebApp]) -> None:
        super().__init__(address, _Handler)
        self.app = make_app(self.port)

    @property
    def port(self) -> int:
        return int(self.server_address[1])


def serve_until_stopped(server: WebServer) -> None:
    """Serve until Ctrl-C or SIGTERM, then close the socket."""

    def stop(signum: int, frame: FrameType | None) -> None:
        # shutdown() waits for serve_forever() to return, so it runs in another thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        server.serve_forever(poll_interval=0.25)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.server_close()
