"""The dedup stage alone: signatures, LSH, and the window's rebuild time and memory.

- signatures per second, for headlines (UCI titles) and for 500-word articles (ECB+ and
  RPM2 texts, joined and cut to 500 words), over the same documents: tokenising alone (the
  floor in Python), tokenising with our shingle hashes, datasketch `MinHash.update_batch`
  with its default hash (SHA-1) and with xxh32 over the shingle strings, our body
  signature alone, and our `Signer.sign` (title and body signatures, everything included);
- LSH insert and query rates of our `SimilarityIndex` (columnar, band keys in sorted
  runs) and, in the same run, of the datasketch index it replaced (two `MinHashLSH`, kept
  here as `DatasketchIndex`), with a check that both return the same candidates;
- start-up rebuild: time and memory per item of the in-memory window. Synthetic
  signatures (random uint32) for the LSH part, where 1M real items would take too long to
  sign, from memory (`synthetic`) or read back from a SQLite store (`store`); real corpus
  items (signatures and event term vectors) for the whole window (`real`); and the
  daemon's start over a store of real items, from stored term vectors and deriving them
  from the texts (`restart`).

Each measurement of memory runs in a fresh process (`python -m bench.dedup window N`), so
that one does not inherit the other's heap.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import xxhash
from datasketch import MinHash, MinHashLSH

from aggregator.dedup.events import EventIndex
from aggregator.dedup.index import (
    BODY_LSH_THRESHOLD,
    NO_TIME,
    TITLE_LSH_THRESHOLD,
    Fingerprint,
    FingerprintColumns,
    SimilarityIndex,
    to_microseconds,
)
from aggregator.dedup.signature import DEFAULT_PARAMS, Signatures, Signer, body_shingles
from aggregator.dedup.text import tokens
from aggregator.dedup.vectors import TERM_VECTOR_RECIPE, event_terms
from aggregator.models import Config, Entry, FeedSpec, JoinLevel, Settings
from aggregator.pipeline import Pipeline
from aggregator.store import Store, open_store, to_db_time
from aggregator.word_frequencies import ordinary_language
from bench.corpus import DATA

ARTICLE_WORDS = 500
NOW = datetime(2026, 1, 5, 6, 0, tzinfo=UTC)


def _rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * 4096


def documents(kind: str, count: int) -> list[tuple[str, str]]:
    """(title, text) pairs: real headlines, or real articles of exactly 500 words."""
    from aggregator.evaluation.datasets import load_ecbplus, load_rpm2, load_uci

    if kind == "headline":
        titles = [item.title for item in load_uci(DATA / "uci-news-aggregator-sample")]
        return [(titles[i % len(titles)], "") for i in range(count)]
    items = load_ecbplus(DATA / "ecbplus") + load_rpm2(DATA / "rpm2-french-news-clusters")
    words = " ".join(item.text for item in items).split()
    docs = []
    for i in range(count):
        start = (i * 137) % max(1, len(words) - ARTICLE_WORDS)
        docs.append((items[i % len(items)].title, " ".join(words[start : start + ARTICLE_WORDS])))
    return docs


def _rate(fn: Callable[[], None], count: int, *, repeat: int = 3) -> float:
    """Items per second, best of `repeat` (the least disturbed run)."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return round(count / best, 1)


def signature_rates(kind: str, count: int) -> dict[str, float]:
    docs = documents(kind, count)
    signer = Signer(DEFAULT_PARAMS)
    params = DEFAULT_PARAMS
    # The shingles of what a signature covers: the title for headlines, title+text else.
    texts = [f"{title} {text}".strip() for title, text in docs]

    def tokenise() -> None:
        for text in texts:
            tokens(text)

    def tokenise_and_shingle() -> None:
        # Our shingles are their 64-bit hashes, made without building strings.
        for text in texts:
            signer.body_hashes(tokens(text))

    def datasketch(hashfunc: Callable[[bytes], int] | None) -> Callable[[], None]:
        kwargs: dict[str, Any] = {} if hashfunc is None else {"hashfunc": hashfunc}

        def run() -> None:
            for text in texts:
                m = MinHash(num_perm=params.num_perm, **kwargs)
                m.update_batch(list(body_shingles(tokens(text), params)))

        return run

    def ours_body() -> None:
        for text in texts:
            signer.body_signature(tokens(text))

    def ours_sign() -> None:
        for title, text in docs:
            signer.sign(title, text)

    return {
        "tokenise_only": _rate(tokenise, count),
        "tokenise_and_shingle": _rate(tokenise_and_shingle, count),
        "datasketch_update_batch_default_hash": _rate(datasketch(None), count),
        "datasketch_update_batch_xxh32": _rate(datasketch(xxhash.xxh32_intdigest), count),
        "ours_one_signature": _rate(ours_body, count),
        "ours_sign_title_and_body": _rate(ours_sign, count),
    }


class DatasketchIndex:
    """The index as it was before the columnar one, kept as the peer to compare against:
    two datasketch `MinHashLSH` (title at 0.5, body at 0.4) and a dict of fingerprints."""

    def __init__(self, signer: Signer) -> None:
        self.signer = signer
        num_perm = signer.params.num_perm
        self._title = MinHashLSH(threshold=TITLE_LSH_THRESHOLD, num_perm=num_perm)
        self._body = MinHashLSH(threshold=BODY_LSH_THRESHOLD, num_perm=num_perm)
        self._fingerprints: dict[int, Fingerprint] = {}

    def add(self, fingerprint: Fingerprint) -> None:
        key = fingerprint.entry_id
        self._fingerprints[key] = fingerprint
        self._title.insert(key, self.signer.lean(fingerprint.signatures.title))
        self._body.insert(key, self.signer.lean(fingerprint.signatures.body))

    def add_all(self, fingerprints: Iterable[Fingerprint]) -> None:
        for fingerprint in fingerprints:
            self.add(fingerprint)

    def candidates(self, signatures: Signatures) -> list[Fingerprint]:
        keys = set(self._title.query(self.signer.lean(signatures.title)))
        keys.update(self._body.query(self.signer.lean(signatures.body)))
        return [self._fingerprints[k] for k in sorted(keys)]


def synthetic_columns(count: int, seed: int = 1) -> FingerprintColumns:
    """`count` entries with random signatures (uint32), as the store's bulk read gives."""
    rng = np.random.default_rng(seed)
    perm = DEFAULT_PARAMS.num_perm
    ids = np.arange(1, count + 1, dtype=np.int64)
    now = to_microseconds(NOW)
    return FingerprintColumns(
        entry_ids=ids, feed_ids=ids % 200 + 1, event_ids=ids.copy(),
        first_seen=np.full(count, now, dtype=np.int64),
        published=np.full(count, NO_TIME, dtype=np.int64),
        title=rng.integers(0, 2**32, size=(count, perm), dtype=np.uint32),
        body=rng.integers(0, 2**32, size=(count, perm), dtype=np.uint32),
        title_words=np.full(count, 8, dtype=np.int64),
        body_shingles=np.full(count, 300, dtype=np.int64),
        headline_only=np.zeros(count, dtype=np.bool_),
    )  # fmt: skip


def synthetic_fingerprints(count: int, seed: int = 1) -> list[Fingerprint]:
    rng = np.random.default_rng(seed)
    perm = DEFAULT_PARAMS.num_perm
    fingerprints = []
    for i in range(count):
        values = rng.integers(0, 2**32, size=2 * perm, dtype=np.uint32)
        signatures = Signatures(
            title=values[:perm], body=values[perm:], title_words=8, body_shingles=300,
            headline_only=False,
        )  # fmt: skip
        fingerprints.append(Fingerprint(i + 1, 1, i + 1, NOW, None, signatures))
    return fingerprints


def near_copies(fingerprints: Sequence[Fingerprint], seed: int = 3) -> list[Signatures]:
    """Edited copies of indexed signatures (each value kept with probability 0.8), so that
    queries find candidates (random signatures share no band with anything)."""
    rng = np.random.default_rng(seed)
    result = []
    for fp in fingerprints:
        values = np.concatenate([fp.signatures.title, fp.signatures.body])
        fresh = rng.integers(0, 2**32, size=len(values), dtype=np.uint32)
        values = np.where(rng.random(len(values)) < 0.8, values, fresh)
        half = len(values) // 2
        result.append(replace(fp.signatures, title=values[:half], body=values[half:]))
    return result


def lsh_rates(count: int, queries: int = 2000, *, peer: bool = True) -> dict[str, Any]:
    """Insert and query rates of our index and (with `peer`) of the datasketch one, on
    the same fingerprints and queries, and whether both return the same candidates."""
    fingerprints = synthetic_fingerprints(count + queries, seed=2)
    stored, probe = fingerprints[:count], fingerprints[count:]
    rng = random.Random(4)
    copies = near_copies(rng.sample(stored, min(queries, count)))
    signer = Signer(DEFAULT_PARAMS)
    result: dict[str, Any] = {"window": count}
    answers: dict[str, list[list[int]]] = {}
    kinds: list[tuple[str, Callable[[Signer], Any]]] = [("ours", SimilarityIndex)]
    if peer:
        kinds.append(("datasketch", DatasketchIndex))
    for name, make in kinds:
        index = make(signer)
        started = time.perf_counter()
        for fp in stored:  # one by one, as entries arrive
            index.add(fp)
        insert = count / (time.perf_counter() - started)
        started = time.perf_counter()
        make(signer).add_all(stored)  # a rebuild: the bulk path (the same for the peer)
        bulk = count / (time.perf_counter() - started)
        started = time.perf_counter()
        found = [[fp.entry_id for fp in index.candidates(s.signatures)] for s in probe]
        query = len(probe) / (time.perf_counter() - started)
        started = time.perf_counter()
        found += [[fp.entry_id for fp in index.candidates(s)] for s in copies]
        query_copies = len(copies) / (time.perf_counter() - started)
        answers[name] = found
        result[name] = {
            "insert_per_s": round(insert, 1), "add_all_per_s": round(bulk, 1),
            "query_per_s": round(query, 1), "query_copies_per_s": round(query_copies, 1),
            "candidates_per_copy_query": round(
                sum(len(f) for f in found[len(probe) :]) / max(1, len(copies)), 2
            ),
        }  # fmt: skip
        del index
        gc.collect()
    # Backwards-compatible top-level rates: ours.
    result.update({k: result["ours"][k] for k in ("insert_per_s", "query_per_s")})
    if peer:
        result["same_candidates"] = answers["ours"] == answers["datasketch"]
    return result


def _rebuild_store(count: int, path: Path) -> Store:
    """A store holding `count` entries with random signatures, all in the window."""
    store = open_store(path)
    columns = synthetic_columns(count)
    first_seen = to_db_time(NOW)
    with store.transaction():
        store.db.execute(
            "insert into feeds (id, location, name, grp, status) values (1, 'x', 'x', 'x', 'ok')"
        )
        store.db.conn.executemany(
            "insert into events (id, first_seen, last_seen, member_count) values (?, ?, ?, 1)",
            ((i, first_seen, first_seen) for i in range(1, count + 1)),
        )
        store.db.conn.executemany(
            "insert into entries (id, feed_id, identity, title, text, first_seen,"
            " content_key, title_sig, body_sig, title_words, body_shingles, headline_only,"
            " event_id) values (?, 1, ?, '', '', ?, ?, ?, ?, 8, 300, 0, ?)",
            (
                (i + 1, str(i), first_seen, str(i), columns.title[i].astype("<u4").tobytes(),
                 columns.body[i].astype("<u4").tobytes(), i + 1)
                for i in range(count)
            ),
        )  # fmt: skip
    return store


def window_memory(count: int, kind: str, index_kind: str = "ours") -> dict[str, Any]:
    """Rebuild time and resident memory per item of a window of `count` items.

    `synthetic`: the LSH index over random signatures (`ours`: bulk from columns, memory
    measured; then from fingerprint objects, timed; `datasketch`: the peer, from
    fingerprint objects); `store`: the rebuild at start-up, read from SQLite;
    `real`: both indexes (LSH and event centroids) over real corpus items."""
    signer = Signer(DEFAULT_PARAMS)
    if kind == "synthetic" and index_kind == "datasketch":
        fingerprints = synthetic_fingerprints(count)
        gc.collect()
        base = _rss_bytes()
        peer = DatasketchIndex(signer)
        started = time.perf_counter()
        peer.add_all(fingerprints)
        seconds = time.perf_counter() - started
        gc.collect()
        return {
            "items": count, "kind": kind, "index": index_kind, "rebuild_s": round(seconds, 2),
            "lsh_bytes_per_item": round((_rss_bytes() - base) / count),
            "note": "fingerprint objects (~1 KB/item with signatures) made before the "
                    "baseline: not in lsh_bytes_per_item",
        }  # fmt: skip
    if kind == "synthetic":
        # The baseline comes before the columns: an empty index takes over their signature
        # matrices, which are then the index's own memory.
        gc.collect()
        base = _rss_bytes()
        columns = synthetic_columns(count)
        index = SimilarityIndex(signer)
        started = time.perf_counter()
        index.add_columns(columns)
        seconds = time.perf_counter() - started
        del columns
        gc.collect()
        grown = _rss_bytes() - base
        parts = index.footprint()
        del index
        gc.collect()
        # The pipeline's path today: fingerprint objects (made first, not timed) to add_all.
        fingerprints = synthetic_fingerprints(count)
        index = SimilarityIndex(signer)
        started = time.perf_counter()
        index.add_all(fingerprints)
        from_objects = time.perf_counter() - started
        return {
            "items": count, "kind": kind, "index": index_kind,
            "rebuild_from_columns_s": round(seconds, 2),
            "rebuild_from_fingerprints_s": round(from_objects, 2),
            "window_bytes_per_item": round(grown / count),
            "footprint_bytes_per_item": {
                k: round(v / count, 1) for k, v in parts.items() if k not in ("slots", "live")
            },
            "note": "window = the whole index: signatures, band runs, id/time/size columns",
        }  # fmt: skip
    if kind == "store":
        with tempfile.TemporaryDirectory(prefix="bench-window-") as scratch:
            started = time.perf_counter()
            store = _rebuild_store(count, Path(scratch) / "window.db")
            made = time.perf_counter() - started
            cutoff = NOW - timedelta(days=1)
            gc.collect()
            base = _rss_bytes()
            started = time.perf_counter()
            columns = store.fingerprint_columns_since(cutoff, signer.params.num_perm)
            read = time.perf_counter() - started
            index = SimilarityIndex(signer)
            index.add_columns(columns)
            from_columns = time.perf_counter() - started
            del columns
            gc.collect()
            grown = _rss_bytes() - base
            store.close()
        return {
            "items": count, "kind": kind, "store_written_s": round(made, 1),
            "rebuild_columns_since_add_columns_s": round(from_columns, 2),
            "of_which_read_columns_s": round(read, 2),
            "window_bytes_per_item": round(grown / count),
        }  # fmt: skip
    from bench.corpus import build

    feeds = max(1, count // 50)
    corpus = build(feeds, 50)
    items = [item for feed in corpus.feeds for item in feed][:count]
    gc.collect()
    base = _rss_bytes()
    started = time.perf_counter()
    index = SimilarityIndex(signer)
    events = EventIndex(timedelta(hours=72), background=ordinary_language)
    for n, item in enumerate(items, 1):
        signatures = signer.sign(item.title, item.text)
        index.add(Fingerprint(n, 1, n, NOW, item.published, signatures))
        events.add_member(
            n, n, event_terms(item.title, item.text, item.link),
            headline_only=signatures.headline_only, when=NOW, published=item.published,
            observed=False,
        )  # fmt: skip
    seconds = time.perf_counter() - started
    gc.collect()
    grown = _rss_bytes() - base
    return {
        "items": len(items), "kind": kind, "rebuild_with_signing_s": round(seconds, 2),
        "window_bytes_per_item": round(grown / max(1, len(items))),
        "lsh_bytes_per_item": round(
            sum(v for k, v in index.footprint().items() if k not in ("slots", "live"))
            / max(1, len(items))
        ),
        "note": "one event per item (the worst case for centroids); items signed here, "
                "where a restart reads stored signatures and term vectors (`restart`)",
    }  # fmt: skip


def restart_time(count: int, *, derive: bool = True) -> dict[str, Any]:
    """The start-up of the daemon over a window of `count` real corpus items (one event
    each, the worst case for centroids): a new `Pipeline` reading signatures and term
    vectors back from SQLite; then (`derive`) the same start with the stored vectors
    forgotten, so each is derived from its text again (what every start did before).

    Past 100,000 items the corpus items are stored again under new ids (and texts left
    empty: a start that reads stored vectors never reads texts, and a start deriving them
    would find only titles: use `--no-derive` there), so that a million-item store does
    not take hours to sign and index for full-text search."""
    from bench.corpus import build

    wanted = min(count, 100_000)
    corpus = build(-(-wanted // 50), 50)
    items = [item for feed in corpus.feeds for item in feed][:wanted]
    distinct = len(items)
    signer = Signer(DEFAULT_PARAMS)
    prepared = [
        (item, signer.sign(item.title, item.text), event_terms(item.title, item.text, item.link))
        for item in items
    ]
    with tempfile.TemporaryDirectory(prefix="bench-restart-") as scratch:
        path = Path(scratch) / "window.db"
        spec = FeedSpec(name="bench", group="bench", url="http://127.0.0.1/feed")
        config = Config(path=Path(scratch) / "feeds.yaml", feeds=(spec,), settings=Settings())
        store = open_store(path)
        store.check_term_recipe(TERM_VECTOR_RECIPE)
        feed_id = store.sync_feeds([spec], NOW)[spec.location]
        started = time.perf_counter()
        for first in range(0, count, 10_000):
            with store.transaction():
                for n in range(first, min(count, first + 10_000)):
                    item, signatures, vector = prepared[n % distinct]
                    entry = Entry(
                        identity=f"guid:{n}", guid=str(n), url=item.link, canonical_url=None,
                        title=item.title, text=item.text if n < distinct else "", html="",
                        author=None, published=item.published, updated=None,
                        content_key=str(n), distinctive=True,
                    )  # fmt: skip
                    store.insert_entry(
                        feed_id, entry, signatures, now=NOW, event_id=store.create_event(NOW),
                        level=JoinLevel.FOUNDER, vector=vector,
                    )  # fmt: skip
        written = time.perf_counter() - started
        store.close()
        del prepared, items, corpus
        started = time.perf_counter()
        store = open_store(path)
        pipeline = Pipeline(store=store, config=config, signer=signer, clock=lambda: NOW)
        from_vectors = time.perf_counter() - started
        result: dict[str, Any] = {
            "items": count, "distinct_items": distinct, "store_written_s": round(written, 1),
            "start_from_stored_vectors_s": round(from_vectors, 2),
            "events": len(pipeline.events), "terms": len(pipeline.events.stats.hashes),
        }  # fmt: skip
        pipeline.close()
        del pipeline
        if derive:
            store.db.execute("update entries set event_terms = null, event_weights = null")
            started = time.perf_counter()
            pipeline = Pipeline(store=store, config=config, signer=signer, clock=lambda: NOW)
            result["start_deriving_vectors_s"] = round(time.perf_counter() - started, 2)
            pipeline.close()
        store.close()
    result["note"] = (
        "a restart: LSH columns and event centroids rebuilt from SQLite (memory: see the "
        "`real` and `synthetic` kinds; here the freed corpus would hide the growth)"
    )
    return result


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="the dedup stage alone")
    sub = parser.add_subparsers(dest="what", required=True)
    sign = sub.add_parser("signatures")
    sign.add_argument("kind", choices=("headline", "article"))
    sign.add_argument("count", type=int)
    lsh = sub.add_parser("lsh")
    lsh.add_argument("count", type=int)
    lsh.add_argument("--no-peer", action="store_true", help="skip datasketch (large windows)")
    window = sub.add_parser("window")
    window.add_argument("kind", choices=("synthetic", "store", "real", "restart"))
    window.add_argument("count", type=int)
    window.add_argument("--index", choices=("ours", "datasketch"), default="ours")
    window.add_argument(
        "--no-derive", action="store_true", help="restart: skip the start deriving vectors"
    )
    args = parser.parse_args(argv)
    random.seed(1)
    result: dict[str, Any]
    if args.what == "signatures":
        result = {"kind": args.kind, "count": args.count, **signature_rates(args.kind, args.count)}
    elif args.what == "lsh":
        result = lsh_rates(args.count, peer=not args.no_peer)
    elif args.kind == "restart":
        result = restart_time(args.count, derive=not args.no_derive)
    else:
        result = window_memory(args.count, args.kind, args.index)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
