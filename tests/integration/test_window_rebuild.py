"""A restart rebuilds the event level from the term vectors stored with the entries, into
the same state as deriving every vector from its text again (which is what it did before
vectors were stored, and still does for entries stored without one)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from aggregator.dedup.events import EventIndex
from aggregator.dedup.vectors import (
    TERM_VECTOR_RECIPE,
    decode_vector,
    encode_vector,
    event_terms,
    term_hash,
)
from aggregator.ingest.normalize import normalize_entry
from aggregator.models import Config, RawEntry
from aggregator.pipeline import Pipeline
from aggregator.store import Store, from_db_time
from aggregator.word_frequencies import ordinary_language
from tests.support.clock import FixedClock
from tests.support.pipelines import hand_fed_pipeline

START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)

# Two events told by several feeds (one of them in headlines only), and unrelated items.
STORIES = [
    ("Storm Ciarán closes ports along the Breton coast",
     "Storm Ciarán forced the closure of ports in Brest and Roscoff on Thursday; winds of "
     "150 km/h were measured at the Pointe du Raz, and 1.2 million homes lost power."),
    ("Breton ports shut as Storm Ciarán brings 150 km/h winds",
     "Brest and Roscoff closed their ports. Storm Ciarán left 1.2 million homes without "
     "power in Brittany, the grid operator Enedis said on Thursday."),
    ("Storm Ciarán: Brest and Roscoff ports closed", ""),
    ("L'Assemblée adopte le budget de la Sécurité sociale",
     "Les députés ont adopté jeudi le projet de loi de financement de la Sécurité sociale "
     "pour 2024, après l'usage du 49.3 par la Première ministre Élisabeth Borne."),
    ("Budget de la Sécu : Élisabeth Borne engage le 49.3",
     "La Première ministre a engagé la responsabilité du gouvernement sur le budget de la "
     "Sécurité sociale pour 2024 à l'Assemblée nationale."),
    ("Quokka census finds record numbers on Rottnest Island",
     "Rangers counted 12,000 quokkas on Rottnest Island this spring, the most since the "
     "census began in 2007."),
    ("Lindsay Lohan enters rehab at Betty Ford",
     "The actress checked into the Betty Ford Center in Rancho Mirage on Sunday."),
]  # fmt: skip


def raw(number: int, title: str, text: str) -> RawEntry:
    return RawEntry(
        guid=f"item-{number}", link=f"https://news.example/{number}/{title.lower()[:20]}",
        title=title, summary_html="", content_html=f"<p>{text}</p>" if text else "",
        author=None, published=START + timedelta(minutes=number), updated=None,
    )  # fmt: skip


def state(events: EventIndex) -> dict[str, Any]:
    """Everything the event level decides with, by term hash (ids may be numbered apart)."""
    terms = events.stats.hashes
    counts = events.stats.count_by_id
    return {
        "documents": events.stats.documents,
        "frequencies": {terms[i]: int(counts[i]) for i in range(len(terms)) if counts[i]},
        "centroids": {
            event_id: dict(
                zip([terms[i] for i in p.term_ids.tolist()], p.weights.tolist(), strict=True)
            )
            for event_id, p in events.profiles.items()
        },
        "profiles": {
            event_id: (p.members, p.headline_members, p.last_active, p.earliest, p.latest)
            for event_id, p in events.profiles.items()
        },
        "members": {
            entry_id: (sorted(terms[i] for i in m.term_ids.tolist()), m.when)
            for entry_id, m in events._members.items()
        },
        "postings": {
            terms[term_id]: sorted(e for e in listed if e in events.profiles)
            for term_id, listed in events._postings.items()
        },
    }


@pytest.fixture
def ingested(tmp_path: Path) -> tuple[Store, Config, FixedClock, Pipeline]:
    """A store after a day of updates from three feeds, one item corrected later."""
    store, specs, config, clock, pipeline = hand_fed_pipeline(tmp_path / "window.db", START)
    for number, (title, text) in enumerate(STORIES):
        clock.now = START + timedelta(minutes=10 * number)
        pipeline.ingest(specs[number % 3], [normalize_entry(raw(number, title, text))])
    clock.now += timedelta(hours=1)
    corrected = raw(5, STORIES[5][0], STORIES[5][1] + " Rangers expect more next year.")
    pipeline.ingest(specs[5 % 3], [normalize_entry(corrected)])
    return store, config, clock, pipeline


def test_vectors_are_stored_with_their_entries(
    ingested: tuple[Store, Config, FixedClock, Pipeline],
) -> None:
    """Every entry carries the vector of its current title, text and link, a corrected
    entry the vector of its correction."""
    store = ingested[0]
    rows = store.db.execute(
        "select title, text, coalesce(canonical_url, url), event_terms, event_weights"
        " from entries order by id"
    ).fetchall()
    assert len(rows) == len(STORIES)
    assert any("Rangers expect more" in row[1] for row in rows)
    for title, text, url, terms, weights in rows:
        assert (terms, weights) == encode_vector(event_terms(title, text, url))


def test_a_restart_rebuilds_the_same_window_from_stored_vectors(
    ingested: tuple[Store, Config, FixedClock, Pipeline],
) -> None:
    store, config, clock, live = ingested
    from_vectors = state(Pipeline(store=store, config=config, clock=clock).events)
    store.db.execute("update entries set event_terms = null, event_weights = null")
    from_texts = state(Pipeline(store=store, config=config, clock=clock).events)
    assert from_vectors == from_texts
    # And what the plain path makes of the same entries: each vector derived as a
    # dictionary and added by `add_member`.
    plain = EventIndex(config.settings.dedup_window, background=ordinary_language)
    for row in store.db.query("select * from entries order by id"):
        first_seen = from_db_time(row["first_seen"])
        assert first_seen is not None
        plain.add_member(
            row["id"], row["event_id"],
            event_terms(row["title"], row["text"], row["canonical_url"] or row["url"]),
            headline_only=bool(row["headline_only"]), when=first_seen,
            published=from_db_time(row["published"]), observed=False,
        )  # fmt: skip
    assert from_vectors == state(plain)
    assert len(from_vectors["centroids"]) < len(STORIES)  # some events have several members
    # The running index holds the same, but for the corrected entry (its new vector
    # reaches the centroids at a restart) and the order its centroids were summed in.
    running = state(live.events)
    assert running["members"].keys() == from_vectors["members"].keys()
    assert running["centroids"].keys() == from_vectors["centroids"].keys()


def test_vectors_of_another_recipe_are_derived_again(
    ingested: tuple[Store, Config, FixedClock, Pipeline],
) -> None:
    """Vectors stored under another recipe are never read: the rebuild derives them from
    the text, and the daemon's start forgets them (new ones are stored from then on)."""
    store, config, clock, _ = ingested
    before = state(Pipeline(store=store, config=config, clock=clock).events)
    cutoff = START - timedelta(days=1)
    assert all(
        e.terms is not None for e in store.entries_for_events_since(cutoff, TERM_VECTOR_RECIPE)
    )
    read = list(store.entries_for_events_since(cutoff, "0 another recipe"))
    assert all(e.terms is None and e.weights is None and e.title for e in read)
    store.db.execute("update meta set value = '0 older' where key = 'event_terms_recipe'")
    restarted = Pipeline(store=store, config=config, clock=clock)
    stored = store.db.execute("select count(event_terms) from entries").fetchone()[0]
    assert stored == 0
    assert (
        store.db.execute("select value from meta where key = 'event_terms_recipe'").fetchone()[0]
        == TERM_VECTOR_RECIPE
    )
    assert state(restarted.events) == before


def test_vector_encoding_is_exact() -> None:
    vector = event_terms(*STORIES[3], "https://x.example/budget-secu-49-3-borne")
    terms, weights = decode_vector(*encode_vector(vector))
    assert terms.tolist() == [term_hash(term) for term in vector]
    assert len(set(terms.tolist())) == len(vector)
    assert weights.tolist() == list(vector.values())  # bit for bit, in the same order
    no_terms, no_weights = decode_vector(*encode_vector({}))
    assert len(no_terms) == 0 and len(no_weights) == 0
    two_terms = encode_vector({"stor": 1.0, "ciaran": 0.5})[0]
    with pytest.raises(ValueError, match="2 terms, 1 weights"):
        decode_vector(two_terms, encode_vector({"stor": 1.0})[1])
    with pytest.raises(ValueError, match="8-byte"):
        decode_vector(two_terms[:-1], encode_vector({"stor": 1.0})[1])
