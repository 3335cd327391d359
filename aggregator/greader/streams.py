"""What a stream request asks for (pure): `s`, `xt`, `it`, `n`, `r`, `ot`, `nt` and `c`
-> a `StreamRequest`, or a ValueError naming the parameter.

Only what this server can answer is accepted: excluding or including the read and
starred states (every client uses `xt=user/-/state/com.google/read`), a feed, a label
(config group) or a state as the stream.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from aggregator.greader.ids import Position, State, Stream, parse_stream_id, read_continuation
from aggregator.numbers import ascii_int

DEFAULT_ITEMS = 20  # Google's default page
MAX_ITEMS = 1_000  # items one page returns at most; more asked is capped
# Item ids one page of stream/items/ids returns at most. NetNewsWire asks for n=10000
# unread ids and follows no continuation: an id missing from that page is an article it
# marks read. Ids are cheap (no text), so the cap is theirs.
MAX_IDS = 10_000
MAX_ITEMS_ASKED = 100_000  # more than this asked is a mistake, answered 400
MAX_FILTERS = 10  # xt and it values
MAX_SECONDS = 10**11  # an `ot`/`nt` past the year 5000 is not a time
# Seconds since 1970, with a fraction: NetNewsWire sends `ot=1733580000.123456`.
_SECONDS = re.compile(r"[0-9]{1,11}(?:\.[0-9]{1,9})?")


@dataclass(frozen=True, slots=True)
class StreamRequest:
    """A page of a stream: which stream, which states, how many, in which order, from
    where. `read`/`starred` None do not filter; `empty` when the filters contradict."""

    stream: Stream
    read: bool | None = None
    starred: bool | None = None
    limit: int = DEFAULT_ITEMS
    oldest_first: bool = False
    since: datetime | None = None  # ot: first arrived at or after
    until: datetime | None = None  # nt: first arrived before
    after: Position | None = None  # c: where the previous page stopped
    empty: bool = False


def _one(params: Mapping[str, list[str]], name: str) -> str | None:
    values = params.get(name)
    if values is not None and len(values) > 1 and len(set(values)) > 1:
        raise ValueError(f"{name}: one value only")
    return values[-1] if values else None


def _state_filter(value: str, name: str) -> State:
    try:
        stream = parse_stream_id(value)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None
    if stream.state not in (State.READ, State.STARRED):
        raise ValueError(
            f"{name}: only user/-/state/com.google/read or .../starred, not {value[:80]!r}"
        )
    return stream.state


def _seconds(params: Mapping[str, list[str]], name: str) -> datetime | None:
    text = (_one(params, name) or "").strip()
    if not text:
        return None
    if not _SECONDS.fullmatch(text) or float(text) > MAX_SECONDS:
        raise ValueError(f"{name}: a time in seconds since 1970")
    return datetime.fromtimestamp(float(text), UTC)


def parse_limit(text: str | None, *, cap: int = MAX_ITEMS, default: int = DEFAULT_ITEMS) -> int:
    """`n`: a whole number from 1 to MAX_ITEMS_ASKED, capped at `cap`."""
    if text is None or text.strip() == "":
        return default
    value = ascii_int(text.strip(), cap=MAX_ITEMS_ASKED + 1)
    if value is None or not 1 <= value <= MAX_ITEMS_ASKED:
        raise ValueError(f"n: a whole number from 1 to {MAX_ITEMS_ASKED}")
    return min(value, cap)


def required_stream(text: str | None) -> Stream:
    """The stream `s` names; ValueError (saying `s:`) when it is missing or unknown."""
    if not text:
        raise ValueError("s: a stream id is required")
    try:
        return parse_stream_id(text)
    except ValueError as exc:
        raise ValueError(f"s: {exc}") from None


def parse_stream_request(
    params: Mapping[str, list[str]], stream_id: str | None, key: bytes, *, cap: int = MAX_ITEMS
) -> StreamRequest:
    """The page asked for; `stream_id` from the path, else from `s`; at most `cap` items.
    ValueError for anything this server would have to guess at."""
    stream = required_stream(stream_id if stream_id is not None else _one(params, "s"))
    if stream.state in (State.TRACKING_KEPT_UNREAD,):
        raise ValueError(f"s: {stream.id} is not a stream")
    read: bool | None = None
    starred: bool | None = None
    empty = False

    def want(state: State, value: bool) -> None:
        nonlocal read, starred, empty
        if state is State.READ:
            empty |= read is not None and read != value
            read = value
        else:
            empty |= starred is not None and starred != value
            starred = value

    if stream.state is State.READ:
        want(State.READ, True)
    elif stream.state is State.STARRED:
        want(State.STARRED, True)
    elif stream.state in (State.KEPT_UNREAD, State.FRESH):
        want(State.READ, False)
    excluded, included = params.get("xt", []), params.get("it", [])
    if len(excluded) + len(included) > MAX_FILTERS:
        raise ValueError(f"xt, it: at most {MAX_FILTERS} in all")
    for value in excluded:
        want(_state_filter(value, "xt"), False)
    for value in included:
        want(_state_filter(value, "it"), True)
    order = _one(params, "r")
    if order not in (None, "", "n", "d", "o"):
        raise ValueError("r: o (oldest first) or n (newest first)")
    after = None
    token = _one(params, "c")
    if token:
        try:
            after = read_continuation(token, key)
        except ValueError as exc:
            raise ValueError(f"c: {exc}") from None
    return StreamRequest(
        stream=stream, read=read, starred=starred, limit=parse_limit(_one(params, "n"), cap=cap),
        oldest_first=order == "o", since=_seconds(params, "ot"),
        until=_seconds(params, "nt"), after=after, empty=empty,
    )  # fmt: skip
