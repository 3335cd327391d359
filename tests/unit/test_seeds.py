"""Tests for the demo data in ``seeds/``: the generator and the feeds it wrote."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from collections import Counter
from datetime import date
from pathlib import Path
from types import ModuleType
from typing import Any

import feedparser
import pytest

REPO_ROOT = Path(__file__).parents[2]
SEEDS = REPO_ROOT / "seeds"
SCRIPT = SEEDS / "build_feeds.py"
RSS = SEEDS / "feeds" / "003-related.rss"
ATOM = SEEDS / "feeds" / "000-article.atom"

MB_TITLE = (
    "La Maison Blanche affirme qu'un haut responsable russe a demandé à la Corée du Nord "
    "d'augmenter ses ventes de munitions à Moscou"
)
TITLE_000 = "Les États-unis Accusent La Russie De S'armer En Corée Du"

# (title prefix, expected day) in feed order; the MB title appears twice.
EXPECTED_RSS = [
    ("Tesla va transformer", date(2023, 5, 16)),
    ("Taille et prévisions", date(2023, 8, 22)),
    (MB_TITLE, date(2023, 8, 8)),
    ("Postuler : NWTC", date(2023, 7, 29)),
    ("Méthodes Les machines-outils accueilleront le Machine Fest", date(2023, 7, 31)),
    (MB_TITLE, date(2023, 8, 8)),
]


def _load_build_feeds() -> ModuleType:
    """Import ``seeds/build_feeds.py`` from its path (``seeds`` is not a package)."""
    spec = importlib.util.spec_from_file_location("seeds_build_feeds", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


build_feeds = _load_build_feeds()


def _parse(path: Path) -> Any:
    """Parse a feed file with feedparser, from bytes (never a URL)."""
    return feedparser.parse(path.read_bytes())


def _day(parsed: time.struct_time) -> date:
    """The calendar day of a feedparser ``*_parsed`` struct (UTC)."""
    return date(parsed.tm_year, parsed.tm_mon, parsed.tm_mday)


def _run_script(*args: str) -> subprocess.CompletedProcess[str]:
    """Run build_feeds.py with this interpreter from the repository root."""
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


def test_check_passes_on_committed_feeds() -> None:
    """`build_feeds.py --check` exits 0: the committed feeds are up to date."""
    result = _run_script("--check")
    assert result.returncode == 0, result.stderr


def test_check_fails_on_missing_or_edited_feeds(tmp_path: Path) -> None:
    """`--check` exits 1 when an output is missing or differs, 0 once rebuilt."""
    assert _run_script("--check", "--out-dir", str(tmp_path)).returncode == 1
    assert _run_script("--out-dir", str(tmp_path)).returncode == 0
    assert _run_script("--check", "--out-dir", str(tmp_path)).returncode == 0
    edited = tmp_path / RSS.name
    edited.write_bytes(edited.read_bytes().replace(b"Tesla", b"Tesla!"))
    result = _run_script("--check", "--out-dir", str(tmp_path))
    assert result.returncode == 1
    assert RSS.name in result.stderr


def test_build_is_deterministic() -> None:
    """Two in-process builds give identical bytes, equal to the committed files."""
    first, second = build_feeds.build_all(), build_feeds.build_all()
    assert first == second
    assert first[RSS.name] == RSS.read_bytes()
    assert first[ATOM.name] == ATOM.read_bytes()


@pytest.mark.parametrize("path", [RSS, ATOM], ids=lambda p: p.name)
def test_feeds_are_well_formed(path: Path) -> None:
    """feedparser parses each seed feed without a bozo flag."""
    parsed = _parse(path)
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    assert path.read_bytes().startswith(b'<?xml version="1.0" encoding="UTF-8"?>')


def test_rss_items_titles_and_dates() -> None:
    """The RSS has 6 items, in list order, each dated as the text says."""
    entries = _parse(RSS).entries
    assert len(entries) == len(EXPECTED_RSS)
    for entry, (prefix, day) in zip(entries, EXPECTED_RSS, strict=True):
        assert entry.title.startswith(prefix)
        assert _day(entry.published_parsed) == day, entry.title
        assert (entry.published_parsed.tm_hour, entry.published_parsed.tm_min) == (12, 0)


def test_rss_dates_per_title() -> None:
    """Looked up by title, each headline carries the date of the line after it."""
    by_title: dict[str, set[date]] = {}
    for entry in _parse(RSS).entries:
        by_title.setdefault(entry.title, set()).add(_day(entry.published_parsed))
    tesla = next(t for t in by_title if t.startswith("Tesla"))
    tyres = next(t for t in by_title if t.startswith("Taille et prévisions"))
    nwtc = next(t for t in by_title if "NWTC" in t)
    fest = next(t for t in by_title if "Machine Fest" in t)
    assert by_title[tesla] == {date(2023, 5, 16)}
    assert by_title[tyres] == {date(2023, 8, 22)}
    assert by_title[nwtc] == {date(2023, 7, 29)}
    assert by_title[fest] == {date(2023, 7, 31)}
    assert by_title[MB_TITLE] == {date(2023, 8, 8)}


def test_rss_ids_links_and_descriptions() -> None:
    """Guids are stable seed ids, links distinct .invalid URLs; only the article has text."""
    entries = _parse(RSS).entries
    assert [e.id for e in entries] == [
        *(f"seed-003-related-{n}" for n in range(1, 6)),
        "seed-003-article",
    ]
    links = [e.link for e in entries]
    assert len(set(links)) == len(links)
    assert all(link.startswith("https://seeds.invalid/003/") for link in links)
    assert links[-1] == "https://seeds.invalid/003/article"
    assert all("description" not in e for e in entries[:-1])


def test_article_item_description() -> None:
    """The 003 article item holds the Shoigu article as HTML paragraphs, caption first."""
    article = _parse(RSS).entries[-1]
    assert article.title == MB_TITLE
    assert "Shoigu" in article.description
    assert article.description.startswith("<p>Le porte-parole du Conseil de sécurité nationale")
    source = (SEEDS / "003_cd7124eb4327471b.txt").read_text(encoding="utf-8").splitlines()
    assert article.description.count("<p>") == len(source) - 6  # 6 lines of related list


def test_mb_title_occurs_twice_in_rss() -> None:
    """The repeated White House headline is in the RSS exactly twice, with different links."""
    entries = _parse(RSS).entries
    titles = Counter(e.title for e in entries)
    assert titles[MB_TITLE] == 2
    assert RSS.read_text(encoding="utf-8").count(MB_TITLE) == 2
    mb_links = {e.link for e in entries if e.title == MB_TITLE}
    assert len(mb_links) == 2


def test_atom_single_entry() -> None:
    """The Atom feed has one entry: the truncated 000 headline, dated 2023-03-30."""
    parsed = _parse(ATOM)
    assert len(parsed.entries) == 1
    entry = parsed.entries[0]
    assert entry.title == TITLE_000
    assert entry.id == "tag:seeds.invalid,2023:000"
    assert entry.link == "https://seeds.invalid/000/article"
    assert _day(entry.published_parsed) == date(2023, 3, 30)
    assert _day(entry.updated_parsed) == date(2023, 3, 30)
    assert entry.author == "Seed 000"


def test_atom_content_keeps_every_line() -> None:
    """Every text line of 000 after the title appears in the entry's HTML content."""
    content = _parse(ATOM).entries[0].content[0]
    assert content.type == "text/html"
    lines = (SEEDS / "000_32a8c315f75d9149.txt").read_text(encoding="utf-8").splitlines()
    text_lines = [line.strip() for line in lines[1:] if line.strip()]
    assert len(text_lines) == 27  # 25 paragraphs, two of them photo alt text + caption
    assert content.value.count("<p>") == 25
    for line in text_lines:
        assert line in content.value, line


def test_split_glued_date() -> None:
    """A related-list line splits into the previous headline's date and the next title."""
    day, rest = build_feeds.split_glued_date("May 16, 2023Taille et prévisions")
    assert (day, rest) == (date(2023, 5, 16), "Taille et prévisions")
    assert build_feeds.split_glued_date("Mayday 16, 2023 x") is None
    assert build_feeds.split_glued_date("Le porte-parole du Conseil") is None


def test_parse_related_page_shifts_dates() -> None:
    """Each headline takes the date at the start of the NEXT line; the last title is the article."""
    page = build_feeds.parse_related_page(
        "First\nJan 02, 2023Second\nFeb 03, 2023Article title\nCaption\nBody one"
    )
    assert [(h.title, h.day) for h in page.headlines] == [
        ("First", date(2023, 1, 2)),
        ("Second", date(2023, 2, 3)),
    ]
    assert page.article.title == "Article title"
    assert page.article.paragraphs == ("Caption", "Body one")


def test_paragraphs_html_escapes() -> None:
    """Paragraph text is HTML-escaped inside its <p>."""
    assert build_feeds.paragraphs_html(["a < b & c"]) == "<p>a &lt; b &amp; c</p>"
