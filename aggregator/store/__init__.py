"""The database: every read and write of the aggregator's state goes through a `Store`.

protocols.py   what the rest of the code may ask of a store (Store and its four parts)
records.py     what a store hands out besides the models; how times are encoded
sql.py         the reads and writes both engines run (SqlStore)
sqlite.py      the SQLite backend (the embedded default)
postgresql.py  the PostgreSQL backend (several processes and hosts)
coordination.py  the writer lock of a PostgreSQL database (a session advisory lock)
locations.py   which backend a `--db` or `settings.database` names, opened by `open_store`
copying.py     a whole database copied into an empty one (`aggregator migrate`)
"""

from aggregator.store.locations import open_store
from aggregator.store.protocols import Store
from aggregator.store.records import Heartbeat, from_db_time, to_db_time
from aggregator.store.sqlite import SCHEMA_VERSION, fts5_available, sqlite_version

__all__ = [
    "SCHEMA_VERSION",
    "Heartbeat",
    "Store",
    "from_db_time",
    "fts5_available",
    "open_store",
    "sqlite_version",
    "to_db_time",
]
