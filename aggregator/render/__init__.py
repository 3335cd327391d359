"""Writers of the digest (pure: data in, str or bytes out).

`digest --format` chooses among text, Markdown, JSON and one self-contained HTML file;
the web server also uses the HTML pages (html.py), Atom (atom.py) and JSON Feed
(jsonfeed.py). Feed text is hostile everywhere: see common.py and markup.py.
"""

from __future__ import annotations

from aggregator.digest import Digest
from aggregator.render.html import render_html
from aggregator.render.json import render_json
from aggregator.render.markdown import render_markdown
from aggregator.render.text import render_text

FORMATS = ("text", "markdown", "json", "html")


def render_digest(
    digest: Digest, fmt: str, *, color: bool = False, width: int | None = None
) -> str:
    """The digest in format `fmt` (one of FORMATS). `color` and `width` apply to text."""
    if fmt == "text":
        return render_text(digest, color=color, width=width)
    if fmt == "markdown":
        return render_markdown(digest)
    if fmt == "json":
        return render_json(digest)
    if fmt == "html":
        return render_html(digest)
    raise ValueError(f"unknown format {fmt!r} (expected one of {', '.join(FORMATS)})")
