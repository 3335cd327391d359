"""The command line: thin commands over the library, one module per command family.

main.py      the parser and `main`, the only place errors become exit codes
common.py    defaults, exit codes and the sub-command helper every family shares
running.py   run (the daemon), update (one pass), status
reading.py   digest, mark, serve
feeds.py     feeds list, import, export (OPML)
grouping.py  eval, explain, events merge/split, stats overlap, reindex
"""

from aggregator.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
