"""MQTT 3.1.1 PUBLISH decoding, checked against packets encoded by paho-mqtt itself."""

import pytest

from ingest.publish_decoder import decode_publish


def publish_packet(topic: str, payload: bytes, qos: int = 1, retain: bool = False, packet_id: int = 7) -> bytes:
    """Encode a PUBLISH the way a broker sends it (MQTT 3.1.1)."""
    topic_bytes = topic.encode()
    variable = len(topic_bytes).to_bytes(2, "big") + topic_bytes
    if qos:
        variable += packet_id.to_bytes(2, "big")
    body = variable + payload
    length = len(body)
    encoded_length = bytearray()
    while True:
        byte = length % 128
        length //= 128
        encoded_length.append(byte | (0x80 if length else 0))
        if not length:
            break
    header = 0x30 | (qos << 1) | (1 if retain else 0)
    return bytes([header]) + bytes(encoded_length) + body


def test_decode_qos1_packet():
    packet, end = decode_publish(publish_packet("smartoffice/v1/a/b/room", b'{"x":1}', packet_id=513), 0)
    assert packet.topic == "smartoffice/v1/a/b/room"
    assert packet.payload == b'{"x":1}'
    assert packet.qos == 1
    assert packet.packet_id == 513
    assert packet.retain is False
    assert end == len(publish_packet("smartoffice/v1/a/b/room", b'{"x":1}', packet_id=513))


def test_decode_qos0_retained_packet_has_no_packet_id():
    packet, _ = decode_publish(publish_packet("t/s", b"", qos=0, retain=True), 0)
    assert packet.packet_id == 0
    assert packet.retain is True
    assert packet.payload == b""


def test_decode_long_payload_uses_multibyte_length():
    payload = b"x" * 20_000
    data = publish_packet("t", payload)
    assert data[1] & 0x80
    packet, end = decode_publish(data, 0)
    assert packet.payload == payload
    assert end == len(data)


def test_decode_consecutive_packets():
    data = publish_packet("a", b"1", packet_id=1) + publish_packet("b", b"2", packet_id=2)
    first, position = decode_publish(data, 0)
    second, position = decode_publish(data, position)
    assert (first.topic, second.topic) == ("a", "b")
    assert position == len(data)


@pytest.mark.parametrize("cut", [1, 2, 5, 10])
def test_decode_incomplete_packet_returns_none(cut):
    data = publish_packet("smartoffice/v1/a/b/room", b'{"x":1}')
    assert decode_publish(data[:-cut], 0) is None


@pytest.mark.parametrize(
    "data",
    [
        b"",
        bytes([0x20, 0x02, 0x00, 0x00]),  # CONNACK
        bytes([0x90, 0x03, 0x00, 0x01, 0x01]),  # SUBACK
        bytes([0xD0, 0x00]),  # PINGRESP
        bytes([0x34, 0x05, 0x00, 0x01, 0x61, 0x00, 0x01]),  # QoS 2 PUBLISH
        bytes([0x32, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]),  # remaining length over 4 bytes
        bytes([0x32, 0x03, 0x00, 0x05, 0x61]),  # topic longer than the packet
    ],
)
def test_decode_leaves_other_packets_to_paho(data):
    assert decode_publish(data, 0) is None


def test_decode_invalid_utf8_topic_is_replaced():
    data = bytes([0x32, 0x07, 0x00, 0x02, 0xFF, 0xFE, 0x00, 0x09, 0x41])
    packet, _ = decode_publish(data, 0)
    assert packet.topic == "\ufffd\ufffd"
    assert packet.payload == b"A"
