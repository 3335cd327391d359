"""The dedup stage alone: signatures, LSH, and the window's rebuild time and memory.

- signatures per second, for headlines (UCI titles) and for 500-word articles (ECB+ and
  RPM2 texts, joined and cut to 500 words), four ways over the same documents: tokenising
  alone (the floor in Python), datasketch `MinHash.update_batch` with its default hash
  (SHA-1), the same with our xxh32 hash, and our `Signer.sign` (title and body signatures,
  everything included);
- LSH insert and query rates of our `SimilarityIndex` (two `MinHashLSH`);
- start-up rebuild: time and memory per item of the in-memory window. Synthetic
  signatures (random uint32) for the LSH part, where 1M real items would take too long to
  sign; real corpus items (signatures and event term vectors) for the whole window.

Each measurement of memory runs in a fresh process (`python -m bench.dedup window N`), so
that one does not inherit the other's heap.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import xxhash
from datasketch import MinHash

from aggregator.dedup.events import EventIndex, event_terms
from aggregator.dedup.index import Fingerprint, SimilarityIndex
from aggregator.dedup.signature import DEFAULT_PARAMS, Signatures, Signer, body_shingles
from aggregator.dedup.text import tokens
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
        for text in texts:
            body_shingles(tokens(text), params)

    def datasketch(hashfunc: Callable[[bytes], int] | None) -> Callable[[], None]:
        kwargs: dict[str, Any] = {} if hashfunc is None else {"hashfunc": hashfunc}

        def run() -> None:
            for text in texts:
                m = MinHash(num_perm=params.num_perm, **kwargs)
                m.update_batch(list(body_shingles(tokens(text), params)))

        return run

    def ours_body() -> None:
        for text in texts:
            signer.minhash(body_shingles(tokens(text), params))

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


def lsh_rates(count: int, queries: int = 2000) -> dict[str, float]:
    fingerprints = synthetic_fingerprints(count + queries, seed=2)
    index = SimilarityIndex(Signer(DEFAULT_PARAMS))
    started = time.perf_counter()
    index.add_all(fingerprints[:count])
    insert = count / (time.perf_counter() - started)
    probe = fingerprints[count:]
    started = time.perf_counter()
    for fp in probe:
        index.candidates(fp.signatures)
    query = len(probe) / (time.perf_counter() - started)
    return {"window": count, "insert_per_s": round(insert, 1), "query_per_s": round(query, 1)}


def window_memory(count: int, kind: str) -> dict[str, Any]:
    """Rebuild time and resident memory per item of a window of `count` items.

    `synthetic`: the LSH index over random signatures (as read back from the database);
    `real`: both indexes (LSH and event centroids) over real corpus items."""
    if kind == "synthetic":
        fingerprints = synthetic_fingerprints(count)
        gc.collect()
        base = _rss_bytes()
        index = SimilarityIndex(Signer(DEFAULT_PARAMS))
        started = time.perf_counter()
        index.add_all(fingerprints)
        seconds = time.perf_counter() - started
        gc.collect()
        # The fingerprints (with their signatures) are part of the window: count them.
        arrays = sum(fp.signatures.title.nbytes + fp.signatures.body.nbytes for fp in fingerprints)
        grown = _rss_bytes() - base
        return {
            "items": count, "kind": kind, "rebuild_s": round(seconds, 2),
            "lsh_bytes_per_item": round(grown / count),
            "signature_array_bytes_per_item": round(arrays / count),
            "note": "fingerprint objects made before the baseline: their ~1 KB/item is "
                    "not in lsh_bytes_per_item",
        }  # fmt: skip
    from bench.corpus import build

    feeds = max(1, count // 50)
    corpus = build(feeds, 50)
    items = [item for feed in corpus.feeds for item in feed][:count]
    signer = Signer(DEFAULT_PARAMS)
    gc.collect()
    base = _rss_bytes()
    started = time.perf_counter()
    index = SimilarityIndex(signer)
    events = EventIndex(timedelta(hours=72))
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
        "note": "one event per item (the worst case for centroids); items signed here, "
                "where a restart reads stored signatures and re-derives term vectors",
    }  # fmt: skip


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="the dedup stage alone")
    sub = parser.add_subparsers(dest="what", required=True)
    sign = sub.add_parser("signatures")
    sign.add_argument("kind", choices=("headline", "article"))
    sign.add_argument("count", type=int)
    lsh = sub.add_parser("lsh")
    lsh.add_argument("count", type=int)
    window = sub.add_parser("window")
    window.add_argument("kind", choices=("synthetic", "real"))
    window.add_argument("count", type=int)
    args = parser.parse_args(argv)
    random.seed(1)
    result: dict[str, Any]
    if args.what == "signatures":
        result = {"kind": args.kind, "count": args.count, **signature_rates(args.kind, args.count)}
    elif args.what == "lsh":
        result = lsh_rates(args.count)
    else:
        result = window_memory(args.count, args.kind)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
