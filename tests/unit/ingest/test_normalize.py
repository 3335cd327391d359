"""Unit tests for aggregator.ingest.normalize: text, HTML, URLs, dates, identity."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from aggregator.ingest.normalize import (
    canonical_url,
    clean_text,
    content_key,
    entry_identity,
    html_to_text,
    normalize_entry,
    sanitize_html,
    struct_time_to_utc,
)
from aggregator.models import RawEntry


def test_clean_text_strips_controls_and_bidi_overrides() -> None:
    """Control characters and bidi overrides vanish; words stay."""
    assert clean_text("ab\x00c\u202etxt.exe\u200b") == "abctxt.exe"


def test_clean_text_folds_space_but_keeps_paragraphs() -> None:
    """Runs of spaces fold to one; a paragraph break stays one blank line."""
    assert clean_text("  a \t b \n\n\n\n c  ") == "a b\n\nc"


def test_clean_text_single_line() -> None:
    """single_line joins every line."""
    assert clean_text("a\nb\r\nc", single_line=True) == "a b c"


def test_clean_text_composes_unicode() -> None:
    """Decomposed accents are composed (NFC) so equal words compare equal."""
    assert clean_text("Core\u0301e") == "Corée"


def test_html_to_text_drops_tags_scripts_and_decodes_entities() -> None:
    """Visible text only, entities decoded, one line per block."""
    html = "<p>Hello&nbsp;<b>world</b> &amp; co</p><script>alert(1)</script><p>Next</p>"
    assert html_to_text(html) == "Hello world & co\n\nNext"


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ("a&#" + "9" * 5000 + ";b", "a\ufffdb"),  # html.unescape's int() raised ValueError
        ("a&#" + "0" * 5000 + "233;b", "a\u00e9b"),
        ("<p title='&#" + "1" * 5000 + "'>a&#99999999b</p>", "a\ufffdb"),
        ("a&#00000233b &#128512;", "a\u00e9b \U0001f600"),
    ],
)
def test_html_to_text_survives_long_character_references(html: str, expected: str) -> None:
    """A decimal reference of thousands of digits (in text or an attribute) is text like
    any reference past U+10FFFF, never a ValueError; short ones decode as before."""
    assert html_to_text(html) == expected


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ("a <![\u4300DATA[b", "a <![\u4300DATA[b"),  # raised AssertionError (Python 3.11)
        ("a<![\xc2DATA[<![CDATA[<!x", "a<![\xc2DATA[<![CDATA[<!x"),
        ("<p>x <![foo[ y</p>", "x <![foo[ y"),  # an unknown keyword raised too
        ("a<![CDATA[hidden]]>b", "ab"),  # known keywords: read as before
        ("a<![if !mso]>b<![endif]>c", "abc"),
    ],
)
def test_html_to_text_survives_malformed_marked_sections(html: str, expected: str) -> None:
    """`<![` followed by anything but a marked-section keyword is text, never an
    AssertionError out of HTMLParser; real CDATA and MS Office sections read as before."""
    assert html_to_text(html) == expected


def test_html_to_text_title_is_one_line() -> None:
    """Titles with markup come back as one plain line."""
    assert html_to_text("<b>Big</b><br>news", single_line=True) == "Big news"


@pytest.mark.parametrize(
    "payload",
    [
        '<a href="javascript:alert(1)">x</a>',
        '<a href="JaVaScRiPt&#58;alert(3)">x</a>',
        '<a href="java&#x09;script:alert(1)">x</a>',
        '<img src="x" onerror="alert(1)">',
        "<script>alert(1)</script>",
        '<form action="javascript:alert(1)"><button>x</button></form>',
        '<svg><a xlink:href="javascript:alert(1)">x</a></svg>',
        '<iframe src="https://evil.example/"></iframe>',
    ],
)
def test_sanitize_html_removes_script_vectors(payload: str) -> None:
    """No script-capable construct survives sanitisation."""
    cleaned = sanitize_html(payload, base_url="https://a.example/")
    lowered = cleaned.lower()
    for marker in ("javascript", "onerror", "<script", "<form", "<iframe", "<svg"):
        assert marker not in lowered


def test_sanitize_html_resolves_relative_links_and_adds_rel() -> None:
    """Relative links become absolute; links get rel=noopener."""
    cleaned = sanitize_html('<a href="/story">s</a>', base_url="https://news.example/feed")
    assert 'href="https://news.example/story"' in cleaned
    assert "noopener" in cleaned


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("HTTPS://Example.COM:443/a?utm_source=x&id=3&fbclid=1#top", "https://example.com/a?id=3"),
        ("http://example.com:8080/a", "http://example.com:8080/a"),
        ("http://example.com", "http://example.com/"),
        ("https://e.com/a?gclid=1&utm_medium=rss", "https://e.com/a"),
        ("javascript:alert(1)", None),
        ("file:///etc/passwd", None),
        ("", None),
        (None, None),
    ],
)
def test_canonical_url(url: str | None, expected: str | None) -> None:
    """Tracking parameters, fragment, default port and case are normalised away."""
    assert canonical_url(url) == expected


def test_canonical_url_resolves_relative_links() -> None:
    """A relative item link resolves against the feed's base."""
    assert canonical_url("../b?x=1", base="https://e.com/a/feed.xml") == "https://e.com/b?x=1"


def test_struct_time_to_utc() -> None:
    """feedparser's UTC struct_time becomes an aware UTC datetime."""
    value = time.strptime("2023-08-08 12:00:00", "%Y-%m-%d %H:%M:%S")
    assert struct_time_to_utc(value) == datetime(2023, 8, 8, 12, tzinfo=UTC)
    assert struct_time_to_utc(None) is None


def test_content_key_ignores_case_and_spacing() -> None:
    """The same title and text differently spaced or cased give one key."""
    assert content_key("Big News", "a  b") == content_key("big news", "A B")
    assert content_key("Big News", "a b") != content_key("Big News", "a c")


def test_entry_identity_prefers_guid_then_url_then_hash() -> None:
    """GUID first, canonical URL second, a title+date hash last."""
    when = datetime(2023, 1, 1, tzinfo=UTC)
    assert entry_identity(guid="g1", url="https://e.com/", title="t", published=when) == "guid:g1"
    assert entry_identity(guid=None, url="https://e.com/", title="t", published=when) == (
        "url:https://e.com/"
    )
    hashed = entry_identity(guid=None, url=None, title="t", published=when)
    assert hashed.startswith("hash:")
    assert hashed != entry_identity(guid=None, url=None, title="t", published=None)


def test_normalize_entry_cleans_every_field() -> None:
    """Title markup is stripped, text extracted, link canonicalised, HTML sanitised."""
    raw = RawEntry(
        guid=None,
        link="/story?utm_source=rss",
        title="<script>alert(1)</script>Breaking &amp; big",
        summary_html='<p>First <a href="javascript:x()">para</a></p>',
        content_html="",
        author="<b>Ann</b>",
        published=datetime(2023, 8, 8, 12, tzinfo=UTC),
        updated=None,
    )
    entry = normalize_entry(raw, feed_link="https://news.example/")
    assert entry.title == "Breaking & big"
    assert entry.text == "First para"
    assert entry.canonical_url == "https://news.example/story"
    assert entry.identity == "url:https://news.example/story"
    assert "javascript" not in entry.html
    assert entry.author == "Ann"
