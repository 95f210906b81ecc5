"""Zigbee2MQTT room sensors on the local broker: ``<base_topic>/<friendly_name>`` state messages.

Each state message is a JSON object with only what the device reported, so keys come and go
(one message may hold only ``{"occupancy":true,"linkquality":90}``). Units follow the
device's exposes: ``temperature`` °C, ``humidity`` %, ``co2`` ppm, ``battery`` %,
``illuminance_lux`` (or, from Zigbee2MQTT 2.0, ``illuminance``) lux, and ``occupancy`` (or
``presence``) a boolean. Other keys (``linkquality``, ``voltage`` in mV, ``action``) are not
part of the room stream and are skipped.

The reading's time is ``last_seen`` when the bridge is set to send it (epoch ms, or ISO 8601
with an offset), else the reception time. A retained state without ``last_seen`` cannot be
dated, so the state replayed on subscription is skipped.

Availability arrives on ``<base_topic>/bridge/state`` and ``<base_topic>/<friendly_name>/availability``
as plain ``online``/``offline`` (before Zigbee2MQTT 2.0, or with the legacy setting) or as
JSON ``{"state":"online"}``, and both are accepted. An empty payload is a cleared retained message
and is skipped without a log line.
"""

import json
import logging
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

NUMBER_KEYS = (
    ("temperature", "temperature_c"),
    ("humidity", "humidity_pct"),
    ("co2", "co2_ppm"),
    ("battery", "battery_pct"),
    ("illuminance_lux", "illuminance_lux"),
)
"""Numeric state keys and the contract fields they fill."""

FALLBACK_KEYS = (
    # NOTE: before Zigbee2MQTT 2.0 some devices sent a raw sensor value in ``illuminance``
    # next to ``illuminance_lux``, so the fallback is only used when ``illuminance_lux`` is absent.
    ("illuminance", "illuminance_lux"),
)

BOOLEAN_KEYS = (("occupancy", "occupancy"), ("presence", "occupancy"))
"""Boolean state keys. ``presence`` (mmWave sensors) is used when ``occupancy`` is absent."""


class Zigbee2MqttDevice(BaseModel):
    """One Zigbee sensor, by its Zigbee2MQTT friendly name (which may contain ``/``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    friendly_name: str = Field(pattern=r"^[^+#]{1,128}$")
    device: Id
    room: Id


class Zigbee2MqttSettings(AdapterSettings):
    """Settings of the ``zigbee2mqtt`` adapter."""

    type: Literal["zigbee2mqtt"] = "zigbee2mqtt"
    broker: LocalBrokerSettings = LocalBrokerSettings()
    base_topic: str = Field(default="zigbee2mqtt", pattern=r"^[^+#\s]{1,64}$")
    timezone: TimeZoneName = Field(default="Asia/Jakarta", description="Zone of an ISO last_seen without offset")
    max_clock_ahead_s: float = Field(
        default=300.0, gt=0, description="Seconds a device time may be ahead of reception before it is replaced"
    )
    devices: list[Zigbee2MqttDevice] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_names(self):
        names = [device.friendly_name for device in self.devices]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"friendly names {duplicates} appear twice: configure each device once")
        if "bridge" in names:
            raise ValueError("friendly name 'bridge' is reserved by Zigbee2MQTT: rename the device")
        return self


def parse_availability(payload: bytes) -> bool | None:
    """Read an availability payload in either format, or return None for an empty payload.

    Raises:
        PayloadError: the payload is neither ``online``/``offline`` nor ``{"state": ...}`` with one of them.
    """
    text = payload.decode("utf-8", errors="replace").strip()
    if not text:
        return None

    state: object = text
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise PayloadError(f"availability payload is not valid JSON ({exc})") from None
        state = data.get("state") if isinstance(data, dict) else None

    if isinstance(state, str) and state.lower() in ("online", "offline"):
        return state.lower() == "online"
    raise PayloadError(f"availability payload {text[:60]!r} is neither online nor offline")


class Zigbee2MqttAdapter(LocalBrokerAdapter):
    """Turns Zigbee2MQTT state messages into room readings."""

    label = "Zigbee2MQTT"
    logger = logger

    type_name = "zigbee2mqtt"
    Settings = Zigbee2MqttSettings

    def __init__(self, settings: Zigbee2MqttSettings, emit: Emit, stats: AdapterStats) -> None:
        super().__init__(settings, emit, stats)
        self.zone = ZoneInfo(settings.timezone)
        self.problems = ProblemLog(stats, logger, settings.id)
        self.availability = Availability(self.problems, logger, settings.id)
        self.bridge_online: bool | None = None

        base = settings.base_topic
        self._bridge_topic = f"{base}/bridge/state"
        self._targets: dict[str, tuple[Zigbee2MqttDevice | None, str]] = {self._bridge_topic: (None, "bridge")}
        for device in settings.devices:
            self._targets[f"{base}/{device.friendly_name}"] = (device, "state")
            self._targets[f"{base}/{device.friendly_name}/availability"] = (device, "availability")

        self.subscribe(list(self._targets))

    async def _handle(self, message: IncomingMessage) -> None:
        target = self._targets.get(message.topic)
        if target is None or not message.payload.strip():
            # An empty payload clears a retained message and carries no data.
            return

        device, kind = target
        if kind == "bridge":
            self._handle_bridge(message)
            return
        if kind == "availability":
            self._handle_availability(device, message)
            return

        reading = self._reading(device, message)
        if reading is not None:
            await self.emit(reading)
            self.stats.saw(device.device, reading.payload["ts"])

    def _handle_bridge(self, message: IncomingMessage) -> None:
        try:
            online = parse_availability(message.payload)
        except PayloadError as exc:
            self.problems.report("invalid_payload", "bridge", f"{message.topic}: {exc}")
            return

        previous = self.bridge_online
        self.bridge_online = online
        state = "online" if online else "offline"
        if message.retained:
            logger.info("%s: Zigbee2MQTT bridge is %s (retained state at subscription)", self.settings.id, state)
        elif online and previous is not True:
            logger.info("%s: Zigbee2MQTT bridge is online", self.settings.id)
        elif not online and previous is not False:
            self.problems.report("bridge_offline", "bridge", "Zigbee2MQTT bridge went offline")

    def _handle_availability(self, device: Zigbee2MqttDevice, message: IncomingMessage) -> None:
        try:
            online = parse_availability(message.payload)
        except PayloadError as exc:
            self.problems.report("invalid_payload", device.device, f"{message.topic}: {exc}")
            return
        self.availability.update(device.device, online, message.retained)

    def _reading(self, device: Zigbee2MqttDevice, message: IncomingMessage) -> DeviceReading | None:
        try:
            state = parse_json_object(message.payload)
        except PayloadError as exc:
            self.problems.report("invalid_payload", device.device, f"{message.topic}: {exc}")
            return None

        if message.retained and "last_seen" not in state:
            logger.debug("%s: skipped retained state of %s without last_seen", self.settings.id, device.device)
            return None

        collector = FieldCollector()
        collect_room_fields(state, collector)
        self.problems.report_fields(device.device, collector.problems)
        if not collector.fields:
            return None

        ts = self._reading_ts(device, state.get("last_seen"), message.received_ms)
        return DeviceReading("room", {"device": device.device, "ts": ts, "room": device.room, **collector.fields})

    def _reading_ts(self, device: Zigbee2MqttDevice, last_seen: object, received_ms: int) -> int:
        device_ms = None
        try:
            if isinstance(last_seen, str):
                device_ms = parse_device_time(last_seen, self.zone)
            elif last_seen is not None:
                device_ms = epoch_number_to_ms(last_seen)
        except DeviceTimeError as exc:
            self.problems.report("invalid_time", device.device, f"last_seen: {exc}, so the reception time is used")
            return received_ms

        max_ahead_ms = round(self.settings.max_clock_ahead_s * MS_PER_S)
        ts, problem = checked_device_ts(device_ms, received_ms, max_ahead_ms)
        if problem is not None:
            message = f"last_seen={last_seen!r} is implausible, so the reception time is used"
            self.problems.report(problem, device.device, message)
        return ts


def collect_room_fields(state: dict, collector: FieldCollector) -> None:
    """Collect the room stream's fields from one Zigbee2MQTT state message."""
    for key, field in NUMBER_KEYS:
        collector.add_number(field, state.get(key), key)

    for key, field in FALLBACK_KEYS:
        if field not in collector.fields and state.get(field) is None:
            collector.add_number(field, state.get(key), key)

    for key, field in BOOLEAN_KEYS:
        if field not in collector.fields and not any(problem.field == field for problem in collector.problems):
            collector.add_bool(field, state.get(key), key)
