"""A fetched feed's entries as fetch workers stage them for the grouping leader
(`aggregator.roles`): normalised entries as compressed JSON, a format of our own with a
version, so nothing staged is ever code to run (no pickle in a shared database)."""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

from aggregator.models import Entry

FORMAT = 1
_TIMES = ("published", "updated")


def encode_entries(entries: Sequence[Entry]) -> bytes:
    rows = []
    for entry in entries:
        row = asdict(entry)
        for name in _TIMES:
            if row[name] is not None:
                row[name] = row[name].isoformat()
        rows.append(row)
    return zlib.compress(json.dumps({"format": FORMAT, "entries": rows}).encode("utf-8"))


def decode_entries(blob: bytes) -> tuple[Entry, ...]:
    """The entries of `encode_entries`; ValueError for anything else."""
    try:
        document: Any = json.loads(zlib.decompress(blob))
    except (zlib.error, ValueError) as exc:
        raise ValueError(f"not a staged update: {exc}") from exc
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ValueError("a staged update of another format")
    entries = []
    for row in document["entries"]:
        for name in _TIMES:
            if row[name] is not None:
                row[name] = datetime.fromisoformat(row[name])
        entries.append(Entry(**row))
    return tuple(entries)
