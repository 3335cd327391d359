"""Writers of the digest (pure: data in, str or bytes out).

`digest --format` chooses among text, Markdown, JSON and one self-contained HTML file;
the web server also uses the HTML pages (html.py) and the feed documents of feeds.py
(Atom in atom.py, JSON Feed in jsonfeed_writer.py). Feed text is hostile everywhere:
see common.py and markup.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aggregator.digest import Digest
from aggregator.render.html import render_html
from aggregator.render.json import render_json
from aggregator.render.markdown import render_markdown
from aggregator.render.text import render_text


@dataclass(frozen=True, slots=True)
class DigestFormat:
    """One `digest --format` choice; `color` and `width` matter to the terminal only."""

    write: Callable[[Digest, bool, int | None], str]


DIGEST_FORMATS: dict[str, DigestFormat] = {
    "text": DigestFormat(
        lambda digest, color, width: render_text(digest, color=color, width=width)
    ),
    "markdown": DigestFormat(lambda digest, _color, _width: render_markdown(digest)),
    "json": DigestFormat(lambda digest, _color, _width: render_json(digest)),
    "html": DigestFormat(lambda digest, _color, _width: render_html(digest)),
}
FORMATS = tuple(DIGEST_FORMATS)


def render_digest(
    digest: Digest, fmt: str, *, color: bool = False, width: int | None = None
) -> str:
    """The digest in format `fmt` (one of FORMATS). `color` and `width` apply to text."""
    chosen = DIGEST_FORMATS.get(fmt)
    if chosen is None:
        raise ValueError(f"unknown format {fmt!r} (expected one of {', '.join(FORMATS)})")
    return chosen.write(digest, color, width)
