"""Subscription to the office's local MQTT broker, shared by the Tasmota, Shelly and Zigbee2MQTT adapters.

Devices publish to a broker inside the office. The adapter subscribes there with aiomqtt and
hands every message to a handler. The loop reconnects with exponential backoff and logs every
attempt. It uses a persistent session (``clean_session=False``) with a fixed client id, so
QoS 1 messages that devices publish while the adapter reconnects are delivered afterwards.

Retained messages: on every (re)subscription the broker replays the retained message of each
topic with the retain flag set. Live messages arrive with the flag cleared (MQTT 3.1.1,
normative statement MQTT-3.3.1-8), as Mosquitto 2 does and the adapter tests check. Handlers
use ``IncomingMessage.retained`` to treat a replay as the current state and not as a new event,
such as a stored ``Offline`` of a device that went offline hours ago.

NOTE: aiomqtt 2.5 acknowledges a QoS 1 message when paho receives it, before the handler has
emitted the reading, so a crash in between loses that one message.
"""

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiomqtt
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from .base import Adapter
from .readings import ProblemLog
from .retry import Backoff

MAX_QUEUED_MESSAGES = 10_000
"""Maximum number of received messages waiting for the handler. Beyond it, aiomqtt discards new ones."""


class LocalBrokerSettings(BaseModel):
    """Connection to the office's local broker."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65_535)
    username: str | None = None
    password: SecretStr | None = None
    client_id: str | None = Field(
        default=None, description="MQTT client id, unique per broker (default smartoffice-edge-<adapter id>)"
    )
    keepalive_s: int = Field(default=30, ge=5, le=3_600)
    reconnect_min_s: float = Field(default=1.0, gt=0)
    reconnect_max_s: float = Field(default=60.0, gt=0)

    @model_validator(mode="after")
    def _ordered_reconnect_delays(self):
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError(
                f"reconnect_max_s={self.reconnect_max_s} is below reconnect_min_s={self.reconnect_min_s}: "
                "set it to at least reconnect_min_s"
            )
        return self


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    """One message from the local broker, as the adapters' parsers see it."""

    topic: str
    payload: bytes
    retained: bool
    received_ms: int
    """Reception time on the node in UTC epoch ms. It is the reading's time when the device sends none."""


MessageHandler = Callable[[IncomingMessage], Awaitable[None]]


class LocalSubscription:
    """Subscribes to ``topics`` on the local broker and passes each message to ``handle`` until cancelled.

    ``connected`` is set while the subscription is active, so tests and callers can wait
    for it before devices publish non-retained messages.
    """

    def __init__(
        self,
        broker: LocalBrokerSettings,
        client_id: str,
        topics: list[str],
        handle: MessageHandler,
        logger: logging.Logger,
        adapter_id: str,
    ) -> None:
        self.broker = broker
        self.client_id = client_id
        self.topics = topics
        self.handle = handle
        self.logger = logger
        self.adapter_id = adapter_id
        self.connected = asyncio.Event()

    async def run(self) -> None:
        """Connect, subscribe and handle messages, and reconnect with backoff after every failure."""
        backoff = Backoff(self.broker.reconnect_min_s, self.broker.reconnect_max_s)
        while True:
            try:
                await self._session(backoff)
            except aiomqtt.MqttError as exc:
                self.connected.clear()
                delay_s = backoff.next_delay_s()
                self.logger.warning(
                    "%s: connection to local broker %s:%d failed (%s), reconnecting in %.1f s (attempt %d)",
                    self.adapter_id, self.broker.host, self.broker.port, exc, delay_s, backoff.attempt,
                )
                await asyncio.sleep(delay_s)

    async def _session(self, backoff: Backoff) -> None:
        password = self.broker.password.get_secret_value() if self.broker.password else None
        async with aiomqtt.Client(
            self.broker.host,
            self.broker.port,
            username=self.broker.username,
            password=password,
            identifier=self.client_id,
            clean_session=False,
            keepalive=self.broker.keepalive_s,
            max_queued_incoming_messages=MAX_QUEUED_MESSAGES,
        ) as client:
            await client.subscribe([(topic, 1) for topic in self.topics])
            self.logger.info(
                "%s: subscribed to %d topics on local broker %s:%d as %s",
                self.adapter_id, len(self.topics), self.broker.host, self.broker.port, self.client_id,
            )
            backoff.reset()
            self.connected.set()

            try:
                async for message in client.messages:
                    await self.handle(_incoming(message))
            finally:
                self.connected.clear()


class LocalBrokerAdapter(Adapter):
    """An adapter fed by one subscription on the office's local broker.

    A subclass builds its topic table, calls ``subscribe`` from its constructor and handles
    each message in ``_handle``; ``run`` logs the start and stop around the subscription.
    """

    label: str = "local broker"
    """Name of the device family in the start and stop log lines, e.g. ``Tasmota``."""

    logger: logging.Logger = logging.getLogger(__name__)

    def subscribe(self, topics: list[str]) -> None:
        """Create the subscription to ``topics`` with the adapter's broker settings."""
        broker = self.settings.broker
        self.subscription = LocalSubscription(
            broker, broker.client_id or default_client_id(self.settings.id), topics, self._handle, self.logger, self.settings.id
        )

    async def run(self) -> None:
        """Subscribe and emit readings until cancelled."""
        self.logger.info("%s: starting %s adapter for %d devices", self.settings.id, self.label, len(self.settings.devices))
        try:
            await self.subscription.run()
        finally:
            self.logger.info("%s: %s adapter stopped", self.settings.id, self.label)

    async def _handle(self, message: "IncomingMessage") -> None:
        raise NotImplementedError


def default_client_id(adapter_id: str) -> str:
    """Return the local broker client id of an adapter that configures none."""
    return f"smartoffice-edge-{adapter_id}"


def _incoming(message: aiomqtt.Message) -> IncomingMessage:
    payload = message.payload
    if isinstance(payload, str):
        payload = payload.encode()
    elif payload is None:
        payload = b""
    elif not isinstance(payload, bytes | bytearray):
        payload = str(payload).encode()

    return IncomingMessage(
        topic=message.topic.value,
        payload=bytes(payload),
        retained=bool(message.retain),
        received_ms=time.time_ns() // 1_000_000,
    )


class PayloadError(ValueError):
    """Raised when a message payload cannot be read at all. The message names the problem."""


def parse_json_object(payload: bytes) -> dict:
    """Decode ``payload`` as one JSON object. NaN and Infinity pass here, and the adapters drop them per field.

    Raises:
        PayloadError: the payload is not UTF-8, not JSON, or not an object.
    """
    try:
        data = json.loads(payload.decode("utf-8"))
    except UnicodeDecodeError:
        raise PayloadError("payload is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise PayloadError(f"payload is not valid JSON ({exc})") from None

    if not isinstance(data, dict):
        raise PayloadError(f"payload is a JSON {type(data).__name__}, expected an object")
    return data


class Availability:
    """Online state of each device, from its last will (LWT) or availability topic.

    A retained message replayed on subscription sets the state without counting a transition,
    so a restart of the adapter does not report an old ``Offline`` again. A live change to
    offline is counted as ``device_offline`` and logged as a warning.
    """

    def __init__(self, problems: ProblemLog, logger: logging.Logger, adapter_id: str) -> None:
        self.problems = problems
        self.logger = logger
        self.adapter_id = adapter_id
        self.online: dict[str, bool] = {}

    def update(self, device: str, online: bool, retained: bool) -> None:
        """Store the state of ``device``, logging and counting a live change."""
        previous = self.online.get(device)
        self.online[device] = online
        state = "online" if online else "offline"

        if retained:
            self.logger.info("%s: device %s is %s (retained state at subscription)", self.adapter_id, device, state)
            return
        if previous == online:
            return

        if online:
            self.logger.info("%s: device %s is online", self.adapter_id, device)
        else:
            self.problems.report("device_offline", device, "device went offline")
