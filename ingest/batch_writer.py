"""Writes batches to InfluxDB in order, keeps what it refuses, then acknowledges them.

For each batch, in the order batches were closed:

0. skip it if its broker connection has ended: the broker sends its messages again;
1. write the lines, retrying with exponential backoff while InfluxDB is unavailable;
2. turn each refused point into a dead letter with its original message;
3. commit the batch's dead letters to the store, retrying while it fails;
4. call ``acknowledge(batch)``, which sends the PUBACKs.

So a message is acknowledged only once it is in InfluxDB or in the dead-letter store.
"""

import asyncio
import logging
import sqlite3
from collections.abc import Callable

from .batch import Batch
from .dead_letters import DeadLetter, DeadLetterStore
from .influx_writer import InfluxUnavailable, InfluxWriter
from .log_limits import RateLimitedLogger
from .metrics import IngestMetrics

logger = logging.getLogger(__name__)

_FIRST_RETRY_S = 0.25


class BatchWriter:
    """The single consumer of the batch queue."""

    def __init__(
        self,
        writer: InfluxWriter,
        dead_letters: DeadLetterStore,
        metrics: IngestMetrics,
        acknowledge: Callable[[Batch], None],
        retry_max_s: float,
        is_current: Callable[[Batch], bool],
    ) -> None:
        self._is_current = is_current
        self.healthy = True
        """False from a failed write until InfluxDB responds again."""
        self._writer = writer
        self._dead_letters = dead_letters
        self._metrics = metrics
        self._acknowledge = acknowledge
        self._retry_max_s = retry_max_s
        self._queue: asyncio.Queue[Batch] = asyncio.Queue()
        self._problems = RateLimitedLogger(logger)

    def submit(self, batch: Batch) -> None:
        """Queue a closed batch. The queue has no bound of its own; the caller limits what it reads."""
        self._queue.put_nowait(batch)
        self._metrics.batches_queued = self._queue.qsize()

    def discard_stale(self, current_connection: int) -> None:
        """Drop queued batches of earlier connections: the broker sends their messages again."""
        kept = []
        while not self._queue.empty():
            batch = self._queue.get_nowait()
            self._queue.task_done()
            if batch.connection >= current_connection:
                kept.append(batch)
            else:
                self._metrics.batches_discarded += 1
        for batch in kept:
            self._queue.put_nowait(batch)
        self._metrics.batches_queued = self._queue.qsize()

    async def wait_until_influx_answers(self, stopping: asyncio.Event) -> None:
        """Ping InfluxDB with backoff until it responds or ``stopping`` is set."""
        delay_s = _FIRST_RETRY_S
        while not stopping.is_set():
            if await self._writer.ping():
                logger.info("InfluxDB responds again")
                self.healthy = True
                return
            logger.info("waiting for InfluxDB; next check in %.1f s", delay_s)
            try:
                await asyncio.wait_for(stopping.wait(), delay_s)
            except TimeoutError:
                pass
            delay_s = min(delay_s * 2, self._retry_max_s)

    async def join(self) -> None:
        """Wait until every submitted batch is stored and acknowledged."""
        await self._queue.join()

    async def run(self) -> None:
        """Process batches until cancelled."""
        while True:
            batch = await self._queue.get()
            try:
                if not self._is_current(batch):
                    self._metrics.batches_discarded += 1
                    continue
                if batch.lines and not await self._write(batch):
                    self._metrics.batches_discarded += 1
                    continue
                if batch.dead_letters:
                    await self._keep_dead_letters(batch.dead_letters)
                self._acknowledge(batch)
            finally:
                self._queue.task_done()
                self._metrics.batches_queued = self._queue.qsize()

    async def _write(self, batch: Batch) -> bool:
        """Write until stored; return False if the batch's connection ended first."""
        delay_s = _FIRST_RETRY_S
        while True:
            try:
                result = await self._writer.write(batch.lines)
                self.healthy = True
                break
            except InfluxUnavailable as exc:
                self.healthy = False
                if not self._is_current(batch):
                    return False
                self._metrics.write_retries += 1
                self._problems.warning(
                    "influx_unavailable", "write of %d points failed: %s; retrying in %.2f s", len(batch.lines), exc, delay_s
                )
                await asyncio.sleep(delay_s)
                delay_s = min(delay_s * 2, self._retry_max_s)

        self._metrics.write_requests += result.requests
        self._metrics.points_written += result.written
        self._metrics.points_rejected += len(result.rejected)
        self._metrics.observe_write_duration(result.duration_s)
        for rejected in result.rejected:
            topic, payload, received_ms = batch.sources[rejected.index]
            self._problems.error("influx_rejected", "InfluxDB refused the point from %s: %s", topic, rejected.error)
            batch.dead_letters.append(
                DeadLetter(topic, payload, "influx_rejected", rejected.error, received_ms, line=rejected.line)
            )
        return True

    async def _keep_dead_letters(self, entries: list[DeadLetter]) -> None:
        delay_s = _FIRST_RETRY_S
        while True:
            try:
                evicted = await asyncio.to_thread(self._dead_letters.add, entries)
                break
            except sqlite3.Error as exc:
                self._problems.error(
                    "dead_letter_store", "cannot store %d dead letters: %s; retrying in %.2f s", len(entries), exc, delay_s
                )
                await asyncio.sleep(delay_s)
                delay_s = min(delay_s * 2, self._retry_max_s)

        for entry in entries:
            self._metrics.dead_letters[entry.reason] += 1
        if evicted:
            self._metrics.dead_letters_evicted += evicted
            self._problems.warning("dead_letter_evicted", "dead-letter store full: %d oldest entries deleted", evicted)
