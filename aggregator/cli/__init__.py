"""The command line: thin commands over the library, the only place errors become exit codes.

main.py      the parser, `main`, and the commands that run, read and serve
grouping.py  eval, explain, events merge/split, stats overlap, reindex
"""

from aggregator.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
