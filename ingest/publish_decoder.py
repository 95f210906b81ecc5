"""Decoder of MQTT 3.1.1 PUBLISH packets (section 3.3 of the specification) from a byte buffer.

The ingest's receive path parses PUBLISH packets itself, because paho-mqtt 2.2 spends about
25 µs of Python per packet in its generic reader (measured under cProfile on the development
machine). Every other packet type still goes to paho.
"""

from dataclasses import dataclass

PUBLISH = 0x30
_MAX_REMAINING_LENGTH_BYTES = 4


@dataclass(frozen=True, slots=True)
class Publish:
    """One PUBLISH packet; ``packet_id`` is 0 for QoS 0."""

    topic: str
    payload: bytes
    qos: int
    retain: bool
    packet_id: int


def decode_publish(data: bytes, position: int) -> tuple[Publish, int] | None:
    """Decode the PUBLISH packet at ``data[position:]`` and return it with the next position.

    Returns None when the bytes there are not a complete QoS 0 or QoS 1 PUBLISH packet: another
    packet type, a QoS 2 PUBLISH, an incomplete packet, or a malformed header. The caller then
    hands those bytes to the general-purpose reader, which also reports protocol errors.
    """
    end_of_data = len(data)
    if position >= end_of_data:
        return None

    header = data[position]
    qos = (header >> 1) & 0x03
    if header & 0xF0 != PUBLISH or qos == 2:
        return None

    # Remaining length: 1 to 4 bytes, 7 bits each, least significant first.
    remaining = 0
    index = position + 1
    for shift in range(0, 7 * _MAX_REMAINING_LENGTH_BYTES, 7):
        if index >= end_of_data:
            return None
        byte = data[index]
        index += 1
        remaining |= (byte & 0x7F) << shift
        if not byte & 0x80:
            break
    else:
        return None

    end = index + remaining
    if end > end_of_data or remaining < 2:
        return None

    topic_length = int.from_bytes(data[index : index + 2], "big")
    topic_end = index + 2 + topic_length
    payload_start = topic_end + (2 if qos else 0)
    if payload_start > end:
        return None

    topic = data[index + 2 : topic_end].decode("utf-8", errors="replace")
    packet_id = int.from_bytes(data[topic_end:payload_start], "big") if qos else 0
    packet = Publish(topic, data[payload_start:end], qos, bool(header & 0x01), packet_id)
    return packet, end
