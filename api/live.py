"""Live view: one MQTT subscription per API process, fanned out to Server-Sent Events clients.

``LiveSubscriber`` keeps a plain, non-persistent subscription (QoS 0, clean session) to the
four reading streams and reconnects with backoff in a background task. A broker that is down
therefore delays only the live view, and the other routes keep serving (``tests/test_live.py``
and ``tests/test_api.py`` run the API with the broker port closed). Each valid message becomes one ``LiveEvent``, encoded to
JSON once, and ``LiveHub`` copies it into a bounded queue per connected client. A client
whose queue is full loses its oldest events and is told how many it lost, so a slow client
neither slows the others nor grows memory without bound.

Attendance events carry the employee id as the keyed pseudonym that InfluxDB stores (see
``ingest.pseudonyms``), and clients whose role sees attendance as counts only get the same
event without it.
"""

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import aiomqtt

from contract import ContractError, Stream, TopicError, parse_payload, parse_topic, stream_filter
from contract.payloads import ContractModel
from contract.topics import TopicParts

from .config import ApiSettings
from .timewindows import from_epoch_ms

logger = logging.getLogger(__name__)

LIVE_STREAMS = (Stream.ROOM, Stream.ENERGY, Stream.ATTENDANCE, Stream.STATUS)
"""Streams the live view forwards."""

SUBSCRIBED_STREAMS = (*LIVE_STREAMS, Stream.CONFIG_REPORTED)
"""Streams the subscription receives: the live ones, and configuration reports for the listeners."""

MessageListener = Callable[[TopicParts, ContractModel, bool, int], None]
"""Called with each valid message: topic parts, payload model, retain flag, receive time (epoch ms).
It runs on the event loop and must not block."""

EmployeeIdMask = Callable[[str, str], str | None]
"""Maps (opd, employee id as sent) to what live clients see: the keyed pseudonym, or None to leave it out."""

_RECONNECT_MIN_S = 1.0
_RECONNECT_MAX_S = 30.0
_MAX_QUEUED_MESSAGES = 10_000
"""Maximum length of aiomqtt's own incoming queue, which the hub empties without awaiting anything."""


@dataclass(frozen=True, slots=True)
class LiveEvent:
    """One forwarded message: its routing keys and its ``data`` line, already JSON."""

    event_id: int
    opd: str
    stream: str
    data: str
    event: str = "reading"
    """SSE event name: ``reading`` for a message, ``alert`` for an alert change."""
    anonymous_data: str | None = None
    """``data`` without the employee id, for clients that see attendance as counts only; None when ``data`` has none."""


@dataclass(frozen=True, slots=True)
class Dropped:
    """Marker returned instead of an event: ``count`` older events were discarded."""

    count: int


@dataclass(eq=False, slots=True)
class LiveClient:
    """Queue and filters of one connected client. A filter of ``None`` accepts everything."""

    opds: frozenset[str] | None
    streams: frozenset[str] | None
    queue: asyncio.Queue[LiveEvent]
    personal_data: bool = True
    """False for a role that gets attendance as counts only, so its events leave out employee ids."""
    delivered: int = 0
    dropped: int = 0
    _unreported_drops: int = field(default=0, repr=False)

    def accepts(self, event: LiveEvent) -> bool:
        """Return True when the event passes the client's OPD and stream filters."""
        if self.opds is not None and event.opd not in self.opds:
            return False
        return self.streams is None or event.stream in self.streams

    def offer(self, event: LiveEvent) -> None:
        """Queue ``event`` without waiting. When the queue is full, discard its oldest event first."""
        if self.queue.full():
            self.queue.get_nowait()
            self.dropped += 1
            self._unreported_drops += 1
        self.queue.put_nowait(event)

    def data_of(self, event: LiveEvent) -> str:
        """Return the ``data`` line of ``event`` that this client may see."""
        if event.anonymous_data is not None and not self.personal_data:
            return event.anonymous_data
        return event.data

    async def next(self) -> LiveEvent | Dropped:
        """Wait for the next event; report discarded events first, because they were older."""
        if self._unreported_drops:
            dropped = Dropped(self._unreported_drops)
            self._unreported_drops = 0
            return dropped

        event = await self.queue.get()
        self.delivered += 1
        return event


class LiveHub:
    """Registry of connected clients, to which ``publish`` copies each event that their filters accept."""

    def __init__(self, queue_size: int) -> None:
        self.queue_size = queue_size
        self.clients: set[LiveClient] = set()
        self._last_id = 0

    def connect(
        self, opds: Collection[str] | None = None, streams: Collection[str] | None = None, personal_data: bool = True
    ) -> LiveClient:
        """Register a client with its filters and an empty bounded queue.

        An empty ``opds`` means every OPD; a caller that may see no OPD must not connect.
        """
        client = LiveClient(
            opds=frozenset(opds) if opds else None,
            streams=frozenset(streams) if streams else None,
            queue=asyncio.Queue(maxsize=self.queue_size),
            personal_data=personal_data,
        )
        self.clients.add(client)
        return client

    def disconnect(self, client: LiveClient) -> None:
        """Forget a client. An unknown client is ignored."""
        self.clients.discard(client)

    def next_id(self) -> int:
        """Return the next event id, counting up from 1 for the life of the process."""
        self._last_id += 1
        return self._last_id

    def publish(self, event: LiveEvent) -> None:
        """Queue ``event`` for every client whose filters accept it, without waiting."""
        for client in self.clients:
            if client.accepts(event):
                client.offer(event)


class LiveSubscriber:
    """The API process's MQTT subscription that feeds a ``LiveHub``."""

    def __init__(
        self,
        settings: ApiSettings,
        hub: LiveHub,
        zone: ZoneInfo,
        listeners: list[MessageListener] | None = None,
        mask_employee_id: EmployeeIdMask | None = None,
    ) -> None:
        self.settings = settings
        self.hub = hub
        self.zone = zone
        self.listeners = listeners or []
        self.mask_employee_id = mask_employee_id
        self.rejected = 0
        self.failures = 0

    async def run(self) -> None:
        """Receive until cancelled, reconnecting with exponential backoff while the broker is unreachable."""
        while True:
            try:
                await self._session()
                continue  # the broker closed the session cleanly: reconnect at once
            except aiomqtt.MqttError as exc:
                self.failures += 1
                delay_s = self._retry_delay_s()
                logger.warning(
                    "live view: broker %s:%d connection lost or refused (%d in a row): %s; reconnecting in %.0f s",
                    self.settings.mqtt_host,
                    self.settings.mqtt_port,
                    self.failures,
                    exc,
                    delay_s,
                )
            except Exception:
                # A bug here must not end the live view for the life of the process.
                self.failures += 1
                delay_s = self._retry_delay_s()
                logger.exception("live view: subscriber failed (%d in a row); restarting in %.0f s", self.failures, delay_s)
            await asyncio.sleep(delay_s)

    def _retry_delay_s(self) -> float:
        return min(_RECONNECT_MIN_S * 2 ** min(self.failures - 1, 10), _RECONNECT_MAX_S)

    async def _session(self) -> None:
        async with self._make_client() as client:
            for stream in SUBSCRIBED_STREAMS:
                await client.subscribe(stream_filter(stream), qos=0)
            self.failures = 0
            logger.info(
                "live view subscribed to %d streams on broker %s:%d",
                len(SUBSCRIBED_STREAMS),
                self.settings.mqtt_host,
                self.settings.mqtt_port,
            )
            async for message in client.messages:
                self.handle(message.topic.value, message.payload, message.retain)

    def _make_client(self) -> aiomqtt.Client:
        password = self.settings.mqtt_password.get_secret_value() if self.settings.mqtt_password else None
        return aiomqtt.Client(
            self.settings.mqtt_host,
            self.settings.mqtt_port,
            username=self.settings.mqtt_username,
            password=password,
            identifier=f"smartoffice-api-live-{uuid.uuid4().hex[:12]}",
            protocol=aiomqtt.ProtocolVersion.V311,
            clean_session=True,
            max_queued_incoming_messages=_MAX_QUEUED_MESSAGES,
            logger=logging.getLogger("api.live.mqtt"),
        )

    def handle(self, topic: str, payload: object, retained: bool) -> None:
        """Validate one message, hand it to the listeners and publish it to the hub.

        An invalid message is counted and skipped. A listener that raises is logged and does
        not stop the others or the live view.
        """
        parsed = self._parse(topic, payload)
        if parsed is None:
            return

        parts, model = parsed
        if self.listeners:
            self._notify(topic, parts, model, retained)
        if parts.stream in LIVE_STREAMS:
            self.hub.publish(self._event(parts, model, retained))

    def _parse(self, topic: str, payload: object) -> tuple[TopicParts, ContractModel] | None:
        """Return the topic parts and payload model, or None (counted, logged at DEBUG) when either breaks the contract."""
        try:
            parts = parse_topic(topic)
            if not isinstance(payload, bytes):
                raise ContractError("invalid_json", f"payload is a {type(payload).__name__}, not bytes")
            return parts, parse_payload(parts.stream.value, payload).model
        except (TopicError, ContractError) as exc:
            self.rejected += 1
            logger.debug("live view: message on %r not forwarded (%d so far): %s", topic, self.rejected, exc)
            return None

    def _notify(self, topic: str, parts: TopicParts, model: ContractModel, retained: bool) -> None:
        received_ms = int(time.time() * 1000)
        for listener in self.listeners:
            try:
                listener(parts, model, retained, received_ms)
            except Exception:
                logger.exception("live view: listener %r failed on a message of %r", listener, topic)

    def build_event(self, topic: str, payload: object, retained: bool) -> LiveEvent | None:
        """Return the event of one message, or None when its topic or payload breaks the contract
        or its stream is not part of the live view."""
        parsed = self._parse(topic, payload)
        if parsed is None:
            return None
        parts, model = parsed
        if parts.stream not in LIVE_STREAMS:
            self.rejected += 1
            logger.debug("live view: message on %r not forwarded: stream %r is not part of the live view", topic, parts.stream.value)
            return None
        return self._event(parts, model, retained)

    def _event(self, parts: TopicParts, model: ContractModel, retained: bool) -> LiveEvent:
        fields = model.model_dump(mode="json", exclude_none=True)
        device = fields.pop("device", None)
        ts = fields.pop("ts", None)
        if ts is None:
            # A node's last will has no ts; the contract specifies the receive time instead.
            ts = int(time.time() * 1000)
        employee_id = fields.get("employee_id")
        if employee_id is not None and self.mask_employee_id is not None:
            masked = self.mask_employee_id(parts.opd, employee_id)
            if masked is None:
                del fields["employee_id"]
            else:
                fields["employee_id"] = masked
        data = {
            "opd": parts.opd,
            "node": parts.node,
            "stream": parts.stream.value,
            "device": device,
            "ts": ts,
            "time": from_epoch_ms(ts, self.zone).isoformat(),
            "retained": retained,
            **fields,
        }
        anonymous_data = None
        if "employee_id" in data:
            anonymous = {key: value for key, value in data.items() if key != "employee_id"}
            anonymous_data = json.dumps(anonymous, separators=(",", ":"))
        return LiveEvent(
            event_id=self.hub.next_id(),
            opd=parts.opd,
            stream=parts.stream.value,
            data=json.dumps(data, separators=(",", ":")),
            anonymous_data=anonymous_data,
        )
