"""The benchmark corpus: N feeds x M items from the real texts in `../shared/data`.

Originals are real articles (ECB+, RPM2: title and full text) and real headlines (UCI),
in a seeded order. The real sets hold about 5,200 distinct items; a large corpus needs
more originals than that, so once a pool is used up, further originals are
recombinations of real material: an article's sentences mixed with those of another
article under a real headline from UCI, or a UCI headline with the first sentence of an
article as its summary. Nothing is invented word by word.

About `COPY_SHARE` of the items are syndicated copies: an original already placed in
one feed, republished in another feed with small edits (a word dropped, the outlet's
name on the headline, a boilerplate line at the end), as wire copy is.
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

from aggregator.evaluation.datasets import load_ecbplus, load_rpm2, load_uci

SEED = 20261122
# Share of items that are edited copies of an item of another feed (wire copy).
COPY_SHARE = 0.30
# Share of originals that are articles with text; the rest are headlines with a summary
# or none, as section feeds and aggregators publish them.
ARTICLE_SHARE = 0.6
# Items are published over the last two days: inside the default 72 h dedup window.
SPREAD = timedelta(hours=48)
LAST_MODIFIED = datetime(2026, 1, 5, 6, 0, tzinfo=UTC)
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

_SENTENCE = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True, slots=True)
class Item:
    guid: str
    title: str
    text: str
    link: str
    published: datetime
    copy_of: str | None = None  # guid of the original, for copies


@dataclass(frozen=True, slots=True)
class Corpus:
    feeds: list[list[Item]]

    @property
    def items(self) -> int:
        return sum(len(feed) for feed in self.feeds)

    @property
    def copies(self) -> int:
        return sum(item.copy_of is not None for feed in self.feeds for item in feed)

    def summary(self) -> dict[str, object]:
        words = [len(item.text.split()) for feed in self.feeds for item in feed]
        return {
            "feeds": len(self.feeds),
            "items": self.items,
            "copies": self.copies,
            "copy_share": round(self.copies / max(1, self.items), 3),
            "headline_only_items": sum(w < 8 for w in words),
            "mean_words_of_text": round(sum(words) / max(1, len(words)), 1),
            "feed_bytes": sum(len(rss(i, feed)) for i, feed in enumerate(self.feeds)),
        }


def _slug(text: str) -> str:
    return "-".join(re.findall(r"\w+", text.lower())[:8]) or "item"


class _Sources:
    """The real titles and texts, loaded once."""

    def __init__(self, data: Path) -> None:
        articles = [
            (item.title, item.text)
            for item in load_ecbplus(data / "ecbplus")
            + load_rpm2(data / "rpm2-french-news-clusters")
            if item.title and len(item.text.split()) >= 40
        ]
        self.articles = articles
        self.headlines = [
            item.title for item in load_uci(data / "uci-news-aggregator-sample") if item.title
        ]


def _original(k: int, sources: _Sources, rng: random.Random) -> tuple[str, str]:
    """The k-th original: real while the pools last, real material recombined after."""
    articles, headlines = sources.articles, sources.headlines
    if rng.random() < ARTICLE_SHARE:
        index = rng.randrange(len(articles))
        title, text = articles[index]
        if k < len(articles) and rng.random() < 0.5:
            return title, text
        other = articles[rng.randrange(len(articles))][1]
        mine, theirs = _SENTENCE.split(text), _SENTENCE.split(other)
        mixed = mine[: max(3, len(mine) // 2)] + theirs[: max(3, len(theirs) // 2)]
        rng.shuffle(mixed)
        return headlines[rng.randrange(len(headlines))], " ".join(mixed)
    headline = headlines[rng.randrange(len(headlines))]
    if rng.random() < 0.5:
        return headline, ""
    summary = _SENTENCE.split(articles[rng.randrange(len(articles))][1])[0]
    return headline, summary


def _edited(title: str, text: str, outlet: str, rng: random.Random) -> tuple[str, str]:
    """A syndicated copy: the outlet's name on the headline, a word or two dropped, a
    boilerplate line added."""
    words = text.split()
    for _ in range(min(2, len(words) // 50)):
        del words[rng.randrange(len(words))]
    body = " ".join(words)
    if body:
        body += f"\n\nCopyright {outlet}. All rights reserved."
    return f"{title} | {outlet}", body


def build(feeds: int, items_per_feed: int, *, seed: int = SEED, data: Path = DATA) -> Corpus:
    """`feeds` feeds of `items_per_feed` items each, ~30% of them copies, from `seed`."""
    rng = random.Random(seed)
    sources = _Sources(data)
    total = feeds * items_per_feed
    copies = round(total * COPY_SHARE)
    slots = [(f, i) for f in range(feeds) for i in range(items_per_feed)]
    rng.shuffle(slots)
    copy_slots = set(slots[:copies])
    placed: list[tuple[int, Item]] = []  # originals with their feed
    grid: list[list[Item | None]] = [[None] * items_per_feed for _ in range(feeds)]
    newest = LAST_MODIFIED
    # Originals first (so that copies always have something to copy), then copies.
    for k, (f, i) in enumerate(s for s in slots if s not in copy_slots):
        title, text = _original(k, sources, rng)
        guid = f"f{f}-i{i}"
        published = newest - SPREAD * rng.random()
        link = f"https://outlet{f}.example/news/{k}/{_slug(title)}"
        item = Item(guid, title, text, link, published)
        grid[f][i] = item
        placed.append((f, item))
    for f, i in sorted(copy_slots):
        source_feed, original = placed[rng.randrange(len(placed))]
        if source_feed == f:  # a copy comes from another outlet
            source_feed, original = placed[
                (placed.index((source_feed, original)) + 1) % len(placed)
            ]
        title, text = _edited(original.title, original.text, f"Outlet {f}", rng)
        published = original.published + timedelta(minutes=rng.randrange(5, 240))
        link = f"https://outlet{f}.example/wire/{i}/{_slug(title)}"
        grid[f][i] = Item(f"f{f}-i{i}", title, text, link, published, copy_of=original.guid)
    result = [[item for item in row if item is not None] for row in grid]
    for row in result:
        row.sort(key=lambda item: item.published, reverse=True)
    return Corpus(feeds=result)


def rss(index: int, items: list[Item]) -> bytes:
    """One feed as RSS 2.0 (text in `description`, escaped as feeds do)."""
    parts = [
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>',
        f"<title>Outlet {index}</title><link>https://outlet{index}.example/</link>",
        f"<description>Benchmark feed {index}</description>",
    ]
    for item in items:
        parts.append(
            "<item>"
            f"<title>{escape(item.title)}</title>"
            f"<link>{escape(item.link)}</link>"
            f'<guid isPermaLink="false">{escape(item.guid)}</guid>'
            f"<pubDate>{format_datetime(item.published)}</pubDate>"
            f"<description>{escape(item.text)}</description>"
            "</item>"
        )
    parts.append("</channel></rss>\n")
    return "".join(parts).encode("utf-8")


def etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
