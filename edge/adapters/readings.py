"""Building contract payloads from device values, and counting what is dropped.

Firmware sends numbers as strings, NaN, objects where a number belongs, or nothing at all.
``FieldCollector`` keeps a value only when it is a finite number (or a boolean for a boolean
field) and records a ``FieldProblem`` for anything else, so the adapter still emits the rest
of the reading. ``ProblemLog`` counts every problem in the adapter's ``AdapterStats`` and
logs it at most once per interval for each device and reason, with the number of repeats
that were not logged.
"""

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from .base import AdapterStats

PROBLEM_LOG_INTERVAL_S = 60.0
"""Minimum time between two log lines for the same device and reason."""


@dataclass(frozen=True, slots=True)
class FieldProblem:
    """One device value that was not put into a payload."""

    reason: str
    """Stable label counted in the stats, such as ``nan_field`` or ``invalid_field``."""

    field: str
    detail: str


class FieldCollector:
    """Payload fields of one reading, and the problems found while collecting them."""

    def __init__(self) -> None:
        self.fields: dict[str, object] = {}
        self.problems: list[FieldProblem] = []

    def add_number(self, field: str, value: object, source: str) -> None:
        """Store ``value`` as the float ``field`` when it is a finite JSON number.

        ``None`` means the device did not send the value and is skipped without a problem.
        ``source`` names the device's own key in the problem detail, e.g. ``ENERGY.Power``.
        """
        if value is None:
            return

        if isinstance(value, bool) or not isinstance(value, int | float):
            self.drop("invalid_field", field, f"{source}={_preview(value)} is not a number")
            return

        if not math.isfinite(value):
            self.drop("nan_field", field, f"{source}={value!r} is not a finite number")
            return

        self.fields[field] = float(value)

    def add_bool(self, field: str, value: object, source: str) -> None:
        """Store ``value`` as the boolean ``field`` when it is a JSON boolean."""
        if value is None:
            return

        if not isinstance(value, bool):
            self.drop("invalid_field", field, f"{source}={_preview(value)} is not a boolean")
            return

        self.fields[field] = value

    def drop(self, reason: str, field: str, detail: str) -> None:
        """Record that ``field`` was left out of the payload for ``reason``."""
        self.problems.append(FieldProblem(reason, field, detail))


class ProblemLog:
    """Counts problems in ``stats`` and logs each device and reason at most once per interval."""

    def __init__(
        self,
        stats: AdapterStats,
        logger: logging.Logger,
        adapter_id: str,
        interval_s: float = PROBLEM_LOG_INTERVAL_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stats = stats
        self.logger = logger
        self.adapter_id = adapter_id
        self.interval_s = interval_s
        self._monotonic = monotonic
        self._last_logged: dict[tuple[str, str], float] = {}
        self._suppressed: dict[tuple[str, str], int] = {}

    def report(self, reason: str, device: str, message: str, level: int = logging.WARNING) -> None:
        """Count one problem of ``reason`` for ``device`` and log ``message`` unless logged recently."""
        self.stats.count_error(reason)
        self._log(reason, device, message, level)

    def report_fields(self, device: str, problems: list[FieldProblem]) -> None:
        """Count and log the fields dropped from one reading of ``device``."""
        for problem in problems:
            self.stats.count_error(problem.reason)
            self.stats.fields_dropped += 1
            self._log(problem.reason, device, f"field {problem.field} dropped: {problem.detail}", logging.WARNING)

    def _log(self, reason: str, device: str, message: str, level: int) -> None:
        key = (reason, device)
        now = self._monotonic()
        last = self._last_logged.get(key)
        if last is not None and now - last < self.interval_s:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return

        self._last_logged[key] = now
        repeats = self._suppressed.pop(key, 0)
        suffix = f" ({repeats} more since the last log line)" if repeats else ""
        self.logger.log(level, "%s: device %s: %s [%s]%s", self.adapter_id, device, message, reason, suffix)


def _preview(value: object, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."
