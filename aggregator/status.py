"""`aggregator status`: is the daemon running, is it ticking, which feeds fail and why.

`gather` reads the database (its caller asks who holds the writer lock); `feed_status`
(pure) decides each feed's state; `render_text` and `render_json` write it out. Reading
takes no lock and writes nothing, so it works while the daemon runs.

Feed states, for an operator: **ok** (last fetch worked or was not modified); **retrying**
(the last fetch failed, fewer than `schedule.FAILING_AFTER` times in a row: the reason and
the next try); **failing** (that many failures or more, as `aggregator feeds` says);
**new** (never fetched); **retired** (no longer fetched: removed from the config,
`enabled: false`, or retired after a 410 Gone). **due** is counted apart: enabled feeds
whose next fetch time has come.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from aggregator.lock import Holder
from aggregator.models import Config, FeedState
from aggregator.schedule import is_failing
from aggregator.store import Heartbeat, Store
from aggregator.store.records import Lease
from aggregator.urls import is_database_url

STATES = ("ok", "retrying", "failing", "new", "retired")
# A heartbeat older than this many ticks means the daemon is stuck or gone.
STALE_AFTER_TICKS = 3


@dataclass(frozen=True, slots=True)
class FeedStatus:
    name: str
    group: str
    state: str  # one of STATES
    due: bool
    reason: str | None  # why it fails or was retired
    failures: int
    last_success: datetime | None
    next_due: datetime | None
    entries: int


@dataclass(frozen=True, slots=True)
class Status:
    """Everything `aggregator status` shows."""

    generated_at: datetime
    database: str  # a path or a URL without its password
    database_bytes: int
    wal_bytes: int
    writer: Holder | None  # who holds the writer lock now
    heartbeat: Heartbeat | None
    config_path: Path
    config_error: str | None
    feeds: tuple[FeedStatus, ...]
    entries: int
    events: int
    tombstones: int
    maintenance: dict[str, datetime]
    leases: tuple[Lease, ...] = ()  # feeds fetch workers hold now (a shared database)
    staged: int = 0  # fetched updates the grouping leader has yet to apply

    @property
    def daemon_running(self) -> bool:
        command = self.writer.command if self.writer is not None else ""
        return command == "run" or command.startswith("run --role")

    @property
    def heartbeat_stale(self) -> bool:
        """The daemon holds the lock but has not ticked for several ticks."""
        beat = self.heartbeat
        if not self.daemon_running or beat is None or beat.tick_seconds is None:
            return False
        age = (self.generated_at - beat.last_tick).total_seconds()
        return age > STALE_AFTER_TICKS * beat.tick_seconds

    def count(self, state: str) -> int:
        return sum(1 for feed in self.feeds if feed.state == state)

    @property
    def due(self) -> int:
        return sum(1 for feed in self.feeds if feed.due)


def feed_status(state: FeedState, config: Config | None, now: datetime) -> FeedStatus:
    """One feed's state and reason (see the module docstring)."""
    reason: str | None = None
    if not state.enabled or state.retired:
        kind = "retired"
        reason = state.retired or _retired_reason(state, config)
    elif state.status == "error" or state.failures:
        kind = "failing" if is_failing(state.failures) else "retrying"
        reason = state.error
    elif state.status == "new":
        kind = "new"
    else:
        kind = "ok"
    due = kind != "retired" and (state.next_due is None or state.next_due <= now)
    return FeedStatus(
        name=state.name, group=state.group, state=kind, due=due, reason=reason,
        failures=state.failures, last_success=state.last_success, next_due=state.next_due,
        entries=state.entry_count,
    )  # fmt: skip


def _retired_reason(state: FeedState, config: Config | None) -> str:
    if config is None:
        return "disabled"
    spec = next((spec for spec in config.feeds if spec.location == state.location), None)
    return "removed from the config" if spec is None else "disabled in the config"


def gather(
    store: Store, *, config: Config | None, config_path: Path, config_error: str | None,
    now: datetime, writer: Holder | None,
) -> Status:  # fmt: skip
    """Read everything the status needs: the database, the lock file, file sizes."""
    counts = store.counts()
    database_bytes, wal_bytes = store.storage_bytes()
    return Status(
        generated_at=now,
        database=store.location,
        database_bytes=database_bytes,
        wal_bytes=wal_bytes,
        writer=writer,
        heartbeat=store.heartbeat(),
        config_path=config_path,
        config_error=config_error,
        feeds=tuple(feed_status(state, config, now) for state in store.feed_states()),
        entries=counts["entries"],
        events=counts["events"],
        tombstones=store.tombstone_count(),
        maintenance=store.maintenance_runs(),
        leases=tuple(store.leases(now)),
        staged=store.staged_count(),
    )


# -- text ----------------------------------------------------------------------------------


def render_text(status: Status) -> str:
    lines = [
        f"daemon       {_daemon_line(status)}",
        f"config       {_config_line(status)}",
        f"feeds        {_feeds_line(status)}",
        f"items        {status.entries} entries in {status.events} events; "
        f"{status.tombstones} tombstones of pruned entries",
        f"database     {status.database}: {_bytes(status.database_bytes)}"
        + ("" if is_database_url(status.database) else f" (WAL {_bytes(status.wal_bytes)})"),
        f"maintenance  {_maintenance_line(status)}",
    ]
    if status.leases or status.staged:
        lines.append(f"workers      {_workers_line(status)}")
    problems = [feed for feed in status.feeds if feed.state in ("retrying", "failing", "retired")]
    for feed in sorted(problems, key=lambda f: (f.state, f.group, f.name)):
        lines.append(f"  {feed.state:8} {feed.name} ({feed.group}): {_problem(feed)}")
    return "\n".join(lines) + "\n"


def _daemon_line(status: Status) -> str:
    beat = status.heartbeat
    writer = status.writer
    if status.daemon_running and writer is not None:
        line = f"running, pid {writer.pid if writer.pid is not None else '?'}"
        if beat is not None and beat.pid == writer.pid:
            line += f", started {_time(beat.started)}"
    elif writer is not None:
        line = f"not running; `{writer.command}` (pid {writer.pid}) is writing"
    else:
        line = "not running"
    if beat is not None:
        age = _age((status.generated_at - beat.last_tick).total_seconds())
        line += f"; last tick {_time(beat.last_tick)} ({age} ago, `{beat.command}`"
        line += f", every {beat.tick_seconds:g}s)" if beat.tick_seconds else ")"
    else:
        line += "; no tick recorded yet"
    if status.heartbeat_stale:
        line += " — STALE: the daemon holds the lock but has stopped ticking"
    return line


def _workers_line(status: Status) -> str:
    held: dict[str, int] = {}
    for lease in status.leases:
        held[lease.owner] = held.get(lease.owner, 0) + 1
    owners = ", ".join(f"{owner}: {count}" for owner, count in sorted(held.items()))
    return (
        f"{len(status.leases)} feeds leased to {len(held)} fetch workers"
        + (f" ({owners})" if owners else "")
        + f"; {status.staged} fetched updates waiting for the leader"
    )


def _config_line(status: Status) -> str:
    if status.config_error is not None:
        return f"{status.config_path}: INVALID: {status.config_error}"
    return f"{status.config_path}: valid"


def _feeds_line(status: Status) -> str:
    enabled = sum(1 for feed in status.feeds if feed.state != "retired")
    return (
        f"{enabled} enabled ({status.due} due now): {status.count('ok')} ok, "
        f"{status.count('retrying')} retrying, {status.count('failing')} failing, "
        f"{status.count('new')} never fetched; "
        f"{status.count('retired')} retired"
    )


def _maintenance_line(status: Status) -> str:
    if not status.maintenance:
        return "never run"
    return ", ".join(f"{name} {_time(when)}" for name, when in sorted(status.maintenance.items()))


def _problem(feed: FeedStatus) -> str:
    text = feed.reason or "?"
    if feed.state in ("retrying", "failing"):
        text += f", {feed.failures} failure{'s' if feed.failures != 1 else ''} in a row"
        if feed.next_due is not None:
            text += f", next try {_time(feed.next_due)}"
    return text


def _time(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC")


def _age(seconds: float) -> str:
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"


def _bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


# -- JSON ----------------------------------------------------------------------------------


def render_json(status: Status) -> str:
    beat = status.heartbeat
    writer = status.writer
    document = {
        "generated_at": _iso(status.generated_at),
        "daemon": {
            "running": status.daemon_running,
            "pid": writer.pid if writer is not None else None,
            "writer": writer.command if writer is not None else None,
            "last_tick": _iso(beat.last_tick) if beat else None,
            "last_tick_by": beat.command if beat else None,
            "started": _iso(beat.started) if beat else None,
            "tick_seconds": beat.tick_seconds if beat else None,
            "stale": status.heartbeat_stale,
        },
        "config": {"path": str(status.config_path), "error": status.config_error},
        "feeds": {
            "due": status.due,
            **{state: status.count(state) for state in STATES},
            "list": [
                {
                    "name": feed.name,
                    "group": feed.group,
                    "state": feed.state,
                    "due": feed.due,
                    "reason": feed.reason,
                    "failures": feed.failures,
                    "last_success": _iso(feed.last_success),
                    "next_due": _iso(feed.next_due),
                    "entries": feed.entries,
                }
                for feed in status.feeds
            ],
        },
        "entries": status.entries,
        "events": status.events,
        "tombstones": status.tombstones,
        "database": {
            "path": str(status.database),
            "bytes": status.database_bytes,
            "wal_bytes": status.wal_bytes,
        },
        "maintenance": {name: _iso(when) for name, when in sorted(status.maintenance.items())},
        "leases": [
            {"feed": lease.feed_name, "owner": lease.owner, "until": _iso(lease.until)}
            for lease in status.leases
        ],
        "staged": status.staged,
    }
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value is not None else None
