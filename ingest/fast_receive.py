"""Fast receive path for an aiomqtt client: manual PUBACK, own PUBLISH parsing, buffered reads.

aiomqtt 2.5 (on paho-mqtt 2.2) hands each message over with an asyncio task and a queue
and reads one packet per wake-up of the event loop, with three or more ``recv`` system calls
per packet. On the 2-core development machine, the ingest drained a backlog at about 7,300
msg/s through aiomqtt's message iterator and at about 45,000 msg/s through this path
(``docs/benchmarks.md``). It changes four things on the paho client that aiomqtt wraps,
before the connection is opened:

1. ``manual_ack_set(True)``: paho sends no PUBACK by itself; the caller acknowledges each
   QoS 1 message with ``FastReceiver.ack`` once it is durable.
2. Socket reads go through a 256 KiB buffer, and one read event parses up to
   ``PACKETS_PER_READ_EVENT`` packets from it. Reading can be paused and resumed, for
   backpressure.
3. Complete QoS 0 and QoS 1 PUBLISH packets in that buffer are decoded here
   (``publish_decoder``) and passed straight to the handler; every other packet, and a
   PUBLISH that paho has started reading, goes through paho as usual.
4. paho's own ``on_message`` (for the PUBLISH packets it still reads) calls the same handler,
   instead of aiomqtt's conversion and queue. ``client.messages`` then yields nothing but
   still raises ``aiomqtt.MqttError`` when the connection drops.

NOTE: this replaces ``_sock_recv``, ``loop_read`` and ``on_socket_open`` on the paho client
instance and reads ``_in_packet`` and ``_last_bytes_received``, which are internals of
paho-mqtt 2.2 and aiomqtt 2.5 (both pinned in pyproject.toml); aiomqtt has no option for
manual acknowledgement either (aiomqtt issue #345). The ingest integration tests exercise
this path end to end, so an upgrade that changes them fails there.
"""

import asyncio
import logging
import time
from collections.abc import Callable

import aiomqtt
import paho.mqtt.client as paho_client

from .publish_decoder import decode_publish

logger = logging.getLogger(__name__)

READ_BUFFER_BYTES = 256 * 1024
PACKETS_PER_READ_EVENT = 1_000
"""Packets parsed per turn of the event loop, so a long backlog does not starve other tasks."""

MessageHandler = Callable[[str, bytes, int, int, bool], None]
"""Called with (topic, payload, qos, packet id, retain) for every PUBLISH received."""


class _BufferedReader:
    """Serves paho's small ``recv`` calls from one large read of the socket."""

    def __init__(self, raw_recv: Callable[[int], bytes]) -> None:
        self._raw_recv = raw_recv
        self._data = b""
        self._position = 0

    def has_data(self) -> bool:
        """True while bytes read from the socket wait to be parsed."""
        return self._position < len(self._data)

    def take_publish(self):
        """Remove and return the complete PUBLISH packet at the read position, or None."""
        decoded = decode_publish(self._data, self._position)
        if decoded is None:
            return None
        packet, self._position = decoded
        return packet

    def recv(self, size: int) -> bytes:
        """Return up to ``size`` bytes; raises what paho's own read raises when none are ready."""
        if self._position >= len(self._data):
            self._data = self._raw_recv(READ_BUFFER_BYTES)
            self._position = 0
            if not self._data:
                return b""  # the broker closed the connection

        chunk = self._data[self._position : self._position + size]
        self._position += len(chunk)
        return chunk


class FastReceiver:
    """The fast receive path of one aiomqtt client, for one connection.

    ``pause`` stops reading the socket, so TCP flow control stops the broker from sending, and
    ``resume`` starts again; the service pauses while too many messages wait for InfluxDB.
    The broker's own in-flight window is not enough for that: Mosquitto 2.0.11 was seen to
    send a reconnecting MQTT 3.1.1 session's whole queue of 100,000 messages at once, far past
    ``max_inflight_messages``.
    """

    def __init__(self, client: aiomqtt.Client, on_message: MessageHandler, manual_ack: bool = True) -> None:
        self._paho = client._client  # noqa: SLF001 - aiomqtt exposes no other handle to the paho client
        self._loop = asyncio.get_running_loop()
        self._socket_fd: int | None = None
        self._paused = False

        # Without manual acknowledgement paho sends each PUBACK on receipt; that mode exists
        # only to measure what the delivery guarantee costs.
        self._paho.manual_ack_set(manual_ack)
        self._manual_ack = manual_ack
        self._on_message = on_message
        self._paho.on_message = lambda _client, _userdata, message: on_message(
            message.topic, message.payload, message.qos, message.mid, message.retain
        )

        self._reader = _BufferedReader(self._paho._sock_recv)  # noqa: SLF001
        self._paho._sock_recv = self._reader.recv  # noqa: SLF001
        self._read_one_packet = self._paho.loop_read
        self._paho.loop_read = self._loop_read

        self._aiomqtt_socket_open = self._paho.on_socket_open
        self._paho.on_socket_open = self._on_socket_open

    @property
    def paused(self) -> bool:
        """True while the socket is not read."""
        return self._paused

    def ack(self, packet_id: int) -> None:
        """Send the PUBACK of one QoS 1 message of this connection."""
        self._paho.ack(packet_id, 1)

    def pause(self) -> None:
        """Stop reading; the message being parsed is finished first."""
        self._paused = True

    def resume(self) -> None:
        """Read again, starting with the bytes already buffered."""
        if not self._paused:
            return
        self._paused = False
        if self._socket_fd is not None and self._paho.socket() is not None:
            self._loop.add_reader(self._socket_fd, self._on_readable)
            self._loop.call_soon(self._on_readable)

    def _on_socket_open(self, client, userdata, sock) -> None:
        self._aiomqtt_socket_open(client, userdata, sock)
        self._socket_fd = sock.fileno()

    def _on_readable(self) -> None:
        if self._paho.socket() is None:
            return
        try:
            self._paho.loop_read()
        except OSError as exc:
            logger.warning("reading from the broker failed: %s; disconnecting", exc)
            self._paho.disconnect()

    def _loop_read(self, max_packets: int = 1) -> paho_client.MQTTErrorCode:
        success = paho_client.MQTTErrorCode.MQTT_ERR_SUCCESS
        if self._paused:
            if self._socket_fd is not None:
                self._loop.remove_reader(self._socket_fd)
            return success

        result = success
        decoded_any = False
        for _ in range(PACKETS_PER_READ_EVENT):
            packet = None
            if self._paho._in_packet["command"] == 0:  # noqa: SLF001 - paho is between packets
                packet = self._reader.take_publish()
            if packet is not None:
                decoded_any = True
                self._receive(packet)
            else:
                result = self._read_one_packet(max_packets)
            if result != success or self._paused or not self._has_unread_bytes():
                break
        else:
            # Let the writer and timers run; the buffered bytes raise no new read event.
            self._loop.call_soon(self._on_readable)

        if decoded_any:
            # paho's keepalive check counts only the bytes paho itself read.
            self._paho._last_bytes_received = time.monotonic()  # noqa: SLF001
        return result

    def _receive(self, packet) -> None:
        if packet.qos and not self._manual_ack:
            # paho's ack() sends nothing unless manual acknowledgement is on.
            self._paho._send_puback(packet.packet_id)  # noqa: SLF001
        self._on_message(packet.topic, packet.payload, packet.qos, packet.packet_id, packet.retain)

    def _has_unread_bytes(self) -> bool:
        if self._reader.has_data():
            return True
        # An SSL socket may hold decrypted bytes that the kernel no longer signals.
        sock = self._paho.socket()
        return sock is not None and hasattr(sock, "pending") and sock.pending() > 0
