"""Malformed payloads on every subscribed topic never raise out of an MQTT adapter's message handler.

The handlers run on in-memory messages with a collecting ``emit``. This checks the parsing
logic only, so it needs no broker.
"""

import pytest

from edge.adapters.base import AdapterStats
from edge.adapters.local_mqtt import IncomingMessage
from edge.adapters.shelly import ShellyAdapter
from edge.adapters.tasmota import TasmotaAdapter
from edge.adapters.zigbee2mqtt import Zigbee2MqttAdapter

RECEIVED_MS = 1_796_000_000_000

HOSTILE_PAYLOADS = [
    b"", b" ", b"null", b"[]", b"123", b'"text"', b"{", b"\xff\xfe\x00", b"true", b"online\x00",
    b'{"ENERGY":null}', b'{"ENERGY":{"Power":[1,"a",null]}}', b'{"ENERGY":{"Power":[]}}',
    b'{"ENERGY":{"Total":1e400,"Factor":[0.9],"ApparentPower":[0]}}',
    b'{"Time":123456789012345678901234567890,"ENERGY":{"Total":1}}', b'{"Time":{"a":1},"ENERGY":{"Total":1}}',
    b'{"Time":"2025-01-11T14:56:50+25:00","ENERGY":{"Total":1}}', b'{"TempUnit":"F","AM2301":{"Temperature":"hot"}}',
    b'{"AM2301":[1,2],"SCD40":{"CarbonDioxide":NaN}}',
    b'{"method":"NotifyStatus","params":{"ts":"x","switch:0":{"aenergy":[1]}}}',
    b'{"method":"NotifyStatus","params":{"ts":1e400,"switch:0":{"apower":1}}}',
    b'{"method":"NotifyStatus","params":{"ts":1e308,"switch:0":{"apower":1}}}',
    b'{"method":"NotifyStatus","params":{"ts":-5,"switch:0":"on","em1data:0":7}}',
    b'{"method":"NotifyFullStatus","params":[]}', b'{"method":["x"]}',
    b'{"id":0,"aenergy":{"total":"many"},"ret_aenergy":5,"apower":true}',
    b'{"last_seen":"2025-13-01"}', b'{"last_seen":1e308,"temperature":20}', b'{"last_seen":true,"temperature":20}',
    b'{"temperature":1e308,"humidity":-1,"occupancy":1,"presence":"yes"}', b'{"state":null}', b'{"state":["online"]}',
    b"-1e999", b"12e", b"NaN", b"999999999999999999999999999999",
]  # fmt: skip


def build(adapter_class, settings: dict):
    async def emit(reading) -> None:
        emitted.append(reading)

    emitted: list = []
    adapter = adapter_class(adapter_class.Settings.model_validate(settings), emit, AdapterStats())
    return adapter, emitted


ADAPTERS = {
    "tasmota": (TasmotaAdapter, {"type": "tasmota", "id": "t", "devices": [
        {"topic": "plug", "device": "plug-a", "room": "lobby"}, {"topic": "strip", "device": "strip-a", "channel": 2}]}),
    "shelly": (ShellyAdapter, {"type": "shelly", "id": "s", "devices": [
        {"generation": 2, "topic_prefix": "gen2", "device": "plug-b"},
        {"generation": 2, "topic_prefix": "pro-em", "device": "meter-c", "component": "em1:0"},
        {"generation": 1, "topic_prefix": "shellies/gen1", "device": "plug-d"}]}),
    "zigbee2mqtt": (Zigbee2MqttAdapter, {"type": "zigbee2mqtt", "id": "z", "devices": [
        {"friendly_name": "floor/th", "device": "sensor-e", "room": "lobby"}]}),
}  # fmt: skip


@pytest.mark.parametrize("kind", sorted(ADAPTERS))
@pytest.mark.parametrize("retained", [False, True])
async def test_hostile_payloads_never_raise(kind, retained):
    adapter_class, settings = ADAPTERS[kind]
    adapter, emitted = build(adapter_class, settings)

    for topic in adapter.subscription.topics:
        for payload in HOSTILE_PAYLOADS:
            await adapter._handle(IncomingMessage(topic, payload, retained, RECEIVED_MS))

    for reading in emitted:
        assert reading.payload["ts"] >= 1_577_836_800_000
    assert adapter.stats.errors
