"""``json`` adapter: devices on the office's local MQTT broker that already send contract JSON.

The adapter subscribes to topic filters on the local broker, for example ``office/+/energy``,
and emits each message's JSON object unchanged as a reading. The agent then checks it against
the contract like any other reading. The stream is set per subscription (``stream:``). Without
it, the last level of each message's topic names the stream (``attendance``, ``energy`` or
``room``).

Counted in ``stats.errors``: ``invalid_json`` (not UTF-8 JSON), ``not_an_object`` (JSON but
not an object), ``unknown_stream`` (no stream in the settings and the topic's last level is
not a telemetry stream). None of them stops the adapter.

Retained messages are emitted too. The local broker sends them again on every reconnect, and
the ingest side removes the repeated identical payloads.

NOTE: aiomqtt acknowledges a QoS 1 message from the local broker when it is received, before
the reading is queued, so a crash between the two loses that message. Devices that must not
lose a reading in that window need an adapter that acknowledges after ``emit``.
"""

import asyncio
import json
import logging
from typing import Literal

import aiomqtt
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from contract import TELEMETRY_STREAMS

from ..log_limits import RateLimitedLogger
from .base import Adapter, AdapterSettings, DeviceReading

logger = logging.getLogger(__name__)

TelemetryStream = Literal["attendance", "energy", "room"]
_TELEMETRY = frozenset(stream.value for stream in TELEMETRY_STREAMS)


class JsonSubscription(BaseModel):
    """One topic filter on the local broker and the stream of its messages."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    topic: str = Field(min_length=1, description="MQTT topic filter, wildcards + and # allowed")
    stream: TelemetryStream | None = Field(None, description="Stream of every message. Unset: the last level of the message's topic")


class JsonAdapterSettings(AdapterSettings):
    """Local broker and subscriptions of one ``json`` adapter."""

    type: Literal["json"] = "json"
    host: str = Field("127.0.0.1", description="Host of the office's local MQTT broker")
    port: int = Field(1883, ge=1, le=65535, description="TCP port of the local broker")
    username: str | None = Field(None, description="User name on the local broker. Unset: anonymous")
    password: SecretStr | None = Field(None, description="Password on the local broker")
    client_id: str | None = Field(
        None,
        description="MQTT client id. When set, the session persists (clean_session false), so the local broker "
        "queues QoS 1 messages while the adapter is away. Unset: a random id and a clean session",
    )
    qos: int = Field(1, ge=0, le=1, description="QoS of the subscriptions")
    keepalive_s: int = Field(30, ge=5, le=3600, description="MQTT keepalive interval, s")
    reconnect_min_s: float = Field(1.0, gt=0, description="First pause before a reconnect, which doubles on each failure, s")
    reconnect_max_s: float = Field(30.0, gt=0, description="Maximum pause between reconnects, s")
    subscriptions: tuple[JsonSubscription, ...] = Field(min_length=1, description="Topic filters to read")

    @model_validator(mode="after")
    def _pauses_in_order(self) -> "JsonAdapterSettings":
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError(f"reconnect_max_s={self.reconnect_max_s} is below reconnect_min_s={self.reconnect_min_s}")
        return self


class JsonAdapter(Adapter):
    """Adapter that emits the contract JSON that local devices publish, as the module docstring describes."""

    type_name = "json"
    Settings = JsonAdapterSettings
    settings: JsonAdapterSettings

    def __init__(self, settings, emit, stats) -> None:
        super().__init__(settings, emit, stats)
        self._log = RateLimitedLogger(logger)

    async def run(self) -> None:
        """Read the local broker until cancelled, reconnecting with a doubling pause."""
        settings = self.settings
        pause_s = settings.reconnect_min_s
        failures = 0
        while True:
            try:
                async with self._make_client() as client:
                    for subscription in settings.subscriptions:
                        await client.subscribe(subscription.topic, qos=settings.qos)
                    logger.info(
                        "adapter %s: subscribed on local broker %s:%d to %s",
                        settings.id,
                        settings.host,
                        settings.port,
                        ", ".join(subscription.topic for subscription in settings.subscriptions),
                    )
                    failures = 0
                    pause_s = settings.reconnect_min_s
                    async for message in client.messages:
                        await self.handle_message(message.topic.value, message.payload)
            except aiomqtt.MqttError as exc:
                failures += 1
                self.stats.count_error("connection_failed")
                logger.warning(
                    "adapter %s: local broker %s:%d: %s; reconnecting in %.1f s (attempt %d)",
                    settings.id,
                    settings.host,
                    settings.port,
                    exc,
                    pause_s,
                    failures,
                )
            await asyncio.sleep(pause_s)
            pause_s = min(pause_s * 2, settings.reconnect_max_s)

    async def handle_message(self, topic: str, payload: bytes | None) -> None:
        """Emit one local message as a reading, or count why it cannot be one."""
        if not payload:
            logger.debug("adapter %s: empty message on %s ignored", self.settings.id, topic)
            return

        stream = self._stream_of(topic)
        if stream is None:
            self._problem("unknown_stream", topic, "the topic's last level is not attendance, energy or room; set stream")
            return

        try:
            data = json.loads(payload)
        except (UnicodeDecodeError, ValueError) as exc:
            self._problem("invalid_json", topic, f"payload is not valid JSON ({exc}): {payload[:80]!r}")
            return
        if not isinstance(data, dict):
            self._problem("not_an_object", topic, f"payload is a JSON {type(data).__name__}, not an object")
            return

        await self.emit(DeviceReading(stream, data))

        device = data.get("device")
        ts_ms = data.get("ts")
        if isinstance(device, str) and isinstance(ts_ms, int) and not isinstance(ts_ms, bool):
            self.stats.saw(device, ts_ms)

    def _stream_of(self, topic: str) -> str | None:
        for subscription in self.settings.subscriptions:
            if aiomqtt.Topic(topic).matches(subscription.topic):
                if subscription.stream is not None:
                    return subscription.stream
                break
        last_level = topic.rsplit("/", 1)[-1]
        return last_level if last_level in _TELEMETRY else None

    def _problem(self, reason: str, topic: str, detail: str) -> None:
        self.stats.count_error(reason)
        self._log.warning(reason, "adapter %s: message on %s ignored (%s): %s", self.settings.id, topic, reason, detail)

    def _make_client(self) -> aiomqtt.Client:
        settings = self.settings
        password = settings.password.get_secret_value() if settings.password else None
        return aiomqtt.Client(
            hostname=settings.host,
            port=settings.port,
            username=settings.username,
            password=password,
            identifier=settings.client_id,
            clean_session=settings.client_id is None,
            keepalive=settings.keepalive_s,
        )
