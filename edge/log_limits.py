"""Logging of repeated problems without flooding the node's log.

A device that sends the same bad reading every 10 s, or a queue that drops readings on every
insert, must not bury every other line. So each key is logged at most ``burst`` times per
``window_s``, and the number of suppressed lines is logged when the window ends.
"""

import logging
import time


class RateLimitedLogger:
    """Log at most ``burst`` lines per key and window, then count the rest."""

    def __init__(self, logger: logging.Logger, burst: int = 5, window_s: float = 60.0) -> None:
        self._logger = logger
        self._burst = burst
        self._window_s = window_s
        self._windows: dict[str, tuple[float, int]] = {}

    def warning(self, key: str, message: str, *args: object) -> None:
        """Log ``message % args`` at WARNING unless ``key`` used up its burst in this window."""
        self._log(logging.WARNING, key, message, args)

    def error(self, key: str, message: str, *args: object) -> None:
        """Log ``message % args`` at ERROR unless ``key`` used up its burst in this window."""
        self._log(logging.ERROR, key, message, args)

    def _log(self, level: int, key: str, message: str, args: tuple[object, ...]) -> None:
        now = time.monotonic()
        started, count = self._windows.get(key, (now, 0))
        if now - started >= self._window_s:
            suppressed = count - self._burst
            if suppressed > 0:
                self._logger.log(level, "%d more %r log lines were suppressed in the last %.0f s", suppressed, key, now - started)
            started, count = now, 0

        count += 1
        self._windows[key] = (started, count)
        if count <= self._burst:
            self._logger.log(level, message, *args)
