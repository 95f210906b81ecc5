"""Alerts in the registry: open, follow, close, acknowledge and list them.

``open`` keeps one open alert per (OPD, kind, subject): it returns the open one instead of
adding a second. Each write is one short transaction.
"""

from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from registry.db import transaction
from registry.models import Alert

from ..timewindows import from_epoch_ms

OPEN = "open"
CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class NewAlert:
    """Fields of an alert to open."""

    opd: str
    kind: str
    subject: str
    severity: str
    started_ms: int
    node: str | None = None
    device: str | None = None
    room: str | None = None
    value: float | None = None
    threshold: float | None = None


class AlertStore:
    """Alert rows of the registry."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def open(self, new: NewAlert) -> Alert:
        """Open an alert, or return the one already open for its OPD, kind and subject."""
        with transaction(self.sessions) as session:
            existing = self._find_open(session, new.opd, new.kind, new.subject)
            if existing is not None:
                return existing

            alert = Alert(
                opd_key=new.opd,
                node_key=new.node,
                device_key=new.device,
                room_key=new.room,
                kind=new.kind,
                subject=new.subject,
                severity=new.severity,
                state=OPEN,
                value=new.value,
                peak_value=new.value,
                threshold=new.threshold,
                started_at_ms=new.started_ms,
            )
            session.add(alert)
            session.flush()
            return alert

    def update(self, opd: str, kind: str, subject: str, severity: str, value: float | None) -> Alert | None:
        """Record the newest value and severity of an open alert; None when none is open."""
        with transaction(self.sessions) as session:
            alert = self._find_open(session, opd, kind, subject)
            if alert is None:
                return None

            alert.severity = severity
            alert.value = value
            if value is not None and (alert.peak_value is None or _further(kind, value, alert.peak_value)):
                alert.peak_value = value
            return alert

    def close(self, opd: str, kind: str, subject: str, ended_ms: int) -> Alert | None:
        """Close the open alert of ``subject``; None when none is open."""
        with transaction(self.sessions) as session:
            alert = self._find_open(session, opd, kind, subject)
            if alert is None:
                return None

            alert.state = CLOSED
            alert.ended_at_ms = max(ended_ms, alert.started_at_ms)
            return alert

    def acknowledge(self, alert_id: int, username: str, now_ms: int) -> Alert | None:
        """Mark an alert as seen by ``username``; the first acknowledgement is kept. None when unknown."""
        with transaction(self.sessions) as session:
            alert = session.get(Alert, alert_id)
            if alert is None:
                return None
            if alert.acknowledged_at_ms is None:
                alert.acknowledged_by = username
                alert.acknowledged_at_ms = now_ms
            return alert

    def get(self, alert_id: int) -> Alert | None:
        """Return one alert, or None."""
        with self.sessions() as session:
            return session.get(Alert, alert_id)

    def find(self, state: str | None, opds: list[str] | None, limit: int, kinds: list[str] | None = None) -> list[Alert]:
        """Return alerts newest first, filtered by state (None = all), OPDs and kinds."""
        statement = select(Alert).order_by(Alert.started_at_ms.desc(), Alert.id.desc()).limit(limit)
        if state is not None:
            statement = statement.where(Alert.state == state)
        if opds is not None:
            statement = statement.where(Alert.opd_key.in_(opds))
        if kinds is not None:
            statement = statement.where(Alert.kind.in_(kinds))
        with self.sessions() as session:
            return list(session.scalars(statement))

    def open_alerts(self, kinds: list[str] | None = None) -> list[Alert]:
        """Return every open alert, e.g. to restore the monitor's state at start-up."""
        return self.find(OPEN, None, 1_000_000, kinds)

    def open_counts(self) -> dict[str, int]:
        """Return the number of open alerts per OPD."""
        statement = select(Alert.opd_key, func.count()).where(Alert.state == OPEN).group_by(Alert.opd_key)
        with self.sessions() as session:
            return {opd: count for opd, count in session.execute(statement)}

    @staticmethod
    def _find_open(session: Session, opd: str, kind: str, subject: str) -> Alert | None:
        statement = select(Alert).where(
            Alert.opd_key == opd, Alert.kind == kind, Alert.subject == subject, Alert.state == OPEN
        )
        return session.scalars(statement).first()


def _further(kind: str, value: float, peak: float) -> bool:
    """Return True when ``value`` is further out of range than ``peak`` for an alert of ``kind``."""
    return value < peak if kind.endswith("_low") else value > peak


def alert_json(alert: Alert, zone: ZoneInfo) -> dict:
    """Return the API's JSON form of an alert, times in the deployment zone."""

    def local(ms: int | None) -> str | None:
        return from_epoch_ms(ms, zone).isoformat() if ms is not None else None

    return {
        "id": alert.id,
        "opd": alert.opd_key,
        "node": alert.node_key,
        "device": alert.device_key,
        "room": alert.room_key,
        "kind": alert.kind,
        "severity": alert.severity,
        "state": alert.state,
        "value": alert.value,
        "peak_value": alert.peak_value,
        "threshold": alert.threshold,
        "started_at": local(alert.started_at_ms),
        "ended_at": local(alert.ended_at_ms),
        "acknowledged_by": alert.acknowledged_by,
        "acknowledged_at": local(alert.acknowledged_at_ms),
    }
