"""Filter rules (aggregator/filters.py): what they match, hide and mark read."""

from __future__ import annotations

import pytest

from aggregator.filters import (
    Action,
    FilterItem,
    Matcher,
    Rule,
    fingerprint,
    judge,
)


def rule(action: Action, where: str = "feeds.yaml:1", **fields: str | list[str]) -> Rule:
    parsed = tuple(
        (name, tuple(Matcher.parse(p) for p in ([value] if isinstance(value, str) else value)))
        for name, value in fields.items()
    )
    return Rule(action, parsed, where)


def item(title: str = "", text: str = "", author: str | None = None,
         link: str | None = None) -> FilterItem:  # fmt: skip
    return FilterItem(title, text, author, link)


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("horoscope", "Votre HOROSCOPE du jour", True),
        ("horoscope", "horoscopes", False),  # whole words
        ("Élysée", "Reçu à l'elysee ce matin", True),  # case and accents
        ("coupe du monde", "La Coupe  du\tMonde commence", True),  # any spacing
        ("coupe du monde", "la coupe du monde-ci", True),
        ("/^Sponsored:/", "Sponsored: buy this", True),
        ("/^sponsored:/", "Sponsored: buy this", False),  # case kept without i
        ("/^sponsored:/i", "Sponsored: buy this", True),
        ("/a.b/s", "a\nb", True),
        ("/a.b/", "a\nb", False),
    ],
)
def test_a_pattern_matches_as_written(pattern: str, value: str, expected: bool) -> None:
    assert Matcher.parse(pattern).matches(value) is expected


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        ("/(unclosed/", "invalid regular expression"),
        ("/x/q", "unknown regular expression flag 'q'"),
        ("//", "an empty regular expression"),
        ("   ", "an empty keyword"),
    ],
)
def test_a_bad_pattern_says_why(pattern: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        Matcher.parse(pattern)


def test_block_hides_and_names_its_rule() -> None:
    block = rule(Action.BLOCK, title="horoscope")
    assert judge([block], item("Horoscope du jour")).hidden_by is block
    assert judge([block], item("Élections municipales")).hidden_by is None


def test_every_field_of_a_rule_must_match_one_of_its_patterns() -> None:
    both = rule(Action.BLOCK, title=["sport", "foot"], author="AFP")
    assert judge([both], item("Foot: le résumé", author="AFP")).hidden_by is both
    assert judge([both], item("Foot: le résumé", author="Reuters")).hidden_by is None
    assert judge([both], item("Politique", author="AFP")).hidden_by is None
    assert judge([both], item("Foot: le résumé")).hidden_by is None  # no author at all


def test_any_reads_title_and_text_and_link_reads_the_link() -> None:
    anywhere = rule(Action.BLOCK, any="publireportage")
    assert judge([anywhere], item("Offre", "Ce publireportage vous est offert")).hidden_by
    by_link = rule(Action.BLOCK, link="/\\/sponsored\\//")
    assert judge([by_link], item("x", link="https://a.example/sponsored/1")).hidden_by
    assert not judge([by_link], item("x", link="https://a.example/news/1")).hidden_by


def test_keep_shows_only_what_it_matches_and_block_wins_over_keep() -> None:
    keep = rule(Action.KEEP, title="ukraine")
    block = rule(Action.BLOCK, title="podcast")
    rules = [keep, block]
    assert judge(rules, item("Ukraine: les négociations")).hidden_by is None
    assert judge(rules, item("Le Super Bowl")).hidden_by is keep
    assert judge(rules, item("Podcast Ukraine")).hidden_by is block


def test_mark_read_leaves_the_item_shown() -> None:
    read = rule(Action.MARK_READ, author="AFP")
    verdict = judge([read], item("Dépêche", author="AFP"))
    assert verdict.read_by is read and verdict.hidden_by is None
    assert judge([read], item("Dépêche", author="Le Monde")).read_by is None


def test_a_pattern_that_backtracks_forever_gives_up_on_that_item_only() -> None:
    """A catastrophic pattern on a hostile title runs out of time (it does not match, and
    the verdict says so); the other rules still decide."""
    slow = rule(Action.BLOCK, "feeds.yaml:3", title="/(x+x+)+y/")
    fast = rule(Action.BLOCK, "feeds.yaml:4", title="spam")
    verdict = judge([slow, fast], item("x" * 900 + " spam"))
    assert verdict.hidden_by is fast
    assert verdict.timed_out and verdict.timed_out[0].startswith("feeds.yaml:3: ")


def test_fields_are_capped_before_a_pattern_reads_them() -> None:
    late = rule(Action.BLOCK, text="needle")
    assert judge([late], item("t", "word " * 10 + "needle")).hidden_by is late
    assert judge([late], item("t", "word " * 10_000 + "needle")).hidden_by is None


def test_the_fingerprint_follows_the_rules_not_their_order_of_feeds() -> None:
    a, b = [rule(Action.BLOCK, title="x")], [rule(Action.KEEP, title="y")]
    assert fingerprint([("one", a), ("two", b)]) == fingerprint([("two", b), ("one", a)])
    assert fingerprint([("one", a)]) != fingerprint([("one", b)])
    assert fingerprint([("one", a)]) != fingerprint([("one", [])])
