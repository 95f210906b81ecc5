"""SQLite table of the attendance punches already emitted, so retried pushes are not emitted twice.

A terminal re-sends an ``ATTLOG`` batch when the server's ``OK`` came too late, and uploads
its whole log again when its stamp is reset. Each punch is keyed by terminal serial number,
PIN and device time (``PunchRecord.dedup_key``). The table lives in a file so that a re-sent
batch after a restart of the node is recognised too.

The database uses WAL with ``synchronous=NORMAL``: a power loss may forget the last keys
committed, and a punch is then emitted a second time with an identical payload, which the
ingest service stores as the same point.
"""

import sqlite3
from collections.abc import Iterable
from pathlib import Path

Key = tuple[str, str, str]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS emitted_punch (
    serial_number TEXT NOT NULL,
    employee_id TEXT NOT NULL,
    device_time TEXT NOT NULL,
    ts_ms INTEGER NOT NULL,
    PRIMARY KEY (serial_number, employee_id, device_time)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS emitted_punch_ts ON emitted_punch (ts_ms);
"""


class PunchStore:
    """Keys of emitted punches in the SQLite file ``path``.

    Calls are blocking, so the adapter runs them in a worker thread, one at a time.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._connection = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._connection.execute("PRAGMA journal_mode=WAL")
        self._connection.execute("PRAGMA synchronous=NORMAL")
        self._connection.executescript(_SCHEMA)

    def known(self, keys: Iterable[Key]) -> set[Key]:
        """Return the subset of ``keys`` that were emitted before."""
        found: set[Key] = set()
        for key in keys:
            row = self._connection.execute(
                "SELECT 1 FROM emitted_punch WHERE serial_number = ? AND employee_id = ? AND device_time = ?", key
            ).fetchone()
            if row is not None:
                found.add(key)
        return found

    def add(self, entries: Iterable[tuple[Key, int]]) -> None:
        """Store the keys of emitted punches, each with its ``ts`` in UTC epoch ms, in one transaction."""
        rows = [(*key, ts_ms) for key, ts_ms in entries]
        if not rows:
            return
        with self._transaction():
            self._connection.executemany("INSERT OR IGNORE INTO emitted_punch VALUES (?, ?, ?, ?)", rows)

    def prune(self, before_ms: int) -> int:
        """Delete keys of punches older than ``before_ms`` and return how many were deleted."""
        with self._transaction():
            cursor = self._connection.execute("DELETE FROM emitted_punch WHERE ts_ms < ?", (before_ms,))
        return cursor.rowcount

    def count(self) -> int:
        """Return the number of stored keys."""
        return self._connection.execute("SELECT COUNT(*) FROM emitted_punch").fetchone()[0]

    def close(self) -> None:
        """Close the database file."""
        self._connection.close()

    def _transaction(self):
        return _Transaction(self._connection)


class _Transaction:
    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection

    def __enter__(self) -> None:
        self.connection.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, exc, traceback) -> None:
        self.connection.execute("ROLLBACK" if exc_type else "COMMIT")
