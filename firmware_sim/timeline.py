"""Time-ordered stream of every message the simulated regency sends, from a start time on.

Room sensors and energy meters report every ``interval_s`` seconds. Each device's first
reading falls at a random offset inside the first interval, drawn from the device's own
random stream, so devices do not all report in the same millisecond. Attendance terminals
report each punch at its planned time. Messages with the same timestamp come out in catalogue
order, so a seed and a start time always give the same sequence.
"""

import heapq
from collections.abc import Iterator
from dataclasses import dataclass

from contract import Stream, build_topic

from .attendance import AttendanceTerminal, ScheduledPunch
from .energy_meter import EnergyMeter
from .office_hours import MS_PER_S
from .regency import SimNode, SimRegency
from .room_sensor import RoomSensor


@dataclass(frozen=True, slots=True)
class Message:
    """One MQTT message of a simulated node, at virtual time ``ts_ms``."""

    ts_ms: int
    opd: str
    node: str
    stream: Stream
    topic: str
    payload: bytes


class _PeriodicSource:
    def __init__(self, node: SimNode, device: RoomSensor | EnergyMeter, start_ms: int, interval_ms: int) -> None:
        self._node = node
        self._device = device
        self._topic = build_topic(node.opd, node.node, device.stream)
        self._interval_ms = interval_ms
        self.next_ms = start_ms + device.key.random("schedule").randrange(interval_ms)

    def emit(self) -> Message:
        reading = self._device.reading(self.next_ms)
        self.next_ms += self._interval_ms
        return Message(reading.ts_ms, self._node.opd, self._node.node, reading.stream, self._topic, reading.payload)


class _PunchSource:
    def __init__(self, node: SimNode, terminal: AttendanceTerminal, start_ms: int) -> None:
        self._node = node
        self._terminal = terminal
        self._topic = build_topic(node.opd, node.node, Stream.ATTENDANCE)
        self._punches = terminal.punches_from(start_ms)
        self._next: ScheduledPunch | None = next(self._punches, None)

    @property
    def next_ms(self) -> int | None:
        return None if self._next is None else self._next.ts_ms

    def emit(self) -> Message:
        reading = self._terminal.event(self._next)
        self._next = next(self._punches, None)
        return Message(reading.ts_ms, self._node.opd, self._node.node, reading.stream, self._topic, reading.payload)


class Timeline:
    """Iterator over the regency's messages in timestamp order, without end."""

    def __init__(self, regency: SimRegency, start_ms: int, interval_s: float) -> None:
        interval_ms = round(interval_s * MS_PER_S)
        if interval_ms < 1:
            raise ValueError(f"reading interval {interval_s} s is too short: use at least 0.001 s")

        self.start_ms = start_ms
        self._heap: list[tuple[int, int, _PeriodicSource | _PunchSource]] = []
        self._source_count = 0
        for node in regency.nodes:
            for device in node.sensors:
                self._push(_PeriodicSource(node, device, start_ms, interval_ms))
            for terminal in node.terminals:
                self._push(_PunchSource(node, terminal, start_ms))

    def _push(self, source: _PeriodicSource | _PunchSource) -> None:
        # The insertion index breaks timestamp ties in catalogue order.
        if source.next_ms is not None:
            heapq.heappush(self._heap, (source.next_ms, self._source_count, source))
        self._source_count += 1

    def __iter__(self) -> Iterator[Message]:
        return self

    def __next__(self) -> Message:
        if not self._heap:
            raise StopIteration

        _, order, source = self._heap[0]
        message = source.emit()
        if source.next_ms is None:
            heapq.heappop(self._heap)
        else:
            heapq.heapreplace(self._heap, (source.next_ms, order, source))
        return message

    def peek_ms(self) -> int | None:
        """Return the timestamp of the next message, or None when no device has more to send."""
        return self._heap[0][0] if self._heap else None
