"""The stylesheet of the HTML pages: served as /style.css, inlined in a standalone file.

Plain CSS, no web fonts (no request leaves the page), system font stacks, a light and a
dark scheme chosen by the reader's system setting. Nothing here depends on JavaScript.
"""

from __future__ import annotations

import base64
import hashlib

STYLESHEET = """\
:root {
  color-scheme: light dark;
  --bg: #f7f5f0; --paper: #ffffff; --fg: #1f1d1a; --muted: #6a665f; --faint: #9a958c;
  --line: #e3ded4; --accent: #a3361f; --link: #1d4f91; --chip: #efebe3;
  --serif: Charter, "Bitstream Charter", "Sitka Text", Cambria, Georgia, "Liberation Serif",
    "DejaVu Serif", serif;
  --sans: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", "Liberation Sans",
    "DejaVu Sans", Arial, sans-serif;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #141311; --paper: #1c1b18; --fg: #ebe7df; --muted: #aaa49a; --faint: #7d776d;
    --line: #2f2c27; --accent: #f08c6e; --link: #8fb8f0; --chip: #2a2824;
  }
}
* { box-sizing: border-box; }
html { font-size: 16px; -webkit-text-size-adjust: 100%; }
body {
  margin: 0; background: var(--bg); color: var(--fg);
  font: 1rem/1.55 var(--sans);
}
a { color: var(--link); text-decoration-thickness: 1px; text-underline-offset: 2px; }
.site {
  background: var(--paper); border-bottom: 1px solid var(--line);
}
.site-inner, main, .site-foot {
  max-width: 50rem; margin: 0 auto; padding: 0 1.25rem;
}
.site-inner {
  display: flex; flex-wrap: wrap; align-items: center; gap: .75rem 1.5rem;
  padding-top: .85rem; padding-bottom: .85rem;
}
.brand {
  font: 700 1.2rem/1 var(--serif); color: var(--fg); text-decoration: none;
  letter-spacing: -.01em;
}
.brand span { color: var(--accent); }
.site nav { display: flex; gap: 1rem; font-size: .92rem; }
.site nav a { color: var(--muted); text-decoration: none; }
.site nav a:hover, .site nav a[aria-current] { color: var(--fg); }
.search { margin-left: auto; display: flex; gap: .4rem; }
.search input {
  font: inherit; font-size: .92rem; width: 14rem; max-width: 50vw;
  padding: .35rem .6rem; border: 1px solid var(--line); border-radius: .4rem;
  background: var(--bg); color: var(--fg);
}
.search button, .button {
  font: inherit; font-size: .92rem; padding: .35rem .8rem; border-radius: .4rem;
  border: 1px solid var(--line); background: var(--chip); color: var(--fg); cursor: pointer;
}
main { padding-top: 1.75rem; padding-bottom: 3rem; }
.wide .site-inner, .wide main, .wide .site-foot { max-width: 72rem; }
h1 {
  font: 700 2rem/1.15 var(--serif); letter-spacing: -.015em; margin: 0 0 .35rem;
}
.lede { color: var(--muted); margin: 0 0 1rem; font-size: .95rem; }
.filters {
  display: flex; flex-wrap: wrap; gap: .35rem 1.25rem; font-size: .88rem;
  color: var(--muted); margin: 0 0 1.5rem; padding-bottom: 1rem;
  border-bottom: 1px solid var(--line);
}
.filters a { color: var(--muted); text-decoration: none; padding: .05rem .45rem;
  border-radius: 1rem; }
.filters a:hover { color: var(--fg); }
.filters a[aria-current] { background: var(--fg); color: var(--bg); }
.group { margin: 0 0 2rem; }
.group > h2 {
  font: 600 .78rem/1 var(--sans); text-transform: uppercase; letter-spacing: .12em;
  color: var(--accent); margin: 0 0 .25rem;
}
.group > h2 .count { color: var(--faint); font-weight: 400; margin-left: .35rem; }
.events { list-style: none; margin: 0; padding: 0; }
.event {
  padding: 1.1rem 0 1.2rem; border-bottom: 1px solid var(--line);
  display: grid; grid-template-columns: 2.2rem 1fr; column-gap: .4rem;
}
.event:last-child { border-bottom: 0; }
.event .rank {
  font: 600 1.1rem/1.6 var(--serif); color: var(--faint); text-align: right;
  padding-right: .4rem;
}
.event h3 { font: 700 1.28rem/1.3 var(--serif); margin: 0 0 .3rem; letter-spacing: -.005em; }
.event h3 a, h1 a { color: var(--fg); text-decoration: none; }
.event h3 a:hover, h1 a:hover { text-decoration: underline; }
.meta { color: var(--muted); font-size: .86rem; margin: 0 0 .45rem; }
.meta .source { color: var(--fg); font-weight: 600; }
.meta .sep { color: var(--faint); margin: 0 .3rem; }
.meta a.details { color: var(--muted); }
.chip {
  display: inline-block; background: var(--chip); color: var(--fg); border-radius: 1rem;
  padding: 0 .55rem; font-size: .78rem; font-weight: 600; margin-left: .35rem;
}
.snippet { margin: 0 0 .55rem; font-size: .97rem; }
.also { font-size: .86rem; color: var(--muted); margin: 0 0 .35rem; }
.also ul { display: inline; list-style: none; margin: 0; padding: 0; }
.also li { display: inline; }
.also li + li::before { content: "·"; color: var(--faint); margin: 0 .4rem; }
.story { font-size: .86rem; color: var(--muted); margin: 0 0 .35rem; }
.story ul { display: inline; list-style: none; margin: 0; padding: 0; }
.story li { display: inline; }
.story li + li::before { content: "·"; color: var(--faint); margin: 0 .4rem; }
.why { font-size: .84rem; margin: 0; }
.marks { display: flex; flex-wrap: wrap; gap: .4rem; margin: .45rem 0 0; }
.marks button {
  font: inherit; font-size: .78rem; padding: .15rem .55rem; border-radius: .35rem;
  border: 1px solid var(--line); background: transparent; color: var(--muted); cursor: pointer;
}
.marks button:hover { color: var(--fg); background: var(--chip); }
.event.read h3 a { color: var(--muted); font-weight: 600; }
.star { color: #c58a00; }
.unread { color: var(--fg); }
.why a { color: var(--muted); }
details.why summary { cursor: pointer; color: var(--muted); }
.empty { color: var(--muted); font-style: italic; }
.content { font: 1.06rem/1.65 var(--serif); margin: 1.25rem 0 2rem; overflow-wrap: anywhere; }
.content img { max-width: 100%; height: auto; }
.content pre { overflow-x: auto; }
.content blockquote { margin-left: 0; padding-left: 1rem; border-left: 3px solid var(--line); }
h2.section {
  font: 700 1.25rem/1.3 var(--serif); margin: 2rem 0 .6rem;
}
.reason { background: var(--paper); border: 1px solid var(--line); border-radius: .5rem;
  padding: .7rem 1rem; font-size: .92rem; margin: 1rem 0; }
table { border-collapse: collapse; width: 100%; font-size: .86rem; }
.table-wrap { overflow-x: auto; background: var(--paper); border: 1px solid var(--line);
  border-radius: .5rem; }
th, td { text-align: left; vertical-align: top; padding: .5rem .65rem;
  border-bottom: 1px solid var(--line); }
tr:last-child td { border-bottom: 0; }
th { font-weight: 600; color: var(--muted); white-space: nowrap; background: var(--chip); }
td.num { color: var(--faint); white-space: nowrap; }
td .sub { color: var(--muted); font-size: .8rem; margin-top: .15rem; overflow-wrap: anywhere; }
table.members td:nth-child(2) { min-width: 16rem; }
td.nowrap { white-space: nowrap; }
.status-ok, .status-not_modified { color: #2f7d32; font-weight: 600; }
.status-error { color: var(--accent); font-weight: 600; }
.site-foot { color: var(--faint); font-size: .8rem; padding-bottom: 2rem; }
@media (max-width: 40rem) {
  .search { margin-left: 0; width: 100%; }
  .search input { flex: 1; width: auto; max-width: none; }
  .event { grid-template-columns: 1fr; }
  .event .rank { display: none; }
  h1 { font-size: 1.6rem; }
}
"""


def stylesheet_hash() -> str:
    """The CSP source of the stylesheet when it is inlined: `'sha256-<base64>'`."""
    digest = hashlib.sha256(STYLESHEET.encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode('ascii')}'"
