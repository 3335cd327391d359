"""Whole numbers from untrusted text: ASCII digits only, capped, never an exception."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aggregator.numbers import ascii_int


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0", 0), ("007", 7), ("99", 99), ("100", 100), ("101", 100), ("9" * 5000, 100),
     ("", None), ("-1", None), ("+1", None), (" 1", None), ("²", None), ("١", None),
     ("1e3", None), ("1.0", None)],
)  # fmt: skip
def test_ascii_digits_only_and_capped(text: str, expected: int | None) -> None:
    """Other digits (superscripts, Arabic-Indic), signs and spaces are not numbers; a
    number above the cap, however long, is the cap."""
    assert ascii_int(text, cap=100, max_chars=10_000) == expected


def test_longer_than_max_chars_is_not_read() -> None:
    assert ascii_int("1" * 65, cap=10) is None and ascii_int("1" * 64, cap=10) == 10


@given(st.text(), st.integers(min_value=0, max_value=2**63))
def test_never_raises_and_stays_in_range(text: str, cap: int) -> None:
    value = ascii_int(text, cap=cap, max_chars=10_000)
    assert value is None or 0 <= value <= cap
