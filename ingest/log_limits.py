"""Logging of repeated problems without flooding the log.

A device that sends the same bad payload every second must not bury every other log line:
each reason is logged at most ``burst`` times per ``window_s``, and the number of suppressed
lines is logged when the window ends.
"""

import logging
import time


class RateLimitedLogger:
    """Log at most ``burst`` lines per reason and window, then count the rest."""

    def __init__(self, logger: logging.Logger, burst: int = 10, window_s: float = 60.0) -> None:
        self._logger = logger
        self._burst = burst
        self._window_s = window_s
        self._windows: dict[str, tuple[float, int]] = {}

    def warning(self, reason: str, message: str, *args) -> None:
        """Log ``message % args`` at WARNING unless ``reason`` used up its burst."""
        self._log(logging.WARNING, reason, message, args)

    def error(self, reason: str, message: str, *args) -> None:
        """Log ``message % args`` at ERROR unless ``reason`` used up its burst."""
        self._log(logging.ERROR, reason, message, args)

    def _log(self, level: int, reason: str, message: str, args: tuple) -> None:
        now = time.monotonic()
        started, count = self._windows.get(reason, (now, 0))
        if now - started >= self._window_s:
            suppressed = count - self._burst
            if suppressed > 0:
                self._logger.log(level, "%d more %r lines were suppressed in the last %.0f s", suppressed, reason, self._window_s)
            started, count = now, 0

        count += 1
        self._windows[reason] = (started, count)
        if count <= self._burst:
            self._logger.log(level, message, *args)
