"""Tasmota devices on the local broker: ``tele/<topic>/SENSOR`` telemetry and ``tele/<topic>/LWT`` availability.

``SENSOR`` carries the ``ENERGY`` block of energy-monitoring plugs (units per the Tasmota
documentation: ``Total`` kWh including today, ``Power`` W, ``Voltage`` V, ``Current`` A,
``Factor``) and the blocks of attached sensors, such as ``AM2301``, ``SI7021`` or ``BME280``
(``Temperature``, ``Humidity``), ``SCD40``/``MHZ19B`` (``CarbonDioxide`` ppm) and ``BH1750``
(``Illuminance`` lux). ``Today``, ``Yesterday`` and ``Period`` are not sent: the contract
carries the cumulative ``Total`` and the API computes consumption from it.

Devices with several channels send arrays for some keys (``"Power":[298,7,0]``) next to
scalars (``"Total":436.786``). Without a configured ``channel`` the adapter reports the
device as a whole: power, current and an array ``Total`` are summed, the first voltage is
used, and the power factor is ``sum(Power) / sum(ApparentPower)`` when both are arrays. With
``channel: N`` it reports array element N, and a scalar only for ``Voltage`` (shared supply)
or when the message has no arrays, because a device-wide total cannot be split per channel.

``Time`` is the device's local time without offset by default, read in the adapter's
``timezone``. With ``SetOption52 1`` it carries its offset, which is used as sent.
"""

import logging
import math
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, model_validator

from contract.ids import Id

from .base import AdapterSettings, AdapterStats, DeviceReading, Emit
from .device_time import (
    MS_PER_S,
    DeviceTimeError,
    TimeZoneName,
    checked_device_ts,
    epoch_number_to_ms,
    parse_device_time,
)
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

ENERGY_KEYS = (
    ("Total", "energy_kwh_total"),
    ("Power", "power_w"),
    ("Voltage", "voltage_v"),
    ("Current", "current_a"),
    ("Factor", "power_factor"),
)
"""``ENERGY`` keys and the contract fields they fill."""

SUMMED_KEYS = frozenset({"Total", "Power", "Current"})
"""Array keys that add up across channels. Other arrays contribute their first element."""

ROOM_KEYS = (
    ("Temperature", "temperature_c"),
    ("Humidity", "humidity_pct"),
    ("CarbonDioxide", "co2_ppm"),
    ("Illuminance", "illuminance_lux"),
)
"""Sensor block keys and the contract fields they fill. The first sensor that sends one wins."""

NOT_SENSOR_BLOCKS = frozenset({"ENERGY", "Time", "TempUnit", "HumUnit", "PressureUnit", "SpeedUnit"})


class TasmotaDevice(BaseModel):
    """One Tasmota device, by its MQTT ``Topic`` (default ``tasmota_`` and 6 hex digits of the MAC)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    topic: str = Field(pattern=r"^[^/+#\s]{1,64}$")
    device: Id
    circuit: Id | None = None
    room: Id | None = Field(default=None, description="Room of the sensor readings, which are ignored without it")
    channel: int | None = Field(default=None, ge=0, le=31, description="Channel of a multi-channel device, from 0")
    sensor: str | None = Field(default=None, description="Sensor block to read, e.g. AM2301 (default: the first)")


class TasmotaSettings(AdapterSettings):
    """Settings of the ``tasmota`` adapter."""

    type: Literal["tasmota"] = "tasmota"
    broker: LocalBrokerSettings = LocalBrokerSettings()
    timezone: TimeZoneName = "Asia/Jakarta"
    full_topic: str = Field(default="%prefix%/%topic%/", description="Tasmota FullTopic of the devices")
    max_clock_ahead_s: float = Field(
        default=300.0, gt=0, description="Seconds a device time may be ahead of reception before it is replaced"
    )
    devices: list[TasmotaDevice] = Field(min_length=1)

    @model_validator(mode="after")
    def _valid_topics(self):
        if "%prefix%" not in self.full_topic or "%topic%" not in self.full_topic or not self.full_topic.endswith("/"):
            raise ValueError(
                f"full_topic={self.full_topic!r} is invalid: it needs %prefix% and %topic% and ends with '/'"
            )

        topics = [device.topic for device in self.devices]
        duplicates = sorted({topic for topic in topics if topics.count(topic) > 1})
        if duplicates:
            raise ValueError(f"Tasmota topics {duplicates} appear twice: configure each device once")
        return self


class TasmotaAdapter(LocalBrokerAdapter):
    """Turns Tasmota ``SENSOR`` messages into energy and room readings."""

    label = "Tasmota"
    logger = logger

    type_name = "tasmota"
    Settings = TasmotaSettings

    def __init__(self, settings: TasmotaSettings, emit: Emit, stats: AdapterStats) -> None:
        super().__init__(settings, emit, stats)
        self.zone = ZoneInfo(settings.timezone)
        self.problems = ProblemLog(stats, logger, settings.id)
        self.availability = Availability(self.problems, logger, settings.id)

        self._targets: dict[str, tuple[TasmotaDevice, str]] = {}
        for device in settings.devices:
            base = settings.full_topic.replace("%prefix%", "tele").replace("%topic%", device.topic)
            self._targets[base + "SENSOR"] = (device, "SENSOR")
            self._targets[base + "LWT"] = (device, "LWT")

        self.subscribe(list(self._targets))

    async def _handle(self, message: IncomingMessage) -> None:
        target = self._targets.get(message.topic)
        if target is None or not message.payload:
            # An empty payload clears a retained message and carries no data.
            return

        device, kind = target
        if kind == "LWT":
            self._handle_lwt(device, message)
            return

        try:
            data = parse_json_object(message.payload)
        except PayloadError as exc:
            self.problems.report("invalid_payload", device.device, f"{message.topic}: {exc}")
            return

        for reading in self._readings(device, data, message.received_ms):
            await self.emit(reading)
            self.stats.saw(device.device, reading.payload["ts"])

    def _handle_lwt(self, device: TasmotaDevice, message: IncomingMessage) -> None:
        text = message.payload.decode("utf-8", errors="replace").strip().lower()
        if text not in ("online", "offline"):
            message = f"LWT payload {text!r} is neither Online nor Offline"
            self.problems.report("invalid_payload", device.device, message)
            return
        self.availability.update(device.device, text == "online", message.retained)

    def _readings(self, device: TasmotaDevice, data: dict, received_ms: int) -> list[DeviceReading]:
        ts = self._reading_ts(device, data, received_ms)
        readings = []

        energy = data.get("ENERGY")
        if energy is not None:
            collector = FieldCollector()
            if isinstance(energy, dict):
                collect_energy(energy, device.channel, collector)
            else:
                collector.drop("invalid_field", "ENERGY", f"ENERGY is a JSON {type(energy).__name__}, not an object")
            self.problems.report_fields(device.device, collector.problems)

            if collector.fields:
                payload = {"device": device.device, "ts": ts, **collector.fields}
                if device.circuit is not None:
                    payload["circuit"] = device.circuit
                readings.append(DeviceReading("energy", payload))

        if device.room is not None:
            collector = FieldCollector()
            collect_room(data, device.sensor, collector)
            self.problems.report_fields(device.device, collector.problems)
            if collector.fields:
                payload = {"device": device.device, "ts": ts, "room": device.room, **collector.fields}
                readings.append(DeviceReading("room", payload))

        return readings

    def _reading_ts(self, device: TasmotaDevice, data: dict, received_ms: int) -> int:
        time_value = data.get("Time")
        device_ms = None
        try:
            if isinstance(time_value, str):
                device_ms = parse_device_time(time_value, self.zone)
            elif time_value is not None:
                device_ms = epoch_number_to_ms(time_value)
        except DeviceTimeError as exc:
            self.problems.report("invalid_time", device.device, f"{exc}, so the reception time is used")
            return received_ms

        max_ahead_ms = round(self.settings.max_clock_ahead_s * MS_PER_S)
        ts, problem = checked_device_ts(device_ms, received_ms, max_ahead_ms)
        if problem is not None:
            message = f"Time {time_value!r} is implausible, so the reception time is used"
            self.problems.report(problem, device.device, message)
        return ts


def collect_energy(energy: dict, channel: int | None, collector: FieldCollector) -> None:
    """Collect the contract fields of one ``ENERGY`` block, following the channel rule of the module."""
    has_arrays = any(isinstance(value, list) for value in energy.values())

    for key, field in ENERGY_KEYS:
        value = energy.get(key)
        if value is None:
            continue
        source = f"ENERGY.{key}"

        if isinstance(value, list):
            if channel is None:
                value = _combine_channels(key, field, value, energy, collector)
                if value is None:
                    continue
            elif channel < len(value):
                value = value[channel]
                source = f"{source}[{channel}]"
            else:
                detail = f"{source} has {len(value)} channels, channel {channel} configured"
                collector.drop("invalid_field", field, detail)
                continue
        elif channel is not None and has_arrays and key != "Voltage":
            # A scalar next to arrays is device-wide and cannot be given to one channel.
            continue

        collector.add_number(field, value, source)


def collect_room(data: dict, sensor: str | None, collector: FieldCollector) -> None:
    """Collect temperature, humidity, CO2 and illuminance from the sensor blocks of a ``SENSOR`` message."""
    fahrenheit = data.get("TempUnit") == "F"

    for name, block in data.items():
        if name in NOT_SENSOR_BLOCKS or not isinstance(block, dict):
            continue
        if sensor is not None and name != sensor:
            continue

        for key, field in ROOM_KEYS:
            if field in collector.fields or key not in block:
                continue
            value = block[key]
            if key == "Temperature" and fahrenheit and _is_number(value):
                value = (value - 32.0) * 5.0 / 9.0
            collector.add_number(field, value, f"{name}.{key}")


def _combine_channels(key: str, field: str, values: list, energy: dict, collector: FieldCollector) -> float | None:
    source = f"ENERGY.{key}"
    if not values or not all(_is_number(value) for value in values):
        collector.drop("invalid_field", field, f"{source}={values!r} is not a list of finite numbers")
        return None

    if key in SUMMED_KEYS:
        return float(sum(values))

    if key == "Factor":
        powers = energy.get("Power")
        apparent = energy.get("ApparentPower")
        if isinstance(powers, list) and isinstance(apparent, list) and all(map(_is_number, powers + apparent)):
            total_apparent = sum(apparent)
            return sum(powers) / total_apparent if total_apparent > 0 else None
        # Without apparent powers the factors of the channels cannot be combined.
        return None

    return values[0]


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
