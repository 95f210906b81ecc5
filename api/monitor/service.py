"""The monitor of the API process: turns the message stream into alerts and node states.

It listens to the live view's MQTT subscription (``api.live.LiveSubscriber``): room readings
feed the comfort evaluator, every reading and status message feeds the liveness tracker, and
status messages and configuration reports update the node states. A periodic check opens and
closes offline alerts and ends comfort alerts after office hours. Each alert change is stored
in the registry and sent to the live view's clients as an ``alert`` event.

Run one monitor per deployment: two API processes with the monitor on would both open the
same alerts (the store keeps one open alert per subject, so they would not duplicate rows, but
they would race on closing them).
"""

import asyncio
import json
import logging
import time
from datetime import datetime
from zoneinfo import ZoneInfo

from contract.catalogue import Catalogue, DeviceKind
from contract.payloads import ConfigReport, NodeStatus, RoomReading
from contract.topics import Stream, TopicParts

from ..live import LiveEvent, LiveHub
from ..office_hours import OfficeHours
from .alert_store import AlertStore, NewAlert, alert_json
from .comfort import Change, ComfortChange, ComfortEvaluator, Subject
from .liveness import LivenessTracker, Offline
from .node_states import NodeStateStore
from .rules import COMFORT_MEASUREMENTS, AlertRules, Severity

logger = logging.getLogger(__name__)

OFFLINE_KINDS = ("node_offline", "device_offline")


def now_ms() -> int:
    """Return the current time, UTC epoch ms."""
    return int(time.time() * 1000)


class MonitorService:
    """Alerts and node states of every OPD, updated from the MQTT stream."""

    def __init__(
        self,
        catalogue: Catalogue,
        office_hours: OfficeHours,
        rules: AlertRules,
        alerts: AlertStore,
        node_states: NodeStateStore,
        hub: LiveHub,
        zone: ZoneInfo,
        check_interval_s: float = 15.0,
        started_ms: int | None = None,
    ) -> None:
        self.catalogue = catalogue
        self.office_hours = office_hours
        self.rules = rules
        self.alerts = alerts
        self.node_states = node_states
        self.hub = hub
        self.zone = zone
        self.check_interval_s = check_interval_s
        self.comfort = ComfortEvaluator(rules)
        self.liveness = LivenessTracker(started_ms or now_ms(), rules.device_offline_s, rules.node_offline_s)
        self.failures = 0
        self._calendars = {}
        self._expect_catalogue()
        self._restore_open_comfort_alerts()

    # -- messages ---------------------------------------------------------------------------

    def on_message(self, parts: TopicParts, model, retained: bool, received_ms: int) -> None:
        """Apply one valid message (a ``MessageListener`` of the live view)."""
        if parts.stream is Stream.STATUS:
            self._on_status(parts, model, retained, received_ms)
        elif parts.stream is Stream.CONFIG_REPORTED:
            report: ConfigReport = model
            self.node_states.record_report(parts.opd, parts.node, report.version, report.result.value, report.error, report.ts)
        elif parts.stream in (Stream.ROOM, Stream.ENERGY, Stream.ATTENDANCE):
            sampled = parts.stream is not Stream.ATTENDANCE
            self.liveness.reading(parts.opd, parts.node, model.device, model.ts, received_ms, sampled)
            if parts.stream is Stream.ROOM:
                self._on_room(parts, model)

    def _on_status(self, parts: TopicParts, status: NodeStatus, retained: bool, received_ms: int) -> None:
        self.liveness.status(
            parts.opd, parts.node, status.state.value, status.ts, received_ms, retained, status.device_last_seen
        )
        fields = status.model_dump(mode="json", exclude_none=True)
        self.node_states.record_status(parts.opd, parts.node, status.state.value, status.ts, received_ms, fields)

    def _on_room(self, parts: TopicParts, reading: RoomReading) -> None:
        in_hours = self.in_office_hours(parts.opd, reading.ts)
        for measurement in COMFORT_MEASUREMENTS:
            value = getattr(reading, measurement)
            if value is None:
                continue
            subject = Subject(parts.opd, parts.node, reading.device, reading.room, measurement)
            for change in self.comfort.observe(subject, value, reading.ts, in_hours):
                self._apply_comfort(change)

    # -- periodic check ---------------------------------------------------------------------

    async def run(self) -> None:
        """Check liveness and office hours every ``check_interval_s`` until cancelled."""
        logger.info(
            "monitor started: device offline after %d s, node offline after %d s, comfort limits for %s",
            self.rules.device_offline_s,
            self.rules.node_offline_s,
            ", ".join(sorted(self.rules.comfort)),
        )
        try:
            while True:
                await asyncio.sleep(self.check_interval_s)
                try:
                    # On the event loop, like on_message: the live hub is not thread-safe, and
                    # the check's few small registry writes take milliseconds.
                    self.check(now_ms())
                    self.failures = 0
                except Exception:
                    self.failures += 1
                    logger.exception(
                        "monitor: periodic check failed (%d in a row); retrying in %.0f s",
                        self.failures,
                        self.check_interval_s,
                    )
        finally:
            logger.info("monitor stopped")

    def check(self, at_ms: int) -> None:
        """Open and close offline alerts, and end comfort alerts outside office hours, at ``at_ms``."""
        offline = {(item.opd, item.kind, item.subject): item for item in self.liveness.offline(at_ms)}
        open_now = {(alert.opd_key, alert.kind, alert.subject): alert for alert in self.alerts.open_alerts(list(OFFLINE_KINDS))}

        for key, item in offline.items():
            if key not in open_now:
                self._open_offline(item)
        for key, alert in open_now.items():
            if key not in offline:
                closed = self.alerts.close(alert.opd_key, alert.kind, alert.subject, at_ms)
                if closed is not None:
                    self._announce(closed, "closed")

        if self.rules.office_hours_only:
            for subject in self.comfort.open_subjects():
                if not self.in_office_hours(subject.opd, at_ms):
                    for change in self.comfort.close_after_hours(subject, at_ms):
                        self._apply_comfort(change)

    # -- helpers ----------------------------------------------------------------------------

    def in_office_hours(self, opd: str, ts_ms: int) -> bool:
        """Return True when ``ts_ms`` falls inside the OPD's office hours of that local day."""
        calendar = self._calendars.get(opd)
        if calendar is None:
            calendar = self._calendars[opd] = self.office_hours.calendar(opd)

        local = datetime.fromtimestamp(ts_ms / 1000, self.zone)
        schedule = calendar.day_info(local.date()).schedule
        if schedule is None:
            return False
        return schedule.start <= local.time().replace(tzinfo=None) < schedule.end

    def _apply_comfort(self, change: ComfortChange) -> None:
        subject = change.subject
        key = f"{subject.device}/{subject.measurement}"
        if change.change is Change.OPENED:
            alert = self.alerts.open(
                NewAlert(
                    opd=subject.opd,
                    kind=change.kind,
                    subject=key,
                    severity=change.severity.value,
                    started_ms=change.ts_ms,
                    node=subject.node,
                    device=subject.device,
                    room=subject.room,
                    value=change.value,
                    threshold=change.threshold,
                )
            )
            self._announce(alert, "opened")
        elif change.change is Change.UPDATED:
            alert = self.alerts.update(subject.opd, change.kind, key, change.severity.value, change.value)
            if alert is not None and change.severity_changed:
                self._announce(alert, "severity_changed")
        else:
            alert = self.alerts.close(subject.opd, change.kind, key, change.ts_ms)
            if alert is not None:
                self._announce(alert, "closed")

    def _open_offline(self, item: Offline) -> None:
        severity = "critical" if item.kind == "node_offline" else "warning"
        alert = self.alerts.open(
            NewAlert(
                opd=item.opd,
                kind=item.kind,
                subject=item.subject,
                severity=severity,
                started_ms=item.since_ms,
                node=item.node,
                device=item.device,
                room=self._room_of(item.opd, item.device),
            )
        )
        self._announce(alert, "opened")

    def _announce(self, alert, change: str) -> None:
        data = {**alert_json(alert, self.zone), "change": change}
        logger.info("alert %s: %s %s of %s/%s (%s)", change, alert.severity, alert.kind, alert.opd_key, alert.subject, alert.id)
        self.hub.publish(
            LiveEvent(
                event_id=self.hub.next_id(),
                opd=alert.opd_key,
                stream="alert",
                data=json.dumps(data, separators=(",", ":")),
                event="alert",
            )
        )

    def announce_acknowledged(self, alert) -> None:
        """Send an acknowledged alert to the live view's clients."""
        self._announce(alert, "acknowledged")

    def _room_of(self, opd: str, device: str | None) -> str | None:
        entry = self.catalogue.opd(opd)
        if entry is None or device is None:
            return None
        for node in entry.nodes:
            for candidate in node.devices:
                if candidate.id == device:
                    return candidate.room
        return None

    def _expect_catalogue(self) -> None:
        for opd in self.catalogue.opds:
            for node in opd.nodes:
                self.liveness.expect(opd.id, node.id)
                for device in node.devices:
                    if device.kind is not DeviceKind.ATTENDANCE_TERMINAL:
                        self.liveness.expect(opd.id, node.id, device.id)

    def _restore_open_comfort_alerts(self) -> None:
        for alert in self.alerts.open_alerts():
            if alert.kind in OFFLINE_KINDS or alert.device_key is None:
                continue
            measurement = alert.subject.split("/", 1)[1]
            subject = Subject(alert.opd_key, alert.node_key or "", alert.device_key, alert.room_key, measurement)
            self.comfort.restore_open(subject, alert.kind, Severity(alert.severity), alert.started_at_ms)
