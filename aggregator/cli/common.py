"""What every command family shares: defaults, exit codes, the sub-command helper."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path
from textwrap import dedent
from typing import Any

from aggregator.config import load_config
from aggregator.errors import ConfigError
from aggregator.models import Config, Settings
from aggregator.urls import is_database_url

DEFAULT_CONFIG = Path("config/feeds.yaml")
DEFAULT_DB = Path(Settings().database)
DEFAULT_SINCE = "24h"

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

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


def location_of(text: str) -> Path | str:
    """A database location as the store takes it: a server URL stays text, a file is a Path."""
    return text if is_database_url(text) else Path(text)


def database_of(
    explicit: str | None, config_path: Path
) -> tuple[Path | str, Path | None, Config | None]:
    """The database a command uses, the PostgreSQL password's file if one is set, and the
    config if it had to be read for them: `--db`, else $AGGREGATOR_DB, else
    `settings.database` of the config, else DEFAULT_DB. The config is read only when the
    location or the password file may come from it (no `--db` or $AGGREGATOR_DB, or a
    server); a config that does not read is left for the command to report."""
    location = explicit or os.environ.get("AGGREGATOR_DB")
    config = None
    if (location is None or is_database_url(location)) and config_path.is_file():
        try:
            config = load_config(config_path)
        except ConfigError:
            config = None
    if config is not None:
        location = location or config.settings.database
    password_file = config.settings.database_password_file if config is not None else None
    return location_of(location or str(DEFAULT_DB)), password_file, config


def config_of(args: argparse.Namespace) -> Config:
    """The command's config: the one `database_of` already read, else read now (its
    ConfigError then reaches the command)."""
    loaded: Config | None = getattr(args, "loaded_config", None)
    return loaded if loaded is not None else load_config(args.config)
