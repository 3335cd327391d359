"""The database: every read and write of the aggregator's state goes through `Store`.

sqlite.py   the SQLite implementation (the embedded default)
"""

from aggregator.store.sqlite import (
    SCHEMA_VERSION,
    Heartbeat,
    Store,
    from_db_time,
    fts5_available,
    sqlite_version,
    to_db_time,
)

__all__ = [
    "SCHEMA_VERSION",
    "Heartbeat",
    "Store",
    "from_db_time",
    "fts5_available",
    "sqlite_version",
    "to_db_time",
]
