"""OPML subscription lists in and out (pure: bytes and text in, bytes and text out).

* `read_opml` turns an OPML document into feeds: every `<outline>` with an `xmlUrl`, in the
  group of its nearest enclosing outline (the reader's folder), else `IMPORT_GROUP`. Only
  http(s) URLs are taken: an OPML file is foreign input and must not name local files.
  A DOCTYPE is refused outright (OPML has no use for one; it is where entity tricks live).
* `add_feeds` writes feeds into the YAML text of the config **as text**: new items are
  inserted after the last feed of an existing group, or a new group is appended after the
  last one, at the indentation the file already uses. Nothing else of the file changes, so
  comments, key order and formatting survive (a YAML round trip through PyYAML would drop
  every comment). Positions come from PyYAML's node marks. The caller re-validates the
  result with `parse_config` before writing it.
* `write_opml` gives OPML 2.0 for the configured URL feeds (local files and credentials are
  never exported).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from urllib.parse import urlsplit, urlunsplit

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from aggregator.errors import ConfigError, OpmlError
from aggregator.models import Config
from aggregator.urls import without_userinfo

IMPORT_GROUP = "imported"  # the group of feeds that sit in no folder of the OPML file
# An OPML file is a list of subscriptions: more than this is not one a person keeps.
MAX_OPML_FEEDS = 10_000
_INDENT_STEP = 2  # for a new group in an empty `groups:`


@dataclass(frozen=True, slots=True)
class OpmlFeed:
    """One subscription of an OPML file."""

    name: str
    url: str
    group: str


# -------------------------------------------------------------------------- reading


def read_opml(data: bytes) -> tuple[list[OpmlFeed], list[str]]:
    """The feeds of an OPML document, and one line per outline skipped (and why)."""
    if b"<!DOCTYPE" in data.upper():
        raise OpmlError("OPML with a DOCTYPE is refused (entity declarations are not needed)")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise OpmlError(f"not well-formed XML: {exc}") from None
    if root.tag != "opml":
        raise OpmlError(f"the root element is <{root.tag}>, not <opml>")
    body = root.find("body")
    if body is None:
        raise OpmlError("no <body> element")
    feeds: list[OpmlFeed] = []
    skipped: list[str] = []
    _walk(body, None, feeds, skipped)
    if len(feeds) > MAX_OPML_FEEDS:
        raise OpmlError(f"more than {MAX_OPML_FEEDS} feeds")
    return feeds, skipped


def _walk(
    element: ET.Element, group: str | None, feeds: list[OpmlFeed], skipped: list[str]
) -> None:
    for outline in element.findall("outline"):
        label = _clean(outline.get("title") or outline.get("text") or "")
        url = _clean(outline.get("xmlUrl") or "")
        if not url:
            # A folder: its children take its name as their group.
            _walk(outline, label or group, feeds, skipped)
            continue
        scheme = urlsplit(url).scheme.lower()
        if scheme not in ("http", "https"):
            skipped.append(f"{label or url}: only http and https feeds are imported ({url})")
            continue
        feeds.append(OpmlFeed(name=label or url, url=url, group=group or IMPORT_GROUP))


def _clean(text: str) -> str:
    """One line, no control characters (the config refuses them)."""
    return " ".join("".join(ch for ch in text if ch.isprintable() or ch == " ").split())


# -------------------------------------------------------------------------- YAML text


def _url_key(url: str) -> str:
    """What makes two URLs the same subscription: scheme and host case-insensitive, no
    default port, no fragment, no trailing slash."""
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower()
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = host if port in (None, default) else f"{host}:{port}"
    return urlunsplit((parts.scheme.lower(), netloc, parts.path.rstrip("/"), parts.query, ""))


def new_feeds(config: Config, feeds: Sequence[OpmlFeed]) -> tuple[list[OpmlFeed], list[str]]:
    """The feeds not already in `config` (by URL), with names made unique; and one line per
    feed left out."""
    known_urls = {_url_key(spec.url) for spec in config.feeds if spec.url}
    names = {spec.name.casefold() for spec in config.feeds}
    fresh: list[OpmlFeed] = []
    left_out: list[str] = []
    for feed in feeds:
        key = _url_key(feed.url)
        if key in known_urls:
            left_out.append(f"{feed.name}: already in the config ({feed.url})")
            continue
        known_urls.add(key)
        name, number = feed.name, 2
        while name.casefold() in names:
            name, number = f"{feed.name} ({number})", number + 1
        names.add(name.casefold())
        fresh.append(OpmlFeed(name=name, url=feed.url, group=feed.group))
    return fresh, left_out


def add_feeds(text: str, feeds: Sequence[OpmlFeed]) -> str:
    """The config text with `feeds` added to their groups (see the module docstring).

    Raises ConfigError when the file's shape leaves no place to add them (no `groups:`
    mapping in block style)."""
    if not feeds:
        return text
    text = ensure_newline(text)
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    groups_key, groups = _top_value(root, "groups")
    if groups_key is None:
        raise ConfigError("the config has no 'groups:' mapping to add feeds to")
    by_group: dict[str, list[OpmlFeed]] = {}
    for feed in feeds:
        by_group.setdefault(feed.group, []).append(feed)
    # (offset, order, text), applied from the end of the file; at one offset (the last
    # group's feeds end where the groups do) items go before a new group.
    insertions: list[tuple[int, int, str]] = []
    existing = _group_nodes(groups)
    new_groups: list[tuple[str, list[OpmlFeed]]] = []
    for group, members in by_group.items():
        sequence = existing.get(group)
        if sequence is not None:
            offset, indent = _after_last_item(text, sequence)
            insertions.append((offset, 0, "".join(_item(feed, indent) for feed in members)))
        else:
            target = group if group not in existing else f"{group} (imported)"
            new_groups.append((target, members))
    if new_groups:
        offset, indent = _after_groups(text, groups_key, groups)
        block = "".join(_group(name, members, indent) for name, members in new_groups)
        insertions.append((offset, 1, block))
    for offset, _, addition in sorted(insertions, reverse=True):
        text = text[:offset] + addition + text[offset:]
    return text


def _top_value(root: Node | None, key: str) -> tuple[ScalarNode | None, Node | None]:
    if not isinstance(root, MappingNode):
        return None, None
    for key_node, value_node in root.value:
        if isinstance(key_node, ScalarNode) and key_node.value == key:
            return key_node, value_node
    return None, None


def _group_nodes(groups: Node | None) -> dict[str, SequenceNode | None]:
    """Group name -> its `feeds` block sequence (None when it cannot be appended to)."""
    found: dict[str, SequenceNode | None] = {}
    if not isinstance(groups, MappingNode):
        return found
    for key_node, value_node in groups.value:
        name = str(key_node.value)
        found[name] = None
        if isinstance(value_node, MappingNode):
            for inner_key, inner_value in value_node.value:
                if (
                    inner_key.value == "feeds"
                    and isinstance(inner_value, SequenceNode)
                    and not inner_value.flow_style
                    and inner_value.value
                ):
                    found[name] = inner_value
    return found


def _last_scalar(node: Node) -> ScalarNode:
    """The scalar that ends `node` in the text (block collections end where the next token
    starts, after comments; the last scalar ends exactly where its text does)."""
    while not isinstance(node, ScalarNode):
        if isinstance(node, MappingNode) and node.value:
            node = node.value[-1][1]
        elif isinstance(node, SequenceNode) and node.value:
            node = node.value[-1]
        else:
            # An empty flow collection ({} or []) ends where its closing bracket does.
            return ScalarNode("tag:yaml.org,2002:null", "", node.start_mark, node.end_mark)
    return node


def _line_end(text: str, offset: int) -> int:
    """The offset just after the line holding `offset` (a newline is added if missing)."""
    newline = text.find("\n", offset)
    return len(text) if newline < 0 else newline + 1


def _after_last_item(text: str, sequence: SequenceNode) -> tuple[int, int]:
    """Where new items go (after the last item's last line) and the item indentation."""
    indent = sequence.start_mark.column  # the column of the first '-'
    end = _last_scalar(sequence).end_mark.index
    return _line_end(text, end), indent


def _after_groups(text: str, groups_key: ScalarNode, groups: Node | None) -> tuple[int, int]:
    """Where a new group goes (after the last group) and the group-key indentation."""
    if isinstance(groups, MappingNode) and groups.value:
        indent = groups.value[0][0].start_mark.column
        end = _last_scalar(groups).end_mark.index
        return _line_end(text, end), indent
    if isinstance(groups, ScalarNode) and groups.value == "":
        # `groups:` with nothing under it (every group commented out): the value is empty.
        return _line_end(text, groups_key.end_mark.index), groups_key.start_mark.column + 2
    raise ConfigError("'groups:' is not a block mapping: add the feeds by hand")


def _quoted(value: str) -> str:
    # A JSON string is a valid YAML double-quoted scalar, escapes included.
    return json.dumps(value, ensure_ascii=False)


def _item(feed: OpmlFeed, indent: int) -> str:
    pad = " " * indent
    return f"{pad}- name: {_quoted(feed.name)}\n{pad}  url: {_quoted(feed.url)}\n"


def _group(name: str, feeds: Sequence[OpmlFeed], indent: int) -> str:
    pad = " " * indent
    items = "".join(_item(feed, indent + 2 * _INDENT_STEP) for feed in feeds)
    return f"{pad}{_quoted(name)}:\n{pad}{' ' * _INDENT_STEP}feeds:\n{items}"


def ensure_newline(text: str) -> str:
    """Text that ends with a newline, so an addition at the end starts on its own line."""
    return text if not text or text.endswith("\n") else text + "\n"


# -------------------------------------------------------------------------- writing


def write_opml(config: Config, *, now: datetime, title: str = "aggregator feeds") -> bytes:
    """OPML 2.0 of the configured http(s) feeds, one folder per group."""
    root = ET.Element("opml", version="2.0")
    head = ET.SubElement(root, "head")
    ET.SubElement(head, "title").text = title
    ET.SubElement(head, "dateCreated").text = format_datetime(now, usegmt=True)
    body = ET.SubElement(root, "body")
    folders: dict[str, ET.Element] = {}
    for spec in config.feeds:
        if spec.url is None:
            continue  # a local path means nothing on another machine
        folder = folders.get(spec.group)
        if folder is None:
            folder = ET.SubElement(body, "outline", text=spec.group, title=spec.group)
            folders[spec.group] = folder
        ET.SubElement(
            folder, "outline", type="rss", text=spec.name, title=spec.name,
            xmlUrl=without_userinfo(spec.url),
        )  # fmt: skip
    ET.indent(root)
    data: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return data + b"\n"
