"""Every parser of what a publisher sends (HTTP headers, `<ttl>`, dates in every format
feedparser reads, numbers, URLs, text, whole documents) is total: for any input it returns
a value in its documented range and never raises (a whole document raises only
ParseError, which is the feed's failure with a reason)."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta

import pytest
from feedparser.datetimes import _parse_date
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from aggregator.errors import ParseError
from aggregator.feed_policy import Failure, after_failure
from aggregator.ingest.fetch import content_length
from aggregator.ingest.jsonfeed_reader import _date as json_date
from aggregator.ingest.normalize import (
    EARLIEST_DATE,
    LATEST_DATE,
    MAX_BODY_CHARS,
    MAX_TITLE_CHARS,
    canonical_url,
    display_url,
    html_to_text,
    normalize_entry,
    sane_date,
    sanitize_html,
    struct_time_to_utc,
)
from aggregator.ingest.parse import MAX_TTL_MINUTES, _ttl_minutes, parse_feed
from aggregator.ingest.prefilter import prefilter
from aggregator.models import RawEntry
from aggregator.schedule import (
    MAX_PUBLISHER_DELAY,
    MAX_RETRY_AFTER,
    MIN_RETRY_AFTER,
    cache_delay,
    host_key,
    next_due_after_success,
    outside_skipped,
    retry_after,
)

# nh3 swallows an exception of its attribute filter as an "unraisable" warning: fail on it.
pytestmark = pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")
NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
EXAMPLES = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Text a hostile publisher would send: anything, weighted towards digits of every script,
# signs, separators and the pieces dates and headers are made of.
PIECES = st.sampled_from(
    ["0", "1", "9", "²", "³", "١", "٣", "൧", "-", "+", ".", ",", ":", " ", "\t", "T", "Z",
     "GMT", "UTC", "+2359", "-9999", "Mon, ", "Jan", "Dec", " 0001", " 9999", " 99999999999",
     "e", "E", "max-age=", "no-cache", "\"", "'", "=", ";", "\x00", "\udfff", "\ufeff", "年",
     "月", "일", "Κυρ", "január", "T24:60:60", "1" * 30, "9" * 400]
)  # fmt: skip
HOSTILE_TEXT = st.one_of(st.text(max_size=80), st.lists(PIECES, max_size=12).map("".join))
LATIN1_TEXT = HOSTILE_TEXT.map(lambda text: text.encode("latin-1", "replace").decode("latin-1"))


@EXAMPLES
@given(HOSTILE_TEXT)
def test_retry_after_is_none_or_within_its_bounds(value: str) -> None:
    """Retry-After: None, or a delay from 1 minute to 7 days."""
    delay = retry_after(value, NOW)
    assert delay is None or MIN_RETRY_AFTER <= delay <= MAX_RETRY_AFTER


@EXAMPLES
@given(LATIN1_TEXT, LATIN1_TEXT)
def test_cache_delay_is_none_or_within_its_bound(control: str, expires: str) -> None:
    """Cache-Control and Expires: None, or a positive delay of at most 7 days."""
    delay = cache_delay({"cache-control": control, "expires": expires}, NOW)
    assert delay is None or timedelta(0) < delay <= MAX_PUBLISHER_DELAY


@EXAMPLES
@given(HOSTILE_TEXT)
def test_content_length_is_none_or_a_natural_number(value: str) -> None:
    """Content-Length: None, or a number from 0 to 2**63."""
    length = content_length(value)
    assert length is None or 0 <= length <= 2**63


@EXAMPLES
@given(st.one_of(HOSTILE_TEXT, st.integers().map(str), st.none()))
def test_ttl_is_none_or_within_a_week(value: str | None) -> None:
    """`<ttl>`: None, or minutes from 0 to a week."""
    ttl = _ttl_minutes(value)
    assert ttl is None or 0 <= ttl <= MAX_TTL_MINUTES


@EXAMPLES
@given(
    st.one_of(st.none(), st.integers(min_value=-(10**30), max_value=10**30)),
    st.frozensets(st.integers(0, 23)),
    st.frozensets(st.integers(0, 6)),
    st.one_of(st.none(), st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=10**6))),
)
def test_next_due_after_success_is_bounded(
    ttl: int | None, hours: frozenset[int], days: frozenset[int], delay: timedelta | None
) -> None:
    """Whatever the ttl and cache delay, the next poll is after now and within a week and
    a day (a week's cap, then moved out of skipped hours)."""
    due = next_due_after_success(
        NOW, timedelta(hours=1), random.Random(0), ttl_minutes=ttl, publisher_delay=delay,
        skip_hours=hours, skip_days=days,
    )  # fmt: skip
    assert NOW < due <= NOW + MAX_PUBLISHER_DELAY + timedelta(days=7, hours=1)
    assert outside_skipped(due, skip_hours=hours, skip_days=days) == due


@EXAMPLES
@given(
    st.one_of(st.none(), st.integers(-(10**6), 10**6)), st.one_of(st.none(), LATIN1_TEXT),
    st.integers(-5, 10**6),
)  # fmt: skip
def test_the_failure_policy_always_says_when(
    status: int | None, value: str | None, failures: int
) -> None:
    """After any failure: retire, or a next attempt after now and within 7 days."""
    action = after_failure(
        Failure(f"http_{status}", status, value), now=NOW, interval=timedelta(hours=1),
        failures=failures, rng=random.Random(0),
    )  # fmt: skip
    if action.retire:
        assert action.next_due is None
    else:
        assert action.next_due is not None
        assert NOW < action.next_due <= NOW + MAX_RETRY_AFTER


@EXAMPLES
@given(HOSTILE_TEXT)
def test_host_key_is_none_or_host_and_port(url: str) -> None:
    """Any URL: None, or `host:port`."""
    key = host_key(url)
    assert key is None or key.rsplit(":", 1)[1].isdigit()


DATE_FORMATS = st.sampled_from(
    ["{wd}, {d} {mon} {y} {h}:{mi}:{s} {tz}", "{y}-{m}-{d}T{h}:{mi}:{s}{tz}", "{y}{m}{d}",
     "{y}-{m}-{d}", "{wd} {mon} {d} {h}:{mi}:{s} {y}", "{y}-W{m}-{d}", "{y}/{m}/{d} {h}:{mi}",
     "{y}년 {m}월 {d}일 {h}:{mi}:{s}", "{y}-{m}-{d}T{h}:{mi}{tz}", "--{m}-{d}", "{y}-{d}"]
)  # fmt: skip
NUMBER = st.one_of(
    st.integers(-(10**20), 10**20).map(str), st.sampled_from(["0", "00", "0001", "99999", "²"])
)
TZ = st.sampled_from(["Z", "GMT", "+2359", "-2400", "+99:99", "-0000", "EST", "", "+1"])


@st.composite
def feed_dates(draw: st.DrawFn) -> str:
    """A date in one of the shapes feedparser's handlers read, with any numbers in it."""
    fields = {name: draw(NUMBER) for name in ("y", "m", "d", "h", "mi", "s")}
    fields["wd"] = draw(st.sampled_from(["Mon", "Sun", "Xyz", ""]))
    fields["mon"] = draw(st.sampled_from(["Jan", "Dec", "Foo", "janvier"]))
    fields["tz"] = draw(TZ)
    return draw(DATE_FORMATS).format(**fields)


@EXAMPLES
@given(st.one_of(feed_dates(), HOSTILE_TEXT))
def test_feed_dates_are_none_or_in_range(text: str) -> None:
    """Every date format feedparser reads, any numbers in it: None or 1970..2200."""
    when = struct_time_to_utc(_parse_date(text))
    assert when is None or EARLIEST_DATE <= when < LATEST_DATE


@EXAMPLES
@given(st.one_of(feed_dates(), HOSTILE_TEXT, st.integers()))
def test_json_feed_dates_are_none_or_in_range(value: object) -> None:
    """RFC 3339 dates of a JSON Feed: None or 1970..2200."""
    when = json_date(value)
    assert when is None or EARLIEST_DATE <= when < LATEST_DATE


@EXAMPLES
@given(st.datetimes(timezones=st.one_of(st.none(), st.timezones())))
def test_sane_date_is_none_or_utc_in_range(value: datetime) -> None:
    """Any datetime, year 1 to 9999, any offset: None or UTC in 1970..2200."""
    when = sane_date(value)
    assert when is None or (when.tzinfo is UTC and EARLIEST_DATE <= when < LATEST_DATE)


@EXAMPLES
@given(st.lists(st.integers(-(10**20), 10**20), min_size=9, max_size=9))
def test_struct_times_are_none_or_in_range(numbers: list[int]) -> None:
    """A struct_time of any numbers: None or 1970..2200."""
    try:
        value = time.struct_time(numbers)
    except (OverflowError, TypeError, ValueError):
        assume(False)
        return
    when = struct_time_to_utc(value)
    assert when is None or EARLIEST_DATE <= when < LATEST_DATE


URLS = st.one_of(
    HOSTILE_TEXT,
    st.lists(st.sampled_from(["http://", "https://", "[", "]", "::1", "example.com", ":",
                              "99999999", "/", "?", "#", "@", "%", "\udfff", "utm_source=x"]),
             max_size=8).map("".join),
)  # fmt: skip


@EXAMPLES
@given(URLS, st.one_of(st.none(), URLS))
def test_urls_are_cleaned_without_raising(url: str, base: str | None) -> None:
    """Any link against any base: None or an http(s) URL, and a display form."""
    canonical = canonical_url(url, base=base)
    assert canonical is None or canonical.startswith(("http://", "https://"))
    display_url(url, base=base)


@EXAMPLES
@given(HOSTILE_TEXT, st.one_of(st.none(), URLS))
def test_html_is_cleaned_without_raising(html: str, base: str | None) -> None:
    """Any fragment: text and sanitised HTML, without surrogates."""
    for text in (html_to_text(html), sanitize_html(f'<a href="{html}">{html}</a>', base_url=base)):
        text.encode("utf-8")


@EXAMPLES
@given(
    st.one_of(st.none(), URLS), st.one_of(st.none(), URLS), HOSTILE_TEXT, HOSTILE_TEXT,
    st.integers(0, 3),
)  # fmt: skip
def test_any_entry_normalises_within_bounds(
    guid: str | None, link: str | None, title: str, body: str, repeat: int
) -> None:
    """Any raw entry: normalised, with text bounded and encodable for storage."""
    raw = RawEntry(
        guid=guid, link=link, title=title * (10**repeat), summary_html=body,
        content_html=body * (10**repeat), author=title, published=None, updated=None,
    )  # fmt: skip
    entry = normalize_entry(raw, feed_link=link)
    assert len(entry.title) <= MAX_TITLE_CHARS and len(entry.text) <= MAX_BODY_CHARS
    for value in (entry.title, entry.text, entry.html, entry.guid, entry.url, entry.author):
        (value or "").encode("utf-8")


DOCUMENT_PIECES = st.sampled_from(
    [b'<?xml version="1.0"?>', b'<?xml version="1.0" encoding="utf-16"?>', b"<!DOCTYPE rss [",
     b'<!ENTITY a "xxxxxxxx">', b'<!ENTITY b "&a;&a;&a;">', b"]>", b"<!-- c -->", b"<?pi x?>",
     b'<rss version="2.0">', b"<channel>", b"<title>t</title>", b"<ttl>99999999999999999999</ttl>",
     b"<item>", b"<pubDate>Mon, 01 Jan 0001 00:00:00 GMT</pubDate>", b"&a;", b"&b;", b"&#xD800;",
     b"&#99999999999;", b"<![CDATA[", b"]]>", b"</item>", b"</channel>", b"</rss>", b"\x00",
     b"\xff\xfe", b"\xef\xbb\xbf", b"{", b'"version": "https://jsonfeed.org/version/1"', b"}"]
)  # fmt: skip


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=300), st.lists(DOCUMENT_PIECES, max_size=25).map(b"".join)))
def test_any_document_parses_or_fails_with_a_reason(body: bytes) -> None:
    """Any bytes: a parsed feed, or ParseError with a reason; never another exception."""
    try:
        prefilter(body)
        parsed = parse_feed(body)
    except ParseError as exc:
        assert exc.reason
        return
    assert parsed.ttl_minutes is None or 0 <= parsed.ttl_minutes <= MAX_TTL_MINUTES
    for raw in parsed.entries:
        for when in (raw.published, raw.updated):
            assert when is None or EARLIEST_DATE <= when < LATEST_DATE
