"""Commands that read: digest, mark, serve."""

from __future__ import annotations

import argparse
import getpass
import os
import shutil
import sys
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from aggregator.cli.common import DEFAULT_SINCE, EXIT_OK, Handler, Subcommand
from aggregator.clock import utc_now
from aggregator.config import load_config
from aggregator.digest import build_digest, make_query, parse_window
from aggregator.errors import AggregatorError, UsageError
from aggregator.greader.passwords import hash_password
from aggregator.models import MARKS, ApiUser, EventQuery, ReadingState
from aggregator.render import FORMATS, render_digest
from aggregator.store import Store, open_store
from aggregator.web import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    WebApp,
    WebServer,
    loopback_hosts,
    serve_until_stopped,
)


def register(
    commands: Any, common: argparse.ArgumentParser, subcommand: Subcommand
) -> dict[str, Handler]:
    """Add digest, serve and mark to the CLI's sub-parsers; returns name -> handler."""
    digest = subcommand(
        commands, "digest", "print the cleaned digest: one block per event, ranked, by group",
        """
          aggregator digest --since 12h --limit 20 --format markdown > today.md
          aggregator digest --date 2023-07-28 --group world
          aggregator digest --search "corée munitions" --format json
          aggregator digest --format html > digest.html
        """, common,
    )  # fmt: skip
    window = digest.add_mutually_exclusive_group()
    window.add_argument(
        "--since", default=None, metavar="DURATION",
        help="events with an item that arrived in this window, e.g. 90m, 12h, 7d, or 'all';"
        f" default: {DEFAULT_SINCE} (all with --search)",
    )  # fmt: skip
    window.add_argument(
        "--date", default=None, metavar="YYYY-MM-DD",
        help="events with an item published on this day (UTC)",
    )  # fmt: skip
    digest.add_argument(
        "--group", action="append", default=[], metavar="NAME",
        help="only events that a feed of this config group reported (repeatable)",
    )  # fmt: skip
    digest.add_argument(
        "--search", default=None, metavar="WORDS",
        help="only events with an item whose title or text holds every word (accents ignored)",
    )  # fmt: skip
    digest.add_argument("--limit", type=int, default=None, metavar="N", help="at most N events")
    state = digest.add_mutually_exclusive_group()
    state.add_argument(
        "--unread", dest="state", action="store_const", const=ReadingState.UNREAD,
        help="only events not marked read (`aggregator mark read ID...`, or on the page)",
    )  # fmt: skip
    state.add_argument(
        "--starred", dest="state", action="store_const", const=ReadingState.STARRED,
        help="only starred events",
    )  # fmt: skip
    digest.add_argument(
        "--format", choices=FORMATS, default="text",
        help="text (coloured and wrapped on a terminal, plain when piped), markdown, json, or"
        " html (one self-contained file); default: %(default)s",
    )  # fmt: skip

    serve = subcommand(
        commands, "serve", "serve the digest page, event pages, feeds (Atom, JSON Feed), API",
        """
          aggregator serve                      # http://127.0.0.1:8080/
          aggregator serve --port 9000 --images
          (subscribe a feed reader to http://127.0.0.1:8080/feed.atom; stop with Ctrl-C)
        """, common,
    )  # fmt: skip
    serve.add_argument(
        "--host", default=DEFAULT_HOST,
        help="address to listen on; default: %(default)s (this machine only)",
    )  # fmt: skip
    serve.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="default: %(default)s (0: any free port)"
    )
    serve.add_argument(
        "--base-url", default=None, metavar="URL",
        help="address readers use to reach the server, for links in the feeds;"
        " default: http://HOST:PORT",
    )  # fmt: skip
    serve.add_argument(
        "--images", action="store_true",
        help="show images inside articles (off by default: they load from the publisher's"
        " server, which then learns what you read)",
    )  # fmt: skip

    passwd = subcommand(
        commands, "passwd", "make the password hash of a Google Reader API user (for `users:`)",
        """
          aggregator passwd alice          # asks twice; prints the lines for the config
          printf '%s\\n' "$PASSWORD" | aggregator passwd alice   # from a script
        """, common,
    )  # fmt: skip
    passwd.add_argument("name", help="the user name the feed reader app logs in with")

    mark = subcommand(
        commands, "mark", "mark events read, unread, starred or unstarred",
        """
          aggregator mark read 12 15       # ids as the digest and the page show them
          aggregator mark star 12
          aggregator digest --unread       # what is left to read
        """, common,
    )  # fmt: skip
    mark.add_argument("action", choices=list(MARKS), help="what to mark")
    mark.add_argument("event_ids", type=int, nargs="+", metavar="ID", help="event ids")

    return {"digest": _digest, "mark": _mark, "serve": _serve, "passwd": _passwd}


def print_digest(store: Store, *, since: timedelta, limit: int | None, fmt: str) -> None:
    now = utc_now()
    _write_digest(store, make_query(now=now, since=since), now=now, limit=limit, fmt=fmt)


def _write_digest(
    store: Store, query: EventQuery, *, now: datetime, limit: int | None, fmt: str,
    group_order: Sequence[str] = (),
) -> None:  # fmt: skip
    """Select, rank, render and print. Colours and wrapping only on a terminal."""
    digest = build_digest(
        store.find_events(query), now=now, query=query, limit=limit, group_order=group_order,
        known_groups=store.group_names(),
    )  # fmt: skip
    terminal = sys.stdout.isatty()
    # NO_COLOR (no-color.org) and TERM=dumb are how users say "no colours".
    color = terminal and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"
    width = shutil.get_terminal_size().columns if terminal else None
    sys.stdout.write(render_digest(digest, fmt, color=color, width=width))
    sys.stdout.flush()


def _group_order(config_path: Path) -> tuple[str, ...]:
    """Groups in the order of the config file, when there is one: readers of the digest
    and of the page need only the database, the config just orders the sections."""
    if not config_path.exists():
        return ()
    return tuple(dict.fromkeys(feed.group for feed in load_config(config_path).feeds))


def _digest(args: argparse.Namespace) -> int:
    try:
        window = parse_window(args.since, args.date)
    except ValueError as exc:
        raise UsageError(f"--{exc}") from exc
    if args.limit is not None and args.limit < 1:
        raise UsageError(f"--limit must be at least 1, got {args.limit}")
    if args.search is not None and not args.search.split():
        raise UsageError("--search needs at least one word")
    group_order = _group_order(args.config)
    store = open_store(args.db, password_file=args.db_password_file, create=False)
    try:
        known = store.group_names()
        unknown = [name for name in args.group if name not in known]
        if unknown:
            raise UsageError(
                f"--group: no feed in group {unknown[0]!r} (groups: {', '.join(known) or 'none'})"
            )
        now = utc_now()
        query = make_query(
            now=now, window=window, groups=args.group, search=args.search, state=args.state
        )
        _write_digest(
            store, query, now=now, limit=args.limit, fmt=args.format, group_order=group_order
        )
    finally:
        store.close()
    return EXIT_OK


def _mark(args: argparse.Namespace) -> int:
    """Mark events; an id merged into another event marks the event it is part of now.
    Runs beside the daemon: a mark is one short transaction, not a writer of feeds."""
    change = MARKS[args.action]
    store = open_store(args.db, password_file=args.db_password_file, create=False)
    try:
        targets: dict[int, int] = {}
        for event_id in args.event_ids:
            current = store.current_event_id(event_id)
            if current is None:
                raise UsageError(f"no event {event_id} (pruned, or never existed)")
            targets[event_id] = current
        with store.transaction():
            store.mark_events(targets.values(), change, now=utc_now())
    finally:
        store.close()
    for asked, current in targets.items():
        now_part = f" (now part of event {current})" if current != asked else ""
        print(f"event {asked}{now_part}: {args.action}")
    return EXIT_OK


def _api_users(config_path: Path) -> tuple[ApiUser, ...]:
    """The Google Reader API's users (`users:` in the config), none without a config."""
    return load_config(config_path).users if config_path.exists() else ()


def _serve(args: argparse.Namespace) -> int:
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be 0 to 65535, got {args.port}")
    group_order = _group_order(args.config)
    users = _api_users(args.config)
    if loopback_hosts(args.host, args.port) is None and not users:
        raise UsageError(
            f"--host {args.host} listens beyond this machine: add API users to the config"
            " first (`aggregator passwd NAME`), and put TLS in front (see the README)"
        )
    open_store(
        args.db, password_file=args.db_password_file, create=False
    ).close()  # fail now, not on the first request

    def make_app(port: int) -> WebApp:
        return WebApp(
            args.db, base_url=args.base_url or f"http://{args.host}:{port}",
            group_order=group_order, images=args.images,
            allowed_hosts=loopback_hosts(args.host, port, args.base_url), users=users,
            password_file=args.db_password_file,
        )  # fmt: skip

    try:
        server = WebServer((args.host, args.port), make_app)
    except OSError as exc:
        raise AggregatorError(
            f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}"
        ) from exc
    print(f"Serving the digest on {server.app.base_url}/ (Ctrl-C to stop)", flush=True)
    if users:
        names = ", ".join(user.name for user in users)
        print(f"Google Reader API at {server.app.base_url} for {names}", flush=True)
    serve_until_stopped(server)
    return EXIT_OK


def _passwd(args: argparse.Namespace) -> int:
    """Print the `users:` lines for a user: the password's scrypt hash, never the password.
    The password is asked twice on a terminal, else read from the first line of stdin."""
    name = args.name.strip()
    if not name or ":" in name or any(ord(ch) < 0x20 for ch in name):
        raise UsageError("the user name must not be empty or hold a colon or a line break")
    if sys.stdin.isatty():
        password = getpass.getpass(f"API password for {name}: ")
        if getpass.getpass("Again: ") != password:
            raise UsageError("the two passwords differ")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    try:
        hashed = hash_password(password)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    print(f"users:\n  {name}:\n    password_hash: {hashed}")
    return EXIT_OK
