"""Commands that write: run (the daemon), update (one pass); and status beside them."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from aggregator.checks import check_libraries, check_writable
from aggregator.cli.common import (
    DEFAULT_SINCE,
    EXIT_FAILED,
    EXIT_OK,
    Handler,
    Subcommand,
    config_of,
)
from aggregator.cli.reading import print_digest
from aggregator.clock import utc_now
from aggregator.config import parse_duration
from aggregator.daemon import DEFAULT_TICK_SECONDS, Daemon
from aggregator.errors import ConfigError, UsageError
from aggregator.lock import holder, writer_lock
from aggregator.models import Config
from aggregator.pipeline import Pipeline, RunReport
from aggregator.roles import LEASE, FetchWorker, GroupLeader
from aggregator.status import gather, render_json, render_text
from aggregator.store import open_store
from aggregator.store.coordination import ServerWriterLock
from aggregator.store.locations import database_password
from aggregator.urls import is_database_url

ROLES = ("all", "fetch", "group")
log = logging.getLogger(__name__)


def register(
    commands: Any, common: argparse.ArgumentParser, subcommand: Subcommand
) -> dict[str, Handler]:
    """Add run, status and update to the CLI's sub-parsers; returns name -> handler."""
    run = subcommand(
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
        "--role", choices=ROLES, default="all",
        help="all: this process does everything (the default); with a PostgreSQL database,"
        " fetch: a fetch worker (any number, any host), group: the grouping leader (one"
        " leads, others wait as standbys and take over)",
    )  # fmt: skip
    run.add_argument(
        "--lease", type=float, default=LEASE.total_seconds(), metavar="SECONDS",
        help="--role fetch: how long a claimed feed stays this worker's (a dead worker's"
        " feeds are claimed again after it); default: %(default)s",
    )  # fmt: skip
    run.add_argument(
        "--once", action="store_true",
        help="update the due feeds, run the maintenance that is due, then exit (for cron)",
    )  # fmt: skip

    status = subcommand(
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

    update = subcommand(
        commands, "update", "one pass over the due feeds, print a summary, exit",
        """
          aggregator update          # feeds that are due
          aggregator update --all    # every enabled feed, due or not
        """, common,
    )  # fmt: skip
    update.add_argument("--all", action="store_true", help="update every enabled feed")

    return {"run": _run, "status": _status, "update": _update}


@contextmanager
def _writer(args: argparse.Namespace, command: str) -> Iterator[Pipeline]:
    """The pipeline of a command that writes, after the start-up checks, holding the
    database's writer lock (one writer per database) until it is done."""
    config = config_of(args)  # a bad config is exit 2, whatever else is wrong
    check_libraries()
    lock = writer_lock(args.db, password_file=args.db_password_file, command=command)
    with lock:
        store = open_store(args.db, password_file=args.db_password_file)
        store.set_fence(lock.check)  # a writer that lost its lock writes nothing more
        try:
            check_writable(store)
            pipeline = Pipeline(store=store, config=config)
            try:
                yield pipeline
            finally:
                pipeline.close()
        finally:
            store.close()


def _run(args: argparse.Namespace) -> int:
    if args.tick <= 0:
        raise UsageError(f"--tick must be positive, got {args.tick}")
    if args.role != "all":
        return _run_role(args)
    with _writer(args, "run --once" if args.once else "run") as pipeline:

        def show_digest(report: RunReport) -> None:
            since = parse_duration(DEFAULT_SINCE)
            print_digest(pipeline.store, since=since, limit=None, fmt="text")

        daemon = Daemon(
            pipeline, tick_seconds=args.tick, after_first_pass=show_digest if args.digest else None
        )
        if not args.once:
            return daemon.run()
        report = daemon.run_once()
    return _report(report)


def _run_role(args: argparse.Namespace) -> int:
    """A fetch worker or the grouping leader (and its standbys) of a shared database."""
    if not is_database_url(args.db):
        raise UsageError(
            f"--role {args.role} needs a PostgreSQL database (--db postgresql://...);"
            f" {args.db} is a SQLite file: run one process with --role all"
        )
    if args.once:
        raise UsageError("--once runs every role in one process: leave --role out")
    config = config_of(args)
    check_libraries()
    store = open_store(args.db, password_file=args.db_password_file)
    try:
        if args.role == "fetch":
            if args.lease <= 0:
                raise UsageError(f"--lease must be positive, got {args.lease}")
            worker = FetchWorker(store=store, config=config, lease=timedelta(seconds=args.lease))
            try:
                daemon = Daemon(worker, tick_seconds=args.tick, maintenance=(), command=None)
                return daemon.run()
            finally:
                worker.close()
        lock = ServerWriterLock(
            args.db, command="run --role group",
            password=database_password(args.db_password_file),
        )  # fmt: skip
        log.info("waiting to lead: another process groups now, or none yet")
        lock.wait()
        try:
            log.info("leading: rebuilding the window from the database")
            store.set_fence(lock.check)
            leader = GroupLeader(store=store, config=config)
            try:
                daemon = Daemon(leader, tick_seconds=args.tick, command="run --role group")
                return daemon.run()
            finally:
                leader.close()
        finally:
            lock.release()
    finally:
        store.close()


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
        config = config_of(args)
    except ConfigError as exc:
        config_error = str(exc)
    store = open_store(args.db, password_file=args.db_password_file, create=False)
    try:
        status = gather(
            store, config=config, config_path=args.config, config_error=config_error,
            now=utc_now(), writer=holder(args.db, args.db_password_file),
        )  # fmt: skip
    finally:
        store.close()
    sys.stdout.write(render_json(status) if args.format == "json" else render_text(status))
    return EXIT_OK
