"""Item ids, stream ids and continuation tokens (pure)."""

from __future__ import annotations

import pytest

from aggregator.greader.ids import (
    ITEM_BASE,
    Position,
    State,
    Stream,
    decimal_item_id,
    issue_continuation,
    long_item_id,
    parse_item_id,
    parse_stream_id,
    read_continuation,
)

KEY = b"k" * 32


@pytest.mark.parametrize("event_id", [1, 2, 9, 10, 15, 16, 255, 4096, 10**6, 2**61])
def test_every_form_of_an_item_id_names_its_event(event_id: int) -> None:
    """Long form, 16 hex digits (padded as in edit-tag, unpadded as NetNewsWire sends them
    to items/contents: the same, the ids being >= 2^62), and decimal."""
    number = ITEM_BASE + event_id
    assert long_item_id(event_id) == f"tag:google.com,2005:reader/item/{number:016x}"
    assert decimal_item_id(event_id) == str(number)
    for form in (long_item_id(event_id), f"{number:016x}", f"{number:x}", f"{number:016X}",
                 str(number), str(number - 2**64 + 2**64), f"  {number}  "):  # fmt: skip
        assert parse_item_id(form) == event_id


def test_the_signed_form_of_a_large_id_is_read() -> None:
    """A negative decimal is the signed form of an unsigned 64-bit id: above int64, so
    no event of ours."""
    assert parse_item_id(str((2**63 + 5) - 2**64)) is None


@pytest.mark.parametrize(
    "text",
    ["", "0", "42", "-1", "abc", "4000000000000000", str(ITEM_BASE), "1" * 21,
     "tag:google.com,2005:reader/item/42", "tag:google.com,2005:reader/item/",
     "tag:google.com,2005:reader/item/400000000000000g", "400000000000001", "0x4000000000000001",
     "4000000000000001 4000000000000002", "٤٢", str(2**63)],
)  # fmt: skip
def test_what_is_not_an_item_id_of_ours_is_refused(text: str) -> None:
    """Small numbers (never issued), the base itself, garbage, other digits, above int64."""
    assert parse_item_id(text) is None


def test_no_item_id_for_an_impossible_event() -> None:
    with pytest.raises(ValueError):
        long_item_id(0)


@pytest.mark.parametrize(
    ("text", "stream"),
    [
        ("feed/3", Stream(feed="3")),
        ("feed/https://example.org/rss.xml", Stream(feed="https://example.org/rss.xml")),
        ("user/-/state/com.google/reading-list", Stream(state=State.READING_LIST)),
        ("user/-/state/com.google/starred", Stream(state=State.STARRED)),
        ("user/1234/state/com.google/read", Stream(state=State.READ)),
        ("user/-/label/world", Stream(label="world")),
        ("user/-/label/Monde et Europe", Stream(label="Monde et Europe")),
    ],
)
def test_stream_ids_are_read(text: str, stream: Stream) -> None:
    assert parse_stream_id(text) == stream


def test_a_stream_writes_its_id_with_the_current_user() -> None:
    assert parse_stream_id("user/1234/state/com.google/read").id == "user/-/state/com.google/read"
    assert parse_stream_id("user/-/label/x").id == "user/-/label/x"
    assert parse_stream_id("feed/3").id == "feed/3"


@pytest.mark.parametrize(
    "text",
    ["", "feed/", "user/-/state/com.google/nonsense", "user/-/broadcast", "splice/x",
     "user/-/label/", "feed/a\nb", "x" * 3000, "user/-/state/com.google/"],
)  # fmt: skip
def test_what_is_not_a_stream_id_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_stream_id(text)


def test_a_continuation_token_reads_back_only_with_its_key() -> None:
    position = Position("2026-11-22T08:00:00.000000+00:00", 42)
    token = issue_continuation(position, KEY)
    assert read_continuation(token, KEY) == position
    with pytest.raises(ValueError):
        read_continuation(token, b"other key" * 4)


@pytest.mark.parametrize(
    "token",
    ["", "10", "abc.def", "a" * 400, "WyIyMDI2IiwgNDJd.AAAAAAAAAAAAAAAAAAAAAA",
     "offset=20", "../../etc/passwd"],
)  # fmt: skip
def test_tokens_never_issued_are_refused(token: str) -> None:
    with pytest.raises(ValueError, match="not a continuation token"):
        read_continuation(token, KEY)


def test_a_tampered_token_is_refused() -> None:
    token = issue_continuation(Position("2026-11-22T08:00:00.000000+00:00", 42), KEY)
    body, signature = token.split(".")
    other = issue_continuation(Position("2026-11-22T08:00:00.000000+00:00", 43), KEY)
    with pytest.raises(ValueError):
        read_continuation(other.split(".")[0] + "." + signature, KEY)
    with pytest.raises(ValueError):
        read_continuation(body + "." + signature[::-1], KEY)
