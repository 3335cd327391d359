"""What every command family shares: defaults, exit codes, the sub-command helper."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path
from textwrap import dedent
from typing import Any

from aggregator.models import Settings

DEFAULT_CONFIG = Path("config/feeds.yaml")
DEFAULT_DB = Path(Settings().database)
DEFAULT_SINCE = "24h"

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
SERVER_SCHEMES = ("postgresql://", "postgres://")

Handler = Callable[[argparse.Namespace], int]
Subcommand = Callable[..., argparse.ArgumentParser]


def subcommand(
    commands: Any, name: str, summary: str, example: str, common: argparse.ArgumentParser,
) -> argparse.ArgumentParser:  # fmt: skip
    """A sub-command with the common options, its summary and an example as epilog."""
    parser: argparse.ArgumentParser = commands.add_parser(
        name, parents=[common], help=summary, description=summary,
        epilog="example:\n" + dedent(example).strip("\n"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    return parser


def database_of(explicit: str | None, config_path: Path) -> tuple[Path | str, Path | None]:
    """The database a command uses, and the PostgreSQL password's file if one is set:
    `--db`, else $AGGREGATOR_DB, else `settings.database` of the config (when the config
    reads; a command that needs it reports its errors itself), else DEFAULT_DB. A URL
    stays text; a file is a Path."""
    from aggregator.config import load_config
    from aggregator.errors import ConfigError

    location = explicit or os.environ.get("AGGREGATOR_DB")
    password_file = None
    if config_path.is_file():
        try:
            settings = load_config(config_path).settings
        except ConfigError:
            settings = None
        if settings is not None:
            location = location or settings.database
            password_file = settings.database_password_file
    location = location or str(DEFAULT_DB)
    return (location if location.startswith(SERVER_SCHEMES) else Path(location)), password_file
