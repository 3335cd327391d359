"""The version is stated once in effect: the package, its metadata and the changelog agree,
and the changelog keeps the Keep a Changelog shape (each kind of change once per release)."""

from __future__ import annotations

import re
import tomllib
from collections import Counter
from pathlib import Path

import aggregator

ROOT = Path(__file__).parents[2]
KINDS = {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}


def releases() -> list[tuple[str, list[str]]]:
    """(version, its `###` section names) for each `## [...]` heading of the changelog."""
    found: list[tuple[str, list[str]]] = []
    for line in (ROOT / "CHANGELOG.md").read_text(encoding="utf-8").splitlines():
        if heading := re.match(r"## \[([^\]]+)\]", line):
            found.append((heading.group(1), []))
        elif line.startswith("### "):
            found[-1][1].append(line[4:].strip())
    return found


def test_package_metadata_and_changelog_name_one_version() -> None:
    """pyproject.toml, `aggregator.__version__` and the newest release agree."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    names = [version for version, _ in releases()]
    assert names[0] == "Unreleased"
    assert project["version"] == aggregator.__version__ == names[1]


def test_each_release_lists_each_kind_of_change_once() -> None:
    """Sections are Keep a Changelog's kinds, none repeated within a release."""
    for version, sections in releases():
        assert set(sections) <= KINDS, (version, sections)
        assert [kind for kind, n in Counter(sections).items() if n > 1] == [], version
