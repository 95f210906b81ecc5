"""Room sensor model: occupancy, CO2, temperature, humidity, illuminance and battery of one room.

The room's kind is guessed from its id (``ruang-rapat`` is a meeting room, ``ruang-server``
a server room), and its size and behaviour are drawn once from the device's random stream.
People arrive and leave with the office's presence curve. CO2 rises with the number of people,
split air conditioners hold 24-26 °C while the office is open, and the room drifts to 28-31 °C
and a higher humidity when they are off. Every quantity follows a first-order lag, so readings
are smooth, and sensor noise is added to the output only.
"""

import math
from dataclasses import dataclass

from contract import Stream

from .devices import DeviceKey, Reading, approach, clamp, encode_payload
from .office_hours import MS_PER_S, OfficeConditions, OfficeHours

_MS_PER_DAY = 86_400_000

_CO2_TIME_CONSTANT_S = 20 * 60
_COOLING_TIME_CONSTANT_S = 15 * 60
_WARMING_TIME_CONSTANT_S = 75 * 60
_HUMIDITY_TIME_CONSTANT_S = 30 * 60
_OCCUPANCY_TIME_CONSTANT_S = 3 * 60

HUMIDITY_MIN_PCT = 55.0
HUMIDITY_MAX_PCT = 80.0
BATTERY_REPLACED_AT_PCT = 5.0
"""Charge at which the battery is swapped for a full one."""


@dataclass(frozen=True, slots=True)
class RoomProfile:
    """Usage pattern of a kind of room. Each range is drawn from once per room."""

    kind: str
    capacity: tuple[int, int]
    use_probability: float
    """Chance that the room is in use in one working hour."""
    co2_rise_full_ppm: tuple[float, float]
    """CO2 above outdoor air once the room is full and the air has settled."""
    setpoint_c: tuple[float, float] = (24.0, 26.0)
    always_cooled: bool = False


STAFF_ROOM = RoomProfile("staff_room", capacity=(6, 18), use_probability=1.0, co2_rise_full_ppm=(600, 1100))

_PROFILES_BY_WORD = {
    "bupati": RoomProfile("head_office", (1, 4), 0.7, (350, 600)),
    "sekda": RoomProfile("head_office", (1, 4), 0.7, (350, 600)),
    "kepala": RoomProfile("head_office", (1, 4), 0.7, (350, 600)),
    "camat": RoomProfile("head_office", (1, 4), 0.7, (350, 600)),
    "rapat": RoomProfile("meeting_room", (10, 25), 0.35, (700, 1200)),
    "aula": RoomProfile("hall", (40, 120), 0.15, (500, 900)),
    "pelayanan": RoomProfile("service_room", (8, 20), 1.0, (600, 1000)),
    "tunggu": RoomProfile("service_room", (8, 20), 1.0, (600, 1000)),
    "arsip": RoomProfile("archive", (1, 3), 0.25, (150, 300)),
    "server": RoomProfile("server_room", (1, 2), 0.1, (100, 200), setpoint_c=(20.0, 22.0), always_cooled=True),
}
"""Room kinds by a word of the room id, e.g. ``ruang-rapat-utama`` is a meeting room."""


def profile_for_room(room_id: str) -> RoomProfile:
    """Return the profile whose word appears in ``room_id``, or the staff-room profile."""
    for word in room_id.split("-"):
        profile = _PROFILES_BY_WORD.get(word)
        if profile is not None:
            return profile
    return STAFF_ROOM


@dataclass(slots=True)
class _RoomState:
    ts_ms: int
    occupancy_count: int
    temperature_c: float
    humidity_pct: float
    co2_ppm: float


class RoomSensor:
    """Deterministic generator of ``room`` payloads for one sensor."""

    stream = Stream.ROOM

    def __init__(self, key: DeviceKey, room: str, office_hours: OfficeHours) -> None:
        self.key = key
        self.room = room
        self.profile = profile_for_room(room)
        self._hours = office_hours

        parameters = key.random("parameters")
        self.capacity = parameters.randint(*self.profile.capacity)
        self.co2_per_person_ppm = parameters.uniform(*self.profile.co2_rise_full_ppm) / self.capacity
        self.outdoor_co2_ppm = parameters.uniform(410.0, 440.0)
        self.setpoint_c = parameters.uniform(*self.profile.setpoint_c)
        self.warm_offset_c = parameters.uniform(-0.5, 0.5)
        self.humidity_offset_pct = parameters.uniform(-3.0, 3.0)
        self.window_lux = parameters.uniform(40.0, 220.0)
        self.lamp_lux = parameters.uniform(300.0, 500.0)
        self.battery_drain_pct_per_day = parameters.uniform(0.15, 0.4)
        self.battery_phase_pct = parameters.uniform(0.0, 100.0 - BATTERY_REPLACED_AT_PCT)

        self._noise = key.random("noise")
        self._state: _RoomState | None = None
        self._seq = 0
        self._slot: tuple[object, int] | None = None
        self._slot_fill = 0.0

    def reading(self, ts_ms: int) -> Reading:
        """Advance the room to ``ts_ms`` and return the sensor's payload at that time."""
        conditions = self._hours.conditions(ts_ms)
        target_count = self._target_occupancy(conditions)
        cooled = conditions.air_conditioning or self.profile.always_cooled

        if self._state is None:
            self._state = self._settled_state(ts_ms, target_count, conditions, cooled)
        else:
            self._advance(ts_ms, target_count, conditions, cooled)

        payload = self._payload(ts_ms, conditions)
        self._seq += 1
        return Reading(ts_ms, Stream.ROOM, payload)

    def _target_occupancy(self, conditions: OfficeConditions) -> int:
        """Return how many people the room holds on average at this moment."""
        if conditions.presence <= 0.0:
            return 0

        # Whether the room is in use, and how full, is drawn once per local hour, so a meeting
        # room stays busy or empty for a whole hour.
        slot = (conditions.local_date, int(conditions.local_hour))
        if slot != self._slot:
            plan = self.key.random(f"slot/{slot[0].isoformat()}/{slot[1]}")
            in_use = plan.random() < self.profile.use_probability
            self._slot_fill = plan.uniform(0.6, 1.0) if in_use else 0.0
            self._slot = slot

        return round(self.capacity * conditions.presence * self._slot_fill)

    def _temperature_target_c(self, conditions: OfficeConditions, cooled: bool, occupancy_count: int) -> float:
        if cooled:
            body_heat_c = occupancy_count / self.capacity
            return self.setpoint_c + body_heat_c

        # Without air conditioning the room follows the outdoor day: about 28 °C before dawn
        # and 31 °C in the mid-afternoon.
        daily_wave = math.sin(2 * math.pi * (conditions.local_hour - 8.0) / 24)
        return 29.5 + self.warm_offset_c + 1.5 * daily_wave

    def _humidity_target_pct(self, conditions: OfficeConditions, cooled: bool) -> float:
        if cooled:
            return 58.0 + self.humidity_offset_pct
        daily_wave = math.sin(2 * math.pi * (conditions.local_hour - 8.0) / 24)
        return 74.0 + self.humidity_offset_pct - 4.0 * daily_wave

    def _settled_state(
        self, ts_ms: int, target_count: int, conditions: OfficeConditions, cooled: bool
    ) -> _RoomState:
        """Start the room as if it had been in the current conditions for a long time."""
        return _RoomState(
            ts_ms=ts_ms,
            occupancy_count=target_count,
            temperature_c=self._temperature_target_c(conditions, cooled, target_count),
            humidity_pct=self._humidity_target_pct(conditions, cooled),
            co2_ppm=self.outdoor_co2_ppm + self.co2_per_person_ppm * target_count,
        )

    def _advance(self, ts_ms: int, target_count: int, conditions: OfficeConditions, cooled: bool) -> None:
        state = self._state
        elapsed_s = (ts_ms - state.ts_ms) / MS_PER_S
        state.ts_ms = ts_ms

        if target_count == 0:
            # The last people leave within a few readings, and no one enters a closed office.
            state.occupancy_count = max(0, state.occupancy_count - self._noise.randint(1, 3))
        else:
            pull = 1.0 - math.exp(-max(elapsed_s, 0.0) / _OCCUPANCY_TIME_CONSTANT_S)
            step = (target_count - state.occupancy_count) * pull + self._noise.gauss(0.0, 0.6)
            state.occupancy_count = int(clamp(round(state.occupancy_count + step), 0, self.capacity))

        temperature_target = self._temperature_target_c(conditions, cooled, state.occupancy_count)
        time_constant_s = _COOLING_TIME_CONSTANT_S if cooled else _WARMING_TIME_CONSTANT_S
        state.temperature_c = approach(state.temperature_c, temperature_target, elapsed_s, time_constant_s)

        humidity_target = self._humidity_target_pct(conditions, cooled)
        state.humidity_pct = approach(state.humidity_pct, humidity_target, elapsed_s, _HUMIDITY_TIME_CONSTANT_S)

        co2_target = self.outdoor_co2_ppm + self.co2_per_person_ppm * state.occupancy_count
        state.co2_ppm = approach(state.co2_ppm, co2_target, elapsed_s, _CO2_TIME_CONSTANT_S)

    def _illuminance_lux(self, conditions: OfficeConditions, occupied: bool) -> float:
        lux = self.window_lux * conditions.daylight
        if occupied:
            lux += self.lamp_lux
        return max(0.0, lux * (1.0 + self._noise.gauss(0.0, 0.03)) + self._noise.uniform(0.0, 1.5))

    def battery_pct(self, ts_ms: int) -> float:
        """Return the battery charge at ``ts_ms``: a slow drain, then a swap for a full battery.

        The charge is a function of the time alone, so it continues across restarts of the
        simulator.
        """
        drained_pct = ts_ms / _MS_PER_DAY * self.battery_drain_pct_per_day + self.battery_phase_pct
        return 100.0 - drained_pct % (100.0 - BATTERY_REPLACED_AT_PCT)

    def _payload(self, ts_ms: int, conditions: OfficeConditions) -> bytes:
        state = self._state
        noise = self._noise
        temperature_c = state.temperature_c + noise.gauss(0.0, 0.05)
        humidity_pct = clamp(state.humidity_pct + noise.gauss(0.0, 0.4), HUMIDITY_MIN_PCT, HUMIDITY_MAX_PCT)
        co2_ppm = max(380.0, state.co2_ppm + noise.gauss(0.0, 6.0))
        occupied = state.occupancy_count > 0

        return encode_payload(
            {
                "device": self.key.device,
                "ts": ts_ms,
                "room": self.room,
                "seq": self._seq,
                "temperature_c": round(temperature_c, 2),
                "humidity_pct": round(humidity_pct, 1),
                "co2_ppm": float(round(co2_ppm)),
                "occupancy": occupied,
                "occupancy_count": state.occupancy_count,
                "illuminance_lux": round(self._illuminance_lux(conditions, occupied), 1),
                "battery_pct": round(self.battery_pct(ts_ms), 1),
            }
        )
