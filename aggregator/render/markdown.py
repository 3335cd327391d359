"""The digest as Markdown (titles escaped so feed text cannot inject markup or links)."""

from __future__ import annotations

import re

from aggregator.digest import Digest
from aggregator.models import EventView
from aggregator.render.common import also_reported_by, one_line, safe_url, story_events, when

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+!|~&])")


def escape(text: str) -> str:
    return _MARKDOWN_SPECIAL.sub(r"\\\1", one_line(text))


def link(url: str) -> str:
    # Angle-bracket destinations allow spaces; '<' and '>' themselves are percent-encoded.
    return "<" + url.replace("<", "%3C").replace(">", "%3E") + ">"


def _linked(text: str, url: str | None) -> str:
    safe = safe_url(url)
    return f"[{text}]({link(safe)})" if safe else text


def _event(event: EventView, heading: str) -> list[str]:
    canonical = event.canonical
    lines = [f"{heading} {_linked(escape(canonical.title) or '(no title)', canonical.url)}", ""]
    lines.append(f"{escape(canonical.feed_name)} · {when(canonical.effective_time)}")
    others = also_reported_by(event)
    if others:
        lines.append("")
        lines.append(escape(others[0].upper() + others[1:]))
        for member in event.others:
            lines.append(f"- {_linked(escape(member.feed_name), member.url)}")
    story = story_events(event)
    if story:
        count = f"{len(story)} other event" + ("s" if len(story) > 1 else "")
        lines += ["", f"Same story: {count}"]
        for other in story:
            title = escape(other.title) or "(no title)"
            lines.append(f"- {_linked(title, other.url)} ({other.when:%Y-%m-%d})")
    lines.append("")
    return lines


def render_markdown(digest: Digest) -> str:
    lines = [
        f"# Digest {escape(digest.describe())}",
        "",
        f"{len(digest.events)} of {digest.total} events, generated {when(digest.generated_at)}.",
        "",
    ]
    grouped = len(digest.sections) > 1 or bool(digest.query.groups)
    for section in digest.sections:
        if grouped:
            lines += [f"## {escape(section.group) or '(no group)'}", ""]
        for event in section.events:
            lines += _event(event, "###" if grouped else "##")
    return "\n".join(lines).rstrip() + "\n"
