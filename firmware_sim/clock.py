"""Wall clock of live mode and parsing of start times.

Generators never read the clock: the runner passes them the virtual time of each reading.
In live mode that virtual time is this clock's UTC time; in load mode it runs ahead of it.
"""

import threading
import time
from datetime import datetime
from zoneinfo import ZoneInfo

from .office_hours import MS_PER_S

_MAX_SLEEP_S = 1.0
"""Maximum length of one sleep, so that a wall-clock step (NTP) is noticed within a second."""


class WallClock:
    """System UTC time in epoch milliseconds."""

    def now_ms(self) -> int:
        """Return the current UTC time in epoch milliseconds."""
        return time.time_ns() // 1_000_000

    def wait_until_ms(self, ts_ms: int, stop: threading.Event) -> bool:
        """Sleep until the clock reaches ``ts_ms`` or ``stop`` is set. Return True when stopped."""
        while True:
            remaining_s = (ts_ms - self.now_ms()) / MS_PER_S
            if remaining_s <= 0:
                return stop.is_set()
            if stop.wait(min(remaining_s, _MAX_SLEEP_S)):
                return True


def parse_start(text: str, zone: ZoneInfo) -> int:
    """Parse an ISO 8601 time into UTC epoch milliseconds.

    A time without an offset, such as ``2025-01-14T07:00``, is local time in ``zone``.

    Raises:
        ValueError: ``text`` is not an ISO 8601 date or time.
    """
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"start time {text!r} is not ISO 8601: use e.g. 2025-01-14T07:00 (local) or 2025-01-14T00:00Z"
        ) from None

    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return round(moment.timestamp() * MS_PER_S)


def format_ms(ts_ms: int, zone: ZoneInfo) -> str:
    """Format epoch milliseconds as local ISO time in ``zone``, to the second, for logs."""
    return datetime.fromtimestamp(ts_ms / MS_PER_S, zone).isoformat(timespec="seconds")
