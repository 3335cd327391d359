"""What every command family shares: defaults, exit codes, the sub-command helper."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from textwrap import dedent
from typing import Any

DEFAULT_CONFIG = Path("config/feeds.yaml")
DEFAULT_DB = Path("data/aggregator.db")
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
