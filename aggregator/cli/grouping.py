"""Commands about grouping: eval, explain, events merge/split, stats overlap, reindex.

Thin, like the rest of the CLI: they call the store, the pipeline and the evaluation and
print. `cli.main` registers them; errors become exit codes there.
"""

from __future__ import annotations

import argparse
import json
from itertools import islice
from pathlib import Path
from typing import Any

from aggregator.cli.common import Handler, Subcommand, config_of
from aggregator.clock import utc_now
from aggregator.dedup.event_model import SHIPPED_MODEL
from aggregator.dedup.explain import explain
from aggregator.dedup.signature import DEFAULT_PARAMS, Signer
from aggregator.dedup.term_stats import TermStatistics
from aggregator.dedup.vectors import TERM_VECTOR_RECIPE, event_terms, window_vector
from aggregator.errors import JudgedSetError, StoreError, UsageError
from aggregator.evaluation import calibration, datasets, heldout, judged, syndication, training
from aggregator.evaluation.folds import FoldReport
from aggregator.evaluation.metrics import Scores
from aggregator.evaluation.replay import replay, replay_pairs
from aggregator.lock import writer_lock
from aggregator.pipeline import REBUILD_BATCH, refresh_event
from aggregator.store import open_store
from aggregator.word_frequencies import ordinary_language

EVAL_DATASETS = (*datasets.DATASETS, "syndication", "judged", "calibration")
CALIBRATION_FOLDS = 5  # as `make eval-report` scores the judged folds
# Held-out folds need a unit to split by: syndication builds its copies, it has none.
FOLD_DATASETS = (*datasets.DATASETS, "judged")


def register(
    commands: Any, common: argparse.ArgumentParser, subcommand: Subcommand
) -> dict[str, Handler]:
    """Add the grouping commands to the CLI's sub-parsers; returns name -> handler."""
    evaluate = subcommand(
        commands, "eval", "replay a labelled data set through the daemon's code path and score it",
        """
          aggregator eval uci ../shared/data/uci-news-aggregator-sample
          aggregator eval ecbplus ../shared/data/ecbplus
          aggregator eval rpm2 ../shared/data/rpm2-french-news-clusters
          aggregator eval semeval ../shared/data/semeval2022-task8
          aggregator eval syndication ../shared/data   (copies built from ECB+ and RPM2)
          aggregator eval judged ../shared/data        (the judged real-feed pairs)
          aggregator eval calibration ../shared/data   (the probabilities, held out)
          aggregator eval ecbplus ../shared/data/ecbplus --folds 5 --report docs/eval
        """, common,
    )  # fmt: skip
    evaluate.add_argument("dataset", choices=EVAL_DATASETS)
    evaluate.add_argument("path", type=Path, help="the data set's folder")
    evaluate.add_argument("--limit", type=int, default=None, metavar="N", help="first N items")
    evaluate.add_argument("--format", choices=["text", "json"], default="text")
    evaluate.add_argument(
        "--folds", type=int, default=None, metavar="K",
        help="split by story into K folds, fit on K-1, score each held-out fold",
    )  # fmt: skip
    evaluate.add_argument(
        "--learn", action="store_true",
        help="with --folds: fit the event model on the training folds (and the other "
        "labelled sets, found beside PATH) instead of scoring the shipped one",
    )  # fmt: skip
    evaluate.add_argument(
        "--report", type=Path, default=None, metavar="DIR",
        help="also write DIR/<dataset>[-folds].md and .json (e.g. docs/eval)",
    )  # fmt: skip
    evaluate.add_argument(
        "--pairs", type=Path, default=judged.SHIPPED_PAIRS, metavar="CSV",
        help="judged: the pairs file (default: the set shipped with the code)",
    )  # fmt: skip

    train = subcommand(
        commands, "train", "fit the shipped event model on the labelled data and write it",
        """
          aggregator train ../shared/data            # writes aggregator/dedup/event_model.json
          aggregator train ../shared/data --check    # exit 1 if the shipped file differs
        """, common,
    )  # fmt: skip
    train.add_argument("path", type=Path, help="the data folder (holding every labelled set)")
    train.add_argument(
        "--check", action="store_true",
        help="write nothing; exit 1 when the shipped file is not what the data gives",
    )  # fmt: skip
    train.add_argument(
        "--output", type=Path, default=SHIPPED_MODEL, metavar="FILE",
        help="where to write the model (default: the shipped file)",
    )  # fmt: skip

    why = subcommand(
        commands, "explain", "why an event's items are together, and why one is canonical",
        """
          aggregator explain 12
        """, common,
    )  # fmt: skip
    why.add_argument("event_id", type=int, metavar="ID")

    # The common options go on the actions (the leaves): argparse would let a sub-parser's
    # defaults overwrite values given before the action.
    events = commands.add_parser(
        "events", help="correct the grouping by hand (later updates respect it)",
        description="Correct the grouping by hand; later updates respect it.",
        epilog="example:\n  aggregator events merge 12 15   # event 15 joins event 12\n"
        "  aggregator events split 12 40   # entry 40 leaves event 12 for its own event",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    actions = events.add_subparsers(dest="action", required=True, metavar="ACTION")
    merge = actions.add_parser(
        "merge", parents=[common], help="move every item of event B into event A",
        epilog="example:\n  aggregator events merge 12 15 --db data/aggregator.db",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    merge.add_argument("first", type=int, metavar="A")
    merge.add_argument("second", type=int, metavar="B")
    split = actions.add_parser(
        "split", parents=[common], help="move one entry out of an event, for good",
        epilog="example:\n  aggregator events split 12 40 --db data/aggregator.db",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    split.add_argument("event_id", type=int, metavar="EVENT")
    split.add_argument("entry_id", type=int, metavar="ENTRY")

    stats = subcommand(
        commands, "stats", "statistics about the feeds",
        """
          aggregator stats overlap     # which subscriptions repeat what others carry
        """, common,
    )  # fmt: skip
    stats.add_argument("what", choices=["overlap"])

    subcommand(
        commands, "reindex", "recompute every signature with this version's MinHash parameters",
        """
          aggregator reindex --db data/aggregator.db
        """, common,
    )  # fmt: skip
    return {
        "eval": _eval, "train": _train, "explain": _explain, "events": _events, "stats": _stats,
        "reindex": _reindex,
    }  # fmt: skip


def _train(args: argparse.Namespace) -> int:
    if not args.path.is_dir():
        raise UsageError(f"{args.path}: no such folder")
    text = training.model_text(training.shipped(args.path))
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if current != text:
            print(f"{args.output} differs from the model the data in {args.path} gives")
            return 1
        print(f"{args.output} is the model the data gives")
        return 0
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


def _eval(args: argparse.Namespace) -> int:
    if not args.path.is_dir():
        raise UsageError(f"{args.path}: no such folder")
    if args.dataset == "calibration":
        folds = args.folds or CALIBRATION_FOLDS
        if folds < 2:
            raise UsageError(f"--folds needs at least 2, got {folds}")
        _judged_pairs(args)  # a clear error for a malformed file
        report = calibration.judged_calibration(args.path, folds, pairs_file=args.pairs)
        _emit(args, report.text(), report.as_json())
        return 0
    if args.folds is not None:
        return _eval_folds(args)
    if args.learn:
        raise UsageError("--learn fits on training folds: give --folds K too")
    limit = args.limit
    if args.dataset == "syndication":
        items = datasets.load_ecbplus(args.path / "ecbplus", limit=limit) + datasets.load_rpm2(
            args.path / "rpm2-french-news-clusters", limit=limit
        )
        copies = syndication.evaluate(syndication.build(items))
        _emit(args, copies.report(), {
            "articles": copies.articles, "copies": copies.copies,
            "precision": copies.scores.precision, "recall": copies.scores.recall,
        })  # fmt: skip
        return 0
    if args.dataset == "judged":
        decided = judged.evaluate(args.path, _judged_pairs(args))
        _emit(args, decided.report(), {
            **decided.counts(), "figures": decided.figures(),
            "misses": [
                {"line": d.pair.line, "verdict": d.pair.verdict.value, "together": d.together}
                for d in decided.misses()
            ],
        })  # fmt: skip
        return 0
    if args.dataset == "semeval":
        pairs = replay_pairs(datasets.load_semeval(args.path, limit=limit))
        _emit(args, pairs.report("semeval"), {
            "pairs": pairs.pairs, "precision": pairs.scores.precision,
            "recall": pairs.scores.recall, "accuracy": pairs.accuracy,
        })  # fmt: skip
        return 0
    result = replay(_labelled_items(args))
    _emit(args, result.report(args.dataset), {
        "items": result.items, "labels": result.labels, "groups": result.groups,
        "pairwise": _scores(result.pairwise), "bcubed": _scores(result.bcubed),
        "ms_per_item": result.ms_per_item,
    })  # fmt: skip
    return 0


def _labelled_items(args: argparse.Namespace) -> list[datasets.LabeledItem]:
    try:
        return heldout.LOADERS[args.dataset](args.path, limit=args.limit)
    except (OSError, KeyError, ValueError) as exc:
        raise UsageError(f"{args.path}: not a {args.dataset} folder ({exc})") from exc


def _judged_pairs(args: argparse.Namespace) -> list[judged.JudgedPair]:
    try:
        pairs = judged.load_pairs(args.pairs)
    except OSError as exc:
        raise UsageError(f"{args.pairs}: cannot read the judged pairs ({exc})") from exc
    except JudgedSetError as exc:
        raise UsageError(str(exc)) from exc
    return pairs[: args.limit] if args.limit else pairs


def _eval_folds(args: argparse.Namespace) -> int:
    if args.dataset not in FOLD_DATASETS:
        raise UsageError(f"{args.dataset} has no stories to split by: --folds is for "
                         f"{', '.join(FOLD_DATASETS)}")  # fmt: skip
    if args.folds < 2:
        raise UsageError(f"--folds needs at least 2, got {args.folds}")
    # The data root holds every labelled set: the judged set's PATH is the root itself.
    learner = None
    if args.learn:
        root = args.path if args.dataset == "judged" else args.path.parent
        learner = training.ModelLearner(root, args.dataset)
    try:
        report: FoldReport
        if args.dataset == "judged":
            _judged_pairs(args)  # a clear error for a malformed file
            report = heldout.judged_folds(
                args.path, args.folds, pairs_file=args.pairs, learner=learner
            )
        elif args.dataset == "semeval":
            report = heldout.pair_folds(args.path, args.folds, limit=args.limit, learner=learner)
        else:
            report = heldout.item_folds(
                args.dataset, args.path, args.folds, limit=args.limit, learner=learner
            )
    except (OSError, KeyError) as exc:
        raise UsageError(f"{args.path}: not a {args.dataset} folder ({exc})") from exc
    except ValueError as exc:  # too few stories for the folds asked
        raise UsageError(f"{args.dataset}: {exc}") from exc
    name = f"{args.dataset}-learned-folds" if args.learn else f"{args.dataset}-folds"
    _emit(args, report.text(), report.as_json(), name=name)
    return 0


def _scores(scores: Scores) -> dict[str, float]:
    return {"precision": scores.precision, "recall": scores.recall, "f1": scores.f1}


def _emit(
    args: argparse.Namespace, text: str, document: dict[str, Any], *, name: str | None = None
) -> None:
    document = {"dataset": args.dataset, **document}
    if args.format == "json":
        print(json.dumps(document, indent=2))
    else:
        print(text)
    if args.report is not None:
        _write_report(args, name or args.dataset, text, document)


def _write_report(args: argparse.Namespace, name: str, text: str, document: dict[str, Any]) -> None:
    """A generated report: the command that wrote it, its text and its figures as JSON."""
    command = ["aggregator", "eval", args.dataset, "PATH"]
    if args.folds is not None:
        command += ["--folds", str(args.folds)]
    if getattr(args, "learn", False):
        command.append("--learn")
    if args.limit is not None:
        command += ["--limit", str(args.limit)]
    if args.dataset == "judged" and args.pairs != judged.SHIPPED_PAIRS:
        command += ["--pairs", str(args.pairs)]
    try:
        args.report.mkdir(parents=True, exist_ok=True)
        (args.report / f"{name}.md").write_text(
            f"# {name}\n\nGenerated by `{' '.join(command)} --report {args.report}` "
            "(PATH: the data set's folder in ../shared/data); do not edit by hand.\n\n"
            f"```\n{text}\n```\n", encoding="utf-8",
        )  # fmt: skip
        (args.report / f"{name}.json").write_text(
            json.dumps(document, indent=2) + "\n", encoding="utf-8"
        )
    except OSError as exc:
        raise UsageError(f"{args.report}: cannot write the report ({exc})") from exc


def _explain(args: argparse.Namespace) -> int:
    config = config_of(args)
    store = open_store(args.db, password_file=args.db_password_file, create=False)
    try:
        event = store.event(args.event_id)
        if event is None:
            raise UsageError(f"no event {args.event_id}")
        # Term weights over the window, as the daemon sees them, and the event's members
        # counted once more only if they have left the window.
        stats = TermStatistics(background=ordinary_language)
        cutoff = utc_now() - config.settings.dedup_window
        in_window: set[int] = set()
        window = store.entries_for_events_since(cutoff, TERM_VECTOR_RECIPE)
        while batch := list(islice(window, REBUILD_BATCH)):
            stats.add_hashed_documents([window_vector(stored)[0] for stored in batch])
            in_window.update(stored.entry_id for stored in batch)
        vectors = [event_terms(m.title, m.text, m.url) for m in event.members]
        for member, vector in zip(event.members, vectors, strict=True):
            if member.id not in in_window:
                stats.add(vector)
        explanation = explain(
            event, matched=store.matched_entries(event.id), vectors=vectors, stats=stats,
            merges=store.event_merge_history(event.id),
            separated_from=sorted(store.separated_from(event.id)),
            story_links=store.story_links_of(event.id),
        )  # fmt: skip
    finally:
        store.close()
    print("\n".join(explanation.lines()))
    return 0


def _events(args: argparse.Namespace) -> int:
    config = config_of(args)
    with writer_lock(args.db, password_file=args.db_password_file, command=f"events {args.action}"):
        store = open_store(args.db, password_file=args.db_password_file, create=False)
        try:
            now = utc_now()
            with store.transaction():
                if args.action == "merge":
                    if args.first == args.second:
                        raise UsageError("an event cannot be merged with itself")
                    for event_id in (args.first, args.second):
                        if not store.event_exists(event_id):
                            raise UsageError(f"no event {event_id}")
                    moved = store.merge_events(
                        args.first, args.second, similarity=None, reason="merged by hand", now=now
                    )
                    refresh_event(store, args.first, config.settings.canonical, now=now)
                    message = f"event {args.second} merged into {args.first} ({len(moved)} items)"
                else:
                    try:
                        current = store.entry_event(args.entry_id)
                    except StoreError as exc:
                        raise UsageError(str(exc)) from exc
                    if current != args.event_id:
                        raise UsageError(f"entry {args.entry_id} is not in event {args.event_id}")
                    new_event = store.move_entry_to_new_event(args.entry_id, now=now)
                    store.separate_events(args.event_id, new_event, now=now)
                    for event_id in (args.event_id, new_event):
                        refresh_event(store, event_id, config.settings.canonical, now=now)
                    message = f"entry {args.entry_id} now forms event {new_event}"
        finally:
            store.close()
    print(message)
    return 0


def _stats(args: argparse.Namespace) -> int:
    store = open_store(args.db, password_file=args.db_password_file, create=False)
    try:
        rows = store.feed_overlap()
    finally:
        store.close()
    header = ("FEED", "ITEMS", "ALSO ELSEWHERE", "SHARE")
    table = [header] + [
        (name, str(total), str(shared), f"{100 * shared / total:.0f}%" if total else "-")
        for name, total, shared in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    return 0


def _reindex(args: argparse.Namespace) -> int:
    with writer_lock(args.db, password_file=args.db_password_file, command="reindex"):
        store = open_store(args.db, password_file=args.db_password_file, create=False)
        try:
            signer = Signer(DEFAULT_PARAMS)
            count = 0
            with store.transaction():
                for entry_id, title, text in list(store.all_entry_texts()):
                    store.replace_signatures(entry_id, signer.sign(title, text))
                    count += 1
                store.set_dedup_params(signer.params)
        finally:
            store.close()
    print(f"{count} entries re-signed with {DEFAULT_PARAMS.to_json()}")
    return 0
