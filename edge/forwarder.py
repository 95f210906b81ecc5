"""Sending queued readings to the central broker: order, in-flight window, backlog rate.

Acknowledgement: a row is deleted from the queue only after the broker acknowledged its
publish. The forwarder relies on this behaviour of aiomqtt 2.5.1 with paho-mqtt 2.2.0.
``await Client.publish(..., qos=1)`` waits on an event that aiomqtt's ``_on_publish`` sets.
For a QoS 1 message paho calls ``on_publish`` only from ``_handle_pubackcomp``, which runs
when the PUBACK with the message's packet id arrives. aiomqtt does not fail a pending publish when the
connection drops, so the wait is bounded by ``publish_timeout_s``, and the uplink cancels it
as soon as its message loop detects the disconnection.

Window: up to ``max_inflight`` publishes wait for their PUBACK at once. The broker may
acknowledge them in any order, but rows are deleted in the order they were sent: a row is
deleted only when every row sent before it on this connection is acknowledged too. After a
disconnection the rows not yet deleted are sent again, acknowledged ones included. The
ingest side removes such duplicates, because an identical payload maps to the same point.

Order after a reconnect. Every row already queued when the connection comes up is
*backlog*. The backlog is sent device by device, the device with the fewest queued rows
first, at most ``backlog_rate_per_s`` messages per second. Rows queued after the connection
came up are *live* and are sent at once, without the rate limit, unless their device still
has backlog. In that case they wait and are sent behind that backlog, at the backlog rate.
So a device whose backlog is sent (or that had none) is current again while other devices
still catch up, and small backlogs, such as an attendance terminal's few punches, go first.

Ordering guarantee: the readings of one device (same ``device`` id, any stream) are published
in the order they were queued, which is the order its adapter emitted them. For an adapter
that emits each device's readings in time order, that is ``ts`` order. They are also
published over one TCP connection, and the broker forwards them to a subscriber in that
order. After a reconnect, a device's rows that were sent but not deleted are sent again
before its later rows, so the first arrival of each reading is still in order, and only
duplicates can arrive late. Readings of different devices carry no order between them.
"""

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import aiomqtt

from .outbox import Outbox, QueuedRow

logger = logging.getLogger(__name__)

QOS = 1
_FETCH_MAX_ROWS = 500
"""Rows read from the queue in one query, at most."""


class TokenBucket:
    """Rate limit of ``rate_per_s`` events per second, with bursts of ``burst_s`` seconds' worth."""

    def __init__(self, rate_per_s: float, burst_s: float = 0.2, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._burst_s = burst_s
        self._updated = clock()
        self.rate_per_s = rate_per_s
        self._capacity = self._capacity_for(rate_per_s)
        self._tokens = self._capacity

    def set_rate(self, rate_per_s: float) -> None:
        """Change the rate. Tokens above the new capacity are dropped."""
        self._refill()
        self.rate_per_s = rate_per_s
        self._capacity = self._capacity_for(rate_per_s)
        self._tokens = min(self._tokens, self._capacity)

    def available(self) -> int:
        """Return the whole number of events allowed now."""
        self._refill()
        return int(self._tokens)

    def take(self, count: int) -> None:
        """Use ``count`` tokens."""
        self._refill()
        self._tokens -= count

    def wait_s(self) -> float:
        """Return the time until one more event is allowed, s."""
        self._refill()
        return max(0.0, (1.0 - self._tokens) / self.rate_per_s)

    def _capacity_for(self, rate_per_s: float) -> float:
        return max(1.0, rate_per_s * self._burst_s)

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self._capacity, self._tokens + (now - self._updated) * self.rate_per_s)
        self._updated = now


@dataclass(slots=True)
class _InFlight:
    row_id: int
    acknowledged: bool = False


@dataclass
class _Session:
    """Send state of one broker connection."""

    client: aiomqtt.Client
    live_after: int
    """Highest id looked at by the live step; rows above it are new."""
    draining: deque[str]
    """Devices with backlog left, the next one to send first."""
    cursors: dict[str, int]
    """Last id sent of each device in ``draining``."""
    started: float = field(default_factory=time.monotonic)
    tasks: set[asyncio.Task] = field(default_factory=set)


class Forwarder:
    """Sender of the queue over one broker connection at a time, as the module docstring describes."""

    def __init__(
        self,
        outbox: Outbox,
        topic_of_stream: Callable[[str], str],
        max_inflight: int,
        publish_timeout_s: float,
        backlog_rate_per_s: float,
    ) -> None:
        self._outbox = outbox
        self._topic_of_stream = topic_of_stream
        self._max_inflight = max_inflight
        self._publish_timeout_s = publish_timeout_s
        self._bucket = TokenBucket(backlog_rate_per_s)
        self._wakeup = asyncio.Event()
        self._failure: BaseException | None = None
        self._in_flight: deque[_InFlight] = deque()
        self._to_delete: list[int] = []
        self._delete_task: asyncio.Task | None = None
        outbox.add_listener(self._wakeup.set)

        self.published_total = 0
        """Publishes started since the agent started, repeats after a reconnect included."""
        self.acknowledged_total = 0
        """Publishes the broker acknowledged since the agent started."""
        self.backlog_devices = 0
        """Devices whose backlog is still being sent on the current connection."""

    @property
    def in_flight(self) -> int:
        """Publishes sent on the current connection and not yet deleted from the queue."""
        return len(self._in_flight)

    def set_backlog_rate(self, rate_per_s: float) -> None:
        """Change the backlog rate limit, messages per second."""
        self._bucket.set_rate(rate_per_s)

    async def run(self, client: aiomqtt.Client) -> None:
        """Send the queue over ``client`` until cancelled.

        Raises:
            aiomqtt.MqttError: a publish failed or was not acknowledged within the timeout.
        """
        self._failure = None
        self._in_flight.clear()
        # Rows acknowledged on the last connection would otherwise count as backlog and go out twice.
        await self.flush_deletes()
        session = await self._start_session(client)

        try:
            while True:
                self._wakeup.clear()
                if self._failure is not None:
                    raise self._failure

                progressed = await self._send_live(session)
                progressed = await self._send_backlog(session) or progressed
                if not progressed:
                    await self._wait(session)
        finally:
            for task in session.tasks:
                task.cancel()
            await asyncio.gather(*session.tasks, return_exceptions=True)
            self._in_flight.clear()

    async def _start_session(self, client: aiomqtt.Client) -> _Session:
        """Split the queue into backlog (rows queued before this connection) and live rows."""
        live_after = await self._outbox.last_id()
        backlog = await self._outbox.rows_by_device(live_after)
        draining = deque(sorted(backlog, key=lambda device: (backlog[device], device)))
        session = _Session(client, live_after, draining, dict.fromkeys(draining, 0))
        self.backlog_devices = len(draining)
        if draining:
            logger.info(
                "sending %d queued readings of %d devices at most %g messages/s, the smallest backlog first",
                sum(backlog.values()),
                len(draining),
                self._bucket.rate_per_s,
            )
        return session

    async def _send_live(self, session: _Session) -> bool:
        """Send the rows queued since the last look, except those of devices still in backlog.

        Return True when rows were read, so the caller looks again at once.
        """
        space = self._max_inflight - len(self._in_flight)
        if space <= 0:
            return False

        rows = await self._outbox.fetch_after(session.live_after, min(space, _FETCH_MAX_ROWS))
        for row in rows:
            session.live_after = row.id
            if row.device not in session.cursors:
                self._send(session, row)
        return bool(rows)

    async def _send_backlog(self, session: _Session) -> bool:
        """Send the next rows of the first device in backlog, as far as the rate limit allows.

        Return True when rows were sent or a device finished its backlog.
        """
        space = self._max_inflight - len(self._in_flight)
        if space <= 0 or not session.draining or self._bucket.available() < 1:
            return False

        device = session.draining[0]
        limit = min(space, self._bucket.available(), _FETCH_MAX_ROWS)
        rows = await self._outbox.fetch_device(device, session.cursors[device], session.live_after, limit)
        if rows:
            self._bucket.take(len(rows))
            for row in rows:
                self._send(session, row)
            session.cursors[device] = rows[-1].id
            return True

        # Every row of the device up to live_after is sent, so its later rows are live.
        session.draining.popleft()
        del session.cursors[device]
        self.backlog_devices = len(session.draining)
        if not session.draining:
            logger.info("queued backlog sent in %.1f s", time.monotonic() - session.started)
        return True

    async def flush_deletes(self) -> None:
        """Wait until the rows acknowledged so far are deleted from the queue."""
        while self._delete_task is not None and not self._delete_task.done():
            await asyncio.shield(self._delete_task)

    async def _wait(self, session: _Session) -> None:
        """Sleep until new rows, a PUBACK, or the rate limit lets the backlog go on."""
        timeout = None
        if session.draining and len(self._in_flight) < self._max_inflight:
            timeout = max(self._bucket.wait_s(), 0.001)
        try:
            await asyncio.wait_for(self._wakeup.wait(), timeout)
        except TimeoutError:
            pass

    def _send(self, session: _Session, row: QueuedRow) -> None:
        # Tasks start in creation order, so paho writes the PUBLISH packets in this order.
        entry = _InFlight(row.id)
        self._in_flight.append(entry)
        task = asyncio.create_task(self._publish(session.client, row, entry))
        session.tasks.add(task)
        task.add_done_callback(session.tasks.discard)
        self.published_total += 1

    async def _publish(self, client: aiomqtt.Client, row: QueuedRow, entry: _InFlight) -> None:
        try:
            await client.publish(
                self._topic_of_stream(row.stream), row.payload, qos=QOS, timeout=self._publish_timeout_s
            )
        except aiomqtt.MqttError as exc:
            if self._failure is None:
                self._failure = exc
            self._wakeup.set()
            return

        self.acknowledged_total += 1
        entry.acknowledged = True
        while self._in_flight and self._in_flight[0].acknowledged:
            self._to_delete.append(self._in_flight.popleft().row_id)
        if self._delete_task is None or self._delete_task.done():
            self._delete_task = asyncio.create_task(self._delete_acknowledged())
        self._wakeup.set()

    async def _delete_acknowledged(self) -> None:
        """Delete acknowledged rows in batches, until none are left."""
        while self._to_delete:
            batch, self._to_delete = self._to_delete, []
            await self._outbox.delete(batch)
