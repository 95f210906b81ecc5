"""Durable queue (outbox) of readings waiting for the central broker, in SQLite.

One row per reading: id, stream, device, payload bytes and enqueue time. Ids come from
``INTEGER PRIMARY KEY AUTOINCREMENT``, so they rise monotonically and are never reused, even
after the newest rows were deleted. Sending in id order is sending in enqueue order.

Durability: the database runs in WAL mode with ``synchronous=FULL`` by default, so every
commit is fsynced before ``append`` returns. An adapter acknowledges its device only after
``append`` returned, and an ADMS ``OK`` makes the terminal forget the punches, so a commit must
survive a power loss. ``synchronous=NORMAL`` in WAL mode does not promise that: it survives a
crash of the agent, but not of the OS. Appends that arrive while a commit runs are grouped into
the next transaction, so a burst costs one fsync per group, not per reading.

Bounds: at most ``max_rows`` rows, ``max_bytes`` of payload, and rows younger than
``max_age_s``. Beyond a bound the oldest rows (lowest ids) are deleted first, in the same
transaction as the insert that crossed it. Every dropped row is counted by reason in the
``drop_counters`` table, so ``dropped_total`` survives restarts, and the drop is logged.
Row and byte totals are kept by triggers in ``queue_totals``, so opening a large queue needs
no full scan.

Every SQLite call runs on one worker thread, which owns the connection, so the event loop
never waits for a disk write. A lock file next to the database stops a second agent from
sending the same queue.

Exceptions::

    RuntimeError
    └── OutboxError      the database cannot be opened, locked or written
"""

import asyncio
import fcntl
import logging
import sqlite3
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from .log_limits import RateLimitedLogger

logger = logging.getLogger(__name__)

T = TypeVar("T")

DROP_REASONS = ("max_rows", "max_bytes", "max_age")
"""Labels of the bound that made the queue drop a row."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    stream TEXT NOT NULL,
    device TEXT NOT NULL,
    payload BLOB NOT NULL,
    enqueued_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_device_id ON outbox (device, id);

CREATE TABLE IF NOT EXISTS queue_totals (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    rows INTEGER NOT NULL,
    bytes INTEGER NOT NULL
);
INSERT OR IGNORE INTO queue_totals (singleton, rows, bytes) VALUES (1, 0, 0);

CREATE TRIGGER IF NOT EXISTS outbox_count_insert AFTER INSERT ON outbox BEGIN
    UPDATE queue_totals SET rows = rows + 1, bytes = bytes + length(NEW.payload);
END;
CREATE TRIGGER IF NOT EXISTS outbox_count_delete AFTER DELETE ON outbox BEGIN
    UPDATE queue_totals SET rows = rows - 1, bytes = bytes - length(OLD.payload);
END;

CREATE TABLE IF NOT EXISTS drop_counters (
    reason TEXT PRIMARY KEY,
    dropped INTEGER NOT NULL
);
"""

_TRIM_SCAN_ROWS = 1_000
"""Rows read per step while looking for the end of an over-limit or expired prefix."""


class OutboxError(RuntimeError):
    """Raised when the queue's database cannot be opened, locked or written."""


@dataclass(frozen=True, slots=True)
class QueuedRow:
    """One queued reading."""

    id: int
    stream: str
    device: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class OutboxLimits:
    """Bounds of the queue. The oldest rows are dropped beyond any of them."""

    max_rows: int = 1_000_000
    max_bytes: int = 200_000_000
    """Sum of payload sizes, bytes. The database file is larger: it adds row, index and WAL overhead."""
    max_age_s: float = 7 * 86_400.0


class Outbox:
    """The SQLite queue of one agent, opened with ``await open()`` and closed with ``await close()``."""

    def __init__(
        self,
        path: Path,
        limits: OutboxLimits = OutboxLimits(),
        synchronous: str = "FULL",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path)
        self.limits = limits
        self.synchronous = synchronous
        self._clock = clock
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox")
        self._connection: sqlite3.Connection | None = None
        self._lock_file = None
        self._pending: list[tuple[str, str, bytes, asyncio.Future]] = []
        self._flush_task: asyncio.Task | None = None
        self._listeners: list[Callable[[], None]] = []
        self._drop_log = RateLimitedLogger(logger)

        self.rows = 0
        """Rows in the queue after the last operation."""
        self.bytes = 0
        """Sum of the queued payload sizes after the last operation, bytes."""
        self.dropped: dict[str, int] = dict.fromkeys(DROP_REASONS, 0)
        """Rows dropped by reason since the database was created."""

    @property
    def dropped_total(self) -> int:
        """Rows dropped since the database was created, all reasons."""
        return sum(self.dropped.values())

    def add_listener(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` in the event loop after each commit that added rows."""
        self._listeners.append(callback)

    async def open(self) -> None:
        """Lock, open and if needed create the database, then drop expired rows.

        Raises:
            OutboxError: another agent holds the lock, or SQLite cannot open the file or
                switch it to WAL mode.
        """
        await self._call(self._open_sync)
        await self.drop_expired()
        logger.info(
            "queue %s opened: %d readings (%d bytes) waiting, %d dropped since it was created",
            self.path,
            self.rows,
            self.bytes,
            self.dropped_total,
        )

    async def close(self) -> None:
        """Commit the appends still pending, checkpoint the WAL and close the database."""
        if self._flush_task is not None:
            await asyncio.shield(self._flush_task)
        if self._connection is not None:
            await self._call(self._close_sync)
        self._executor.shutdown(wait=True)
        logger.info("queue %s closed: %d readings waiting", self.path, self.rows)

    async def append(self, stream: str, device: str, payload: bytes) -> None:
        """Queue one reading and return once its row is committed.

        Raises:
            OutboxError: the row could not be written (disk full, I/O error). It is not queued.
        """
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        self._pending.append((stream, device, payload, done))
        if self._flush_task is None or self._flush_task.done():
            self._flush_task = loop.create_task(self._flush_pending())
        await done

    async def fetch_after(self, after_id: int, limit: int) -> list[QueuedRow]:
        """Return up to ``limit`` rows with an id above ``after_id``, in id order."""
        return await self._call(
            self._select,
            "SELECT id, stream, device, payload FROM outbox WHERE id > ? ORDER BY id LIMIT ?",
            (after_id, limit),
        )

    async def fetch_device(self, device: str, after_id: int, up_to_id: int, limit: int) -> list[QueuedRow]:
        """Return up to ``limit`` rows of ``device`` with ``after_id < id <= up_to_id``, in id order."""
        return await self._call(
            self._select,
            "SELECT id, stream, device, payload FROM outbox WHERE device = ? AND id > ? AND id <= ? ORDER BY id LIMIT ?",
            (device, after_id, up_to_id, limit),
        )

    async def rows_by_device(self, up_to_id: int) -> dict[str, int]:
        """Return the number of rows with ``id <= up_to_id`` of each device."""
        return await self._call(self._rows_by_device_sync, up_to_id)

    async def last_id(self) -> int:
        """Return the highest id in the queue, or 0 when it is empty."""
        return await self._call(self._scalar, "SELECT COALESCE(MAX(id), 0) FROM outbox")

    async def delete(self, ids: Iterable[int]) -> None:
        """Delete the sent and acknowledged rows ``ids``, skipping ids already gone."""
        id_list = list(ids)
        if id_list:
            await self._call(self._delete_sync, id_list)

    async def drop_expired(self) -> int:
        """Drop the rows enqueued more than ``max_age_s`` ago and return how many."""
        return await self._call(self._drop_expired_sync)

    # Everything below runs on the worker thread, except _call and _flush_pending.

    async def _call(self, function: Callable[..., T], *args: object) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, function, *args)

    async def _flush_pending(self) -> None:
        """Commit every pending append in one transaction, until none are left."""
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                await self._call(self._insert_sync, [(stream, device, payload) for stream, device, payload, _ in batch])
            except Exception as exc:
                # Every waiting append must get a result, or its adapter would wait forever.
                if not isinstance(exc, OutboxError):
                    logger.exception("queue %s: writing %d readings failed", self.path, len(batch))
                    exc = OutboxError(f"queue {self.path}: writing {len(batch)} readings failed: {exc!r}")
                for *_, done in batch:
                    if not done.done():
                        done.set_exception(exc)
                continue

            for *_, done in batch:
                if not done.done():
                    done.set_result(None)
            for callback in self._listeners:
                callback()

    def _open_sync(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutboxError(f"queue folder {self.path.parent} cannot be created: {exc}") from exc
        self._lock_file = self._acquire_lock()
        try:
            connection = sqlite3.connect(self.path, isolation_level=None)
            mode = connection.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise OutboxError(
                    f"queue {self.path}: SQLite could not switch to WAL mode (journal mode is {mode!r}); "
                    "put the queue on a local file system"
                )
            connection.execute(f"PRAGMA synchronous={self.synchronous}")
            connection.executescript(_SCHEMA)
            self._connection = connection
            self._refresh_counts()
        except sqlite3.Error as exc:
            self._lock_file.close()
            raise OutboxError(f"queue {self.path} cannot be opened: {exc}") from exc

    def _acquire_lock(self):
        lock_path = self.path.with_name(self.path.name + ".lock")
        try:
            lock_file = open(lock_path, "a+")
        except OSError as exc:
            raise OutboxError(f"queue lock {lock_path} cannot be opened: {exc}") from exc
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock_file.close()
            raise OutboxError(
                f"queue {self.path} is in use by another process (lock {lock_path}): run one agent per queue"
            ) from None
        return lock_file

    def _close_sync(self) -> None:
        try:
            self._connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as exc:
            logger.warning("queue %s: WAL checkpoint at close failed: %s", self.path, exc)
        self._connection.close()
        self._connection = None
        self._lock_file.close()

    def _select(self, sql: str, parameters: tuple) -> list[QueuedRow]:
        rows = self._connection.execute(sql, parameters).fetchall()
        return [QueuedRow(row_id, stream, device, bytes(payload)) for row_id, stream, device, payload in rows]

    def _scalar(self, sql: str, parameters: tuple = ()) -> int:
        return self._connection.execute(sql, parameters).fetchone()[0]

    def _rows_by_device_sync(self, up_to_id: int) -> dict[str, int]:
        rows = self._connection.execute(
            "SELECT device, COUNT(*) FROM outbox WHERE id <= ? GROUP BY device", (up_to_id,)
        ).fetchall()
        return dict(rows)

    def _insert_sync(self, rows: list[tuple[str, str, bytes]]) -> None:
        now_ms = int(self._clock() * 1000)
        dropped: dict[str, int] = {}
        try:
            with self._transaction():
                self._connection.executemany(
                    "INSERT INTO outbox (stream, device, payload, enqueued_ms) VALUES (?, ?, ?, ?)",
                    [(stream, device, payload, now_ms) for stream, device, payload in rows],
                )
                dropped = self._enforce_size_limits()
            self._refresh_counts()
        except sqlite3.Error as exc:
            raise OutboxError(f"queue {self.path}: writing {len(rows)} readings failed: {exc}") from exc
        self._log_drops(dropped)

    def _delete_sync(self, ids: list[int]) -> None:
        try:
            with self._transaction():
                self._connection.executemany("DELETE FROM outbox WHERE id = ?", [(row_id,) for row_id in ids])
            self._refresh_counts()
        except sqlite3.Error as exc:
            # The rows stay queued and are sent again later, and the ingest side removes the duplicates.
            logger.error("queue %s: deleting %d sent readings failed: %s", self.path, len(ids), exc)

    def _drop_expired_sync(self) -> int:
        cutoff_ms = int((self._clock() - self.limits.max_age_s) * 1000)
        try:
            with self._transaction():
                last_expired = self._end_of_prefix("enqueued_ms < ?", cutoff_ms)
                count = self._drop_through(last_expired, "max_age")
            self._refresh_counts()
        except sqlite3.Error as exc:
            logger.error("queue %s: dropping expired readings failed: %s", self.path, exc)
            return 0
        self._log_drops({"max_age": count})
        return count

    def _enforce_size_limits(self) -> dict[str, int]:
        """Delete the oldest rows beyond ``max_rows`` and ``max_bytes``, inside the caller's transaction."""
        dropped = {}
        rows, size = self._totals()
        excess_rows = rows - self.limits.max_rows
        if excess_rows > 0:
            last = self._scalar("SELECT id FROM outbox ORDER BY id LIMIT 1 OFFSET ?", (excess_rows - 1,))
            dropped["max_rows"] = self._drop_through(last, "max_rows")

        rows, size = self._totals()
        excess_bytes = size - self.limits.max_bytes
        if excess_bytes > 0:
            last = self._end_of_byte_prefix(excess_bytes)
            dropped["max_bytes"] = self._drop_through(last, "max_bytes")
        return dropped

    def _end_of_prefix(self, condition: str, value: int) -> int | None:
        """Return the last id of the leading run of rows (in id order) that meet ``condition``."""
        last = None
        after = 0
        while True:
            chunk = self._connection.execute(
                f"SELECT id, {condition} FROM outbox WHERE id > ? ORDER BY id LIMIT ?", (value, after, _TRIM_SCAN_ROWS)
            ).fetchall()
            for row_id, matches in chunk:
                if not matches:
                    return last
                last = row_id
            if len(chunk) < _TRIM_SCAN_ROWS:
                return last
            after = chunk[-1][0]

    def _end_of_byte_prefix(self, excess_bytes: int) -> int | None:
        """Return the id at which the oldest rows add up to ``excess_bytes`` of payload."""
        total = 0
        after = 0
        while True:
            chunk = self._connection.execute(
                "SELECT id, length(payload) FROM outbox WHERE id > ? ORDER BY id LIMIT ?", (after, _TRIM_SCAN_ROWS)
            ).fetchall()
            for row_id, size in chunk:
                total += size
                if total >= excess_bytes:
                    return row_id
            if len(chunk) < _TRIM_SCAN_ROWS:
                return chunk[-1][0] if chunk else None
            after = chunk[-1][0]

    def _drop_through(self, last_id: int | None, reason: str) -> int:
        """Delete every row with ``id <= last_id`` and count them under ``reason``."""
        if last_id is None:
            return 0
        count = self._connection.execute("DELETE FROM outbox WHERE id <= ?", (last_id,)).rowcount
        if count > 0:
            self._connection.execute(
                "INSERT INTO drop_counters (reason, dropped) VALUES (?, ?) "
                "ON CONFLICT (reason) DO UPDATE SET dropped = dropped + excluded.dropped",
                (reason, count),
            )
        return count

    def _totals(self) -> tuple[int, int]:
        return self._connection.execute("SELECT rows, bytes FROM queue_totals").fetchone()

    def _refresh_counts(self) -> None:
        self.rows, self.bytes = self._totals()
        counters = dict.fromkeys(DROP_REASONS, 0)
        counters.update(self._connection.execute("SELECT reason, dropped FROM drop_counters").fetchall())
        self.dropped = counters

    def _transaction(self) -> "_Transaction":
        return _Transaction(self._connection)

    def _log_drops(self, dropped: dict[str, int]) -> None:
        limits = {
            "max_rows": f"{self.limits.max_rows} rows",
            "max_bytes": f"{self.limits.max_bytes} bytes",
            "max_age": f"{self.limits.max_age_s / 86_400:g} days",
        }
        for reason, count in dropped.items():
            if count:
                self._drop_log.warning(
                    reason,
                    "queue %s is beyond its limit %s=%s: dropped the %d oldest readings, %d dropped since it was created",
                    self.path,
                    reason,
                    limits[reason],
                    count,
                    self.dropped_total,
                )


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, or ``ROLLBACK`` on an error, on an autocommit connection."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    def __enter__(self) -> None:
        self._connection.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, exc, traceback) -> None:
        if exc_type is None:
            self._connection.execute("COMMIT")
        elif self._connection.in_transaction:
            # SQLite has already rolled back after some errors, such as a full disk.
            self._connection.execute("ROLLBACK")
