"""URL text helpers: credentials never leave in a stored, shown or exported address."""

from __future__ import annotations

import pytest

from aggregator.urls import without_userinfo


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://user:secret@example.org/feed", "https://example.org/feed"),
        ("https://a@b@example.org:8443/x?y=1@2", "https://example.org:8443/x?y=1@2"),
        ("https://example.org/feed?mail=a@b.org", "https://example.org/feed?mail=a@b.org"),
        ("https://example.org/a@b", "https://example.org/a@b"),
        ("http://user@[::1/broken", "http://[::1/broken"),
        ("no scheme user@host", "no scheme user@host"),
    ],
)
def test_without_userinfo_removes_only_the_credentials(url: str, expected: str) -> None:
    """The authority's `user:password@` goes; an `@` in the path or query stays, and a
    malformed address is cleaned, not refused."""
    assert without_userinfo(url) == expected
