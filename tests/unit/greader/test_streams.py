"""A stream request's parameters -> what to read (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from aggregator.greader.ids import Position, State, issue_continuation
from aggregator.greader.streams import (
    DEFAULT_ITEMS,
    MAX_IDS,
    MAX_ITEMS,
    parse_limit,
    parse_stream_request,
)

KEY = b"s" * 32
READ = "user/-/state/com.google/read"
STARRED = "user/-/state/com.google/starred"


def parse(stream: str | None = "user/-/state/com.google/reading-list", **params: str | list[str]):  # type: ignore[no-untyped-def]
    values = {name: value if isinstance(value, list) else [value] for name, value in params.items()}
    return parse_stream_request(values, stream, KEY)


def test_the_reading_list_without_filters_reads_everything_newest_first() -> None:
    request = parse()
    assert (request.read, request.starred, request.limit, request.oldest_first) == (
        None, None, DEFAULT_ITEMS, False,
    )  # fmt: skip
    assert request.stream.state is State.READING_LIST and not request.empty


def test_netnewswire_unread_ids() -> None:
    """s=reading-list&n=10000&xt=read&ot=<float>: unread only, 10000 ids, since ot."""
    values = {"s": ["user/-/state/com.google/reading-list"], "n": ["10000"], "xt": [READ],
              "ot": ["1733580000.123456"], "output": ["json"]}  # fmt: skip
    request = parse_stream_request(values, None, KEY, cap=MAX_IDS)
    assert request.read is False and request.limit == MAX_IDS
    assert request.since == datetime.fromtimestamp(1733580000.123456, UTC)


def test_states_as_streams_and_filters() -> None:
    assert parse(STARRED).starred is True
    assert parse(READ).read is True
    assert parse("user/-/state/com.google/kept-unread").read is False
    assert parse(it=STARRED).starred is True
    assert parse(xt=STARRED).starred is False
    assert parse("feed/3", xt=READ).read is False


def test_contradicting_filters_give_an_empty_page() -> None:
    assert parse(READ, xt=READ).empty
    assert parse(STARRED, xt=STARRED).empty
    assert not parse(READ, it=READ).empty


def test_order_bounds_and_continuation() -> None:
    token = issue_continuation(Position("2026-11-22T08:00:00.000000+00:00", 7), KEY)
    request = parse(r="o", ot="1700000000", nt="1800000000", c=token)
    assert request.oldest_first
    assert request.since == datetime.fromtimestamp(1700000000, UTC)
    assert request.until == datetime.fromtimestamp(1800000000, UTC)
    assert request.after == Position("2026-11-22T08:00:00.000000+00:00", 7)


@pytest.mark.parametrize(
    ("text", "limit"),
    [(None, 20), ("", 20), ("1", 1), ("1000", 1000), ("5000", MAX_ITEMS), ("100000", MAX_ITEMS)],
)
def test_n_is_capped(text: str | None, limit: int) -> None:
    assert parse_limit(text) == limit


@pytest.mark.parametrize("text", ["0", "-5", "1000000000", "1e3", "ten", "٣", "10 0"])
def test_n_out_of_bounds_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="n: a whole number"):
        parse_limit(text)


@pytest.mark.parametrize(
    ("stream", "params", "message"),
    [
        (None, {}, "s: a stream id is required"),
        ("splice/x", {}, "s: unknown stream id"),
        ("user/-/state/com.google/tracking-kept-unread", {}, "is not a stream"),
        ("feed/3", {"xt": "user/-/label/world"}, "xt: only"),
        ("feed/3", {"it": "feed/4"}, "it: only"),
        ("feed/3", {"r": "x"}, "r: o"),
        ("feed/3", {"ot": "yesterday"}, "ot: a time"),
        ("feed/3", {"nt": "99999999999999"}, "nt: a time"),
        ("feed/3", {"c": "20"}, "c: not a continuation token"),
        ("feed/3", {"n": ["5", "6"]}, "n: one value only"),
        ("feed/3", {"xt": [READ] * 11}, "at most 10"),
    ],
)
def test_what_cannot_be_answered_is_refused(
    stream: str | None, params: dict[str, str | list[str]], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        parse(stream, **params)
