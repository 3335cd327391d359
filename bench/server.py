"""Serve the benchmark corpus on 127.0.0.1, with ETag and Last-Modified.

Runs in its own process (`python -m bench.server FEEDS ITEMS`) so that serving takes no
CPU time or memory from the process being measured. Prints one JSON line (port, corpus
summary) when ready, then serves `/feed/<i>.xml` until stdin closes. A request carrying
the feed's ETag in If-None-Match, or a date not before its Last-Modified in
If-Modified-Since, gets 304 Not Modified.
"""

from __future__ import annotations

import argparse
import email.utils
import http.server
import json
import sys
import threading

from bench.corpus import LAST_MODIFIED, SEED, build, etag, rss

_LAST_MODIFIED = email.utils.format_datetime(LAST_MODIFIED, usegmt=True)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # 8+8 clients at once, and their retries, never refused

    def __init__(self, bodies: list[tuple[bytes, str]]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.bodies = bodies
        self.counts = {"200": 0, "304": 0, "404": 0}
        self.lock = threading.Lock()


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass  # quiet: 100k requests

    def _count(self, status: str) -> None:
        with self.server.lock:
            self.server.counts[status] += 1

    def do_GET(self) -> None:
        name = self.path.removeprefix("/feed/").removesuffix(".xml")
        if self.path == "/counts":
            with self.server.lock:
                body = json.dumps(self.server.counts).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if not name.isdigit() or int(name) >= len(self.server.bodies):
            self._count("404")
            self.send_error(404)
            return
        body, tag = self.server.bodies[int(name)]
        if_none_match = self.headers.get("If-None-Match")
        since = self.headers.get("If-Modified-Since")
        fresh = if_none_match is not None and tag in [t.strip() for t in if_none_match.split(",")]
        if if_none_match is None and since:
            try:
                fresh = email.utils.parsedate_to_datetime(since) >= LAST_MODIFIED
            except (TypeError, ValueError):
                fresh = False
        if fresh:
            self._count("304")
            self.send_response(304)
            self.send_header("ETag", tag)
            self.send_header("Last-Modified", _LAST_MODIFIED)
            self.end_headers()
            return
        self._count("200")
        self.send_response(200)
        self.send_header("Content-Type", "application/rss+xml; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("ETag", tag)
        self.send_header("Last-Modified", _LAST_MODIFIED)
        self.end_headers()
        self.wfile.write(body)


def main() -> None:
    parser = argparse.ArgumentParser(description="serve the benchmark corpus on 127.0.0.1")
    parser.add_argument("feeds", type=int)
    parser.add_argument("items", type=int)
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args()
    corpus = build(args.feeds, args.items, seed=args.seed)
    bodies = []
    for index, items in enumerate(corpus.feeds):
        body = rss(index, items)
        bodies.append((body, etag(body)))
    server = _Server(bodies)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    ready = {"port": server.server_address[1], "corpus": corpus.summary()}
    print(json.dumps(ready), flush=True)
    sys.stdin.read()  # until the parent closes our stdin (or dies)
    server.shutdown()


if __name__ == "__main__":
    main()
