"""URL text shared by the fetcher, OPML export and the database location (pure)."""

from __future__ import annotations

import re

# The scheme and `//`, then the userinfo: everything of the authority up to its last `@`.
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@")


def without_userinfo(url: str) -> str:
    """`url` as it may be stored, shown or exported: no `user:password@`. A regular
    expression rather than a URL parser, so that no malformed address can raise."""
    return _USERINFO.sub(r"\1", url, count=1)


# A database location with one of these is a PostgreSQL server; anything else a SQLite file.
DATABASE_URL_SCHEMES = ("postgresql://", "postgres://")


def is_database_url(location: object) -> bool:
    """Whether `location` (a `--db` value or `settings.database`) names a server."""
    return isinstance(location, str) and location.startswith(DATABASE_URL_SCHEMES)


# Second-level labels under which a country's sites register (bbc.co.uk, abc.net.au,
# service-public.gouv.fr): there the site is the last three labels, not two.
_REGISTRY_LABELS = frozenset(
    {"ac", "co", "com", "edu", "gob", "gouv", "gov", "govt", "ltd", "net", "nic", "nom",
     "or", "org", "plc", "sch"}
)  # fmt: skip
_HOST = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://(?:[^/?#]*@)?(\[[^\]/?#]*\]|[^:/?#]*)")


def site_of(url: str | None) -> str | None:
    """The site a link belongs to, as a reader names an outlet: `www.bfmtv.com/paris/...`
    and `rmc.bfmtv.com/...` are both `bfmtv.com`; `news.bbc.co.uk` is `bbc.co.uk`. A
    heuristic without the public-suffix list (no download, no dependency): a country's
    registry label (`co`, `gouv`, ...) keeps a third label. None without a host."""
    match = _HOST.match(url or "")
    if match is None:
        return None
    host = match.group(1).lower().rstrip(".")
    if not host or host.startswith("[") or host.replace(".", "").isdigit():
        return host or None  # an address is its own site
    labels = host.split(".")
    keep = 3 if len(labels) >= 3 and len(labels[-1]) == 2 and labels[-2] in _REGISTRY_LABELS else 2
    return ".".join(labels[-keep:])
