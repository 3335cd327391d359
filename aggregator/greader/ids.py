"""Google Reader identifiers (pure): item ids, stream ids, continuation tokens.

Item ids are event ids, offset by 2^62. Event ids are never given to another event
(`meta.last_event_id`), so an item id names one story for as long as the database lives,
across restarts, merges (an id merged away follows the merge: `Store.current_event_id`)
and prunes. The protocol writes one id in three ways, and clients send all of them back:

    tag:google.com,2005:reader/item/4000000000000001   the long form (items, Atom)
    4000000000000001                                    16 hex digits (NetNewsWire sends
                                                        them unpadded: the same here)
    4611686018427387905                                 decimal, a signed 64-bit integer
                                                        (stream/items/ids)

The offset is what makes the forms tell themselves apart: every id is in [2^62, 2^63), so
its hex form has exactly 16 digits and its decimal form 19. A string of 16 hex digits is
hex, anything else decimal, and no id this server gave out reads as another.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from urllib.parse import unquote

ITEM_PREFIX = "tag:google.com,2005:reader/item/"
ITEM_BASE = 2**62  # item id = ITEM_BASE + event id
MAX_ITEM = 2**63 - 1  # int64's largest: item ids stay positive in their signed form
_SHORT_HEX = re.compile(r"[0-9a-fA-F]{16}")
_DECIMAL = re.compile(r"-?[0-9]{1,20}")
_USER_STREAM = re.compile(r"user/(?:-|[0-9A-Za-z_.@-]{1,64})/(state/com\.google|label)/(.{1,200})")

READING_LIST = "user/-/state/com.google/reading-list"
STARRED = "user/-/state/com.google/starred"
READ = "user/-/state/com.google/read"
KEPT_UNREAD = "user/-/state/com.google/kept-unread"
FRESH = "user/-/state/com.google/fresh"
LABEL_PREFIX = "user/-/label/"


def item_number(event_id: int) -> int:
    """The 64-bit item id of an event."""
    if not 1 <= event_id < MAX_ITEM - ITEM_BASE:
        raise ValueError(f"no item id for event {event_id}")
    return ITEM_BASE + event_id


def long_item_id(event_id: int) -> str:
    """The long form of an event's item id."""
    return f"{ITEM_PREFIX}{item_number(event_id):016x}"


def decimal_item_id(event_id: int) -> str:
    """The decimal form (stream/items/ids): the id as a signed 64-bit integer (positive)."""
    return str(item_number(event_id))


def parse_item_id(text: str) -> int | None:
    """The event id an item id in any of its three forms names; None when `text` is not
    an item id this server could have given out."""
    value = text.strip()
    if value.startswith(ITEM_PREFIX):
        value = value[len(ITEM_PREFIX) :]
        if not _SHORT_HEX.fullmatch(value):
            return None
    if _SHORT_HEX.fullmatch(value):
        number = int(value, 16)
    elif _DECIMAL.fullmatch(value):
        number = int(value)
        if number < 0:  # the signed form of an unsigned 64-bit id
            number += 2**64
    else:
        return None
    if not ITEM_BASE < number <= MAX_ITEM:
        return None
    return number - ITEM_BASE


class State(StrEnum):
    """The `user/-/state/com.google/...` tags this server knows."""

    READING_LIST = "reading-list"
    READ = "read"
    STARRED = "starred"
    KEPT_UNREAD = "kept-unread"
    FRESH = "fresh"
    # What newsboat and Google's own clients add beside kept-unread: a tag for Google's
    # statistics, accepted and ignored.
    TRACKING_KEPT_UNREAD = "tracking-kept-unread"


@dataclass(frozen=True, slots=True)
class Stream:
    """A parsed stream id: exactly one of a state, a label (config group) or a feed."""

    state: State | None = None
    label: str | None = None
    feed: str | None = None  # `feed/<id>` as written: a feed's number or its address

    @property
    def id(self) -> str:
        """The stream id as this server writes it."""
        if self.state is not None:
            return f"user/-/state/com.google/{self.state.value}"
        if self.label is not None:
            return LABEL_PREFIX + self.label
        return f"feed/{self.feed}"


def parse_stream_id(text: str) -> Stream:
    """A stream id: `feed/<number or URL>`, `user/-/state/com.google/<state>`,
    `user/-/label/<group>` (any user id in place of `-`). ValueError when it is none."""
    value = text.strip()
    if not value or len(value) > 2048 or any(ord(ch) < 0x20 for ch in value):
        raise ValueError("not a stream id")
    if value.startswith("feed/") and len(value) > len("feed/"):
        return Stream(feed=value[len("feed/") :])
    match = _USER_STREAM.fullmatch(value)
    if match is None:
        raise ValueError(f"unknown stream id {value[:80]!r}")
    kind, name = match.groups()
    if kind == "label":
        return Stream(label=name)
    try:
        return Stream(state=State(name))
    except ValueError:
        raise ValueError(f"unknown state {name[:40]!r}") from None


def stream_from_path(path: str, prefix: str) -> str:
    """The stream id in a path such as /reader/atom/feed%2F3 or
    /reader/api/0/stream/contents/user/-/state/com.google/starred (percent-decoded once,
    as clients escape the whole id or none of it)."""
    return unquote(path[len(prefix) :], errors="strict")


def to_usec(value: datetime) -> int:
    """Microseconds since the epoch (timestampUsec)."""
    return int(value.timestamp()) * 1_000_000 + value.microsecond


# -- continuation tokens -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Position:
    """Where a page of a stream stopped: the last event's sort time and id (keyset paging:
    new arrivals neither repeat nor skip items on the following pages)."""

    time: str  # the event's first_seen as stored (ISO text)
    event_id: int


_TOKEN = re.compile(r"[A-Za-z0-9_-]{8,200}\.[A-Za-z0-9_-]{22}")


def issue_continuation(position: Position, key: bytes) -> str:
    """An opaque token for `position`, signed so that only tokens issued here are read."""
    payload = json.dumps([position.time, position.event_id], separators=(",", ":")).encode()
    body = base64.urlsafe_b64encode(payload).decode("ascii").rstrip("=")
    return f"{body}.{_signature(body, key)}"


def read_continuation(token: str, key: bytes) -> Position:
    """The position a token issued by `issue_continuation` stands for; ValueError for a
    token this server never issued (or one that has been tampered with)."""
    value = token.strip()
    if not _TOKEN.fullmatch(value):
        raise ValueError("not a continuation token of this server")
    body, signature = value.split(".")
    if not hmac.compare_digest(signature, _signature(body, key)):
        raise ValueError("not a continuation token of this server")
    try:
        time, event_id = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except (binascii.Error, ValueError, TypeError) as exc:
        raise ValueError("not a continuation token of this server") from exc
    if not isinstance(time, str) or not isinstance(event_id, int):
        raise ValueError("not a continuation token of this server")
    return Position(time, event_id)


def _signature(body: str, key: bytes) -> str:
    digest = hmac.new(key, b"continuation\0" + body.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:16]).decode("ascii").rstrip("=")


def last_values(params: Mapping[str, list[str]], name: str) -> str | None:
    """The last value of a parameter, or None."""
    values = params.get(name)
    return values[-1] if values else None
