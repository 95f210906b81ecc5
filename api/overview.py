"""Command-center overview of every OPD: devices, attendance, energy and the worst room.

Pure assembly, no I/O: ``api.routes.overview`` runs the InfluxQL statements and passes their
rows here, already grouped by OPD.

- **Devices.** A device is known when the catalogue lists it or it sent a point in the last
  24 hours (or ``device_offline_s``, when longer). It is online when its newest point is at most ``device_offline_s`` old, else
  offline. A node is offline when its newest ``node_status`` point has ``state = offline``.
- **Attendance today.** Distinct employees with a punch since local midnight, divided by the
  OPD's ``employees`` in the catalogue. The rate is None when the catalogue gives no employees.
- **Energy today.** kWh from local midnight to now, from the cumulative registers with the
  rules of ``api.energy``. The usual value is the median of the kWh of the same weekday over
  the previous 4 weeks, each from local midnight up to the same local time of day. Weeks in
  which no meter of the OPD sent a reading are left out of the median.
- **Worst room.** Among rooms whose newest reading is at most ``device_offline_s`` old, the
  room with the largest relative excess over a comfort limit (see ``comfort_breaches``). The
  API passes the warning levels of its alert rules, so the overview, the room list and the
  alerts judge a room alike.
"""

from dataclasses import dataclass, field
from statistics import median

from .energy import consumption_per_bucket

CO2_MAX_PPM = 1_000.0
"""CO2 above this is uncomfortable, ppm."""

TEMPERATURE_MIN_C = 24.0
TEMPERATURE_MAX_C = 27.0
"""Comfortable air temperature band, degrees Celsius."""

HUMIDITY_MAX_PCT = 70.0
"""Relative humidity above this is uncomfortable, percent."""

USUAL_WEEKS = 4
"""Number of previous same weekdays whose median is the usual energy of today."""


@dataclass(frozen=True, slots=True)
class Breach:
    """One comfort limit a reading breaks; ``excess`` is the distance to the limit over the limit."""

    field: str
    limit: str
    value: float
    excess: float


@dataclass(frozen=True, slots=True)
class RoomReading:
    """Newest reading of one room sensor: UTC epoch ms and the comfort fields it carried."""

    room: str
    node: str
    device: str
    ts: int
    co2_ppm: float | None = None
    temperature_c: float | None = None
    humidity_pct: float | None = None


@dataclass(frozen=True, slots=True)
class WorstRoom:
    """The room furthest outside comfort and the limits its reading breaks."""

    reading: RoomReading
    breaches: list[Breach]

    @property
    def score(self) -> float:
        """Largest relative excess among the breaches."""
        return max(breach.excess for breach in self.breaches)


@dataclass(slots=True)
class DeviceCounts:
    """Device and node state of one OPD."""

    known: int
    online: int
    offline: int
    offline_nodes: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class EnergyToday:
    """kWh since local midnight and the usual kWh of this weekday up to the same time."""

    today_kwh: float | None
    usual_kwh: float | None
    usual_weeks: int


ComfortLimit = tuple[str, str, float]
"""A comfort limit: reading field, ``>`` or ``<``, and the limit; a value equal to it is fine."""

DEFAULT_LIMITS: tuple[ComfortLimit, ...] = (
    ("co2_ppm", ">", CO2_MAX_PPM),
    ("temperature_c", ">", TEMPERATURE_MAX_C),
    ("temperature_c", "<", TEMPERATURE_MIN_C),
    ("humidity_pct", ">", HUMIDITY_MAX_PCT),
)
"""Limits used when the caller passes none; the API passes the warning levels of its alert rules."""


def comfort_breaches(reading: RoomReading, limits: tuple[ComfortLimit, ...] = DEFAULT_LIMITS) -> list[Breach]:
    """Return the comfort limits ``reading`` breaks.

    Each breach's ``excess`` is its distance to the limit divided by the limit, so CO2 of
    1,200 ppm (0.2), 30 °C (0.11) and 80 % humidity (0.14) compare on one scale.
    """
    breaches = []
    for field_name, side, limit in limits:
        value = getattr(reading, field_name)
        if value is None or limit == 0:
            continue
        if (side == ">" and value > limit) or (side == "<" and value < limit):
            excess = abs(value - limit) / abs(limit)
            breaches.append(Breach(field_name, f"{side} {limit:g}", value, excess))
    return breaches


def worst_room(
    readings: list[RoomReading], now_ms: int, max_age_ms: int, limits: tuple[ComfortLimit, ...] = DEFAULT_LIMITS
) -> WorstRoom | None:
    """Return the room furthest outside comfort, or None when every current room is fine.

    Only the newest reading of each room counts, and only when it is at most ``max_age_ms``
    old. Ties go to the room id that sorts first, so the result does not depend on query order.
    """
    newest: dict[str, RoomReading] = {}
    for reading in readings:
        if now_ms - reading.ts > max_age_ms:
            continue
        current = newest.get(reading.room)
        if current is None or reading.ts > current.ts:
            newest[reading.room] = reading

    worst = None
    for room in sorted(newest):
        breaches = comfort_breaches(newest[room], limits)
        if not breaches:
            continue
        candidate = WorstRoom(newest[room], breaches)
        if worst is None or candidate.score > worst.score:
            worst = candidate
    return worst


def count_devices(
    catalogue_devices: set[tuple[str, str]],
    last_seen_ms: dict[tuple[str, str], int],
    node_states: dict[str, str],
    now_ms: int,
    offline_after_ms: int,
    event_devices: set[tuple[str, str]] = frozenset(),
) -> DeviceCounts:
    """Count an OPD's known, online and offline devices, keyed by (node, device).

    ``last_seen_ms`` contains the newest point of each device that sent one within the lookback,
    ``node_states`` the newest ``node_status`` state of each node. ``event_devices`` (attendance
    terminals) are silent whenever no employee punches, so one also counts as online while its node's
    newest state is online, as the alert monitor judges them.
    """
    known = catalogue_devices | set(last_seen_ms)

    def is_online(key: tuple[str, str]) -> bool:
        if key in last_seen_ms and now_ms - last_seen_ms[key] <= offline_after_ms:
            return True
        return key in event_devices and node_states.get(key[0]) == "online"

    online = sum(1 for key in known if is_online(key))
    offline_nodes = sorted(node for node, state in node_states.items() if state == "offline")
    return DeviceCounts(known=len(known), online=online, offline=len(known) - online, offline_nodes=offline_nodes)


def window_kwh(meters: dict[tuple[str, ...], list[tuple[int, float]]], start_ms: int, end_ms: int) -> float | None:
    """Return the kWh all meters consumed in ``[start_ms, end_ms)``, or None without readings.

    ``meters`` maps each meter register to its time-sorted readings, which should include the
    last reading before ``start_ms`` so the interval across the start gets its share.
    """
    if not any(meters.values()):
        return None
    return sum(consumption_per_bucket(readings, [start_ms, end_ms]).total_kwh for readings in meters.values())


def energy_today(today_kwh: float | None, previous_kwh: list[float | None]) -> EnergyToday:
    """Combine today's kWh with the kWh of the previous same weekdays (None when no data)."""
    weeks = [kwh for kwh in previous_kwh if kwh is not None]
    usual = median(weeks) if weeks else None
    return EnergyToday(today_kwh=today_kwh, usual_kwh=usual, usual_weeks=len(weeks))


def attendance_rate(punched: int, employees: int) -> float | None:
    """Return the share of employees who punched, or None when the count of employees is unknown."""
    if employees <= 0:
        return None
    return punched / employees
