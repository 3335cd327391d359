"""The parser and `main`: the only place errors become exit codes.

Exit codes: 0 success; 1 the work could not be done (database unusable, every feed
failed); 2 bad input (invalid config, bad option). Errors print as one line, never a
traceback: an unexpected exception (a bug) prints one line naming it and the file its
traceback was written to (`crash_report`), and exits 1.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import traceback
from collections.abc import Sequence
from pathlib import Path

from aggregator import __version__
from aggregator.cli import feeds, filtering, grouping, moving, reading, running
from aggregator.cli.common import (
    DEFAULT_CONFIG,
    DEFAULT_DB,
    EXIT_FAILED,
    EXIT_USAGE,
    Handler,
    database_of,
    subcommand,
)
from aggregator.clock import utc_now
from aggregator.errors import AggregatorError, ConfigError, UsageError
from aggregator.logs import LOG_FORMATS, LOG_LEVELS, configure_logging

log = logging.getLogger("aggregator")

# The command families, in the order `aggregator --help` lists them.
FAMILIES = (running, reading, feeds, grouping, filtering, moving)


def _common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config", type=Path,
        default=Path(os.environ.get("AGGREGATOR_CONFIG", DEFAULT_CONFIG)),
        help="feed list (YAML); default: $AGGREGATOR_CONFIG or %(default)s",
    )  # fmt: skip
    common.add_argument(
        "--db", default=None, metavar="PATH|URL",
        help="a SQLite file or a postgresql://user@host/db URL; default: $AGGREGATOR_DB,"
        f" else `settings.database` of the config, else {DEFAULT_DB}",
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


def build_parser() -> argparse.ArgumentParser:
    return _build()[0]


def _build() -> tuple[argparse.ArgumentParser, dict[str, Handler]]:
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
    handlers: dict[str, Handler] = {}
    for family in FAMILIES:
        handlers.update(family.register(commands, common, subcommand))
    return parser, handlers


def main(argv: Sequence[str] | None = None) -> int:
    parser, handlers = _build()
    args = parser.parse_args(argv)
    configure_logging(level=args.log_level, fmt=args.log_format)
    try:
        args.db, args.db_password_file, args.loaded_config = database_of(args.db, args.config)
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
