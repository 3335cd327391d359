"""A live blog (one feed, one title, every item its own text) through the real pipeline:
each entry verifies at most `MAX_VERIFIED_CANDIDATES` earlier ones, not all of them,
and a copy of one of its items is still found, under the same title or another."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aggregator.dedup import decide, grouping
from aggregator.dedup.grouping import MAX_VERIFIED_CANDIDATES, Match
from aggregator.dedup.index import Fingerprint
from aggregator.dedup.signature import Signatures
from aggregator.ingest.normalize import normalize_entry
from aggregator.models import RawEntry
from aggregator.store import Store
from tests.support.pipelines import hand_fed_pipeline

START = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
LIVE_TITLE = "Live updates: storm hits the coast"
ITEMS = 3 * MAX_VERIFIED_CANDIDATES


def texts(count: int, seed: int = 23) -> list[str]:
    """Distinct texts of 60 words from a vocabulary of made-up words."""
    rng = random.Random(seed)
    syllables = ["ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "pe", "da", "gu", "ze"]
    vocabulary = sorted({"".join(rng.choices(syllables, k=rng.randint(2, 4))) for _ in range(3000)})
    return [" ".join(rng.choices(vocabulary, k=60)) + "." for _ in range(count)]


def raw(number: int, title: str, text: str) -> RawEntry:
    return RawEntry(
        guid=f"live-{number}", link=f"https://live.example/{number}", title=title,
        summary_html=f"<p>{text}</p>", content_html="", author=None,
        published=START + timedelta(minutes=number), updated=None,
    )  # fmt: skip


def matched(store: Store, guid: str) -> tuple[str | None, str | None]:
    """The guid of the entry `guid` was matched with, and the rule."""
    row = store.db.execute(
        "select m.identity, e.match_rule from entries e left join entries m"
        " on m.id = e.matched_entry_id where e.identity = ?",
        [f"guid:{guid}"],
    ).fetchone()
    return (row[0].removeprefix("guid:") if row[0] else None), row[1]


def test_an_entry_of_a_live_blog_verifies_at_most_the_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every earlier item is an LSH candidate of each new one (same title bands); the
    verifications of each entry are counted at `verify`: never more than the bound, and
    the bound is reached (the feed is longer than it)."""
    verified: list[int] = []
    real_verify, real_best_match = grouping.verify, decide.best_match

    def counting_verify(new: Signatures, candidate: Fingerprint) -> Match | None:
        verified[-1] += 1
        return real_verify(new, candidate)

    def per_entry(new: Signatures, candidates: Sequence[Fingerprint], **kwargs: object) -> object:
        verified.append(0)
        return real_best_match(new, candidates, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(grouping, "verify", counting_verify)
    monkeypatch.setattr(decide, "best_match", per_entry)
    store, specs, _, _, pipeline = hand_fed_pipeline(tmp_path / "live.db", START)
    entries = [normalize_entry(raw(n, LIVE_TITLE, text)) for n, text in enumerate(texts(ITEMS))]
    report = pipeline.ingest(specs[0], entries)
    assert report.new == ITEMS and report.duplicates == 0
    assert len(verified) == ITEMS
    assert max(verified) == MAX_VERIFIED_CANDIDATES
    assert verified[: MAX_VERIFIED_CANDIDATES + 1] == list(range(MAX_VERIFIED_CANDIDATES + 1))
    pipeline.close()
    store.close()


def test_a_copy_of_a_live_blog_item_is_found_past_the_bound(tmp_path: Path) -> None:
    """Past the bound, candidates are verified best-first: a copy of a late item under the
    live title matches it, and so does a copy, under the live title, of the one item that
    had a headline of its own (ranked by title bands alone, the live title's items would
    crowd it out)."""
    store, specs, _, clock, pipeline = hand_fed_pipeline(tmp_path / "live.db", START)
    bodies = texts(ITEMS)
    late, own = ITEMS - 20, ITEMS - 7
    titles = [LIVE_TITLE] * ITEMS
    titles[own] = "Coastal towns count the damage"
    pipeline.ingest(
        specs[0],
        [
            normalize_entry(raw(n, title, text))
            for n, (title, text) in enumerate(zip(titles, bodies, strict=True))
        ],
    )
    clock.now = START + timedelta(hours=1)
    edited = " Updated at noon with a correction."  # not an exact copy: a near-duplicate
    pipeline.ingest(specs[1], [normalize_entry(raw(1000, LIVE_TITLE, bodies[late] + edited))])
    pipeline.ingest(specs[2], [normalize_entry(raw(1001, LIVE_TITLE, bodies[own] + edited))])
    assert matched(store, "live-1000") == (f"live-{late}", "same_text")
    assert matched(store, "live-1001") == (f"live-{own}", "same_text")
    pipeline.close()
    store.close()
