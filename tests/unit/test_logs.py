"""Log output: readable text lines in UTC, or one JSON object per line."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from aggregator.logs import JsonFormatter, configure_logging


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """configure_logging() sets up the root logger: give pytest's back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    scheduler_level = logging.getLogger("apscheduler").level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.getLogger("apscheduler").setLevel(scheduler_level)


def test_json_logs_are_one_object_per_line_with_extra_fields() -> None:
    """Each record is one JSON line with time, level, logger, message and its extras; an
    exception is one field, so the record stays on one line."""
    stream = io.StringIO()
    configure_logging(level="INFO", fmt="json", stream=stream)
    log = logging.getLogger("aggregator.test")
    log.info("feed='x' status=ok", extra={"feed": "x", "status": "ok", "new": 3})
    log.debug("not shown at INFO")
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("it failed")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["message"] == "feed='x' status=ok" and first["level"] == "INFO"
    assert (first["feed"], first["status"], first["new"]) == ("x", "ok", 3)
    assert first["logger"] == "aggregator.test" and first["time"].endswith("Z")
    assert second["level"] == "ERROR" and "ValueError: boom" in second["exception"]


def test_text_logs_are_readable_lines_in_utc() -> None:
    """Text: `<UTC time>Z LEVEL message`; APScheduler's per-run INFO lines are muted."""
    stream = io.StringIO()
    configure_logging(level="INFO", fmt="text", stream=stream)
    logging.getLogger("aggregator.test").warning("disk nearly full")
    logging.getLogger("apscheduler.executors").info("Running job tick")
    (line,) = stream.getvalue().splitlines()
    stamp, level, message = line.split(" ", 2)
    assert stamp.endswith("Z") and datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    assert (level, message) == ("WARNING", "disk nearly full")


def test_json_formatter_never_fails_on_odd_extras() -> None:
    """An extra that JSON cannot encode is written as text, not lost with the record."""
    record = logging.LogRecord("x", logging.INFO, "f", 1, "m", None, None)
    record.path = Path("/tmp/x")
    assert json.loads(JsonFormatter().format(record))["path"] == "/tmp/x"
