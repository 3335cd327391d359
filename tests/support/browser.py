"""Headless Chromium for the browser tests and the README screenshot (one code path).

The system's Chromium (`/usr/bin/chromium`) driven by its ChromeDriver through Selenium.
Chromium is started so that it cannot reach anything but 127.0.0.1: background networking,
component updates, sync and QUIC off, and every host name resolved to "not found" except
the loopback address; a fresh profile each time.

`page_problems` is the "no script ran" check: an open dialog (alert/confirm/prompt), or any
SEVERE entry in the browser console (a script error, a resource the page failed to load,
or a Content-Security-Policy violation, which Chromium reports there too) is a problem.

Run as a script, it writes the README screenshot:

    python -m tests.support.browser docs/screenshot.png
"""

from __future__ import annotations

import base64
import shutil
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aggregator.config import load_config
from aggregator.pipeline import Pipeline
from aggregator.store import open_store
from aggregator.web import WebApp, WebServer, loopback_hosts

REPO = Path(__file__).resolve().parents[2]
SEED_CONFIG = REPO / "config" / "feeds.yaml"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# The seed database is built and served at this instant, so the page (window, "generated
# at") looks the same on every run and in the README.
SEED_NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
WINDOW_SIZE = (1100, 900)

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",  # tests run as root in CI containers
    "--disable-gpu",
    "--disable-dev-shm-usage",  # containers often give /dev/shm 64 MB: Chromium would crash
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
    "--lang=en-US",
    # Nothing but 127.0.0.1 resolves: a page can never make the browser reach outside.
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
)


def browser_missing() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    if not CHROMIUM.exists() or not CHROMEDRIVER.exists():
        return f"{CHROMIUM} or {CHROMEDRIVER} is absent (Debian: chromium, chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    return None


@contextmanager
def headless_chromium() -> Iterator[Any]:
    """A Selenium WebDriver on a fresh headless Chromium; quit afterwards."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="aggregator-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument(f"--window-size={WINDOW_SIZE[0]},{WINDOW_SIZE[1]}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # Leave dialogs open so that the test sees them, instead of WebDriver dismissing them.
    options.set_capability("unhandledPromptBehavior", "ignore")
    # A driver path given explicitly: Selenium Manager (which downloads) never runs.
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def page_problems(driver: Any) -> list[str]:
    """Dialogs opened and console errors since the last call (the log is drained)."""
    from selenium.common.exceptions import NoAlertPresentException

    problems = []
    try:
        alert = driver.switch_to.alert
        problems.append(f"dialog opened: {alert.text!r}")
        alert.dismiss()
    except NoAlertPresentException:
        pass
    for entry in driver.get_log("browser"):
        if entry["level"] == "SEVERE":
            problems.append(f"console: {entry['message']}")
    return problems


def seed_database(db: Path | str, *, now: datetime = SEED_NOW) -> Path | str:
    """The seed feeds (config/feeds.yaml) through the real pipeline into `db`."""
    store = open_store(db)
    pipeline = Pipeline(store=store, config=load_config(SEED_CONFIG), clock=lambda: now)
    try:
        pipeline.run(all_feeds=True)
    finally:
        pipeline.close()
        store.close()
    return db


@contextmanager
def served(db: Path | str, *, now: datetime = SEED_NOW, **options: Any) -> Iterator[str]:
    """`aggregator serve` on 127.0.0.1 and a free port, in a thread; yields its base URL."""

    def make_app(port: int) -> WebApp:
        # As `aggregator serve` does: the Host check of a loopback server is on.
        options.setdefault("allowed_hosts", loopback_hosts("127.0.0.1", port))
        return WebApp(db, base_url=f"http://127.0.0.1:{port}", clock=lambda: now, **options)

    server = WebServer(("127.0.0.1", 0), make_app)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server.app.base_url
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def full_page_screenshot(driver: Any, path: Path) -> Path:
    """A PNG of the whole page, beyond the window (Chrome DevTools `captureScreenshot`)."""
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(base64.b64decode(shot["data"]))
    return path


def screenshot_seed_digest(path: Path) -> Path:
    """The README screenshot: the seed digest as served, in headless Chromium."""
    with tempfile.TemporaryDirectory() as work:
        db = seed_database(Path(work) / "seed.db")
        with served(db) as base_url, headless_chromium() as driver:
            driver.get(base_url + "/")
            problems = page_problems(driver)
            if problems:
                raise RuntimeError("; ".join(problems))
            return full_page_screenshot(driver, path)


if __name__ == "__main__":
    reason = browser_missing()
    if reason:
        sys.exit(f"cannot take the screenshot: {reason}")
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshot.png")
    print(screenshot_seed_digest(target))
