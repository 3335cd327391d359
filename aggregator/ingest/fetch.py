"""Fetch feed bytes: the only module that touches the network (and the feed's local file).

Everything downstream (feedparser, dedup, storage) only ever sees bytes this module returned,
so the safety decisions are all made here:

* **urllib3 directly, no automatic anything.** Requests go out with `redirect=False`,
  `retries=False`, `preload_content=False` and `decode_content=False`: urllib3 neither follows
  redirects nor retries nor decompresses on our behalf. No proxy settings are read from the
  environment and no cookies are kept, so nothing leaks from one feed to another.
* **Decoded-size cap.** We ask only for the codings we decode ourselves
  (`Accept-Encoding: gzip, deflate`) and inflate with `zlib.decompressobj().decompress(data,
  max_length)`, so a 1 MB gzip bomb never expands past the cap in memory. The cap applies to
  the decoded body (identity bodies included). More than one content-coding (`gzip, gzip`) or
  an unknown one is refused outright, as are the stacked-coding bombs of urllib3 CVE-2025-66418.
* **Total deadline.** Connect and read timeouts are per socket operation, so a server that
  trickles one byte at a time never trips them. We therefore (1) read the body with `read1()`,
  which returns after a single `recv`, and compare the clock after every read, and (2) arm a
  watchdog timer that shuts the socket down at the deadline, which also interrupts a server
  trickling its status line and headers or stalling a TLS handshake. The watchdog needs to know
  which socket belongs to which fetch, so sockets are never reused between requests (we send
  `Connection: close` and close every pooled connection before it is handed out again).
* **Redirects followed by us**, at most `max_redirects`, each hop re-checked: `http`/`https`
  only (a redirect to `file:`, `data:` or `javascript:` is an error, never an action), and the
  address check below runs again before connecting. Where the leading 301/308 hops pointed is
  reported (`FetchResult.permanent_redirect`) so the pipeline can move the feed once two
  consecutive fetches agree; 302/303/307 are followed but never reported.
* **Credentials to their own origin only.** A feed's `username`/`password` (or a
  `user:password@` in its URL) become an `Authorization: Basic` header on requests to the
  feed URL's scheme, host and port, and are dropped on a redirect anywhere else (feedparser
  re-sent them cross-origin, `reliability-anchors.md` section 4 row 35d).
* **No private addresses** unless the feed opts in (`allow_private`): before every hop the host
  is resolved and refused if *any* address is loopback, private, link-local, multicast,
  unspecified, reserved or carrier-grade NAT (100.64.0.0/10). urllib3 then resolves the name a
  second time to connect, so a DNS-rebinding server could answer differently; as a backstop the
  peer address of every new socket is checked right after the TCP connect, before a single
  request byte is sent. A real dial-time check (refuse before the SYN, as Miniflux does in its
  dialer `Control` hook, pinning the address we checked) is a later issue.
* **Stable reason codes.** Every failure is a `FetchError` whose `reason` is one of a small set
  of codes stored on the feed; raw urllib3, socket and ssl exceptions never escape `fetch()`.

Reason codes: `timeout`, `connection_refused`, `dns_error`, `tls_error`, `connection_error`,
`protocol_error`, `too_large`, `unsupported_encoding`, `decode_error`, `bad_url`,
`bad_redirect`, `too_many_redirects`, `private_address`, `http_<status>` (an `HTTPStatusError`),
`file_not_found`, `file_error`.

Known limits: name resolution (`getaddrinfo`) cannot be interrupted, so a very slow resolver can
overrun the deadline by the system resolver's own timeout; internationalised host names need
the optional `idna` package that urllib3 uses (without it they fail with `bad_url`).
"""

from __future__ import annotations

import base64
import contextlib
import email.utils
import http
import http.client
import ipaddress
import socket
import ssl
import stat
import threading
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urljoin

from urllib3 import PoolManager
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import (
    HTTPError,
    LocationValueError,
    NameResolutionError,
    NewConnectionError,
    ProtocolError,
)
from urllib3.exceptions import SSLError as Urllib3SSLError
from urllib3.exceptions import TimeoutError as Urllib3TimeoutError
from urllib3.response import BaseHTTPResponse
from urllib3.util import Timeout, parse_url

from aggregator import USER_AGENT
from aggregator.errors import FetchError, HTTPStatusError
from aggregator.models import DEFAULT_MAX_BODY_BYTES, FeedSpec, FetchResult
from aggregator.numbers import ascii_int
from aggregator.urls import without_userinfo

__all__ = ["DEFAULT_MAX_BODY_BYTES", "Fetcher", "Resolver"]

Resolver = Callable[[str, int], list[str]]

ACCEPT = (
    "application/atom+xml, application/rss+xml, application/feed+json, "
    "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
)
# Only codings we decode ourselves under the cap; never br/zstd without a bounded decoder.
ACCEPT_ENCODING = "gzip, deflate"

_READ_SIZE = 64 * 1024  # largest single read and largest single inflate output
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_PERMANENT_REDIRECTS = frozenset({301, 308})  # RFC 9110 15.4.2, 15.4.9: re-link; others not
_ALLOWED_SCHEMES = frozenset({"http", "https"})
_DEFAULT_PORTS = {"http": 80, "https": 443}
_CGNAT = ipaddress.ip_network("100.64.0.0/10")  # RFC 6598; not covered by is_private on 3.11
# A stored validator we cannot send verbatim (CR/LF/NUL, non-Latin-1) is dropped rather than
# failing the fetch: the worst case is one unconditional GET.
_HEADER_VALUE_OK = frozenset([9, *range(0x20, 0x7F), *range(0x80, 0x100)])
_MAX_DETAIL = 300
_GZIP_MAGIC = b"\x1f\x8b"


# --------------------------------------------------------------------------------------------
# The deadline watchdog and the socket bookkeeping it needs


class _Deadline:
    """The total deadline of one fetch, and the sockets it may shut down when it expires.

    Registered in a thread-local while the fetch runs, so our connection classes (created and
    used by urllib3 in the fetching thread) can hand it each new socket.
    """

    def __init__(self, seconds: float, *, allow_private: bool) -> None:
        self.seconds = seconds
        self.allow_private = allow_private
        self.expires = time.monotonic() + seconds
        self.fired = False
        self._done = False
        self._lock = threading.Lock()
        # Duplicates of the fetch's sockets: shutdown() on a dup acts on the shared connection,
        # and owning our own descriptor means a descriptor number recycled after urllib3 closes
        # its socket can never point us at somebody else's connection.
        self._socks: list[socket.socket] = []
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True

    def __enter__(self) -> _Deadline:
        _active.deadline = self
        self._timer.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._timer.cancel()
        _active.deadline = None
        with self._lock:
            self._done = True
            for sock in self._socks:
                sock.close()
            self._socks.clear()

    def remaining(self) -> float:
        return self.expires - time.monotonic()

    def expired(self) -> bool:
        return self.fired or self.remaining() <= 0

    def error(self) -> FetchError:
        return FetchError("timeout", f"total deadline of {self.seconds:g}s exceeded")

    def check(self) -> None:
        if self.expired():
            raise self.error()

    def watch(self, sock: socket.socket) -> None:
        """Track a freshly connected socket so the watchdog can interrupt it."""
        dup = sock.dup()
        with self._lock:
            if self._done:
                dup.close()
                return
            self._socks.append(dup)
            if self.fired:  # connected just as the deadline passed: stop it right away
                _shutdown(dup)

    def _fire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.fired = True
            for sock in self._socks:
                _shutdown(sock)


def _shutdown(sock: socket.socket) -> None:
    # Wakes up a recv() blocked in the fetching thread (it returns EOF or raises); the fetch
    # then sees `fired` and reports a timeout instead of whatever urllib3 made of the EOF.
    # OSError: already closed or never fully connected, nothing left to interrupt.
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


class _Active(threading.local):
    deadline: _Deadline | None = None


_active = _Active()


def _on_new_socket(sock: socket.socket) -> None:
    """Called by our connection classes right after the TCP connect, before any byte is sent."""
    deadline = _active.deadline
    if deadline is None:
        return
    deadline.watch(sock)
    if not deadline.allow_private:
        # Backstop against DNS rebinding between our check and urllib3's own resolution: the
        # SYN has already gone out, but no request is ever sent to a non-public peer.
        try:
            peer = str(sock.getpeername()[0])
        except OSError:
            return  # not connected after all; the request will fail on its own
        if _is_non_public(_parse_ip(peer)):
            sock.close()
            raise FetchError("private_address", f"connected peer is {peer}")


class _WatchedHTTPConnection(HTTPConnection):
    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        _on_new_socket(sock)
        return sock


class _WatchedHTTPSConnection(HTTPSConnection):
    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        _on_new_socket(sock)
        return sock


class _OneShotHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection

    # Any: urllib3's BaseHTTPConnection protocol lives in a private module.
    def _get_conn(self, timeout: float | None = None) -> Any:
        # Never reuse a socket: a kept-alive socket returned to the pool by one fetch must not
        # carry that fetch's watchdog into another fetch. Closing forces a fresh connect.
        conn = super()._get_conn(timeout)
        conn.close()
        return conn


class _OneShotHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection

    def _get_conn(self, timeout: float | None = None) -> Any:
        conn = super()._get_conn(timeout)  # see _OneShotHTTPPool
        conn.close()
        return conn


# --------------------------------------------------------------------------------------------
# Address checks


def _parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(text.strip("[]").replace("%25", "%"))


def _is_non_public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address):
        # ::ffff:10.0.0.1 and 2002:0a00:0001:: reach IPv4 hosts: judge the embedded address.
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is not None and _is_non_public(embedded):
            return True
        if ip.is_site_local:
            return True
    return (
        ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_unspecified
        or ip.is_reserved
        or (isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT)
    )


def _system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


# --------------------------------------------------------------------------------------------
# Bounded decoding


class _BodyDecoder:
    """Accumulates the decoded body, refusing to hold more than `cap` decoded bytes."""

    def __init__(self, coding: str, cap: int) -> None:
        self._coding = coding  # "identity", "gzip" or "deflate"
        self._cap = cap
        self._chunks: list[bytes] = []
        self._size = 0
        self._seen_input = False
        self._finished = False  # compressed stream complete: trailing bytes are ignored
        self._at_boundary = False  # gzip: a member just ended, another may follow
        self._probe: bytearray | None = None  # deflate input kept until the wrapper is known
        if coding == "deflate":
            # "deflate" is meant to be zlib-wrapped, but servers also send raw deflate: try the
            # wrapper first and keep the input until it proves right (urllib3 does the same).
            self._inflater = zlib.decompressobj(zlib.MAX_WBITS)
            self._probe = bytearray()
        else:
            self._inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)

    def feed(self, data: bytes) -> None:
        if self._coding == "identity":
            self._append(data)
            return
        if self._finished or not data:
            return
        self._seen_input = True
        try:
            if self._probe is not None:
                self._feed_probing(data)
            else:
                self._inflate(data)
        except zlib.error as exc:
            raise FetchError("decode_error", f"corrupt {self._coding} body: {exc}") from exc

    def finish(self) -> bytes:
        if self._seen_input and not (self._finished or self._at_boundary):
            # A close-delimited body can end early without any framing error; a compressed
            # stream that stops short says so, and half a feed is not passed on as a whole one.
            raise FetchError("decode_error", f"truncated {self._coding} body")
        return b"".join(self._chunks)

    def _feed_probing(self, data: bytes) -> None:
        assert self._probe is not None
        self._probe += data
        if len(self._probe) > self._cap:
            raise FetchError("too_large", f"no deflate output in the first {self._cap} bytes")
        size_before = self._size
        try:
            self._inflate(data)
        except zlib.error:
            if self._size != size_before:
                raise  # the wrapper was right and the data is corrupt
            # Not zlib-wrapped: start again as raw deflate with everything received so far.
            self._inflater = zlib.decompressobj(-zlib.MAX_WBITS)
            buffered, self._probe = bytes(self._probe), None
            self._inflate(buffered)
            return
        if self._size != size_before or self._finished:
            self._probe = None  # the wrapper decoded real data: committed

    def _inflate(self, data: bytes) -> None:
        """Inflate `data`, at most 64 KiB of output per call, never past the cap."""
        self._at_boundary = False
        while True:
            limit = min(self._cap - self._size + 1, _READ_SIZE)  # +1 detects "over the cap"
            out = self._inflater.decompress(data, limit)
            self._append(out)
            if self._inflater.eof:
                rest = self._inflater.unused_data
                # Concatenated gzip members are one valid body (a new member may also start in
                # the next read); anything else after a member is trailing junk, ignored as
                # urllib3 does.
                if self._coding == "gzip" and _GZIP_MAGIC.startswith(rest[:2]):
                    self._inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
                    if not rest:
                        self._at_boundary = True
                        return
                    data = rest
                    continue
                self._finished = True
                return
            data = self._inflater.unconsumed_tail
            # Output that hit `limit` may leave more pending inside zlib even with no input.
            if not data and len(out) < limit:
                return

    def _append(self, data: bytes) -> None:
        if not data:
            return
        self._size += len(data)
        if self._size > self._cap:
            raise FetchError("too_large", f"body exceeds {self._cap} bytes")
        self._chunks.append(data)


def _content_coding(value: str | None) -> str:
    """The one content-coding of a response, normalised; refuses stacked or unknown ones."""
    if value is None:
        return "identity"
    codings = [c.strip().lower() for c in value.split(",")]
    codings = [c for c in codings if c and c != "identity"]
    if not codings:
        return "identity"
    if len(codings) > 1:
        raise FetchError("unsupported_encoding", f"more than one content-coding: {value!r}")
    coding = codings[0]
    if coding in ("gzip", "x-gzip"):
        return "gzip"
    if coding == "deflate":
        return "deflate"
    raise FetchError("unsupported_encoding", f"content-coding {coding!r}")


# --------------------------------------------------------------------------------------------
# The fetcher


class Fetcher:
    """Fetches feeds over HTTP(S) or from local files; safe to share between threads.

    One urllib3 `PoolManager` holds the TLS configuration; each `fetch()` keeps its state
    (deadline, sockets) to itself, so several threads may fetch at once.
    """

    def __init__(
        self,
        *,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        total_timeout: float = 20.0,
        connect_timeout: float = 10.0,
        read_timeout: float = 15.0,
        max_redirects: int = 5,
        resolver: Resolver | None = None,
    ) -> None:
        if max_body_bytes <= 0:
            raise ValueError("max_body_bytes must be positive")
        if min(total_timeout, connect_timeout, read_timeout) <= 0:
            raise ValueError("timeouts must be positive")
        if max_redirects < 0:
            raise ValueError("max_redirects must not be negative")
        self._max_body_bytes = max_body_bytes
        self._total_timeout = total_timeout
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._max_redirects = max_redirects
        self._resolver: Resolver = resolver or _system_resolver
        self._closed = False
        # block=False: a busy pool opens another connection instead of queueing behind a
        # slow feed. Certificates are verified (urllib3 2.x default, system trust store).
        self._pool = PoolManager(num_pools=32, maxsize=4, block=False, retries=False)
        self._pool.pool_classes_by_scheme = {
            "http": _OneShotHTTPPool,
            "https": _OneShotHTTPSPool,
        }

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close pooled connections. The fetcher cannot be used afterwards."""
        self._closed = True
        self._pool.clear()

    def fetch(
        self,
        spec: FeedSpec,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        url: str | None = None,
    ) -> FetchResult:
        """Fetch one feed. `etag` and `last_modified` are the validators stored from the
        previous fetch, sent back verbatim. `url` replaces the feed's URL (where it moved
        after permanent redirects); it is held to the same rules as the URL itself, and a
        local feed ignores it. Raises `FetchError` (never anything rawer)."""
        if self._closed:
            raise RuntimeError("Fetcher is closed")
        if spec.path is not None:
            return self._fetch_file(spec.path, etag=etag, last_modified=last_modified)
        if spec.url is None:
            raise FetchError("bad_url", f"feed {spec.name!r} has neither url nor path")
        with _Deadline(self._total_timeout, allow_private=spec.allow_private) as deadline:
            try:
                return self._fetch_url(
                    spec, url or spec.url, deadline, etag=etag, last_modified=last_modified
                )
            except FetchError as exc:
                if exc.reason != "timeout" and deadline.fired:
                    raise deadline.error() from exc
                raise
            except (HTTPError, http.client.HTTPException, OSError, ValueError) as exc:
                # HTTPError is urllib3's base class; the others are what socket, ssl and
                # http.client raise underneath it. Anything else is a bug and propagates.
                if deadline.expired():
                    raise deadline.error() from exc
                raise _transport_error(exc) from exc

    # ---------------------------------------------------------------------------- files

    def _fetch_file(
        self, path: Path, *, etag: str | None, last_modified: str | None
    ) -> FetchResult:
        start = time.monotonic()
        try:
            st = path.stat()
        except FileNotFoundError as exc:
            raise FetchError("file_not_found", str(path)) from exc
        except OSError as exc:
            raise FetchError("file_error", f"{path}: {exc.strerror or exc}") from exc
        if not stat.S_ISREG(st.st_mode):
            # A FIFO or device (/dev/zero) would block or never end.
            raise FetchError("file_error", f"{path}: not a regular file")
        mtime = email.utils.formatdate(st.st_mtime, usegmt=True)
        # HTTP dates have one-second resolution; the etag (nanosecond mtime and size) also
        # catches a rewrite within the same second when the caller sends it back.
        file_etag = f'"{st.st_mtime_ns:x}-{st.st_size:x}"'
        if last_modified == mtime and (etag is None or etag == file_etag):
            return FetchResult(
                location=str(path),
                status=None,
                etag=file_etag,
                last_modified=mtime,
                not_modified=True,
                elapsed=time.monotonic() - start,
            )
        try:
            with path.open("rb") as handle:
                # The cap is enforced on what we read, not on st_size: the file may grow.
                body = handle.read(self._max_body_bytes + 1)
        except FileNotFoundError as exc:
            raise FetchError("file_not_found", str(path)) from exc
        except OSError as exc:
            raise FetchError("file_error", f"{path}: {exc.strerror or exc}") from exc
        if len(body) > self._max_body_bytes:
            raise FetchError("too_large", f"{path}: more than {self._max_body_bytes} bytes")
        return FetchResult(
            location=str(path),
            status=None,
            body=body,
            etag=file_etag,
            last_modified=mtime,
            elapsed=time.monotonic() - start,
        )

    # ---------------------------------------------------------------------------- HTTP

    def _fetch_url(
        self,
        spec: FeedSpec,
        url: str,
        deadline: _Deadline,
        *,
        etag: str | None,
        last_modified: str | None,
    ) -> FetchResult:
        start = time.monotonic()
        headers = {
            "User-Agent": USER_AGENT,
            "Accept": ACCEPT,
            "Accept-Encoding": ACCEPT_ENCODING,
            # One socket per request: see the module docstring (watchdog ownership).
            "Connection": "close",
        }
        if etag is not None and _sendable(etag):
            headers["If-None-Match"] = etag
        if last_modified is not None and _sendable(last_modified):
            headers["If-Modified-Since"] = last_modified

        # Credentials go to the origin of the URL we start from, and nowhere else; every
        # other header is the same on every hop (no cookies are ever kept).
        origin, authorization = _credentials(spec, url)
        permanent: str | None = None
        permanent_run = True  # still inside the leading run of 301/308 hops
        for hop in range(self._max_redirects + 1):
            scheme, host, port, request_uri = _split_url(url, redirected=hop > 0)
            if not spec.allow_private:
                self._check_address(host, port)
            deadline.check()
            hop_headers = dict(headers)
            if authorization is not None and (scheme, host.lower(), port) == origin:
                hop_headers["Authorization"] = authorization
            response = self._request(scheme, host, port, request_uri, hop_headers, deadline)
            try:
                status = response.status
                if status in _REDIRECT_STATUSES:
                    location = response.headers.get("location")
                    if not location or not location.strip():
                        raise FetchError("bad_redirect", f"{status} without a Location header")
                    url = urljoin(url, location.strip())
                    if permanent_run and status in _PERMANENT_REDIRECTS:
                        permanent = without_userinfo(url)
                    else:
                        permanent_run = False
                    continue
                # itermerged(): repeated headers joined with ", " rather than the last one kept.
                response_headers = {k.lower(): v for k, v in response.headers.itermerged()}
                if status == 304:
                    # A 304 may omit the validators; the caller's stay valid then.
                    return FetchResult(
                        location=url,
                        status=304,
                        headers=response_headers,
                        etag=response_headers.get("etag", etag),
                        last_modified=response_headers.get("last-modified", last_modified),
                        not_modified=True,
                        elapsed=time.monotonic() - start,
                        permanent_redirect=permanent,
                    )
                if status != 200:
                    phrase = response.reason or _standard_phrase(status)
                    raise HTTPStatusError(
                        status, phrase, retry_after=response_headers.get("retry-after")
                    )
                body = self._read_body(response, deadline)
                return FetchResult(
                    location=url,
                    status=status,
                    body=body,
                    headers=response_headers,
                    etag=response_headers.get("etag"),
                    last_modified=response_headers.get("last-modified"),
                    elapsed=time.monotonic() - start,
                    permanent_redirect=permanent,
                )
            finally:
                # Never drain an unread body (it may be a bomb): close the socket instead.
                response.close()
                response.release_conn()
        raise FetchError("too_many_redirects", f"more than {self._max_redirects} redirects")

    def _check_address(self, host: str, port: int) -> None:
        """Refuse a host that is, or resolves to, any non-public address."""
        for ip in self._addresses(host, port):
            if _is_non_public(ip):
                raise FetchError("private_address", f"{host} resolves to {ip}")

    def _addresses(
        self, host: str, port: int
    ) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
        # An IP literal is checked as written; urllib3 connects to exactly that address.
        with contextlib.suppress(ValueError):
            return [_parse_ip(host)]
        try:
            resolved = self._resolver(host, port)
        except (OSError, UnicodeError) as exc:  # gaierror is an OSError; IDNA a UnicodeError
            raise FetchError("dns_error", f"{host}: {_detail(exc)}") from exc
        if not resolved:
            raise FetchError("dns_error", f"{host}: no addresses")
        try:
            return [_parse_ip(address) for address in resolved]
        except ValueError as exc:
            raise FetchError("dns_error", f"{host}: {exc}") from exc

    def _request(
        self,
        scheme: str,
        host: str,
        port: int,
        request_uri: str,
        headers: dict[str, str],
        deadline: _Deadline,
    ) -> BaseHTTPResponse:
        remaining = deadline.remaining()
        timeout = Timeout(
            connect=min(self._connect_timeout, remaining),
            read=min(self._read_timeout, remaining),
        )
        # The pool for exactly the host and port we checked: no second URL parse in between.
        pool = self._pool.connection_from_host(host, port=port, scheme=scheme)
        return pool.urlopen(
            "GET",
            request_uri,
            headers=headers,
            retries=False,
            redirect=False,
            assert_same_host=False,
            timeout=timeout,
            preload_content=False,
            decode_content=False,
            release_conn=False,
        )

    def _read_body(self, response: BaseHTTPResponse, deadline: _Deadline) -> bytes:
        coding = _content_coding(response.headers.get("content-encoding"))
        if coding == "identity":
            declared = content_length(response.headers.get("content-length"))
            if declared is not None and declared > self._max_body_bytes:
                raise FetchError("too_large", f"Content-Length {declared} > {self._max_body_bytes}")
        decoder = _BodyDecoder(coding, self._max_body_bytes)
        while True:
            # read1(): returns after one recv with whatever arrived (not a full 64 KiB), so the
            # clock is checked after every read, however slowly the bytes come.
            chunk = response.read1(_READ_SIZE)
            deadline.check()
            if not chunk:
                break
            decoder.feed(chunk)
        return decoder.finish()


# --------------------------------------------------------------------------------------------
# Helpers


def _split_url(url: str, *, redirected: bool) -> tuple[str, str, int, str]:
    """Scheme, host, port and request target of an http(s) URL, or a FetchError."""
    code = "bad_redirect" if redirected else "bad_url"
    try:
        parsed = parse_url(url)
    except LocationValueError as exc:
        raise FetchError(code, f"cannot parse {url[:200]!r}") from exc
    scheme = (parsed.scheme or "").lower()
    if scheme not in _ALLOWED_SCHEMES:
        raise FetchError(code, f"scheme {scheme or 'none'!r} is not http or https: {url[:200]!r}")
    if not parsed.host:
        raise FetchError(code, f"no host in {url[:200]!r}")
    port = parsed.port or _DEFAULT_PORTS[scheme]
    return scheme, parsed.host, port, parsed.request_uri


def _credentials(spec: FeedSpec, url: str) -> tuple[tuple[str, str, int] | None, str | None]:
    """The origin (scheme, host, port) that may receive the feed's credentials, and the
    `Authorization` value; (None, None) without credentials. The YAML's username/password
    win over a `user:password@` in the URL."""
    username, password = spec.username, spec.password
    try:
        parsed = parse_url(url)
    except LocationValueError:
        return None, None  # _split_url reports the bad URL
    if username is None and parsed.auth:
        username, _, password = parsed.auth.partition(":")
    if username is None:
        return None, None
    scheme = (parsed.scheme or "").lower()
    if scheme not in _DEFAULT_PORTS or not parsed.host:
        return None, None
    token = base64.b64encode(f"{username}:{password or ''}".encode()).decode("ascii")
    origin = (scheme, parsed.host.lower(), parsed.port or _DEFAULT_PORTS[scheme])
    return origin, f"Basic {token}"


def content_length(value: str | None) -> int | None:
    """A `Content-Length` in ASCII digits (`str.isdigit()` accepts `²`, which `int()`
    refuses), capped at 2**63; None when absent or unreadable (the body is read under the
    cap anyway)."""
    return ascii_int((value or "").strip(" \t"), cap=2**63)


def _sendable(value: str) -> bool:
    return all(ord(ch) in _HEADER_VALUE_OK for ch in value)


def _standard_phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""


def _detail(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 3] + "..."


def _transport_error(exc: Exception) -> FetchError:
    """Map a urllib3 / socket / ssl exception to a FetchError with a stable reason code."""
    detail = _detail(exc)
    # Order matters: NewConnectionError subclasses ConnectTimeoutError, ssl.SSLError subclasses
    # OSError, and ProtocolError wraps the low-level error it stands for.
    if isinstance(exc, NameResolutionError):
        return FetchError("dns_error", detail)
    if isinstance(exc, NewConnectionError):
        return _low_level_error(exc.__cause__, detail) or FetchError("connection_error", detail)
    if isinstance(exc, Urllib3TimeoutError):
        return FetchError("timeout", detail)
    if isinstance(exc, Urllib3SSLError):
        return FetchError("tls_error", detail)
    if isinstance(exc, ProtocolError):
        inner = exc.args[1] if len(exc.args) > 1 else exc.__cause__
        return _low_level_error(inner, detail) or FetchError("protocol_error", detail)
    if isinstance(exc, LocationValueError):
        return FetchError("bad_url", detail)
    low = _low_level_error(exc, detail)
    if low is not None:
        return low
    if isinstance(exc, HTTPError):
        return FetchError("connection_error", detail)
    # ValueError from http.client refusing to send something (a malformed header or target).
    return FetchError("protocol_error", detail)


def _low_level_error(exc: BaseException | None, detail: str) -> FetchError | None:
    if isinstance(exc, socket.gaierror):
        return FetchError("dns_error", detail)
    if isinstance(exc, (ssl.SSLError, ssl.CertificateError)):
        return FetchError("tls_error", detail)
    if isinstance(exc, TimeoutError):  # socket.timeout is TimeoutError since 3.10
        return FetchError("timeout", detail)
    if isinstance(exc, ConnectionRefusedError):
        return FetchError("connection_refused", detail)
    if isinstance(exc, OSError):  # resets, aborts, RemoteDisconnected, unreachable networks
        return FetchError("connection_error", detail)
    if isinstance(exc, http.client.HTTPException):  # bad status line, too many headers
        return FetchError("protocol_error", detail)
    return None
