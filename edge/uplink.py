"""The node's connection to the central broker, with reconnects, status and remote configuration.

The node connects with MQTT 3.1.1 as its own identity: a fixed client id and
``clean_session=False``, so the broker keeps the node's subscription to its ``config`` topic
while it is away. The last will is the retained ``{"state":"offline"}`` on the node's
``status`` topic at QoS 1.

On every connect the node publishes its retained online status, subscribes to its ``config``
topic (the broker then sends the retained configuration), and starts the forwarder. Three
tasks run per connection: the message loop (configuration messages), the forwarder and the
wait for a stop. When one of them ends, the others are cancelled. A lost connection is
retried after a pause that doubles from ``reconnect_min_s`` up to ``reconnect_max_s``, and each
retry is logged. A clean stop publishes the offline status itself and then disconnects,
because the broker does not send the will after a normal DISCONNECT.

NOTE: with MQTT 3.1.1 a PUBACK carries no reason code, so a broker that refuses a publish
for lack of permission (an ACL) still acknowledges it and drops it silently. Mosquitto logs
such denials, so check its log when readings are missing.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import aiomqtt

from contract import Stream, build_topic

from .config import EdgeConfig
from .forwarder import QOS, Forwarder
from .heartbeat import OFFLINE_PAYLOAD

logger = logging.getLogger(__name__)

_STABLE_CONNECTION_S = 60.0
"""A connection that lasted this long resets the reconnect pause to its minimum, s."""
_STOP_PUBLISH_TIMEOUT_S = 5.0


class Uplink:
    """Keeps the connection to the central broker up until ``stop()``."""

    def __init__(
        self,
        config: EdgeConfig,
        password: str | None,
        forwarder: Forwarder,
        on_config: Callable[[bytes], Awaitable[bytes | None]],
        status_payload: Callable[[], bytes],
    ) -> None:
        self._config = config
        self._password = password
        self._forwarder = forwarder
        self._on_config = on_config
        self._status_payload = status_payload
        self._stopping = asyncio.Event()
        self._client: aiomqtt.Client | None = None

        self.status_topic = build_topic(config.opd, config.node, Stream.STATUS)
        self.config_topic = build_topic(config.opd, config.node, Stream.CONFIG)
        self.reported_topic = build_topic(config.opd, config.node, Stream.CONFIG_REPORTED)
        self.connects = 0
        """Successful connections since the agent started."""

    @property
    def connected(self) -> bool:
        """True while a connection to the broker is up."""
        return self._client is not None

    def stop(self) -> None:
        """Ask ``run()`` to publish the offline status, disconnect and return."""
        self._stopping.set()

    async def run(self) -> None:
        """Connect, serve the connection, and reconnect after a failure, until ``stop()``."""
        broker = self._config.broker
        pause_s = broker.reconnect_min_s
        failures = 0
        while not self._stopping.is_set():
            connected_at = None
            try:
                async with self._make_client() as client:
                    connected_at = time.monotonic()
                    self.connects += 1
                    logger.info(
                        "connected to broker %s:%d as %s (connection %d)",
                        broker.host,
                        broker.port,
                        self._config.client_id,
                        self.connects,
                    )
                    self._client = client
                    failures = 0
                    await self._serve(client)
            except aiomqtt.MqttError as exc:
                if self._stopping.is_set():
                    break
                failures += 1
                if connected_at is not None and time.monotonic() - connected_at >= _STABLE_CONNECTION_S:
                    pause_s = broker.reconnect_min_s
                state = "lost" if connected_at is not None else "failed"
                logger.warning(
                    "connection to broker %s:%d %s: %s; reconnecting in %.1f s (attempt %d)",
                    broker.host,
                    broker.port,
                    state,
                    exc,
                    pause_s,
                    failures,
                )
                await self._sleep_unless_stopping(pause_s)
                pause_s = min(pause_s * 2, broker.reconnect_max_s)
            finally:
                self._client = None

        logger.info("disconnected from broker %s:%d", broker.host, broker.port)

    async def publish_status(self) -> bool:
        """Publish the retained online status now. Return False when not connected or when it failed."""
        client = self._client
        if client is None:
            return False
        try:
            await client.publish(self.status_topic, self._status_payload(), qos=QOS, retain=True, timeout=10.0)
        except aiomqtt.MqttError as exc:
            logger.warning("publishing the status on %s failed: %s", self.status_topic, exc)
            return False
        return True

    def _make_client(self) -> aiomqtt.Client:
        broker = self._config.broker
        tls_params = None
        tls_insecure = None
        if broker.tls is not None:
            tls_params = aiomqtt.TLSParameters(
                ca_certs=str(broker.tls.ca_file) if broker.tls.ca_file else None,
                certfile=str(broker.tls.cert_file) if broker.tls.cert_file else None,
                keyfile=str(broker.tls.key_file) if broker.tls.key_file else None,
            )
            tls_insecure = broker.tls.insecure

        return aiomqtt.Client(
            hostname=broker.host,
            port=broker.port,
            username=broker.username,
            password=self._password,
            identifier=self._config.client_id,
            clean_session=False,
            keepalive=broker.keepalive_s,
            timeout=broker.connect_timeout_s,
            will=aiomqtt.Will(self.status_topic, OFFLINE_PAYLOAD, qos=QOS, retain=True),
            max_inflight_messages=broker.max_inflight_messages,
            tls_params=tls_params,
            tls_insecure=tls_insecure,
        )

    async def _serve(self, client: aiomqtt.Client) -> None:
        """Run one connection until it fails or a stop is requested."""
        await client.publish(self.status_topic, self._status_payload(), qos=QOS, retain=True)
        granted = await client.subscribe(self.config_topic, qos=QOS)
        if any(code.is_failure for code in granted or ()):
            # The broker's ACL does not let this node read its config topic, but telemetry still flows.
            logger.error(
                "the broker refused the subscription to %s: remote configuration is off for this connection",
                self.config_topic,
            )

        receive = asyncio.create_task(self._receive(client), name="uplink-receive")
        forward = asyncio.create_task(self._forwarder.run(client), name="uplink-forward")
        stop = asyncio.create_task(self._stopping.wait(), name="uplink-stop")
        done, pending = await asyncio.wait({receive, forward, stop}, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

        if stop in done:
            try:
                await client.publish(
                    self.status_topic, OFFLINE_PAYLOAD, qos=QOS, retain=True, timeout=_STOP_PUBLISH_TIMEOUT_S
                )
            except aiomqtt.MqttError as exc:
                logger.warning("publishing the offline status failed: %s; the broker sends the last will", exc)
            return

        for task in done:
            task.result()
        raise aiomqtt.MqttError("the connection tasks ended without an error")

    async def _receive(self, client: aiomqtt.Client) -> None:
        """Handle the messages on the ``config`` topic until the connection drops, then raise MqttError."""
        async for message in client.messages:
            if not message.topic.matches(self.config_topic):
                logger.warning("message on unexpected topic %s ignored", message.topic)
                continue

            payload = bytes(message.payload or b"")
            try:
                report = await self._on_config(payload)
            except Exception:
                # A fault in applying one configuration must not take the connection down with it.
                logger.exception("handling the configuration message on %s failed", message.topic)
                continue
            if report is not None:
                await client.publish(self.reported_topic, report, qos=QOS)

    async def _sleep_unless_stopping(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)
        except TimeoutError:
            pass
