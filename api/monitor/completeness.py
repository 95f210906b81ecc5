"""Daily data completeness: readings received against readings expected. Pure logic.

A device that samples (room sensor, energy meter) is expected to send one reading per
``expected_interval_s`` of its kind. Attendance terminals send events, so they have no
expected count. For the current day the expectation covers local midnight up to now. The
received count of a device is its number of points in the day, counted on the field it sends
most often, because a reading may lack a field that validation dropped.

A device that sends faster than expected (a meter with ``PowerDelta`` extra messages) is
capped at 100 % so it cannot hide a silent device of the same office in the total.
"""

from dataclasses import dataclass

KIND_BY_MEASUREMENT = {"room": "room_sensor", "energy": "energy_meter"}
"""Device kind of each sampled measurement."""


@dataclass(frozen=True, slots=True)
class DeviceCompleteness:
    """Received and expected readings of one device in one day."""

    node: str
    device: str
    kind: str
    expected: int
    received: int

    @property
    def ratio(self) -> float | None:
        """Share of expected readings received, 0-1, capped at 1; None when none were expected."""
        if self.expected <= 0:
            return None
        return min(self.received / self.expected, 1.0)


def expected_readings(interval_s: int, covered_s: float) -> int:
    """Return how many readings a device sampling every ``interval_s`` sends in ``covered_s`` seconds."""
    if interval_s <= 0 or covered_s <= 0:
        return 0
    return int(covered_s // interval_s)


def office_ratio(devices: list[DeviceCompleteness]) -> float | None:
    """Return the office's share of expected readings received, each device capped at its expectation."""
    expected = sum(device.expected for device in devices)
    if expected == 0:
        return None
    received = sum(min(device.received, device.expected) for device in devices)
    return received / expected
