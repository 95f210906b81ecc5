"""MQTT side of the simulator: one paho client per simulated edge node, one network thread.

Each node connects with MQTT 5 and client id ``sim-<opd>-<node>``. Its last will is the
retained ``{"state":"offline"}`` on the node's ``status`` topic at QoS 1. On every connect,
and every ``sim_status_interval_s`` after, the node publishes a retained online status.
Telemetry goes out at QoS 1 without the retain flag.

The clients do not use paho's ``loop_start``, because it starts a network thread per client
and wakes that thread for every message. In a load-mode measurement on one core of a 2-vCPU
AMD EPYC container (``smartoffice-sim --rate 100000`` under ``taskset -c 0``), that design
reached about 7,000 msg/s and this one about 11,000 msg/s. Here one network thread serves
every client's socket with ``select``. It reads acknowledgements, sends keepalives, and
reconnects with a backoff that starts at ``sim_reconnect_min_delay_s`` and doubles up to the
maximum. A publish writes to the socket directly in the caller's thread. Every call into paho
happens under one lock, so paho is never used from two threads at once.

At shutdown nothing more is published. The publisher waits, for a bounded time, until the
broker has acknowledged every QoS 1 message, then disconnects each node with reason code 0x04
(Disconnect with Will Message). The broker then publishes the will, so the retained status
of a node that stopped cleanly is ``{"state":"offline"}``, the same as one that crashed.
"""

import json
import logging
import select
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from contract import Stream, build_topic

from .config import SimSettings
from .credentials import NodeCredentials
from .regency import SimNode
from .timeline import Message

logger = logging.getLogger(__name__)

OFFLINE_PAYLOAD = b'{"state":"offline"}'
"""Last will of every node, retained on its ``status`` topic."""

QOS = 1
"""QoS of telemetry and status messages."""

_SELECT_TIMEOUT_S = 0.2
_MISC_INTERVAL_S = 1.0
"""Interval of paho's ``loop_misc``, which sends keepalive pings and detects timeouts."""
_READ_BATCH_S = 0.005
_QUEUE_FULL_RETRY_S = 0.002
_POLL_S = 0.02
_CONNECT_FAILURES_LOGGED_EVERY = 10
_REJECTIONS_LOGGED_EVERY = 1000


def _software_version() -> str:
    try:
        return metadata.version("smartoffice") + "-sim"
    except metadata.PackageNotFoundError:
        return "0.0.0-sim"


SW_VERSION = _software_version()
"""``sw_version`` reported in the status: the package version with a ``-sim`` suffix."""

ClientFactory = Callable[..., mqtt.Client]


@dataclass(frozen=True, slots=True)
class PublishTotals:
    """Counters of all nodes since the publisher started."""

    published: int
    """QoS 1 messages handed to paho, status messages included."""
    acknowledged: int
    """Messages the broker acknowledged with PUBACK."""
    rejected: int
    """Acknowledgements with an error reason code, e.g. not authorised."""
    dropped: int
    """Messages not sent because the node's queue was full."""

    @property
    def in_flight(self) -> int:
        """Messages published and not yet acknowledged."""
        return self.published - self.acknowledged


class NodeClient:
    """The MQTT connection of one simulated edge node.

    Every method, and every paho callback, runs with the publisher's lock held, so the
    counters need no lock of their own.
    """

    def __init__(
        self,
        node: SimNode,
        settings: SimSettings,
        client_factory: ClientFactory = mqtt.Client,
        credentials: NodeCredentials | None = None,
    ) -> None:
        self.opd = node.opd
        self.node = node.node
        # The broker may pin the client id of a provisioned node, so the file's id wins.
        self.client_id = credentials.client_id if credentials and credentials.client_id else node.client_id
        self.status_topic = build_topic(node.opd, node.node, Stream.STATUS)
        self._settings = settings
        self._started = time.monotonic()

        self.connected = threading.Event()
        self.closing = False
        self.published = 0
        self.acknowledged = 0
        self.rejected = 0
        self.dropped = 0
        self._connect_count = 0
        self._connect_failures = 0
        self._reconnect_delay_s = float(settings.sim_reconnect_min_delay_s)
        self._reconnect_at: float | None = 0.0
        self._misc_at = 0.0

        client = client_factory(
            callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=mqtt.MQTTv5,
        )
        client.will_set(self.status_topic, OFFLINE_PAYLOAD, qos=QOS, retain=True)
        if credentials is not None:
            client.username_pw_set(credentials.username, credentials.password)
        elif settings.mqtt_username:
            password = settings.mqtt_password.get_secret_value() if settings.mqtt_password else None
            client.username_pw_set(settings.mqtt_username, password)
        client.max_inflight_messages_set(settings.sim_max_inflight_messages)
        client.max_queued_messages_set(settings.sim_max_queued_messages)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        # Stores the address only; the network thread opens the connection.
        client.connect_async(settings.mqtt_host, settings.mqtt_port, settings.mqtt_keepalive_s, clean_start=True)
        self.client = client

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> bool:
        """Queue one QoS 1 message. Return False when the node's queue is full.

        While the node is offline paho keeps the message and sends it after the reconnect.
        Any other failure is logged and counted as dropped, and returns True.
        """
        info = self.client.publish(topic, payload, qos=QOS, retain=retain)
        if info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:
            return False

        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            logger.warning(
                "node %s/%s: publishing on %s failed: %s", self.opd, self.node, topic, mqtt.error_string(info.rc)
            )
            self.dropped += 1
            return True

        self.published += 1
        return True

    def status_payload(self) -> bytes:
        """Build the online status: wall-clock ``ts``, version, uptime and queue figures."""
        status = {
            "state": "online",
            "ts": time.time_ns() // 1_000_000,
            "sw_version": SW_VERSION,
            "uptime_s": int(time.monotonic() - self._started),
            "queue_depth": max(0, self.published - self.acknowledged),
            "dropped_total": self.dropped,
        }
        return json.dumps(status, separators=(",", ":")).encode()

    def publish_status(self) -> None:
        """Publish the retained online status, unless the node is shutting down."""
        if self.closing:
            return
        if not self.publish(self.status_topic, self.status_payload(), retain=True):
            self.dropped += 1

    def service(self, now: float) -> None:
        """Reconnect when a retry is due, and run paho's keepalive work once a second."""
        if self.closing:
            return

        if self.client.socket() is not None:
            if now >= self._misc_at:
                self.client.loop_misc()
                self._misc_at = now + _MISC_INTERVAL_S
            return

        if self._reconnect_at is None:
            self._back_off(now)
        if now >= self._reconnect_at:
            self._reconnect(now)

    def _reconnect(self, now: float) -> None:
        # NOTE: the TCP connect blocks for up to paho's connect_timeout (5 s) while the lock
        # is held, which pauses publishing on every node. A refused connection on loopback
        # returns at once; an unreachable remote broker does not.
        try:
            self.client.reconnect()
        except OSError as exc:
            self._connect_failures += 1
            wait_s = self._back_off(now)
            if self._connect_failures == 1 or self._connect_failures % _CONNECT_FAILURES_LOGGED_EVERY == 0:
                logger.warning(
                    "node %s/%s: connecting to %s:%d failed (%s, attempt %d); next attempt in %.0f s",
                    self.opd, self.node, self._settings.mqtt_host, self._settings.mqtt_port, exc,
                    self._connect_failures, wait_s,
                )
            return
        self._reconnect_at = None

    def _back_off(self, now: float) -> float:
        """Schedule the next connection attempt, doubling the wait for the one after; return the wait."""
        wait_s = self._reconnect_delay_s
        self._reconnect_at = now + wait_s
        self._reconnect_delay_s = min(wait_s * 2, float(self._settings.sim_reconnect_max_delay_s))
        return wait_s

    def disconnect(self) -> None:
        """Send DISCONNECT with reason 0x04, so that the broker publishes the last will."""
        self.closing = True
        if not self.connected.is_set():
            logger.info("node %s/%s was not connected at shutdown", self.opd, self.node)
            return

        reason = ReasonCode(PacketTypes.DISCONNECT, "Disconnect with will message")
        self.client.disconnect(reasoncode=reason)

    # Callbacks below run inside paho calls made with the publisher's lock held.

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: ReasonCode, properties) -> None:
        settings = self._settings
        if reason_code.is_failure:
            self._connect_failures += 1
            wait_s = self._back_off(time.monotonic())
            logger.error(
                "node %s/%s: broker %s:%d rejected the connection: %s; next attempt in %.0f s",
                self.opd, self.node, settings.mqtt_host, settings.mqtt_port, reason_code, wait_s,
            )
            return

        # The broker may accept fewer unacknowledged messages than configured (MQTT 5
        # Receive Maximum); paho 2.2 does not apply that limit by itself.
        receive_maximum = getattr(properties, "ReceiveMaximum", None)
        if receive_maximum is not None and receive_maximum < client.max_inflight_messages:
            client.max_inflight_messages = receive_maximum

        self._connect_count += 1
        if self._connect_count == 1:
            logger.info("node %s/%s connected to %s:%d", self.opd, self.node, settings.mqtt_host, settings.mqtt_port)
        else:
            logger.info(
                "node %s/%s reconnected to %s:%d after %d failed attempts",
                self.opd, self.node, settings.mqtt_host, settings.mqtt_port, self._connect_failures,
            )
        self._connect_failures = 0
        self._reconnect_delay_s = float(settings.sim_reconnect_min_delay_s)
        self.connected.set()
        self.publish_status()

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: ReasonCode, properties
    ) -> None:
        was_connected = self.connected.is_set()
        self.connected.clear()
        if self.closing:
            logger.debug("node %s/%s disconnected", self.opd, self.node)
        elif was_connected:
            logger.warning(
                "node %s/%s lost its connection (%s); reconnecting in %.0f s",
                self.opd, self.node, reason_code, self._reconnect_delay_s,
            )

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason_code: ReasonCode, properties) -> None:
        self.acknowledged += 1
        if reason_code.is_failure:
            self.rejected += 1
            if self.rejected == 1 or self.rejected % _REJECTIONS_LOGGED_EVERY == 0:
                logger.warning(
                    "node %s/%s: broker rejected a message (%s); %d rejected so far",
                    self.opd, self.node, reason_code, self.rejected,
                )


class Publisher:
    """The MQTT connections of all simulated nodes, their network thread and status thread."""

    def __init__(
        self,
        nodes: list[SimNode],
        settings: SimSettings,
        client_factory: ClientFactory = mqtt.Client,
        credentials: dict[tuple[str, str], NodeCredentials] | None = None,
    ) -> None:
        """Create one client per node. A node with an entry in ``credentials`` logs in with it."""
        self._settings = settings
        credentials = credentials or {}
        self._own_credentials = sum(1 for node in nodes if (node.opd, node.node) in credentials)
        self.clients = {
            (node.opd, node.node): NodeClient(node, settings, client_factory, credentials.get((node.opd, node.node)))
            for node in nodes
        }
        self._lock = threading.Lock()
        self._network_stop = threading.Event()
        self._status_stop = threading.Event()
        self._network_thread = threading.Thread(target=self._network_loop, name="sim-network", daemon=True)
        self._status_thread = threading.Thread(target=self._status_loop, name="sim-status", daemon=True)

    def start(self) -> None:
        """Start the network thread, which connects every node, and the status thread."""
        settings = self._settings
        shared = settings.mqtt_username or "anonymous"
        if self._own_credentials:
            logger.info(
                "connecting %d nodes to %s:%d, %d with their own credentials, the others as %s",
                len(self.clients), settings.mqtt_host, settings.mqtt_port, self._own_credentials, shared,
            )
        else:
            logger.info(
                "connecting %d nodes to %s:%d as %s", len(self.clients), settings.mqtt_host, settings.mqtt_port, shared
            )
        self._network_thread.start()
        self._status_thread.start()

    def wait_connected(self, timeout_s: float, stop: threading.Event | None = None) -> int:
        """Wait until every node is connected, ``timeout_s`` passes or ``stop`` is set.

        Returns how many nodes are connected.
        """
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not (stop is not None and stop.is_set()):
            if all(client.connected.is_set() for client in self.clients.values()):
                break
            time.sleep(_POLL_S)
        return sum(1 for client in self.clients.values() if client.connected.is_set())

    def publish(self, message: Message, wait_for_queue: bool, stop: threading.Event | None = None) -> bool:
        """Publish a telemetry message on its node's connection. Return False when it was dropped.

        With ``wait_for_queue`` a full queue makes the call wait until the broker has
        acknowledged enough messages, or until ``stop`` is set. Without it the message is
        dropped and counted, as a node with a full buffer would.
        """
        client = self.clients[(message.opd, message.node)]
        while True:
            with self._lock:
                if client.publish(message.topic, message.payload):
                    return True
                if not wait_for_queue or (stop is not None and stop.is_set()):
                    client.dropped += 1
                    return False
            time.sleep(_QUEUE_FULL_RETRY_S)

    def totals(self) -> PublishTotals:
        """Return the counters summed over all nodes."""
        with self._lock:
            clients = list(self.clients.values())
            return PublishTotals(
                published=sum(client.published for client in clients),
                acknowledged=sum(client.acknowledged for client in clients),
                rejected=sum(client.rejected for client in clients),
                dropped=sum(client.dropped for client in clients),
            )

    def close(self, timeout_s: float) -> int:
        """Stop publishing, wait up to ``timeout_s`` for acknowledgements and disconnect every node.

        Returns the number of messages still unacknowledged when the wait ended. The broker may
        or may not have received them.
        """
        self._status_stop.set()
        if self._status_thread.is_alive():
            self._status_thread.join()

        in_flight = self._drain(timeout_s)
        with self._lock:
            for client in self.clients.values():
                client.disconnect()

        # The network thread sends any DISCONNECT that did not fit into the socket at once.
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline and any(c.client.socket() is not None for c in self.clients.values()):
            time.sleep(_POLL_S)
        self._network_stop.set()
        if self._network_thread.is_alive():
            self._network_thread.join()

        logger.info("disconnected %d nodes", len(self.clients))
        return in_flight

    def _drain(self, timeout_s: float) -> int:
        """Wait up to ``timeout_s`` for the broker to acknowledge every message; return how many are left."""
        with self._lock:
            for client in self.clients.values():
                client.closing = True

        deadline = time.monotonic() + timeout_s
        in_flight = self.totals().in_flight
        if in_flight:
            logger.info("waiting up to %.1f s for %d unacknowledged messages", timeout_s, in_flight)
        while in_flight and time.monotonic() < deadline:
            time.sleep(_POLL_S)
            in_flight = self.totals().in_flight

        if in_flight:
            logger.warning("%d messages were still unacknowledged after %.1f s; they may be lost", in_flight, timeout_s)
        return in_flight

    def _status_loop(self) -> None:
        interval_s = self._settings.sim_status_interval_s
        while not self._status_stop.wait(interval_s):
            with self._lock:
                for client in self.clients.values():
                    if client.connected.is_set():
                        client.publish_status()

    def _network_loop(self) -> None:
        while not self._network_stop.is_set():
            try:
                self._serve_sockets()
            except Exception:
                # Without this thread no node can reconnect or read acknowledgements, so an
                # unexpected error is logged and the loop goes on after a pause.
                logger.exception("network loop failed; retrying in 1 s")
                self._network_stop.wait(1.0)

    def _serve_sockets(self) -> None:
        """Run one round of the network loop: reconnects, keepalives, then one ``select``."""
        clients = list(self.clients.values())
        with self._lock:
            now = time.monotonic()
            for client in clients:
                client.service(now)
            sockets = {}
            for client in clients:
                sock = client.client.socket()
                if sock is not None:
                    sockets[sock] = client
            writers = [sock for sock, client in sockets.items() if client.client.want_write()]

        if not sockets:
            self._network_stop.wait(_POLL_S)
            return

        try:
            readable, writable, _ = select.select(list(sockets), writers, [], _SELECT_TIMEOUT_S)
        except (OSError, ValueError):
            # A publish in another thread closed a socket after the list was built; the next
            # round builds the list again.
            return

        with self._lock:
            for sock in readable:
                client = sockets[sock]
                if client.client.socket() is sock:
                    client.client.loop_read()
            for sock in writable:
                client = sockets[sock]
                if client.client.socket() is sock:
                    client.client.loop_write()

        if readable:
            # Let acknowledgements pile up for a moment, so that one round reads many of them
            # instead of taking the lock from the publishing thread for each one.
            self._network_stop.wait(_READ_BATCH_S)
