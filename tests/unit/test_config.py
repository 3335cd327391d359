"""Tests for aggregator.config: YAML text -> validated Config, errors with file, line, key."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from aggregator.config import (
    SETTINGS,
    documented_settings,
    load_config,
    parse_config,
    parse_duration,
    parse_size,
)
from aggregator.errors import ConfigError
from aggregator.models import (
    DEFAULT_CANONICAL_ORDER,
    DEFAULT_DEDUP_WINDOW,
    DEFAULT_INTERVAL,
    DEFAULT_MAX_BODY_BYTES,
    CanonicalRule,
    Config,
    Settings,
)

REPO_CONFIG_DIR = Path(__file__).parents[2] / "config"

# A config path that does not exist: parse_config must never read it.
CONFIG_PATH = Path("/nonexistent/agg/feeds.yaml")


def _always(_: Path) -> bool:
    return True


def parse(text: str, *, file_exists: Callable[[Path], bool] = _always) -> Config:
    """Parse dedented `text` (line 1 = first non-blank line) as if it were CONFIG_PATH."""
    return parse_config(textwrap.dedent(text).lstrip("\n"), CONFIG_PATH, file_exists=file_exists)


def parse_error(text: str, *, file_exists: Callable[[Path], bool] = _always) -> ConfigError:
    """Parse `text`, expecting a ConfigError, and check the error's one-line format."""
    with pytest.raises(ConfigError) as info:
        parse(text, file_exists=file_exists)
    error = info.value
    rendered = str(error)
    assert "\n" not in rendered
    assert rendered.startswith(f"{CONFIG_PATH}:")
    assert error.path == CONFIG_PATH
    return error


def assert_error(error: ConfigError, line: int | None, key: str | None, fragment: str) -> None:
    """The error points at `line` and `key`, and says `fragment`."""
    assert error.line == line, str(error)
    assert error.key == key, str(error)
    assert fragment in error.message, str(error)
    if line is not None:
        assert str(error).startswith(f"{CONFIG_PATH}:{line}:")
    if key is not None:
        assert f" {key}: " in str(error)


FULL_EXAMPLE = """
    settings:
      canonical: [earliest, longest, priority]
      dedup_window: 2d
      max_body_size: 2MiB
      fetch_timeout: 45s
    groups:
      world:
        interval: 30m
        priority: 5
        enabled: false
        allow_private: true
        feeds:
          - name: Le Monde
            url: https://www.lemonde.fr/rss/une.xml
          - name: BBC
            url: https://feeds.bbci.co.uk/news/world/rss.xml
            interval: 1h30m
            priority: -2
            enabled: true
            allow_private: false
      local:
        feeds:
          - path: ../seeds/feeds/sample.rss
          - url: http://example.org/news/feed/
"""


# --- valid files ----------------------------------------------------------------------------


def test_full_example_maps_every_field() -> None:
    """Every key of the format lands in Settings / FeedSpec, with group defaults applied."""
    config = parse(FULL_EXAMPLE)
    assert config.path == CONFIG_PATH
    assert config.settings == Settings(
        canonical=(CanonicalRule.EARLIEST, CanonicalRule.LONGEST, CanonicalRule.PRIORITY),
        dedup_window=timedelta(days=2),
        max_body_bytes=2 * 1024 * 1024,
        fetch_timeout=45.0,
    )
    lemonde, bbc, sample, example = config.feeds

    # Inherits every group default.
    assert lemonde.name == "Le Monde"
    assert lemonde.group == "world"
    assert lemonde.url == "https://www.lemonde.fr/rss/une.xml"
    assert lemonde.path is None
    assert lemonde.interval == timedelta(minutes=30)
    assert lemonde.priority == 5
    assert lemonde.enabled is False
    assert lemonde.allow_private is True
    assert lemonde.line == 13

    # Overrides every group default.
    assert bbc.interval == timedelta(hours=1, minutes=30)
    assert bbc.priority == -2
    assert bbc.enabled is True
    assert bbc.allow_private is False
    assert bbc.line == 15

    # A group without defaults gets the built-in ones; names are derived.
    assert sample.group == "local"
    assert sample.url is None
    assert sample.path == Path("/nonexistent/seeds/feeds/sample.rss")
    assert sample.name == "sample"
    assert sample.interval == DEFAULT_INTERVAL
    assert sample.priority == 0
    assert sample.enabled is True
    assert sample.allow_private is False
    assert sample.line == 23
    assert example.name == "example.org/news/feed"
    assert example.line == 24
    assert config.enabled_feeds() == (bbc, sample, example)


def test_defaults_when_settings_absent() -> None:
    """Without a settings block every setting has its documented default."""
    config = parse("""
        groups:
          g:
            feeds:
              - url: https://example.com/rss
    """)
    assert config.settings == Settings()
    assert config.settings.canonical == DEFAULT_CANONICAL_ORDER
    assert config.settings.dedup_window == DEFAULT_DEDUP_WINDOW
    assert config.settings.max_body_bytes == DEFAULT_MAX_BODY_BYTES
    assert config.settings.fetch_timeout == 20.0
    (feed,) = config.feeds
    assert feed.interval == DEFAULT_INTERVAL
    assert feed.priority == 0
    assert feed.enabled is True
    assert feed.allow_private is False


def test_empty_settings_and_partial_settings() -> None:
    """An empty settings block means defaults; a partial one overrides only its keys."""
    assert parse("settings:\ngroups: {}\n").settings == Settings()
    settings = parse("settings:\n  max_body_size: 1048576\ngroups: {}\n").settings
    assert settings == Settings(max_body_bytes=1048576)


def test_empty_feed_lists_and_groups_are_allowed() -> None:
    """A group whose feeds are all commented out, or no group at all, gives no feeds."""
    assert parse("groups:\n  g:\n    feeds: []\n").feeds == ()
    assert parse("groups:\n  g:\n    feeds:\n    # - url: https://x.org/\n").feeds == ()
    assert parse("groups: {}\n").feeds == ()


def test_path_relative_to_config_dir_is_resolved(tmp_path: Path) -> None:
    """`path:` is resolved against the YAML file's directory, not the working directory."""
    (tmp_path / "seeds").mkdir()
    feed_file = tmp_path / "seeds" / "a.rss"
    feed_file.write_text("<rss/>", encoding="utf-8")
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    text = "groups:\n  g:\n    feeds:\n      - path: ../seeds/./a.rss\n"
    config = parse_config(text, config_dir / "feeds.yaml")  # the real Path.is_file
    (feed,) = config.feeds
    assert feed.path == feed_file.resolve()
    assert feed.path is not None and feed.path.is_absolute()
    assert feed.location == str(feed_file.resolve())
    assert feed.name == "a"


def test_file_exists_gets_the_resolved_path() -> None:
    """The injected existence check receives the resolved absolute path."""
    seen: list[Path] = []

    def exists(path: Path) -> bool:
        seen.append(path)
        return True

    parse("groups:\n  g:\n    feeds:\n      - path: sub/../x.rss\n", file_exists=exists)
    assert seen == [Path("/nonexistent/agg/x.rss")]


def test_load_config_reads_the_file(tmp_path: Path) -> None:
    """load_config reads UTF-8 text and checks local files on disk."""
    (tmp_path / "f.rss").write_text("<rss/>", encoding="utf-8")
    path = tmp_path / "feeds.yaml"
    path.write_text(
        "groups:\n  g:\n    feeds:\n      - name: Café\n        path: f.rss\n", encoding="utf-8"
    )
    config = load_config(path)
    assert config.path == path
    assert [f.name for f in config.feeds] == ["Café"]


def test_example_config_loads() -> None:
    """config/feeds.example.yaml is a valid config of real http(s) feeds in several groups."""
    config = load_config(REPO_CONFIG_DIR / "feeds.example.yaml")
    assert 10 <= len(config.feeds) <= 20
    assert len({feed.group for feed in config.feeds}) >= 3
    assert all(feed.url is not None and feed.url.startswith("https://") for feed in config.feeds)


def test_default_config_has_the_two_seed_feeds() -> None:
    """config/feeds.yaml declares the two seed files, whether or not they exist yet."""
    path = REPO_CONFIG_DIR / "feeds.yaml"
    config = parse_config(path.read_text(encoding="utf-8"), path, file_exists=_always)
    seeds_dir = (REPO_CONFIG_DIR.parent / "seeds" / "feeds").resolve()
    assert [(f.name, f.group, f.path, f.priority, f.interval) for f in config.feeds] == [
        (
            "Seed 003 — related headlines",
            "seeds",
            seeds_dir / "003-related.rss",
            0,
            timedelta(minutes=60),
        ),
        ("Seed 000 — article", "seeds", seeds_dir / "000-article.atom", 0, timedelta(minutes=60)),
    ]


def test_default_config_commented_example_group_is_valid() -> None:
    """The commented-out example group in config/feeds.yaml is valid once uncommented."""
    text = (REPO_CONFIG_DIR / "feeds.yaml").read_text(encoding="utf-8")
    head, marker, example = text.partition("# An example group")
    assert marker, "config/feeds.yaml lost its commented example group"
    uncommented = "\n".join(line[1:] for line in example.splitlines()[1:])
    config = parse_config(head + uncommented, CONFIG_PATH, file_exists=_always)
    assert {f.group for f in config.feeds} == {"seeds", "world"}
    assert len(config.feeds) == 5


# --- YAML-level errors ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("groups:\n  g:\n    feeds: [\n  - x\n", 4),  # unclosed flow list
        ("groups:\n  a: 1\n b: 2\n", 3),  # bad indentation
        ("groups:\n\tg: 1\n", 2),  # tab indentation
        ("groups: {}\n---\ngroups: {}\n", 2),  # two documents
        ("groups: *nowhere\n", 1),  # undefined alias
        ("groups:\n  g: 'unterminated\n", 3),  # quote never closed
        ("groups: {}\nx: \x07\n", 2),  # control character
    ],
)
def test_yaml_syntax_error_has_line(text: str, line: int) -> None:
    """Malformed YAML is a ConfigError with the line PyYAML's mark points at."""
    error = parse_error(text)
    assert_error(error, line, None, "invalid YAML")


@pytest.mark.parametrize("text", ["", "   \n", "# nothing but a comment\n"])
def test_empty_file(text: str) -> None:
    """An empty file (or only comments) is an error, not an empty config."""
    error = parse_error(text)
    assert_error(error, None, None, "empty")


def test_deep_nesting_is_a_config_error() -> None:
    """Absurdly nested YAML fails as ConfigError, not RecursionError."""
    error = parse_error("groups: " + "[" * 5000 + "]" * 5000 + "\n")
    assert "nested too deeply" in error.message


@pytest.mark.parametrize(
    ("text", "line", "key", "first"),
    [
        ("groups: {}\ngroups: {}\n", 2, "groups", 1),
        ("groups:\n  g:\n    feeds: []\n  g:\n    feeds: []\n", 4, "groups.g", 2),
        (
            "groups:\n  g:\n    priority: 1\n    feeds: []\n    priority: 2\n",
            5,
            "groups.g.priority",
            3,
        ),
        (
            "groups:\n  g:\n    feeds:\n      - url: https://a.org/\n        url: https://b.org/\n",
            5,
            "groups.g.feeds[0].url",
            4,
        ),
        (
            "settings:\n  dedup_window: 2h\n  dedup_window: 3h\ngroups: {}\n",
            3,
            "settings.dedup_window",
            2,
        ),
    ],
)
def test_duplicate_keys(text: str, line: int, key: str, first: int) -> None:
    """PyYAML would keep the last value silently; we refuse and name both lines."""
    error = parse_error(text)
    assert_error(error, line, key, f"(first on line {first})")
    assert "duplicate key" in error.message


# --- structure and unknown keys -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "key", "suggestion"),
    [
        ("group:\n  g:\n    feeds: []\n", 1, "group", "'groups'"),
        (
            "settings:\n  dedup_windows: 2h\ngroups: {}\n",
            2,
            "settings.dedup_windows",
            "'dedup_window'",
        ),
        ("groups:\n  g:\n    feed: []\n", 3, "groups.g.feed", "'feeds'"),
        (
            "groups:\n  g:\n    feeds:\n      - url: https://a.org/\n        intervall: 5m\n",
            5,
            "groups.g.feeds[0].intervall",
            "'interval'",
        ),
        (
            "groups:\n  g:\n    feeds:\n      - url: https://a.org/\n        priorty: 1\n",
            5,
            "groups.g.feeds[0].priorty",
            "'priority'",
        ),
    ],
)
def test_unknown_key_suggests_closest(text: str, line: int, key: str, suggestion: str) -> None:
    """An unknown key is refused with the closest valid key as a suggestion."""
    error = parse_error(text)
    name = key.rsplit(".", 1)[-1]
    assert_error(error, line, key, f"unknown key '{name}' (did you mean {suggestion}?)")


def test_unknown_key_without_close_match_lists_valid_keys() -> None:
    """With nothing close, the message lists the valid keys instead."""
    error = parse_error("groups:\n  g:\n    feeds:\n      - url: https://a.org/\n        zzz: 1\n")
    assert_error(error, 5, "groups.g.feeds[0].zzz", "valid keys: name, url, path, interval")


def test_feed_keys_directly_under_group_hint_at_feeds_list() -> None:
    """`url:` written under a group (feeds list forgotten) says where it belongs."""
    error = parse_error("groups:\n  g:\n    url: https://a.org/\n")
    assert_error(error, 3, "groups.g.url", "under 'feeds:'")


@pytest.mark.parametrize(
    ("text", "line", "key", "fragment"),
    [
        ("- groups\n", 1, None, "must be a mapping, found a list"),
        ("settings: {}\n", 1, "groups", "missing required key 'groups'"),
        ("groups: [a, b]\n", 1, "groups", "must be a mapping, found a list"),
        ("groups:\n  g:\n", 2, "groups.g", "must be a mapping, found an empty value"),
        ("groups:\n  g:\n    priority: 1\n", 3, "groups.g.feeds", "has no 'feeds:' list"),
        ("groups:\n  g:\n    feeds: {a: 1}\n", 3, "groups.g.feeds", "must be a list"),
        ("groups:\n  g:\n    feeds:\n      - https://a.org/\n", 4, "groups.g.feeds[0]", "mapping"),
        ("groups:\n  2024:\n    feeds: []\n", 2, "groups.2024", "put quotes around it"),
        ("groups:\n  '':\n    feeds: []\n", 2, "groups.", "group name must not be empty"),
        ("settings: [a]\ngroups: {}\n", 1, "settings", "must be a mapping, found a list"),
        (
            "groups:\n  g:\n    feeds:\n      - {url: 'https://a.org/', <<: {priority: 1}}\n",
            4,
            "groups.g.feeds[0]",
            "merge keys",
        ),
    ],
)
def test_structure_errors(text: str, line: int, key: str | None, fragment: str) -> None:
    """Missing or misshapen sections point at the right node."""
    assert_error(parse_error(text), line, key, fragment)


def test_error_stays_on_one_line_with_line_break_in_key() -> None:
    """A quoted key containing a line break does not break the one-line message."""
    error = parse_error('"a\\nb": 1\ngroups: {}\n')
    assert error.line == 1
    assert error.key == "a b"


# --- values ---------------------------------------------------------------------------------


def _feed(extra: str, url: str = "https://a.org/rss") -> str:
    """A one-feed config; `extra` is one line of feed options (line 5)."""
    return f"groups:\n  g:\n    feeds:\n      - url: {url}\n        {extra}\n"


@pytest.mark.parametrize(
    ("extra", "key", "fragment"),
    [
        ("priority: high", "priority", "expected an integer, found a string ('high')"),
        ("priority: true", "priority", "expected an integer, found a boolean ('true')"),
        ("priority: 1.5", "priority", "expected an integer, found a number ('1.5')"),
        ("enabled: 1", "enabled", "expected true or false, found an integer ('1')"),
        ("enabled: 'true'", "enabled", "expected true or false, found a string ('true')"),
        ("allow_private:", "allow_private", "expected true or false, found an empty value"),
        ("interval: [1m]", "interval", "expected a duration such as '30m' or '2h', found a list"),
        ("interval: true", "interval", "found a boolean"),
        ("name: 123", "name", "must be a string, found an integer ('123') (put quotes"),
        ("name: {a: 1}", "name", "must be a string, found a mapping"),
        ("name: '  '", "name", "name must not be empty"),
        ('name: "a\\nb"', "name", "must not contain line breaks"),
    ],
)
def test_wrong_types(extra: str, key: str, fragment: str) -> None:
    """A value of the wrong type names what was expected and what was found."""
    error = parse_error(_feed(extra))
    assert_error(error, 5, f"groups.g.feeds[0].{key}", fragment)


@pytest.mark.parametrize("value", ["30", "1.5", "90"])
def test_bare_number_duration_asks_for_a_unit(value: str) -> None:
    """`interval: 30` is refused with a hint to write the unit."""
    error = parse_error(_feed(f"interval: {value}"))
    assert_error(
        error, 5, "groups.g.feeds[0].interval", f"duration '{value}' has no unit: add one of s"
    )


@pytest.mark.parametrize(
    ("extra", "key", "fragment"),
    [
        ("interval: 30s", "interval", "must be between 1m and 7d, found '30s'"),
        ("interval: 8d", "interval", "must be between 1m and 7d, found '8d'"),
        ("interval: 0m", "interval", "must be between 1m and 7d"),
        ("interval: soon", "interval", "invalid duration 'soon'"),
        ("priority: 1000001", "priority", "priority must be between -1000000 and 1000000"),
    ],
)
def test_out_of_range_feed_values(extra: str, key: str, fragment: str) -> None:
    """Feed values outside their range are refused with the range in the message."""
    assert_error(parse_error(_feed(extra)), 5, f"groups.g.feeds[0].{key}", fragment)


def test_group_default_is_validated_too() -> None:
    """A bad group default is reported at the group's key, not at each feed."""
    error = parse_error("groups:\n  g:\n    interval: 10s\n    feeds: []\n")
    assert_error(error, 3, "groups.g.interval", "between 1m and 7d")


@pytest.mark.parametrize(
    ("setting", "key", "fragment"),
    [
        ("dedup_window: 30m", "dedup_window", "must be at least 1h, found '30m'"),
        ("dedup_window: 72", "dedup_window", "no unit"),
        ("fetch_timeout: 0s", "fetch_timeout", "must be between 1s and 10m, found '0s'"),
        ("fetch_timeout: 11m", "fetch_timeout", "must be between 1s and 10m, found '11m'"),
        ("max_body_size: 100", "max_body_size", "must be at least 1KiB"),
        ("max_body_size: 1023B", "max_body_size", "must be at least 1KiB"),
        ("max_body_size: 15 MiB please", "max_body_size", "invalid size '15 MiB please'"),
        ("max_body_size: 15 furlongs", "max_body_size", "unknown size unit 'furlongs'"),
        ("max_body_size: 15TB", "max_body_size", "unknown size unit 'TB'"),
        ("max_body_size: true", "max_body_size", "found a boolean"),
        ("max_body_size: -5", "max_body_size", "must not be negative"),
        ("canonical: priority", "canonical", "expected a list such as [priority, earliest"),
        ("canonical: []", "canonical", "must list at least one of"),
    ],
)
def test_bad_settings(setting: str, key: str, fragment: str) -> None:
    """Settings out of range, of the wrong type or badly formatted are refused."""
    error = parse_error(f"settings:\n  {setting}\ngroups: {{}}\n")
    assert_error(error, 2, f"settings.{key}", fragment)


def test_daemon_settings_parse_and_default() -> None:
    """Fetch concurrency and retention: whole numbers in range, documented defaults."""
    settings = parse(
        "settings:\n  fetch_workers: 16\n  fetch_per_host: 1\n  retention_days: 7\n"
        "  tombstone_days: 90\ngroups: {}\n"
    ).settings
    assert (settings.fetch_workers, settings.fetch_per_host) == (16, 1)
    assert (settings.retention_days, settings.tombstone_days) == (7, 90)
    defaults = Settings()
    assert (defaults.fetch_workers, defaults.fetch_per_host) == (8, 2)
    assert (defaults.retention_days, defaults.tombstone_days) == (30, 60)


@pytest.mark.parametrize(
    ("setting", "key", "fragment"),
    [
        ("fetch_workers: 0", "fetch_workers", "must be between 1 and 64, found 0"),
        ("fetch_per_host: 9", "fetch_per_host", "must be between 1 and 8, found 9"),
        ("retention_days: 30d", "retention_days", "expected a whole number, found a string"),
        ("tombstone_days: true", "tombstone_days", "expected a whole number, found a boolean"),
        ("retention_days: 4000", "retention_days", "must be between 1 and 3650"),
    ],
)
def test_bad_daemon_settings(setting: str, key: str, fragment: str) -> None:
    """Out-of-range or non-integer fetch and retention settings name line and key."""
    error = parse_error(f"settings:\n  {setting}\ngroups: {{}}\n")
    assert_error(error, 2, f"settings.{key}", fragment)


def test_canonical_unknown_rule() -> None:
    """An unknown canonical rule is refused with the valid ones and a suggestion."""
    error = parse_error("settings:\n  canonical:\n    - priority\n    - earlist\ngroups: {}\n")
    assert_error(
        error, 4, "settings.canonical[1]", "unknown canonical rule 'earlist' (did you mean"
    )
    assert "valid: priority, earliest, longest" in error.message


def test_canonical_rule_twice() -> None:
    """Each canonical rule may appear at most once."""
    error = parse_error("settings:\n  canonical:\n    - longest\n    - longest\ngroups: {}\n")
    assert_error(error, 4, "settings.canonical[1]", "listed twice (first on line 3)")


# --- url and path ---------------------------------------------------------------------------


def test_url_and_path_together() -> None:
    """A feed with both url and path is refused at the path key."""
    error = parse_error(_feed("path: x.rss"))
    assert_error(error, 5, "groups.g.feeds[0].path", "either 'url' or 'path', not both")


def test_neither_url_nor_path() -> None:
    """A feed without url or path is refused at the feed's list item."""
    error = parse_error("groups:\n  g:\n    feeds:\n      - name: Nothing\n")
    assert_error(error, 4, "groups.g.feeds[0]", "needs 'url'")


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("file:///etc/passwd", "scheme 'file:'"),
        ("ftp://ftp.example.org/feed.xml", "scheme 'ftp:'"),
        ("'javascript:alert(1)'", "scheme 'javascript:'"),
        ("'data:text/xml,<rss/>'", "scheme 'data:'"),
        ("www.example.org/rss", "no scheme"),
        ("//example.org/rss", "no scheme"),
    ],
)
def test_non_http_url_refused(url: str, fragment: str) -> None:
    """Only http and https URLs are accepted."""
    error = parse_error(_feed("name: X", url=url))
    assert_error(error, 4, "groups.g.feeds[0].url", fragment)
    assert "only http:// and https:// are allowed" in error.message


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("'http:///rss.xml'", "has no host"),
        ("'https://'", "has no host"),
        ("'http://a.org:99999/'", "invalid url"),
        ("'http://a.org/a b'", "must not contain spaces"),
        ("''", "url must not be empty"),
    ],
)
def test_malformed_url_refused(url: str, fragment: str) -> None:
    """URLs without a host, with a bad port or with spaces are refused."""
    error = parse_error(_feed("name: X", url=url))
    assert_error(error, 4, "groups.g.feeds[0].url", fragment)


def test_missing_local_file_names_resolved_path() -> None:
    """A `path:` whose file does not exist names the resolved path."""
    error = parse_error(
        "groups:\n  g:\n    feeds:\n      - path: ../data/missing.rss\n",
        file_exists=lambda _: False,
    )
    assert_error(
        error,
        4,
        "groups.g.feeds[0].path",
        "local feed file not found: /nonexistent/data/missing.rss",
    )


def test_missing_local_file_on_disk(tmp_path: Path) -> None:
    """With the real existence check, a missing file and a directory are both refused."""
    (tmp_path / "adir").mkdir()
    for name in ("nope.rss", "adir"):
        with pytest.raises(ConfigError) as info:
            parse_config(
                f"groups:\n  g:\n    feeds:\n      - path: {name}\n", tmp_path / "feeds.yaml"
            )
        assert info.value.line == 4
        assert str(tmp_path / name) in info.value.message


def test_file_exists_oserror_becomes_config_error() -> None:
    """An OSError while checking a local file is reported, not raised raw."""

    def denied(_: Path) -> bool:
        raise PermissionError(13, "Permission denied")

    error = parse_error("groups:\n  g:\n    feeds:\n      - path: x.rss\n", file_exists=denied)
    assert_error(error, 4, "groups.g.feeds[0].path", "cannot check local feed file")


# --- duplicates across the file -------------------------------------------------------------


def test_duplicate_url_across_groups() -> None:
    """The same URL in two groups (scheme and host case differing) names the first line."""
    error = parse_error("""
        groups:
          a:
            feeds:
              - name: One
                url: https://News.Example.org/rss
          b:
            feeds:
              - name: Two
                url: HTTPS://news.example.ORG:443/rss#top
    """)
    assert_error(error, 9, "groups.b.feeds[0].url", "already declared on line 4 (group 'a')")
    assert "duplicate feed" in error.message


def test_url_path_is_case_sensitive_for_duplicates() -> None:
    """Only scheme and host are case-insensitive: /RSS and /rss are different feeds."""
    config = parse("""
        groups:
          a:
            feeds:
              - {name: One, url: "https://example.org/rss"}
              - {name: Two, url: "https://example.org/RSS"}
              - {name: Three, url: "http://example.org/rss"}
    """)
    assert len(config.feeds) == 3


def test_duplicate_path_across_groups() -> None:
    """Two spellings of the same local file, in different groups, are one feed twice."""
    error = parse_error("""
        groups:
          a:
            feeds:
              - path: seeds/x.rss
          b:
            feeds:
              - name: Other
                path: ./seeds/../seeds/x.rss
    """)
    assert_error(error, 8, "groups.b.feeds[0].path", "already declared on line 4")


def test_duplicate_feed_names() -> None:
    """Feed names are unique across groups, compared case-insensitively."""
    error = parse_error("""
        groups:
          a:
            feeds:
              - name: Le Monde
                url: https://www.lemonde.fr/rss/une.xml
          b:
            feeds:
              - name: le monde
                url: https://www.lemonde.fr/rss/en_continu.xml
    """)
    assert_error(
        error, 8, "groups.b.feeds[0].name", "duplicate feed name 'le monde' (first used on line 4)"
    )


def test_duplicate_derived_names_suggest_setting_a_name() -> None:
    """Two unnamed feeds whose derived names collide are told to set `name:`."""
    error = parse_error("""
        groups:
          a:
            feeds:
              - url: https://example.org/rss
              - url: http://example.org/rss
    """)
    assert_error(error, 5, "groups.a.feeds[1].name", "set a distinct 'name:'")


# --- hostile or odd input never escapes as a raw exception ----------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "? [a, b]\n: 1\n",
        "groups:\n  ? {a: 1}\n  : {feeds: []}\n",
        "groups: !!python/object/apply:os.system ['true']\n",
        "groups:\n  g: !custom {feeds: []}\n",
        "groups:\n  g:\n    feeds: !!omap [{a: 1}]\n",
        "groups: !!set {a}\n",
        "groups:\n  g:\n    feeds:\n      - url: !!binary aGVsbG8=\n",
        "groups:\n  g:\n    feeds:\n      - &a [*a]\n",
        "groups:\n  g:\n    feeds: 2024-01-01\n",
        "settings:\n  canonical: [[priority]]\ngroups: {}\n",
        'groups:\n  g:\n    feeds:\n      - path: "a\\0b"\n',
        "groups: !!str\n",
        "3\n",
        "~\n",
    ],
)
def test_odd_input_gives_config_error(text: str) -> None:
    """Odd tags, complex keys, recursion and NUL bytes all end in ConfigError."""
    error = parse_error(text)
    assert error.line is not None


# --- load_config ----------------------------------------------------------------------------


def test_load_config_missing_file(tmp_path: Path) -> None:
    """A missing config file is a ConfigError naming the file."""
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.path == path
    assert str(info.value) == f"{path}: config file not found"


def test_load_config_directory(tmp_path: Path) -> None:
    """A directory given as config file is a ConfigError naming it."""
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert str(info.value).startswith(f"{tmp_path}:")
    assert "directory" in info.value.message


def test_load_config_non_utf8(tmp_path: Path) -> None:
    """Latin-1 bytes are refused with the line of the first bad byte."""
    path = tmp_path / "feeds.yaml"
    path.write_bytes("groups:\n  g:\n    feeds:\n      - name: Caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.line == 4
    assert "UTF-8" in info.value.message
    assert str(info.value).startswith(f"{path}:4:")


def test_load_config_reports_errors_with_the_file_path(tmp_path: Path) -> None:
    """Validation errors from load_config name the file that was read."""
    path = tmp_path / "feeds.yaml"
    path.write_text("groups:\n  g:\n    feedz: []\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == (
        f"{path}:3: groups.g.feedz: unknown key 'feedz' (did you mean 'feeds'?)"
    )


# --- parse_duration / parse_size ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("30m", timedelta(minutes=30)),
        ("2h", timedelta(hours=2)),
        ("1d", timedelta(days=1)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1d12h", timedelta(days=1, hours=12)),
        ("1h 30m 15s", timedelta(hours=1, minutes=30, seconds=15)),
        (" 12h ", timedelta(hours=12)),
        ("2H", timedelta(hours=2)),
        ("0s", timedelta(0)),
    ],
)
def test_parse_duration_valid(text: str, expected: timedelta) -> None:
    """Durations with units d, h, m, s, alone or combined largest first."""
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("30", "has no unit"),
        ("1.5", "has no unit"),
        ("", "invalid duration"),
        ("h", "invalid duration"),
        ("1.5h", "invalid duration"),
        ("-5m", "invalid duration"),
        ("30m1h", "invalid duration"),
        ("1h1h", "invalid duration"),
        ("10ms", "invalid duration"),
        ("3w", "invalid duration"),
        ("9999999999999d", "invalid duration"),
    ],
)
def test_parse_duration_invalid(text: str, fragment: str) -> None:
    """Anything else raises ValueError with a message for the user."""
    with pytest.raises(ValueError, match=fragment):
        parse_duration(text)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, 0),
        (2048, 2048),
        ("2048", 2048),
        ("512B", 512),
        ("1KB", 1000),
        ("1KiB", 1024),
        ("15MiB", 15 * 1024 * 1024),
        ("15 MB", 15_000_000),
        ("1GB", 10**9),
        ("2GiB", 2 * 1024**3),
        ("1.5MiB", 1536 * 1024),
        ("10kib", 10240),
    ],
)
def test_parse_size_valid(value: object, expected: int) -> None:
    """Ints are bytes; strings take B, KB, KiB, MB, MiB, GB, GiB."""
    assert parse_size(value) == expected


@pytest.mark.parametrize(
    "value",
    [True, False, -1, 1.5, None, [1], "", "MiB", "15 MiBs", "1TB", "0.5B", "-1KB", "1e6", "one"],
)
def test_parse_size_invalid(value: object) -> None:
    """Bools, floats, negatives, fractions of a byte and unknown units raise ValueError."""
    with pytest.raises(ValueError):
        parse_size(value)


# --- fetch credentials and parse limits (ingest issue) -------------------------------------


def test_credentials_and_parse_settings() -> None:
    """username/password reach the FeedSpec; parse limits and max_entries reach Settings."""
    config = parse(
        """
        settings:
          max_entries: 50
          parse_timeout: 30s
          parse_memory: 256MiB
        groups:
          private:
            feeds:
              - url: https://example.com/feed
                username: reader
                password: "s3cr:et"
        """
    )
    (spec,) = config.feeds
    assert (spec.username, spec.password) == ("reader", "s3cr:et")
    assert config.settings.max_entries == 50
    assert config.settings.parse_timeout == 30.0
    assert config.settings.parse_memory == 256 * 1024 * 1024


@pytest.mark.parametrize(
    ("feed", "line", "key", "fragment"),
    [
        ("url: https://e.com/f\n    password: x", 4, "groups.g.feeds[0].username",
         "a 'password' needs a 'username'"),
        ("url: https://e.com/f\n    username: 'a:b'", 5, "groups.g.feeds[0].username",
         "must not contain ':'"),
        ("path: f.xml\n    username: a", 5, "groups.g.feeds[0].username",
         "credentials only apply to 'url' feeds"),
        ("url: https://e.com/f\n    username: 12", 5, "groups.g.feeds[0].username",
         "must be a string"),
    ],
)  # fmt: skip
def test_credential_errors(feed: str, line: int, key: str, fragment: str) -> None:
    """Credentials are refused with file:line:key when incomplete, ambiguous or misplaced."""
    text = "groups:\n  g:\n    feeds:\n      - " + feed.replace("\n    ", "\n        ")
    assert_error(parse_error(text), line, key, fragment)


@pytest.mark.parametrize(
    ("setting", "fragment"),
    [
        ("max_entries: 0", "must be between 1 and"),
        ("parse_timeout: 0s", "must be between 1s and 5m"),
        ("parse_memory: 1MiB", "must be at least 64MiB"),
    ],
)
def test_parse_setting_bounds(setting: str, fragment: str) -> None:
    """Parse limits outside their bounds are refused with the key named."""
    error = parse_error(f"settings:\n  {setting}\ngroups: {{}}\n")
    assert_error(error, 2, f"settings.{setting.split(':')[0]}", fragment)


def test_settings_table_defaults_are_the_built_in_defaults() -> None:
    """Each documented default, parsed, is the `Settings` default: the two cannot drift."""
    text = documented_settings() + "groups: {}\n"
    assert parse_config(text, CONFIG_PATH).settings == Settings()
    assert {spec.attribute for spec in SETTINGS} == set(Settings.__dataclass_fields__)


def test_config_feeds_yaml_documents_every_setting_from_the_table() -> None:
    """The `settings:` block of config/feeds.yaml is the one the table writes.

    After changing a setting, paste the output of
    `python -c "from aggregator.config import documented_settings as d; print(d(), end='')"`.
    """
    text = (REPO_CONFIG_DIR / "feeds.yaml").read_text(encoding="utf-8")
    assert documented_settings() in text


def test_every_setting_is_validated_by_its_table_row() -> None:
    """A value outside a row's range is refused with the row's key named."""
    for spec in SETTINGS:
        with pytest.raises(ConfigError, match=spec.key):
            parse_config(f"settings:\n  {spec.key}: [nonsense]\ngroups: {{}}\n", CONFIG_PATH)
