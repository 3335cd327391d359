"""`ReaderApi`: the Google Reader API requests of `aggregator serve` (the edge: HTTP in,
the store read or marked, JSON, text or Atom out). `web.WebApp` hands it every request
under /accounts/ClientLogin and /reader/.

    POST /accounts/ClientLogin                Email, Passwd -> SID/LSID/Auth lines
    GET  /reader/api/0/token                  an edit token (T) for the POSTs
    GET  /reader/api/0/user-info
    GET  /reader/api/0/tag/list               starred, and each config group as a label
    GET  /reader/api/0/subscription/list      the feeds, each in its group's label
    GET  /reader/api/0/unread-count           per feed, per label, and the reading list
    GET  /reader/api/0/stream/items/ids       s, n, xt, it, ot, nt, r, c -> item refs
    GET|POST /reader/api/0/stream/items/contents   i (repeated) -> items
    GET  /reader/api/0/stream/contents/<stream>    (or ?s=) -> items, with continuation
    GET  /reader/atom/<stream>                the same, as Atom (newsboat's FeedHQ mode)
    POST /reader/api/0/edit-tag               i, a, r: read, kept-unread, starred
    POST /reader/api/0/mark-all-as-read       s, ts
    POST /reader/api/0/subscription/edit, subscription/quickadd, rename-tag, disable-tag
                                              403: feeds and groups live in the YAML file

Every request but ClientLogin needs `Authorization: GoogleLogin auth=<token>` (else 401);
every POST that writes needs a valid `T` (else 401 with `X-Reader-Google-Bad-Token:
true`, which tells clients to fetch a new one). Bad input is a 4xx naming the parameter,
and nothing is written unless the whole request is understood.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs

from aggregator.errors import ApiError, StoreError, UsageError
from aggregator.greader.auth import Authenticator
from aggregator.greader.documents import (
    Site,
    atom_document,
    feed_stream_id,
    feed_url,
    items_document,
    site_url,
)
from aggregator.greader.ids import (
    LABEL_PREFIX,
    READING_LIST,
    STARRED,
    Position,
    State,
    Stream,
    decimal_item_id,
    issue_continuation,
    parse_item_id,
    parse_stream_id,
    stream_from_path,
    to_usec,
)
from aggregator.greader.passwords import PasswordHash, parse_hash
from aggregator.greader.streams import (
    MAX_IDS,
    MAX_ITEMS,
    StreamRequest,
    parse_stream_request,
    required_stream,
)
from aggregator.models import ApiUser, EventQuery, FeedState, Mark, ReadingState
from aggregator.numbers import ascii_int
from aggregator.render.common import FeedInfo, one_line
from aggregator.store import Store, from_db_time

log = logging.getLogger(__name__)

LOGIN_PATH = "/accounts/ClientLogin"
API_PREFIX = "/reader/api/0/"
ATOM_PREFIX = "/reader/atom/"
CONTENTS_PREFIX = API_PREFIX + "stream/contents/"

TEXT_TYPE = "text/plain; charset=utf-8"
JSON_TYPE = "application/json; charset=utf-8"
ATOM_TYPE = "application/atom+xml; charset=utf-8"
FORM_TYPE = "application/x-www-form-urlencoded"
# A POST of a page of ids and its few other fields. NetNewsWire may post every unread id
# of its n=10000 page to stream/items/contents at once; 10,000 ids fit in the 256 KiB body.
MAX_FIELDS = MAX_IDS + 20
SECRET_NAME = "greader"
MANAGED_IN_YAML = "feeds and groups are managed in the config file (feeds.yaml), not here"

_READ_ROUTES = frozenset(
    {"token", "user-info", "tag/list", "subscription/list", "unread-count", "stream/items/ids",
     "stream/contents"}
)  # fmt: skip
_WRITE_ROUTES = frozenset({"edit-tag", "mark-all-as-read"})
_REFUSED_ROUTES = frozenset(
    {"subscription/edit", "subscription/quickadd", "rename-tag", "disable-tag"}
)


def is_reader_path(path: str) -> bool:
    """Whether a request path belongs to this API."""
    return path == LOGIN_PATH or path.startswith(("/reader/api/0/", ATOM_PREFIX))


@dataclass(frozen=True, slots=True)
class Reply:
    """An answer: status, media type, body, extra headers."""

    status: int
    content_type: str
    body: bytes
    headers: tuple[tuple[str, str], ...] = field(default=())


def _text(text: str, status: int = HTTPStatus.OK) -> Reply:
    return Reply(status, TEXT_TYPE, text.encode("utf-8"))


def _json(document: Any) -> Reply:
    body = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return Reply(HTTPStatus.OK, JSON_TYPE, body)


def _bad(message: str) -> ApiError:
    return ApiError(HTTPStatus.BAD_REQUEST, message)


def user_id(name: str) -> str:
    """A stable numeric id for a user name (Google's ids were numbers)."""
    return str(int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:6], "big"))


@dataclass(frozen=True, slots=True)
class _Request:
    method: str
    path: str
    params: Mapping[str, list[str]]
    form: Mapping[str, list[str]]
    headers: Mapping[str, str]

    def all(self, name: str) -> list[str]:
        return [*self.params.get(name, []), *self.form.get(name, [])]

    def one(self, name: str) -> str | None:
        values = self.all(name)
        return values[-1] if values else None


class ReaderApi:
    """The API over one database. Holds no connection; `open_store` gives one a request."""

    def __init__(
        self, *, base_url: str, users: Sequence[ApiUser], clock: Callable[[], datetime],
        open_store: Callable[[], AbstractContextManager[Store]], images: bool = False,
    ) -> None:  # fmt: skip
        self.base_url = base_url.rstrip("/")
        self.clock = clock
        self.open_store = open_store
        self.images = images
        self.hashes: dict[str, PasswordHash] = {u.name: parse_hash(u.password_hash) for u in users}
        self._auth: Authenticator | None = None
        self._secret: bytes | None = None
        self._lock = threading.Lock()

    # -- entry point ---------------------------------------------------------------------

    def handle(
        self, method: str, path: str, query: str, headers: Mapping[str, str], body: bytes
    ) -> Reply:
        """Answer one request. Never raises."""
        try:
            return self._dispatch(method, path, query, headers, body)
        except ApiError as exc:
            reply = _text(exc.message + "\n", exc.status)
            return Reply(reply.status, reply.content_type, reply.body, exc.headers)
        except (UsageError, ValueError) as exc:
            return _text(f"{one_line(str(exc))[:300]}\n", HTTPStatus.BAD_REQUEST)
        except StoreError as exc:
            return _text(f"{exc}\n", HTTPStatus.SERVICE_UNAVAILABLE)
        except Exception:
            log.exception("internal error answering %s", one_line(path)[:200])
            return _text("internal error\n", HTTPStatus.INTERNAL_SERVER_ERROR)

    def _dispatch(
        self, method: str, path: str, query: str, headers: Mapping[str, str], body: bytes
    ) -> Reply:
        request = self._request(method, path, query, headers, body)
        if path == LOGIN_PATH:
            self._allow(method, ("POST",))
            return self._client_login(request)
        auth_token = self._authenticated(headers)
        if path.startswith(ATOM_PREFIX):
            self._allow(method, ("GET", "HEAD"))
            return self._atom(request, stream_from_path(path, ATOM_PREFIX))
        if path.startswith(CONTENTS_PREFIX):
            self._allow(method, ("GET", "HEAD"))
            return self._contents(request, stream_from_path(path, CONTENTS_PREFIX))
        route = path[len(API_PREFIX) :]
        if route == "stream/items/contents":
            self._allow(method, ("GET", "HEAD", "POST"))
            return self._items_contents(request)
        if route in _READ_ROUTES:
            self._allow(method, ("GET", "HEAD"))
            return self._read_route(route, request, auth_token)
        if route in _WRITE_ROUTES or route in _REFUSED_ROUTES:
            self._allow(method, ("POST",))
            self._check_edit_token(request, auth_token)
            if route in _REFUSED_ROUTES:
                raise ApiError(HTTPStatus.FORBIDDEN, MANAGED_IN_YAML)
            if route == "edit-tag":
                return self._edit_tag(request)
            return self._mark_all_read(request)
        raise ApiError(HTTPStatus.NOT_FOUND, f"no such API call: {one_line(route)[:80]}")

    def _read_route(self, route: str, request: _Request, auth_token: str) -> Reply:
        if route == "token":
            return _text(self._authenticator().edit_token(auth_token))
        if route == "user-info":
            return self._user_info(auth_token)
        if route == "tag/list":
            return self._tag_list()
        if route == "subscription/list":
            return self._subscription_list()
        if route == "unread-count":
            return self._unread_count()
        if route == "stream/items/ids":
            return self._item_ids(request)
        return self._contents(request, None)  # stream/contents?s=...

    # -- request checks ------------------------------------------------------------------

    @staticmethod
    def _allow(method: str, allowed: tuple[str, ...]) -> None:
        if method not in allowed:
            raise ApiError(
                HTTPStatus.METHOD_NOT_ALLOWED, f"only {', '.join(allowed)}",
                (("Allow", ", ".join(allowed)),),
            )  # fmt: skip

    @staticmethod
    def _request(
        method: str, path: str, query: str, headers: Mapping[str, str], body: bytes
    ) -> _Request:
        try:
            params = parse_qs(query, keep_blank_values=True, max_num_fields=MAX_FIELDS)
        except ValueError:
            raise _bad(f"at most {MAX_FIELDS} query parameters") from None
        form: dict[str, list[str]] = {}
        if method == "POST" and body:
            media_type = headers.get("content-type", "").split(";")[0].strip().lower()
            if media_type != FORM_TYPE:
                raise ApiError(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, f"a form ({FORM_TYPE}) only")
            try:
                text = body.decode("utf-8", errors="strict")
                form = parse_qs(text, keep_blank_values=True, max_num_fields=MAX_FIELDS)
            except UnicodeDecodeError:
                raise _bad("the form is not UTF-8") from None
            except ValueError:
                raise _bad(f"at most {MAX_FIELDS} form fields") from None
        return _Request(method, path, params, form, headers)

    def _authenticator(self) -> Authenticator:
        with self._lock:
            if self._auth is None:
                with self.open_store() as store:
                    secret = store.secret(SECRET_NAME)
                self._secret = secret
                self._auth = Authenticator(self.hashes, secret, self.clock)
            return self._auth

    def _key(self) -> bytes:
        self._authenticator()
        assert self._secret is not None
        return self._secret

    def _authenticated(self, headers: Mapping[str, str]) -> str:
        """The auth token of a request that has a valid one; else 401."""
        value = headers.get("authorization", "").strip()
        scheme, _, rest = value.partition(" ")
        token = rest.strip().removeprefix("auth=") if scheme.lower() == "googlelogin" else ""
        if not token or self._authenticator().user_of(token) is None:
            raise ApiError(
                HTTPStatus.UNAUTHORIZED, "Unauthorized: log in with /accounts/ClientLogin",
                (("WWW-Authenticate", 'GoogleLogin realm="aggregator"'),),
            )  # fmt: skip
        return token

    def _check_edit_token(self, request: _Request, auth_token: str) -> None:
        token = request.one("T") or ""
        if not self._authenticator().edit_token_valid(auth_token, token):
            raise ApiError(
                HTTPStatus.UNAUTHORIZED, "bad or missing edit token T (GET /reader/api/0/token)",
                (("X-Reader-Google-Bad-Token", "true"),),
            )  # fmt: skip

    # -- the pages, when served beyond loopback --------------------------------------------

    def page_refusal(self, headers: Mapping[str, str]) -> Reply | None:
        """None when the request carries HTTP Basic credentials of a user; else the 401
        (or 429 when locked out) that makes the browser ask for them."""
        scheme, _, value = headers.get("authorization", "").strip().partition(" ")
        result: bool | timedelta = False
        if scheme.lower() == "basic":
            try:
                user, _, password = (
                    base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
                )
            except (binascii.Error, UnicodeDecodeError):
                user, password = "", ""
            if user and password:
                result = self._authenticator().basic_login(user, password)
        if result is True:
            return None
        if isinstance(result, timedelta):
            seconds = str(max(1, int(result.total_seconds())))
            reply = _text("Too many failed logins: try again later\n", HTTPStatus.TOO_MANY_REQUESTS)
            return Reply(reply.status, reply.content_type, reply.body, (("Retry-After", seconds),))
        reply = _text("Log in (the API user and password)\n", HTTPStatus.UNAUTHORIZED)
        challenge = ("WWW-Authenticate", 'Basic realm="aggregator", charset="UTF-8"')
        return Reply(reply.status, reply.content_type, reply.body, (challenge,))

    # -- login ---------------------------------------------------------------------------

    def _client_login(self, request: _Request) -> Reply:
        # Credentials are read from the body only: a query string ends up in logs.
        email = request.form.get("Email", [""])[-1]
        password = request.form.get("Passwd", [""])[-1]
        if not email or not password:
            raise _bad("Email and Passwd are required (in the POST body)")
        login = self._authenticator().login(email, password)
        if login.locked_for is not None:
            seconds = max(1, int(login.locked_for.total_seconds()))
            raise ApiError(
                HTTPStatus.TOO_MANY_REQUESTS, "Error=TooManyFailedLogins",
                (("Retry-After", str(seconds)),),
            )  # fmt: skip
        if login.token is None:
            log.warning("failed API login for %r", one_line(email)[:60])
            raise ApiError(HTTPStatus.UNAUTHORIZED, "Error=BadAuthentication")
        token = login.token
        return _text(f"SID={token}\nLSID={token}\nAuth={token}\n")

    # -- reading -------------------------------------------------------------------------

    def _user_info(self, auth_token: str) -> Reply:
        user = self._authenticator().user_of(auth_token) or ""
        uid = user_id(user)
        return _json(
            {"userId": uid, "userName": user, "userProfileId": uid,
             "userEmail": user if "@" in user else "", "isBloggerUser": False,
             "signupTimeSec": 0, "isMultiLoginEnabled": False}
        )  # fmt: skip

    def _tag_list(self) -> Reply:
        with self.open_store() as store:
            groups = store.group_names()
        tags: list[dict[str, str]] = [{"id": STARRED}]
        tags += [{"id": LABEL_PREFIX + group, "type": "folder"} for group in groups]
        return _json({"tags": tags})

    @staticmethod
    def _listed(states: Sequence[FeedState]) -> list[FeedState]:
        """The feeds a client sees: the enabled ones, and any other that still has items
        (a feed removed from the YAML keeps its stories in the digest)."""
        return [state for state in states if state.enabled or state.entry_count]

    def _subscription_list(self) -> Reply:
        with self.open_store() as store:
            states = self._listed(store.feed_states())
        subscriptions = [
            {
                "id": feed_stream_id(state.id),
                "title": one_line(state.name),
                "categories": [
                    {"id": LABEL_PREFIX + one_line(state.group), "label": one_line(state.group)}
                ],
                "url": feed_url(state),
                "htmlUrl": site_url(state),
                "iconUrl": "",
                "firstitemmsec": "0",
                "sortid": f"{state.id:08X}",
            }
            for state in states
        ]
        return _json({"subscriptions": subscriptions})

    def _unread_count(self) -> Reply:
        with self.open_store() as store:
            listed = {state.id for state in self._listed(store.feed_states())}
            by_feed = store.unread_by_feed()
            by_group = store.unread_by_group()
            total = store.count_events(EventQuery(state=ReadingState.UNREAD))
            newest = store.stream_event_ids(read=False, limit=1)
        counts: list[dict[str, Any]] = []

        def add(stream_id: str, count: int, newest_time: datetime | None) -> None:
            usec = to_usec(newest_time) if newest_time is not None else 0
            counts.append({"id": stream_id, "count": count, "newestItemTimestampUsec": str(usec)})

        for feed_id, (count, when) in sorted(by_feed.items()):
            if feed_id in listed:
                add(feed_stream_id(feed_id), count, when)
        for group, (count, when) in sorted(by_group.items()):
            add(LABEL_PREFIX + one_line(group), count, when)
        add(READING_LIST, total, from_db_time(newest[0][1]) if newest else None)
        # `max`: the largest count reported (Google capped counts there; these are not).
        return _json({"max": max(total, MAX_ITEMS), "unreadcounts": counts})

    def _scope(self, store: Store, stream: Stream) -> dict[str, Any]:
        """The store filter of a stream, and its title; 404 for a stream that is not."""
        if stream.feed is not None:
            states = self._listed(store.feed_states())
            text = stream.feed
            number = ascii_int(text, cap=2**63 - 1, max_chars=18)
            found = next(
                (s for s in states if s.id == number or text in (s.location, s.effective_url)),
                None,
            )
            if found is None:
                raise ApiError(HTTPStatus.NOT_FOUND, f"no such feed: {one_line(text)[:80]!r}")
            return {"feed_ids": [found.id], "title": one_line(found.name)}
        if stream.label is not None:
            if stream.label not in store.group_names():
                raise ApiError(
                    HTTPStatus.NOT_FOUND, f"no such label: {one_line(stream.label)[:80]!r}"
                )
            return {"groups": [stream.label], "title": stream.label}
        assert stream.state is not None
        return {"title": stream.state.value}

    def _page(
        self, request: _Request, stream_id: str | None, *, cap: int = MAX_ITEMS
    ) -> StreamRequest:
        params = {**request.params, **request.form}
        try:
            return parse_stream_request(params, stream_id, self._key(), cap=cap)
        except ValueError as exc:
            raise _bad(str(exc)) from None

    def _events_page(
        self, store: Store, page: StreamRequest
    ) -> tuple[list[tuple[int, str]], str | None, str]:
        """The ids of a page (with their first arrival), its continuation, its title."""
        scope = self._scope(store, page.stream)
        title = scope.pop("title")
        if page.empty:
            return [], None, title
        after = (page.after.time, page.after.event_id) if page.after else None
        rows = store.stream_event_ids(
            **scope, read=page.read, starred=page.starred, first_seen_from=page.since,
            first_seen_until=page.until, after=after, oldest_first=page.oldest_first,
            limit=page.limit + 1,
        )  # fmt: skip
        continuation = None
        if len(rows) > page.limit:
            rows = rows[: page.limit]
            continuation = issue_continuation(Position(rows[-1][1], rows[-1][0]), self._key())
        return rows, continuation, title

    def _site(self, store: Store, self_path: str) -> Site:
        feeds = {state.id: state for state in store.feed_states()}
        return Site(FeedInfo(self.base_url, self_path), feeds, images=self.images)

    def _item_ids(self, request: _Request) -> Reply:
        page = self._page(request, None, cap=MAX_IDS)
        with self.open_store() as store:
            rows, continuation, _title = self._events_page(store, page)
        refs = [
            {"id": decimal_item_id(event_id), "directStreamIds": [],
             "timestampUsec": str(to_usec(_time(first_seen)))}
            for event_id, first_seen in rows
        ]  # fmt: skip
        document: dict[str, Any] = {"itemRefs": refs}
        if continuation:
            document["continuation"] = continuation
        return _json(document)

    def _contents(self, request: _Request, stream_id: str | None) -> Reply:
        page = self._page(request, stream_id)
        with self.open_store() as store:
            rows, continuation, title = self._events_page(store, page)
            events = store.events_by_id([event_id for event_id, _ in rows])
            site = self._site(store, request.path)
        document = items_document(page.stream.id, title, events, site, self.clock(), continuation)
        return _json(document)

    def _atom(self, request: _Request, stream_id: str) -> Reply:
        page = self._page(request, stream_id)
        with self.open_store() as store:
            rows, continuation, title = self._events_page(store, page)
            events = store.events_by_id([event_id for event_id, _ in rows])
            site = self._site(store, request.path)
        body = atom_document(page.stream.id, title, events, site, continuation)
        return Reply(HTTPStatus.OK, ATOM_TYPE, body)

    def _item_ids_asked(self, request: _Request) -> list[int]:
        values = request.all("i")
        if not values:
            raise _bad("i: at least one item id")
        if len(values) > MAX_IDS:
            raise _bad(f"i: at most {MAX_IDS} item ids")
        ids = []
        for value in values:
            event_id = parse_item_id(value)
            if event_id is None:
                raise _bad(f"i: {one_line(value)[:60]!r} is not an item id")
            ids.append(event_id)
        return list(dict.fromkeys(ids))

    def _items_contents(self, request: _Request) -> Reply:
        asked = self._item_ids_asked(request)
        with self.open_store() as store:
            current = _current_ids(store, asked)
            events = store.events_by_id(list(dict.fromkeys(current.values())))
            site = self._site(store, request.path)
        document = items_document(READING_LIST, "reading-list", events, site, self.clock())
        return _json(document)

    # -- writing -------------------------------------------------------------------------

    def _edit_tag(self, request: _Request) -> Reply:
        mark = edit_tag_mark(request.all("a"), request.all("r"))
        asked = self._item_ids_asked(request)
        with self.open_store() as store:
            current = set(_current_ids(store, asked).values())
            if not current:
                raise ApiError(HTTPStatus.NOT_FOUND, "no such item (pruned?)")
            with store.transaction():
                store.mark_events(current, mark, now=self.clock())
        return _text("OK")

    def _mark_all_read(self, request: _Request) -> Reply:
        try:
            stream = required_stream(request.one("s"))
        except ValueError as exc:
            raise _bad(str(exc)) from None
        until = None
        if stamp := (request.one("ts") or "").strip():
            usec = ascii_int(stamp, cap=10**17)
            if usec is None or usec >= 10**17:
                raise _bad("ts: a time in microseconds since 1970")
            until = datetime.fromtimestamp(0, UTC) + timedelta(microseconds=usec + 1)
        with self.open_store() as store:
            scope = self._scope(store, stream)
            scope.pop("title")
            starred = True if stream.state is State.STARRED else None
            rows = store.stream_event_ids(
                **scope, read=False, starred=starred, first_seen_until=until
            )
            if rows:
                with store.transaction():
                    store.mark_events([event_id for event_id, _ in rows], Mark(read=True),
                                      now=self.clock())  # fmt: skip
        return _text("OK")


def edit_tag_mark(added: Sequence[str], removed: Sequence[str]) -> Mark:
    """The mark an edit-tag asks for (pure); ValueError for a tag this server does not
    keep, or for a request that contradicts itself."""
    read: bool | None = None
    starred: bool | None = None
    if not added and not removed:
        raise ValueError("a, r: at least one tag to add or remove")
    for tags, adding in ((added, True), (removed, False)):
        for tag in tags:
            try:
                stream = parse_stream_id(tag)
            except ValueError as exc:
                raise ValueError(f"{'a' if adding else 'r'}: {exc}") from None
            if stream.label is not None:
                raise ValueError(
                    f"{tag[:80]!r}: labels are the config's groups; " + MANAGED_IN_YAML
                )
            if stream.state is State.TRACKING_KEPT_UNREAD or (
                stream.state is State.KEPT_UNREAD and not adding
            ):
                continue  # implied by read and unread
            if stream.state is State.READ or stream.state is State.KEPT_UNREAD:
                value = adding if stream.state is State.READ else not adding
                if read is not None and read != value:
                    raise ValueError("a, r: both read and unread asked")
                read = value
            elif stream.state is State.STARRED:
                if starred is not None and starred != adding:
                    raise ValueError("a, r: both starred and not starred asked")
                starred = adding
            else:
                raise ValueError(f"{tag[:80]!r} cannot be added to or removed from an item")
    if read is None and starred is None:
        return Mark()
    return Mark(read=read, starred=starred)


def _current_ids(store: Store, asked: Sequence[int]) -> dict[int, int]:
    """Each asked id that names an event now -> that event (merges followed)."""
    found = {}
    for event_id in asked:
        current = store.current_event_id(event_id)
        if current is not None:
            found[event_id] = current
    return found


def _time(text: str) -> datetime:
    value = from_db_time(text)
    assert value is not None
    return value
