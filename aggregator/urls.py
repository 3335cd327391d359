"""URL text shared by the fetcher and OPML export (pure)."""

from __future__ import annotations

import re

# The scheme and `//`, then the userinfo: everything of the authority up to its last `@`.
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@")


def without_userinfo(url: str) -> str:
    """`url` as it may be stored, shown or exported: no `user:password@`. A regular
    expression rather than a URL parser, so that no malformed address can raise."""
    return _USERINFO.sub(r"\1", url, count=1)
