"""Zigbee2MQTT adapter against a simulated bridge on a real Mosquitto broker.

The field case ``cases/z2m_bridge_state.jsonl`` has ``bridge/state`` and ``availability``
payloads in the plain and the JSON format, and an empty retained payload that clears the
retained message. Every format must give the right state, and the empty one nothing at all.
"""

import json
import logging
import time
import uuid

import pytest

from conftest import CASES_DIR
from edge.adapters.local_mqtt import PayloadError
from edge.adapters.zigbee2mqtt import Zigbee2MqttAdapter, parse_availability
from edge_adapter_harness import running_adapter
from firmware_sim.local_mqtt_devices import Zigbee2MqttBridge

STATE_CASES = [json.loads(line) for line in (CASES_DIR / "z2m_bridge_state.jsonl").read_text().splitlines()]
CASE_BASE_TOPIC = "zigbee2mqtt"
CASE_FRIENDLY_NAME = "planta2/despacho-7/th-03"


def adapter_settings(mosquitto, base_topic: str, devices: list[dict]) -> dict:
    return {
        "type": "zigbee2mqtt",
        "id": "zigbee",
        "base_topic": base_topic,
        "timezone": "Europe/Madrid",
        "broker": {
            "host": mosquitto.host,
            "port": mosquitto.port,
            "client_id": "edge-" + uuid.uuid4().hex[:8],
            "reconnect_min_s": 0.1,
            "reconnect_max_s": 0.5,
        },
        "devices": devices,
    }


@pytest.fixture
def bridge(mosquitto):
    sim = Zigbee2MqttBridge(mosquitto.host, mosquitto.port, base_topic="z2m-" + uuid.uuid4().hex[:8])
    sim.start()
    yield sim
    sim.stop()


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@pytest.mark.parametrize(
    "case", [case for case in STATE_CASES if isinstance(case["expect"], dict)], ids=lambda case: repr(case["payload"])
)
def test_parse_availability_both_formats(case):
    expected = next(iter(case["expect"].values()))

    assert parse_availability(case["payload"].encode()) is expected


def test_parse_availability_empty_is_none():
    assert parse_availability(b"") is None
    assert parse_availability(b"  ") is None


@pytest.mark.parametrize("payload", [b"maybe", b'{"state":"sleeping"}', b"{broken", b"[1]"])
def test_parse_availability_rejects_unknown(payload):
    with pytest.raises(PayloadError):
        parse_availability(payload)


@pytest.mark.integration
async def test_z2m_state_formats_over_broker(mosquitto, bridge, caplog):
    name = f"planta2/despacho-{uuid.uuid4().hex[:4]}/th-03"
    devices = [{"friendly_name": name, "device": "sensor-th-03", "room": "despacho-7"}]
    caplog.set_level(logging.INFO, logger="edge.adapters")

    async with running_adapter(Zigbee2MqttAdapter, adapter_settings(mosquitto, bridge.base_topic, devices)) as running:
        await running.until(lambda: running.adapter.bridge_online is True)
        observed = []
        for case in STATE_CASES:
            if "topic" not in case:
                continue
            topic = case["topic"].replace(CASE_BASE_TOPIC, bridge.base_topic, 1).replace(CASE_FRIENDLY_NAME, name)
            bridge.publish(topic, case["payload"], retain=case["retain"])
            # A marker state message shows that the adapter has handled the message before it.
            marker = {"temperature": 20.0 + len(observed)}
            bridge.publish_device_state(name, marker)
            await running.until(lambda: len(running.readings) > len(observed))
            observed.append((running.adapter.bridge_online, running.adapter.availability.online.get("sensor-th-03")))
        bridge.clear_retained(f"{bridge.base_topic}/{name}/availability")

    assert observed == [
        (True, None),
        (True, None),
        (False, None),
        (False, None),
        (False, None),  # the empty payload changes nothing
        (False, False),
        (False, True),
    ]
    assert running.stats.errors["invalid_payload"] == 0
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


@pytest.mark.integration
async def test_z2m_state_to_room_reading(mosquitto, bridge):
    devices = [{"friendly_name": "ruang-rapat/co2-1", "device": "sensor-co2-1", "room": "ruang-rapat"}]

    async with running_adapter(Zigbee2MqttAdapter, adapter_settings(mosquitto, bridge.base_topic, devices)) as running:
        await running.adapter.subscription.connected.wait()
        before_ms = now_ms()
        bridge.publish_device_state(
            "ruang-rapat/co2-1",
            {"temperature": 21.37, "humidity": 45, "co2": 612, "occupancy": False, "battery": 87, "voltage": 2985,
             "linkquality": 126, "illuminance": 320},
        )  # fmt: skip
        await running.until(lambda: running.readings)
        after_ms = now_ms()

    payload = running.payloads("room")[0]
    assert before_ms <= payload.pop("ts") <= after_ms
    assert payload == {
        "device": "sensor-co2-1",
        "room": "ruang-rapat",
        "temperature_c": 21.37,
        "humidity_pct": 45.0,
        "co2_ppm": 612.0,
        "battery_pct": 87.0,
        "illuminance_lux": 320.0,
        "occupancy": False,
    }
    assert running.contract_problems == []


@pytest.mark.integration
async def test_z2m_bad_values_dropped_rest_kept(mosquitto, bridge):
    devices = [{"friendly_name": "pir-lobby", "device": "sensor-pir", "room": "lobby"}]

    async with running_adapter(Zigbee2MqttAdapter, adapter_settings(mosquitto, bridge.base_topic, devices)) as running:
        await running.adapter.subscription.connected.wait()
        bridge.publish_device_state("pir-lobby", {"linkquality": 90})
        bridge.publish_device_state("pir-lobby", "not json")
        bridge.publish_device_state("pir-lobby", '{"temperature":"21.5","occupancy":"true","humidity":NaN,"battery":80}')
        bridge.publish_device_state("pir-lobby", {"temperature": 21})
        bridge.publish_device_state("pir-lobby", {"temperature": 21.5, "presence": True})
        await running.until(lambda: len(running.readings) >= 3)

    first, second, third = running.payloads()
    assert {key: first[key] for key in first if key != "ts"} == {"device": "sensor-pir", "room": "lobby", "battery_pct": 80.0}
    assert second["temperature_c"] == 21.0
    assert isinstance(second["temperature_c"], float)
    assert third["temperature_c"] == 21.5
    assert third["occupancy"] is True
    assert running.stats.errors["invalid_payload"] == 1
    assert running.stats.errors["invalid_field"] == 2
    assert running.stats.errors["nan_field"] == 1


@pytest.mark.integration
async def test_z2m_retained_state_needs_last_seen(mosquitto, bridge):
    undated, dated = "th-undated-" + uuid.uuid4().hex[:4], "th-dated-" + uuid.uuid4().hex[:4]
    bridge.publish_device_state(undated, {"temperature": 19.0}, retain=True)
    bridge.publish_device_state(dated, {"temperature": 22.0, "last_seen": "2025-01-11T14:56:50+01:00"}, retain=True)
    devices = [
        {"friendly_name": undated, "device": "sensor-undated", "room": "archive"},
        {"friendly_name": dated, "device": "sensor-dated", "room": "archive"},
    ]

    try:
        async with running_adapter(Zigbee2MqttAdapter, adapter_settings(mosquitto, bridge.base_topic, devices)) as running:
            await running.until(lambda: running.readings)
            bridge.publish_device_state(undated, {"temperature": 19.5})
            await running.until(lambda: len(running.readings) >= 2)
    finally:
        bridge.clear_retained(f"{bridge.base_topic}/{undated}")
        bridge.clear_retained(f"{bridge.base_topic}/{dated}")

    payloads = running.payloads()
    assert [p["device"] for p in payloads] == ["sensor-dated", "sensor-undated"]
    assert payloads[0]["ts"] == 1736603810000
    assert payloads[1]["temperature_c"] == 19.5
