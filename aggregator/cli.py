"""Thin commands over the library; the only place errors become exit codes.

Exit codes: 0 success; 1 the work could not be done (database unusable, every feed
failed); 2 bad input (invalid config, bad option). Errors print as one line, never a
traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from textwrap import dedent

from aggregator import __version__
from aggregator.clock import utc_now
from aggregator.config import load_config, parse_duration
from aggregator.daemon import DEFAULT_TICK_SECONDS, Daemon
from aggregator.digest import build_digest
from aggregator.errors import AggregatorError, ConfigError, StoreError
from aggregator.models import Config, FeedState
from aggregator.pipeline import Pipeline, RunReport
from aggregator.render import RENDERERS
from aggregator.store import Store

DEFAULT_CONFIG = Path("config/feeds.yaml")
DEFAULT_DB = Path("data/aggregator.db")
DEFAULT_SINCE = "24h"

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

log = logging.getLogger("aggregator")


class UsageError(AggregatorError):
    """A bad command-line value (exit 2)."""


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
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="log verbosity (logs go to stderr); default: %(default)s",
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
          (stop with Ctrl-C or SIGTERM; read the digest any time with `aggregator digest`)
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

    update = _subcommand(
        commands, "update", "one pass over the due feeds, print a summary, exit",
        """
          aggregator update          # feeds that are due
          aggregator update --all    # every enabled feed, due or not
        """, common,
    )  # fmt: skip
    update.add_argument("--all", action="store_true", help="update every enabled feed")

    digest = _subcommand(
        commands, "digest", "print the cleaned digest: one block per event",
        """
          aggregator digest --since 12h --limit 20 --format markdown > today.md
        """, common,
    )  # fmt: skip
    digest.add_argument(
        "--since", default=DEFAULT_SINCE, metavar="DURATION",
        help="window, e.g. 90m, 12h, 7d; default: %(default)s",
    )  # fmt: skip
    digest.add_argument("--limit", type=int, default=None, metavar="N", help="at most N events")
    digest.add_argument(
        "--format", choices=sorted(RENDERERS), default="text", help="default: %(default)s"
    )

    _subcommand(
        commands, "feeds", "list the feeds with their state (last fetch, status, error, items)",
        """
          aggregator feeds --config config/feeds.yaml
        """, common,
    )  # fmt: skip
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, args.log_level),
        format="%(asctime)s %(levelname)s %(message)s",
        datefmt="%Y-%m-%dT%H:%M:%S",
        stream=sys.stderr,
    )
    # APScheduler logs every run of the tick at INFO: noise over months of uptime.
    logging.getLogger("apscheduler").setLevel(max(logging.WARNING, logging.getLogger().level))
    handlers = {"run": _run, "update": _update, "digest": _digest, "feeds": _feeds}
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


def _open_pipeline(args: argparse.Namespace) -> Pipeline:
    config = load_config(args.config)
    store = Store.open(args.db)
    return Pipeline(store=store, config=config)


def _print_digest(store: Store, *, since: timedelta, limit: int | None, fmt: str) -> None:
    now = utc_now()
    start = now - since
    digest = build_digest(store.events_since(start), now=now, since=start, limit=limit)
    sys.stdout.write(RENDERERS[fmt](digest))
    sys.stdout.flush()


def _run(args: argparse.Namespace) -> int:
    if args.tick <= 0:
        raise UsageError(f"--tick must be positive, got {args.tick}")
    pipeline = _open_pipeline(args)

    def show_digest(report: RunReport) -> None:
        _print_digest(pipeline.store, since=parse_duration(DEFAULT_SINCE), limit=None, fmt="text")

    daemon = Daemon(
        pipeline, tick_seconds=args.tick, after_first_pass=show_digest if args.digest else None
    )
    try:
        return daemon.run()
    finally:
        pipeline.close()
        pipeline.store.close()


def _update(args: argparse.Namespace) -> int:
    pipeline = _open_pipeline(args)
    try:
        report = pipeline.run(all_feeds=args.all)
    finally:
        pipeline.close()
        pipeline.store.close()
    print(report.summary())
    for failed in report.failed:
        print(f"  failed: {failed.feed}: {failed.error}")
    all_failed = bool(report.feeds) and len(report.failed) == len(report.feeds)
    return EXIT_FAILED if all_failed else EXIT_OK


def _since(text: str) -> timedelta:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise UsageError(f"--since: {exc}") from exc


def _digest(args: argparse.Namespace) -> int:
    since = _since(args.since)
    if args.limit is not None and args.limit < 1:
        raise UsageError(f"--limit must be at least 1, got {args.limit}")
    store = Store.open(args.db, create=False)
    try:
        _print_digest(store, since=since, limit=args.limit, fmt=args.format)
    finally:
        store.close()
    return EXIT_OK


def _feeds(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    try:
        states = {s.location: s for s in Store.open(args.db, create=False).feed_states()}
    except StoreError:
        states = {}  # nothing fetched yet: every feed shows as never fetched
    print(_feeds_table(config, states))
    return EXIT_OK


def _feeds_table(config: Config, states: dict[str, FeedState]) -> str:
    header = ("FEED", "GROUP", "STATUS", "LAST FETCH", "ITEMS", "ERROR")
    rows = [header]
    for spec in config.feeds:
        state = states.get(spec.location)
        status = "disabled" if not spec.enabled else state.status if state else "never fetched"
        rows.append(
            (
                spec.name,
                spec.group,
                status,
                _short_time(state.last_fetch) if state else "-",
                str(state.entry_count) if state else "0",
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
