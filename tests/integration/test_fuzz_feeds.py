"""One hostile feed fails alone: a fuzz test over randomly mutated real feeds.

Each round serves `SLOTS` mutated copies of real feeds from ../shared/data (RSS, RDF,
Atom, a JSON Feed; `tests.support.mutations`: byte flips, truncation, UTF-16/32, entity
declarations in odd places, comments and processing instructions, hostile numbers and
dates, lone surrogates and NULs) next to one healthy feed (a real file, never mutated), all
on a real HTTP server on 127.0.0.1, and runs one `update --all` pass over them:

* `ROUNDS` passes through the real pipeline in this process (one database, the parse
  workers kept between passes, as in the daemon), the bulk of the cases;
* `CLI_ROUNDS` passes through the real CLI (`python -m aggregator update --all`) in a
  subprocess, so that what reaches the user's terminal and the log is checked too.

After every pass: the healthy feed was stored; every mutated feed is `ok` or failed with a
non-empty reason, never one of the reasons that mean a bug (`internal:...`,
`prepare_crash:...`, a `parser_crash:...` raised by our own code); no log record at ERROR,
no traceback, no crash report, exit status 0; each stored entry holds at most a few MB of
text, the database stays under `MAX_DB_BYTES`; the peak RSS of the processes stays under
`MAX_RSS_BYTES`.

The randomness is one fixed seed; each feed of each round has its own generator
(`random.Random(f"{SEED}/{round}/{slot}")`), so any failure names the seed, the round, the
feed, its source and its mutations, and one round replays on its own::

    python -m tests.integration.test_fuzz_feeds 17          # parse each case in-process
    python -m tests.integration.test_fuzz_feeds 17 --write /tmp/round17   # and save them

A longer hunt: `FUZZ_ROUNDS=700 FUZZ_CLI_ROUNDS=20 FUZZ_SEED=7 pytest tests/integration/...`.
The peak RSS counts this process and the children it waited for (the CLI processes, the
parse workers it closed); a CLI's own parse workers count when the CLI waited for them.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import resource
import sqlite3
import subprocess
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aggregator.config import parse_config
from aggregator.errors import ParseError
from aggregator.ingest.parse import parse_feed
from aggregator.ingest.prepare import normalize_feed
from aggregator.models import FeedReport
from aggregator.pipeline import Pipeline
from aggregator.store import open_store
from tests.conftest import REPO, SHARED
from tests.support.clock import FixedClock
from tests.support.http_server import LocalHTTPServer
from tests.support.mutations import JSON, XML, apply_all, choose

pytestmark = pytest.mark.shared

# FUZZ_SEED, FUZZ_ROUNDS and FUZZ_CLI_ROUNDS change them for a longer hunt; the suite runs
# the defaults.
SEED = int(os.environ.get("FUZZ_SEED", "20261206"))
ROUNDS = int(os.environ.get("FUZZ_ROUNDS", "150"))  # in-process passes (rounds 0 .. ROUNDS - 1)
CLI_ROUNDS = int(os.environ.get("FUZZ_CLI_ROUNDS", "10"))  # rounds ROUNDS .. + CLI_ROUNDS - 1
SLOTS = 4  # mutated feeds per pass, next to the healthy one
MiB = 1024 * 1024
MAX_ENTRY_BYTES = 4 * MiB  # every stored text column of one entry, together
MAX_DB_BYTES = 50 * MiB  # the database file and its WAL
MAX_RSS_BYTES = 1024 * MiB  # peak resident memory of any process involved
START = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
# Reasons that mean a bug, not a hostile document.
BUG_REASONS = ("internal:", "prepare_crash:")
SETTINGS = """
settings:
  fetch_timeout: 5s
  parse_timeout: 5s
  max_entries: 200
"""


@dataclass(frozen=True, slots=True)
class Source:
    name: str
    path: str  # under ../shared/data
    content_type: str
    kind: str  # XML or JSON


SOURCES = (
    Source("rss-liberation-sciences", "feeds-fr-2025-02-10/feeds/liberation-sciences.xml",
           "application/rss+xml", XML),  # ttl, sy:updateFrequency, media:content
    Source("rss-bfmtv-metz", "feeds-fr-2025-02-10/feeds/bfmtv-metz.xml",
           "application/rss+xml", XML),  # enclosures
    Source("atom-miniflux-small", "feeds-news-misc/miniflux-testdata/parser/small_atom.xml",
           "application/atom+xml", XML),
    Source("rdf-heise", "feeds-news-misc/miniflux-testdata/parser/rdf_UTF8.xml",
           "application/rdf+xml", XML),
    Source("rss-latin1-undeclared",
           "feeds-news-misc/miniflux-testdata/parser/no_encoding_ISO-8859-1.xml",
           "application/xml", XML),
    Source("jsonfeed-example", "feedparser-tests/tests/json/example.json",
           "application/feed+json", JSON),
)  # fmt: skip
HEALTHY = Source("healthy", "feeds-news-misc/simple-feed-parser-2018/humanite-actu-2018-12-19.xml",
                 "application/rss+xml", XML)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Case:
    """One mutated feed of one round."""

    round: int
    slot: int
    source: Source
    mutations: tuple[str, ...]
    body: bytes

    @property
    def feed(self) -> str:
        return f"fuzz-{self.slot}"

    def describe(self) -> str:
        return (
            f"seed={SEED} round={self.round} feed={self.feed} source={self.source.name} "
            f"mutations={'+'.join(self.mutations)} ({len(self.body)} bytes; replay: "
            f"FUZZ_SEED={SEED} python -m tests.integration.test_fuzz_feeds {self.round})"
        )


def plan_round(number: int, read: Callable[[str], bytes]) -> list[Case]:
    """The mutated feeds of round `number`: a pure function of the seed and the round."""
    cases = []
    for slot in range(SLOTS):
        rng = random.Random(f"{SEED}/{number}/{slot}")
        source = rng.choice(SOURCES)
        names = tuple(choose(rng, source.kind))
        cases.append(Case(number, slot, source, names, apply_all(read(source.path), names, rng)))
    return cases


def shared_reader(root: Path) -> Callable[[str], bytes]:
    cache: dict[str, bytes] = {}

    def read(relative: str) -> bytes:
        if relative not in cache:
            cache[relative] = (root / relative).read_bytes()
        return cache[relative]

    return read


def serve(server: LocalHTTPServer, cases: list[Case], healthy: bytes) -> None:
    server.serve_bytes("/healthy", healthy, content_type=HEALTHY.content_type)
    for case in cases:
        server.serve_bytes(f"/{case.feed}", case.body, content_type=case.source.content_type)


def config_text(server: LocalHTTPServer) -> str:
    lines = [SETTINGS, "groups:", "  fuzz:", "    allow_private: true", "    feeds:"]
    for name in ["healthy", *(f"fuzz-{slot}" for slot in range(SLOTS))]:
        lines += [f"      - name: {name}", f"        url: {server.url('/' + name)}"]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------ the checks


def parser_crash_origin(case: Case) -> str | None:
    """Where a `parser_crash` of `case` was raised, when that is our own code (a bug the
    reason would hide); None when it came from feedparser or another library."""
    try:
        parse_feed(case.body, headers={"content-type": case.source.content_type})
    except ParseError as exc:
        cause = exc.__cause__
        if not exc.reason.startswith("parser_crash:") or cause is None:
            return None
        frames = traceback.extract_tb(cause.__traceback__)
        last = frames[-1] if frames else None
        if last is not None and Path(last.filename).is_relative_to(REPO / "aggregator"):
            return f"{type(cause).__name__} raised at {last.filename}:{last.lineno} ({last.name})"
    return None


def feed_problems(cases: list[Case], errors: dict[str, tuple[str, str | None]]) -> list[str]:
    """What is wrong with the mutated feeds' outcomes. `errors`: feed -> (status, reason),
    as the pass reported it (or the store holds it)."""
    problems = []
    for case in cases:
        if case.feed not in errors:
            problems.append(f"no outcome recorded: {case.describe()}")
            continue
        status, reason = errors[case.feed]
        if status == "ok":
            continue
        if status != "error":
            problems.append(f"unexpected status {status!r}: {case.describe()}")
        elif not reason:
            problems.append(f"failed without a reason: {case.describe()}")
        elif reason.startswith(BUG_REASONS):
            problems.append(f"failed with a bug reason {reason!r}: {case.describe()}")
        elif reason.startswith("parser_crash:") and (origin := parser_crash_origin(case)):
            problems.append(f"{reason} from our own code, {origin}: {case.describe()}")
    return problems


def storage_problems(db: Path, label: str) -> list[str]:
    """Entries over `MAX_ENTRY_BYTES` of text, a database over `MAX_DB_BYTES`."""
    problems = []
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
        row = connection.execute(
            "select max(coalesce(length(cast(title as blob)), 0)"
            " + coalesce(length(cast(text as blob)), 0) + coalesce(length(cast(html as blob)), 0)"
            " + coalesce(length(cast(author as blob)), 0) + coalesce(length(cast(guid as blob)), 0)"
            " + coalesce(length(cast(url as blob)), 0)"
            " + coalesce(length(cast(canonical_url as blob)), 0)), count(*) from entries"
        ).fetchone()
    connection.close()
    largest, count = row if row is not None else (0, 0)
    if (largest or 0) > MAX_ENTRY_BYTES:
        problems.append(f"{label}: an entry stores {largest} bytes of text (of {count} entries)")
    size = sum(p.stat().st_size for p in (db, db.with_name(db.name + "-wal")) if p.exists())
    if size > MAX_DB_BYTES:
        problems.append(f"{label}: the database holds {size} bytes")
    return problems


def rss_problems(label: str) -> list[str]:
    """Peak RSS of this process and of its waited-for children over `MAX_RSS_BYTES`."""
    problems = []
    for who, scope in (("this process", resource.RUSAGE_SELF),
                       ("a child process", resource.RUSAGE_CHILDREN)):  # fmt: skip
        peak = resource.getrusage(scope).ru_maxrss * 1024  # KiB on Linux
        if peak > MAX_RSS_BYTES:
            problems.append(f"{label}: {who} peaked at {peak // MiB} MiB")
    return problems


def report(problems: list[str]) -> str:
    shown = problems[:30]
    more = f"\n... and {len(problems) - len(shown)} more" if len(problems) > len(shown) else ""
    return f"{len(problems)} problems:\n" + "\n".join(shown) + more


# ------------------------------------------------------------------------ in-process passes


@pytest.fixture
def sources(shared_data: Callable[[str], Path]) -> Callable[[str], bytes]:
    for source in (*SOURCES, HEALTHY):
        shared_data(source.path)  # skips when ../shared is absent
    return shared_reader(SHARED / "data")


def test_mutated_feeds_fail_alone_in_the_pipeline(
    sources: Callable[[str], bytes], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """`ROUNDS` pipeline passes, each over `SLOTS` mutated real feeds and a healthy one on
    the same host: the healthy feed is stored every time, every mutated feed is ok or
    failed with its reason (never a bug's), nothing is logged at ERROR or with a
    traceback, entries and the database stay bounded, and so does memory."""
    caplog.set_level(logging.WARNING)
    clock = FixedClock(START)
    healthy = sources(HEALTHY.path)
    problems: list[str] = []
    outcomes: dict[str, int] = {}
    with LocalHTTPServer() as server:
        config = parse_config(config_text(server), tmp_path / "feeds.yaml")
        store = open_store(tmp_path / "fuzz.db")
        pipeline = Pipeline(store=store, config=config, clock=clock)
        healthy_count: int | None = None
        try:
            for number in range(ROUNDS):
                cases = plan_round(number, sources)
                serve(server, cases, healthy)
                caplog.clear()
                reports: dict[str, FeedReport] = {
                    r.feed: r for r in pipeline.run(all_feeds=True).feeds
                }
                states = {s.name: s for s in store.feed_states()}
                label = f"seed={SEED} round={number}"
                fine = reports.get("healthy")
                state = states["healthy"]
                if fine is None or fine.status != "ok" or state.last_success != clock():
                    problems.append(f"{label}: the healthy feed did not update: {fine}")
                healthy_count = healthy_count or state.entry_count
                if state.entry_count < max(1, healthy_count):
                    problems.append(f"{label}: the healthy feed has {state.entry_count} entries")
                errors = {name: (r.status, r.error) for name, r in reports.items()}
                problems += feed_problems(cases, errors)
                for case in cases:
                    stored = states[case.feed]
                    reported = reports.get(case.feed)
                    if (
                        reported is not None
                        and reported.status == "error"
                        and (stored.status, stored.error) != ("error", reported.error)
                    ):
                        problems.append(
                            f"stored {stored.status}/{stored.error!r}, reported "
                            f"{reported.error!r}: {case.describe()}"
                        )
                    outcome = reported.error or reported.status if reported else "missing"
                    outcomes[outcome] = outcomes.get(outcome, 0) + 1
                for record in caplog.records:
                    unhandled = record.exc_info or "Traceback" in record.getMessage()
                    if record.levelno >= logging.ERROR or unhandled:
                        problems.append(f"{label}: logged {record.levelname}: {record.message}")
                problems += storage_problems(tmp_path / "fuzz.db", label)
                clock.advance(timedelta(hours=1))
        finally:
            pipeline.close()
            store.close()
    problems += rss_problems(f"seed={SEED} rounds 0-{ROUNDS - 1}")
    assert not problems, report(problems)
    # The fuzzing reached both outcomes: documents that still parse, and refusals.
    assert outcomes.get("ok", 0) > 0 and len(outcomes) >= 3, outcomes


# ------------------------------------------------------------------------ CLI passes


def aggregator(*args: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    """The real CLI in a real process; crash reports would go to `tmp`."""
    return subprocess.run(
        [sys.executable, "-m", "aggregator", *args],
        cwd=REPO, capture_output=True, text=True, timeout=120,
        env={**os.environ, "TMPDIR": str(tmp), "PYTHONUTF8": "1"},
    )  # fmt: skip


def output_problems(result: subprocess.CompletedProcess[str], label: str) -> list[str]:
    """A traceback, an internal-error line or an ERROR log record in a CLI's output."""
    problems = []
    if "Traceback" in result.stdout + result.stderr:
        problems.append(f"{label}: a traceback reached the output:\n{result.stderr[-2000:]}")
    if "internal error" in result.stderr:
        problems.append(f"{label}: the last line of defence was reached: {result.stderr[-500:]}")
    for line in result.stderr.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            problems.append(f"{label}: stderr line that is not a log record: {line[:300]!r}")
            continue
        if record.get("level") in ("ERROR", "CRITICAL") or "exception" in record:
            problems.append(f"{label}: logged {record.get('level')}: {line[:500]}")
    return problems


def stored_outcomes(db: Path) -> dict[str, tuple[str, str | None, str | None]]:
    """feed name -> (status, error, last_success) as the database holds them."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
        rows = connection.execute("select name, status, error, last_success from feeds")
        outcomes = {name: (status, error, success) for name, status, error, success in rows}
    connection.close()
    return outcomes


def test_mutated_feeds_fail_alone_through_the_cli(
    sources: Callable[[str], bytes], tmp_path: Path
) -> None:
    """`CLI_ROUNDS` runs of the real `aggregator update --all` over `SLOTS` mutated real
    feeds and a healthy one: exit status 0 (the healthy feed always updates), no traceback
    or internal-error line on stdout or stderr, no ERROR record in the JSON log, no crash
    report written; every failed feed is listed with its reason and stored with it;
    entries, the database and the CLI's memory stay bounded. Then `aggregator feeds` and
    `aggregator status` show the result without a traceback."""
    crashes = tmp_path / "tmp"
    crashes.mkdir()
    db, config = tmp_path / "fuzz.db", tmp_path / "feeds.yaml"
    healthy = sources(HEALTHY.path)
    problems: list[str] = []
    with LocalHTTPServer() as server:
        config.write_text(config_text(server), encoding="utf-8")
        common = ("--config", str(config), "--db", str(db))
        last_success: str | None = None
        for number in range(ROUNDS, ROUNDS + CLI_ROUNDS):
            cases = plan_round(number, sources)
            serve(server, cases, healthy)
            label = f"seed={SEED} round={number} (CLI)"
            result = aggregator("update", "--all", *common, "--log-format", "json", tmp=crashes)
            if result.returncode != 0:
                problems.append(f"{label}: exit status {result.returncode}: {result.stderr[-500:]}")
            problems += output_problems(result, label)
            stored = stored_outcomes(db)
            status, _, success = stored.get("healthy", ("missing", None, None))
            if status != "ok" or success is None or success == last_success:
                problems.append(f"{label}: the healthy feed did not update ({status}, {success})")
            last_success = success
            problems += feed_problems(cases, {name: row[:2] for name, row in stored.items()})
            listed = dict(
                line.strip().removeprefix("failed: ").split(": ", 1)
                for line in result.stdout.splitlines()
                if line.strip().startswith("failed: ")
            )
            for case in cases:
                status, error, _ = stored.get(case.feed, ("missing", None, None))
                if status == "error" and listed.get(case.feed) != error:
                    problems.append(
                        f"stored reason {error!r}, printed {listed.get(case.feed)!r}: "
                        f"{case.describe()}"
                    )
            problems += storage_problems(db, label)
            problems += rss_problems(label)
        for command in ("feeds", "status"):
            shown = aggregator(command, *common, tmp=crashes)
            if shown.returncode != 0 or "Traceback" in shown.stdout + shown.stderr:
                problems.append(f"`aggregator {command}` failed: {shown.stderr[-1000:]}")
    problems += [f"crash report written: {path}" for path in crashes.glob("aggregator-crash-*")]
    assert not problems, report(problems)


# ------------------------------------------------------------------------ replay


def replay(number: int, write: Path | None = None) -> None:
    """Print each case of round `number` and what `parse_feed` and `normalize_feed` make
    of it in-process (the pipeline runs the same functions in its parse workers)."""
    for case in plan_round(number, shared_reader(SHARED / "data")):
        print(case.describe())
        if write is not None:
            write.mkdir(parents=True, exist_ok=True)
            (write / f"{case.feed}.bin").write_bytes(case.body)
        try:
            parsed = parse_feed(case.body, headers={"content-type": case.source.content_type})
        except ParseError as exc:
            print(f"  -> {exc.reason}: {exc.detail[:200]}")
            if exc.__cause__ is not None:
                traceback.print_exception(exc.__cause__)
        else:
            try:  # what the parse workers do next (`prepare`)
                entries = normalize_feed(parsed, f"http://127.0.0.1/{case.feed}")
            except Exception as exc:
                print(f"  -> parsed, normalising raised {type(exc).__name__}:")
                traceback.print_exception(exc)
                continue
            longest = max((len(e.html or "") + len(e.text) for e in entries), default=0)
            print(f"  -> ok: {len(entries)} entries, longest stored text {longest} chars, "
                  f"ttl={parsed.ttl_minutes}")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="replay one round of the fuzz test")
    parser.add_argument("round", type=int)
    parser.add_argument("--write", type=Path, help="also write each mutated feed here")
    options = parser.parse_args()
    replay(options.round, options.write)
