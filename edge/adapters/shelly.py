"""Shelly relays and meters on the local broker, Gen1 (plain topics) and Gen2+ (RPC over MQTT).

Gen2+ (Plus, Pro, Gen3), per the Shelly Gen2 API documentation:

- ``<prefix>/events/rpc`` carries ``NotifyStatus`` frames with only the keys that changed.
  The adapter lays each one over the last known status of the component, so a frame with
  only ``voltage`` keeps the last ``apower``. ``params.ts`` is UTC epoch seconds (float).
  Frames of other components (``sys``, ``wifi``, ``input:0``) and ``NotifyEvent`` carry no
  energy data and are skipped without a problem.
- ``<prefix>/status/<component>`` carries the complete status and replaces the last known
  one. It has no time of its own, so the reception time is used, and a retained status
  replayed on subscription is stored but not emitted.
- ``switch:N`` and ``pm1:N`` report ``apower`` W, ``voltage`` V, ``current`` A, ``freq`` Hz,
  ``pf`` and ``aenergy.total`` / ``ret_aenergy.total`` in Wh. ``em1:N`` reports ``act_power``
  and the like, with its energy totals (Wh) in the ``em1data:N`` component.

Gen1 (Plug S, 1PM, 2.5) publishes each value as plain text on its own topic:
``shellies/<id>/relay/N/power`` in W and ``shellies/<id>/relay/N/energy`` in Watt-minutes. A
reading is emitted when the energy counter arrives, with the last power if it is recent.

Energy counters are converted exactly (Wh / 1000, Watt-minutes / 60000, in decimal). They are
emitted as the device reports them, including the drop to 0 after a Gen1 reboot and the small
step back of a Gen2 counter after a reboot. The API computes consumption from the cumulative
register and handles both.
"""

import logging
import math
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from contract.ids import Id

from .base import AdapterSettings, AdapterStats, DeviceReading, Emit
from .device_time import MS_PER_S, DeviceTimeError, checked_device_ts, epoch_seconds_to_ms
from .local_mqtt import (
    Availability,
    IncomingMessage,
    LocalBrokerAdapter,
    LocalBrokerSettings,
    PayloadError,
    parse_json_object,
)
from .readings import FieldCollector, ProblemLog

logger = logging.getLogger(__name__)

WH_PER_KWH = Decimal(1000)
WATT_MINUTES_PER_KWH = Decimal(60_000)

GEN2_COMPONENT_PATTERN = r"^(switch|pm1|em1):\d{1,2}$"

ENERGY_KEYS = frozenset(
    {
        "apower", "act_power", "voltage", "current", "freq", "pf",
        "aenergy", "ret_aenergy", "total_act_energy", "total_act_ret_energy",
    }
)  # fmt: skip
"""Status keys whose change produces a reading. A change of ``temperature`` or ``output`` alone does not."""


class ShellyDevice(BaseModel):
    """One metered channel of a Shelly device."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    generation: Literal[1, 2]
    topic_prefix: str = Field(
        pattern=r"^[^+#\s]{1,128}$",
        description="MQTT topic prefix: for Gen2 by default the device id, for Gen1 shellies/<device id>",
    )
    device: Id
    circuit: Id | None = None
    component: str = Field(default="switch:0", pattern=GEN2_COMPONENT_PATTERN, description="Gen2 component")
    relay: int = Field(default=0, ge=0, le=15, description="Gen1 relay channel")

    @property
    def energy_component(self) -> str:
        """Component that carries the energy totals: ``em1data:N`` for ``em1:N``, else the component itself."""
        kind, number = self.component.split(":")
        return f"em1data:{number}" if kind == "em1" else self.component


class ShellySettings(AdapterSettings):
    """Settings of the ``shelly`` adapter."""

    type: Literal["shelly"] = "shelly"
    broker: LocalBrokerSettings = LocalBrokerSettings()
    max_power_age_s: float = Field(
        default=120.0, gt=0, description="Gen1: maximum age in s of the power sent with an energy counter"
    )
    max_clock_ahead_s: float = Field(
        default=300.0, gt=0, description="Seconds a device time may be ahead of reception before it is replaced"
    )
    devices: list[ShellyDevice] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_channels(self):
        keys = [(d.topic_prefix, d.component if d.generation == 2 else d.relay) for d in self.devices]
        duplicates = sorted({str(key) for key in keys if keys.count(key) > 1})
        if duplicates:
            raise ValueError(f"Shelly channels {duplicates} appear twice: configure each channel once")
        return self


@dataclass
class _DeviceState:
    """Last known status of one configured channel."""

    status: dict = field(default_factory=dict)
    energy_status: dict = field(default_factory=dict)
    power_w: float | None = None
    power_received_ms: int = 0


class ShellyAdapter(LocalBrokerAdapter):
    """Turns Shelly Gen1 and Gen2 energy data into energy readings."""

    label = "Shelly"
    logger = logger

    type_name = "shelly"
    Settings = ShellySettings

    def __init__(self, settings: ShellySettings, emit: Emit, stats: AdapterStats) -> None:
        super().__init__(settings, emit, stats)
        self.problems = ProblemLog(stats, logger, settings.id)
        self.availability = Availability(self.problems, logger, settings.id)
        self._states: dict[str, _DeviceState] = {device.device: _DeviceState() for device in settings.devices}

        self._targets: dict[str, list[tuple[ShellyDevice, str]]] = {}
        for device in settings.devices:
            for topic, kind in _device_topics(device):
                self._targets.setdefault(topic, []).append((device, kind))

        self.subscribe(list(self._targets))

    async def _handle(self, message: IncomingMessage) -> None:
        if not message.payload:
            # An empty payload clears a retained message and carries no data.
            return

        for device, kind in self._targets.get(message.topic, []):
            reading = self._reading(device, kind, message)
            if reading is not None:
                await self.emit(reading)
                self.stats.saw(device.device, reading.payload["ts"])

    def _reading(self, device: ShellyDevice, kind: str, message: IncomingMessage) -> DeviceReading | None:
        if kind == "online":
            self._handle_online(device, message)
            return None
        if kind == "rpc":
            return self._gen2_notification(device, message)
        if kind in ("status", "energy_status"):
            return self._gen2_status(device, kind, message)
        if kind == "power":
            self._gen1_power(device, message)
            return None
        return self._gen1_energy(device, message)

    def _handle_online(self, device: ShellyDevice, message: IncomingMessage) -> None:
        text = message.payload.decode("utf-8", errors="replace").strip().lower()
        if text not in ("true", "false"):
            self.problems.report("invalid_payload", device.device, f"online payload {text!r} is neither true nor false")
            return
        self.availability.update(device.device, text == "true", message.retained)

    def _gen2_notification(self, device: ShellyDevice, message: IncomingMessage) -> DeviceReading | None:
        try:
            frame = parse_json_object(message.payload)
        except PayloadError as exc:
            self.problems.report("invalid_payload", device.device, f"{message.topic}: {exc}")
            return None

        method = frame.get("method")
        if method not in ("NotifyStatus", "NotifyFullStatus"):
            return None
        params = frame.get("params")
        if not isinstance(params, dict):
            self.problems.report("invalid_payload", device.device, f"{method} without a params object")
            return None

        state = self._states[device.device]
        full = method == "NotifyFullStatus"
        changed = self._merge(device, state, "status", params.get(device.component), full)
        if device.energy_component != device.component:
            changed |= self._merge(device, state, "energy_status", params.get(device.energy_component), full)
        if not changed:
            return None

        ts = self._notification_ts(device, params.get("ts"), message.received_ms)
        return self._energy_reading(device, state, ts)

    def _gen2_status(self, device: ShellyDevice, kind: str, message: IncomingMessage) -> DeviceReading | None:
        try:
            status = parse_json_object(message.payload)
        except PayloadError as exc:
            self.problems.report("invalid_payload", device.device, f"{message.topic}: {exc}")
            return None

        state = self._states[device.device]
        changed = self._merge(device, state, kind, status, full=True)
        if not changed or message.retained:
            # A retained status is not emitted because it has no time of its own and may be hours old.
            return None
        return self._energy_reading(device, state, message.received_ms)

    def _merge(self, device: ShellyDevice, state: _DeviceState, attribute: str, delta: object, full: bool) -> bool:
        """Lay ``delta`` over the stored status and return True when it contains energy data."""
        if delta is None:
            return False
        if not isinstance(delta, dict):
            self.problems.report("invalid_payload", device.device, f"status of {device.component} is not an object")
            return False

        if full:
            setattr(state, attribute, dict(delta))
        else:
            merged = getattr(state, attribute)
            for key, value in delta.items():
                if isinstance(value, dict) and isinstance(merged.get(key), dict):
                    merged[key] = {**merged[key], **value}
                else:
                    merged[key] = value
        return not ENERGY_KEYS.isdisjoint(delta)

    def _notification_ts(self, device: ShellyDevice, value: object, received_ms: int) -> int:
        device_ms = None
        if value is not None:
            try:
                device_ms = epoch_seconds_to_ms(value)
            except DeviceTimeError as exc:
                self.problems.report("invalid_time", device.device, f"params.ts: {exc}, so the reception time is used")
                return received_ms

        max_ahead_ms = round(self.settings.max_clock_ahead_s * MS_PER_S)
        ts, problem = checked_device_ts(device_ms, received_ms, max_ahead_ms)
        if problem is not None:
            message = f"params.ts={value!r} is implausible, so the reception time is used"
            self.problems.report(problem, device.device, message)
        return ts

    def _energy_reading(self, device: ShellyDevice, state: _DeviceState, ts: int) -> DeviceReading | None:
        collector = FieldCollector()
        collect_gen2_fields(state.status, state.energy_status, collector)
        self.problems.report_fields(device.device, collector.problems)
        if not collector.fields:
            return None
        return DeviceReading("energy", _payload(device, ts, collector.fields))

    def _gen1_power(self, device: ShellyDevice, message: IncomingMessage) -> None:
        text = message.payload.decode("utf-8", errors="replace").strip()
        power = _parse_decimal_text(text)
        collector = FieldCollector()
        if isinstance(power, Decimal):
            power = float(power)
        collector.add_number("power_w", power, f"relay/{device.relay}/power")
        self.problems.report_fields(device.device, collector.problems)
        if "power_w" in collector.fields:
            state = self._states[device.device]
            state.power_w = collector.fields["power_w"]
            state.power_received_ms = message.received_ms

    def _gen1_energy(self, device: ShellyDevice, message: IncomingMessage) -> DeviceReading | None:
        text = message.payload.decode("utf-8", errors="replace").strip()
        counter = _parse_decimal_text(text)
        collector = FieldCollector()
        if isinstance(counter, Decimal) and counter.is_finite():
            counter = float(counter / WATT_MINUTES_PER_KWH)
        collector.add_number("energy_kwh_total", counter, f"relay/{device.relay}/energy")
        self.problems.report_fields(device.device, collector.problems)
        if not collector.fields or message.retained:
            return None

        state = self._states[device.device]
        max_age_ms = round(self.settings.max_power_age_s * MS_PER_S)
        if state.power_w is not None and message.received_ms - state.power_received_ms <= max_age_ms:
            collector.fields["power_w"] = state.power_w
        return DeviceReading("energy", _payload(device, message.received_ms, collector.fields))


def collect_gen2_fields(status: dict, energy_status: dict, collector: FieldCollector) -> None:
    """Collect the contract fields of a Gen2 component status (and ``em1data`` status for ``em1``)."""
    power = status.get("apower", status.get("act_power"))
    collector.add_number("power_w", power, "apower")
    collector.add_number("voltage_v", status.get("voltage"), "voltage")
    collector.add_number("current_a", status.get("current"), "current")
    collector.add_number("frequency_hz", status.get("freq"), "freq")
    collector.add_number("power_factor", status.get("pf"), "pf")

    imported = _nested_total(status, "aenergy", collector)
    exported = _nested_total(status, "ret_aenergy", collector)
    _add_watt_hours(collector, "energy_kwh_total", imported, "aenergy.total")
    _add_watt_hours(collector, "energy_export_kwh_total", exported, "ret_aenergy.total")
    _add_watt_hours(collector, "energy_kwh_total", energy_status.get("total_act_energy"), "total_act_energy")
    _add_watt_hours(
        collector, "energy_export_kwh_total", energy_status.get("total_act_ret_energy"), "total_act_ret_energy"
    )


def watt_hours_to_kwh(value: float | int) -> float:
    """Convert Wh to kWh in decimal, so 15231.640 Wh gives exactly 15.23164 kWh."""
    return float(Decimal(repr(value)) / WH_PER_KWH)


def _add_watt_hours(collector: FieldCollector, field_name: str, value: object, source: str) -> None:
    if _is_number(value):
        value = watt_hours_to_kwh(value)
    collector.add_number(field_name, value, source)


def _nested_total(status: dict, key: str, collector: FieldCollector) -> object:
    block = status.get(key)
    if block is None:
        return None
    if not isinstance(block, dict):
        field_name = "energy_kwh_total" if key == "aenergy" else "energy_export_kwh_total"
        collector.drop("invalid_field", field_name, f"{key} is not an object")
        return None
    return block.get("total")


def _parse_decimal_text(text: str) -> object:
    """Parse a plain-text number, or return the text itself when it is not one, so the problem shows it."""
    if not re.fullmatch(r"[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?", text):
        return text
    try:
        return Decimal(text)
    except InvalidOperation:
        return text


def _payload(device: ShellyDevice, ts: int, fields: dict[str, object]) -> dict[str, object]:
    payload: dict[str, object] = {"device": device.device, "ts": ts, **fields}
    if device.circuit is not None:
        payload["circuit"] = device.circuit
    return payload


def _device_topics(device: ShellyDevice) -> list[tuple[str, str]]:
    prefix = device.topic_prefix
    if device.generation == 1:
        return [
            (f"{prefix}/relay/{device.relay}/power", "power"),
            (f"{prefix}/relay/{device.relay}/energy", "energy"),
            (f"{prefix}/online", "online"),
        ]

    topics = [
        (f"{prefix}/events/rpc", "rpc"),
        (f"{prefix}/status/{device.component}", "status"),
        (f"{prefix}/online", "online"),
    ]
    if device.energy_component != device.component:
        topics.append((f"{prefix}/status/{device.energy_component}", "energy_status"))
    return topics


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
