"""Mutations of real feed documents for the fuzz test (`tests/integration/test_fuzz_feeds.py`).

Each mutation is a named pure function `(document, rng) -> document` on bytes: the same
input and the same `random.Random` state always give the same output, so a failing round
is replayed from its seed alone. `MUTATIONS` is the table, by name; `choose` picks one to
three of them for a document kind (`xml` or `json`) and `apply_all` applies them in stage
order (text-level edits first, then re-encoding, then byte damage), so that an inserted
entity declaration can still end up in UTF-16 and a byte flip still lands on the result.

What they do, by family:

* byte damage: random byte flips, truncation at a random point, NUL bytes;
* re-encoding: UTF-16 LE/BE and UTF-32 LE/BE, with and without a BOM, the XML
  declaration kept as it was (lying), rewritten to tell the truth, or claiming UTF-8;
* entity declarations: a nested "billion laughs" (2 to 6 levels, 2 to 10 references per
  level) or one big entity referenced many times, declared after a comment, after a
  processing instruction, after junk bytes in the prolog, before the XML declaration,
  inside the root element, or in UTF-16; references go into titles and descriptions;
* markup: comments, processing instructions and CDATA sections inserted at random places
  (well-formed, with `--` inside, unterminated, second XML declarations); character
  references to surrogates, controls, past U+10FFFF or 5,000 digits long;
* size: one item repeated up to 3,000 times, one field of 1 to 6 MB;
* numbers: huge (10^20, 10^400, 5,000 nines), negative and non-ASCII-digit values in every
  numeric field (ttl, skipHours, skipDays, sy:updateFrequency, enclosure length,
  media:content sizes, JSON Feed attachment sizes), added where the document has none, and
  dates with year 0, 1 or 99999;
* JSON Feed: lone surrogates (escaped, or raw as CESU-8 bytes) and NULs in its strings.
"""

from __future__ import annotations

import codecs
import json
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["MUTATIONS", "Mutation", "MutationSpec", "apply_all", "choose"]

Mutation = Callable[[bytes, random.Random], bytes]

TEXT, ENCODING, BYTES = 0, 1, 2  # stages, applied in this order
XML, JSON = "xml", "json"


@dataclass(frozen=True, slots=True)
class MutationSpec:
    name: str
    apply: Mutation
    stage: int
    kinds: frozenset[str]


MUTATIONS: dict[str, MutationSpec] = {}


def _register(name: str, stage: int, *kinds: str) -> Callable[[Mutation], Mutation]:
    def add(function: Mutation) -> Mutation:
        MUTATIONS[name] = MutationSpec(name, function, stage, frozenset(kinds))
        return function

    return add


def choose(rng: random.Random, kind: str, *, most: int = 3) -> list[str]:
    """One to `most` distinct mutation names that apply to a document of `kind`."""
    names = sorted(name for name, spec in MUTATIONS.items() if kind in spec.kinds)
    return rng.sample(names, rng.randint(1, most))


def apply_all(body: bytes, names: Sequence[str], rng: random.Random) -> bytes:
    """`body` with each named mutation applied, text-level first, byte damage last."""
    for name in sorted(names, key=lambda n: MUTATIONS[n].stage):
        body = MUTATIONS[name].apply(body, rng)
    return body


# ------------------------------------------------------------------------ hostile values

HUGE = (
    "1" + "0" * 20,
    "1" + "0" * 400,
    "9" * 5000,
    "18446744073709551616",
    "1e400",
    "99999999999999999999.5",
)
NEGATIVE = ("-1", "-0", "-" + "1" + "0" * 20, "-" + "9" * 5000, "-1e400", "\u22125")
UNICODE_DIGITS = (
    "\u0661\u0662\u0663",  # Arabic-Indic 123
    "\u00b2",  # superscript two: a digit to str.isdigit, not to int()
    "\u00b3600",
    "\uff11\uff12\uff13",  # fullwidth 123
    "\U0001d7d7\U0001d7d7",  # mathematical bold 99
    "\u0663\u0666\u0660\u0660",  # Arabic-Indic 3600
    "\u216b",  # Roman numeral twelve
    "\u00bd",
    "\u0967\u0968",  # Devanagari 12
)
DAYS = ("Monday", "ＭＯＮＤＡＹ", "Funday", "-1", "9" * 5000, "Sunday" * 1000, "")
RFC822_DATES = (
    "Tue, 08 Aug 0000 12:00:00 GMT",
    "Mon, 01 Jan 0001 00:00:00 GMT",
    "Fri, 31 Dec 99999 23:59:59 GMT",
    "Sat, 01 Jan 10000 00:00:00 +9999",
    "Sun, 32 Foo -1 99:99:99 GMT",
    "Tue, 08 Aug 2023 12:00:00 +" + "9" * 5000,
    "Mon, 01 Jan 1 00:00:00 -2359",
)
ISO_DATES = (
    "0000-01-01T00:00:00Z",
    "0001-01-01T00:00:00+23:59",
    "99999-12-31T23:59:59Z",
    "-0001-01-01T00:00:00Z",
    "2023-02-30T25:61:61Z",
    "\u0661\u0669\u0667\u0660-01-01T00:00:00Z",
    "9" * 5000,
)
NUMBER_CLASSES = {"huge": HUGE, "negative": NEGATIVE, "unicode": UNICODE_DIGITS}

# Elements whose text is a number (RSS, its modules, Atom extensions in the wild).
_NUMERIC_ELEMENT = re.compile(
    rb"(<(ttl|hour|sy:updateFrequency|sy:updateBase|slash:comments|itunes:duration|"
    rb"itunes:episode|itunes:season|width|height|media:rating)\b[^>]{0,200}>)([^<]{0,64})(</\2>)"
)
_DAY_ELEMENT = re.compile(rb"(<day>)([^<]{0,64})(</day>)")
_NUMERIC_ATTRIBUTE = re.compile(
    rb"\b(length|fileSize|width|height|duration|bitrate|framerate|samplingrate|channels)"
    rb"=(\"[^\"]{0,64}\"|'[^']{0,64}')"
)
_DATE_ELEMENT = re.compile(
    rb"(<(pubDate|lastBuildDate|dc:date|updated|published|issued|modified|created)\b"
    rb"[^>]{0,200}>)([^<]{0,80})(</\2>)"
)
_CONTAINER_START = re.compile(rb"<(channel|feed)\b[^>]{0,4000}>")
_ITEM_START = re.compile(rb"<(item|entry)\b[^>]{0,1000}>")
_TEXT_START = re.compile(rb"<(title|description|summary|content)\b[^>]{0,1000}>")
_XML_DECLARATION = re.compile(rb"\A(?:\xef\xbb\xbf)?<\?xml[^>]{0,1000}\?>")
_DECLARED_ENCODING = re.compile(rb"encoding\s*=\s*[\"']([A-Za-z0-9._:-]{1,40})[\"']")
_TAG_END = re.compile(rb">")


def _attribute_escape(text: str) -> bytes:
    return text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").encode()


# ------------------------------------------------------------------------ helpers


def _split_prolog(body: bytes) -> tuple[bytes, bytes]:
    """(the XML declaration with any BOM, the rest); the declaration may be empty."""
    match = _XML_DECLARATION.match(body)
    if match is None:
        return b"", body
    return body[: match.end()], body[match.end() :]


def _text_of(body: bytes) -> str:
    """The document as text: its BOM, its declared encoding, else UTF-8, else Latin-1."""
    for bom, codec in ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF32_LE, "utf-32"),
                       (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF16_LE, "utf-16"),
                       (codecs.BOM_UTF16_BE, "utf-16")):  # fmt: skip
        if body.startswith(bom):
            return body.decode(codec, errors="replace")
    declared = _DECLARED_ENCODING.search(body[:1024])
    if declared is not None:
        try:
            return body.decode(declared.group(1).decode("ascii"))
        except (LookupError, UnicodeDecodeError):
            pass
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return body.decode("latin-1")


def _tag_boundaries(body: bytes, rng: random.Random, count: int) -> list[int]:
    """`count` insertion points: mostly just after a `>`, sometimes anywhere."""
    ends = [match.end() for match in _TAG_END.finditer(body)] or [len(body)]
    return sorted(
        rng.choice(ends) if rng.random() < 0.75 else rng.randint(0, len(body)) for _ in range(count)
    )


def _insert_at(body: bytes, pieces: list[tuple[int, bytes]]) -> bytes:
    out: list[bytes] = []
    previous = 0
    for position, piece in sorted(pieces, key=lambda p: p[0]):
        out += [body[previous:position], piece]
        previous = position
    out.append(body[previous:])
    return b"".join(out)


def _hostile_number(rng: random.Random, family: str | None = None) -> str:
    values = NUMBER_CLASSES[family] if family else rng.choice(list(NUMBER_CLASSES.values()))
    return rng.choice(values)


# ------------------------------------------------------------------------ byte damage


@_register("flip_bytes", BYTES, XML, JSON)
def flip_bytes(body: bytes, rng: random.Random) -> bytes:
    """XOR 1 to 32 random bytes with a random non-zero value."""
    if not body:
        return body
    data = bytearray(body)
    for _ in range(rng.randint(1, 32)):
        data[rng.randrange(len(data))] ^= rng.randint(1, 255)
    return bytes(data)


@_register("truncate", BYTES, XML, JSON)
def truncate(body: bytes, rng: random.Random) -> bytes:
    """Cut the document at a random point (possibly inside a multi-byte character)."""
    return body[: rng.randint(0, len(body))]


@_register("nul_bytes", BYTES, XML, JSON)
def nul_bytes(body: bytes, rng: random.Random) -> bytes:
    """Insert 1 to 16 NUL bytes at random places."""
    return _insert_at(
        body, [(rng.randint(0, len(body)), b"\x00") for _ in range(rng.randint(1, 16))]
    )


# ------------------------------------------------------------------------ re-encoding


def _reencode(codec: str, bom: bytes, label: str) -> Mutation:
    def mutate(body: bytes, rng: random.Random) -> bytes:
        text = _text_of(body)
        declaration = _XML_DECLARATION.match(text.encode("utf-8", "surrogatepass"))
        if declaration is not None:
            how = rng.choice(("keep", "truth", "utf-8"))  # keep: the old one lies
            if how != "keep":
                claimed = label if how == "truth" else "utf-8"
                text = re.sub(r"encoding\s*=\s*[\"'][^\"']*[\"']", f'encoding="{claimed}"',
                              text, count=1)  # fmt: skip
        return bom + text.encode(codec, errors="surrogatepass")

    return mutate


for _name, _codec, _bom, _label in (
    ("utf16le_bom", "utf-16-le", codecs.BOM_UTF16_LE, "UTF-16"),
    ("utf16be_bom", "utf-16-be", codecs.BOM_UTF16_BE, "UTF-16"),
    ("utf16le_no_bom", "utf-16-le", b"", "UTF-16LE"),
    ("utf16be_no_bom", "utf-16-be", b"", "UTF-16BE"),
    ("utf32le_bom", "utf-32-le", codecs.BOM_UTF32_LE, "UTF-32"),
    ("utf32be_bom", "utf-32-be", codecs.BOM_UTF32_BE, "UTF-32"),
    ("utf32le_no_bom", "utf-32-le", b"", "UTF-32LE"),
):
    _register(_name, ENCODING, XML, JSON)(_reencode(_codec, _bom, _label))


# ------------------------------------------------------------------------ entities


def _laughs(rng: random.Random) -> tuple[bytes, bytes]:
    """A nested entity declaration (DOCTYPE with internal subset) and the reference to
    its top entity."""
    # Half within the prefilter's budget (expanded and stored), half far beyond it.
    small = rng.random() < 0.5
    depth = rng.randint(2, 3) if small else rng.randint(2, 6)
    fan = rng.randint(2, 4) if small else rng.randint(2, 10)
    prefix = rng.choice((b"lol", b"e", b"x_", b"ha"))
    base = rng.choice((b"lol", b"ha" * 50, b"&amp;", b"\xc3\xa9t\xc3\xa9"))
    declarations = [b'<!ENTITY %s0 "%s">' % (prefix, base)]
    for level in range(1, depth + 1):
        value = b"&%s%d;" % (prefix, level - 1) * fan
        declarations.append(b'<!ENTITY %s%d "%s">' % (prefix, level, value))
    separator = rng.choice((b"", b"\n", b" "))
    subset = separator.join(declarations)
    return b"<!DOCTYPE rss [" + separator + subset + separator + b"]>", b"&%s%d;" % (
        prefix,
        depth,
    )


def _quadratic(rng: random.Random) -> tuple[bytes, bytes]:
    """One big entity (1 to 50 KB) and a reference repeated 10 to 5,000 times."""
    value = b"q" * rng.randint(1000, 50_000)
    return b'<!DOCTYPE rss [\n<!ENTITY big "' + value + b'">\n]>', b"&big;" * rng.randint(10, 5000)


def _with_references(rest: bytes, reference: bytes, rng: random.Random) -> bytes:
    """`reference` inserted at the start of up to 6 title/description/summary/content
    elements."""
    starts = [match.end() for match in _TEXT_START.finditer(rest)]
    if not starts:
        return rest + reference
    chosen = rng.sample(starts, min(len(starts), rng.randint(1, 6)))
    return _insert_at(rest, [(position, reference) for position in chosen])


PROLOG_JUNK = (b"\n\x00\x01junk\n", b"\nnot markup at all\n", b"\xef\xbb\xbf", b"\x0c\n",
               b"\n]]>\n", b"\n&amp;\n")  # fmt: skip


def _entity_mutation(place: str, make: Callable[[random.Random], tuple[bytes, bytes]]) -> Mutation:
    def mutate(body: bytes, rng: random.Random) -> bytes:
        doctype, reference = make(rng)
        declaration, rest = _split_prolog(body)
        if place == "inside_root":
            rest = _with_references(rest, reference, rng)
            start = _CONTAINER_START.search(rest)
            at = start.end() if start else 0
            return declaration + rest[:at] + doctype + rest[at:]
        rest = _with_references(rest, reference, rng)
        if place == "before_declaration":
            return doctype + b"\n" + declaration + rest
        prolog = {
            "after_comment": b"\n<!-- generated by a hostile publisher -->\n",
            "after_pi": b'\n<?xml-stylesheet type="text/xsl" href="style.xsl"?>\n',
            "after_junk": rng.choice(PROLOG_JUNK),
            "plain": b"\n",
            "in_utf16": b"\n",
        }[place]
        document = declaration + prolog + doctype + rest
        if place == "in_utf16":
            codec, bom = rng.choice(
                (("utf-16-le", codecs.BOM_UTF16_LE), ("utf-16-be", codecs.BOM_UTF16_BE),
                 ("utf-16-le", b""))
            )  # fmt: skip
            return bom + _text_of(document).encode(codec, errors="surrogatepass")
        return document

    return mutate


for _place in ("plain", "after_comment", "after_pi", "after_junk", "before_declaration",
               "inside_root", "in_utf16"):  # fmt: skip
    _register(f"laughs_{_place}", TEXT, XML)(_entity_mutation(_place, _laughs))
_register("quadratic_entity", TEXT, XML)(_entity_mutation("plain", _quadratic))
_register("quadratic_entity_after_comment", TEXT, XML)(
    _entity_mutation("after_comment", _quadratic)
)


# ------------------------------------------------------------------------ markup

COMMENTS = (
    b"<!-- fuzz -->",
    b"<!-- a -- b -->",  # `--` inside a comment: not well-formed
    b"<!-- ]]> &amp; <item><title>inside a comment</title></item> -->",
    b"<!---->",
    b"<!--",  # never closed
    b"<!-- " + b"x" * 60_000 + b" -->",
    b"<!-- &lol9; %p; <!ENTITY e 'x'> -->",
    b"<!--\xff\xfe-->",
)
PROCESSING_INSTRUCTIONS = (
    b'<?xml-stylesheet type="text/xsl" href="feed.xsl"?>',
    b"<?php echo 'hello'; ?>",
    b'<?xml version="1.0" encoding="utf-16"?>',  # a second declaration, mid-document
    b"<? ?>",
    b"<?x",  # never closed
    b"<?pi " + b'encoding="' * 200 + b"?>",
    b"<?target \x00 data?>",
)


@_register("insert_comments", TEXT, XML, JSON)
def insert_comments(body: bytes, rng: random.Random) -> bytes:
    """1 to 8 comments (some malformed or unterminated) at random places."""
    count = rng.randint(1, 8)
    points = _tag_boundaries(body, rng, count)
    return _insert_at(body, [(p, rng.choice(COMMENTS)) for p in points])


@_register("insert_processing_instructions", TEXT, XML)
def insert_processing_instructions(body: bytes, rng: random.Random) -> bytes:
    """1 to 8 processing instructions (some malformed, one a second XML declaration) at
    random places, sometimes before the XML declaration."""
    count = rng.randint(1, 8)
    points = _tag_boundaries(body, rng, count)
    if rng.random() < 0.3:
        points[0] = 0
    return _insert_at(body, [(p, rng.choice(PROCESSING_INSTRUCTIONS)) for p in points])


CDATA = (
    b"<![CDATA[",  # never closed
    b"]]>",
    b"<![CDATA[ &lol9; <!-- ]]>",
    b"<![CDATA[" + b"<![CDATA[" * 200,
    b"&lt;![\xc2\xa0DATA[",  # escaped: a malformed marked section in the HTML of a field
    b"&lt;![foo[ x ]]&gt;",
)
CHARACTER_REFERENCES = (
    b"&#xD800;", b"&#xDFFF;", b"&#x110000;", b"&#99999999999999999999;", b"&#0;", b"&#x1b;",
    b"&#x" + b"F" * 64 + b";", b"&#" + b"9" * 5000 + b";", b"&#" + b"0" * 5000 + b"65;",
    b"&#;", b"&#x;", b"&#-1;", "&#\u0661;".encode(),
    b"&amp;#" + b"9" * 5000 + b";", b"&amp;#" + b"0" * 5000 + b"65;",  # in the field's HTML
)  # fmt: skip


@_register("insert_cdata", TEXT, XML)
def insert_cdata(body: bytes, rng: random.Random) -> bytes:
    """1 to 6 CDATA openings (some never closed) and stray `]]>` at random places."""
    points = _tag_boundaries(body, rng, rng.randint(1, 6))
    return _insert_at(body, [(p, rng.choice(CDATA)) for p in points])


@_register("bad_character_references", TEXT, XML)
def bad_character_references(body: bytes, rng: random.Random) -> bytes:
    """Character references to surrogates, NUL, controls, past U+10FFFF, with 5,000
    digits, or empty, at the start of text elements and at random places."""
    starts = [match.end() for match in _TEXT_START.finditer(body)]
    points = rng.sample(starts, min(len(starts), rng.randint(1, 8)))
    points += [rng.randint(0, len(body)) for _ in range(rng.randint(0, 3))]
    return _insert_at(body, [(p, rng.choice(CHARACTER_REFERENCES)) for p in points])


_ITEM = re.compile(rb"<(item|entry)\b.*?</\1>", re.DOTALL)


@_register("many_items", TEXT, XML)
def many_items(body: bytes, rng: random.Random) -> bytes:
    """One item repeated 100 to 3,000 times (at most ~4 MB), each copy with its own title
    and GUID."""
    match = _ITEM.search(body)
    if match is None:
        return body
    item = match.group(0)
    count = min(rng.randint(100, 3000), 4 * 1024 * 1024 // len(item) + 1)  # at most ~4 MB
    copies = [
        item.replace(b"<title>", b"<title>copy %d " % n, 1).replace(
            b"<guid", b"<guid>fuzz-copy-%d</guid><guid" % n, 1
        )
        for n in range(count)
    ]
    return body[: match.start()] + b"".join(copies) + body[match.start() :]


@_register("huge_field", TEXT, XML)
def huge_field(body: bytes, rng: random.Random) -> bytes:
    """One title or description of 1 to 6 MB of words (or one unbroken word)."""
    starts = [match.end() for match in _TEXT_START.finditer(body)]
    if not starts:
        return body
    size = rng.randint(1, 6) * 1024 * 1024
    unit = rng.choice(
        (b"lorem ipsum ", b"x", "\u00e9t\u00e9 ".encode(), b"&lt;b&gt;bold&lt;/b&gt; ")
    )
    return _insert_at(body, [(rng.choice(starts), unit * (size // len(unit)))])


# ------------------------------------------------------------------------ numbers


def _numbers(family: str | None) -> Mutation:
    def mutate(body: bytes, rng: random.Random) -> bytes:
        def number() -> bytes:
            return _attribute_escape(_hostile_number(rng, family))

        body = _NUMERIC_ELEMENT.sub(lambda m: m.group(1) + number() + m.group(4), body)
        body = _DAY_ELEMENT.sub(lambda m: m.group(1) + rng.choice(DAYS).encode() + m.group(3), body)
        body = _NUMERIC_ATTRIBUTE.sub(lambda m: m.group(1) + b'="' + number() + b'"', body)
        channel = (
            b"<ttl>" + number() + b"</ttl>"
            b"<skipHours>" + b"".join(b"<hour>" + number() + b"</hour>" for _ in range(3))
            + b"</skipHours><skipDays><day>" + rng.choice(DAYS).encode() + b"</day></skipDays>"
            b'<sy:updateFrequency xmlns:sy="http://purl.org/rss/1.0/modules/syndication/">'
            + number() + b"</sy:updateFrequency>"
        )  # fmt: skip
        item = (
            b'<enclosure url="https://fuzz.invalid/a.mp3" type="audio/mpeg" length="'
            + number() + b'"/>'
            b'<media:content xmlns:media="http://search.yahoo.com/mrss/" '
            b'url="https://fuzz.invalid/a.jpg" fileSize="' + number() + b'" width="'
            + number() + b'" height="' + number() + b'" duration="' + number() + b'"/>'
        )  # fmt: skip
        container = _CONTAINER_START.search(body)
        if container is not None:
            body = body[: container.end()] + channel + body[container.end() :]
        first_item = _ITEM_START.search(body)
        if first_item is not None:
            body = body[: first_item.end()] + item + body[first_item.end() :]
        return body

    return mutate


for _family in (*NUMBER_CLASSES, None):
    _register(f"numbers_{_family or 'mixed'}", TEXT, XML)(_numbers(_family))


@_register("absurd_dates", TEXT, XML)
def absurd_dates(body: bytes, rng: random.Random) -> bytes:
    """Every date element gets year 0, 1, 99999, a negative year or junk digits."""

    def date(match: re.Match[bytes]) -> bytes:
        rfc822 = match.group(2) in (b"pubDate", b"lastBuildDate")
        value = rng.choice(RFC822_DATES if rfc822 or rng.random() < 0.2 else ISO_DATES)
        return match.group(1) + _attribute_escape(value) + match.group(4)

    return _DATE_ELEMENT.sub(date, body)


# ------------------------------------------------------------------------ JSON Feed

_JSON_STRINGS = ("title", "content_html", "content_text", "summary", "id", "url")
_POISON = ("\ud800", "\udfff", "\x00", "\ud83d", "\udc00\ud800", "\x00\x00\x00")


def _json(body: bytes) -> dict[str, Any] | None:
    try:
        document = json.loads(body)
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


def _items(document: dict[str, Any]) -> list[dict[str, Any]]:
    items = document.get("items")
    return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []


@_register("json_surrogates_and_nuls", TEXT, JSON)
def json_surrogates_and_nuls(body: bytes, rng: random.Random) -> bytes:
    """Lone surrogates and NULs in the feed's and items' strings, written as `\\ud800`
    escapes or as raw (CESU-8) bytes."""
    document = _json(body)
    if document is None:
        return body
    holders: list[dict[str, Any]] = [document, *_items(document)]
    for holder in holders:
        for key in _JSON_STRINGS:
            if key in holder or rng.random() < 0.3:
                original = holder.get(key)
                text = original if isinstance(original, str) else "fuzz"
                cut = rng.randint(0, len(text))
                holder[key] = text[:cut] + rng.choice(_POISON) + text[cut:]
        author = holder.get("author")
        if isinstance(author, dict):
            author["name"] = rng.choice(_POISON) + str(author.get("name", ""))
    escaped = rng.random() < 0.5
    return json.dumps(document, ensure_ascii=escaped).encode("utf-8", errors="surrogatepass")


@_register("json_numbers_and_dates", TEXT, JSON)
def json_numbers_and_dates(body: bytes, rng: random.Random) -> bytes:
    """Huge, negative and non-ASCII-digit numbers in every numeric field of the items'
    attachments (and as item ids), dates with year 0, 1 or 99999."""
    document = _json(body)
    if document is None:
        return body
    tokens: dict[str, str] = {}

    def number() -> str:
        value = _hostile_number(rng)
        if not re.fullmatch(r"-?[0-9]+(\.[0-9]+)?(e[0-9]+)?", value):
            return value  # not a JSON number: stays a string
        placeholder = f"@@number{len(tokens)}@@"
        tokens[placeholder] = value
        return placeholder

    for item in _items(document):
        attachments = item.get("attachments")
        if not isinstance(attachments, list) or not attachments:
            attachments = item["attachments"] = [{"url": "https://fuzz.invalid/a.mp3"}]
        for attachment in attachments:
            if isinstance(attachment, dict):
                attachment["size_in_bytes"] = number()
                attachment["duration_in_seconds"] = number()
        if rng.random() < 0.5:
            item["id"] = number()
        item["date_published"] = rng.choice(ISO_DATES)
        item["date_modified"] = rng.choice(ISO_DATES)
    text = json.dumps(document, ensure_ascii=False)
    for placeholder, value in tokens.items():
        text = text.replace(f'"{placeholder}"', value)
    return text.encode("utf-8", errors="surrogatepass")
