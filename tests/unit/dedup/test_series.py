"""Parts and editions a title names (dedup/series.py), and what they keep apart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from aggregator.dedup.events import EventIndex
from aggregator.dedup.series import another_item, title_marks
from aggregator.dedup.vectors import event_terms, window_vector
from aggregator.models import WindowEntry
from aggregator.word_frequencies import ordinary_language

NOW = datetime(2026, 1, 5, 12, tzinfo=UTC)
WINDOW = timedelta(hours=72)


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("L'origine de vos mèmes préférés (2/6): la longue semaine de Tintin", {("part", "2")}),
        ("Cher Éric Naulleau (Boxing day #12)", {("part", "12")}),
        ("Les barbouzeries de LVMH [4/5]", {("part", "4")}),
        ("Podcast, ÉPISODE 03 : la dette", {("part", "3")}),
        ("True Detective season 2, part 1", {("part", "2"), ("part", "1")}),
        ("JT du Sud du dimanche 9 février", {("date", "9 fevrier")}),
        ("Le point du 1er mars", {("date", "1 mars")}),
        ("Markets on February 9", {("date", "9 february")}),
        # Numbers that name no part: a fraction, a score, a count, a year.
        ("Covid: 3/4 des Français vaccinés", set()),
        ("PSG-OM 2-1 : le résumé", set()),
        ("Séisme: au moins 14 morts en 2024", set()),
        ("Taxe lapin: Doctolib dit oui", set()),
    ],
)
def test_title_marks(title: str, expected: set[tuple[str, str]]) -> None:
    assert title_marks(title) == expected


def test_another_item_needs_a_kind_both_name_and_no_shared_value() -> None:
    part = {("part", "2")}
    assert another_item(part, {("part", "1")})
    assert another_item(part, {("part", "1"), ("part", "3")})
    assert not another_item(part, {("part", "1"), ("part", "2")})  # the same part again
    assert not another_item(part, {("date", "9 fevrier")})  # nothing to compare
    assert not another_item(set(), {("part", "1")})
    assert another_item({("date", "8 fevrier")}, {("date", "9 fevrier")})


MEME = "L'origine de vos mèmes préférés ({}/6): {}"
MEME_TEXT = "Chaque jour de la semaine, BFMTV raconte l'origine d'un mème culte d'Internet."


def _series_index(first_part: int = 1, feed_id: int = 7) -> EventIndex:
    index = EventIndex(WINDOW, background=ordinary_language)
    for number, words in enumerate(["tempete cote", "finale coupe", "vote depute"] * 3):
        vector = event_terms(f"{words} {number}", "")
        index.observe(vector)
        index.add_member(100 + number, 100 + number, vector, headline_only=True, when=NOW)
    title = MEME.format(first_part, "Harold, l'ingénieur devenu mème")
    vector = event_terms(title, MEME_TEXT)
    index.observe(vector)
    index.add_member(
        1, 1, vector, headline_only=False, when=NOW, feed_id=feed_id,
        marks=title_marks(title),
    )  # fmt: skip
    return index


def _search(index: EventIndex, title: str, feed_id: int) -> int | None:
    vector = event_terms(title, MEME_TEXT)
    index.observe(vector)
    match = index.best_event(vector, headline_only=False, now=NOW, feed_id=feed_id)
    found = index.search(
        vector, headline_only=False, now=NOW, feed_id=feed_id, marks=title_marks(title)
    ).join
    assert match is not None, "the series' items are close enough to join without marks"
    return None if found is None else found.event_id


def test_another_part_of_a_feeds_series_founds_its_own_event() -> None:
    index = _series_index()
    assert _search(index, MEME.format(2, "Harold, l'ingénieur devenu mème"), 7) is None


def test_the_same_part_again_or_another_feeds_part_still_joins() -> None:
    index = _series_index()
    assert _search(index, MEME.format(1, "Harold, l'ingénieur devenu mème"), 7) == 1
    # Another feed's numbering says nothing of this feed's series.
    assert _search(index, MEME.format(2, "Harold, l'ingénieur devenu mème"), 8) == 1


def test_a_restart_reads_the_marks_back_from_the_titles() -> None:
    """A window rebuilt from stored entries keeps the parts apart as the live one did."""
    title = MEME.format(1, "Harold, l'ingénieur devenu mème")
    live = _series_index()
    stored = EventIndex(WINDOW, background=ordinary_language)
    terms = WindowEntry(1, 1, False, NOW, None, None, None, title, MEME_TEXT, None, 7)
    hashes, weights = window_vector(terms)
    stored.add_stored_members([(terms, hashes, weights)])
    assert stored.profiles[1].marks == live.profiles[1].marks == {7: frozenset({("part", "1")})}
    again = MEME.format(2, "Harold, l'ingénieur devenu mème")
    probe = event_terms(again, MEME_TEXT)
    stored.observe(probe)
    assert stored.search(
        probe, headline_only=False, now=NOW, feed_id=7, marks=title_marks(again)
    ).join is None  # fmt: skip


def test_events_of_two_parts_never_merge() -> None:
    index = EventIndex(WINDOW, background=ordinary_language)
    for entry_id, part in ((1, 1), (2, 2)):
        title = f"Titanfall Xbox One bundle (part {part})"
        vector = event_terms(title, "")
        index.observe(vector)
        index.add_member(
            entry_id, entry_id, vector, headline_only=True, when=NOW, feed_id=3,
            marks=title_marks(title),
        )  # fmt: skip
    assert index.merge_candidate(2, NOW) is None
    index.profiles[2].marks = None  # the same headlines without their part numbers
    match = index.merge_candidate(2, NOW)
    assert match is not None and match.event_id == 1
