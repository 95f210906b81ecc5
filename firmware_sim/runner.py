"""Publishing loops of the simulator's modes, and the progress log.

* Live: the virtual time is the wall clock. Each message is published when the clock reaches
  its timestamp. Messages already in the past, such as the history of a backfill, go out at
  once, paced by the backfill rate.
* Load: timestamps advance from a start time as fast as the rate allows, independent of the
  wall clock, until the requested number of messages is out.

Both loops return when ``stop`` is set, and never publish after that.
"""

import logging
import threading
import time
from zoneinfo import ZoneInfo

from .clock import WallClock, format_ms
from .publisher import Publisher
from .rate_limit import TokenBucket
from .timeline import Timeline

logger = logging.getLogger(__name__)

PROGRESS_INTERVAL_S = 30.0

_NOTHING_TO_SEND = "no simulated device has a message to send: check that the catalogue's nodes list devices"

LIVE_LATENESS_MS = 1_000
"""A message due less than this long ago is live. An older one is history to catch up on."""


class ProgressLog:
    """Background thread that logs message counts every ``interval_s`` seconds.

    The publishing loop updates ``sent`` and ``virtual_ms`` after each message, and the thread
    only reads them.
    """

    def __init__(self, publisher: Publisher, zone: ZoneInfo, interval_s: float = PROGRESS_INTERVAL_S) -> None:
        self.sent = 0
        self.virtual_ms: int | None = None
        self._publisher = publisher
        self._zone = zone
        self._interval_s = interval_s
        self._started = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._log_loop, name="sim-progress", daemon=True)

    def start(self) -> None:
        """Start logging in the background."""
        self._started = time.monotonic()
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and log the totals of the run."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

        elapsed_s = time.monotonic() - self._started
        rate = self.sent / elapsed_s if elapsed_s > 0 else 0.0
        logger.info("published %d telemetry messages in %.1f s (%.0f msg/s)", self.sent, elapsed_s, rate)

    def _log_loop(self) -> None:
        previous_sent = 0
        previous_at = time.monotonic()
        while not self._stop.wait(self._interval_s):
            now = time.monotonic()
            sent = self.sent
            rate = (sent - previous_sent) / (now - previous_at)
            totals = self._publisher.totals()
            virtual = "-" if self.virtual_ms is None else format_ms(self.virtual_ms, self._zone)
            logger.info(
                "published %d telemetry messages (%.0f msg/s over the last %.0f s); broker acknowledged %d, "
                "%d in flight, %d dropped, %d rejected; virtual time %s",
                sent, rate, now - previous_at, totals.acknowledged, totals.in_flight, totals.dropped,
                totals.rejected, virtual,
            )
            previous_sent, previous_at = sent, now


def run_load(
    timeline: Timeline,
    publisher: Publisher,
    stop: threading.Event,
    rate_per_s: float,
    count: int | None,
    progress: ProgressLog,
) -> int:
    """Publish ``count`` messages (without end when None) at ``rate_per_s``, and return how many went out.

    A full node queue makes the loop wait for the broker instead of dropping messages, so the
    rate is an upper bound that a slow broker lowers.
    """
    bucket = TokenBucket(rate_per_s)
    while count is None or progress.sent < count:
        bucket.acquire()
        if stop.is_set():
            break
        if timeline.peek_ms() is None:
            logger.warning(_NOTHING_TO_SEND)
            break

        message = next(timeline)
        if publisher.publish(message, wait_for_queue=True, stop=stop):
            progress.sent += 1
            progress.virtual_ms = message.ts_ms
    return progress.sent


def run_live(
    timeline: Timeline,
    publisher: Publisher,
    stop: threading.Event,
    progress: ProgressLog,
    clock: WallClock,
    count: int | None = None,
    backfill_rate_per_s: float | None = None,
) -> int:
    """Publish each message when the clock reaches its timestamp, and return how many went out.

    Messages whose time has passed are history: they go out at once, at most
    ``backfill_rate_per_s`` per second (no limit when None), waiting for the broker when a
    node queue is full. Live messages are never delayed that way. When a node's queue is full
    they are dropped and counted, like the readings of a device whose buffer is full.
    """
    bucket = TokenBucket(backfill_rate_per_s) if backfill_rate_per_s else None
    catching_up = timeline.start_ms < clock.now_ms() - LIVE_LATENESS_MS
    backfill_started = time.monotonic()

    while count is None or progress.sent < count:
        next_ms = timeline.peek_ms()
        if next_ms is None:
            logger.warning(_NOTHING_TO_SEND)
            break
        if stop.is_set():
            break

        in_past = next_ms < clock.now_ms() - LIVE_LATENESS_MS
        if in_past:
            if bucket is not None:
                bucket.acquire()
        else:
            if catching_up:
                catching_up = False
                logger.info(
                    "backfill finished: %d messages in %.1f s; publishing live",
                    progress.sent, time.monotonic() - backfill_started,
                )
            if clock.wait_until_ms(next_ms, stop):
                break
        if stop.is_set():
            break

        message = next(timeline)
        if publisher.publish(message, wait_for_queue=in_past, stop=stop):
            progress.sent += 1
            progress.virtual_ms = message.ts_ms
    return progress.sent
