"""YAML feed list -> validated `Config`, with errors that name file, line and key.

The file is composed with PyYAML's safe loader into a node tree, and the tree is walked
by hand instead of being loaded into Python objects: nodes keep their position, so every
error points at the offending line (`ConfigError.line`, 1-based), and the walk sees what
`yaml.safe_load` hides (duplicate keys, which PyYAML silently overwrites). Nothing is ever
constructed from a tag we do not know, so no custom YAML type can run code.

Format (documented for users in `config/feeds.yaml`)::

    settings:                    # optional; every key is listed in `SETTINGS`
      dedup_window: 72h
    groups:                      # required
      world:
        interval: 60m            # optional group defaults: interval, priority,
        priority: 0              #   enabled, allow_private
        feeds:                   # required (may be empty)
          - name: Le Monde
            url: https://www.lemonde.fr/rss/une.xml   # or path: ../seeds/x.rss
            interval: 30m
            priority: 10
            enabled: true
            allow_private: false
            username: reader     # optional HTTP Basic credentials, sent to the
            password: secret     #   feed URL's own origin only
    users:                       # optional: who may use the Google Reader API
      alice:
        password_hash: scrypt$16384$8$1$...   # `aggregator passwd alice` makes it

`parse_config` is pure apart from one injectable check that local feed files exist;
`load_config` is the thin wrapper that reads the file. `parse_duration` and `parse_size`
are public because the CLI reuses them (`--since 12h`); they raise ValueError.
"""

from __future__ import annotations

import difflib
import re
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlsplit

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.reader import ReaderError

from aggregator.errors import ConfigError
from aggregator.filters import FIELDS, Action, Matcher, Rule
from aggregator.greader.passwords import parse_hash
from aggregator.models import (
    DEFAULT_INTERVAL,
    ApiUser,
    CanonicalRule,
    Config,
    FeedSpec,
    Settings,
)
from aggregator.urls import is_database_url

__all__ = [
    "SETTINGS",
    "documented_settings",
    "load_config",
    "parse_config",
    "parse_duration",
    "parse_size",
]

# --- accepted keys, per level -------------------------------------------------------------

_TOP_KEYS = ("settings", "filters", "groups", "users")
_USER_KEYS = ("password_hash",)
_GROUP_DEFAULT_KEYS = ("interval", "priority", "enabled", "allow_private")
_GROUP_KEYS = (*_GROUP_DEFAULT_KEYS, "filters", "feeds")
_FEED_KEYS = ("name", "url", "path", *_GROUP_DEFAULT_KEYS, "filters", "username", "password")

# --- limits -------------------------------------------------------------------------------

MIN_INTERVAL = timedelta(minutes=1)  # faster polling is abuse of the publisher
MAX_INTERVAL = timedelta(days=7)  # slower than weekly is "disabled"; say so with enabled
MIN_DEDUP_WINDOW = timedelta(hours=1)  # shorter misses the same story re-published an hour on
MIN_FETCH_TIMEOUT = timedelta(seconds=1)
MAX_FETCH_TIMEOUT = timedelta(minutes=10)  # a deadline longer than this stalls a whole run
MIN_BODY_SIZE = 1024  # smaller cannot hold even a one-item feed
# Fetch threads mostly wait on sockets; past 64 the limit is the publishers' patience.
MAX_FETCH_WORKERS = 64
MAX_FETCH_PER_HOST = 8  # more parallel requests to one server is no longer polite
# Ten years: longer is "keep everything", which a long retention already says.
MAX_RETENTION_DAYS = 3650
# Entries kept per feed update: a real feed lists tens, an archive a few thousand.
MAX_MAX_ENTRIES = 100_000
MIN_PARSE_TIMEOUT = timedelta(seconds=1)
MAX_PARSE_TIMEOUT = timedelta(minutes=5)  # a parse longer than this stalls the daemon's pass
MIN_PARSE_MEMORY = 64 * 1024 * 1024  # an interpreter with feedparser loaded needs ~35 MB
# Priorities only rank feeds; a bound keeps them readable and far inside SQLite's int64.
MAX_ABS_PRIORITY = 1_000_000

# --- YAML tags the resolver gives plain scalars --------------------------------------------

_TAG_STR = "tag:yaml.org,2002:str"
_TAG_INT = "tag:yaml.org,2002:int"
_TAG_FLOAT = "tag:yaml.org,2002:float"
_TAG_BOOL = "tag:yaml.org,2002:bool"
_TAG_NULL = "tag:yaml.org,2002:null"
_TAG_MERGE = "tag:yaml.org,2002:merge"
_TAG_MAP = "tag:yaml.org,2002:map"
_TAG_SEQ = "tag:yaml.org,2002:seq"
_TAG_NAMES = {
    _TAG_STR: "a string",
    _TAG_INT: "an integer",
    _TAG_FLOAT: "a number",
    _TAG_BOOL: "a boolean",
    "tag:yaml.org,2002:timestamp": "a date",
    "tag:yaml.org,2002:binary": "binary data",
}

# Only the stateless scalar converters of this instance are used (int, float, bool), so
# sharing one across calls and threads is safe and nothing is cached on it.
_SCALARS = SafeConstructor()

# Tags the resolver gives unquoted scalars: a quoted value would have been a string.
_IMPLICIT_TAGS = frozenset((_TAG_INT, _TAG_FLOAT, _TAG_BOOL, "tag:yaml.org,2002:timestamp"))

_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")

# --- public helpers -------------------------------------------------------------------------

# d, h, m, s in that order, each at most once, optional spaces between them ("1h 30m").
# Digit counts are capped so a typo cannot overflow timedelta.
_DURATION_RE = re.compile(
    r"(?:(?P<d>\d{1,6})\s*d)?\s*(?:(?P<h>\d{1,7})\s*h)?\s*"
    r"(?:(?P<m>\d{1,9})\s*m)?\s*(?:(?P<s>\d{1,11})\s*s)?",
    re.IGNORECASE,
)
_BARE_NUMBER_RE = re.compile(r"[+-]?\d+(?:\.\d*)?|[+-]?\.\d+")


def parse_duration(text: str) -> timedelta:
    """Parse a duration such as "90s", "30m", "2h", "1d" or "1h30m" (units d, h, m, s).

    A bare number is refused rather than guessed at: "30" could mean seconds or minutes.
    Raises ValueError with a message meant for the user.
    """
    if not isinstance(text, str):
        raise ValueError(f"expected a duration such as '30m', found {type(text).__name__}")
    stripped = text.strip()
    if _BARE_NUMBER_RE.fullmatch(stripped):
        raise ValueError(_no_unit_message(stripped))
    match = _DURATION_RE.fullmatch(stripped)
    if not stripped or match is None or not any(match.groupdict().values()):
        raise ValueError(
            f"invalid duration {text!r}: use a whole number with a unit s, m, h or d,"
            " e.g. '90s', '30m', '2h', '1d', '1h30m'"
        )
    parts = {unit: int(value) if value else 0 for unit, value in match.groupdict().items()}
    return timedelta(days=parts["d"], hours=parts["h"], minutes=parts["m"], seconds=parts["s"])


def _no_unit_message(number: str) -> str:
    example = f"{number}m" if number.isdigit() else "30m"
    return f"duration {number!r} has no unit: add one of s, m, h, d (e.g. '{example}')"


_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "kib": 1024,
    "mb": 1000**2,
    "mib": 1024**2,
    "gb": 1000**3,
    "gib": 1024**3,
}
_SIZE_RE = re.compile(r"(\d{1,15}(?:\.\d{1,9})?)\s*([A-Za-z]*)")


def parse_size(value: object) -> int:
    """Parse a size in bytes: an int, or a string such as "15MiB", "512 KB", "1.5GiB".

    Units are B, KB, MB, GB (powers of 1000) and KiB, MiB, GiB (powers of 1024), any
    letter case. Raises ValueError for anything else, negative sizes and fractions of a byte.
    """
    # bool is an int subclass; `max_body_size: true` is a mistake, not one byte.
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(
            f"expected a size such as 15MiB or a number of bytes, found {type(value).__name__}"
        )
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"size must not be negative, found {value}")
        return value
    match = _SIZE_RE.fullmatch(value.strip())
    if match is None:
        raise ValueError(
            f"invalid size {value!r}: use a number of bytes or a number with a unit"
            " B, KB, KiB, MB, MiB, GB or GiB, e.g. '15MiB'"
        )
    number, unit = match.groups()
    factor = _SIZE_UNITS.get(unit.lower())
    if factor is None:
        raise ValueError(
            f"unknown size unit {unit!r} in {value!r}: use B, KB, KiB, MB, MiB, GB or GiB"
        )
    # Decimal, not float: "1.1MB" must be exactly 1100000 bytes.
    amount = Decimal(number) * factor
    if amount != amount.to_integral_value():
        raise ValueError(f"size {value!r} is not a whole number of bytes")
    return int(amount)


# --- loading --------------------------------------------------------------------------------


def load_config(path: Path) -> Config:
    """Read and validate the feed list at `path`. Raises ConfigError naming the file."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError("config file not found", path=path) from None
    except IsADirectoryError:
        raise ConfigError("is a directory, not a config file", path=path) from None
    except PermissionError:
        raise ConfigError("cannot read config file: permission denied", path=path) from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(f"cannot read config file: {reason}", path=path) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(
            f"not valid UTF-8 (byte 0x{data[exc.start]:02x}); save the file as UTF-8",
            path=path,
            line=line,
        ) from None
    return parse_config(text, path)


def parse_config(
    text: str, path: Path, *, file_exists: Callable[[Path], bool] = Path.is_file
) -> Config:
    """Validate the YAML `text` of the config file at `path` and build a `Config`.

    `path` is only used in messages and to resolve `path:` feeds against its directory;
    `file_exists` is the one file-system access (tests inject a fake). Raises ConfigError
    for every problem in the input, never a raw YAML, type or key error.
    """
    ctx = _Context(path=path, config_dir=path.parent, file_exists=file_exists)
    root = _compose(text, path)
    if root is None:
        raise ConfigError(
            "the file is empty: it needs at least a 'groups:' mapping of feed groups", path=path
        )
    top = _mapping(ctx, root, "", _TOP_KEYS, what="the top level of the file")
    settings = _parse_settings(ctx, top.get("settings"))
    groups = top.get("groups")
    if groups is None:
        raise ctx.error(
            root, "groups", "missing required key 'groups' (a mapping of group name -> feeds)"
        )
    filters = _parse_filters(ctx, top.get("filters"))
    feeds = _parse_groups(ctx, groups, filters)
    users = _parse_users(ctx, top.get("users"))
    return Config(path=path, feeds=tuple(feeds), settings=settings, users=users)


def _parse_users(ctx: _Context, field: _Field | None) -> tuple[ApiUser, ...]:
    """The `users:` mapping: name -> {password_hash: scrypt$...}; absent means no API."""
    if field is None or _is_null(field.value):
        return ()
    users = []
    for name, user in _mapping(ctx, field.value, field.key, None, what="'users'").items():
        shown = name
        if not shown.strip() or _CONTROL_CHARS.search(shown) or ":" in shown:
            raise ctx.error(user.key_node, user.key, "a user name: no colon, no line break")
        keys = _mapping(ctx, user.value, user.key, _USER_KEYS, what=f"user {shown!r}")
        hash_field = keys.get("password_hash")
        if hash_field is None:
            raise ctx.error(
                user.value, user.key,
                "missing 'password_hash' (make it with `aggregator passwd NAME`)",
            )  # fmt: skip
        text = _string(ctx, hash_field, "password_hash")
        try:
            parse_hash(text)
        except ValueError as exc:
            raise ctx.error(hash_field.value, hash_field.key, str(exc)) from None
        users.append(ApiUser(shown, text.strip(), _line(user.key_node)))
    return tuple(users)


def _compose(text: str, path: Path) -> Node | None:
    """YAML text -> node tree, turning every PyYAML failure into a one-line ConfigError."""
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        detail = ", ".join(part for part in (exc.context, exc.problem) if part)
        raise ConfigError(
            f"invalid YAML: {_one_line(detail) or 'syntax error'}",
            path=path,
            line=mark.line + 1 if mark is not None else None,
        ) from None
    except ReaderError as exc:
        # Raised before scanning (control characters); it has an offset, not a mark.
        position = exc.position if isinstance(exc.position, int) else 0
        char = exc.character
        code = ord(char) if isinstance(char, str) and len(char) == 1 else char
        shown = f"#x{code:04x}" if isinstance(code, int) else repr(code)
        raise ConfigError(
            f"invalid YAML: character {shown} is not allowed in a YAML file",
            path=path,
            line=text.count("\n", 0, position) + 1,
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {_one_line(str(exc))}", path=path) from None
    except RecursionError:
        # The composer recurses once per nesting level; [[[[...]]]] can exhaust the stack.
        raise ConfigError("invalid YAML: nested too deeply", path=path) from None


# --- walking the node tree ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Context:
    """What every validation step needs: where the file is, and how to check local files."""

    path: Path
    config_dir: Path
    file_exists: Callable[[Path], bool]

    def error(self, node: Node, key: str | None, message: str) -> ConfigError:
        """A ConfigError located at `node`."""
        # A quoted key may hold a line break; the message must stay on one line.
        shown_key = _one_line(key) if key else None
        return ConfigError(message, path=self.path, line=_line(node), key=shown_key or None)


class _Field(NamedTuple):
    """One entry of a YAML mapping: its full dotted key, key node and value node."""

    key: str
    key_node: Node
    value: Node


@dataclass(frozen=True, slots=True)
class _Defaults:
    """Feed options inherited from the group (or the built-in defaults)."""

    interval: timedelta = DEFAULT_INTERVAL
    priority: int = 0
    enabled: bool = True
    allow_private: bool = False
    filters: tuple[Rule, ...] = ()  # global, then the group's


@dataclass(frozen=True, slots=True)
class _Feed:
    """A validated feed, plus what the cross-feed duplicate checks need to point at."""

    spec: FeedSpec
    identity: str  # normalised URL or resolved path, compared across all groups
    identity_field: _Field
    name_node: Node
    name_key: str
    name_derived: bool


def _line(node: Node) -> int | None:
    mark = node.start_mark
    return mark.line + 1 if mark is not None else None


def _one_line(text: str) -> str:
    """Collapse whitespace so `str(ConfigError)` stays on one line."""
    return " ".join(text.split())


def _join(parent: str, child: str) -> str:
    return f"{parent}.{child}" if parent else child


def _is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == _TAG_NULL


def _describe(node: Node) -> str:
    """What the user wrote, for "expected X, found Y" messages."""
    if isinstance(node, MappingNode):
        return "a mapping" if node.tag == _TAG_MAP else f"a mapping {_tagged(node)}"
    if isinstance(node, SequenceNode):
        return "a list" if node.tag == _TAG_SEQ else f"a list {_tagged(node)}"
    value: str = node.value
    if node.tag == _TAG_NULL:
        return "an empty value" if value == "" else f"null ({value!r})"
    shown = repr(_one_line(value)[:60])
    noun = _TAG_NAMES.get(node.tag)
    return f"{noun} ({shown})" if noun else f"the value {shown} {_tagged(node)}"


def _tagged(node: Node) -> str:
    short = node.tag.replace("tag:yaml.org,2002:", "!!", 1)
    return f"tagged {short!r} (YAML tags are not supported)"


def _mapping(
    ctx: _Context, node: Node, key: str, allowed: Sequence[str] | None, *, what: str
) -> dict[str, _Field]:
    """The entries of a mapping node, by key, after checking key types and duplicates.

    `allowed` None means any string key (group names); otherwise other keys are refused
    with the closest valid key as a suggestion.
    """
    # A tagged mapping (!!set, !custom) is refused: a tag we ignore would be a silent surprise.
    if not isinstance(node, MappingNode) or node.tag != _TAG_MAP:
        raise ctx.error(node, key, f"{what} must be a mapping, found {_describe(node)}")
    fields: dict[str, _Field] = {}
    pairs: list[tuple[Node, Node]] = node.value
    for key_node, value_node in pairs:
        if isinstance(key_node, ScalarNode) and key_node.tag == _TAG_MERGE:
            raise ctx.error(
                key_node, key, "YAML merge keys ('<<') are not supported: write the keys out"
            )
        if not isinstance(key_node, ScalarNode) or key_node.tag != _TAG_STR:
            shown = _one_line(key_node.value) if isinstance(key_node, ScalarNode) else ""
            raise ctx.error(
                key_node,
                _join(key, shown) if shown else key,
                f"keys in {what} must be strings, found {_describe(key_node)}"
                + (" (put quotes around it)" if key_node.tag in _IMPLICIT_TAGS else ""),
            )
        name: str = key_node.value
        full_key = _join(key, name)
        if name in fields:
            first = _line(fields[name].key_node)
            raise ctx.error(key_node, full_key, f"duplicate key {name!r} (first on line {first})")
        if allowed is not None and name not in allowed:
            raise ctx.error(key_node, full_key, _unknown_key_message(name, allowed))
        fields[name] = _Field(full_key, key_node, value_node)
    return fields


def _unknown_key_message(name: str, allowed: Sequence[str]) -> str:
    message = f"unknown key {name!r}"
    if name in _FEED_KEYS and "feeds" in allowed:
        # A feed's keys written directly under the group: the `feeds:` list was forgotten.
        return f"{message}: feed options go in a list under 'feeds:'"
    close = difflib.get_close_matches(name, allowed, n=1)
    if close:
        return f"{message} (did you mean {close[0]!r}?)"
    return f"{message}; valid keys: {', '.join(allowed)}"


def _sequence(ctx: _Context, field: _Field, what: str) -> list[Node]:
    node = field.value
    if _is_null(node):
        return []  # `feeds:` with every item commented out is an empty list
    if not isinstance(node, SequenceNode) or node.tag != _TAG_SEQ:
        raise ctx.error(node, field.key, f"{what} must be a list, found {_describe(node)}")
    items: list[Node] = node.value
    return items


def _string(ctx: _Context, field: _Field, what: str) -> str:
    """A non-empty single-line string."""
    node = field.value
    if not isinstance(node, ScalarNode) or node.tag != _TAG_STR:
        # An unquoted 2024, true or 1.5 is typed by YAML; quoting makes it a string.
        hint = " (put quotes around it)" if node.tag in _IMPLICIT_TAGS else ""
        raise ctx.error(node, field.key, f"{what} must be a string, found {_describe(node)}{hint}")
    value: str = node.value
    if not value.strip():
        raise ctx.error(node, field.key, f"{what} must not be empty")
    if _CONTROL_CHARS.search(value):
        raise ctx.error(
            node, field.key, f"{what} must not contain line breaks or control characters"
        )
    return value


def _bool(ctx: _Context, field: _Field) -> bool:
    node = field.value
    if not isinstance(node, ScalarNode) or node.tag != _TAG_BOOL:
        raise ctx.error(node, field.key, f"expected true or false, found {_describe(node)}")
    return _SCALARS.construct_yaml_bool(node)


def _priority(ctx: _Context, field: _Field) -> int:
    node = field.value
    # The bool tag is distinct from int in YAML, so `priority: true` lands here too.
    if not isinstance(node, ScalarNode) or node.tag != _TAG_INT:
        raise ctx.error(node, field.key, f"expected an integer, found {_describe(node)}")
    value = _SCALARS.construct_yaml_int(node)
    if abs(value) > MAX_ABS_PRIORITY:
        raise ctx.error(
            node,
            field.key,
            f"priority must be between {-MAX_ABS_PRIORITY} and {MAX_ABS_PRIORITY}, found {value}",
        )
    return value


def _duration(
    ctx: _Context, field: _Field, low: timedelta, high: timedelta | None = None
) -> timedelta:
    """A duration string within [low, high]; a bare number asks for a unit."""
    node = field.value
    if isinstance(node, ScalarNode) and node.tag in (_TAG_INT, _TAG_FLOAT):
        raise ctx.error(node, field.key, _no_unit_message(node.value))
    if not isinstance(node, ScalarNode) or node.tag != _TAG_STR:
        raise ctx.error(
            node,
            field.key,
            f"expected a duration such as '30m' or '2h', found {_describe(node)}",
        )
    text: str = node.value
    try:
        value = parse_duration(text)
    except ValueError as exc:
        raise ctx.error(node, field.key, str(exc)) from None
    if value < low or (high is not None and value > high):
        bounds = (
            f"between {_format_duration(low)} and {_format_duration(high)}"
            if high is not None
            else f"at least {_format_duration(low)}"
        )
        raise ctx.error(node, field.key, f"must be {bounds}, found {text!r}")
    return value


def _format_duration(value: timedelta) -> str:
    """timedelta -> the compact form parse_duration reads ("1h30m")."""
    seconds = int(value.total_seconds())
    out = ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            out += f"{count}{unit}"
    return out or "0s"


def _size(ctx: _Context, field: _Field, *, low: int = MIN_BODY_SIZE) -> int:
    node = field.value
    if not isinstance(node, ScalarNode) or node.tag not in (_TAG_INT, _TAG_STR):
        raise ctx.error(
            node,
            field.key,
            f"expected a size such as '15MiB' or a number of bytes, found {_describe(node)}",
        )
    raw: str = node.value
    value: object = _SCALARS.construct_yaml_int(node) if node.tag == _TAG_INT else raw
    try:
        size = parse_size(value)
    except ValueError as exc:
        raise ctx.error(node, field.key, str(exc)) from None
    if size < low:
        raise ctx.error(
            node, field.key, f"must be at least {_format_size(low)} ({low} bytes), found {raw!r}"
        )
    return size


def _format_size(size: int) -> str:
    for unit, factor in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size % factor == 0:
            return f"{size // factor}{unit}"
    return f"{size}B"


# --- settings -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SettingSpec:
    """One key of the `settings:` block: how it is read, and how it is documented."""

    key: str  # the YAML key
    attribute: str  # the `Settings` field it fills
    default: str  # the built-in default, as written in YAML
    comment: str  # what it does, in a sentence or two, for the documented example
    kind: str  # the value format and its range, in words
    read: Callable[[_Context, _Field], object]
    details: tuple[str, ...] = ()  # extra comment lines, kept as they are


def _duration_setting(
    key: str, default: str, comment: str, low: timedelta, high: timedelta | None = None,
    *, seconds: bool = False, attribute: str | None = None,
) -> SettingSpec:  # fmt: skip
    """A duration key; `seconds` stores it as float seconds, as the fetch and parse code want."""
    bounds = (
        f"{_format_duration(low)} to {_format_duration(high)}"
        if high is not None
        else f"at least {_format_duration(low)}"
    )

    def read(ctx: _Context, field: _Field) -> object:
        value = _duration(ctx, field, low, high)
        return value.total_seconds() if seconds else value

    return SettingSpec(key, attribute or key, default, comment, f"Duration, {bounds}.", read)


def _size_setting(key: str, attribute: str, default: str, comment: str, low: int) -> SettingSpec:
    def read(ctx: _Context, field: _Field) -> object:
        return _size(ctx, field, low=low)

    return SettingSpec(
        key, attribute, default, comment, f"Size, at least {_format_size(low)}.", read
    )


def _count_setting(key: str, default: str, comment: str, low: int, high: int) -> SettingSpec:
    def read(ctx: _Context, field: _Field) -> object:
        return _count(ctx, field, low, high)

    return SettingSpec(key, key, default, comment, f"Whole number, {low} to {high}.", read)


# Every setting, in the order the documented example lists them. Validation, the
# defaults and the `settings:` block of config/feeds.yaml all come from this table.
SETTINGS: tuple[SettingSpec, ...] = (
    SettingSpec(
        "canonical", "canonical", "[priority, earliest, longest]",
        "How the canonical entry of an event (the copy shown first, with the others listed"
        ' as "also reported by") is chosen: criteria tried in this order until one decides.',
        "Each criterion at most once; at least one.",
        lambda ctx, field: _canonical(ctx, field),
        details=tuple(f"  {rule.value:<9} {rule.description}" for rule in CanonicalRule),
    ),
    _duration_setting(
        "dedup_window", "72h",
        "How far back an entry is compared with earlier ones to find copies of the same"
        " story.",
        MIN_DEDUP_WINDOW,
    ),
    _size_setting(
        "max_body_size", "max_body_bytes", "15MiB",
        "Largest feed document accepted, after decompression.", MIN_BODY_SIZE,
    ),
    _duration_setting(
        "fetch_timeout", "20s",
        "Total deadline of one fetch (connect, redirects and download).",
        MIN_FETCH_TIMEOUT, MAX_FETCH_TIMEOUT, seconds=True,
    ),
    _count_setting(
        "fetch_workers", "8",
        "Fetches running at once. A fetch that has not answered after 5 s stops counting,"
        " so hung servers cannot hold up the rest.",
        1, MAX_FETCH_WORKERS,
    ),
    _count_setting(
        "fetch_per_host", "2", "Fetches running at once to one host.", 1, MAX_FETCH_PER_HOST
    ),
    _count_setting(
        "retention_days", "30",
        "An event whose newest item arrived more than this many days ago is deleted with"
        " its items.",
        1, MAX_RETENTION_DAYS,
    ),
    _count_setting(
        "tombstone_days", "60",
        "What identifies each deleted item (its id in the feed, its link, its text) is kept"
        " this many days longer, counted from the last time a feed still listed it, so it is"
        " not shown as new again.",
        1, MAX_RETENTION_DAYS,
    ),
    _count_setting(
        "max_entries", "500", "Entries kept per feed update (the newest).", 1, MAX_MAX_ENTRIES
    ),
    _duration_setting(
        "parse_timeout", "10s",
        "Each feed is parsed in a separate worker process, stopped after this long.",
        MIN_PARSE_TIMEOUT, MAX_PARSE_TIMEOUT, seconds=True,
    ),
    _size_setting(
        "parse_memory", "parse_memory", "512MiB",
        "A parse worker is stopped when it needs more memory than this.", MIN_PARSE_MEMORY,
    ),
    SettingSpec(
        "database", "database", "data/aggregator.db",
        "Where everything is stored: a SQLite file (the embedded default), or a PostgreSQL"
        " server shared by several processes and hosts. `--db` and $AGGREGATOR_DB override"
        " it.",
        "A file path, or postgresql://user@host:port/database (no password in it).",
        lambda ctx, field: _database(ctx, field),
    ),
    SettingSpec(
        "database_password_file", "database_password_file", "null",
        "A file whose first line is the PostgreSQL password; without it the password comes"
        " from $AGGREGATOR_DATABASE_PASSWORD, then from libpq's PGPASSWORD or ~/.pgpass.",
        "A file path, or null.",
        lambda ctx, field: None if _is_null(field.value) else Path(_string(ctx, field, "path")),
    ),
)  # fmt: skip
_SETTINGS_BY_KEY = {spec.key: spec for spec in SETTINGS}


def documented_settings(width: int = 90) -> str:
    """The `settings:` block of the documented example YAML, every key with its default."""
    lines = ["settings:"]
    for index, spec in enumerate(SETTINGS):
        if index:
            lines.append("")
        text = f"{spec.comment} {spec.kind}"
        lines += textwrap.wrap(text, width - 4, initial_indent="  # ", subsequent_indent="  # ")
        lines += [f"  # {line}" for line in spec.details]
        lines.append(f"  {spec.key}: {spec.default}")
    return "\n".join(lines) + "\n"


def _parse_settings(ctx: _Context, field: _Field | None) -> Settings:
    """The `settings:` block; absent or empty means all defaults."""
    if field is None or _is_null(field.value):
        return Settings()
    fields = _mapping(ctx, field.value, field.key, tuple(_SETTINGS_BY_KEY), what="'settings'")
    values = {
        _SETTINGS_BY_KEY[key].attribute: _SETTINGS_BY_KEY[key].read(ctx, value)
        for key, value in fields.items()
    }
    return Settings(**values)  # type: ignore[arg-type]


def _database(ctx: _Context, field: _Field) -> str:
    """A SQLite path or a PostgreSQL URL without a password (config files get shared)."""
    value = _string(ctx, field, "database")
    if is_database_url(value):
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 (reading it validates it)
        except ValueError as exc:
            raise ctx.error(field.value, field.key, f"not a PostgreSQL URL: {exc}") from None
        if parts.password is not None:
            raise ctx.error(
                field.value, field.key,
                "the URL holds a password: put it in database_password_file or in"
                " $AGGREGATOR_DATABASE_PASSWORD instead",
            )  # fmt: skip
        if not parts.hostname or not parts.path.strip("/"):
            raise ctx.error(field.value, field.key, "a PostgreSQL URL names a host and a database")
    elif "://" in value:
        raise ctx.error(
            field.value, field.key, "only file paths and postgresql:// URLs are databases"
        )
    return value


def _count(ctx: _Context, field: _Field, low: int, high: int) -> int:
    """A whole number within [low, high]."""
    node = field.value
    # The bool tag is distinct from int in YAML, so `fetch_workers: true` lands here too.
    if not isinstance(node, ScalarNode) or node.tag != _TAG_INT:
        raise ctx.error(node, field.key, f"expected a whole number, found {_describe(node)}")
    value = _SCALARS.construct_yaml_int(node)
    if not low <= value <= high:
        raise ctx.error(node, field.key, f"must be between {low} and {high}, found {value}")
    return int(value)


def _canonical(ctx: _Context, field: _Field) -> tuple[CanonicalRule, ...]:
    """The ordered canonical-entry criteria: known rules, each at most once, at least one."""
    valid = [rule.value for rule in CanonicalRule]
    node = field.value
    if not isinstance(node, SequenceNode) or node.tag != _TAG_SEQ:
        raise ctx.error(
            node,
            field.key,
            f"expected a list such as [{', '.join(valid)}], found {_describe(node)}",
        )
    items: list[Node] = node.value
    if not items:
        raise ctx.error(node, field.key, f"must list at least one of: {', '.join(valid)}")
    rules: list[CanonicalRule] = []
    first_line: dict[CanonicalRule, int | None] = {}
    for index, item in enumerate(items):
        key = f"{field.key}[{index}]"
        if not isinstance(item, ScalarNode) or item.tag != _TAG_STR:
            raise ctx.error(
                item, key, f"expected one of {', '.join(valid)}, found {_describe(item)}"
            )
        text: str = item.value
        if text not in valid:
            close = difflib.get_close_matches(text, valid, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ctx.error(
                item,
                key,
                f"unknown canonical rule {text!r}{hint}; valid: {', '.join(valid)}",
            )
        rule = CanonicalRule(text)
        if rule in first_line:
            raise ctx.error(
                item, key, f"{text!r} is listed twice (first on line {first_line[rule]})"
            )
        first_line[rule] = _line(item)
        rules.append(rule)
    return tuple(rules)


# --- filters ------------------------------------------------------------------------------

_ACTIONS = tuple(action.value for action in Action)


def _parse_filters(ctx: _Context, field: _Field | None) -> tuple[Rule, ...]:
    """A `filters:` list (aggregator/filters.py): each item one action, mapping the fields
    it reads to a pattern or a list of patterns, every pattern compiled now."""
    if field is None:
        return ()
    rules: list[Rule] = []
    for index, node in enumerate(_sequence(ctx, field, "'filters'")):
        key = f"{field.key}[{index}]"
        actions = _mapping(ctx, node, key, _ACTIONS, what="a filter rule")
        if len(actions) != 1:
            raise ctx.error(
                node, key,
                f"a filter rule has exactly one action ({', '.join(_ACTIONS)}), "
                f"found {len(actions)}",
            )  # fmt: skip
        ((name, action_field),) = actions.items()
        fields = _mapping(
            ctx, action_field.value, action_field.key, FIELDS, what=f"the {name!r} rule"
        )
        if not fields:
            raise ctx.error(
                action_field.value, action_field.key,
                f"a rule names at least one field to read: {', '.join(FIELDS)}",
            )  # fmt: skip
        matchers = tuple(
            (field_name, _patterns(ctx, pattern_field))
            for field_name, pattern_field in fields.items()
        )
        rules.append(Rule(Action(name), matchers, f"{ctx.path}:{_line(node)}"))
    return tuple(rules)


def _patterns(ctx: _Context, field: _Field) -> tuple[Matcher, ...]:
    """One pattern, or a non-empty list of them (any may match)."""
    if isinstance(field.value, SequenceNode):
        nodes = _sequence(ctx, field, "a list of patterns")
        fields = [_Field(f"{field.key}[{i}]", field.key_node, n) for i, n in enumerate(nodes)]
        if not fields:
            raise ctx.error(field.value, field.key, "a list of patterns must not be empty")
    else:
        fields = [field]
    matchers: list[Matcher] = []
    for one in fields:
        text = _string(ctx, one, "a pattern")
        try:
            matchers.append(Matcher.parse(text))
        except ValueError as error:
            raise ctx.error(one.value, one.key, f"{error}: {text!r}") from None
    return tuple(matchers)


# --- groups and feeds -----------------------------------------------------------------------


def _parse_groups(ctx: _Context, field: _Field, filters: tuple[Rule, ...] = ()) -> list[FeedSpec]:
    """Every feed of every group, in file order, with duplicates refused across groups;
    `filters`: the global rules, which every feed's come after."""
    if _is_null(field.value):
        return []  # every group commented out
    groups = _mapping(ctx, field.value, field.key, None, what="'groups'")
    specs: list[FeedSpec] = []
    seen_locations: dict[str, _Feed] = {}
    seen_names: dict[str, _Feed] = {}
    for group_name, group_field in groups.items():
        if not group_name.strip():
            raise ctx.error(group_field.key_node, group_field.key, "group name must not be empty")
        if _CONTROL_CHARS.search(group_name):
            raise ctx.error(
                group_field.key_node,
                group_field.key,
                "group name must not contain line breaks or control characters",
            )
        for feed in _parse_group(ctx, group_name, group_field, filters):
            _check_unique(ctx, feed, seen_locations, seen_names)
            specs.append(feed.spec)
    return specs


def _parse_group(
    ctx: _Context, group_name: str, field: _Field, filters: tuple[Rule, ...]
) -> list[_Feed]:
    fields = _mapping(ctx, field.value, field.key, _GROUP_KEYS, what=f"group {group_name!r}")
    defaults = _options(ctx, fields, _Defaults(filters=filters))
    defaults = replace(defaults, filters=filters + _parse_filters(ctx, fields.get("filters")))
    feeds_field = fields.get("feeds")
    if feeds_field is None:
        raise ctx.error(
            field.value,
            _join(field.key, "feeds"),
            f"group {group_name!r} has no 'feeds:' list",
        )
    feeds: list[_Feed] = []
    for index, item in enumerate(_sequence(ctx, feeds_field, "'feeds'")):
        key = f"{feeds_field.key}[{index}]"
        feeds.append(_parse_feed(ctx, item, key, group_name, defaults))
    return feeds


def _options(ctx: _Context, fields: dict[str, _Field], inherited: _Defaults) -> _Defaults:
    """interval / priority / enabled / allow_private, falling back to `inherited`."""
    interval = inherited.interval
    if "interval" in fields:
        interval = _duration(ctx, fields["interval"], MIN_INTERVAL, MAX_INTERVAL)
    priority = inherited.priority
    if "priority" in fields:
        priority = _priority(ctx, fields["priority"])
    enabled = inherited.enabled
    if "enabled" in fields:
        enabled = _bool(ctx, fields["enabled"])
    allow_private = inherited.allow_private
    if "allow_private" in fields:
        allow_private = _bool(ctx, fields["allow_private"])
    return _Defaults(interval, priority, enabled, allow_private, inherited.filters)


def _parse_feed(ctx: _Context, node: Node, key: str, group: str, defaults: _Defaults) -> _Feed:
    fields = _mapping(ctx, node, key, _FEED_KEYS, what="a feed")
    url_field, path_field = fields.get("url"), fields.get("path")
    if url_field is not None and path_field is not None:
        raise ctx.error(
            path_field.key_node,
            path_field.key,
            "a feed has either 'url' or 'path', not both",
        )
    url: str | None = None
    path: Path | None = None
    if url_field is not None:
        url, identity, derived_name = _url(ctx, url_field)
        identity_field = url_field
    elif path_field is not None:
        path = _local_path(ctx, path_field)
        identity, derived_name, identity_field = str(path), path.stem, path_field
    else:
        raise ctx.error(node, key, "a feed needs 'url' (http or https) or 'path' (a local file)")
    options = _options(ctx, fields, defaults)
    name_field = fields.get("name")
    name = derived_name if name_field is None else _string(ctx, name_field, "name").strip()
    spec = FeedSpec(
        name=name,
        group=group,
        url=url,
        path=path,
        interval=options.interval,
        priority=options.priority,
        enabled=options.enabled,
        allow_private=options.allow_private,
        filters=options.filters + _parse_filters(ctx, fields.get("filters")),
        line=_line(node),
        **_credentials(ctx, fields, node, key, is_url=url is not None),
    )
    return _Feed(
        spec=spec,
        identity=identity,
        identity_field=identity_field,
        name_node=name_field.value if name_field is not None else node,
        name_key=name_field.key if name_field is not None else _join(key, "name"),
        name_derived=name_field is None,
    )


def _credentials(
    ctx: _Context, fields: dict[str, _Field], node: Node, key: str, *, is_url: bool
) -> dict[str, str | None]:
    """`username` and `password` of a feed: both strings, a username without ':' (Basic
    authentication could not tell it from the password), only for `url` feeds."""
    username_field, password_field = fields.get("username"), fields.get("password")
    if username_field is None and password_field is None:
        return {"username": None, "password": None}
    first = username_field or password_field
    assert first is not None
    if not is_url:
        raise ctx.error(first.key_node, first.key, "credentials only apply to 'url' feeds")
    if username_field is None:
        raise ctx.error(node, _join(key, "username"), "a 'password' needs a 'username'")
    username = _string(ctx, username_field, "username")
    if ":" in username:
        raise ctx.error(username_field.value, username_field.key, "username must not contain ':'")
    password = _string(ctx, password_field, "password") if password_field is not None else None
    return {"username": username, "password": password}


def _url(ctx: _Context, field: _Field) -> tuple[str, str, str]:
    """Validate a feed URL. Returns (url as written, identity for duplicates, default name).

    Only http and https are fetched: file:, ftp:, javascript: and friends would let a
    config line read local files or reach other protocols.
    """
    node = field.value
    url = _string(ctx, field, "url").strip()
    if any(char.isspace() for char in url):
        raise ctx.error(node, field.key, f"url must not contain spaces, found {url!r}")
    try:
        parts = urlsplit(url)
        port = parts.port  # parsed lazily; a bad port raises here
    except ValueError as exc:
        raise ctx.error(node, field.key, f"invalid url {url!r}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        found = f"scheme '{scheme}:'" if scheme else "no scheme"
        raise ctx.error(
            node,
            field.key,
            f"url {url!r} has {found}: only http:// and https:// are allowed"
            " (use 'path:' for a local file)",
        )
    host = parts.hostname  # already lower-cased by urlsplit
    if not host:
        raise ctx.error(node, field.key, f"url {url!r} has no host")
    # Identity: scheme and host compared case-insensitively (they are), default port
    # dropped, fragment ignored (never sent); path and query stay case-sensitive.
    shown_host = f"[{host}]" if ":" in host else host
    netloc = shown_host
    if port is not None and port != {"http": 80, "https": 443}[scheme]:
        netloc += f":{port}"
    userinfo = parts.netloc.rpartition("@")[0]
    if userinfo:
        netloc = f"{userinfo}@{netloc}"
    query = f"?{parts.query}" if parts.query else ""
    identity = f"{scheme}://{netloc}{parts.path or '/'}{query}"
    name = f"{shown_host}{parts.path}".rstrip("/") + query
    return url, identity, name


def _local_path(ctx: _Context, field: _Field) -> Path:
    """A local feed file, relative to the config file's directory; it must exist."""
    raw = _string(ctx, field, "path")
    try:
        resolved = (ctx.config_dir / raw).resolve()
        exists = ctx.file_exists(resolved)
    except (OSError, RuntimeError, ValueError) as exc:
        # PermissionError on a parent directory, a symlink loop, a NUL byte.
        raise ctx.error(
            field.value, field.key, f"cannot check local feed file {raw!r}: {exc}"
        ) from None
    if not exists:
        raise ctx.error(field.value, field.key, f"local feed file not found: {resolved}")
    return resolved


def _check_unique(
    ctx: _Context, feed: _Feed, locations: dict[str, _Feed], names: dict[str, _Feed]
) -> None:
    """Refuse a second feed with the same location or name, in any group."""
    first = locations.get(feed.identity)
    if first is not None:
        what = "url" if feed.spec.url is not None else "file"
        raise ctx.error(
            feed.identity_field.value,
            feed.identity_field.key,
            f"duplicate feed: the same {what} {feed.spec.location!r} is already declared on"
            f" line {first.spec.line} (group {first.spec.group!r})",
        )
    locations[feed.identity] = feed
    # casefold: "Le Monde" and "le monde" would be indistinguishable in listings.
    folded = feed.spec.name.casefold()
    first = names.get(folded)
    if first is not None:
        hint = "; set a distinct 'name:'" if feed.name_derived or first.name_derived else ""
        raise ctx.error(
            feed.name_node,
            feed.name_key,
            f"duplicate feed name {feed.spec.name!r} (first used on line {first.spec.line}){hint}",
        )
    names[folded] = feed
