"""Comfort alerts of room sensors: a state machine per device and measurement. Pure logic.

Each (OPD, device, measurement) is NORMAL, PENDING (outside a limit since ``since_ms``, not yet
for ``min_duration_s``) or OPEN (an alert is open). Readings are applied in the order of their
``ts``. A reading older than the newest one applied to its subject is ignored, because an
edge node's backlog may arrive after newer live readings.

- A value above ``high.warning`` (or below ``low.warning``) is out of range, and beyond the
  ``critical`` level the severity is critical. A value equal to a limit is inside it.
- An alert opens once the value has stayed out of range for ``min_duration_s`` of reading
  time. Its start is the first reading out of range.
- An open alert follows the value: it escalates to critical and back, and keeps the peak.
- It closes at the first reading back inside the limit by ``hysteresis`` (below
  ``high.warning - hysteresis``, above ``low.warning + hysteresis``), at that reading's time.
- With ``office_hours_only``, readings outside the OPD's office hours close an open alert at
  their time and evaluate nothing else; ``close_after_hours`` does the same when no reading
  comes.
"""

from dataclasses import dataclass
from enum import StrEnum

from .rules import AlertRules, ComfortRule, Severity


class Change(StrEnum):
    """Kind of change of an alert."""

    OPENED = "opened"
    UPDATED = "updated"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class Subject:
    """Subject of a comfort alert: one measurement of one room sensor."""

    opd: str
    node: str
    device: str
    room: str | None
    measurement: str


@dataclass(frozen=True, slots=True)
class ComfortChange:
    """One change of a comfort alert, to be stored and announced."""

    change: Change
    subject: Subject
    kind: str
    severity: Severity
    value: float | None
    threshold: float | None
    ts_ms: int
    severity_changed: bool = False
    """For an update: the severity differs from the one before."""


@dataclass(slots=True)
class _State:
    last_ts_ms: int = 0
    since_ms: int | None = None
    open_kind: str | None = None
    open_severity: Severity | None = None


def measurement_name(measurement: str) -> str:
    """Return the measurement without its unit suffix: ``co2_ppm`` → ``co2``."""
    return measurement.rsplit("_", 1)[0]


def classify(rule: ComfortRule, value: float) -> tuple[str, Severity, float] | None:
    """Return the side (``high``/``low``), severity and warning threshold ``value`` breaks, or None."""
    if rule.high is not None and value > rule.high.warning:
        critical = rule.high.critical is not None and value > rule.high.critical
        return "high", Severity.CRITICAL if critical else Severity.WARNING, rule.high.warning
    if rule.low is not None and value < rule.low.warning:
        critical = rule.low.critical is not None and value < rule.low.critical
        return "low", Severity.CRITICAL if critical else Severity.WARNING, rule.low.warning
    return None


def back_inside(rule: ComfortRule, side: str, value: float) -> bool:
    """Return True when ``value`` has left the ``side`` limit by at least the hysteresis."""
    if side == "high" and rule.high is not None:
        return value < rule.high.warning - rule.hysteresis
    if side == "low" and rule.low is not None:
        return value > rule.low.warning + rule.hysteresis
    return True


class ComfortEvaluator:
    """Comfort state of every room sensor seen, and the alert changes each reading causes."""

    def __init__(self, rules: AlertRules) -> None:
        self.rules = rules
        self._states: dict[Subject, _State] = {}

    def restore_open(self, subject: Subject, kind: str, severity: Severity, started_ms: int) -> None:
        """Mark ``subject`` as having an open alert, e.g. one loaded from the registry at start-up."""
        self._states[subject] = _State(last_ts_ms=started_ms, since_ms=started_ms, open_kind=kind, open_severity=severity)

    def observe(self, subject: Subject, value: float, ts_ms: int, in_office_hours: bool) -> list[ComfortChange]:
        """Apply one reading of ``subject``; return the alert changes it causes (often none)."""
        rule = self.rules.comfort_rule(subject.opd, subject.measurement)
        if rule is None:
            return []

        state = self._states.setdefault(subject, _State())
        if ts_ms < state.last_ts_ms:
            return []
        state.last_ts_ms = ts_ms

        if self.rules.office_hours_only and not in_office_hours:
            return self._close(subject, state, value, ts_ms)

        if state.open_kind is not None:
            return self._follow_open(subject, state, rule, value, ts_ms)

        breach = classify(rule, value)
        if breach is None:
            state.since_ms = None
            return []

        side, severity, threshold = breach
        if state.since_ms is None:
            state.since_ms = ts_ms
        if ts_ms - state.since_ms < self.rules.min_duration_s * 1000:
            return []

        state.open_kind = f"{measurement_name(subject.measurement)}_{side}"
        state.open_severity = severity
        return [ComfortChange(Change.OPENED, subject, state.open_kind, severity, value, threshold, state.since_ms)]

    def close_after_hours(self, subject: Subject, now_ms: int) -> list[ComfortChange]:
        """Close the open alert of ``subject`` at ``now_ms`` because office hours are over."""
        state = self._states.get(subject)
        if state is None:
            return []
        return self._close(subject, state, None, now_ms)

    def open_subjects(self) -> list[Subject]:
        """Return every subject with an open alert."""
        return [subject for subject, state in self._states.items() if state.open_kind is not None]

    def _follow_open(self, subject: Subject, state: _State, rule: ComfortRule, value: float, ts_ms: int) -> list[ComfortChange]:
        side = state.open_kind.rsplit("_", 1)[1]
        limit = rule.high if side == "high" else rule.low
        threshold = limit.warning if limit is not None else None
        if back_inside(rule, side, value):
            return self._close(subject, state, value, ts_ms)

        breach = classify(rule, value)
        severity = breach[1] if breach is not None and breach[0] == side else Severity.WARNING
        severity_changed = severity is not state.open_severity
        state.open_severity = severity
        return [ComfortChange(Change.UPDATED, subject, state.open_kind, severity, value, threshold, ts_ms, severity_changed)]

    def _close(self, subject: Subject, state: _State, value: float | None, ts_ms: int) -> list[ComfortChange]:
        state.since_ms = None
        if state.open_kind is None:
            return []

        kind, severity = state.open_kind, state.open_severity
        state.open_kind = None
        state.open_severity = None
        return [ComfortChange(Change.CLOSED, subject, kind, severity, value, None, ts_ms)]
