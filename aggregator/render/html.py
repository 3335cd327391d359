"""HTML pages of the digest (pure: data in, str out): the digest, one event, the feeds.

Two deliveries of the same markup:

- served (`aggregator serve`): the stylesheet is /style.css, pages link to each other
  (event pages, feeds page, search form) and the server sends the Content-Security-Policy;
- standalone (`aggregator digest --format html`): one self-contained file, the stylesheet
  inlined and allowed by its hash in a CSP `<meta>`, the explanation of each event in a
  `<details>` element instead of a link to a page that does not exist.

No page needs JavaScript, and none may run any: every value from a feed goes through
`markup.escape`, `markup.href` or `markup.sanitized` (see markup.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlencode

from aggregator import __version__
from aggregator.digest import Digest
from aggregator.models import EventView, FeedState, StoredEntry
from aggregator.render.common import (
    FeedInfo,
    FeedLink,
    copies_by_feed,
    how_joined,
    one_line,
    snippet,
    sources_label,
    story_events,
    when,
    with_count,
)
from aggregator.render.markup import (
    LINK_REL,
    Markup,
    escape,
    href,
    html_format,
    join,
    paragraphs,
    sanitized,
)
from aggregator.render.style import STYLESHEET, stylesheet_hash

# Windows offered as links above the digest (any duration works in the address).
WINDOW_CHOICES = ("12h", "24h", "3d", "7d", "all")
# Which events the served page shows by their state (`?show=`); the first is the default.
SHOW_CHOICES = ("unread", "all", "starred")
MARK_PATH = "/mark"
STYLESHEET_PATH = "/style.css"


@dataclass(frozen=True, slots=True)
class Site:
    """How the pages are delivered: served with routes, or one standalone file."""

    standalone: bool = False
    images: bool = False  # show images inside article content (they load from their hosts)
    feeds: tuple[FeedLink, ...] = ()  # the feed documents served beside the pages
    # The served pages' anti-forgery token; with it, events get mark buttons (POST forms).
    csrf_token: str | None = None


@dataclass(frozen=True, slots=True)
class Filters:
    """The digest request as typed, so that links can repeat or change one part of it."""

    since: str | None = None
    date: str | None = None
    groups: tuple[str, ...] = ()
    search: str | None = None
    limit: int | None = None
    show: str | None = None  # a SHOW_CHOICES key; None: the served page's default, unread

    def url(self, **changes: object) -> str:
        """The digest address with these filters, some of them changed."""
        values: dict[str, object] = {
            "since": self.since, "date": self.date, "group": list(self.groups),
            "q": self.search, "limit": self.limit, "show": self.show,
        }  # fmt: skip
        values.update(changes)
        params = [
            (name, str(item))
            for name, value in values.items()
            for item in (value if isinstance(value, list | tuple) else [value])
            if item not in (None, "")
        ]
        return "/" + (f"?{urlencode(params)}" if params else "")


def content_security_policy(*, images: bool = False, standalone: bool = False) -> str:
    """The policy of every page: nothing may load or run but our stylesheet (and images
    inside articles when enabled). Inline scripts, event handlers, plugins, frames, base
    URLs and form targets elsewhere are all refused by the browser, a second wall behind
    the sanitiser."""
    style = stylesheet_hash() if standalone else "'self'"
    directives = [
        "default-src 'none'",
        f"style-src {style}",
        "img-src data: https:" if images else "img-src data:",
        "form-action 'none'" if standalone else "form-action 'self'",
        "base-uri 'none'",
    ]
    if not standalone:
        directives.append("frame-ancestors 'none'")  # ignored (and warned about) in <meta>
    return "; ".join(directives)


# -- the page frame ----------------------------------------------------------------------


def _page(
    site: Site, *, title: str, body: Markup, current: str = "", search: str = "",
    wide: bool = False,
) -> str:  # fmt: skip
    head = [
        html_format('<meta charset="utf-8">'),
        html_format('<meta name="viewport" content="width=device-width, initial-scale=1">'),
        html_format('<meta name="referrer" content="no-referrer">'),
    ]
    if site.standalone:
        policy = content_security_policy(images=site.images, standalone=True)
        head.insert(
            1, html_format('<meta http-equiv="Content-Security-Policy" content="{p}">', p=policy)
        )
        head.append(Markup(f"<style>{STYLESHEET}</style>"))
    else:
        head.append(html_format('<link rel="stylesheet" href="{path}">', path=STYLESHEET_PATH))
        for feed in site.feeds:
            head.append(
                html_format(
                    '<link rel="alternate" type="{type}" title="Digest ({label})" href="{route}">',
                    type=feed.media_type,
                    label=feed.label,
                    route=feed.route,
                )
            )
    # An empty icon: otherwise browsers ask for /favicon.ico on every page.
    head.append(html_format('<link rel="icon" href="data:,">'))
    head.append(html_format("<title>{title} · aggregator</title>", title=title))
    return "<!doctype html>\n" + html_format(
        '<html lang="en">\n<head>\n{head}\n</head>\n<body{wide}>\n{header}\n'
        "<main>\n{body}\n</main>\n{footer}\n</body>\n</html>\n",
        head=join(head, "\n"),
        header=_header(site, current, search),
        body=body,
        wide=Markup(' class="wide"') if wide else Markup(""),
        footer=_footer(site),
    )


def _header(site: Site, current: str, search: str) -> Markup:
    brand = Markup('<span class="brand">aggre<span>gator</span></span>')
    if site.standalone:
        return html_format(
            '<header class="site"><div class="site-inner">{b}</div></header>', b=brand
        )
    links = [("/", "Digest", "digest"), ("/feeds", "Feeds", "feeds")]
    nav = join(
        html_format(
            '<a href="{url}"{cur}>{label}</a>',
            url=url,
            label=label,
            cur=Markup(' aria-current="page"') if name == current else Markup(""),
        )
        for url, label, name in links
    )
    form = html_format(
        '<form class="search" action="/search" method="get" role="search">'
        '<input type="search" name="q" value="{q}" placeholder="Search every item"'
        ' aria-label="Search every item">'
        '<button type="submit">Search</button></form>',
        q=search,
    )
    return html_format(
        '<header class="site"><div class="site-inner">'
        '<a class="brand" href="/">aggre<span>gator</span></a>'
        "<nav>{nav}</nav>{form}</div></header>",
        nav=nav,
        form=form,
    )


def _footer(site: Site) -> Markup:
    subscribe = [
        html_format('<a href="{route}">{label}</a>', route=feed.route, label=feed.label)
        for feed in site.feeds
    ]
    feeds = (
        Markup("")
        if site.standalone
        else html_format(
            ' · Subscribe: {links} · <a href="/api/events">API</a>', links=join(subscribe, " · ")
        )
    )
    return html_format(
        '<footer class="site-foot">aggregator {version}{feeds}</footer>',
        version=__version__,
        feeds=feeds,
    )


def _time(value: datetime) -> Markup:
    return html_format(
        '<time datetime="{iso}">{text}</time>', iso=value.isoformat(), text=when(value)
    )


def _link(text: str, url: str | None, **attributes: str) -> Markup:
    """`text` linked to `url` when it is http(s), else the text alone."""
    target = href(url)
    if target is None:
        return escape(text)
    extra = join(html_format(' {n}="{v}"', n=name, v=value) for name, value in attributes.items())
    return html_format(
        '<a href="{url}" rel="{rel}"{extra}>{text}</a>',
        url=target,
        rel=LINK_REL,
        extra=extra,
        text=text,
    )


# -- the digest ----------------------------------------------------------------------------


def _count_chip(event: EventView) -> Markup:
    label = sources_label(event)
    if label is None:
        return Markup("")
    return html_format('<span class="chip">{label}</span>', label=label)


def _also(event: EventView) -> Markup:
    if not event.others:
        return Markup("")
    items = join(
        html_format(
            "<li>{link}</li>",
            link=_link(
                with_count(one_line(member.feed_name) or "(unnamed feed)", count),
                member.url,
                title=member.title,
            ),
        )
        for member, count in copies_by_feed(event.others)
    )
    return html_format('<div class="also">Also reported by <ul>{items}</ul></div>', items=items)


def _event_path(event_id: int) -> str:
    return f"/event/{event_id}"


def _story_list(event: EventView, event_url: Callable[[int], str]) -> Markup:
    """'Same story: N other events', each linked to its event page, newest first."""
    others = story_events(event)
    if not others:
        return Markup("")
    items = join(
        html_format(
            '<li><a href="{url}">{title}</a> · {time}</li>',
            url=event_url(other.id),  # ours: the page's route or the server's base URL
            title=one_line(other.title) or "(no title)",
            time=_time(other.when),
        )
        for other in others
    )
    count = f"{len(others)} other event" + ("s" if len(others) > 1 else "")
    return html_format(
        '<div class="story">Same story: {count} <ul>{items}</ul></div>', count=count, items=items
    )


def _hidden(name: str, value: object) -> Markup:
    return html_format('<input type="hidden" name="{n}" value="{v}">', n=name, v=value)


def _mark_buttons(site: Site, event: EventView, back: str, *, bulk: bool = True) -> Markup:
    """Read/unread and star/unstar for one event, and "read up to here" (the bulk form at
    the end of the page): plain POST forms, so they work with no script at all."""
    if site.csrf_token is None:
        return Markup("")
    read = ("unread", "Mark unread") if event.read else ("read", "Mark read")
    star = ("unstar", "Unstar") if event.starred else ("star", "Star")
    return html_format(
        '<form class="marks" method="post" action="{path}">{csrf}{event}{back}'
        '<button type="submit" name="action" value="{read}">{read_label}</button>'
        '<button type="submit" name="action" value="{star}">{star_label}</button>'
        "{upto}</form>",
        path=MARK_PATH, csrf=_hidden("csrf", site.csrf_token), event=_hidden("event", event.id),
        back=_hidden("back", back), read=read[0], read_label=read[1], star=star[0],
        star_label=star[1],
        upto=html_format(
            '<button type="submit" form="bulk" name="upto" value="{id}"'
            ' title="Mark this event and every event above it read">Read up to here</button>',
            id=event.id,
        ) if bulk else "",
    )  # fmt: skip


def _bulk_form(site: Site, events: Sequence[EventView], back: str) -> Markup:
    """The form every "Read up to here" button submits: the shown events in page order."""
    if site.csrf_token is None or not events:
        return Markup("")
    return html_format(
        '<form id="bulk" method="post" action="{path}">{csrf}{action}{back}{events}</form>',
        path=MARK_PATH, csrf=_hidden("csrf", site.csrf_token), action=_hidden("action", "read"),
        back=_hidden("back", back), events=join(_hidden("event", e.id) for e in events),
    )  # fmt: skip


def _event_item(site: Site, number: int, event: EventView, back: str = "/") -> Markup:
    canonical = event.canonical
    title = one_line(canonical.title) or "(no title)"
    if site.standalone:
        why = (
            html_format(
                '<details class="why"><summary>Why these are grouped</summary>'
                "{explanation}</details>",
                explanation=_explanation(event),
            )
            if event.others
            else Markup("")
        )
    elif event.others:
        why = html_format(
            '<p class="why"><a href="/event/{id}">Why these are grouped</a></p>', id=event.id
        )
    else:
        why = Markup("")
    # A single item has nothing to explain: its page is one quiet link in the meta line.
    details = (
        html_format(
            '<span class="sep">·</span><a class="details" href="/event/{id}">details</a>',
            id=event.id,
        )
        if not site.standalone and not event.others
        else Markup("")
    )
    text = snippet(canonical.text)
    state = " ".join(name for name, on in (("read", event.read), ("starred", event.starred)) if on)
    return html_format(
        '<li class="{classes}" id="event-{id}"><span class="rank">{n}</span><article>'
        "<h3>{star}{title}</h3>"
        '<p class="meta"><span class="source">{source}</span><span class="sep">·</span>'
        "{time}{chip}{details}</p>{snippet}{also}{story}{why}{marks}</article></li>",
        classes=f"event {state}".strip(),
        star=Markup('<span class="star" title="starred">★</span> ') if event.starred else "",
        marks=_mark_buttons(site, event, back),
        id=event.id,
        details=details,
        n=number,
        title=_link(title, canonical.url),
        source=one_line(canonical.feed_name),
        time=_time(canonical.effective_time),
        chip=_count_chip(event),
        snippet=html_format('<p class="snippet">{t}</p>', t=text) if text else Markup(""),
        also=_also(event),
        # One standalone file has no event pages: its links go to the event on the page.
        story=_story_list(
            event, (lambda other: f"#event-{other}") if site.standalone else _event_path
        ),
        why=why,
    )


def _filters(digest: Digest, filters: Filters) -> Markup:
    # The window in force when none was typed: 24 h, or everything for a search.
    default = "" if filters.date else "all" if filters.search else "24h"
    current_window = filters.since or default
    windows = join(
        html_format(
            '<a href="{url}"{cur}>{label}</a>',
            url=filters.url(since=choice, date=None),
            label=choice,
            cur=Markup(' aria-current="true"') if choice == current_window else Markup(""),
        )
        for choice in WINDOW_CHOICES
    )
    group_links = [
        html_format(
            '<a href="{url}"{cur}>all</a>',
            url=filters.url(group=[]),
            cur=Markup(' aria-current="true"') if not filters.groups else Markup(""),
        )
    ]
    group_links += [
        html_format(
            '<a href="{url}"{cur}>{name}</a>',
            url=filters.url(group=[name]),
            name=name,
            cur=Markup(' aria-current="true"') if filters.groups == (name,) else Markup(""),
        )
        for name in digest.groups
    ]
    shows = join(
        html_format(
            '<a href="{url}"{cur}>{label}</a>',
            url=filters.url(show=None if choice == SHOW_CHOICES[0] else choice),
            label=choice,
            cur=Markup(' aria-current="true"')
            if choice == (filters.show or SHOW_CHOICES[0])
            else Markup(""),
        )
        for choice in SHOW_CHOICES
    )
    return html_format(
        '<nav class="filters" aria-label="Filters"><span>Show: {shows}</span>'
        "<span>Window: {windows}</span><span>Group: {groups}</span></nav>",
        shows=shows,
        windows=windows,
        groups=join(group_links),
    )


def _digest_body(digest: Digest, site: Site, filters: Filters, unread: int | None = None) -> Markup:
    heading = f"Search: {digest.query.search}" if digest.query.search else "Digest"
    lede = html_format(
        '<p class="lede">{shown} of {total} events {window}{unread} · generated {time}</p>',
        shown=len(digest.events),
        total=digest.total,
        window=digest.describe(),
        unread=html_format(' · <strong class="unread">{n} unread</strong>', n=unread)
        if unread is not None
        else "",
        time=_time(digest.generated_at),
    )
    parts = [html_format("<h1>{h}</h1>", h=heading), lede]
    if not site.standalone:
        parts.append(_filters(digest, filters))
    if not digest.events:
        parts.append(html_format('<p class="empty">Nothing in this window.</p>'))
    number = 0
    show_headings = len(digest.sections) > 1 or bool(digest.query.groups)
    back = filters.url()  # where a mark returns: this same view
    for section in digest.sections:
        items = []
        for event in section.events:
            number += 1
            items.append(_event_item(site, number, event, back))
        heading_html = (
            html_format(
                '<h2>{name}<span class="count">{count}</span></h2>',
                name=section.group or "(no group)",
                count=len(section.events),
            )
            if show_headings
            else Markup("")
        )
        parts.append(
            html_format(
                '<section class="group">{heading}<ol class="events">{items}</ol></section>',
                heading=heading_html,
                items=join(items, "\n"),
            )
        )
    parts.append(_bulk_form(site, digest.events, back))
    return join(parts, "\n")


def render_digest_page(
    digest: Digest, *, site: Site, filters: Filters | None = None, unread: int | None = None
) -> str:
    """The digest as a page: events by group, each with its copies and a link to why;
    `unread` is the count of unread events the header shows (served pages)."""
    filters = filters or Filters()
    title = f"Search: {digest.query.search}" if digest.query.search else "Digest"
    return _page(
        site,
        title=title,
        body=_digest_body(digest, site, filters, unread),
        current="digest",
        search=digest.query.search or "",
    )


def render_html(digest: Digest) -> str:
    """The digest as one self-contained HTML file (`digest --format html`)."""
    return render_digest_page(digest, site=Site(standalone=True))


# -- one event --------------------------------------------------------------------------


def _members_in_arrival_order(event: EventView) -> list[StoredEntry]:
    return sorted(event.members, key=lambda member: member.id)


def _explanation(event: EventView) -> Markup:
    """The canonical choice and one row per member: how and how strongly it joined."""
    members = _members_in_arrival_order(event)
    numbers = {member.id: i for i, member in enumerate(members, start=1)}
    rows = []
    for member in members:
        shown = member.id == event.canonical.id
        published = (
            html_format(" · published {t}", t=_time(member.published))
            if member.published
            else Markup("")
        )
        rows.append(
            html_format(
                '<tr><td class="num">#{n}</td>'
                '<td>{item}{chip}<div class="sub">{source}{published}</div></td>'
                '<td class="nowrap">{arrived}</td><td>{how}</td></tr>',
                n=numbers[member.id],
                item=_link(one_line(member.title) or "(no title)", member.url),
                chip=html_format('<span class="chip">shown</span>') if shown else Markup(""),
                source=one_line(member.feed_name),
                published=published,
                arrived=_time(member.first_seen),
                how=how_joined(member, numbers),
            )
        )
    reason = html_format(
        '<p class="reason">Shown: #{n} from {source}. Reason: {reason}.</p>',
        n=numbers[event.canonical.id],
        source=one_line(event.canonical.feed_name),
        reason=one_line(event.canonical_reason) or "only member",
    )
    table = html_format(
        '<div class="table-wrap"><table class="members"><thead><tr><th>#</th><th>Copy</th>'
        "<th>Arrived</th><th>How it joined</th></tr></thead>"
        "<tbody>{rows}</tbody></table></div>",
        rows=join(rows, "\n"),
    )
    return join([reason, table], "\n")


def render_event_page(event: EventView, *, site: Site) -> str:
    """One event: why its members are grouped, then the canonical item in full (sanitised)."""
    canonical = event.canonical
    title = one_line(canonical.title) or "(no title)"
    content = sanitized(canonical.html, images=site.images) if canonical.html else Markup("")
    if not content.strip():
        content = paragraphs(canonical.text)
    if not content.strip():
        content = html_format('<p class="empty">The feed gave no text for this item.</p>')
    outlets, feeds = len(event.outlets), len(event.sources)
    summary = f"{len(event.members)} {'copy' if len(event.members) == 1 else 'copies'}"
    summary += f" from {outlets} {'source' if outlets == 1 else 'sources'}"
    summary += f" ({feeds} feeds)" if feeds != outlets else ""
    heading = "Why these are grouped" if event.others else "About this item"
    body = html_format(
        '<p class="meta"><a href="/">← Digest</a></p>'
        "<h1>{title}</h1>"
        '<p class="meta"><span class="source">{source}</span><span class="sep">·</span>{time}'
        '<span class="sep">·</span>{group}<span class="sep">·</span>{summary}</p>'
        "{marks}{story}"
        '<h2 class="section" id="why">{heading}</h2>{explanation}'
        '<h2 class="section">The text shown</h2>'
        '<div class="content">{content}</div>',
        title=_link(title, canonical.url),
        source=one_line(canonical.feed_name),
        time=_time(canonical.effective_time),
        group=one_line(canonical.feed_group),
        summary=summary,
        marks=_mark_buttons(site, event, f"/event/{event.id}", bulk=False),
        story=_story_list(event, _event_path),
        heading=heading,
        explanation=_explanation(event),
        content=content,
    )
    return _page(site, title=title, body=body)


# -- feeds ----------------------------------------------------------------------------------


def _feed_row(state: FeedState) -> Markup:
    status = state.status if state.enabled else "disabled"
    feed_title = one_line(state.title or "")
    failures = f" ({state.failures} in a row)" if state.failures > 1 else ""
    return html_format(
        "<tr><td><strong>{name}</strong>{title}"
        '<div class="sub">{location}</div></td><td>{group}</td>'
        '<td><span class="status-{status_class}">{status}</span>{failures}'
        '{error}</td><td class="nowrap">{last_fetch}</td><td class="nowrap">{last_success}</td>'
        '<td class="nowrap">{next_due}</td><td class="num">{items}</td></tr>',
        name=one_line(state.name),
        title=html_format('<div class="sub">{t}</div>', t=feed_title)
        if feed_title and feed_title != one_line(state.name)
        else Markup(""),
        location=_link(one_line(state.location), state.location),
        group=one_line(state.group),
        status_class="".join(c for c in status if c.isalnum() or c == "_"),
        status=status,
        failures=failures,
        error=html_format('<div class="sub">{e}</div>', e=state.error) if state.error else "",
        last_fetch=_time(state.last_fetch) if state.last_fetch else "never",
        last_success=_time(state.last_success) if state.last_success else "never",
        next_due=_time(state.next_due) if state.next_due and state.enabled else "—",
        items=state.entry_count,
    )


def render_feeds_page(states: Sequence[FeedState], *, site: Site, now: datetime) -> str:
    """Each feed with its state: status, times, item count, the last error."""
    rows = [_feed_row(state) for state in states]
    failing = sum(1 for state in states if state.enabled and state.status == "error")
    empty = html_format('<tr><td colspan="7">No feeds yet.</td></tr>')
    body = html_format(
        "<h1>Feeds</h1>"
        '<p class="lede">{count} feeds, {failing} failing · {time}</p>'
        '<div class="table-wrap"><table><thead><tr><th>Feed</th><th>Group</th><th>Status</th>'
        "<th>Last fetch</th><th>Last success</th><th>Next due</th><th>Items</th></tr></thead>"
        "<tbody>{rows}</tbody></table></div>",
        count=len(states),
        failing=failing,
        time=_time(now),
        rows=join(rows, "\n") if rows else empty,
    )
    return _page(site, title="Feeds", body=body, current="feeds", wide=True)


def render_error_page(status: int, message: str, *, site: Site) -> str:
    """A short page for 400, 404 and friends; `message` is escaped like everything else."""
    body = html_format(
        '<h1>{status}</h1><p class="lede">{message}</p><p><a href="/">Back to the digest</a></p>',
        status=status,
        message=message,
    )
    return _page(site, title=str(status), body=body)


# -- feed entries ---------------------------------------------------------------------------


def render_entry_html(
    event: EventView, *, event_url: str, site: FeedInfo, full_text: bool = False,
    images: bool = False,
) -> Markup:  # fmt: skip
    """The body of an event's entry in the Atom and JSON feeds: the start of the text
    (with `full_text`, the canonical item's whole content, sanitised, as the Google Reader
    API gives it), every other copy linked, the other events of its story, and the link
    to why they are grouped."""
    parts = []
    content = Markup("")
    if full_text and event.canonical.html:
        content = sanitized(event.canonical.html, images=images)
    if full_text and not content.strip():
        content = paragraphs(event.canonical.text)
    text = "" if full_text else snippet(event.canonical.text)
    if content.strip():
        parts.append(content)
    elif text:
        parts.append(html_format("<p>{text}</p>", text=text))
    if event.others:
        items = join(
            html_format(
                "<li>{link} · {time}</li>",
                link=_link(one_line(member.feed_name) or "(unnamed feed)", member.url),
                time=when(member.effective_time),
            )
            for member in event.others
        )
        parts.append(html_format("<p>Also reported by:</p><ul>{items}</ul>", items=items))
    parts.append(_story_list(event, site.event_url))
    parts.append(
        html_format(
            '<p><a href="{url}">Why these are grouped</a></p>'
            if event.others
            else '<p><a href="{url}">Details</a></p>',
            url=href(event_url) or "",
        )
    )
    return join(parts, "\n")
