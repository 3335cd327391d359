"""The pages in a real browser: headless Chromium on pages served from 127.0.0.1.

Skipped when Chromium, ChromeDriver or Selenium is absent on a developer's machine; in CI
(CI set in the environment) their absence is a failure, because `.ci/run` installs them.
A test fails on any dialog or console error: a script that ran, a resource that failed,
or a Content-Security-Policy violation.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from aggregator.digest import build_digest, make_query
from aggregator.render.html import render_html
from aggregator.store import open_store
from tests.conftest import MAISON_BLANCHE
from tests.support.browser import (
    SEED_NOW,
    browser_missing,
    full_page_screenshot,
    headless_chromium,
    page_problems,
    seed_database,
    served,
)
from tests.support.hostile import (
    HOSTILE_SUBJECTS,
    ingest,
    sanitize_corpus_specs,
    write_hostile_feeds,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# How long a click may take to land on the next page before the test gives up (a bound
# against hanging, not a speed requirement).
NAVIGATION_WAIT_S = 30


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    reason = browser_missing()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"the browser tests must run in CI: {reason}")
        pytest.skip(reason)
    with headless_chromium() as chromium:
        yield chromium


@pytest.fixture(scope="module")
def seed_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return seed_database(tmp_path_factory.mktemp("browser") / "seed.db")


def css(driver: Any, selector: str) -> list[Any]:
    return list(driver.find_elements("css selector", selector))


def visit_all(driver: Any, base_url: str, paths: list[str]) -> dict[str, list[str]]:
    """Load each page; the problems seen on each (dialogs, console errors)."""
    problems = {}
    for path in paths:
        driver.get(base_url + path)
        found = page_problems(driver)
        if found:
            problems[path] = found
    return problems


def click_and_wait(driver: Any, element: Any, url_part: str) -> None:
    """Click, then wait until the browser has navigated to an address containing
    `url_part` (a click returns before the next page has loaded)."""
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.wait import WebDriverWait

    element.click()
    WebDriverWait(driver, NAVIGATION_WAIT_S).until(expected_conditions.url_contains(url_part))


def event_paths(driver: Any, base_url: str, index: str) -> list[str]:
    """The index page's events, as the paths of their event pages."""
    driver.get(base_url + index)
    ids = [item.get_attribute("id").removeprefix("event-") for item in css(driver, "li.event")]
    return [f"/event/{event_id}" for event_id in ids]


def test_the_problem_check_sees_dialogs_and_console_errors(driver: Any) -> None:
    """The check every other test relies on does catch a script that runs."""
    driver.get("data:text/html,<script>alert('ran')</script>")
    assert page_problems(driver) == ["dialog opened: 'ran'"]
    driver.get("data:text/html,<script>console.error('broken')</script>")
    assert any("broken" in problem for problem in page_problems(driver))


def test_seed_digest_event_page_search_and_feeds(
    driver: Any, seed_db: Path, tmp_path: Path
) -> None:
    """The seed digest as a reader sees it: six events, the copy linked, the styles applied,
    a click to why they are grouped, a search through the form, the feeds page."""
    with served(seed_db) as base_url:
        driver.get(base_url + "/")
        assert driver.title == "Digest · aggregator"
        events = css(driver, "li.event")
        assert len(events) == 6
        first = events[0]
        assert first.find_element("css selector", "h3").text == MAISON_BLANCHE
        copies = first.find_elements("css selector", ".also a")
        assert [copy.text for copy in copies] == ["Seed 003 — related headlines"]
        assert copies[0].get_attribute("href").startswith("https://seeds.invalid/003/related/3-")
        # /style.css was allowed by the CSP and applied.
        assert "Charter" in first.find_element("css selector", "h3").value_of_css_property(
            "font-family"
        )
        assert page_problems(driver) == []
        shot = full_page_screenshot(driver, tmp_path / "digest.png")
        assert shot.read_bytes().startswith(PNG_SIGNATURE) and shot.stat().st_size > 20_000

        click_and_wait(driver, first.find_element("link text", "Why these are grouped"), "/event/")
        assert re.search(r"/event/\d+$", driver.current_url)
        assert css(driver, "h1")[0].text == MAISON_BLANCHE
        rows = css(driver, "table.members tbody tr")
        assert len(rows) == 2
        assert "first item of the event" in rows[0].text
        assert "near-duplicate of #1 (same headline; similarity" in rows[1].text
        assert "shown" in rows[1].text
        assert page_problems(driver) == []

        box = css(driver, "input[name=q]")[0]
        box.send_keys("Tesla")
        click_and_wait(driver, css(driver, "form.search button")[0], "/search?q=Tesla")
        assert len(css(driver, "li.event")) == 1
        assert page_problems(driver) == []

        click_and_wait(driver, driver.find_element("link text", "Feeds"), "/feeds")
        assert len(css(driver, "tbody tr")) == 2
        assert page_problems(driver) == []


def test_standalone_html_file(driver: Any, seed_db: Path, tmp_path: Path) -> None:
    """`digest --format html` opened from disk: styled by its own hashed <style>, the
    explanation behind a <details> click, nothing blocked, nothing run."""
    store = open_store(seed_db, create=False)
    try:
        query = make_query(now=SEED_NOW)
        digest = build_digest(store.find_events(query), now=SEED_NOW, query=query)
    finally:
        store.close()
    page = tmp_path / "digest.html"
    page.write_text(render_html(digest), encoding="utf-8")
    driver.get(page.as_uri())
    assert len(css(driver, "li.event")) == 6
    assert "Charter" in css(driver, "h3")[0].value_of_css_property("font-family")
    css(driver, "details.why summary")[0].click()
    assert "near-duplicate of #1" in css(driver, "details.why table")[0].text
    assert page_problems(driver) == []


def test_hostile_feeds_run_no_script(driver: Any, tmp_path: Path) -> None:
    """Section 8 group D, ingested by the pipeline: every page loads without a dialog or
    a console error (so nothing ran and nothing was even blocked by the CSP)."""
    db = tmp_path / "hostile.db"
    ingest(db, write_hostile_feeds(tmp_path / "feeds"), now=SEED_NOW)
    with served(db) as base_url:
        events = event_paths(driver, base_url, "/?since=all")
        pages = ["/?since=all", "/feeds", "/search?q=alert", *events]
        assert visit_all(driver, base_url, pages) == {}
        shown = ""
        for path in events:
            driver.get(base_url + path)
            shown += driver.find_element("tag name", "body").text
        assert [word for word in HOSTILE_SUBJECTS if word not in shown] == []
        driver.get(base_url + "/?since=all")
        assert "Serialiser breakers ]]> </title> & < 𝕏 😀" in driver.page_source.replace(
            "&gt;", ">"
        ).replace("&lt;", "<").replace("&amp;", "&")


@pytest.mark.shared
def test_feedparser_sanitize_corpus_runs_no_script(
    driver: Any, tmp_path: Path, shared_data: Callable[[str], Path]
) -> None:
    """Every XSS case of feedparser's sanitize corpus, ingested and rendered: the digest,
    the feeds page and every event page load with no dialog and no console error."""
    specs = sanitize_corpus_specs(shared_data("feedparser-tests/tests/wellformed/sanitize"))
    db = tmp_path / "corpus.db"
    ingest(db, specs, now=SEED_NOW)
    with served(db) as base_url:
        index = "/?since=all&limit=5000"
        events = event_paths(driver, base_url, index)
        assert len(events) > 300
        assert visit_all(driver, base_url, [index, "/feeds", *events]) == {}


def submit_and_wait(driver: Any, button: Any) -> None:
    """Click a form button and wait until the page it led to has replaced this one."""
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.wait import WebDriverWait

    button.click()
    WebDriverWait(driver, NAVIGATION_WAIT_S).until(expected_conditions.staleness_of(button))


def test_marking_read_and_starring_in_the_browser(driver: Any, tmp_path: Path) -> None:
    """In Chromium, with the page's CSP: "Read up to here" on the second event leaves four
    unread; Star on the next shows it under starred; no dialog, no console error (a form the
    CSP blocked would be one)."""
    db = seed_database(tmp_path / "marks.db")
    with served(db) as base_url:
        driver.get(base_url + "/")
        events = css(driver, "li.event")
        assert len(events) == 6 and "6 unread" in driver.page_source
        second = events[1].find_element("xpath", ".//button[text()='Read up to here']")
        submit_and_wait(driver, second)
        assert page_problems(driver) == []
        assert len(css(driver, "li.event")) == 4 and "4 unread" in driver.page_source
        first = css(driver, "li.event")[0]
        starred_id = first.get_attribute("id")
        submit_and_wait(driver, first.find_element("xpath", ".//button[text()='Star']"))
        driver.get(base_url + "/?show=starred")
        assert [item.get_attribute("id") for item in css(driver, "li.event")] == [starred_id]
        assert page_problems(driver) == []
