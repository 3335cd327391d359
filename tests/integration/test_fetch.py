"""Integration tests of aggregator.ingest.fetch against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import os
import threading
import time
import tracemalloc
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import urllib3.util.connection

import aggregator.ingest.fetch
from aggregator import USER_AGENT
from aggregator.errors import FetchError, HTTPStatusError
from aggregator.ingest.fetch import ACCEPT, Fetcher
from aggregator.models import FeedSpec
from tests.support.http_server import (
    LocalHTTPServer,
    Request,
    Response,
    Stream,
    trickle,
    unused_port,
)

FEED = b'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title></channel></rss>'
MiB = 1024 * 1024


def spec(url: str, *, allow_private: bool = True) -> FeedSpec:
    return FeedSpec(name="test", group="g", url=url, allow_private=allow_private)


def gzip_bytes(data: bytes) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


def gzip_zeros(size: int) -> bytes:
    """`size` zero bytes gzipped, without holding them all in memory."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(MiB)
    parts = [compressor.compress(block) for _ in range(size // MiB)]
    return b"".join(parts) + compressor.flush()


@pytest.fixture
def server() -> Iterator[LocalHTTPServer]:
    """The loopback test server (tests.support.http_server.http_server, defined here so that
    ruff does not see the fixture argument as shadowing an import)."""
    with LocalHTTPServer() as started:
        yield started


@pytest.fixture
def fetcher() -> Iterator[Fetcher]:
    with Fetcher(total_timeout=10.0, connect_timeout=5.0, read_timeout=5.0) as f:
        yield f


@pytest.fixture
def connect_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Records every outgoing TCP connection urllib3 makes (the calls still go through)."""
    calls: list[tuple[str, int]] = []
    real = urllib3.util.connection.create_connection

    def recording(address: tuple[str, int], *args: object, **kwargs: object) -> object:
        calls.append(address)
        return real(address, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(urllib3.util.connection, "create_connection", recording)
    return calls


def fetch_error(fetcher: Fetcher, feed: FeedSpec, **kwargs: str) -> FetchError:
    with pytest.raises(FetchError) as info:
        fetcher.fetch(feed, **kwargs)
    return info.value


# --------------------------------------------------------------------------------- 200 / 304


def test_200_returns_body_headers_and_validators(server: LocalHTTPServer, fetcher: Fetcher) -> None:
    """A 200 gives the body, lower-cased headers, the validators verbatim and the status."""
    server.serve_bytes(
        "/feed.xml",
        FEED,
        content_type="application/rss+xml",
        etag='W/"abc"',
        last_modified="Wed, 21 Oct 2015 07:28:00 GMT",
        headers=[("X-Custom", "yes")],
    )
    result = fetcher.fetch(spec(server.url("/feed.xml")))
    assert result.status == 200
    assert result.body == FEED
    assert result.headers["content-type"] == "application/rss+xml"
    assert result.headers["x-custom"] == "yes"
    assert result.etag == 'W/"abc"'
    assert result.last_modified == "Wed, 21 Oct 2015 07:28:00 GMT"
    assert result.location == server.url("/feed.xml")
    assert not result.not_modified
    assert 0 < result.elapsed < 5


def test_validators_sent_back_and_304_is_not_modified(
    server: LocalHTTPServer, fetcher: Fetcher
) -> None:
    """ETag and Last-Modified go back verbatim as If-None-Match / If-Modified-Since; 304 means
    not_modified with an empty body."""
    lm = "Wed, 21 Oct 2015 07:28:00 GMT"
    server.serve_bytes("/feed.xml", FEED, etag='"v1"', last_modified=lm)
    first = fetcher.fetch(spec(server.url("/feed.xml")))
    assert first.etag is not None and first.last_modified is not None
    second = fetcher.fetch(
        spec(server.url("/feed.xml")), etag=first.etag, last_modified=first.last_modified
    )
    sent = server.requests_for("/feed.xml")[1].headers
    assert sent["if-none-match"] == '"v1"'
    assert sent["if-modified-since"] == lm
    assert second.not_modified
    assert second.status == 304
    assert second.body == b""
    assert second.etag == '"v1"'


def test_first_fetch_sends_no_conditional_headers(
    server: LocalHTTPServer, fetcher: Fetcher
) -> None:
    """Without stored validators no If-None-Match / If-Modified-Since is invented."""
    server.serve_bytes("/feed.xml", FEED, etag='"v1"')
    fetcher.fetch(spec(server.url("/feed.xml")))
    sent = server.requests_for("/feed.xml")[0].headers
    assert "if-none-match" not in sent
    assert "if-modified-since" not in sent


def test_user_agent_accept_and_accept_encoding_sent(
    server: LocalHTTPServer, fetcher: Fetcher
) -> None:
    """Requests identify the aggregator and only ask for codings we decode ourselves."""
    server.serve_bytes("/feed.xml", FEED)
    fetcher.fetch(spec(server.url("/feed.xml")))
    sent = server.requests_for("/feed.xml")[0].headers
    assert sent["user-agent"] == USER_AGENT
    assert sent["accept"] == ACCEPT
    assert sent["accept-encoding"] == "gzip, deflate"
    assert "cookie" not in sent and "authorization" not in sent


# --------------------------------------------------------------------------------- decoding


def test_gzip_body_is_decoded(server: LocalHTTPServer, fetcher: Fetcher) -> None:
    """A gzip response comes back decoded."""
    server.serve_bytes("/feed.xml", FEED, gzip=True)
    assert fetcher.fetch(spec(server.url("/feed.xml"))).body == FEED


def test_concatenated_gzip_members_are_decoded(server: LocalHTTPServer, fetcher: Fetcher) -> None:
    """A body of two gzip members decodes to both parts."""
    body = gzip_bytes(FEED[:20]) + gzip_bytes(FEED[20:])
    headers = [("Content-Encoding", "gzip")]
    server.route("/feed.xml", lambda _r: Response(headers=headers, body=body))
    assert fetcher.fetch(spec(server.url("/feed.xml"))).body == FEED


@pytest.mark.parametrize("wbits", [zlib.MAX_WBITS, -zlib.MAX_WBITS], ids=["zlib", "raw"])
def test_deflate_zlib_wrapped_and_raw_are_decoded(
    server: LocalHTTPServer, fetcher: Fetcher, wbits: int
) -> None:
    """Content-Encoding: deflate is decoded whether the server wraps it in zlib or not."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, wbits)
    body = compressor.compress(FEED) + compressor.flush()
    headers = [("Content-Encoding", "deflate")]
    server.route("/feed.xml", lambda _r: Response(headers=headers, body=body))
    assert fetcher.fetch(spec(server.url("/feed.xml"))).body == FEED


def test_gzip_bomb_stops_at_cap_with_bounded_memory(server: LocalHTTPServer) -> None:
    """50 MB of zeros gzipped (~50 KB on the wire) fails as too_large at a 1 MiB cap, and the
    fetch never holds much more than the cap in memory."""
    bomb = gzip_zeros(50 * MiB)
    assert len(bomb) < 100 * 1024
    headers = [("Content-Encoding", "gzip"), ("Content-Type", "application/xml")]
    server.route("/bomb.xml", lambda _r: Response(headers=headers, body=bomb))
    with Fetcher(max_body_bytes=MiB, total_timeout=10.0) as fetcher:
        tracemalloc.start()
        try:
            tracemalloc.reset_peak()
            error = fetch_error(fetcher, spec(server.url("/bomb.xml")))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert error.reason == "too_large"
    assert peak < 2 * MiB, f"peak traced memory {peak} bytes"


@pytest.mark.parametrize("with_length", [True, False], ids=["content-length", "close-delimited"])
def test_identity_body_over_cap_is_too_large(server: LocalHTTPServer, with_length: bool) -> None:
    """An uncompressed body over the cap fails, whether or not it declares its length."""
    body = b"x" * (MiB + 1)

    def handler(_request: Request) -> Response:
        if with_length:
            return Response(body=body)

        def write(stream: Stream) -> None:
            for i in range(0, len(body), 65536):
                stream.write(body[i : i + 65536])

        return Response(body=write)

    server.route("/big.xml", handler)
    with Fetcher(max_body_bytes=MiB) as fetcher:
        assert fetch_error(fetcher, spec(server.url("/big.xml"))).reason == "too_large"


def test_declared_length_over_cap_fails_before_reading(server: LocalHTTPServer) -> None:
    """A Content-Length over the cap fails at once, without waiting for the body."""

    def stall(stream: Stream) -> None:
        stream.write(b"<rss>")
        stream.sleep(30)

    server.route(
        "/huge.xml", lambda _r: Response(headers=[("Content-Length", str(10 * 2**30))], body=stall)
    )
    with Fetcher(max_body_bytes=MiB, total_timeout=3.0) as fetcher:
        start = time.monotonic()
        error = fetch_error(fetcher, spec(server.url("/huge.xml")))
        elapsed = time.monotonic() - start
    assert error.reason == "too_large"
    assert elapsed < 1.5


def test_body_exactly_at_cap_is_accepted(server: LocalHTTPServer) -> None:
    """The cap is inclusive: a body of exactly max_body_bytes (decoded) is returned."""
    body = b"y" * 4096
    server.serve_bytes("/edge.xml", body, gzip=True)
    with Fetcher(max_body_bytes=4096) as fetcher:
        assert fetcher.fetch(spec(server.url("/edge.xml"))).body == body


@pytest.mark.parametrize("coding", ["gzip, gzip", "br", "gzip, br", "compress"])
def test_stacked_or_unknown_content_coding_is_refused(
    server: LocalHTTPServer, fetcher: Fetcher, coding: str
) -> None:
    """More than one content-coding, or one we do not decode, is unsupported_encoding."""
    body = gzip_bytes(gzip_bytes(FEED))
    headers = [("Content-Encoding", coding)]
    server.route("/feed.xml", lambda _r: Response(headers=headers, body=body))
    error = fetch_error(fetcher, spec(server.url("/feed.xml")))
    assert error.reason == "unsupported_encoding"


def test_corrupt_gzip_is_decode_error(server: LocalHTTPServer, fetcher: Fetcher) -> None:
    """Bytes labelled gzip that are not gzip fail as decode_error, not a raw zlib.error."""
    headers = [("Content-Encoding", "gzip")]
    server.route("/feed.xml", lambda _r: Response(headers=headers, body=b"not gzip at all"))
    assert fetch_error(fetcher, spec(server.url("/feed.xml"))).reason == "decode_error"


def test_truncated_close_delimited_gzip_is_decode_error(
    server: LocalHTTPServer, fetcher: Fetcher
) -> None:
    """A gzip stream cut short by the server closing the connection is not passed on."""
    body = gzip_bytes(os.urandom(10_000))[:-100]

    def handler(_request: Request) -> Response:
        return Response(headers=[("Content-Encoding", "gzip")], body=lambda s: s.write(body))

    server.route("/feed.xml", handler)
    assert fetch_error(fetcher, spec(server.url("/feed.xml"))).reason == "decode_error"


# --------------------------------------------------------------------------------- redirects


def test_redirect_chain_of_three_is_followed(server: LocalHTTPServer, fetcher: Fetcher) -> None:
    """301 -> 302 (relative Location) -> 307 -> 200: the final URL is returned as location."""
    server.redirect("/a", server.url("/b"), status=301)
    server.redirect("/b", "/c?x=1", status=302)
    server.redirect("/c", "d", status=307)
    server.serve_bytes("/d", FEED)
    result = fetcher.fetch(spec(server.url("/a")))
    assert result.body == FEED
    assert result.location == server.url("/d")
    assert [r.path for r in server.requests] == ["/a", "/b", "/c?x=1", "/d"]


def test_six_redirects_is_too_many(server: LocalHTTPServer, fetcher: Fetcher) -> None:
    """With max_redirects=5 a chain of six redirects fails and the seventh URL is never asked."""
    for i in range(6):
        server.redirect(f"/r{i}", f"/r{i + 1}", status=302)
    server.serve_bytes("/r6", FEED)
    error = fetch_error(fetcher, spec(server.url("/r0")))
    assert error.reason == "too_many_redirects"
    assert [r.path for r in server.requests] == [f"/r{i}" for i in range(6)]


def test_five_redirects_are_allowed(server: LocalHTTPServer, fetcher: Fetcher) -> None:
    """Exactly max_redirects hops is still fine (the limit is not off by one)."""
    for i in range(5):
        server.redirect(f"/r{i}", f"/r{i + 1}", status=308)
    server.serve_bytes("/r5", FEED)
    assert fetcher.fetch(spec(server.url("/r0"))).location == server.url("/r5")


@pytest.mark.parametrize(
    "location",
    ["file:///etc/passwd", "ftp://127.0.0.1/feed.xml", "javascript:alert(1)", "data:,hello"],
)
def test_redirect_to_non_http_scheme_is_bad_redirect(
    server: LocalHTTPServer, fetcher: Fetcher, location: str
) -> None:
    """A redirect may only lead to http or https."""
    server.redirect("/feed.xml", location)
    error = fetch_error(fetcher, spec(server.url("/feed.xml")))
    assert error.reason == "bad_redirect"


def test_redirect_without_location_is_bad_redirect(
    server: LocalHTTPServer, fetcher: Fetcher
) -> None:
    """A 302 with no Location header is an error, not an empty success."""
    server.route("/feed.xml", lambda _r: Response(status=302))
    assert fetch_error(fetcher, spec(server.url("/feed.xml"))).reason == "bad_redirect"


# --------------------------------------------------------------------------------- deadline


def test_trickling_body_is_cut_at_total_deadline(server: LocalHTTPServer) -> None:
    """A server sending 1 byte every 0.2 s (read timeout never trips) is stopped by the
    1.5 s total deadline."""

    def handler(_request: Request) -> Response:
        return Response(body=trickle(FEED * 10, interval=0.2))

    server.route("/slow.xml", handler)
    with Fetcher(total_timeout=1.5, read_timeout=10.0) as fetcher:
        start = time.monotonic()
        error = fetch_error(fetcher, spec(server.url("/slow.xml")))
        elapsed = time.monotonic() - start
    assert error.reason == "timeout"
    assert "deadline" in error.detail
    assert 1.2 < elapsed < 5.0


def test_reads_return_per_recv_so_the_clock_is_checked(
    server: LocalHTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the watchdog disabled, the per-read clock check alone still stops a trickle: each
    read returns with the byte that arrived instead of waiting for a full 64 KiB."""
    monkeypatch.setattr(aggregator.ingest.fetch._Deadline, "_fire", lambda self: None)
    # 25 bytes over 5 s: long enough to tell "cut at 1.5 s" from "read to the end".
    server.route("/slow.xml", lambda _r: Response(body=trickle(FEED[:25], interval=0.2)))
    with Fetcher(total_timeout=1.5, read_timeout=10.0) as fetcher:
        start = time.monotonic()
        error = fetch_error(fetcher, spec(server.url("/slow.xml")))
        elapsed = time.monotonic() - start
    assert error.reason == "timeout"
    assert 1.4 < elapsed < 2.5


def test_trickling_headers_are_cut_at_total_deadline(server: LocalHTTPServer) -> None:
    """A server trickling its status line and headers cannot stretch the deadline either."""
    head = b"HTTP/1.1 200 OK\r\nX-Pad: " + b"a" * 40 + b"\r\n\r\n"  # ~6.5 s at 0.1 s/byte

    def handler(request: Request) -> None:
        assert request.wfile is not None
        for i in range(len(head)):
            request.wfile.write(head[i : i + 1])
            request.wfile.flush()
            if request.stopping.wait(0.1):
                return

    server.route("/slow.xml", handler)
    with Fetcher(total_timeout=1.0, read_timeout=10.0) as fetcher:
        start = time.monotonic()
        error = fetch_error(fetcher, spec(server.url("/slow.xml")))
        elapsed = time.monotonic() - start
    assert error.reason == "timeout"
    assert elapsed < 3.5


def test_stalled_body_ends_at_deadline_not_read_timeout(server: LocalHTTPServer) -> None:
    """Headers then silence: the fetch ends at the 1 s deadline, not the 30 s read timeout."""

    def stall(stream: Stream) -> None:
        stream.write(b"<rss>")
        stream.sleep(30)

    server.route("/stall.xml", lambda _r: Response(body=stall))
    with Fetcher(total_timeout=1.0, read_timeout=30.0) as fetcher:
        start = time.monotonic()
        error = fetch_error(fetcher, spec(server.url("/stall.xml")))
        elapsed = time.monotonic() - start
    assert error.reason == "timeout"
    assert elapsed < 4.0


# --------------------------------------------------------------------------------- statuses


def test_404_is_http_status_error(server: LocalHTTPServer, fetcher: Fetcher) -> None:
    """Any status other than 200/304/redirect raises HTTPStatusError with the status."""
    with pytest.raises(HTTPStatusError) as info:
        fetcher.fetch(spec(server.url("/missing.xml")))
    assert info.value.status == 404
    assert info.value.reason == "http_404"
    assert info.value.detail == "Not Found"
    assert info.value.retry_after is None


def test_429_captures_retry_after(server: LocalHTTPServer, fetcher: Fetcher) -> None:
    """Retry-After of a 429 is kept verbatim for the scheduler."""
    server.route(
        "/feed.xml",
        lambda _r: Response(status=429, headers=[("Retry-After", "3600")], body=b"slow down"),
    )
    with pytest.raises(HTTPStatusError) as info:
        fetcher.fetch(spec(server.url("/feed.xml")))
    assert info.value.reason == "http_429"
    assert info.value.status == 429
    assert info.value.retry_after == "3600"


# --------------------------------------------------------------------------------- transport


def test_connection_refused(fetcher: Fetcher) -> None:
    """A closed port gives connection_refused, not a raw urllib3 exception."""
    url = f"http://127.0.0.1:{unused_port()}/feed.xml"
    assert fetch_error(fetcher, spec(url)).reason == "connection_refused"


def test_tls_failure_is_tls_error(server: LocalHTTPServer, fetcher: Fetcher) -> None:
    """https to a plain-HTTP port fails the handshake: tls_error, not a raw ssl exception."""
    url = f"https://127.0.0.1:{server.port}/feed.xml"
    assert fetch_error(fetcher, spec(url)).reason == "tls_error"


def test_server_closing_without_answer_is_connection_error(
    server: LocalHTTPServer, fetcher: Fetcher
) -> None:
    """A server that hangs up without a status line gives a FetchError, never a raw one."""
    server.route("/feed.xml", lambda _r: None)
    assert fetch_error(fetcher, spec(server.url("/feed.xml"))).reason == "connection_error"


def test_short_body_against_content_length_is_protocol_error(
    server: LocalHTTPServer, fetcher: Fetcher
) -> None:
    """A body shorter than its Content-Length is a protocol error, not a truncated success."""
    server.route("/feed.xml", lambda _r: Response(headers=[("Content-Length", "1000")], body=FEED))
    assert fetch_error(fetcher, spec(server.url("/feed.xml"))).reason == "protocol_error"


# --------------------------------------------------------------------------------- addresses


def test_loopback_refused_without_allow_private(
    server: LocalHTTPServer, fetcher: Fetcher, connect_calls: list[tuple[str, int]]
) -> None:
    """127.0.0.1 is refused unless the feed allows private addresses; no request is made."""
    server.serve_bytes("/feed.xml", FEED)
    error = fetch_error(fetcher, spec(server.url("/feed.xml"), allow_private=False))
    assert error.reason == "private_address"
    assert "127.0.0.1" in error.detail
    assert server.requests == []
    assert connect_calls == []


def test_hostname_resolving_to_private_address_is_refused_before_connecting(
    connect_calls: list[tuple[str, int]],
) -> None:
    """A name that resolves to 10.0.0.1 is refused without any connection attempt."""
    asked: list[tuple[str, int]] = []

    def resolver(host: str, port: int) -> list[str]:
        asked.append((host, port))
        return ["93.184.216.34", "10.0.0.1"]  # ANY private address is enough

    with Fetcher(resolver=resolver) as fetcher:
        error = fetch_error(fetcher, spec("http://feed.example/rss", allow_private=False))
    assert error.reason == "private_address"
    assert error.detail == "feed.example resolves to 10.0.0.1"
    assert asked == [("feed.example", 80)]
    assert connect_calls == []


@pytest.mark.parametrize(
    "address",
    [
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "::1",
        "::ffff:192.168.1.1",
        "2002:c0a8:101::1",  # 6to4 wrapping 192.168.1.1
        "fe80::1%eth0",
        "ff02::1",
    ],
)
def test_other_non_public_addresses_are_refused(
    address: str, connect_calls: list[tuple[str, int]]
) -> None:
    """Link-local, CGNAT, unspecified, IPv6 loopback, IPv4 inside IPv6 and multicast are
    refused."""
    with Fetcher(resolver=lambda _h, _p: [address]) as fetcher:
        error = fetch_error(fetcher, spec("https://feed.example/rss", allow_private=False))
    assert error.reason == "private_address"
    assert connect_calls == []


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_peer_address_checked_after_connect(server: LocalHTTPServer, scheme: str) -> None:
    """If the name resolves differently when urllib3 connects (DNS rebinding), the loopback
    peer is caught before any request byte (or TLS handshake) is sent."""
    server.serve_bytes("/feed.xml", FEED)
    url = f"{scheme}://localhost:{server.port}/feed.xml"
    with Fetcher(resolver=lambda _h, _p: ["93.184.216.34"]) as fetcher:
        error = fetch_error(fetcher, spec(url, allow_private=False))
    assert error.reason == "private_address"
    assert server.requests == []


def test_dns_failure_from_resolver_is_dns_error() -> None:
    """A resolver error becomes dns_error."""

    def resolver(host: str, port: int) -> list[str]:
        raise OSError(f"cannot resolve {host}")

    with Fetcher(resolver=resolver) as fetcher:
        error = fetch_error(fetcher, spec("http://nowhere.example/", allow_private=False))
    assert error.reason == "dns_error"


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/feed", "file:///etc/passwd", "http:///nohost"])
def test_feed_url_must_be_http_with_a_host(fetcher: Fetcher, url: str) -> None:
    """The feed URL itself is held to the same scheme rule as redirects."""
    assert fetch_error(fetcher, spec(url)).reason == "bad_url"


# --------------------------------------------------------------------------------- threads


def test_concurrent_fetches_share_one_fetcher(server: LocalHTTPServer, fetcher: Fetcher) -> None:
    """Eight threads fetching different feeds through one Fetcher each get their own body."""
    for i in range(8):
        server.serve_bytes(f"/f{i}.xml", FEED + str(i).encode())
    results: dict[int, bytes] = {}
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            for _ in range(5):
                results[i] = fetcher.fetch(spec(server.url(f"/f{i}.xml"))).body
        except BaseException as exc:  # reported below, in the test thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    assert errors == []
    assert results == {i: FEED + str(i).encode() for i in range(8)}


# --------------------------------------------------------------------------------- local files


def test_local_file_is_read_with_mtime_as_last_modified(tmp_path: Path, fetcher: Fetcher) -> None:
    """A local feed file is read whole; last_modified is its mtime as an HTTP date."""
    path = tmp_path / "feed.xml"
    path.write_bytes(FEED)
    os.utime(path, (1_445_412_480, 1_445_412_480))
    result = fetcher.fetch(FeedSpec(name="f", group="g", path=path))
    assert result.body == FEED
    assert result.status is None
    assert result.location == str(path)
    assert result.last_modified == "Wed, 21 Oct 2015 07:28:00 GMT"
    assert not result.not_modified


def test_local_file_unchanged_mtime_is_not_modified(tmp_path: Path, fetcher: Fetcher) -> None:
    """Same mtime as last time: not_modified, nothing read; a newer mtime reads again."""
    path = tmp_path / "feed.xml"
    path.write_bytes(FEED)
    feed = FeedSpec(name="f", group="g", path=path)
    first = fetcher.fetch(feed)
    second = fetcher.fetch(feed, last_modified=first.last_modified)
    assert second.not_modified
    assert second.body == b""
    os.utime(path, (time.time() + 10, time.time() + 10))
    third = fetcher.fetch(feed, last_modified=first.last_modified)
    assert not third.not_modified
    assert third.body == FEED


def test_local_file_rewritten_within_same_second_is_read_when_etag_sent(
    tmp_path: Path, fetcher: Fetcher
) -> None:
    """The file etag (ns mtime + size) catches a change the one-second HTTP date cannot."""
    path = tmp_path / "feed.xml"
    path.write_bytes(FEED)
    os.utime(path, ns=(1_445_412_480_100_000_000, 1_445_412_480_100_000_000))
    feed = FeedSpec(name="f", group="g", path=path)
    first = fetcher.fetch(feed)
    path.write_bytes(FEED + b"<!-- more -->")
    os.utime(path, ns=(1_445_412_480_900_000_000, 1_445_412_480_900_000_000))
    again = fetcher.fetch(feed, etag=first.etag or "", last_modified=first.last_modified or "")
    assert again.last_modified == first.last_modified
    assert not again.not_modified
    assert again.body == FEED + b"<!-- more -->"


def test_missing_local_file(tmp_path: Path, fetcher: Fetcher) -> None:
    """A missing file is file_not_found."""
    feed = FeedSpec(name="f", group="g", path=tmp_path / "absent.xml")
    assert fetch_error(fetcher, feed).reason == "file_not_found"


def test_local_file_over_cap(tmp_path: Path) -> None:
    """A file larger than max_body_bytes is too_large."""
    path = tmp_path / "big.xml"
    path.write_bytes(b"z" * 2049)
    with Fetcher(max_body_bytes=2048) as fetcher:
        error = fetch_error(fetcher, FeedSpec(name="f", group="g", path=path))
    assert error.reason == "too_large"


def test_local_fifo_is_refused_without_blocking(tmp_path: Path, fetcher: Fetcher) -> None:
    """A FIFO named as a feed is refused up front; opening it would block until a writer came."""
    fifo = tmp_path / "feed.fifo"
    os.mkfifo(fifo)
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            fetcher.fetch(FeedSpec(name="f", group="g", path=fifo))
        except BaseException as exc:  # inspected in the test thread
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=3)
    if thread.is_alive():  # release the blocked open() before failing
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        thread.join(timeout=3)
    assert len(outcome) == 1 and isinstance(outcome[0], FetchError)
    assert outcome[0].reason == "file_error"


def test_local_path_that_is_not_a_regular_file(tmp_path: Path, fetcher: Fetcher) -> None:
    """A directory (or FIFO, device) is refused instead of blocking or reading forever."""
    feed = FeedSpec(name="f", group="g", path=tmp_path)
    assert fetch_error(fetcher, feed).reason == "file_error"


# --------------------------------------------------------------------------------- moves, auth


def test_leading_permanent_redirects_are_reported(
    server: LocalHTTPServer, fetcher: Fetcher
) -> None:
    """301 -> 308 -> 302 -> feed: the target of the 301/308 run is reported; a 302 alone
    reports nothing."""
    server.redirect("/a", "/b", status=301)
    server.redirect("/b", "/c", status=308)
    server.redirect("/c", "/feed.xml", status=302)
    server.redirect("/temp", "/feed.xml", status=302)
    server.serve_bytes("/feed.xml", FEED)
    result = fetcher.fetch(spec(server.url("/a")))
    assert result.permanent_redirect == server.url("/c")
    assert result.location == server.url("/feed.xml")
    assert fetcher.fetch(spec(server.url("/temp"))).permanent_redirect is None


def test_url_override_is_fetched_instead(server: LocalHTTPServer, fetcher: Fetcher) -> None:
    """`url=` (where the feed moved) replaces the configured URL, under the same rules."""
    server.serve_bytes("/new.xml", FEED)
    result = fetcher.fetch(spec(server.url("/old.xml")), url=server.url("/new.xml"))
    assert result.body == FEED and server.requests_for("/old.xml") == []
    assert fetch_error(fetcher, spec(server.url("/x")), url="file:///etc/passwd").reason == (
        "bad_url"
    )


def test_url_userinfo_is_basic_auth_for_its_own_origin_only(server: LocalHTTPServer) -> None:
    """user:pw@ in the URL is sent as Authorization to that origin, not in the request line,
    and not to another port after a redirect."""
    with LocalHTTPServer() as other, Fetcher(total_timeout=10.0) as fetcher:
        other.serve_bytes("/feed.xml", FEED)
        server.redirect("/start", other.url("/feed.xml"))
        url = f"http://user:pw@127.0.0.1:{server.port}/start"
        fetcher.fetch(spec(url))
        (first,) = server.requests_for("/start")
        assert first.headers["authorization"] == "Basic dXNlcjpwdw=="
        assert "user" not in first.path
        assert "authorization" not in other.requests_for("/feed.xml")[0].headers
