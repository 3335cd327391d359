"""Loaders for the labelled sets of `../shared/data` (read in place, never copied).

Each loader returns items in arrival order, with the times the replay will use:

- UCI news aggregator (dev): English headlines with real timestamps and publishers.
- ECB+ (dev): full articles with no dates; each topic holds two different events of the
  same kind. Replayed inside one window (shuffled with a fixed seed) so that only the
  content can keep the look-alike events apart: dates would separate them for free.
- RPM2: French articles; `C2` of a theme is about a month after `C1` (the corpus says so),
  so C1 items arrive over one day and C2 items thirty days later.
- SemEval-2022 task 8: pairs of articles with a human similarity score; same event when
  Overall <= 1.5, different when >= 3 (pairs in between are ambiguous and skipped).
"""

from __future__ import annotations

import csv
import gzip
import json
import lzma
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

REPLAY_SEED = 20261122
BASE_TIME = datetime(2026, 1, 5, 6, 0, tzinfo=UTC)
SAME_EVENT_AT_MOST = 1.5
DIFFERENT_EVENT_AT_LEAST = 3.0


@dataclass(frozen=True, slots=True)
class LabeledItem:
    """One article or headline with its gold group."""

    id: str
    source: str  # the feed it arrives from
    title: str
    text: str
    url: str | None
    published: datetime
    label: str
    # The unit never split across folds: what the data set says is broader than the label
    # (ECB+ topic, RPM2 theme); the label itself when nothing is broader.
    group: str = ""

    @property
    def fold_unit(self) -> str:
        return self.group or self.label


@dataclass(frozen=True, slots=True)
class LabeledPair:
    """Two articles and whether people judged them the same event."""

    id: str
    first: LabeledItem
    second: LabeledItem
    same_event: bool
    language: str

    @property
    def articles(self) -> tuple[str, str]:
        """The two article ids (a SemEval pair id is `<id1>_<id2>`): pairs that share an
        article must stay in one fold."""
        first, _, second = self.id.partition("_")
        return first, second or f"{self.id}-2"


DATASETS = ("uci", "ecbplus", "rpm2", "semeval")


def load_uci(path: Path, *, limit: int | None = None) -> list[LabeledItem]:
    """`uci-news-aggregator-sample/`: headlines, real times (ms), STORY labels."""
    with gzip.open(path / "dev.csv.gz", "rt", encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    items = [
        LabeledItem(
            id=f"uci-{row['ID']}",
            source=row["PUBLISHER"] or row["HOSTNAME"],
            title=row["TITLE"],
            text="",
            url=row["URL"].replace("\\?", "?"),
            published=datetime.fromtimestamp(int(row["TIMESTAMP"]) / 1000, tz=UTC),
            label=row["STORY"],
            group=row["STORY"],  # the STORY is already the broad unit (README: "broad")
        )
        for row in rows
    ]
    items.sort(key=lambda item: (item.published, item.id))
    return items[:limit] if limit else items


def _first_line_and_rest(text: str) -> tuple[str, str]:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return "", ""
    return lines[0], "\n".join(lines[1:])


def load_ecbplus(path: Path, *, limit: int | None = None) -> list[LabeledItem]:
    """`ecbplus/`: full texts; first line as title; one window, seeded shuffle."""
    with gzip.open(path / "ecbplus_docs.jsonl.gz", "rt", encoding="utf-8") as handle:
        docs = [json.loads(line) for line in handle]
    docs.sort(key=lambda doc: doc["doc_id"])
    random.Random(REPLAY_SEED).shuffle(docs)
    items = []
    for position, doc in enumerate(docs):
        url = doc.get("source_url") or None
        title, body = _first_line_and_rest(doc["text"])
        items.append(
            LabeledItem(
                id=f"ecb-{doc['doc_id']}",
                source=(urlsplit(url).hostname or "ecbplus") if url else "ecbplus",
                title=title,
                text=body,
                url=url,
                # One article a minute: 538 articles in nine hours, all inside one window.
                published=BASE_TIME + timedelta(minutes=position),
                label=doc["event_cluster"],
                # Both events of a topic are one unit: the look-alike is the test.
                group=f"topic-{doc['topic']}",
            )
        )
    return items[:limit] if limit else items


def load_rpm2(path: Path, *, limit: int | None = None) -> list[LabeledItem]:
    """`rpm2-french-news-clusters/`: C1 over one day, C2 thirty days later."""
    with gzip.open(path / "rpm2_docs.jsonl.gz", "rt", encoding="utf-8") as handle:
        docs = [json.loads(line) for line in handle]
    rng = random.Random(REPLAY_SEED)
    items = []
    for doc in docs:
        offset = timedelta(days=30) if doc["time_cluster"] == "C2" else timedelta(0)
        # Spread over a day in a seeded order, so stories interleave as in a real feed.
        minute = rng.randrange(24 * 60)
        title = doc["title"].strip()
        text = doc["text"].strip()
        if text.startswith(title):
            text = text[len(title) :].strip()
        items.append(
            LabeledItem(
                id=f"rpm2-{doc['doc_id']}",
                source=f"rpm2-{doc['doc_no']:02d}" if isinstance(doc["doc_no"], int) else "rpm2",
                title=title,
                text=text,
                url=None,
                published=BASE_TIME + offset + timedelta(minutes=minute),
                label=doc["event_cluster"],
                # C1 and C2 of a theme are one unit: the same theme a month later.
                group=doc["theme"],
            )
        )
    items.sort(key=lambda item: (item.published, item.id))
    return items[:limit] if limit else items


def load_semeval(path: Path, *, limit: int | None = None) -> list[LabeledPair]:
    """`semeval2022-task8/`: pairs with text; ambiguous scores (1.5 < Overall < 3) skipped."""
    pairs = []
    with lzma.open(path / "pairs_with_text.csv.xz", "rt", encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            overall = float(row["Overall"])
            if SAME_EVENT_AT_MOST < overall < DIFFERENT_EVENT_AT_LEAST:
                continue
            same = overall <= SAME_EVENT_AT_MOST
            items = []
            for side in ("1", "2"):
                title, body = _first_line_and_rest(row[f"text{side}"])
                url = row[f"url{side}"] or None
                items.append(
                    LabeledItem(
                        id=f"semeval-{row['pair_id']}-{side}",
                        source=(urlsplit(url).hostname or f"side{side}") if url else f"side{side}",
                        title=title,
                        text=body,
                        url=url,
                        published=BASE_TIME + timedelta(hours=int(side)),
                        label=row["pair_id"] if same else f"{row['pair_id']}-{side}",
                        group=row["pair_id"],
                    )
                )
            pairs.append(
                LabeledPair(
                    id=row["pair_id"],
                    first=items[0],
                    second=items[1],
                    same_event=same,
                    language=f"{row['lang1']}-{row['lang2']}",
                )
            )
    return pairs[:limit] if limit else pairs


def iter_sources(items: list[LabeledItem]) -> Iterator[str]:
    """Distinct sources in order of first appearance."""
    seen: dict[str, None] = {}
    for item in items:
        seen.setdefault(item.source, None)
    yield from seen
