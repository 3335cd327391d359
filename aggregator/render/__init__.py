"""Writers of the digest: text, Markdown, JSON (pure: Digest in, str out)."""

from __future__ import annotations

from collections.abc import Callable

from aggregator.digest import Digest
from aggregator.render.json import render_json
from aggregator.render.markdown import render_markdown
from aggregator.render.text import render_text

RENDERERS: dict[str, Callable[[Digest], str]] = {
    "text": render_text,
    "markdown": render_markdown,
    "json": render_json,
}
