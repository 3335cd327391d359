"""The digest as Markdown (titles escaped so feed text cannot inject markup)."""

from __future__ import annotations

import re

from aggregator.digest import Digest
from aggregator.render.common import also_reported_by, one_line, when

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+!|~])")


def escape(text: str) -> str:
    return _MARKDOWN_SPECIAL.sub(r"\\\1", one_line(text))


def link(url: str) -> str:
    # Angle-bracket destinations allow spaces; '<' and '>' themselves are percent-encoded.
    return "<" + one_line(url).replace("<", "%3C").replace(">", "%3E") + ">"


def render_markdown(digest: Digest) -> str:
    lines = [
        f"# Digest since {when(digest.since)}",
        "",
        f"{len(digest.events)} of {digest.total} events, generated {when(digest.generated_at)}.",
        "",
    ]
    for event in digest.events:
        canonical = event.canonical
        title = escape(canonical.title) or "(no title)"
        heading = f"[{title}]({link(canonical.url)})" if canonical.url else title
        lines.append(f"## {heading}")
        lines.append("")
        lines.append(f"{escape(canonical.feed_name)} · {when(canonical.effective_time)}")
        others = also_reported_by(event)
        if others:
            lines.append("")
            lines.append(escape(others[0].upper() + others[1:]))
            for member in event.others:
                name = escape(member.feed_name)
                lines.append(f"- [{name}]({link(member.url)})" if member.url else f"- {name}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
