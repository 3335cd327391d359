"""URL text helpers: credentials never leave in a stored, shown or exported address."""

from __future__ import annotations

import pytest

from aggregator.urls import site_of, without_userinfo


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


@pytest.mark.parametrize(
    ("url", "site"),
    [
        ("https://www.bfmtv.com/paris/article", "bfmtv.com"),
        ("https://rmc.bfmtv.com/sport/x", "bfmtv.com"),
        ("http://news.bbc.co.uk/2/hi/world.stm", "bbc.co.uk"),
        ("https://www.service-public.gouv.fr/x", "service-public.gouv.fr"),
        ("https://user:pw@Example.ORG.:8080/a", "example.org"),
        ("https://lemonde.fr", "lemonde.fr"),
        ("http://192.0.2.7/feed", "192.0.2.7"),
        ("http://[2001:db8::1]/feed", "[2001:db8::1]"),
        ("mailto:someone@example.org", None),
        ("not a url", None),
        (None, None),
    ],
)
def test_site_of_names_the_outlet_of_a_link(url: str | None, site: str | None) -> None:
    """Subdomains and sections of one site are one outlet; a country's registry label keeps
    its third label; no host, no site."""
    assert site_of(url) == site
