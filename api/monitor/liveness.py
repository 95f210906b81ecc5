"""Liveness of edge nodes and devices, telling a link that is down from a device that is. Pure logic.

A node is *offline* when its newest status message is its last will (``state: offline``), or
when nothing at all (status, heartbeat or reading) came from it for ``node_offline_s``. While
its node is offline, a device cannot be judged: its silence is the link's, so it gets no
alert of its own, and the node's alert stands for the office's link being down.

A device is *offline* when its node is up and its newest reading is older than
``device_offline_s``. Only sampling devices (room sensors, energy meters) are judged: an
attendance terminal is silent whenever no employee punches, at night and at weekends, so its
events only show that its node is up. The newest reading time is the largest ``ts`` seen from the device,
from its readings and from its node's heartbeat (``device_last_seen``), never later than the
receive time. Silence is counted from the tracker's start at the earliest, so a fresh start
raises no device alert before the timeout has passed. Readings with old times (a backlog, a
backfill) arrive first after a start and would otherwise open alerts that close seconds
later. The alert's start is still the device's newest reading.
"""

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Offline:
    """One node or device that is offline, and since when (UTC epoch ms)."""

    kind: str
    opd: str
    node: str
    device: str | None
    since_ms: int

    @property
    def subject(self) -> str:
        """Key of the alert: one open alert per kind and subject."""
        return f"{self.node}/{self.device}" if self.device else self.node


@dataclass(slots=True)
class _Node:
    last_heard_ms: int | None = None
    state: str = "unknown"
    state_since_ms: int | None = None
    devices: dict[str, int | None] = field(default_factory=dict)


class LivenessTracker:
    """Newest signs of life of every node and device, and who is offline at a given time."""

    def __init__(self, started_ms: int, device_offline_s: int, node_offline_s: int) -> None:
        self.started_ms = started_ms
        self.device_offline_ms = device_offline_s * 1000
        self.node_offline_ms = node_offline_s * 1000
        self._nodes: dict[tuple[str, str], _Node] = {}

    def expect(self, opd: str, node: str, device: str | None = None) -> None:
        """Declare a node, and one of its devices, that should be alive."""
        entry = self._nodes.setdefault((opd, node), _Node())
        if device is not None:
            entry.devices.setdefault(device, None)

    def reading(self, opd: str, node: str, device: str, ts_ms: int, received_ms: int, sampled: bool = True) -> None:
        """Record a reading of ``device``: the node is heard now, the device was alive at ``ts_ms``.

        ``sampled`` is False for event streams (attendance): the device is then not judged.
        """
        entry = self._heard(opd, node, received_ms)
        if not sampled:
            return
        seen_ms = min(ts_ms, received_ms)
        previous = entry.devices.get(device)
        if previous is None or seen_ms > previous:
            entry.devices[device] = seen_ms

    def status(
        self, opd: str, node: str, state: str, ts_ms: int | None, received_ms: int, retained: bool,
        device_last_seen: dict[str, int] | None = None,
    ) -> None:
        """Record a status message. A retained one is old news: it sets the state but not the time heard."""
        entry = self._nodes.setdefault((opd, node), _Node())
        if not retained:
            entry.last_heard_ms = max(entry.last_heard_ms or 0, received_ms)
        if state != entry.state:
            entry.state = state
            entry.state_since_ms = ts_ms if ts_ms is not None else received_ms
        for device, seen_ms in (device_last_seen or {}).items():
            # Only devices already judged: the map also lists attendance terminals.
            if device not in entry.devices:
                continue
            seen_ms = min(seen_ms, received_ms)
            previous = entry.devices[device]
            if previous is None or seen_ms > previous:
                entry.devices[device] = seen_ms

    def offline(self, now_ms: int) -> list[Offline]:
        """Return every node and device that is offline at ``now_ms``."""
        found: list[Offline] = []
        for (opd, node), entry in self._nodes.items():
            heard_ms = entry.last_heard_ms if entry.last_heard_ms is not None else self.started_ms
            if entry.state == "offline":
                found.append(Offline("node_offline", opd, node, None, entry.state_since_ms or heard_ms))
                continue
            if now_ms - heard_ms > self.node_offline_ms:
                found.append(Offline("node_offline", opd, node, None, heard_ms))
                continue

            for device, seen_ms in entry.devices.items():
                since_ms = seen_ms if seen_ms is not None else self.started_ms
                if now_ms - max(since_ms, self.started_ms) > self.device_offline_ms:
                    found.append(Offline("device_offline", opd, node, device, since_ms))
        return found

    def _heard(self, opd: str, node: str, received_ms: int) -> _Node:
        entry = self._nodes.setdefault((opd, node), _Node())
        entry.last_heard_ms = max(entry.last_heard_ms or 0, received_ms)
        if entry.state == "offline":
            # Readings flow again: the node reconnected even if its online status is still to come.
            entry.state = "online"
            entry.state_since_ms = received_ms
        return entry
