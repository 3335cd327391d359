"""The writers (pure): text, Markdown, JSON, HTML, Atom and JSON Feed, with hostile input.

Entries here are built in memory without the clean-up of ingest, as a database written by
an older or buggier version could hold them: the writers must be safe on their own.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
from dataclasses import replace
from datetime import timedelta

import feedparser
import pytest

from aggregator.digest import build_digest, make_query
from aggregator.models import JoinLevel
from aggregator.render import render_digest
from aggregator.render.atom import render_atom, xml_text
from aggregator.render.common import (
    FeedInfo,
    also_reported_by,
    how_joined,
    safe_url,
    sources_label,
)
from aggregator.render.html import (
    Site,
    content_security_policy,
    render_digest_page,
    render_event_page,
    render_html,
)
from aggregator.render.jsonfeed_writer import JSON_FEED_VERSION, render_json_feed
from aggregator.render.markdown import render_markdown
from aggregator.render.markup import escape, sanitized
from aggregator.render.style import STYLESHEET
from aggregator.render.text import render_text
from tests.support.events import NOW, make_entry, make_event
from tests.support.hostile import _CONTENT_ATTACKS, unsafe_markup

HOSTILE_TITLE = (
    "<script>alert('title')</script> \x1b]0;pwned\x07\x1b[2J \u202eevil\u202c zero\u200bwidth"
)
# What the Atom output must carry through a serializer (section 8, D7).
BREAKERS = "Breakers ]]> </title> & < > \" ' 𝕏 😀 𝄞"
FEED = FeedInfo(base_url="http://127.0.0.1:8080", self_path="/feed.atom")


def hostile_event() -> object:
    canonical = make_entry(
        1, title=HOSTILE_TITLE, feed="<b>Feed</b> \x1b[31m", url="javascript:alert('link')",
        text="Text <img src=x onerror=alert(1)> \x07 bell", html=_CONTENT_ATTACKS,
        level=JoinLevel.NEAR_DUPLICATE, similarity=0.91, matched=2, rule="same_headline",
    )  # fmt: skip
    copy = make_entry(
        2, title="Copy", feed="Other <i>feed</i>", url="  JAVASCRIPT:alert('copy')",
        first_seen=NOW - timedelta(minutes=5),
    )  # fmt: skip
    wire = make_entry(3, title="Wire", feed="Wire", url="https://wire.test/story?a=1&b=<2>")
    return make_event(7, canonical, copy, wire, reason="longest: <b>9</b> characters")


def digest_of(*events: object) -> object:
    query = make_query(now=NOW, all_time=True)
    return build_digest(list(events), now=NOW, query=query)  # type: ignore[arg-type]


# -- links ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://a.test/x?y=1", "https://a.test/x?y=1"),
        ("http://a.test/", "http://a.test/"),
        ("  https://a.test/padded  ", "https://a.test/padded"),
        ("javascript:alert(1)", None),
        ("  JAVASCRIPT:alert(1)", None),
        ("java\tscript:alert(1)", None),
        ("JaVaScRiPt:alert(1)", None),
        ("data:text/html,<script>alert(1)</script>", None),
        ("vbscript:msgbox(1)", None),
        ("file:///etc/passwd", None),
        ("mailto:a@b.test", None),
        ("//evil.test/x", None),
        ("/relative", None),
        ("https://a.test/\u202eevil", "https://a.test/evil"),
        ("", None),
        (None, None),
    ],
)
def test_safe_url_allows_only_absolute_http_links(url: str | None, expected: str | None) -> None:
    """Item links are http(s) after invisible characters go; everything else is refused."""
    assert safe_url(url) == expected


# -- text ----------------------------------------------------------------------------------


def test_plain_text_has_no_escape_controls_or_bidi() -> None:
    """Piped text carries no ESC, BEL or bidi override, and no unsafe link."""
    text = render_text(digest_of(hostile_event()))  # type: ignore[arg-type]
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f\u202a-\u202e\u2066-\u2069\u200b]", text)
    assert "<script>alert('title')</script>" in text  # shown as text, harmlessly
    assert "javascript" not in text.lower().replace("alert('title')", "")


def test_terminal_text_is_coloured_and_wrapped() -> None:
    """On a terminal: our own SGR colours only, and lines fit the width (URLs excepted)."""
    long_title = "word " * 40
    event = make_event(1, make_entry(1, title=long_title, url="https://a.test/" + "x" * 90))
    text = render_text(digest_of(event), color=True, width=60)  # type: ignore[arg-type]
    assert "\x1b[1m" in text and "\x1b[0m" in text
    codes = set(re.findall(r"\x1b\[([0-9;]*)m", text))
    assert codes <= {"0", "1", "2", "36", "33", "1;4"}
    plain = re.sub(r"\x1b\[[0-9;]*m", "", text)
    for line in plain.splitlines():
        assert len(line) <= 60 or "https://" in line
    assert len(plain.splitlines()) > 5  # the title was wrapped


def test_text_numbers_events_across_group_sections() -> None:
    """Several groups: a heading per group, numbering continues across them."""
    events = [
        make_event(1, make_entry(1, group="world", title="First")),
        make_event(2, make_entry(2, group="tech", title="Second", published=NOW - timedelta(1))),
    ]
    text = render_text(digest_of(*events))  # type: ignore[arg-type]
    # Sections in name order (no config order given), numbers in display order.
    assert "tech (1)\n\n1. Second" in text
    assert "world (1)\n\n2. First" in text


# -- Markdown and JSON ----------------------------------------------------------------------


def test_markdown_escapes_titles_and_drops_unsafe_links() -> None:
    """A title cannot open a link or an HTML tag; a javascript: URL is never a link."""
    event = make_event(
        1, make_entry(1, title="[click](javascript:alert(1)) <b>x</b>", url="javascript:x")
    )
    markdown = render_markdown(digest_of(event))  # type: ignore[arg-type]
    assert "\\[click\\]\\(javascript:alert\\(1\\)\\) \\<b\\>x\\</b\\>" in markdown
    assert "](<javascript" not in markdown


def test_json_shape_and_unsafe_urls_removed() -> None:
    """JSON keeps the documented keys, ranks, groups and explanations; unsafe URLs are null."""
    document = json.loads(render_digest(digest_of(hostile_event()), "json"))  # type: ignore[arg-type]
    assert document["total"] == 1 and document["window"]["arrived_since"] is None
    event = document["events"][0]
    assert event["rank"] == 1 and event["group"] == "world" and event["url"] is None
    assert [m["url"] for m in event["also_reported_by"]] == [
        None, "https://wire.test/story?a=1&b=<2>",
    ]  # fmt: skip
    assert event["canonical"]["how_joined"] == (
        "near-duplicate of entry 2 (same headline; similarity 0.91)"
    )


def test_how_joined_names_the_level_rule_and_matched_copy() -> None:
    """The explanation words: exact or near-duplicate, of which member, by which rule."""
    founder = make_entry(1)
    exact = make_entry(2, level=JoinLevel.EXACT, similarity=1.0, matched=1, rule="same_url_or_text")
    assert how_joined(founder, {1: 1}) == "first item of the event"
    assert how_joined(exact, {1: 1, 2: 2}) == (
        "exact copy of #1 (same link, or same title and text; similarity 1.00)"
    )


# -- HTML ------------------------------------------------------------------------------------


def test_the_audit_catches_every_raw_attack() -> None:
    """The checker the page tests rely on flags the attacks when they are not sanitised."""
    problems = unsafe_markup(f"<html><body>{_CONTENT_ATTACKS}</body></html>")
    found = " ".join(problems)
    for expected in ("<script>", "<iframe>", "<form>", "<svg>", "<math>", "<base>",
                     "<object>", "<embed>", "onerror", "onclick", "style=", "'javascript'",
                     "'data'", "'vbscript'", "refresh"):  # fmt: skip
        assert expected in found, expected


def test_sanitized_content_keeps_text_and_safe_links_only() -> None:
    """nh3 with the allowlist leaves text and http(s) links; images only when enabled."""
    cleaned = sanitized(_CONTENT_ATTACKS)
    assert unsafe_markup(cleaned) == []
    assert "After the attacks." in cleaned
    assert 'href="https://example.invalid/fine"' in cleaned
    assert "<img" not in cleaned
    assert "tracker.invalid/pixel.gif" in sanitized(_CONTENT_ATTACKS, images=True)


def test_hostile_entries_render_as_inert_pages() -> None:
    """Digest and event pages escape every feed value and pass the audit."""
    event = hostile_event()
    site = Site()
    pages = [
        render_digest_page(digest_of(event), site=site),  # type: ignore[arg-type]
        render_event_page(event, site=site),  # type: ignore[arg-type]
        render_html(digest_of(event)),  # type: ignore[arg-type]
    ]
    for page in pages:
        assert unsafe_markup(page) == []
        assert not re.search("[\x00-\x08\x0b\x0c\x0e-\x1f\u202a-\u202e\u2066-\u2069]", page)
        assert "&lt;script&gt;alert(&#x27;title&#x27;)&lt;/script&gt;" in page
        assert "&lt;b&gt;Feed&lt;/b&gt;" in page
    assert 'href="https://wire.test/story?a=1&amp;b=&lt;2&gt;"' in pages[0]
    assert "near-duplicate of #2 (same headline; similarity 0.91)" in pages[1]
    assert "Reason: longest: &lt;b&gt;9&lt;/b&gt; characters." in pages[1]


def test_escape_removes_invisible_characters() -> None:
    """Escaped text has no controls or bidi characters, and quotes cannot end attributes."""
    assert escape("a\"b'c<d>&\u202e\x1b") == "a&quot;b&#x27;c&lt;d&gt;&amp;"


def test_standalone_file_allows_only_its_own_stylesheet() -> None:
    """The file's CSP <meta> allows exactly the inlined stylesheet, by hash."""
    page = render_html(digest_of(make_event(1, make_entry(1))))
    digest = base64.b64encode(hashlib.sha256(STYLESHEET.encode()).digest()).decode()
    assert f"<style>{STYLESHEET}</style>" in page
    assert f"style-src &#x27;sha256-{digest}&#x27;" in page
    assert "default-src &#x27;none&#x27;" in page
    assert 'href="/event/' not in page  # no links to a server that is not there


def test_served_policy_is_strict() -> None:
    """No script source at all; styles from the server only; no framing, no base."""
    policy = content_security_policy()
    assert "default-src 'none'" in policy and "script-src" not in policy
    assert "style-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "img-src data:;" in policy + ";"
    assert "img-src data: https:" in content_security_policy(images=True)


# -- Atom and JSON Feed ---------------------------------------------------------------------


def feed_events() -> list[object]:
    breaker = make_entry(
        1, title=BREAKERS + " \x00\x0b\ufffe", text=f"Body {BREAKERS}", author="A & B <x>",
        url="https://a.test/1?x=1&y=2",
    )  # fmt: skip
    copy = make_entry(2, feed="Copy ]]> feed", url="https://copy.test/2")
    hidden = make_entry(3, feed="Hidden", url="javascript:alert(1)")
    return [make_event(9, breaker, copy, hidden), make_event(8, make_entry(4, title="Plain"))]


def test_atom_reparses_cleanly_with_titles_intact() -> None:
    """feedparser re-reads our Atom with bozo false; hostile titles round-trip exactly."""
    body = render_atom(feed_events(), feed=FEED, generated_at=NOW)  # type: ignore[arg-type]
    parsed = feedparser.parse(io.BytesIO(body))
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.version == "atom10"
    first = parsed.entries[0]
    assert first.title == BREAKERS  # the characters XML cannot carry are gone, nothing else
    assert first.id == "http://127.0.0.1:8080/event/9"
    assert first.link == "https://a.test/1?x=1&y=2"
    related = [link for link in first.links if link.rel == "related"]
    assert [(link.href, link.title) for link in related] == [
        ("https://copy.test/2", "Copy ]]> feed")
    ]  # fmt: skip
    assert "Also reported by" in first.content[0].value
    assert first.author == "A & B <x>"
    assert parsed.entries[1].title == "Plain"
    assert parsed.feed.links[0].href == "http://127.0.0.1:8080/feed.atom"


def test_atom_is_deterministic_and_strips_illegal_characters() -> None:
    """The same events give the same bytes (an ETag is then a validator)."""
    events = feed_events()
    first = render_atom(events, feed=FEED, generated_at=NOW)  # type: ignore[arg-type]
    later = render_atom(events, feed=FEED, generated_at=NOW + timedelta(hours=1))  # type: ignore[arg-type]
    assert first == later
    assert xml_text("a\x00b\x0bc\ud800d\ufffee\U0001d54f") == "abcde\U0001d54f"


def test_json_feed_carries_the_other_sources() -> None:
    """JSON Feed 1.1: one item per event; copies in `_aggregator`, unsafe links dropped."""
    body = render_json_feed(feed_events(), feed=FEED)  # type: ignore[arg-type]
    document = json.loads(body)
    assert document["version"] == JSON_FEED_VERSION
    assert document["feed_url"] == "http://127.0.0.1:8080/feed.atom"
    item = document["items"][0]
    assert item["id"] == "http://127.0.0.1:8080/event/9"
    assert item["title"].startswith(BREAKERS)
    assert not re.search("[\x00-\x1f]", item["title"])
    assert [c["url"] for c in item["_aggregator"]["also_reported_by"]] == [
        "https://copy.test/2", None,
    ]  # fmt: skip
    assert unsafe_markup(item["content_html"]) == []


def test_copies_are_grouped_by_feed_and_the_badge_counts_outlets() -> None:
    """Thirteen copies from one section feed are one line 'name ×13'; the badge counts
    sites (two section feeds of one site are one source) with the feeds beside it."""
    paris = [
        make_entry(n, feed="BFMTV — Paris", url=f"https://www.bfmtv.com/paris/{n}")
        for n in range(1, 14)
    ]
    politics = make_entry(20, feed="BFMTV — Politique", url="https://www.bfmtv.com/pol/x")
    other = make_entry(30, feed="Le Monde", url="https://www.lemonde.fr/x")
    event = make_event(1, other, *paris, politics)
    assert also_reported_by(event) == "also reported by 14: BFMTV — Paris ×13, BFMTV — Politique"
    assert sources_label(event) == "2 sources · 3 feeds"
    assert sources_label(make_event(2, *paris[:3])) == "3 copies"
    assert sources_label(make_event(3, paris[0])) is None
    no_link = replace(make_entry(40, feed="Radio"), url=None)
    assert sources_label(make_event(4, other, no_link)) == "2 sources"
    html = render_digest_page(digest_of(event), site=Site())  # type: ignore[arg-type]
    assert "BFMTV — Paris ×13" in html and html.count("BFMTV — Paris") == 1


def test_a_same_event_join_is_named_as_one_not_as_a_copy() -> None:
    """A write-up of the same event is not a near-duplicate: the words name its level."""
    member = make_entry(2, level=JoinLevel.SAME_EVENT, similarity=0.41, rule="event_centroid")
    words = how_joined(member, {})
    assert words.startswith("another report of the same event")
    assert "near-duplicate" not in words and "similarity 0.41" in words
