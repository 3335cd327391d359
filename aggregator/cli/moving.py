"""The migrate command: move a whole database to another place or engine (a SQLite file
into PostgreSQL, or back)."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from aggregator.cli.common import EXIT_OK, Handler, Subcommand, location_of
from aggregator.lock import writer_lock
from aggregator.store import open_store
from aggregator.store.copying import copy_database

log = logging.getLogger(__name__)


def register(
    commands: Any, common: argparse.ArgumentParser, subcommand: Subcommand
) -> dict[str, Handler]:
    migrate = subcommand(
        commands, "migrate",
        "copy the whole database (--db) into a new, empty one: another file, or PostgreSQL",
        """
          aggregator migrate --db data/aggregator.db --to postgresql://aggregator@db/news
        """, common,
    )  # fmt: skip
    migrate.add_argument(
        "--to", required=True, metavar="PATH|URL",
        help="the new database: a SQLite file or a postgresql:// URL (made if missing)",
    )  # fmt: skip
    return {"migrate": _migrate}


def _migrate(args: argparse.Namespace) -> int:
    target_location = location_of(args.to)
    # No writer on either side meanwhile: the copy is of one moment, and whole.
    with (
        writer_lock(args.db, command="migrate", password_file=args.db_password_file),
        writer_lock(target_location, command="migrate", password_file=args.db_password_file),
    ):
        source = open_store(args.db, password_file=args.db_password_file, create=False)
        try:
            target = open_store(target_location, password_file=args.db_password_file)
            try:
                result = copy_database(
                    source, target,
                    progress=lambda table, rows: log.debug("%s: %d rows", table, rows),
                )  # fmt: skip
                where = target.location
            finally:
                target.close()
        finally:
            source.close()
    rows = ", ".join(f"{count} {table}" for table, count in result.rows.items())
    print(f"copied {source.location} into {where}: {rows}")
    return EXIT_OK
