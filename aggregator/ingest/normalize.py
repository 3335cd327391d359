"""Turn untrusted feed strings into clean values: text, sanitised HTML, UTC dates, URLs.

Everything here is pure. Feed text is hostile: markup is stripped from text fields,
entities decoded, control and bidi-override characters removed (they can reorder what a
reader sees), white space folded. HTML kept for display goes through nh3 (ammonia) with an
allowlist of tags and URL schemes, because feedparser's own sanitiser is bypassable.

Whatever a parser returns, an entry keeps bounded text (`MAX_TITLE_CHARS`,
`MAX_BODY_CHARS`, `MAX_FIELD_CHARS`: cut, never refused), no lone surrogate (U+FFFD
instead: they cannot be encoded for storage) and only dates from `EARLIEST_DATE` to
`LATEST_DATE` (others are dropped: a year-1 date overflows the arithmetic on it).
"""

from __future__ import annotations

import calendar
import hashlib
import re
import time
import unicodedata
from datetime import UTC, datetime
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import nh3

from aggregator.dedup.text import distinctive_content
from aggregator.models import Entry, RawEntry

# Characters removed from every text field: C0/C1 controls (tab and newline are folded
# separately), bidi embeddings/overrides/isolates and marks, zero-width characters and
# the BOM. Bidi overrides can make "exe.txt" display as "txt.exe" (CVE-2021-42574 class).
_INVISIBLE = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
    "\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\ufff9-\ufffb]"
)
_SPACES = re.compile(r"[^\S\n]+")  # any white space except newline
# Half of a UTF-16 pair on its own (JSON's "\udfff", a lenient decoder): not a character.
_SURROGATES = re.compile("[\ud800-\udfff]")
# Text kept per entry, whatever the parser returned. The longest titles of the shared
# corpora are under 500 characters and their longest articles under 100,000; an entity
# expansion or a padded document goes far past both, and is cut here.
MAX_TITLE_CHARS = 2_000
MAX_BODY_CHARS = 512 * 1024  # the content (or summary) HTML, before sanitising
MAX_FIELD_CHARS = 8_192  # a GUID, a link, an author
# Entry dates outside this range are dropped (the range of any real news item, with room
# for arithmetic: a year-1 or year-9999 date overflows a window computed from it).
EARLIEST_DATE = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_DATE = datetime(2200, 1, 1, tzinfo=UTC)
_BLANK_LINES = re.compile(r"\n\s*\n+")
# A decimal character reference of 8 digits or more. `html.unescape` (HTMLParser's
# `convert_charrefs`) calls int() on its digits, which raises ValueError past 4,300 of them
# (leading zeros count); past 7 significant digits it is beyond U+10FFFF, which unescape
# makes U+FFFD anyway.
_LONG_DECIMAL_REF = re.compile(r"&#([0-9]{8,})(;?)")
# A `<![` that HTMLParser's marked-section code raises AssertionError on (the CPython 3.11
# we run on): not followed by one of the keywords it knows. Such a one is text.
_BAD_MARKED_SECTION = re.compile(
    r"<!\[(?!(?:temp|cdata|ignore|include|rcdata|if|else|endif)(?![-_.a-zA-Z0-9]))",
    re.IGNORECASE,
)

# Elements whose content is never text a reader should see.
_SKIPPED_ELEMENTS = frozenset({"script", "style", "template", "noscript", "head", "title"})
# Elements that end a line of text.
_BLOCK_ELEMENTS = frozenset(
    {
        "p", "div", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "tr",
        "table", "blockquote", "pre", "section", "article", "header", "footer", "figure",
        "figcaption", "hr", "dd", "dt", "dl",
    }
)  # fmt: skip

# Tags and attributes kept in displayed HTML. No style, no forms, no frames, no scripts.
SAFE_TAGS = frozenset(
    {
        "a", "abbr", "b", "blockquote", "br", "cite", "code", "dd", "del", "dl", "dt", "em",
        "figcaption", "figure", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins",
        "kbd", "li", "mark", "ol", "p", "pre", "q", "s", "small", "strong", "sub", "sup",
        "table", "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul",
    }
)  # fmt: skip
SAFE_ATTRIBUTES: dict[str, set[str]] = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "abbr": {"title"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan"},
}
SAFE_URL_SCHEMES = frozenset({"http", "https", "mailto"})

# Query parameters that only track the reader; removing them makes one article one URL.
_TRACKING_PARAMS = frozenset(
    {
        "fbclid", "gclid", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "twclid",
        "igshid", "mc_cid", "mc_eid", "_ga", "_gl", "_hsenc", "_hsmi", "mkt_tok", "oly_anon_id",
        "oly_enc_id", "vero_id", "wickedid", "rb_clickid", "s_cid", "ncid", "cmpid", "xtor",
        "at_medium", "at_campaign", "at_custom1", "at_custom2", "at_custom3", "at_custom4",
        "ito", "icid", "spm", "__twitter_impression", "ref_src", "ref_url",
    }
)  # fmt: skip
_TRACKING_PREFIXES = ("utm_", "pk_", "mtm_", "hsa_", "at_")
_DEFAULT_PORTS = {"http": 80, "https": 443}


class _TextExtractor(HTMLParser):
    """Collects the visible text of an HTML fragment, one line per block element."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED_ELEMENTS:
            self._skip_depth += 1
        elif tag in _BLOCK_ELEMENTS:
            self.parts.append("\n")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCK_ELEMENTS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED_ELEMENTS:
            self._skip_depth = max(0, self._skip_depth - 1)
        elif tag in _BLOCK_ELEMENTS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip_depth:
            self.parts.append(data)


def valid_text(text: str, limit: int | None = None) -> str:
    """`text` without lone surrogates (each becomes U+FFFD), cut to `limit` characters."""
    if limit is not None and len(text) > limit:
        text = text[:limit]
    return _SURROGATES.sub("\ufffd", text)


def sane_date(value: datetime | None) -> datetime | None:
    """`value` in UTC when it lies from `EARLIEST_DATE` to `LATEST_DATE`, else None."""
    if value is None:
        return None
    try:
        utc = value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)
    except (OverflowError, ValueError):
        return None
    return utc if EARLIEST_DATE <= utc < LATEST_DATE else None


def clean_text(text: str, *, single_line: bool = False) -> str:
    """NFC-normalise, drop invisible characters, fold white space.

    Paragraph breaks survive as one blank line unless `single_line` is set.
    """
    text = unicodedata.normalize("NFC", valid_text(text))
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _INVISIBLE.sub("", text)
    if single_line:
        return " ".join(text.split())
    lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    text = "\n".join(lines)
    return _BLANK_LINES.sub("\n\n", text).strip()


def html_to_text(html: str, *, single_line: bool = False) -> str:
    """The visible text of an HTML fragment: tags dropped, entities decoded, cleaned.

    Plain text (no markup) passes through with entities decoded, which is what RSS
    titles need: feedparser hands them back with markup and entities as written.
    """
    if "<" not in html and "&" not in html:
        return clean_text(html, single_line=single_line)
    extractor = _TextExtractor()
    extractor.feed(_parsable(html))
    extractor.close()
    return clean_text("".join(extractor.parts), single_line=single_line)


def _parsable(html: str) -> str:
    """`html` without the two things that make HTMLParser raise instead of reading on."""
    html = _BAD_MARKED_SECTION.sub("&lt;![", html) if "<![" in html else html
    return _LONG_DECIMAL_REF.sub(_shortened_reference, html) if "&#" in html else html


def _shortened_reference(match: re.Match[str]) -> str:
    """A long decimal reference as unescape would read it, without its int() limit."""
    digits = match.group(1).lstrip("0")
    if len(digits) > 7:
        return "\ufffd"
    return f"&#{digits or '0'}{match.group(2)}"


def sanitize_html(html: str, *, base_url: str | None = None) -> str:
    """HTML safe to display: allowlisted tags, attributes and URL schemes only.

    Relative links are resolved against `base_url` first so the scheme check sees them.
    """
    if not html:
        return ""
    base_url = valid_text(base_url) if base_url else None  # nh3 takes valid text back only

    def keep_attribute(element: str, attribute: str, value: str) -> str | None:
        if attribute in {"href", "src"}:
            try:
                absolute = urljoin(base_url, value) if base_url else value
                scheme = urlsplit(absolute).scheme.lower()
            except ValueError:  # "http://[": no usable URL, the attribute goes
                return None
            return absolute if scheme in SAFE_URL_SCHEMES else None
        return value

    cleaned: str = nh3.clean(
        _INVISIBLE.sub("", valid_text(html)),
        tags=set(SAFE_TAGS),
        attributes=SAFE_ATTRIBUTES,
        url_schemes=set(SAFE_URL_SCHEMES),
        link_rel="noopener noreferrer nofollow",
        attribute_filter=keep_attribute,
    )
    return cleaned


def struct_time_to_utc(value: time.struct_time | None) -> datetime | None:
    """feedparser's `*_parsed` values are UTC struct_times; None when absent or outside
    `EARLIEST_DATE` to `LATEST_DATE`."""
    if value is None:
        return None
    try:
        return sane_date(datetime.fromtimestamp(calendar.timegm(value), tz=UTC))
    except (OverflowError, ValueError, OSError, TypeError):
        return None


def canonical_url(url: str | None, *, base: str | None = None) -> str | None:
    """One spelling per article URL, or None when there is no usable http(s) URL.

    Resolves relative links, lower-cases scheme and host, drops default ports, the
    fragment and tracking parameters (utm_*, fbclid, gclid...), keeps other parameters
    in their order (order can matter to the server).
    """
    if not url:
        return None
    url = clean_text(url, single_line=True)
    try:
        if base:
            url = urljoin(base, url)
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    host = parts.hostname.lower().rstrip(".")
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    query = [
        (key, value)
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
        if key.lower() not in _TRACKING_PARAMS and not key.lower().startswith(_TRACKING_PREFIXES)
    ]
    path = parts.path or "/"
    return urlunsplit((scheme, netloc, path, urlencode(query, doseq=True), ""))


def display_url(url: str, *, base: str | None = None) -> str:
    """The link as the publisher wrote it, made absolute and cleaned of invisible characters."""
    url = clean_text(url, single_line=True)
    try:
        return urljoin(base, url) if base else url
    except ValueError:  # an unparsable base (or link): the link as written
        return url


def content_key(title: str, text: str) -> str:
    """Same key for the same title and text, whatever the case, accents or spacing."""
    folded = " ".join(f"{title}\n{text}".casefold().split())
    return hashlib.blake2b(folded.encode("utf-8"), digest_size=16).hexdigest()


def entry_identity(
    *, guid: str | None, url: str | None, title: str, published: datetime | None
) -> str:
    """Stable identity within a feed: GUID, else canonical URL, else hash of title and date."""
    if guid:
        return f"guid:{guid}"
    if url:
        return f"url:{url}"
    stamp = published.isoformat() if published else ""
    digest = hashlib.blake2b(f"{title}\n{stamp}".encode(), digest_size=16).hexdigest()
    return f"hash:{digest}"


def normalize_entry(raw: RawEntry, *, feed_link: str | None = None) -> Entry:
    """A RawEntry from the parser, cleaned, bounded and keyed for dedup and storage."""
    title = html_to_text(valid_text(raw.title, MAX_TITLE_CHARS), single_line=True)
    body_html = valid_text(raw.content_html or raw.summary_html, MAX_BODY_CHARS)
    text = html_to_text(body_html)
    link = valid_text(raw.link, MAX_FIELD_CHARS) if raw.link else None
    feed_link = valid_text(feed_link, MAX_FIELD_CHARS) if feed_link else None
    canonical = canonical_url(link, base=feed_link)
    url = display_url(link, base=feed_link) if canonical and link else None
    guid = clean_text(valid_text(raw.guid, MAX_FIELD_CHARS), single_line=True) if raw.guid else None
    author = valid_text(raw.author, MAX_FIELD_CHARS) if raw.author else None
    updated = sane_date(raw.updated)
    published = sane_date(raw.published) or updated
    return Entry(
        identity=entry_identity(guid=guid, url=canonical, title=title, published=published),
        guid=guid,
        url=url,
        canonical_url=canonical,
        title=title,
        text=text,
        html=sanitize_html(body_html, base_url=url or feed_link),
        author=(html_to_text(author, single_line=True) or None) if author else None,
        published=published,
        updated=updated,
        content_key=content_key(title, text),
        distinctive=distinctive_content(title, text),
    )
