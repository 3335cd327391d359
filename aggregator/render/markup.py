"""Safe HTML by construction: a Markup string type, escaping, and the feed-HTML sanitiser.

Only three things produce `Markup`: templates written in this package (`html_format`),
`escape` (feed text, entity-escaped after invisible characters are removed), and
`sanitized` (feed HTML through nh3 with an allowlist of tags, attributes and URL schemes).
Every value given to a template that is not already Markup is escaped, so forgetting to
escape is not possible; marking feed text as Markup by hand is the one thing not to do.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from urllib.parse import urlsplit

import nh3

from aggregator.ingest.normalize import SAFE_ATTRIBUTES, SAFE_TAGS, clean_text
from aggregator.render.common import LINK_SCHEMES, one_line, safe_url, strip_invisible

# Links inside article content may also be e-mail addresses; everything else is refused
# (javascript:, data:, vbscript:, file:, and relative links whose base is unknown).
CONTENT_SCHEMES = frozenset({*LINK_SCHEMES, "mailto"})
# Every link to another site: no referrer (privacy), no access to this window.
LINK_REL = "noopener noreferrer nofollow"


class Markup(str):
    """A string of HTML that is safe to output as it is."""

    __slots__ = ()


def escape(value: object) -> Markup:
    """Text as HTML: invisible characters removed, white space folded, `<>&"'` escaped.
    Markup passes through unchanged."""
    if isinstance(value, Markup):
        return value
    return Markup(html.escape(one_line(str(value)), quote=True))


def html_format(template: str, **values: object) -> Markup:
    """Fill a trusted template; every value is escaped unless it is already Markup.

    Templates quote every attribute with double quotes, so an escaped value cannot end
    the attribute early.
    """
    return Markup(template.format_map({name: escape(value) for name, value in values.items()}))


def join(parts: Iterable[Markup], separator: str = "") -> Markup:
    """Concatenate markup; `separator` is a literal written here (white space, usually)."""
    return Markup(separator.join(escape(part) for part in parts))


def paragraphs(text: str) -> Markup:
    """Plain text as paragraphs (blank lines separate them), every part escaped."""
    blocks = [block for block in clean_text(strip_invisible(text)).split("\n\n") if block.strip()]
    return join(html_format("<p>{text}</p>", text=block) for block in blocks)


def href(url: str | None) -> Markup | None:
    """An escaped http(s) URL for an href attribute, or None when it is not one."""
    safe = safe_url(url)
    return escape(safe) if safe else None


def sanitized(fragment: str, *, images: bool = False) -> Markup:
    """Feed HTML made safe to show, whatever was stored: nh3 (ammonia) with the tag and
    attribute allowlist of `normalize`, links restricted to http, https and mailto, and
    images removed unless `images` (a remote image tells its server who reads what)."""
    if not fragment:
        return Markup("")
    tags = set(SAFE_TAGS) if images else set(SAFE_TAGS) - {"img"}
    attributes = {tag: set(names) for tag, names in SAFE_ATTRIBUTES.items() if tag in tags}

    def keep_attribute(element: str, attribute: str, value: str) -> str | None:
        if attribute in {"href", "src"}:
            scheme = urlsplit(clean_text(value, single_line=True)).scheme.lower()
            return value if scheme in CONTENT_SCHEMES else None
        return value

    cleaned: str = nh3.clean(
        strip_invisible(fragment),
        tags=tags,
        clean_content_tags={"script", "style"},
        attributes=attributes,
        url_schemes=set(CONTENT_SCHEMES),
        link_rel=LINK_REL,
        attribute_filter=keep_attribute,
    )
    return Markup(cleaned)
