"""The store's fast paths read and write exactly what the plain sqlite-utils code did.

- the dedup window read back as fingerprints (one query, cursor rows) and as columns
  (signature BLOBs joined into matrices) equals a row-by-row read through sqlite-utils;
- an index rebuilt from columns proposes the same candidates as one rebuilt from
  fingerprints;
- the hot per-entry writes and reads (prepared SQL) store the same rows and values as
  sqlite-utils' `insert` / `update` did.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from aggregator.dedup.canonical import choose_canonical
from aggregator.dedup.index import NO_TIME, FingerprintColumns, SimilarityIndex, from_microseconds
from aggregator.dedup.signature import DEFAULT_PARAMS, Signer, signature_from_bytes
from aggregator.dedup.text import distinctive_content
from aggregator.dedup.vectors import event_terms
from aggregator.errors import StoreError
from aggregator.models import CanonicalRule, Entry, FeedSpec, JoinLevel
from aggregator.store import Store, from_db_time, open_store, to_db_time
from aggregator.store.sql import SqlStore

NOW = datetime(2026, 1, 10, 12, 0, 0, 250_001, tzinfo=UTC)
PERM = DEFAULT_PARAMS.num_perm

TEXTS = [
    ("Storm closes ports along the coast", "The storm moved north on Tuesday, closing "
     "airports and ports as officials urged people to stay home and prepare for power "
     "cuts lasting several days across the region."),
    ("Storm closes ports along the coast - Wire", "The storm moved north on Tuesday, "
     "closing airports and ports as officials urged people to stay home and prepare for "
     "power cuts lasting several days across the region."),
    ("Council approves school budget", ""),
    ("Council approves new school budget after debate", "After months of debate the "
     "council voted to approve a new budget for schools and roads, the mayor said."),
    ("Live updates", ""),
]  # fmt: skip


def entry(n: int, title: str, text: str, *, published: datetime | None) -> Entry:
    return Entry(
        identity=f"guid:{n}", guid=f"{n}", url=f"https://example.org/{n}",
        canonical_url=f"https://example.org/{n}" if n % 2 else None, title=title, text=text,
        html=f"<p>{text}</p>", author="Desk" if n % 3 else None, published=published,
        updated=None, content_key=f"key-{n}-{len(text)}",
        distinctive=distinctive_content(title, text),
    )  # fmt: skip


@pytest.fixture
def store(tmp_path: Path) -> Store:
    """A store with a window of entries: some published, some not, two feeds."""
    store = open_store(tmp_path / "fast.db")
    signer = Signer(DEFAULT_PARAMS)
    feeds = store.sync_feeds(
        [
            FeedSpec(name=f"feed {i}", group="news", url=f"https://example.org/{i}.xml")
            for i in (1, 2)
        ],
        NOW,
    )
    feed_ids = sorted(feeds.values())
    with store.transaction():
        for n in range(60):
            title, text = TEXTS[n % len(TEXTS)]
            when = NOW - timedelta(hours=n, microseconds=n)
            published = None if n % 4 == 0 else when - timedelta(minutes=n, microseconds=7)
            event = store.create_event(when)
            store.insert_entry(
                feed_ids[n % 2], entry(n, f"{title} {n // 5}", text, published=published),
                signer.sign(title, text), now=when, event_id=event, level=JoinLevel.FOUNDER,
            )  # fmt: skip
    return store


def plain_rows(store: Store, cutoff: datetime) -> list[dict[str, Any]]:
    return list(
        store.db.query(
            "select * from entries where first_seen >= ? and event_id is not null order by id",
            [to_db_time(cutoff)],
        )
    )


def test_fingerprints_and_columns_equal_a_row_by_row_read(store: Store) -> None:
    cutoff = NOW - timedelta(hours=40)
    rows = plain_rows(store, cutoff)
    assert 0 < len(rows) < 60
    columns = store.fingerprint_columns_since(cutoff, PERM)
    fingerprints = columns.fingerprints()
    assert len(fingerprints) == len(columns) == len(rows)
    for i, (row, fp) in enumerate(zip(rows, fingerprints, strict=True)):
        assert (fp.entry_id, fp.feed_id, fp.event_id) == (
            row["id"], row["feed_id"], row["event_id"],
        )  # fmt: skip
        assert fp.first_seen == from_db_time(row["first_seen"])
        assert fp.published == from_db_time(row["published"])
        assert np.array_equal(fp.signatures.title, signature_from_bytes(row["title_sig"]))
        assert np.array_equal(fp.signatures.body, signature_from_bytes(row["body_sig"]))
        assert fp.signatures.title.dtype == np.uint32
        assert (fp.signatures.title_words, fp.signatures.body_shingles) == (
            row["title_words"], row["body_shingles"],
        )  # fmt: skip
        assert fp.signatures.headline_only is bool(row["headline_only"])
        # The same entry as columns.
        assert (columns.entry_ids[i], columns.feed_ids[i], columns.event_ids[i]) == (
            fp.entry_id, fp.feed_id, fp.event_id,
        )  # fmt: skip
        assert from_microseconds(int(columns.first_seen[i])) == fp.first_seen
        published = int(columns.published[i])
        assert (None if published == NO_TIME else from_microseconds(published)) == fp.published
        assert np.array_equal(columns.title[i], fp.signatures.title)
        assert np.array_equal(columns.body[i], fp.signatures.body)
        assert columns.title_words[i] == fp.signatures.title_words
        assert columns.body_shingles[i] == fp.signatures.body_shingles
        assert columns.headline_only[i] == fp.signatures.headline_only
    assert any(fp.published is None for fp in fingerprints)
    again = FingerprintColumns.from_fingerprints(fingerprints, PERM)
    for name in type(columns).__slots__:
        assert np.array_equal(getattr(again, name), getattr(columns, name)), name
    empty = store.fingerprint_columns_since(NOW + timedelta(days=1), PERM)
    assert len(empty) == 0 and empty.title.shape == (0, PERM)


def test_columns_are_read_in_batches(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    import aggregator.store.sql as store_module

    whole = store.fingerprint_columns_since(NOW - timedelta(days=30), PERM)
    monkeypatch.setattr(store_module, "_FETCH_ROWS", 7)
    batched = store.fingerprint_columns_since(NOW - timedelta(days=30), PERM)
    assert len(whole) == 60
    for name in type(whole).__slots__:
        assert np.array_equal(getattr(whole, name), getattr(batched, name)), name
    assert list(whole.entry_ids) == [
        row["id"] for row in plain_rows(store, NOW - timedelta(days=30))
    ]


def test_index_from_columns_equals_index_from_fingerprints(store: Store) -> None:
    signer = Signer(DEFAULT_PARAMS)
    cutoff = NOW - timedelta(days=30)
    from_objects = SimilarityIndex(signer)
    from_objects.add_all(store.fingerprint_columns_since(cutoff, PERM).fingerprints())
    from_columns = SimilarityIndex(signer)
    from_columns.add_columns(store.fingerprint_columns_since(cutoff, PERM))
    assert len(from_objects) == len(from_columns) == 60
    for title, text in TEXTS:
        query = signer.sign(title, text)
        a, b = from_objects.candidates(query), from_columns.candidates(query)
        assert [fp.entry_id for fp in a] == [fp.entry_id for fp in b]
        assert a, title  # every text was stored, so each finds its own copies
        assert [(fp.first_seen, fp.published, fp.event_id) for fp in a] == [
            (fp.first_seen, fp.published, fp.event_id) for fp in b
        ]


def test_signatures_of_another_size_are_refused(store: Store) -> None:
    with pytest.raises(StoreError, match="reindex"):
        store.fingerprint_columns_since(NOW - timedelta(days=30), 64)


# -- the hot per-entry paths: the same rows as sqlite-utils wrote -------------------------


def reference_insert(store: Store, values: dict[str, Any]) -> int:
    """How insert_entry wrote a row before: sqlite-utils' `insert`."""
    table = store.db.table("entries").insert(values)
    assert table.last_pk is not None
    return int(table.last_pk)


def all_rows(store: Store, table: str) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in store.db.execute(f"select * from {table} order by id")]


def test_writes_equal_sqlite_utils_writes(tmp_path: Path) -> None:
    signer = Signer(DEFAULT_PARAMS)
    fast, plain = open_store(tmp_path / "fast.db"), open_store(tmp_path / "plain.db")
    spec = FeedSpec(name="feed", group="news", url="https://example.org/feed.xml")
    feed = fast.sync_feeds([spec], NOW)[spec.location]
    assert plain.sync_feeds([spec], NOW)[spec.location] == feed
    for n, (title, text) in enumerate(TEXTS * 2):
        when = NOW + timedelta(minutes=n, microseconds=n)
        item = entry(n, title, text, published=None if n % 3 else when)
        signatures = signer.sign(title, text)
        event = fast.create_event(when)
        table = plain.db.table("events").insert(
            {"first_seen": to_db_time(when), "last_seen": to_db_time(when), "member_count": 0,
             "source_count": 0, "updated": to_db_time(when)}
        )  # fmt: skip
        assert table.last_pk == event
        # A new event is a story of its own.
        plain.db.execute("update events set story_id = id where id = ?", [event])
        level, similarity, matched, rule = (
            (JoinLevel.FOUNDER, None, None, None) if n % 2 else
            (JoinLevel.NEAR_DUPLICATE, 0.8125, 1, "same_text")
        )  # fmt: skip
        vector = event_terms(title, text) if n % 4 else None  # vectors stored or not
        hidden = "feeds.yaml:3: block title=x" if n % 3 == 0 else None  # filtered or not
        entry_id = fast.insert_entry(
            feed, item, signatures, now=when, event_id=event, level=level,
            similarity=similarity, matched_entry_id=matched, match_rule=rule, vector=vector,
            hidden_by=hidden,
        )  # fmt: skip
        values = {
            **SqlStore._entry_values(item, signatures, vector, hidden), "feed_id": feed,
            "identity": item.identity, "first_seen": to_db_time(when),
            "last_seen": to_db_time(when), "event_id": event,
            "join_level": str(level), "similarity": similarity, "matched_entry_id": matched,
            "match_rule": rule,
        }  # fmt: skip
        assert reference_insert(plain, values) == entry_id
    # A content update, the same in both.
    later = NOW + timedelta(hours=1)
    changed = entry(3, "A corrected headline", "Corrected text " * 10, published=later)
    vector = event_terms(changed.title, changed.text)
    fast.update_entry_content(
        4, changed, signer.sign(changed.title, changed.text), now=later, vector=vector
    )
    plain.db.table("entries").update(
        4, {**SqlStore._entry_values(changed, signer.sign(changed.title, changed.text), vector),
            "last_seen": to_db_time(later)},
    )  # fmt: skip
    with pytest.raises(Exception, match="no entry"):
        fast.update_entry_content(10**6, changed, signer.sign("a", ""), now=later)
    assert all_rows(fast, "entries") == all_rows(plain, "entries")
    assert all_rows(fast, "events") == all_rows(plain, "events")
    # Reads: the same answers as the plain queries.
    for n in range(len(TEXTS) * 2 + 1):
        found = fast.existing_entry(feed, f"guid:{n}")
        rows = list(plain.db.query(
            "select id, event_id, content_key from entries where feed_id = ? and identity = ?",
            [feed, f"guid:{n}"],
        ))  # fmt: skip
        if not rows:
            assert found is None
        else:
            assert found is not None
            assert (found.id, found.event_id, found.content_key) == tuple(rows[0].values())
    for n in (0, 1, 2, 7):
        title, text = TEXTS[n % len(TEXTS)]
        item = entry(n, title, text, published=None)
        for distinctive in (True, False):
            shown = replace(item, distinctive=distinctive)
            assert fast.exact_duplicate(shown) == plain.exact_duplicate(shown)
    assert fast.exact_duplicate(entry(99, "x", "y", published=None)) is None
    assert fast.event_sizes([3, 1, 2, 3, 999]) == {1: 0, 2: 0, 3: 0}
    fast.close()
    plain.close()


def one_event(path: Path, texts: Sequence[tuple[str, str]]) -> tuple[Store, int]:
    """A store of two feeds (the second of priority 3) and one event of these texts, seven
    minutes apart, alternating feeds, the third without a published time."""
    store = open_store(path)
    signer = Signer(DEFAULT_PARAMS)
    specs = [FeedSpec(name=f"f{i}", group="g", url=f"https://example.org/{i}") for i in (1, 2)]
    feeds = list(store.sync_feeds(specs, NOW).values())
    store.db.execute("update feeds set priority = 3 where id = ?", [feeds[1]])
    event = store.create_event(NOW)
    for n, (title, text) in enumerate(texts):
        when = NOW + timedelta(minutes=7 * n)
        store.insert_entry(
            feeds[n % 2], entry(n, title, text, published=None if n == 2 else when),
            signer.sign(title, text), now=when, event_id=event, level=JoinLevel.SAME_EVENT,
            similarity=0.5 + n / 10,
        )  # fmt: skip
    return store, event


def test_event_summary_and_members_equal_the_plain_queries(tmp_path: Path) -> None:
    store, event = one_event(tmp_path / "events.db", TEXTS)
    empty = store.create_event(NOW)
    expected = {}
    for event_id in (event, empty):
        row = store.db.execute(
            "select (select count(*) from entries where event_id = :id),"
            " (select count(distinct feed_id) from entries where event_id = :id),"
            " (select min(first_seen) from entries where event_id = :id),"
            " (select max(first_seen) from entries where event_id = :id)",
            {"id": event_id},
        ).fetchone()
        expected[event_id] = (1, "earliest", to_db_time(NOW), *row)
        store.set_event_summary(event_id, canonical_entry_id=1, reason="earliest", now=NOW)
        got = store.db.execute(
            "select canonical_entry_id, canonical_reason, updated, member_count, source_count,"
            " first_seen, last_seen from events where id = ?",
            [event_id],
        ).fetchone()
        assert tuple(got) == expected[event_id]
    assert expected[event][3:5] == (5, 2) and expected[empty][3:] == (0, 0, None, None)
    members = store.event_members(event)
    plain = list(store.db.query(
        "select entries.*, feeds.name as feed_name, feeds.grp as feed_group,"
        " feeds.priority as feed_priority from entries join feeds on feeds.id = entries.feed_id"
        " where entries.event_id = ? order by entries.id",
        [event],
    ))  # fmt: skip
    assert [m.id for m in members] == [row["id"] for row in plain] == [1, 2, 3, 4, 5]
    for member, row in zip(members, plain, strict=True):
        assert (member.feed_id, member.feed_name, member.feed_group, member.feed_priority) == (
            row["feed_id"], row["feed_name"], row["feed_group"], row["feed_priority"] or 0,
        )  # fmt: skip
        assert (member.identity, member.url, member.title, member.text, member.html) == (
            row["identity"], row["url"], row["title"], row["text"], row["html"] or "",
        )  # fmt: skip
        assert (member.author, member.published, member.first_seen) == (
            row["author"], from_db_time(row["published"]), from_db_time(row["first_seen"]),
        )  # fmt: skip
        assert (member.event_id, str(member.join_level), member.similarity) == (
            row["event_id"], row["join_level"], row["similarity"],
        )  # fmt: skip
        assert (member.matched_entry_id, member.match_rule) == (
            row["matched_entry_id"], row["match_rule"],
        )  # fmt: skip
    store.close()


def test_member_facts_equal_the_members_and_choose_alike(tmp_path: Path) -> None:
    """The light read for the canonical choice gives what the whole members give: the same
    priorities, times and text lengths in characters (accents and CJK are several bytes),
    so every rule order chooses the same entry for the same reason."""
    texts = [*TEXTS, ("Séisme à Tōkyō", "震度6弱の地震 — élèves évacués " * 3)]
    store, event = one_event(tmp_path / "facts.db", texts)
    members = store.event_members(event)
    facts = store.member_facts(event)
    assert [(f.id, f.feed_priority, f.effective_time, f.text_length) for f in facts] == [
        (m.id, m.feed_priority, m.effective_time, len(m.text)) for m in members
    ]
    assert max(len(m.text.encode()) - len(m.text) for m in members) > 0
    orders = [
        (CanonicalRule.PRIORITY, CanonicalRule.EARLIEST, CanonicalRule.LONGEST),
        (CanonicalRule.LONGEST,),
        (CanonicalRule.EARLIEST, CanonicalRule.PRIORITY),
    ]
    for rules in orders:
        chosen, reason = choose_canonical(members, rules)
        light, light_reason = choose_canonical(facts, rules)
        assert (light.id, light_reason) == (chosen.id, reason)
    assert store.member_facts(store.create_event(NOW)) == []
