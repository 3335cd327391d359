"""The in-memory LSH index over the entries of the dedup window.

A cache of the database, never the source of truth: rebuilt at start-up from the
signatures stored as BLOBs, trimmed as the window moves. Two MinHashLSH indexes: one over
title signatures (headlines repeated or lightly edited), one over body signatures (copies
of the text). Candidates from either are verified in `grouping` before anything merges.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime

from datasketch import MinHashLSH

from aggregator.dedup.signature import Signatures, Signer

# LSH thresholds are deliberately below the verification thresholds in `grouping`: LSH
# only proposes candidates (a missed candidate is a missed merge), verification decides.
TITLE_LSH_THRESHOLD = 0.5
BODY_LSH_THRESHOLD = 0.4


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """What dedup needs to know about an entry already seen."""

    entry_id: int
    feed_id: int
    event_id: int
    first_seen: datetime  # arrival time: the window is about what we received recently
    published: datetime | None
    signatures: Signatures


class SimilarityIndex:
    """Entry id -> fingerprint, with LSH over both signatures."""

    def __init__(self, signer: Signer) -> None:
        self.signer = signer
        num_perm = signer.params.num_perm
        self._title = MinHashLSH(threshold=TITLE_LSH_THRESHOLD, num_perm=num_perm)
        self._body = MinHashLSH(threshold=BODY_LSH_THRESHOLD, num_perm=num_perm)
        self._fingerprints: dict[int, Fingerprint] = {}

    def __len__(self) -> int:
        return len(self._fingerprints)

    def __contains__(self, entry_id: int) -> bool:
        return entry_id in self._fingerprints

    def add(self, fingerprint: Fingerprint) -> None:
        key = fingerprint.entry_id
        if key in self._fingerprints:
            self.remove(key)
        self._fingerprints[key] = fingerprint
        self._title.insert(key, self.signer.lean(fingerprint.signatures.title))
        self._body.insert(key, self.signer.lean(fingerprint.signatures.body))

    def add_all(self, fingerprints: Iterable[Fingerprint]) -> None:
        for fingerprint in fingerprints:
            self.add(fingerprint)

    def remove(self, entry_id: int) -> None:
        if self._fingerprints.pop(entry_id, None) is not None:
            self._title.remove(entry_id)
            self._body.remove(entry_id)

    def move_to_event(self, entry_id: int, event_id: int) -> None:
        """Record that an indexed entry now belongs to another event."""
        fingerprint = self._fingerprints.get(entry_id)
        if fingerprint is not None:
            self._fingerprints[entry_id] = replace(fingerprint, event_id=event_id)

    def candidates(self, signatures: Signatures) -> list[Fingerprint]:
        """Indexed entries whose title or body may be similar, in entry-id order."""
        keys = set(self._title.query(self.signer.lean(signatures.title)))
        keys.update(self._body.query(self.signer.lean(signatures.body)))
        return [self._fingerprints[k] for k in sorted(keys)]

    def drop_older_than(self, cutoff: datetime) -> int:
        """Trim the window; returns how many entries left the index."""
        old = [k for k, fp in self._fingerprints.items() if fp.first_seen < cutoff]
        for key in old:
            self.remove(key)
        return len(old)
