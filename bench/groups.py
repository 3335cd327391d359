"""Print a fingerprint of every dedup decision of a dataset replay.

An optimisation of the hot path must leave every decision unchanged: run this before and
after, and compare (same digest, same groups)::

    python -m bench.groups ecbplus ../shared/data/ecbplus
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
from pathlib import Path

from aggregator.evaluation.datasets import load_ecbplus, load_rpm2, load_uci
from aggregator.evaluation.replay import replay
from aggregator.store import open_store

LOADERS = {"ecbplus": load_ecbplus, "rpm2": load_rpm2, "uci": load_uci}


def decisions(dataset: str, path: Path, limit: int | None = None) -> list[str]:
    """One line per entry: identity, event, level, similarity, matched entry, rule."""
    items = LOADERS[dataset](path, limit=limit)
    with tempfile.TemporaryDirectory(prefix="bench-groups-") as scratch:
        database = Path(scratch) / "groups.db"
        result = replay(items, database=database)
        store = open_store(database, create=False)
        rows = store.db.query(
            "select identity, event_id, join_level, similarity, matched_entry_id, match_rule"
            " from entries order by id"
        )
        lines = ["\t".join(str(value) for value in row.values()) for row in rows]
        store.close()
    lines.append(f"groups={result.groups} bcubed={result.bcubed} pairwise={result.pairwise}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", choices=sorted(LOADERS))
    parser.add_argument("path", type=Path)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--out", type=Path, default=None, help="write every line here too")
    args = parser.parse_args()
    lines = decisions(args.dataset, args.path, args.limit)
    text = "\n".join(lines) + "\n"
    if args.out is not None:
        args.out.write_text(text, encoding="utf-8")
    print(lines[-1])
    print("digest", hashlib.sha256(text.encode()).hexdigest())


if __name__ == "__main__":
    main()
