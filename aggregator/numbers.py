"""Whole numbers read from text nobody vouches for: headers, feed fields, form values (pure).

`str.isdigit()` and `int()` accept digits other than ASCII 0-9, and disagree on some
(`²` is a digit to one and not a number to the other); a publisher's `<ttl>` can be 10^20.
"""

from __future__ import annotations

# Longer is not a number anyone means, and `int()` of it is work for nothing.
MAX_NUMBER_CHARS = 64


def ascii_int(text: str, *, cap: int, max_chars: int = MAX_NUMBER_CHARS) -> int | None:
    """A non-negative integer written in ASCII digits only, at most `cap`; None for
    anything else (empty, a sign, spaces, other digits, longer than `max_chars`). Never
    raises."""
    if not text or len(text) > max_chars or not (text.isascii() and text.isdigit()):
        return None
    digits = text.lstrip("0") or "0"
    # Longer than the cap is above it: `int()` refuses more than 4,300 digits anyway.
    return cap if len(digits) > len(str(cap)) else min(int(digits), cap)
