"""The ingest service: MQTT messages in, validated points out to InfluxDB.

Hot path (one event loop, no locks, no task per message): each PUBLISH reaches
``_on_message`` directly (see ``fast_receive``). The message is parsed against the contract,
encoded as one line of line protocol and appended to the open batch with its packet id. The batch
is handed to the writer when it holds ``batch_size`` messages or is ``flush_interval_s`` old.

Delivery guarantee: paho's automatic PUBACK is switched off. A QoS 1 message is acknowledged
only after its batch was answered by InfluxDB, so a crash at any moment leaves every
unwritten message with the broker, which sends it again on reconnect (persistent session:
MQTT 3.1.1 with ``clean_session`` false, on the first connection too). Redelivered messages
rewrite the same points (see ``points``). Invalid messages are acknowledged with the batch
they arrived in, so a poison message never loops.

Backpressure: when ``max_unacknowledged`` messages wait for InfluxDB, the service stops
reading the socket until half of them are stored; the rest waits in the broker's queue for
the session, so memory stays bounded while InfluxDB is down. MQTT 3.1.1 is used because paho-mqtt 2.2 builds a
properties object for every MQTT 5 PUBLISH, which halves the receive rate.
"""

import asyncio
import logging
import time

import aiomqtt

from contract import (
    TELEMETRY_STREAMS,
    ContractError,
    Stream,
    TopicError,
    parse_payload,
    parse_topic,
    shared_filter,
    stream_filter,
)

from .batch import Batch
from .batch_writer import BatchWriter
from .config import IngestSettings
from .dead_letters import DeadLetter, DeadLetterStore
from .fast_receive import FastReceiver
from .influx_writer import InfluxUnavailable, InfluxWriter
from .line_protocol import LineProtocolError
from .log_limits import RateLimitedLogger
from .metrics import IngestMetrics
from .points import PointEncoder
from .pseudonyms import Pseudonymizer

logger = logging.getLogger(__name__)

SUBSCRIBED_STREAMS = (*TELEMETRY_STREAMS, Stream.STATUS)
"""Streams the service stores; ``config`` and ``config/reported`` belong to the API."""

_MAX_CACHED_TOPICS = 100_000
_RECONNECT_MAX_S = 30.0
_DRAIN_TIMEOUT_S = 15.0
_SUBACK_TIMEOUT_S = 24 * 3600.0  # a SUBACK may queue behind a paused backlog for as long as InfluxDB is down


class IngestService:
    """Consume the contract's streams from one broker and store them in one database."""

    def __init__(
        self, settings: IngestSettings, metrics: IngestMetrics | None = None, pseudonymizer: Pseudonymizer | None = None
    ) -> None:
        self.settings = settings
        self.metrics = metrics or IngestMetrics()
        self._encoder = PointEncoder(pseudonyms=pseudonymizer)
        self._topics: dict[str, object] = {}
        self._connection = 0
        self._receiver: FastReceiver | None = None
        self._unacknowledged = 0
        self._batch = Batch(connection=0)
        self._stopping = asyncio.Event()
        self._rejections = RateLimitedLogger(logger)
        self._max_future_ms = int(settings.max_clock_ahead_s * 1000)
        self._max_age_ms = int(settings.max_age_days * 86_400_000)
        self._writer = InfluxWriter(
            settings.influx_url,
            settings.influx_db,
            settings.influx_username,
            settings.influx_password,
            settings.influx_timeout_s,
        )
        self._dead_letters = DeadLetterStore(settings.dead_letter_path, settings.dead_letter_max_entries)
        self._batches = BatchWriter(
            self._writer,
            self._dead_letters,
            self.metrics,
            self._acknowledge,
            settings.write_retry_max_s,
            is_current=lambda batch: batch.connection == self._connection,
        )

    def stop(self) -> None:
        """Ask ``run`` to finish: stop reading, write and acknowledge what was read, disconnect."""
        self._stopping.set()

    async def run(self) -> None:
        """Run until ``stop`` is called, reconnecting to the broker and retrying InfluxDB."""
        logger.info(
            "ingest starting: broker %s:%d as %r, InfluxDB %s database %r",
            self.settings.mqtt_host,
            self.settings.mqtt_port,
            self.settings.mqtt_client_id,
            self.settings.influx_url,
            self.settings.influx_db,
        )
        if self.settings.influx_create_db:
            # In the background: the service receives (and buffers) while InfluxDB is down.
            create_task = asyncio.create_task(self._create_database(), name="create_database")
        else:
            create_task = None

        writer_task = asyncio.create_task(self._batches.run(), name="batch_writer")
        flush_task = asyncio.create_task(self._flush_loop(), name="flush_loop")
        try:
            await self._connection_loop()
        finally:
            flush_task.cancel()
            writer_task.cancel()
            if create_task is not None:
                create_task.cancel()
            await asyncio.gather(flush_task, writer_task, *filter(None, [create_task]), return_exceptions=True)
            await self._writer.close()
            self._dead_letters.close()
            logger.info(
                "ingest stopped: %d points written, %d messages rejected",
                self.metrics.points_written,
                sum(self.metrics.messages_rejected.values()),
            )

    async def _create_database(self) -> None:
        delay_s = 0.5
        while not self._stopping.is_set():
            try:
                await self._writer.ensure_database()
                return
            except InfluxUnavailable as exc:
                logger.warning("cannot create the database yet: %s; retrying in %.1f s", exc, delay_s)
                await self._sleep_unless_stopping(delay_s)
                delay_s = min(delay_s * 2, self.settings.write_retry_max_s)

    async def _connection_loop(self) -> None:
        delay_s = 1.0
        while not self._stopping.is_set():
            if not self._batches.healthy:
                await self._batches.wait_until_influx_answers(self._stopping)
                if self._stopping.is_set():
                    return
            try:
                await self._session()
                delay_s = 1.0
            except aiomqtt.MqttError as exc:
                self.metrics.broker_connected = 0
                logger.warning("broker connection lost or refused: %s; reconnecting in %.0f s", exc, delay_s)
                await self._sleep_unless_stopping(delay_s)
                delay_s = min(delay_s * 2, _RECONNECT_MAX_S)

    async def _session(self) -> None:
        """Run one broker connection: subscribe, then receive until stopped or disconnected."""
        client = self._make_client()
        # The broker sends the session's queued messages right after CONNACK, before the
        # connect call returns here, so they must already land in this connection's batch.
        self._connection += 1
        self._batch = Batch(connection=self._connection)
        self._unacknowledged = 0
        self.metrics.unacknowledged = 0
        self._receiver = FastReceiver(client, self._on_message, manual_ack=self.settings.ack_after_write)

        async with client:
            self.metrics.broker_connected = 1
            logger.info("connected to broker %s:%d", self.settings.mqtt_host, self.settings.mqtt_port)

            # Not awaited here: a resumed session delivers its queue before the SUBACK, and if
            # reads pause on that backlog, the SUBACK arrives only after InfluxDB took it.
            subscriber = asyncio.create_task(self._subscribe(client), name="subscribe")
            disconnect = asyncio.create_task(self._wait_for_disconnect(client), name="wait_for_disconnect")
            stopper = asyncio.create_task(self._stopping.wait(), name="stop_wait")
            stalled = asyncio.create_task(self._wait_for_stall(), name="wait_for_stall")
            done, _ = await asyncio.wait({disconnect, stopper, stalled}, return_when=asyncio.FIRST_COMPLETED)
            for task in (stopper, subscriber, stalled):
                task.cancel()
            if disconnect in done:
                self._end_connection()
                disconnect.result()  # raises the MqttError that ended the connection
                return

            disconnect.cancel()
            if stopper in done:
                await self._drain()
            self._end_connection()
        logger.info("disconnected from broker")

    def _end_connection(self) -> None:
        """Forget the connection; its unacknowledged messages will be sent again by the broker."""
        self._receiver = None
        self.metrics.broker_connected = 0
        self._batches.discard_stale(self._connection + 1)

    async def _wait_for_stall(self) -> None:
        """Return when reads have been paused for ``max_pause_s``: InfluxDB is down.

        Staying connected with reads paused would let paho's keepalive drop the connection
        anyway (the PINGRESP waits behind the unread backlog), so the service disconnects on
        purpose, keeps its session, and reconnects once InfluxDB responds again.
        """
        paused_since = None
        while True:
            await asyncio.sleep(0.5)
            receiver = self._receiver
            if receiver is None or not receiver.paused:
                paused_since = None
                continue
            paused_since = paused_since or time.monotonic()
            if time.monotonic() - paused_since >= self.settings.max_pause_s:
                logger.warning(
                    "InfluxDB has stored nothing for %.0f s; disconnecting from the broker until it responds again "
                    "(the broker keeps the session's messages)",
                    self.settings.max_pause_s,
                )
                return

    async def _subscribe(self, client: aiomqtt.Client) -> None:
        try:
            for stream in SUBSCRIBED_STREAMS:
                topic_filter = stream_filter(stream)
                if self.settings.mqtt_share_group:
                    topic_filter = shared_filter(self.settings.mqtt_share_group, topic_filter)
                await client.subscribe(topic_filter, qos=1, timeout=_SUBACK_TIMEOUT_S)
        except aiomqtt.MqttError as exc:
            logger.error("subscribing failed: %s; the connection will be retried", exc)
            return
        group = self.settings.mqtt_share_group
        logger.info("subscribed to %d streams%s", len(SUBSCRIBED_STREAMS), f" in shared group {group!r}" if group else "")

    @staticmethod
    async def _wait_for_disconnect(client: aiomqtt.Client) -> None:
        # Messages reach _on_message directly, so the iterator yields none, but it raises
        # MqttError when the connection is lost.
        async for _ in client.messages:
            pass

    def _make_client(self) -> aiomqtt.Client:
        password = self.settings.mqtt_password.get_secret_value() if self.settings.mqtt_password else None
        return aiomqtt.Client(
            self.settings.mqtt_host,
            self.settings.mqtt_port,
            username=self.settings.mqtt_username,
            password=password,
            identifier=self.settings.mqtt_client_id,
            protocol=aiomqtt.ProtocolVersion.V311,
            clean_session=False,
            keepalive=self.settings.mqtt_keepalive_s,
            logger=logging.getLogger("ingest.mqtt"),
        )

    def _on_message(self, topic: str, payload: bytes, qos: int, packet_id: int, retain: bool) -> None:
        """Validate and encode one message into the open batch; bad input is rejected, not raised."""
        batch = self._batch
        if qos > 0 and self.settings.ack_after_write:
            batch.packet_ids.append(packet_id)
            self._unacknowledged += 1
            self.metrics.unacknowledged = self._unacknowledged
        self._handle(batch, topic, payload, retain)

        if len(batch.packet_ids) >= self.settings.batch_size or len(batch.lines) >= self.settings.batch_size:
            self._queue_batch()
        if self._unacknowledged >= self.settings.max_unacknowledged and self._receiver is not None:
            if not self._receiver.paused:
                logger.info("%d messages wait for InfluxDB; pausing reads from the broker", self._unacknowledged)
                self.metrics.receive_pauses += 1
            self._receiver.pause()

    def _handle(self, batch: Batch, topic: str, payload: bytes, retain: bool) -> None:
        received_ms = time.time_ns() // 1_000_000
        parts = self._topics.get(topic)
        if parts is None:
            parts = self._parse_topic(topic)
        if isinstance(parts, TopicError):
            self._reject(batch, topic, payload, received_ms, "invalid_topic", str(parts))
            return

        stream = parts.stream.value
        self.metrics.messages_received[stream] += 1
        if parts.stream is Stream.STATUS:
            if retain:
                # A retained status is the node's state replayed to a new subscription, not a
                # new event. Storing it would add a false transition at every ingest restart.
                self.metrics.messages_skipped["retained_status"] += 1
                return
            if not payload:
                # An empty retained publish clears a node's status; it is not a status.
                self.metrics.messages_skipped["status_cleared"] += 1
                return

        try:
            parsed = parse_payload(stream, payload)
            restamp = parts.stream is not Stream.STATUS and self._check_clock(parsed.model.ts, received_ms)
            line = self._encoder.encode(parts, parsed.model, received_ms, restamp)
        except ContractError as exc:
            self._reject(batch, topic, payload, received_ms, exc.reason, str(exc))
            return
        except LineProtocolError as exc:
            self._reject(batch, topic, payload, received_ms, "unencodable", str(exc))
            return

        for issue in parsed.issues:
            self.metrics.fields_dropped[issue.reason] += 1
            self._rejections.warning(issue.reason, "field dropped on %s: %s", topic, issue.message)
        if restamp:
            self.metrics.clock_restamped += 1
            self._rejections.warning(
                "clock_ahead", "ts %d on %s is %.0f s ahead of the receive time; stored at the receive time",
                parsed.model.ts, topic, (parsed.model.ts - received_ms) / 1000,
            )
        batch.lines.append(line)
        batch.sources.append((topic, payload, received_ms))

    def _check_clock(self, ts_ms: int | None, received_ms: int) -> bool:
        """Apply the device-clock rule; return True when the point must get the receive time.

        Raises:
            ContractError: ``ts`` is older than ``max_age_days`` (reason ``too_old``).
        """
        if ts_ms is None:
            return False
        if ts_ms > received_ms + self._max_future_ms:
            return True
        if ts_ms < received_ms - self._max_age_ms:
            age_days = (received_ms - ts_ms) / 86_400_000
            raise ContractError(
                "too_old",
                f"ts={ts_ms} is {age_days:.1f} days old, beyond SMARTOFFICE_MAX_AGE_DAYS={self.settings.max_age_days:g}: "
                "check the device clock, or raise the limit and replay the dead letter",
            )
        return False

    def _parse_topic(self, topic: str):
        try:
            parts = parse_topic(topic)
        except TopicError as exc:
            parts = exc
        if len(self._topics) >= _MAX_CACHED_TOPICS:
            self._topics.clear()
        self._topics[topic] = parts
        return parts

    def _reject(self, batch: Batch, topic: str, payload: bytes, received_ms: int, reason: str, message: str) -> None:
        self.metrics.messages_rejected[reason] += 1
        self._rejections.warning(reason, "message rejected on %s (%s): %s", topic, reason, message)
        batch.dead_letters.append(DeadLetter(topic, bytes(payload), reason, message, received_ms))

    def _queue_batch(self) -> None:
        """Hand the open batch to the writer; reads pause at ``max_unacknowledged`` messages."""
        batch = self._batch
        self._batch = Batch(connection=self._connection)
        self._batches.submit(batch)

    async def _flush_loop(self) -> None:
        interval_s = self.settings.flush_interval_s
        while True:
            await asyncio.sleep(interval_s / 4)
            batch = self._batch
            if not batch.is_empty() and time.monotonic() - batch.opened >= interval_s:
                self._queue_batch()

    def _acknowledge(self, batch: Batch) -> None:
        """Send the PUBACKs of a stored batch, if its connection is still the current one.

        Packet ids belong to one connection: after a reconnect the broker sends the unacked
        messages again with their own ids, so acknowledging old ids could acknowledge a new,
        unwritten message.
        """
        receiver = self._receiver
        if receiver is None or batch.connection != self._connection:
            return
        for packet_id in batch.packet_ids:
            receiver.ack(packet_id)

        self._unacknowledged -= len(batch.packet_ids)
        self.metrics.unacknowledged = self._unacknowledged
        if receiver.paused and self._unacknowledged <= self.settings.max_unacknowledged // 2:
            receiver.resume()

    async def _drain(self) -> None:
        """On stop, write and acknowledge the open batch and the queued ones, within a bound."""
        if not self._batch.is_empty():
            self._queue_batch()
        try:
            await asyncio.wait_for(self._batches.join(), _DRAIN_TIMEOUT_S)
        except TimeoutError:
            logger.warning(
                "stopping with unwritten batches after %.0f s; the broker keeps their messages", _DRAIN_TIMEOUT_S
            )

    async def _sleep_unless_stopping(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            pass
