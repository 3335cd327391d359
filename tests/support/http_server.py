"""A real HTTP server on 127.0.0.1 for integration tests: routes, recorded requests, trickling.

Usage::

    with LocalHTTPServer() as server:
        server.serve_bytes("/feed.xml", body, content_type="application/rss+xml", etag='"v1"')
        server.route("/slow", lambda req: Response(body=trickle(b"<rss/>", interval=0.2)))
        url = server.url("/feed.xml")
        ...
        assert server.requests_for("/feed.xml")[0].headers["if-none-match"] == '"v1"'

or through the `http_server` pytest fixture (import it into a conftest.py or test module).

A handler receives a `Request` and returns a `Response` (status, headers, body). The body is
bytes, or a callable that writes to the socket itself (streaming, trickling); a callable body
without a Content-Length header is sent close-delimited, or chunked with `chunked=True`.
A handler that returns None has written the whole raw response itself to `request.wfile`
(for malformed or trickled status lines and headers).

Nothing here ever listens on anything but 127.0.0.1.
"""

from __future__ import annotations

import email.utils
import gzip as gzip_module
import http.server
import socket
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import BinaryIO

import pytest

__all__ = [
    "BodyWriter",
    "LocalHTTPServer",
    "Request",
    "Response",
    "http_server",
    "trickle",
    "unused_port",
]

BodyWriter = Callable[["Stream"], None]


@dataclass(frozen=True)
class Request:
    """One request as the server received it. `headers` has lower-cased names."""

    method: str
    path: str  # the request target as sent (path and query)
    headers: Mapping[str, str]
    body: bytes = b""
    wfile: BinaryIO | None = field(default=None, repr=False, compare=False)
    stopping: threading.Event = field(default_factory=threading.Event, repr=False, compare=False)

    @property
    def route_path(self) -> str:
        """The path without the query string (what routes are matched on)."""
        return self.path.split("?", 1)[0]


@dataclass
class Response:
    """What a handler answers. Header names are sent as given; a bytes body gets a
    Content-Length unless the headers already carry one (to test lying lengths)."""

    status: int = 200
    headers: Sequence[tuple[str, str]] | Mapping[str, str] = ()
    body: bytes | BodyWriter = b""
    reason: str | None = None
    chunked: bool = False  # frame a callable body with Transfer-Encoding: chunked


Handler = Callable[[Request], Response | None]


class Stream:
    """What a callable body writes to. `write()` sends at once (flushed, chunk-framed when the
    response is chunked); `stopping` is set when the server shuts down, so trickling bodies can
    end early instead of keeping a thread alive."""

    def __init__(self, wfile: BinaryIO, *, chunked: bool, stopping: threading.Event) -> None:
        self._wfile = wfile
        self._chunked = chunked
        self.stopping = stopping

    def write(self, data: bytes) -> None:
        if not data:
            return
        if self._chunked:
            self._wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        else:
            self._wfile.write(data)
        self._wfile.flush()

    def sleep(self, seconds: float) -> bool:
        """Wait; False when the server is stopping (the body should return)."""
        return not self.stopping.wait(seconds)

    def _end(self) -> None:
        if self._chunked:
            self._wfile.write(b"0\r\n\r\n")
            self._wfile.flush()


def trickle(data: bytes, *, interval: float, step: int = 1) -> BodyWriter:
    """A body that sends `step` bytes every `interval` seconds (a slow or hostile server)."""

    def write(stream: Stream) -> None:
        for i in range(0, len(data), step):
            stream.write(data[i : i + step])
            if not stream.sleep(interval):
                return

    return write


def unused_port() -> int:
    """A loopback port nothing listens on (bound, then closed): connecting is refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _etag_matches(if_none_match: str, etag: str) -> bool:
    # Weak comparison (RFC 9110 §13.1.2): W/"x" matches "x".
    if if_none_match.strip() == "*":
        return True
    wanted = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == wanted for tag in if_none_match.split(","))


def _not_modified_since(if_modified_since: str, last_modified: str) -> bool:
    try:
        since = email.utils.parsedate_to_datetime(if_modified_since)
        modified = email.utils.parsedate_to_datetime(last_modified)
    except (TypeError, ValueError):
        return False
    return modified <= since


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive and chunked available; we add Content-Length
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass  # tests assert on `server.requests`; stderr noise helps nobody

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        request = Request(
            method=self.command,
            path=self.path,
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            wfile=self.wfile,  # type: ignore[arg-type]  # socketserver's _SocketWriter
            stopping=self.server.owner.stopping,
        )
        owner = self.server.owner
        owner._record(request)
        handler = owner._handler_for(request.route_path)
        try:
            response = handler(request)
            if response is None:
                self.close_connection = True  # raw response: framing is the handler's business
                self.wfile.flush()
                return
            self._send(response)
        except (ConnectionError, TimeoutError):
            self.close_connection = True  # the client gave up (often the point of the test)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _dispatch

    def _send(self, response: Response) -> None:
        self.send_response(response.status, response.reason)
        headers = (
            list(response.headers.items())
            if isinstance(response.headers, Mapping)
            else list(response.headers)
        )
        names = {name.lower() for name, _ in headers}
        for name, value in headers:
            self.send_header(name, value)
        bodiless = self.command == "HEAD" or response.status in (204, 304)
        if isinstance(response.body, bytes):
            if "content-length" not in names and not bodiless:
                self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            if not bodiless:
                self.wfile.write(response.body)
            return
        if response.chunked:
            self.send_header("Transfer-Encoding", "chunked")
        elif "content-length" not in names:
            # No length and no chunking: the body ends when the connection closes.
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.flush()
        wfile: BinaryIO = self.wfile  # type: ignore[assignment]  # socketserver's _SocketWriter
        stream = Stream(wfile, chunked=response.chunked, stopping=self.server.owner.stopping)
        response.body(stream)
        stream._end()


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True  # a trickling handler must not keep the test process alive
    request_queue_size = 128  # concurrent-client tests: a full backlog costs a 1 s SYN retry
    owner: LocalHTTPServer

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # client disconnects mid-response are expected; handler bugs show up as failures


class LocalHTTPServer:
    """A threading HTTP server on 127.0.0.1 with an ephemeral port. Use as a context manager."""

    def __init__(self) -> None:
        self._routes: dict[str, Handler] = {}
        self._requests: list[Request] = []
        self._lock = threading.Lock()
        self.stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle

    def start(self) -> LocalHTTPServer:
        server = _Server(("127.0.0.1", 0), _Handler)
        server.owner = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> LocalHTTPServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- addresses

    @property
    def port(self) -> int:
        assert self._server is not None, "server not started"
        port: int = self._server.server_address[1]
        return port

    @property
    def host(self) -> str:
        return "127.0.0.1"

    def url(self, path: str = "/") -> str:
        """The absolute http URL of `path` on this server."""
        if not path.startswith("/"):
            path = "/" + path
        return f"http://127.0.0.1:{self.port}{path}"

    # -- routes

    def route(self, path: str, handler: Handler) -> Handler:
        """Answer requests for `path` (query string ignored) with `handler`; replaces any
        earlier route for the same path. Returns the handler."""
        with self._lock:
            self._routes[path] = handler
        return handler

    def serve_bytes(
        self,
        path: str,
        body: bytes,
        *,
        content_type: str = "application/xml",
        etag: str | None = None,
        last_modified: str | None = None,
        headers: Sequence[tuple[str, str]] = (),
        gzip: bool = False,
        status: int = 200,
    ) -> None:
        """Serve a fixed body with conditional GET handled like a well-behaved server: 304
        when If-None-Match matches `etag` (If-Modified-Since is then ignored, RFC 9110
        §13.2.2), or else when If-Modified-Since is not older than `last_modified`."""
        payload = gzip_module.compress(body, mtime=0) if gzip else body

        def handler(request: Request) -> Response:
            validators: list[tuple[str, str]] = []
            if etag is not None:
                validators.append(("ETag", etag))
            if last_modified is not None:
                validators.append(("Last-Modified", last_modified))
            inm = request.headers.get("if-none-match")
            ims = request.headers.get("if-modified-since")
            if inm is not None and etag is not None:
                fresh = _etag_matches(inm, etag)
            elif inm is None and ims is not None and last_modified is not None:
                fresh = _not_modified_since(ims, last_modified)
            else:
                fresh = False
            if fresh:
                return Response(status=304, headers=validators)
            extra = [("Content-Type", content_type), *validators, *headers]
            if gzip:
                extra.append(("Content-Encoding", "gzip"))
            return Response(status=status, headers=extra, body=payload)

        self.route(path, handler)

    def redirect(self, path: str, location: str, *, status: int = 302) -> None:
        """Answer `path` with a redirect to `location` (sent verbatim)."""
        self.route(path, lambda _request: Response(status=status, headers=[("Location", location)]))

    def _handler_for(self, path: str) -> Handler:
        with self._lock:
            return self._routes.get(path, _not_found)

    # -- recorded requests

    def _record(self, request: Request) -> None:
        with self._lock:
            self._requests.append(request)

    @property
    def requests(self) -> list[Request]:
        """Every request received so far, in arrival order (a copy)."""
        with self._lock:
            return list(self._requests)

    def requests_for(self, path: str) -> list[Request]:
        """The requests received for `path` (query string ignored)."""
        return [r for r in self.requests if r.route_path == path]

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()


def _not_found(_request: Request) -> Response:
    return Response(status=404, headers=[("Content-Type", "text/plain")], body=b"not found\n")


@pytest.fixture
def http_server() -> Iterator[LocalHTTPServer]:
    """A started `LocalHTTPServer` on 127.0.0.1, stopped after the test."""
    with LocalHTTPServer() as server:
        yield server
