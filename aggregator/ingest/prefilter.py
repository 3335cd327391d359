"""Byte-level repairs made before feedparser sees a document (pure).

The parse worker's memory and time limits stop any input eventually; these filters stop the
known hostile inputs early and cheaply, and repair the ones that make feedparser 6 raise
(measurements in `reliability-anchors.md`, sections 0.2-0.4 and 4):

* **Entity declarations.** feedparser keeps "safe" internal entities and, when expat's
  amplification guard aborts the strict parse, its loose parser expands them without any
  limit (a 25 KB feed became a 51,200,000-character summary; 200 KB ran out of memory).
  We expand internal general entities ourselves under a budget and remove the internal
  subset, so feedparser never sees a declaration. External and parameter entities are
  dropped unresolved (nothing is ever fetched or read). Over the budget, the document is
  refused with `entity_declarations`.
* **Numeric character references.** `&#xD800;`, `&#x110000;` and `&#99999999999999999999;`
  make feedparser raise; `&#0;` and `&#x1b;` reach the text. References to characters XML
  forbids are replaced: controls are dropped, the rest become U+FFFD.
* **XML declaration.** feedparser's encoding regex is cubic on a first line that repeats
  `encoding="` without a closing `?>` (20 KB: 29 s). The declaration must close within the
  first KiB, and we end the first line right after it, so the regex only ever sees it.

Everything works on the raw bytes of ASCII-compatible encodings (UTF-8, Latin-1, ...). A
document these filters cannot read (UTF-16 or UTF-32, junk before its DOCTYPE, declarations
where they do not look) meets the same budget again inside feedparser, on the UTF-8 it has
converted the document to, through `expand_declared` (`parse` puts it in place of
feedparser's own DOCTYPE step), so that neither of feedparser's parsers ever expands an
entity itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from aggregator.errors import ParseError

# Largest expansion of one entity (its value with nested references replaced). Real feeds
# declare short ones (a namespace URI, a name); a bigger value is an amplification attempt.
MAX_ENTITY_VALUE = 1024
# Total bytes added to the document by expanding references: 1 MiB is more than any
# legitimate use and far below what the worker's memory limit could absorb.
MAX_ENTITY_EXPANSION = 1024 * 1024
# Nesting depth of entity references inside entity values (a chain of 10 is billion laughs).
MAX_ENTITY_DEPTH = 4
# The XML declaration is short; one that has not closed by then is hostile or broken.
MAX_XML_DECLARATION = 1024

_BOMS = (b"\xef\xbb\xbf",)
_SPACE = b" \t\r\n"
_NAME = rb"[A-Za-z_:][\w.\-:]{0,63}"
_ENTITY_DECL = re.compile(
    rb"<!ENTITY\s+(%\s+)?(" + _NAME + rb")\s+"
    rb"(?:\"([^\"]*)\"|'([^']*)'|(SYSTEM|PUBLIC)\b[^>]*)\s*>",
)
_ENTITY_REF = re.compile(rb"&(" + _NAME + rb");")
# Any number of digits: feedparser's loose parser calls int() on them, which raises past
# 4,300 decimal digits (`_repair` never converts more than `_MAX_REF_DIGITS`).
_CHAR_REF = re.compile(rb"&#(?:[xX]([0-9A-Fa-f]+)|([0-9]+));")
_MAX_REF_DIGITS = 8  # U+10FFFF is 7 decimal digits, 6 hexadecimal ones
_PREDEFINED = frozenset({b"amp", b"lt", b"gt", b"quot", b"apos"})
# The start of the next thing the entity expander must look at.
_EXPANDER_TOKEN = re.compile(rb"&|<!\[CDATA\[|<!--")


@dataclass(frozen=True, slots=True)
class _Doctype:
    start: int  # offset of "<!DOCTYPE"
    end: int  # offset just after its closing ">"
    subset: bytes | None  # the internal subset between [ and ], when there is one


def prefilter(body: bytes) -> bytes:
    """The document with entity declarations expanded or refused, invalid character
    references repaired and the XML declaration isolated. Raises ParseError
    (`entity_declarations`, `not_a_feed`)."""
    body = _isolate_xml_declaration(body)
    body = _expand_entities(body)
    return repair_char_refs(body)


# -------------------------------------------------------------------------- XML declaration


def _isolate_xml_declaration(body: bytes) -> bytes:
    start = len(_BOMS[0]) if body.startswith(_BOMS[0]) else 0
    if not body.startswith(b"<?", start):
        return body
    newline = body.find(b"\n", start)
    if 0 <= newline - start <= MAX_XML_DECLARATION:
        return body  # the first line is short: the regex is fast on it
    close = body.find(b"?>", start, start + MAX_XML_DECLARATION)
    if close < 0:
        raise ParseError(
            "not_a_feed", f"the XML declaration does not close within {MAX_XML_DECLARATION} bytes"
        )
    # White space after the declaration is part of the prolog: the document is unchanged.
    return body[: close + 2] + b"\n" + body[close + 2 :]


# -------------------------------------------------------------------------- entities


def expand_entities(body: bytes) -> bytes:
    """The document with the internal entities of its prolog's DOCTYPE expanded under the
    budgets and the internal subset removed. Raises ParseError (`entity_declarations`)."""
    return _expand_entities(body)


def expand_declared(body: bytes, values: dict[bytes, bytes]) -> bytes:
    """Replace `&name;` in `body` by `values[name]` under the same budgets (each value at
    most `MAX_ENTITY_VALUE`, the document growing by at most `MAX_ENTITY_EXPANSION`).
    The values must not refer to other entities. Raises ParseError
    (`entity_declarations`)."""
    for name, value in values.items():
        if len(value) > MAX_ENTITY_VALUE:
            raise ParseError(
                "entity_declarations",
                f"entity {name.decode(errors='replace')!r} expands to more than "
                f"{MAX_ENTITY_VALUE} bytes",
            )
    return _replace_references(body, values)


def _expand_entities(body: bytes) -> bytes:
    doctype = _find_doctype(body)
    if doctype is None or doctype.subset is None:
        return body
    values: dict[bytes, bytes] = {}
    for match in _ENTITY_DECL.finditer(doctype.subset):
        parameter, name, double, single, external = match.groups()
        if parameter or external or name in _PREDEFINED:
            continue  # never resolved: nothing is fetched, read or redefined
        values.setdefault(name, double if double is not None else single)
    expanded = _resolve_values(values)
    # The declarations go; the references are replaced below. What follows the DOCTYPE is
    # unchanged, so line numbers in feedparser's messages shift by the subset's lines only.
    rest = _replace_references(body[doctype.end :], expanded)
    return body[: doctype.start] + rest


def _resolve_values(values: dict[bytes, bytes]) -> dict[bytes, bytes]:
    """Each entity's replacement text with nested references expanded, under the budgets."""
    resolved: dict[bytes, bytes] = {}

    def resolve(name: bytes, depth: int, stack: tuple[bytes, ...]) -> bytes:
        if name in resolved:
            return resolved[name]
        if name in stack:
            raise ParseError("entity_declarations", f"entity {name.decode()!r} refers to itself")
        if depth > MAX_ENTITY_DEPTH:
            raise ParseError(
                "entity_declarations", f"entities nested deeper than {MAX_ENTITY_DEPTH}"
            )

        def nested(match: re.Match[bytes]) -> bytes:
            inner = match.group(1)
            if inner in values:
                return resolve(inner, depth + 1, (*stack, name))
            return match.group(0)  # predefined or unknown: left for the parser

        text = _ENTITY_REF.sub(nested, values[name])
        if len(text) > MAX_ENTITY_VALUE:
            raise ParseError(
                "entity_declarations",
                f"entity {name.decode()!r} expands to more than {MAX_ENTITY_VALUE} bytes",
            )
        resolved[name] = text
        return text

    for name in values:
        resolve(name, 0, ())
    return resolved


def _replace_references(data: bytes, values: dict[bytes, bytes]) -> bytes:
    """Replace `&name;` for the declared names, outside CDATA sections and comments.

    A linear scan with `find`: a regex with a lazy `.*?` per CDATA section would be
    quadratic on a document full of unclosed `<![CDATA[`.
    """
    out: list[bytes] = []
    copied = 0  # data[:copied] is already in `out`
    added = 0
    position = 0
    while True:
        token = _EXPANDER_TOKEN.search(data, position)
        if token is None:
            break
        start = token.start()
        if token.group(0) != b"&":
            terminator = b"]]>" if token.group(0).startswith(b"<![") else b"-->"
            end = data.find(terminator, token.end())
            position = len(data) if end < 0 else end + len(terminator)
            continue
        reference = _ENTITY_REF.match(data, start)
        if reference is None or reference.group(1) not in values:
            position = start + 1
            continue
        value = values[reference.group(1)]
        added += len(value) - len(reference.group(0))
        if added > MAX_ENTITY_EXPANSION:
            raise ParseError(
                "entity_declarations",
                f"entity references expand the document by more than {MAX_ENTITY_EXPANSION} bytes",
            )
        out.append(data[copied:start])
        out.append(value)
        position = copied = reference.end()
    if not out:
        return data
    out.append(data[copied:])
    return b"".join(out)


def _find_doctype(body: bytes) -> _Doctype | None:
    """The DOCTYPE of the prolog (before the root element), with its internal subset."""
    position = len(_BOMS[0]) if body.startswith(_BOMS[0]) else 0
    length = len(body)
    while position < length:
        while position < length and body[position] in _SPACE:
            position += 1
        if body.startswith(b"<?", position):
            end = body.find(b"?>", position)
            if end < 0:
                return None
            position = end + 2
        elif body.startswith(b"<!--", position):
            end = body.find(b"-->", position)
            if end < 0:
                return None
            position = end + 3
        elif body[position : position + 9].upper() == b"<!DOCTYPE":
            return _read_doctype(body, position)
        else:
            return None  # the root element (or junk): no DOCTYPE in the prolog
    return None


def _read_doctype(body: bytes, start: int) -> _Doctype | None:
    """Parse `<!DOCTYPE name ... [subset]>` starting at `start`, quotes respected."""
    position = start + 9
    quote: int | None = None
    length = len(body)
    while position < length:
        char = body[position]
        if quote is not None:
            if char == quote:
                quote = None
        elif char in b"\"'":
            quote = char
        elif char == ord(">"):
            return _Doctype(start, position + 1, None)
        elif char == ord("["):
            subset_end = _subset_end(body, position + 1)
            if subset_end is None:
                return None
            close = body.find(b">", subset_end + 1)
            if close < 0:
                return None
            return _Doctype(start, close + 1, body[position + 1 : subset_end])
        position += 1
    return None


def _subset_end(body: bytes, position: int) -> int | None:
    """Offset of the `]` that ends an internal subset: quotes and comments skipped."""
    length = len(body)
    while position < length:
        char = body[position]
        if char in b"\"'":
            end = body.find(bytes([char]), position + 1)
            if end < 0:
                return None
            position = end + 1
            continue
        if body.startswith(b"<!--", position):
            end = body.find(b"-->", position + 4)
            if end < 0:
                return None
            position = end + 3
            continue
        if char == ord("]"):
            return position
        position += 1
    return None


# -------------------------------------------------------------------------- character refs


def _is_xml_char(code: int) -> bool:
    return (
        code in (0x9, 0xA, 0xD)
        or 0x20 <= code <= 0xD7FF
        or 0xE000 <= code <= 0xFFFD
        or 0x10000 <= code <= 0x10FFFF
    )


def _repair(match: re.Match[bytes]) -> bytes:
    hex_digits, decimal = match.groups()
    digits = (hex_digits if hex_digits is not None else decimal).lstrip(b"0") or b"0"
    if len(digits) > _MAX_REF_DIGITS:
        return b"&#xFFFD;"  # far past U+10FFFF
    code = int(digits, 16) if hex_digits is not None else int(digits)
    if _is_xml_char(code):
        # Untouched, unless leading zeros make it long enough for int() to refuse.
        return match.group(0) if len(match.group(0)) <= 64 else b"&#x%X;" % code
    if code < 0x20 or code == 0x7F:
        return b""  # controls carry nothing a reader should see
    return b"&#xFFFD;"


def repair_char_refs(body: bytes) -> bytes:
    """Replace numeric character references to characters XML forbids (surrogates, values
    past U+10FFFF, NUL and other controls), of any length. Valid references are untouched
    (one padded with leading zeros past 64 bytes is written short)."""
    if b"&#" not in body:
        return body
    return _CHAR_REF.sub(_repair, body)
