"""`python -m aggregator` is the same as the `aggregator` command."""

from __future__ import annotations

from aggregator.cli import main

raise SystemExit(main())
