"""The entity budget holds where expansion happens (inside feedparser, on the UTF-8 it
parses), however the document hides its declarations from the byte-level pre-filter, and
the text an entry keeps is bounded whatever the parser returned."""

from __future__ import annotations

import pytest

from aggregator.errors import ParseError
from aggregator.ingest.normalize import MAX_BODY_CHARS, MAX_TITLE_CHARS, normalize_entry
from aggregator.ingest.parse import parse_feed
from aggregator.models import RawEntry

NESTED = (
    '<!ENTITY a "' + "x" * 1000 + '">\n'
    '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">\n'
    '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">\n'
)
WIDE = '<!ENTITY a "' + "x" * 10_000 + '">\n'


def document(declarations: str, references: str, *, encoding: str = "utf-8",
             before_doctype: str = "") -> str:  # fmt: skip
    return (
        f'<?xml version="1.0" encoding="{encoding}"?>\n{before_doctype}'
        f"<!DOCTYPE rss [\n{declarations}]>\n"
        '<rss version="2.0"><channel><title>T</title><item><title>t</title>'
        f"<description>{references}</description></item></channel></rss>"
    )


HIDDEN = {
    "utf-16": document(NESTED, "&c;" * 500, encoding="utf-16").encode("utf-16"),
    "utf-16 wide": document(WIDE, "&a;" * 5000, encoding="utf-16").encode("utf-16"),
    "utf-32": document(NESTED, "&c;" * 500, encoding="utf-32").encode("utf-32"),
    "after a comment": document(NESTED, "&c;" * 500, before_doctype="<!-- a --><!-- b -->")
    .encode(),
    "junk before the doctype": b"\x00\x01junk" + document(WIDE, "&a;" * 5000).encode(),
    "junk and a comment": b"\xff\xfe!!" + document(NESTED, "&c;" * 500, before_doctype="<!--c-->")
    .encode(),
}  # fmt: skip


@pytest.mark.parametrize("body", HIDDEN.values(), ids=HIDDEN.keys())
def test_hidden_entity_amplification_is_bounded(body: bytes) -> None:
    """A 25-50 KB document expanding to megabytes is refused or stays small, whichever
    way its declarations hide from the byte-level pre-filter."""
    try:
        parsed = parse_feed(body)
    except ParseError as exc:
        assert exc.reason == "entity_declarations"
        return
    for raw in parsed.entries:
        assert len(raw.summary_html) + len(raw.content_html) <= 2 * 1024 * 1024


def test_small_entities_of_a_utf16_document_still_expand() -> None:
    """A UTF-16 feed declaring a short entity keeps its meaning (expanded by us)."""
    body = document('<!ENTITY who "Agence">\n', "&who; dit", encoding="utf-16")
    (entry,) = parse_feed(body.encode("utf-16")).entries
    assert entry.summary_html == "Agence dit"


def test_text_kept_per_entry_is_capped() -> None:
    """Whatever the parser returns, an entry keeps at most the documented text."""
    raw = RawEntry(
        guid="g" * 100_000, link="https://example.com/" + "p" * 100_000,
        title="word " * 100_000, summary_html="", content_html="<p>" + "long " * 1_000_000,
        author="a" * 100_000, published=None, updated=None,
    )  # fmt: skip
    entry = normalize_entry(raw)
    assert len(entry.title) <= MAX_TITLE_CHARS
    assert len(entry.text) <= MAX_BODY_CHARS and len(entry.html) <= 2 * MAX_BODY_CHARS
    assert entry.guid is not None and len(entry.guid) <= 10_000
    assert entry.author is not None and len(entry.author) <= 10_000
