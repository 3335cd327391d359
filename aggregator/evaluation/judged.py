"""Judged pairs of real feed items, scored through the daemon's code path.

A judged pair names two items of the real feeds of `../shared/data` by identifiers only
(feed file, GUID or link) with a person's verdict: the same event, the same ongoing story
but a different event, or unrelated. The feeds of every folder a pair names are updated
from their files by `Pipeline.update_feeds`, one feed at a time in file-name order with
the clock at the folder's newest item (as a daemon started at the moment of capture),
and each pair is then read back: together in one event, or apart, and in one story
(the level above events: `EventModel.story`) or not.
"""

from __future__ import annotations

import csv
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

import feedparser

from aggregator.dedup.event_model import EventModel
from aggregator.errors import JudgedSetError
from aggregator.evaluation.learning import Params
from aggregator.ingest.normalize import canonical_url, clean_text
from aggregator.models import Config, FeedSpec, Settings
from aggregator.pipeline import Pipeline
from aggregator.store import Store, open_store

# The set shipped with the code: identifiers and verdicts only, never publisher text.
SHIPPED_PAIRS = Path(__file__).with_name("judged_pairs.csv")
COLUMNS = ("feed_a", "item_a", "feed_b", "item_b", "verdict", "category", "reason")
# Files of a folder that are feeds (the folder's READMEs and manifests are not).
FEED_SUFFIXES = (".xml", ".rss", ".atom", ".json")


class Verdict(StrEnum):
    SAME_EVENT = "same_event"
    SAME_STORY = "same_story"
    DIFFERENT = "different"


@dataclass(frozen=True, slots=True)
class JudgedPair:
    """Two items named by feed file (relative to the data folder) and identifier."""

    line: int
    feed_a: str
    item_a: str
    feed_b: str
    item_b: str
    verdict: Verdict
    category: str
    reason: str

    @property
    def items(self) -> tuple[str, str]:
        """The two items as keys: pairs sharing an item stay in one fold."""
        return f"{self.feed_a}#{self.item_a}", f"{self.feed_b}#{self.item_b}"


def load_pairs(path: Path) -> list[JudgedPair]:
    """Every row of a judged-pairs CSV, checked: known verdicts, no empty identifier, no
    item paired with itself, no pair twice (in either order)."""
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise JudgedSetError(f"{path}: header must be {','.join(COLUMNS)}")
        pairs: list[JudgedPair] = []
        seen: set[frozenset[str]] = set()
        for row in reader:
            line = reader.line_num
            values = {column: (row.get(column) or "").strip() for column in COLUMNS}
            if not all(values[column] for column in COLUMNS[:5]):
                raise JudgedSetError(f"{path}:{line}: a feed, an item or the verdict is empty")
            try:
                verdict = Verdict(values["verdict"])
            except ValueError:
                choices = ", ".join(v.value for v in Verdict)
                raise JudgedSetError(
                    f"{path}:{line}: verdict {values['verdict']!r} is not one of {choices}"
                ) from None
            pair = JudgedPair(
                line, values["feed_a"], values["item_a"], values["feed_b"], values["item_b"],
                verdict, values["category"], values["reason"],
            )  # fmt: skip
            key = frozenset(pair.items)
            if len(key) == 1:
                raise JudgedSetError(f"{path}:{line}: an item paired with itself")
            if key in seen:
                raise JudgedSetError(f"{path}:{line}: this pair is judged twice")
            seen.add(key)
            pairs.append(pair)
    return pairs


@dataclass(frozen=True, slots=True)
class Placed:
    """Where the daemon put one item: its entry, its event and its event's story."""

    entry_id: int
    event_id: int
    story_id: int


def folder_of(feed: str) -> str:
    return feed.rsplit("/", 1)[0] if "/" in feed else ""


def newest_item(files: Iterable[Path]) -> datetime:
    """The newest item date of the files: the moment they were captured."""
    newest: datetime | None = None
    for path in files:
        for entry in feedparser.parse(path.read_bytes()).entries:
            parsed = entry.get("published_parsed") or entry.get("updated_parsed")
            if parsed is None:
                continue
            year, month, day, hour, minute, second = parsed[:6]
            when = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
            if when.year <= 2200 and (newest is None or when > newest):
                newest = when
    return newest or datetime.now(UTC)


def place_items(
    root: Path, folders: Iterable[str], *, settings: Settings | None = None,
    model: EventModel | None = None,
) -> dict[tuple[str, str], Placed]:  # fmt: skip
    """Update every feed of each folder (relative to `root`) into a fresh database, and
    map (feed file, identifier) to where the item went, by GUID and by canonical link."""
    placed: dict[tuple[str, str], Placed] = {}
    for folder in sorted(set(folders)):
        files = feed_files(root / folder)
        placed.update(_place_folder(root, files, settings or Settings(), model))
    return placed


def feed_files(directory: Path) -> list[Path]:
    """The feed files of a data folder, sorted (the order they are placed in)."""
    files = sorted(
        path for path in directory.iterdir()
        if path.is_file() and path.suffix.lower() in FEED_SUFFIXES
    )  # fmt: skip
    if not files:
        raise JudgedSetError(f"{directory}: no feed files")
    return files


@contextmanager
def placed_folder(
    root: Path, files: Sequence[Path], settings: Settings, model: EventModel | None
) -> Iterator[Store]:
    """A fresh database with every feed of `files` updated into it, one at a time in file
    order (the same result every run), the clock at the files' newest item."""
    now = newest_item(files)
    specs = [
        FeedSpec(name=path.relative_to(root).as_posix(), group="judged", path=path.resolve())
        for path in files
    ]
    with tempfile.TemporaryDirectory(prefix="aggregator-judged-") as scratch:
        store = open_store(Path(scratch) / "judged.db")
        config = Config(path=Path(scratch) / "judged.yaml", feeds=tuple(specs),
                        settings=settings)  # fmt: skip
        pipeline = Pipeline(store=store, config=config, clock=lambda: now, model=model)
        try:
            for spec in specs:
                pipeline.update_feeds([spec])
            pipeline.close()
            yield store
        finally:
            pipeline.close()
            store.close()


def _place_folder(
    root: Path, files: Sequence[Path], settings: Settings, model: EventModel | None
) -> dict[tuple[str, str], Placed]:
    with placed_folder(root, files, settings, model) as store:
        return placed_keys(store)


def placed_keys(store: Store) -> dict[tuple[str, str], Placed]:
    """Where each placed item is, by (feed name, GUID) and (feed name, canonical link)."""
    placed: dict[tuple[str, str], Placed] = {}
    for entry in store.placed_entries():
        if entry.event_id is None or entry.story_id is None:
            continue
        where = Placed(entry.entry_id, entry.event_id, entry.story_id)
        for key in (entry.guid, entry.canonical_url):
            if key:
                placed.setdefault((entry.feed_name, key), where)
    return placed


def find(placed: dict[tuple[str, str], Placed], feed: str, item: str) -> Placed | None:
    """The item named as a pair names it: its GUID as feedparser reads it, else its link."""
    guid = clean_text(item, single_line=True)
    found = placed.get((feed, guid))
    if found is None:
        link = canonical_url(item)
        found = placed.get((feed, link)) if link else None
    return found


@dataclass(frozen=True, slots=True)
class Decision:
    pair: JudgedPair
    together: bool | None  # None: an item was not found (its feed failed, or it is gone)
    events: tuple[int, int] | None = None
    one_story: bool | None = None  # in one story (always when in one event)


@dataclass(frozen=True, slots=True)
class Rate:
    hits: int
    total: int

    @property
    def value(self) -> float:
        return self.hits / self.total if self.total else 1.0

    def __str__(self) -> str:
        return f"{self.value:.3f} ({self.hits}/{self.total})"


@dataclass(slots=True)
class JudgedResult:
    """The decisions on every judged pair, and the figures the issue's targets name."""

    decisions: list[Decision]
    by_category: dict[str, dict[str, Rate]] = field(default_factory=dict)

    def _resolved(self, *verdicts: Verdict) -> list[Decision]:
        return [d for d in self.decisions if d.together is not None and d.pair.verdict in verdicts]

    def rate(self, verdicts: Sequence[Verdict], *, together: bool) -> Rate:
        chosen = self._resolved(*verdicts)
        return Rate(sum(1 for d in chosen if d.together is together), len(chosen))

    def story_rate(self, verdicts: Sequence[Verdict], *, together: bool) -> Rate:
        chosen = self._resolved(*verdicts)
        return Rate(sum(1 for d in chosen if d.one_story is together), len(chosen))

    @property
    def unresolved(self) -> list[Decision]:
        return [d for d in self.decisions if d.together is None]

    def figures(self) -> dict[str, float]:
        """Each figure is better high (so that a fold's worst is its lowest)."""
        joined = [d for d in self.decisions if d.together]
        same = sum(1 for d in joined if d.pair.verdict is Verdict.SAME_EVENT)
        storied = [d for d in self.decisions if d.one_story]
        related = sum(1 for d in storied if d.pair.verdict is not Verdict.DIFFERENT)
        return {
            "event_p": same / len(joined) if joined else 1.0,
            "same_together": self.rate([Verdict.SAME_EVENT], together=True).value,
            "different_apart": self.rate(
                [Verdict.DIFFERENT, Verdict.SAME_STORY], together=False
            ).value,
            "story_p": related / len(storied) if storied else 1.0,
            "story_together": self.story_rate([Verdict.SAME_STORY], together=True).value,
            "unrelated_apart": self.story_rate([Verdict.DIFFERENT], together=False).value,
        }

    def counts(self) -> dict[str, int]:
        return {
            "pairs": len(self.decisions),
            **{verdict.value: sum(1 for d in self.decisions if d.pair.verdict is verdict)
               for verdict in Verdict},
            "unresolved": len(self.unresolved),
        }  # fmt: skip

    def misses(self) -> list[Decision]:
        """Pairs decided against the verdict at event level."""
        return [
            d for d in self.decisions if d.together is not None
            and d.together != (d.pair.verdict is Verdict.SAME_EVENT)
        ]  # fmt: skip

    def report(self) -> str:
        event_level = [Verdict.SAME_EVENT]
        apart = [Verdict.DIFFERENT, Verdict.SAME_STORY]
        figures = self.figures()
        counted = ", ".join(
            f"{name} {count}" for name, count in self.counts().items() if name != "pairs"
        )
        lines = [
            f"judged: {len(self.decisions)} pairs ({counted})",
            f"  event level: precision of 'together' {figures['event_p']:.3f}; same event "
            f"together {self.rate(event_level, together=True)}; different events apart "
            f"{self.rate(apart, together=False)}",
            f"    of which unrelated apart {self.rate([Verdict.DIFFERENT], together=False)}, "
            f"same story apart {self.rate([Verdict.SAME_STORY], together=False)}",
            f"  story level: precision of 'one story' {figures['story_p']:.3f}; same story "
            f"in one story {self.story_rate([Verdict.SAME_STORY], together=True)}; "
            f"unrelated in two stories {self.story_rate([Verdict.DIFFERENT], together=False)}",
            "  by category: pairs, right at event level",
        ]
        categories = sorted({d.pair.category for d in self.decisions})
        for category in categories:
            chosen = [d for d in self.decisions if d.pair.category == category
                      and d.together is not None]  # fmt: skip
            right = sum(1 for d in chosen if d.together == (d.pair.verdict is Verdict.SAME_EVENT))
            lines.append(f"    {category or '(none)':<14} {Rate(right, len(chosen))}")
        for decision in self.misses():
            pair = decision.pair
            kind = "joined" if decision.together else "kept apart"
            lines.append(
                f"  {kind}, judged {pair.verdict.value} (line {pair.line}, {pair.category}): "
                f"events {decision.events}"
            )
        for decision in self.unresolved:
            lines.append(f"  not found (line {decision.pair.line}): an item of this pair")
        return "\n".join(lines)


def decide(pairs: Sequence[JudgedPair], placed: dict[tuple[str, str], Placed]) -> JudgedResult:
    decisions = []
    for pair in pairs:
        first = find(placed, pair.feed_a, pair.item_a)
        second = find(placed, pair.feed_b, pair.item_b)
        if first is None or second is None:
            decisions.append(Decision(pair, None))
        else:
            events = (first.event_id, second.event_id)
            one_story = first.story_id == second.story_id
            decisions.append(Decision(pair, first.event_id == second.event_id, events, one_story))
    return JudgedResult(decisions)


def evaluate(
    root: Path, pairs: Sequence[JudgedPair], *, settings: Settings | None = None,
    model: EventModel | None = None,
) -> JudgedResult:  # fmt: skip
    """Place the items of every folder the pairs name, and decide each pair."""
    placed = place_items(root, folders_of(pairs), settings=settings, model=model)
    return decide(pairs, placed)


def folders_of(pairs: Iterable[JudgedPair]) -> set[str]:
    """The data folders the pairs' feeds are in."""
    return {folder_of(feed) for pair in pairs for feed in (pair.feed_a, pair.feed_b)}


class FoldScorer:
    """Scores folds of judged pairs. Every folder of the whole set is placed, once per
    parameter set: where an item goes does not depend on which pairs are held out."""

    def __init__(self, root: Path, folders: Iterable[str]) -> None:
        self.root = root
        self.folders = set(folders)
        self._placed: dict[Params, dict[tuple[str, str], Placed]] = {}

    def __call__(
        self, pairs: Sequence[JudgedPair], params: Params
    ) -> tuple[dict[str, int], dict[str, float]]:
        placed = self._placed.get(params)
        if placed is None:
            placed = place_items(
                self.root,
                self.folders,
                settings=params.settings,
                model=params.model,
            )
            self._placed[params] = placed
        result = decide(pairs, placed)
        return result.counts(), result.figures()
