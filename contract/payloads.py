"""JSON payload models of wire contract v1, one per stream.

Every measured quantity carries its unit in its name (``temperature_c``, ``power_w``), ``ts``
is the time of the reading in UTC epoch milliseconds, and ``device`` names the physical device
behind the edge node. Numbers are strict: ``"21.5"`` (a string) and ``true`` are not numbers,
while ``21`` is accepted for a float field and stored as ``21.0``.

Each model lists which of its fields are *measurements*: optional values that may be dropped
one by one when they are invalid (NaN, out of range, wrong type) without losing the rest of
the message. Every other field is part of the message's identity and invalidates the message.
"""

from enum import StrEnum
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from .ids import Id

TS_MIN_MS = 1_577_836_800_000
"""2020-01-01T00:00:00Z. A smaller ``ts`` is a clock reset or a value in seconds."""

TS_MAX_MS = 4_102_444_800_000
"""2100-01-01T00:00:00Z. A larger ``ts`` is in microseconds or nanoseconds."""

TimestampMs = Annotated[int, Field(strict=True, ge=TS_MIN_MS, lt=TS_MAX_MS, description="UTC epoch milliseconds")]
Seq = Annotated[int, Field(strict=True, ge=0, le=2**53, description="Per-device message counter, to detect gaps")]


def _measure(low: float, high: float, description: str):
    """Build an optional finite float field bounded to a physically plausible range."""
    return Field(default=None, strict=True, ge=low, le=high, allow_inf_nan=False, description=description)


class ContractModel(BaseModel):
    """Base of every payload model: unknown fields are errors, floats must be finite."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)

    MEASUREMENTS: ClassVar[frozenset[str]] = frozenset()
    """Fields that are dropped one by one when invalid; at least one must remain."""

    @model_validator(mode="after")
    def _require_a_measurement(self):
        if self.MEASUREMENTS and all(getattr(self, name) is None for name in self.MEASUREMENTS):
            names = ", ".join(sorted(self.MEASUREMENTS))
            raise ValueError(f"no valid measurement: send at least one of {names}")
        return self


class RoomReading(ContractModel):
    """Environment of one room, from one sensor."""

    MEASUREMENTS: ClassVar[frozenset[str]] = frozenset(
        {"temperature_c", "humidity_pct", "co2_ppm", "occupancy", "occupancy_count", "illuminance_lux", "battery_pct"}
    )

    device: Id
    ts: TimestampMs
    room: Id = Field(description="Room id within the OPD")
    seq: Seq | None = None
    temperature_c: float | None = _measure(-40.0, 85.0, "Air temperature, degrees Celsius")
    humidity_pct: float | None = _measure(0.0, 100.0, "Relative humidity, percent")
    co2_ppm: float | None = _measure(0.0, 40_000.0, "CO2 concentration, parts per million")
    occupancy: bool | None = Field(default=None, strict=True, description="Presence detected")
    occupancy_count: int | None = Field(default=None, strict=True, ge=0, le=10_000, description="People counted")
    illuminance_lux: float | None = _measure(0.0, 200_000.0, "Illuminance, lux")
    battery_pct: float | None = _measure(0.0, 100.0, "Sensor battery charge, percent")


class EnergyReading(ContractModel):
    """One reading of a power meter; ``energy_kwh_total`` is the meter's cumulative register."""

    MEASUREMENTS: ClassVar[frozenset[str]] = frozenset(
        {
            "power_w",
            "energy_kwh_total",
            "energy_export_kwh_total",
            "voltage_v",
            "current_a",
            "power_factor",
            "frequency_hz",
        }
    )

    device: Id
    ts: TimestampMs
    circuit: Id | None = Field(default=None, description="Circuit or panel the meter measures")
    seq: Seq | None = None
    power_w: float | None = _measure(-10_000_000.0, 10_000_000.0, "Active power, watts (negative when exporting)")
    energy_kwh_total: float | None = _measure(0.0, 1e12, "Cumulative imported active energy, kWh")
    energy_export_kwh_total: float | None = _measure(0.0, 1e12, "Cumulative exported active energy, kWh")
    voltage_v: float | None = _measure(0.0, 1_000.0, "Voltage, volts (phase to neutral)")
    current_a: float | None = _measure(0.0, 10_000.0, "Current, amperes")
    power_factor: float | None = _measure(-1.0, 1.0, "Power factor")
    frequency_hz: float | None = _measure(40.0, 70.0, "Grid frequency, hertz")


class Punch(StrEnum):
    """Punch state reported by the terminal; recaps decide in and out from the order of punches."""

    IN = "in"
    OUT = "out"
    BREAK_OUT = "break_out"
    BREAK_IN = "break_in"
    OVERTIME_IN = "overtime_in"
    OVERTIME_OUT = "overtime_out"
    UNKNOWN = "unknown"


class VerifyMethod(StrEnum):
    """Method the terminal used to identify the employee."""

    FINGERPRINT = "fingerprint"
    RFID = "rfid"
    FACE = "face"
    PASSWORD = "password"
    OTHER = "other"


EmployeeId = Annotated[str, StringConstraints(pattern=r"^[0-9A-Za-z]{1,32}$")]
"""NIP (18 digits) or the terminal's enrolment number (PIN)."""


class AttendanceEvent(ContractModel):
    """One punch at an attendance terminal."""

    device: Id
    ts: TimestampMs
    employee_id: EmployeeId
    punch: Punch = Punch.UNKNOWN
    verify: VerifyMethod = VerifyMethod.OTHER
    seq: Seq | None = None


class NodeState(StrEnum):
    """Connection state of an edge node."""

    ONLINE = "online"
    OFFLINE = "offline"


class NodeStatus(ContractModel):
    """Retained state of an edge node; the last will carries ``{"state": "offline"}`` without ``ts``."""

    state: NodeState
    ts: TimestampMs | None = Field(default=None, description="Absent in the last will; the receive time is used")
    sw_version: Annotated[str, StringConstraints(pattern=r"^[0-9A-Za-z.+_-]{1,40}$")] | None = None
    uptime_s: int | None = Field(default=None, strict=True, ge=0)
    queue_depth: int | None = Field(default=None, strict=True, ge=0)
    dropped_total: int | None = Field(default=None, strict=True, ge=0, description="Queued readings dropped since install")
    config_version: int | None = Field(default=None, strict=True, ge=1, description="Configuration version in force")
    device_last_seen: dict[Id, TimestampMs] | None = Field(
        default=None, max_length=500, description="Last reading time of each configured device, UTC epoch ms"
    )


class NodeConfig(ContractModel):
    """Desired configuration of an edge node, retained on its ``config`` topic."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)

    version: int = Field(strict=True, ge=1)
    issued_ts: TimestampMs
    settings: dict[str, object] = Field(default_factory=dict, description="Adapter and sampling settings")


class ConfigResult(StrEnum):
    """Outcome of applying a configuration on the node."""

    APPLIED = "applied"
    REJECTED = "rejected"


class ConfigReport(ContractModel):
    """Outcome the node reports for one configuration version."""

    version: int = Field(strict=True, ge=1)
    ts: TimestampMs
    result: ConfigResult
    error: Annotated[str, StringConstraints(max_length=2_000)] | None = None


MODEL_BY_STREAM: dict[str, type[ContractModel]] = {
    "attendance": AttendanceEvent,
    "energy": EnergyReading,
    "room": RoomReading,
    "status": NodeStatus,
    "config": NodeConfig,
    "config/reported": ConfigReport,
}
"""Payload model of each stream, keyed by the stream's topic level(s)."""

MAX_PAYLOAD_BYTES = 16_384
"""Largest accepted payload; every contract message is far below it."""

Reading = RoomReading | EnergyReading | AttendanceEvent
"""A telemetry payload."""

StreamName = Literal["attendance", "energy", "room", "status", "config", "config/reported"]
