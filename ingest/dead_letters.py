"""Dead-letter store: messages and points that could not be stored, kept for a later replay.

Each entry contains the MQTT topic and raw payload as received, a stable ``reason`` label, the
full error text, the receive time and, for points InfluxDB refused, the line of line
protocol. Entries are written before the message's PUBACK, so an acknowledged message is
always either in InfluxDB or here.

The store is one SQLite file in WAL mode, shared by the ingest service (writer), the API and
the ``smartoffice-dead-letters`` command (readers, replay). It is bounded: beyond
``max_entries`` the oldest entries are deleted and counted in ``evicted_total``.

Replay publishes each payload again to its topic at QoS 1, so it passes validation and
storage anew with whatever was fixed in between (a contract change, a field type, a device
id); replayed entries are deleted, and one that fails again comes back as a new entry.
"""

import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS dead_letter (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    received_ms INTEGER NOT NULL,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    reason TEXT NOT NULL,
    error TEXT NOT NULL,
    line TEXT
);
CREATE INDEX IF NOT EXISTS dead_letter_reason ON dead_letter (reason, id);
CREATE TABLE IF NOT EXISTS dead_letter_stats (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One entry of the store."""

    topic: str
    payload: bytes
    reason: str
    error: str
    received_ms: int
    line: str | None = None
    id: int | None = None


class DeadLetterStore:
    """A bounded SQLite table of dead letters; safe to use from several threads of one process."""

    def __init__(self, path: str | Path, max_entries: int = 100_000) -> None:
        self.path = Path(path)
        self.max_entries = max_entries
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._connection = sqlite3.connect(self.path, check_same_thread=False, timeout=30.0)
        self._connection.execute("PRAGMA journal_mode=WAL")
        self._connection.execute("PRAGMA synchronous=FULL")
        self._connection.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._connection.close()

    def add(self, entries: list[DeadLetter]) -> int:
        """Store ``entries`` durably (committed and synced) and evict beyond the bound.

        Returns the number of old entries evicted.
        """
        if not entries:
            return 0
        with self._lock, self._connection:
            self._connection.executemany(
                "INSERT INTO dead_letter (received_ms, topic, payload, reason, error, line) VALUES (?, ?, ?, ?, ?, ?)",
                [(e.received_ms, e.topic, e.payload, e.reason, e.error[:2000], e.line) for e in entries],
            )
            return self._evict()

    def entries(self, reason: str | None = None, limit: int = 100, after_id: int = 0) -> list[DeadLetter]:
        """Return up to ``limit`` entries with an id above ``after_id``, oldest first."""
        query = "SELECT id, received_ms, topic, payload, reason, error, line FROM dead_letter WHERE id > ?"
        parameters: list = [after_id]
        if reason is not None:
            query += " AND reason = ?"
            parameters.append(reason)
        query += " ORDER BY id LIMIT ?"
        parameters.append(limit)
        with self._lock:
            rows = self._connection.execute(query, parameters).fetchall()
        return [
            DeadLetter(id=row[0], received_ms=row[1], topic=row[2], payload=bytes(row[3]), reason=row[4], error=row[5], line=row[6])
            for row in rows
        ]

    def get(self, entry_id: int) -> DeadLetter | None:
        """Return one entry, or None."""
        entries = self.entries(limit=1, after_id=entry_id - 1)
        return entries[0] if entries and entries[0].id == entry_id else None

    def counts(self) -> dict[str, int]:
        """Return the number of stored entries per reason."""
        with self._lock:
            rows = self._connection.execute("SELECT reason, count(*) FROM dead_letter GROUP BY reason").fetchall()
        return dict(rows)

    def evicted_total(self) -> int:
        """Return how many entries were deleted to keep the bound, since the store was created."""
        with self._lock:
            row = self._connection.execute("SELECT value FROM dead_letter_stats WHERE name = 'evicted'").fetchone()
        return row[0] if row else 0

    def delete(self, entry_ids: list[int]) -> int:
        """Delete entries by id; return how many were deleted."""
        if not entry_ids:
            return 0
        with self._lock, self._connection:
            placeholders = ",".join("?" * len(entry_ids))
            cursor = self._connection.execute(f"DELETE FROM dead_letter WHERE id IN ({placeholders})", entry_ids)
            return cursor.rowcount

    def _evict(self) -> int:
        (total,) = self._connection.execute("SELECT count(*) FROM dead_letter").fetchone()
        excess = total - self.max_entries
        if excess <= 0:
            return 0
        self._connection.execute(
            "DELETE FROM dead_letter WHERE id IN (SELECT id FROM dead_letter ORDER BY id LIMIT ?)", (excess,)
        )
        self._connection.execute(
            "INSERT INTO dead_letter_stats (name, value) VALUES ('evicted', ?) "
            "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
            (excess,),
        )
        return excess


def now_ms() -> int:
    """Return the current time in UTC epoch milliseconds."""
    return time.time_ns() // 1_000_000
