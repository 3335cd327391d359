"""The digest as plain text for a terminal or an e-mail."""

from __future__ import annotations

from aggregator.digest import Digest
from aggregator.render.common import also_reported_by, one_line, when


def render_text(digest: Digest) -> str:
    lines = [
        f"Digest: {len(digest.events)} of {digest.total} events since {when(digest.since)}"
        f" (generated {when(digest.generated_at)})",
        "",
    ]
    if not digest.events:
        lines.append("Nothing new in this window.")
    for number, event in enumerate(digest.events, start=1):
        canonical = event.canonical
        lines.append(f"{number}. {one_line(canonical.title) or '(no title)'}")
        lines.append(f"   {one_line(canonical.feed_name)} · {when(canonical.effective_time)}")
        if canonical.url:
            lines.append(f"   {one_line(canonical.url)}")
        others = also_reported_by(event)
        if others:
            lines.append(f"   {others}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
