"""A real PostgreSQL server for the tests, from Debian's `postgresql` package: `initdb` and
`pg_ctl` in a temporary directory, listening on 127.0.0.1 only, run as an unprivileged
user when the tests run as root (PostgreSQL refuses to run as root).

`python -m tests.support.postgresql DIR` starts one by hand and prints its URL (the
benchmarks use it); stop it with `pg_ctl -D DIR/data stop`.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

SUPERUSER = "aggregator"
PASSWORD = "test-password-not-secret"


def binaries() -> Path | None:
    """The directory of initdb and pg_ctl, or None when PostgreSQL is not installed."""
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return Path(found).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True)
    return Path(candidates[0]).parent if candidates else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _run_as() -> str | None:
    """The user the server runs as: ourselves, or `nobody` when we are root."""
    return "nobody" if os.geteuid() == 0 else None


@dataclass
class Server:
    """One running server; `database()` makes a new empty database and returns its URL."""

    root: Path
    port: int
    bindir: Path
    _counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def data(self) -> Path:
        return self.root / "data"

    def url(self, database: str = "postgres", *, password: bool = True) -> str:
        secret = f":{PASSWORD}" if password else ""
        return f"postgresql://{SUPERUSER}{secret}@127.0.0.1:{self.port}/{database}"

    def database(self, prefix: str = "test") -> str:
        import psycopg

        name = f"{prefix}_{os.getpid()}_{next(self._counter)}"
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f'create database "{name}"')
        return self.url(name)

    def stop(self) -> None:
        _pg(self.bindir / "pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")


def _pg(*command: str | Path) -> None:
    done = subprocess.run(
        [str(part) for part in command], user=_run_as(), capture_output=True, text=True,
        cwd="/", check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"{Path(command[0]).name} failed: {done.stderr.strip()}")


def start(root: Path) -> Server:
    """initdb and start a server under `root` (which must not exist yet, or be empty)."""
    bindir = binaries()
    if bindir is None:
        raise RuntimeError("PostgreSQL is not installed (Debian: apt-get install postgresql)")
    root.mkdir(parents=True, exist_ok=True)
    password_file = root / "password"
    password_file.write_text(PASSWORD + "\n")
    user = _run_as()
    if user is not None:
        entry = pwd.getpwnam(user)
        for path in (root, password_file):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    root.chmod(0o700)
    _pg(
        bindir / "initdb", "-D", root / "data", "-U", SUPERUSER, f"--pwfile={password_file}",
        "--auth-local=trust", "--auth-host=scram-sha-256", "--encoding=UTF8",
        "--locale=C.UTF-8", "--no-sync",
    )  # fmt: skip
    port = _free_port()
    options = (
        f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={root}"
        " -c fsync=off -c full_page_writes=off -c max_connections=200"
        " -c shared_buffers=64MB"
    )
    _pg(bindir / "pg_ctl", "-D", root / "data", "-o", options, "-l", root / "log", "-w", "start")
    return Server(root=root, port=port, bindir=bindir)


if __name__ == "__main__":
    server = start(Path(sys.argv[1]))
    print(server.url())
