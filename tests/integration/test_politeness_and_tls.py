"""Section 8 A22 and A23 of reliability-anchors.md: one host's load, and bad certificates."""

from __future__ import annotations

import http.server
import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from aggregator import USER_AGENT
from aggregator.config import parse_config
from aggregator.errors import FetchError
from aggregator.ingest.fetch import Fetcher
from aggregator.models import FeedSpec
from aggregator.pipeline import Pipeline
from aggregator.store import open_store
from tests.support.clock import FixedClock
from tests.support.http_server import LocalHTTPServer, Request, Response
from tests.support.http_server import http_server as http_server

FEEDS_ON_ONE_HOST = 20
HOLD_SECONDS = 0.3  # each response waits, so that overlapping requests would show


def feed(number: int) -> bytes:
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>f{number}</title>'
        f"<item><title>Story number {number} about the harbour bridge repairs</title>"
        f"<guid>g{number}</guid></item></channel></rss>"
    ).encode()


def test_twenty_feeds_on_one_host_get_at_most_two_requests_at_once(
    http_server: LocalHTTPServer, tmp_path: Path, clock: FixedClock
) -> None:
    """A22: the server counts concurrent requests: never above 2; the User-Agent is
    exact; the cookies the server sets are never sent back."""
    lock = threading.Lock()
    state = {"now": 0, "peak": 0}

    def handler(request: Request) -> Response:
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        time.sleep(HOLD_SECONDS)
        with lock:
            state["now"] -= 1
        number = int(request.route_path.strip("/f"))
        return Response(
            headers=[("Content-Type", "application/rss+xml"), ("Set-Cookie", "track=1; Path=/")],
            body=feed(number),
        )

    for number in range(FEEDS_ON_ONE_HOST):
        http_server.route(f"/f{number}", handler)
    lines = "\n".join(
        f"      - name: feed {n}\n        url: {http_server.url(f'/f{n}')}"
        for n in range(FEEDS_ON_ONE_HOST)
    )
    config = parse_config(
        f"groups:\n  g:\n    allow_private: true\n    feeds:\n{lines}\n", tmp_path / "f.yaml"
    )
    store = open_store(tmp_path / "polite.db")
    pipeline = Pipeline(store=store, config=config, clock=clock)
    try:
        fetched: set[str] = set()
        for _ in range(FEEDS_ON_ONE_HOST):  # passes until every feed was fetched once
            report = pipeline.run(all_feeds=True)
            fetched.update(r.feed for r in report.feeds if r.status == "ok")
            if len(fetched) == FEEDS_ON_ONE_HOST:
                break
    finally:
        pipeline.close()
        store.close()
    assert len(fetched) == FEEDS_ON_ONE_HOST
    assert state["peak"] == config.settings.fetch_per_host == 2  # the cap, and reached
    requests = http_server.requests
    assert requests and all(r.headers.get("user-agent") == USER_AGENT for r in requests)
    assert all("cookie" not in r.headers for r in requests)


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[str]:
    """An HTTPS server on 127.0.0.1 with a self-signed certificate made by openssl."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip

    class Feed(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = feed(1)
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Feed)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}/feed.xml"
    finally:
        server.shutdown()
        server.server_close()


def test_self_signed_certificate_is_a_tls_error(tls_server: str) -> None:
    """A23: a certificate no authority signed fails with `tls_error`; never a silent
    downgrade to an unverified connection."""
    spec = FeedSpec(name="tls", group="g", url=tls_server, allow_private=True)
    with Fetcher(total_timeout=10) as fetcher, pytest.raises(FetchError) as raised:
        fetcher.fetch(spec)
    assert raised.value.reason == "tls_error"
