"""Filter rules of the feed list: which items are hidden, and which arrive read (pure).

A rule names an action and what an item's fields must hold:

    filters:
      - block: {title: horoscope}                 # a keyword: case and accents ignored
      - keep: {any: "/ukraine|russie/i"}          # a regular expression between slashes
      - mark_read: {author: [AFP, Reuters]}       # any of several

`block` hides the items it matches; where a feed is under any `keep` rule, only the items
a `keep` rule matches are shown; `mark_read` lets an event its item founds arrive read.
Every field a rule names must match (title, text, author, link, or `any`: title or
text). Rules apply globally, per group and per feed, and add up in that order.

Filtered items are still stored and deduplicated, only hidden: a blocked copy still
counts as a source of its event, and an event is hidden only when all its items are.

Patterns come from the user, and items from anyone: a regular expression is compiled when
the config is loaded (a bad one is a file:line error), and runs on an item under a time
bound (`MATCH_TIMEOUT`) with its fields capped (`FIELD_LIMITS`), so a pattern with
catastrophic backtracking costs one item a moment, never the daemon's pass.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

import regex


class Action(StrEnum):
    BLOCK = "block"
    KEEP = "keep"
    MARK_READ = "mark_read"


FIELDS = ("title", "text", "author", "link", "any")
# A pattern slower than this on one field of one item does not match it (and says so):
# ordinary patterns take microseconds.
MATCH_TIMEOUT = 0.05  # seconds
# What of each field a pattern sees: the start of a long text says what it is about.
FIELD_LIMITS = {"title": 1_000, "text": 20_000, "author": 500, "link": 2_000}
_FLAGS = {"i": regex.IGNORECASE, "m": regex.MULTILINE, "s": regex.DOTALL}


class FilterItem(NamedTuple):
    """The fields of an item the rules read."""

    title: str
    text: str
    author: str | None
    link: str | None


def fold(text: str) -> str:
    """Lower-case with accents removed: what a keyword and a field are compared as."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(char for char in decomposed if not unicodedata.combining(char))


@dataclass(frozen=True, slots=True)
class Matcher:
    """A keyword (folded, as whole words) or a regular expression (`/pattern/flags`)."""

    source: str
    pattern: regex.Pattern[str]
    keyword: bool

    @classmethod
    def parse(cls, text: str) -> Matcher:
        """Raises ValueError with the reason when `text` is no usable pattern."""
        if len(text) >= 2 and text.startswith("/") and text.rfind("/") > 0:
            end = text.rfind("/")
            body, flags = text[1:end], text[end + 1 :]
            unknown = set(flags) - set(_FLAGS)
            if unknown:
                raise ValueError(
                    f"unknown regular expression flag {''.join(sorted(unknown))!r}: "
                    "use i (ignore case), m (multi-line) or s (dot matches newlines)"
                )
            if not body:
                raise ValueError("an empty regular expression matches every item")
            combined = 0
            for flag in flags:
                combined |= _FLAGS[flag]
            try:
                return cls(text, regex.compile(body, combined), keyword=False)
            except regex.error as error:
                raise ValueError(f"invalid regular expression: {error}") from None
        folded = fold(text).strip()
        if not folded:
            raise ValueError("an empty keyword matches every item")
        words = r"\s+".join(regex.escape(word) for word in folded.split())
        return cls(text, regex.compile(rf"(?<!\w){words}(?!\w)"), keyword=True)

    def matches(self, value: str) -> bool:
        """Raises TimeoutError when the pattern runs past `MATCH_TIMEOUT`."""
        subject = fold(value) if self.keyword else value
        return self.pattern.search(subject, timeout=MATCH_TIMEOUT) is not None


@dataclass(frozen=True, slots=True)
class Rule:
    """An action, the fields it reads with the patterns each must match (one of them),
    and where the rule is written (`file:line`, for messages)."""

    action: Action
    fields: tuple[tuple[str, tuple[Matcher, ...]], ...]
    where: str

    def matches(self, item: FilterItem) -> bool:
        return all(
            any(_matches(matcher, value) for value in _values(item, name) for matcher in matchers)
            for name, matchers in self.fields
        )

    @property
    def text(self) -> str:
        """The rule as written, in one line: `block title=horoscope`."""
        parts = (f"{name}={'|'.join(m.source for m in matchers)}" for name, matchers in self.fields)
        return f"{self.action} " + " ".join(parts)


def _values(item: FilterItem, name: str) -> list[str]:
    if name == "any":
        return [*_values(item, "title"), *_values(item, "text")]
    value = getattr(item, name)
    return [value[: FIELD_LIMITS[name]]] if value else []


def _matches(matcher: Matcher, value: str) -> bool:
    """Raises TimeoutError naming the pattern when it runs past its time bound."""
    try:
        return matcher.matches(value)
    except TimeoutError:
        raise TimeoutError(f"pattern {matcher.source!r} ran past {MATCH_TIMEOUT:g} s") from None


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the rules say of an item: hidden by which rule (None: shown), read on arrival
    by which (None: unread), and the patterns that ran out of time on it (they did not
    match)."""

    hidden_by: Rule | None = None
    read_by: Rule | None = None
    timed_out: tuple[str, ...] = ()

    @property
    def hidden_label(self) -> str | None:
        """The hiding rule as stored with the entry: where it is written, and what it is."""
        rule = self.hidden_by
        return None if rule is None else f"{rule.where}: {rule.text}"


SHOWN = Verdict()


def judge(rules: Sequence[Rule], item: FilterItem) -> Verdict:
    """Apply `rules` (a feed's, global first) to `item`: a `block` rule that matches hides
    it; else, when there are `keep` rules, none matching hides it (by the first); a
    `mark_read` rule that matches makes it read."""
    if not rules:
        return SHOWN
    timed_out: list[str] = []

    def matched(rule: Rule) -> bool:
        try:
            return rule.matches(item)
        except TimeoutError as timeout:
            timed_out.append(f"{rule.where}: {timeout}")
            return False

    hidden = next((r for r in rules if r.action is Action.BLOCK and matched(r)), None)
    if hidden is None:
        keeps = [r for r in rules if r.action is Action.KEEP]
        if keeps and not any(matched(r) for r in keeps):
            hidden = keeps[0]
    read = next((r for r in rules if r.action is Action.MARK_READ and matched(r)), None)
    return Verdict(hidden, read, tuple(timed_out))


def fingerprint(rule_sets: Iterable[tuple[str, Sequence[Rule]]]) -> str:
    """A digest of every feed's rules (by feed name): when it changes, stored items are
    judged again."""
    digest = hashlib.sha256()
    for name, rules in sorted(rule_sets, key=lambda pair: pair[0]):
        digest.update(name.encode() + b"\0")
        for rule in rules:
            digest.update(rule.text.encode() + b"\0")
    return digest.hexdigest()
