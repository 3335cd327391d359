"""Thin commands over the library; the only place errors become exit codes.

Exit codes: 0 success; 1 the work could not be done (database unusable, every feed
failed); 2 bad input (invalid config, bad option). Errors print as one line, never a
traceback: an unexpected exception (a bug) prints one line naming it and the file its
traceback was written to (`crash_report`), and exits 1.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from textwrap import dedent

from aggregator import __version__
from aggregator.checks import check_libraries, check_writable
from aggregator.cli.grouping import register as register_grouping_commands
from aggregator.clock import utc_now
from aggregator.config import load_config, parse_config, parse_duration
from aggregator.daemon import DEFAULT_TICK_SECONDS, Daemon
from aggregator.digest import build_digest, make_query, parse_window
from aggregator.errors import AggregatorError, ConfigError, OpmlError, StoreError, UsageError
from aggregator.lock import WriterLock
from aggregator.logs import LOG_FORMATS, LOG_LEVELS, configure_logging
from aggregator.models import MARKS, Config, EventQuery, FeedState, ReadingState
from aggregator.opml import add_feeds, new_feeds, read_opml, write_opml
from aggregator.pipeline import Pipeline, RunReport
from aggregator.render import FORMATS, render_digest
from aggregator.schedule import is_failing
from aggregator.status import gather, render_json, render_text
from aggregator.store import Store
from aggregator.web import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    WebApp,
    WebServer,
    loopback_hosts,
    serve_until_stopped,
)

DEFAULT_CONFIG = Path("config/feeds.yaml")
DEFAULT_DB = Path("data/aggregator.db")
DEFAULT_SINCE = "24h"

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

log = logging.getLogger("aggregator")


def _common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config", type=Path,
        default=Path(os.environ.get("AGGREGATOR_CONFIG", DEFAULT_CONFIG)),
        help="feed list (YAML); default: $AGGREGATOR_CONFIG or %(default)s",
    )  # fmt: skip
    common.add_argument(
        "--db", type=Path, default=Path(os.environ.get("AGGREGATOR_DB", DEFAULT_DB)),
        help="SQLite database; default: $AGGREGATOR_DB or %(default)s",
    )  # fmt: skip
    common.add_argument(
        "--log-level", default="INFO", choices=LOG_LEVELS,
        help="log verbosity (logs go to stderr); default: %(default)s",
    )  # fmt: skip
    common.add_argument(
        "--log-format", default="text", choices=LOG_FORMATS,
        help="text lines, or one JSON object per line (for log collectors);"
        " default: %(default)s",
    )  # fmt: skip
    return common


def _subcommand(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str, summary: str, example: str, common: argparse.ArgumentParser,
) -> argparse.ArgumentParser:  # fmt: skip
    return commands.add_parser(
        name, parents=[common], help=summary, description=summary,
        epilog="example:\n" + dedent(example).strip("\n"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    common = _common_options()
    parser = argparse.ArgumentParser(
        prog="aggregator",
        description="A deduplicating news-feed aggregator: one story, once, with every "
        "source that reported it.",
        epilog="example:\n  aggregator update && aggregator digest --since 12h",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"aggregator {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = _subcommand(
        commands, "run", "run the daemon: poll every feed now, then each on its interval",
        """
          aggregator run --config config/feeds.yaml --db data/aggregator.db --digest
          (stop with Ctrl-C or SIGTERM, reload the config with SIGHUP; read the digest any
          time with `aggregator digest`)
          aggregator run --once      # from cron: the due feeds and maintenance, then exit
        """, common,
    )  # fmt: skip
    run.add_argument(
        "--tick", type=float, default=DEFAULT_TICK_SECONDS, metavar="SECONDS",
        help="how often to look for due feeds; default: %(default)s",
    )  # fmt: skip
    run.add_argument(
        "--digest", action="store_true",
        help="print the digest (last 24 h) to stdout after the first poll",
    )  # fmt: skip
    run.add_argument(
        "--once", action="store_true",
        help="update the due feeds, run the maintenance that is due, then exit (for cron)",
    )  # fmt: skip

    status = _subcommand(
        commands, "status",
        "is the daemon running (pid, last tick); feeds due, ok, failing, retired; sizes",
        """
          aggregator status
          aggregator status --format json     # for monitoring scripts
        """, common,
    )  # fmt: skip
    status.add_argument(
        "--format", choices=["text", "json"], default="text", help="default: %(default)s"
    )

    update = _subcommand(
        commands, "update", "one pass over the due feeds, print a summary, exit",
        """
          aggregator update          # feeds that are due
          aggregator update --all    # every enabled feed, due or not
        """, common,
    )  # fmt: skip
    update.add_argument("--all", action="store_true", help="update every enabled feed")

    digest = _subcommand(
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

    serve = _subcommand(
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

    mark = _subcommand(
        commands, "mark", "mark events read, unread, starred or unstarred",
        """
          aggregator mark read 12 15       # ids as the digest and the page show them
          aggregator mark star 12
          aggregator digest --unread       # what is left to read
        """, common,
    )  # fmt: skip
    mark.add_argument("action", choices=list(MARKS), help="what to mark")
    mark.add_argument("event_ids", type=int, nargs="+", metavar="ID", help="event ids")

    feeds = _subcommand(
        commands, "feeds",
        "list the feeds with their state; import an OPML file into the config; export OPML",
        """
          aggregator feeds                                # list: status, URL, errors
          aggregator feeds import subscriptions.opml      # add its feeds to the YAML file
          aggregator feeds export --output feeds.opml     # OPML of the configured feeds
        """, common,
    )  # fmt: skip
    feeds.add_argument(
        "action", nargs="?", choices=["list", "import", "export"], default="list",
        help="what to do; default: %(default)s",
    )  # fmt: skip
    feeds.add_argument("file", nargs="?", type=Path, help="the OPML file to import")
    feeds.add_argument(
        "--output", "-o", type=Path, default=None, metavar="FILE",
        help="export: write the OPML here instead of stdout",
    )  # fmt: skip
    GROUPING_HANDLERS.update(register_grouping_commands(commands, common, _subcommand))
    return parser


# eval, explain, events, stats, reindex: registered by build_parser().
GROUPING_HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(level=args.log_level, fmt=args.log_format)
    handlers = {
        "run": _run, "update": _update, "digest": _digest, "feeds": _feeds, "serve": _serve,
        "mark": _mark,
        "status": _status, **GROUPING_HANDLERS,
    }  # fmt: skip
    try:
        return handlers[args.command](args)
    except (ConfigError, UsageError) as exc:
        print(f"aggregator: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except AggregatorError as exc:
        print(f"aggregator: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_FAILED
    except Exception as exc:  # a bug: the last line of defence, one line and a report
        where = crash_report(exc, args.command)
        print(
            f"aggregator: internal error in `{args.command}`: {_one_line(exc)}; "
            f"{where} (please report it)",
            file=sys.stderr,
        )
        return EXIT_FAILED


# Longest exception message shown on the one line (the report holds all of it).
_MAX_CRASH_MESSAGE = 200


def _one_line(exc: BaseException) -> str:
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return text if len(text) <= _MAX_CRASH_MESSAGE else text[: _MAX_CRASH_MESSAGE - 3] + "..."


def crash_report(exc: BaseException, command: str) -> str:
    """Write the traceback of an unexpected exception to a file of its own in the temporary
    directory (readable by the user only: it may quote feed data); says where, or why not."""
    text = f"aggregator {__version__}, command `{command}`, {utc_now().isoformat()}\n" + "".join(
        traceback.format_exception(exc)
    )
    try:
        descriptor, name = tempfile.mkstemp(prefix="aggregator-crash-", suffix=".txt")
        with os.fdopen(descriptor, "w", encoding="utf-8", errors="replace") as report:
            report.write(text)
    except OSError as error:
        return f"its traceback could not be written ({error.strerror or error})"
    return f"traceback written to {name}"


@contextmanager
def _writer(args: argparse.Namespace, command: str) -> Iterator[Pipeline]:
    """The pipeline of a command that writes, after the start-up checks, holding the
    database's writer lock (one writer per database) until it is done."""
    config = load_config(args.config)  # a bad config is exit 2, whatever else is wrong
    check_libraries()
    with WriterLock(args.db, command=command):
        store = Store.open(args.db)
        try:
            check_writable(store)
            pipeline = Pipeline(store=store, config=config)
            try:
                yield pipeline
            finally:
                pipeline.close()
        finally:
            store.close()


def _print_digest(store: Store, *, since: timedelta, limit: int | None, fmt: str) -> None:
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


def _run(args: argparse.Namespace) -> int:
    if args.tick <= 0:
        raise UsageError(f"--tick must be positive, got {args.tick}")
    with _writer(args, "run --once" if args.once else "run") as pipeline:

        def show_digest(report: RunReport) -> None:
            since = parse_duration(DEFAULT_SINCE)
            _print_digest(pipeline.store, since=since, limit=None, fmt="text")

        daemon = Daemon(
            pipeline, tick_seconds=args.tick, after_first_pass=show_digest if args.digest else None
        )
        if not args.once:
            return daemon.run()
        report = daemon.run_once()
    return _report(report)


def _update(args: argparse.Namespace) -> int:
    with _writer(args, "update") as pipeline:
        report = pipeline.run(all_feeds=args.all)
    return _report(report)


def _report(report: RunReport) -> int:
    """Print a pass's summary and failures; exit 1 when every feed failed."""
    print(report.summary())
    for failed in report.failed:
        print(f"  failed: {failed.feed}: {failed.error}")
    all_failed = bool(report.feeds) and len(report.failed) == len(report.feeds)
    return EXIT_FAILED if all_failed else EXIT_OK


def _status(args: argparse.Namespace) -> int:
    """Readable while the daemon runs: no lock, no writes. The config is optional: it only
    tells removed feeds from disabled ones, and an invalid one is shown, not fatal."""
    config: Config | None = None
    config_error: str | None = None
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        config_error = str(exc)
    store = Store.open(args.db, create=False)
    try:
        status = gather(
            store, config=config, config_path=args.config, config_error=config_error,
            now=utc_now(),
        )  # fmt: skip
    finally:
        store.close()
    sys.stdout.write(render_json(status) if args.format == "json" else render_text(status))
    return EXIT_OK


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
    store = Store.open(args.db, create=False)
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
    store = Store.open(args.db, create=False)
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


def _serve(args: argparse.Namespace) -> int:
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be 0 to 65535, got {args.port}")
    group_order = _group_order(args.config)
    Store.open(args.db, create=False).close()  # fail now, not on the first request

    def make_app(port: int) -> WebApp:
        return WebApp(
            args.db, base_url=args.base_url or f"http://{args.host}:{port}",
            group_order=group_order, images=args.images,
            allowed_hosts=loopback_hosts(args.host, port, args.base_url),
        )  # fmt: skip

    try:
        server = WebServer((args.host, args.port), make_app)
    except OSError as exc:
        raise AggregatorError(
            f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}"
        ) from exc
    print(f"Serving the digest on {server.app.base_url}/ (Ctrl-C to stop)", flush=True)
    serve_until_stopped(server)
    return EXIT_OK


def _feeds(args: argparse.Namespace) -> int:
    if args.action == "import":
        return _feeds_import(args)
    if args.file is not None:
        raise UsageError(f"'feeds {args.action}' takes no file argument")
    if args.action == "export":
        return _feeds_export(args)
    config = load_config(args.config)
    try:
        store = Store.open(args.db, create=False)
    except StoreError:
        states = {}  # nothing fetched yet: every feed shows as never fetched
    else:
        try:
            states = {state.location: state for state in store.feed_states()}
        finally:
            store.close()
    print(_feeds_table(config, states))
    return EXIT_OK


def _feeds_import(args: argparse.Namespace) -> int:
    """Add the feeds of an OPML file to the YAML config, comments and layout kept."""
    if args.file is None:
        raise UsageError("feeds import needs an OPML file: aggregator feeds import FILE.opml")
    try:
        data = args.file.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {args.file}: {exc.strerror or exc}") from None
    try:
        found, skipped = read_opml(data)
    except OpmlError as exc:
        raise UsageError(f"{args.file}: {exc}") from None
    config = load_config(args.config)
    fresh, left_out = new_feeds(config, found)
    text = args.config.read_text(encoding="utf-8")
    updated = add_feeds(text, fresh)
    # The result must be a valid config before it replaces the user's file.
    parse_config(updated, args.config)
    if fresh:
        temporary = args.config.with_name(args.config.name + ".tmp")
        temporary.write_text(updated, encoding="utf-8")
        temporary.replace(args.config)
    for line in (*skipped, *left_out):
        print(f"  skipped: {line}")
    print(f"{len(fresh)} feeds added to {args.config} ({len(skipped) + len(left_out)} skipped)")
    return EXIT_OK


def _feeds_export(args: argparse.Namespace) -> int:
    """OPML 2.0 of the configured URL feeds, to stdout or --output."""
    data = write_opml(load_config(args.config), now=utc_now())
    if args.output is None:
        sys.stdout.write(data.decode("utf-8"))
        sys.stdout.flush()
    else:
        try:
            args.output.write_bytes(data)
        except OSError as exc:
            raise AggregatorError(f"cannot write {args.output}: {exc.strerror or exc}") from None
    return EXIT_OK


def _feed_status(spec_enabled: bool, state: FeedState | None) -> str:
    """disabled / never fetched / retired (reason) / failing (N times) / the last status."""
    if not spec_enabled:
        return "disabled"
    if state is None:
        return "never fetched"
    if state.retired:
        return f"retired ({state.retired})"
    if is_failing(state.failures):
        return f"failing ({state.failures}x)"
    return state.status


def _feeds_table(config: Config, states: dict[str, FeedState]) -> str:
    header = ("FEED", "GROUP", "STATUS", "LAST FETCH", "ITEMS", "URL", "ERROR")
    rows = [header]
    for spec in config.feeds:
        state = states.get(spec.location)
        # The effective URL when the feed moved (301/308 twice): the YAML is not rewritten.
        url = state.effective_url if state and state.effective_url else spec.location
        moved = " (moved)" if state and state.effective_url else ""
        rows.append(
            (
                spec.name,
                spec.group,
                _feed_status(spec.enabled, state),
                _short_time(state.last_fetch) if state else "-",
                str(state.entry_count) if state else "0",
                url + moved,
                (state.error or "") if state else "",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def _short_time(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "-"
