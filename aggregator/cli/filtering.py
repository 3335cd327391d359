"""The filters command: which stored items the config's filter rules would hide."""

from __future__ import annotations

import argparse
from typing import Any

from aggregator.cli.common import EXIT_OK, Handler, Subcommand, config_of
from aggregator.pipeline import judge_stored
from aggregator.store import open_store


def register(
    commands: Any, common: argparse.ArgumentParser, subcommand: Subcommand
) -> dict[str, Handler]:
    filters = subcommand(
        commands, "filters",
        "test the config's filter rules on the stored items (nothing is changed)",
        """
          aggregator filters test              # the items the rules would hide or mark read
          aggregator filters test --limit 0    # all of them
        """, common,
    )  # fmt: skip
    filters.add_argument("action", choices=["test"], help="what to do")
    filters.add_argument(
        "--limit", type=int, default=50, metavar="N",
        help="list at most N items (0: all); default: %(default)s",
    )  # fmt: skip
    return {"filters": _filters}


def _filters(args: argparse.Namespace) -> int:
    config = config_of(args)
    store = open_store(args.db, password_file=args.db_password_file, create=False)
    try:
        feeds = store.feed_states()
        ids = {state.location: state.id for state in feeds}
        names = {state.id: state.name for state in feeds}
        lines: list[str] = []
        total = store.counts()["entries"]
        hidden = read = changed = 0
        for row, verdict in judge_stored(store, config, ids):
            label = verdict.hidden_label
            changed += label != row.hidden_by
            feed = names.get(row.feed_id, "?")
            if verdict.hidden_by is not None:
                hidden += 1
                new = "" if row.hidden_by == label else " (shown now)"
                lines.append(f"  hide  {label}{new}\n        [{feed}] {row.title}")
            elif verdict.read_by is not None:
                read += 1
                rule = verdict.read_by
                lines.append(f"  read  {rule.where}: {rule.text}\n        [{feed}] {row.title}")
            for timeout in verdict.timed_out:
                lines.append(f"  slow  {timeout}\n        [{feed}] {row.title}")
    finally:
        store.close()
    count = len({rule.where for spec in config.feeds for rule in spec.filters})
    print(f"{count} filter rules in {config.path}; {total} stored items")
    print(
        f"would hide {hidden}, mark read on arrival {read}; {changed} change from how they "
        "are stored (the daemon judges them again at its next start or reload)"
    )
    shown = lines if args.limit <= 0 else lines[: args.limit]
    for line in shown:
        print(line)
    if len(shown) < len(lines):
        print(f"  ... {len(lines) - len(shown)} more (--limit 0 lists all)")
    return EXIT_OK
