"""Build the demo feeds in ``seeds/feeds/`` from the two seed documents.

Run ``python seeds/build_feeds.py`` to (re)write the feeds, or
``python seeds/build_feeds.py --check`` to exit 1 when the files on disk differ
from what this script would write.  Standard library only; the output is
byte-for-byte deterministic (no "now", no randomness, fixed attribute order).

* ``seeds/feeds/003-related.rss`` (RSS 2.0): one item per related headline at
  the top of ``003_cd7124eb4327471b.txt`` plus one item for the article itself.
* ``seeds/feeds/000-article.atom`` (Atom 1.0): the article in
  ``000_32a8c315f75d9149.txt`` as a single entry.

See ``seeds/README.md`` for how the text maps to feed items.
"""

from __future__ import annotations

import argparse
import html
import re
import sys
import unicodedata
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from email.utils import format_datetime
from pathlib import Path

SEEDS_DIR = Path(__file__).resolve().parent
SOURCE_000 = SEEDS_DIR / "000_32a8c315f75d9149.txt"
SOURCE_003 = SEEDS_DIR / "003_cd7124eb4327471b.txt"
RSS_NAME = "003-related.rss"
ATOM_NAME = "000-article.atom"

BASE_URL = "https://seeds.invalid"  # .invalid is reserved (RFC 2606): never a real host
ATOM_NS = "http://www.w3.org/2005/Atom"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"  # serialized as xml:lang
XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'

# Every date in the seeds is a calendar day; items are pinned to noon UTC.
NOON_UTC_HOUR = 12

_MONTHS = {
    name: number
    for number, name in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
        start=1,
    )
}
# A related-list line starts with the date of the PREVIOUS headline, glued to
# the start of the next headline: "May 16, 2023Taille et prévisions…".
GLUED_DATE_RE = re.compile(
    r"^(?P<month>" + "|".join(_MONTHS) + r") (?P<day>\d{1,2}), (?P<year>\d{4})(?P<rest>.*)$"
)

# 000: the article says "jeudi" and "guerre vieille de 13 mois" (invasion on
# 24 Feb 2022), i.e. Thursday 30 March 2023, the day of the White House
# food-for-arms statement.  The text itself carries no dateline.
ARTICLE_000_DATE = datetime(2023, 3, 30, NOON_UTC_HOUR, tzinfo=UTC)


@dataclass(frozen=True)
class Headline:
    """One entry of the related-headlines list of ``003``."""

    title: str
    day: date


@dataclass(frozen=True)
class Article:
    """An article: its title and its text lines (captions included)."""

    title: str
    paragraphs: tuple[str, ...]


@dataclass(frozen=True)
class RelatedPage:
    """The parsed ``003`` document: the related list, then the article."""

    headlines: tuple[Headline, ...]
    article: Article


def split_glued_date(line: str) -> tuple[date, str] | None:
    """Split ``"Mon DD, YYYYrest"`` into ``(date, rest)``; None if no leading date."""
    match = GLUED_DATE_RE.match(line)
    if match is None:
        return None
    day = date(int(match["year"]), _MONTHS[match["month"]], int(match["day"]))
    return day, match["rest"].strip()


def parse_related_page(text: str) -> RelatedPage:
    """Parse ``003``: related headlines (each dated by the next line), then the article.

    Line 1 is the first headline.  Every following line that starts with a date
    carries the date of the headline before it, glued to the next title.  The
    title on the last dated line is the article's own title; the remaining
    non-blank lines (photo caption first) are its body.
    """
    lines = [line.strip() for line in text.splitlines()]
    if not lines or not lines[0] or split_glued_date(lines[0]) is not None:
        raise ValueError("003: expected an undated headline on the first line")
    pending_title = lines[0]
    headlines: list[Headline] = []
    index = 1
    while index < len(lines):
        split = split_glued_date(lines[index])
        if split is None:
            break
        day, next_title = split
        if not next_title:
            raise ValueError(f"003: line {index + 1} has a date but no title after it")
        headlines.append(Headline(pending_title, day))
        pending_title = next_title
        index += 1
    if not headlines:
        raise ValueError("003: no dated line after the first headline")
    body = tuple(line for line in lines[index:] if line)
    if not body:
        raise ValueError("003: the article after the related list has no text")
    return RelatedPage(tuple(headlines), Article(pending_title, body))


def parse_plain_article(text: str) -> Article:
    """Parse ``000``: line 1 is the title; blank lines separate paragraphs.

    Lines inside one paragraph (image alt text + caption) are kept, joined with
    ``<br>`` later.  Paragraphs holding only whitespace (a lone no-break space
    left where a video was embedded) carry no text and are dropped.
    """
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise ValueError("000: expected the title on the first line")
    title = lines[0].strip()
    paragraphs: list[str] = []
    current: list[str] = []
    for line in [*lines[1:], ""]:
        if line.strip():
            current.append(line.strip())
        elif current:
            paragraphs.append("\n".join(current))
            current = []
    if not paragraphs:
        raise ValueError("000: the article has no text")
    return Article(title, tuple(paragraphs))


def slugify(text: str, max_length: int = 60) -> str:
    """ASCII slug of ``text`` (accents folded), cut at a word boundary."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", folded.lower()).strip("-")
    if len(slug) > max_length:
        cut = slug[: max_length + 1]
        slug = cut[: cut.rfind("-")] if "-" in cut else slug[:max_length]
    return slug or "item"


def paragraphs_html(paragraphs: Sequence[str]) -> str:
    """One ``<p>`` per paragraph, text HTML-escaped, lines inside a paragraph as ``<br>``."""
    return "\n".join(
        "<p>" + "<br>\n".join(html.escape(line, quote=False) for line in p.split("\n")) + "</p>"
        for p in paragraphs
    )


def noon_utc(day: date) -> datetime:
    """``day`` at 12:00:00 UTC."""
    return datetime(day.year, day.month, day.day, NOON_UTC_HOUR, tzinfo=UTC)


def rfc822(moment: datetime) -> str:
    """RFC 822 date as RSS wants it, e.g. ``Tue, 16 May 2023 12:00:00 +0000``."""
    return format_datetime(moment)


def rfc3339(moment: datetime) -> str:
    """RFC 3339 date as Atom wants it, e.g. ``2023-03-30T12:00:00Z``."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrib: str) -> ET.Element:
    """Append a child element with optional text and attributes."""
    child = ET.SubElement(parent, tag, attrib)
    if text is not None:
        child.text = text
    return child


def _serialize(root: ET.Element) -> bytes:
    """Indented UTF-8 XML with a declaration and a trailing newline."""
    ET.indent(root, space="  ")
    body = ET.tostring(root, encoding="unicode")
    return (XML_DECLARATION + body + "\n").encode("utf-8")


def article_003_date(page: RelatedPage) -> date:
    """The ``003`` article has no dateline: use the related-list date of the same title."""
    dates = {h.day for h in page.headlines if h.title == page.article.title}
    if len(dates) != 1:
        raise ValueError(
            f"003: expected exactly one list date for the article title, found {sorted(dates)}"
        )
    return dates.pop()


def build_rss(page: RelatedPage) -> bytes:
    """RSS 2.0 feed: the related headlines (no description), then the article item."""
    article_date = article_003_date(page)
    last_build = max([*(h.day for h in page.headlines), article_date])

    rss = ET.Element("rss", {"version": "2.0"})
    channel = _sub(rss, "channel")
    _sub(channel, "title", "Seed 003 — related headlines")
    _sub(channel, "link", f"{BASE_URL}/003/")
    _sub(
        channel,
        "description",
        "Demo seed built by seeds/build_feeds.py from seeds/003_cd7124eb4327471b.txt: "
        "the related-headlines list, then the article it belongs to.",
    )
    _sub(channel, "language", "fr")
    _sub(channel, "lastBuildDate", rfc822(noon_utc(last_build)))

    for number, headline in enumerate(page.headlines, start=1):
        item = _sub(channel, "item")
        _sub(item, "title", headline.title)
        _sub(item, "link", f"{BASE_URL}/003/related/{number}-{slugify(headline.title)}")
        _sub(item, "guid", f"seed-003-related-{number}", isPermaLink="false")
        _sub(item, "pubDate", rfc822(noon_utc(headline.day)))

    item = _sub(channel, "item")
    _sub(item, "title", page.article.title)
    _sub(item, "link", f"{BASE_URL}/003/article")
    _sub(item, "description", paragraphs_html(page.article.paragraphs))
    _sub(item, "guid", "seed-003-article", isPermaLink="false")
    _sub(item, "pubDate", rfc822(noon_utc(article_date)))
    return _serialize(rss)


def build_atom(article: Article) -> bytes:
    """Atom 1.0 feed holding the ``000`` article as its only entry.

    The Atom namespace is written as a plain ``xmlns`` attribute on the root, so
    the tags stay unprefixed without touching ElementTree's global prefix map.
    """
    stamp = rfc3339(ARTICLE_000_DATE)
    feed = ET.Element("feed", {"xmlns": ATOM_NS, XML_LANG: "fr"})
    _sub(feed, "id", "tag:seeds.invalid,2023:feed-000")
    _sub(feed, "title", "Seed 000 — article")
    _sub(feed, "updated", stamp)
    _sub(feed, "link", href=f"{BASE_URL}/000/")

    entry = _sub(feed, "entry")
    _sub(entry, "id", "tag:seeds.invalid,2023:000")
    _sub(entry, "title", article.title)
    _sub(entry, "link", href=f"{BASE_URL}/000/article")
    _sub(entry, "published", stamp)
    _sub(entry, "updated", stamp)
    author = _sub(entry, "author")
    _sub(author, "name", "Seed 000")
    _sub(entry, "content", paragraphs_html(article.paragraphs), type="html")
    return _serialize(feed)


def build_all() -> dict[str, bytes]:
    """Every generated file, by file name, as the exact bytes to write."""
    page = parse_related_page(SOURCE_003.read_text(encoding="utf-8"))
    article = parse_plain_article(SOURCE_000.read_text(encoding="utf-8"))
    return {RSS_NAME: build_rss(page), ATOM_NAME: build_atom(article)}


def main(argv: Sequence[str] | None = None) -> int:
    """Write the feeds, or with ``--check`` report (exit 1) any that are stale."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="do not write; exit 1 if a file would change"
    )
    parser.add_argument(
        "--out-dir",
        type=Path,
        default=SEEDS_DIR / "feeds",
        help="output directory (default: seeds/feeds next to this script)",
    )
    args = parser.parse_args(argv)
    out_dir: Path = args.out_dir

    outputs = build_all()
    if args.check:
        stale = [
            name
            for name, data in outputs.items()
            if not (out_dir / name).is_file() or (out_dir / name).read_bytes() != data
        ]
        for name in stale:
            print(f"stale or missing: {out_dir / name}", file=sys.stderr)
        if stale:
            print("run: python seeds/build_feeds.py", file=sys.stderr)
            return 1
        return 0

    out_dir.mkdir(parents=True, exist_ok=True)
    for name, data in outputs.items():
        (out_dir / name).write_bytes(data)
        print(f"wrote {out_dir / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
