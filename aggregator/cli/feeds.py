"""The feeds command: list the feeds with their state, import OPML, export OPML."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from aggregator.cli.common import EXIT_OK, Handler, Subcommand, config_of
from aggregator.clock import utc_now
from aggregator.config import parse_config
from aggregator.errors import AggregatorError, OpmlError, StoreError, UsageError
from aggregator.models import Config, FeedState
from aggregator.opml import add_feeds, new_feeds, read_opml, write_opml
from aggregator.schedule import is_failing
from aggregator.store import open_store


def register(
    commands: Any, common: argparse.ArgumentParser, subcommand: Subcommand
) -> dict[str, Handler]:
    """Add feeds (list, import, export) to the CLI's sub-parsers; returns name -> handler."""
    feeds = subcommand(
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
    return {"feeds": _feeds}


def _feeds(args: argparse.Namespace) -> int:
    if args.action == "import":
        return _feeds_import(args)
    if args.file is not None:
        raise UsageError(f"'feeds {args.action}' takes no file argument")
    if args.action == "export":
        return _feeds_export(args)
    config = config_of(args)
    try:
        store = open_store(args.db, password_file=args.db_password_file, create=False)
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
    config = config_of(args)
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
    data = write_opml(config_of(args), now=utc_now())
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
