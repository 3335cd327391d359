"""The digest as text: for a terminal (colours, wrapped to its width) or plain when piped.

The caller decides the style (`color`, `width`): this module never looks at the terminal.
Colours are ours only; feed text reaches the terminal through `one_line`, which removes
escape sequences, controls and bidi overrides, so a title cannot move the cursor, set
the window title or reorder what the reader sees.
"""

from __future__ import annotations

import textwrap

from aggregator.digest import Digest
from aggregator.models import EventView
from aggregator.render.common import also_reported_by, one_line, safe_url, same_story, when

# Narrower than this and wrapping does more harm than good (a phone-sized pane).
MIN_WIDTH = 40

# SGR codes: bold, dim, cyan, yellow, bold underline. Reset after every span, so a cut
# line never leaves the terminal coloured.
_BOLD, _DIM, _LINK, _ALSO, _HEADING = "1", "2", "36", "33", "1;4"


def _paint(text: str, code: str, color: bool) -> str:
    return f"\x1b[{code}m{text}\x1b[0m" if color and text else text


def _wrap(text: str, width: int | None, *, first: str, rest: str) -> list[str]:
    """`text` after `first`, continued after `rest`; one line when there is no width."""
    if width is None:
        return [first + text]
    return textwrap.wrap(
        text,
        width=max(width, MIN_WIDTH),
        initial_indent=first,
        subsequent_indent=rest,
        break_long_words=False,
        break_on_hyphens=False,
    ) or [first]


def _event_lines(label: str, event: EventView, *, color: bool, width: int | None) -> list[str]:
    """One event: numbered title, source and time, link, other sources."""
    indent = " " * len(label)
    canonical = event.canonical
    title = one_line(canonical.title) or "(no title)"
    lines = [
        line[: len(indent)] + _paint(line[len(indent) :], _BOLD, color)
        for line in _wrap(title, width, first=label, rest=indent)
    ]
    # The event's id, for `aggregator mark read ID`; its state when it has one.
    state = "".join((" · starred" if event.starred else "", " · read" if event.read else ""))
    meta = (
        f"{one_line(canonical.feed_name)} · {when(canonical.effective_time)} · #{event.id}{state}"
    )
    lines += [
        indent + _paint(line[len(indent) :], _DIM, color)
        for line in _wrap(meta, width, first=indent, rest=indent)
    ]
    link = safe_url(canonical.url)
    if link:
        # Never wrapped: a broken URL cannot be clicked or copied.
        lines.append(indent + _paint(link, _LINK, color))
    for extra in (also_reported_by(event), same_story(event)):
        if extra:
            lines += [
                indent + _paint(line[len(indent) :], _ALSO, color)
                for line in _wrap(extra, width, first=indent, rest=indent + "  ")
            ]
    return lines


def render_text(digest: Digest, *, color: bool = False, width: int | None = None) -> str:
    """The digest as text. `color`: ANSI colours; `width`: wrap to that many columns
    (None: one line per field, for pipes and files)."""
    header = (
        f"Digest: {len(digest.events)} of {digest.total} events {digest.describe()}"
        f" (generated {when(digest.generated_at)})"
    )
    lines = _wrap(header, width, first="", rest="")
    lines.append("")
    if not digest.events:
        lines.append("Nothing new in this window.")
    # Numbers right-aligned, text aligned under the widest label ("9. " or " 9. ").
    label_width = len(f"{len(digest.events)}. ")
    number = 0
    for section in digest.sections:
        if len(digest.sections) > 1 or digest.query.groups:
            heading = one_line(section.group) or "(no group)"
            lines.append(_paint(f"{heading} ({len(section.events)})", _HEADING, color))
            lines.append("")
        for event in section.events:
            number += 1
            label = f"{number}. ".rjust(label_width)
            lines += _event_lines(label, event, color=color, width=width)
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"
