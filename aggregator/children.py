"""The environment of a Python child process started with `python -m aggregator...`.

Parse workers and the builder of the word-frequency table run as fresh interpreters
(never forks of the threaded daemon). They must import this very copy of the package,
whatever the caller's working directory or `sys.path` was: the directory holding it goes
first on their PYTHONPATH.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_ROOT = str(Path(__file__).resolve().parents[1])


def child_environment() -> dict[str, str]:
    """The caller's environment, with this package's directory first on PYTHONPATH, and
    numpy's BLAS kept to one thread (it reserves memory per thread; children compute
    nothing with it)."""
    env = dict(os.environ)
    env["OPENBLAS_NUM_THREADS"] = env["OMP_NUM_THREADS"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (PACKAGE_ROOT, env.get("PYTHONPATH")) if p)
    return env
