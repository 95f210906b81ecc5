"""Tasmota adapter against simulated Tasmota devices on a real Mosquitto broker."""

import json
import logging
import time
import uuid

import pytest

from conftest import CASES_DIR
from devstack.mosquitto import MosquittoServer
from edge.adapters.tasmota import TasmotaAdapter
from edge_adapter_harness import running_adapter
from firmware_sim.local_mqtt_devices import TasmotaDevice

pytestmark = pytest.mark.integration

TIMESTAMP_CASES = [json.loads(line) for line in (CASES_DIR / "timestamps.jsonl").read_text().splitlines()]
LWT_CASES = [json.loads(line) for line in (CASES_DIR / "tasmota_retained_lwt.jsonl").read_text().splitlines()]

SENSOR_2025_01_11_MS = 1_736_603_810_000
"""2025-01-11T13:56:50Z, the time of the field case's SENSOR messages."""


def adapter_settings(mosquitto, devices: list[dict], timezone: str = "Europe/Madrid") -> dict:
    return {
        "type": "tasmota",
        "id": "plugs",
        "timezone": timezone,
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
def device(mosquitto):
    sim = TasmotaDevice(mosquitto.host, mosquitto.port, "tasmota_" + uuid.uuid4().hex[:6].upper())
    sim.start()
    yield sim
    sim.stop()


def case_payload(topic_prefix: str) -> str:
    return next(case["payload"] for case in TIMESTAMP_CASES if case["topic"].startswith(topic_prefix))


async def test_tasmota_energy_in_contract_units(mosquitto, device):
    devices = [{"topic": device.topic, "device": "plug-printer", "circuit": "office-1"}]

    async with running_adapter(TasmotaAdapter, adapter_settings(mosquitto, devices)) as running:
        await running.adapter.subscription.connected.wait()
        device.publish_raw("SENSOR", case_payload("tele/tasmota_A1B2C3"))
        await running.until(lambda: running.readings)

    payload = running.payloads("energy")[0]
    assert payload == {
        "device": "plug-printer",
        "ts": SENSOR_2025_01_11_MS,
        "circuit": "office-1",
        "energy_kwh_total": 152.346,
        "power_w": 57.0,
        "voltage_v": 231.0,
        "current_a": 0.266,
        "power_factor": 0.93,
    }
    assert running.contract_problems == []
    assert running.stats.last_seen_ms == {"plug-printer": SENSOR_2025_01_11_MS}


async def test_tasmota_time_offset_used_as_sent(mosquitto, device):
    devices = [{"topic": device.topic, "device": "plug-kettle"}]

    # The adapter's zone is Jakarta, but SetOption52 gives the offset with the time.
    async with running_adapter(TasmotaAdapter, adapter_settings(mosquitto, devices, "Asia/Jakarta")) as running:
        await running.adapter.subscription.connected.wait()
        device.publish_raw("SENSOR", case_payload("tele/tasmota_D4E5F6"))
        await running.until(lambda: running.readings)

    payload = running.payloads()[0]
    assert payload["ts"] == SENSOR_2025_01_11_MS
    assert payload["energy_kwh_total"] == 9.87
    assert payload["power_w"] == 12.0


async def test_tasmota_channels_combined_by_default(mosquitto, device):
    devices = [{"topic": device.topic, "device": "strip-a"}]
    energy = {"Total": 436.786, "Power": [298, 7, 0], "ApparentPower": [320, 10, 0], "Voltage": [231, 231, 231],
              "Current": [1.3, 0.05, 0], "Factor": [0.93, 0.7, 0]}  # fmt: skip

    async with running_adapter(TasmotaAdapter, adapter_settings(mosquitto, devices)) as running:
        await running.adapter.subscription.connected.wait()
        device.publish_sensor("2025-01-11T14:56:50", energy=energy)
        await running.until(lambda: running.readings)

    payload = running.payloads()[0]
    assert payload["power_w"] == 305.0
    assert payload["energy_kwh_total"] == 436.786
    assert payload["voltage_v"] == 231.0
    assert payload["current_a"] == pytest.approx(1.35)
    assert payload["power_factor"] == pytest.approx(305 / 330)


async def test_tasmota_channel_picks_array_element(mosquitto, device):
    devices = [{"topic": device.topic, "device": "strip-b", "channel": 1}]
    energy = {"Total": 436.786, "Power": [298, 7, 0], "Voltage": 231, "Current": [1.3, 0.05, 0]}

    async with running_adapter(TasmotaAdapter, adapter_settings(mosquitto, devices)) as running:
        await running.adapter.subscription.connected.wait()
        device.publish_sensor("2025-01-11T14:56:50", energy=energy)
        await running.until(lambda: running.readings)

    payload = running.payloads()[0]
    assert payload["power_w"] == 7.0
    assert payload["current_a"] == 0.05
    assert payload["voltage_v"] == 231.0
    assert "energy_kwh_total" not in payload


async def test_tasmota_sensors_give_room_reading(mosquitto, device):
    devices = [{"topic": device.topic, "device": "sensor-lobby", "room": "lobby"}]
    sensors = {"AM2301": {"Temperature": 80.6, "Humidity": 61.2, "DewPoint": 18.1}, "SCD40": {"CarbonDioxide": 812},
               "TempUnit": "F"}  # fmt: skip

    async with running_adapter(TasmotaAdapter, adapter_settings(mosquitto, devices)) as running:
        await running.adapter.subscription.connected.wait()
        device.publish_sensor("2025-01-11T14:56:50", sensors=sensors)
        await running.until(lambda: running.readings)

    assert [reading.stream for reading in running.readings] == ["room"]
    payload = running.payloads("room")[0]
    assert payload["room"] == "lobby"
    assert payload["temperature_c"] == pytest.approx(27.0)
    assert payload["humidity_pct"] == 61.2
    assert payload["co2_ppm"] == 812.0
    assert running.contract_problems == []


async def test_tasmota_bad_fields_dropped_rest_kept(mosquitto, device):
    devices = [{"topic": device.topic, "device": "plug-copier"}]

    async with running_adapter(TasmotaAdapter, adapter_settings(mosquitto, devices)) as running:
        await running.adapter.subscription.connected.wait()
        device.publish_raw("SENSOR", "{not json")
        device.publish_raw("SENSOR", '{"Time":"2025-01-11T14:56:50","ENERGY":{"Total":12.5,"Power":"57","Voltage":NaN}}')
        device.publish_raw("SENSOR", '{"Time":"2025-01-11T14:57:00","ENERGY":[1,2]}')
        device.publish_raw("SENSOR", '{"Time":"2025-01-11T14:57:10","ENERGY":{"Total":12.6}}')
        await running.until(lambda: len(running.readings) >= 2)

    first, second = running.payloads()
    assert first == {"device": "plug-copier", "ts": SENSOR_2025_01_11_MS, "energy_kwh_total": 12.5}
    assert second["energy_kwh_total"] == 12.6
    assert running.stats.errors["invalid_payload"] == 1
    assert running.stats.errors["invalid_field"] == 2
    assert running.stats.errors["nan_field"] == 1
    assert running.stats.fields_dropped == 3


async def test_tasmota_unset_clock_uses_reception_time(mosquitto, device):
    devices = [{"topic": device.topic, "device": "plug-fan"}]

    async with running_adapter(TasmotaAdapter, adapter_settings(mosquitto, devices)) as running:
        await running.adapter.subscription.connected.wait()
        before_ms = time.time_ns() // 1_000_000
        device.publish_sensor("1970-01-01T00:00:12", energy={"Total": 1.5, "Power": 20})
        await running.until(lambda: running.readings)
        after_ms = time.time_ns() // 1_000_000

    assert before_ms <= running.payloads()[0]["ts"] <= after_ms
    assert running.stats.errors["device_clock_unset"] == 1


async def test_tasmota_retained_offline_is_state_not_event(mosquitto):
    """An Offline replayed as retained after a restart is the current state, not a new transition."""
    topic = "tasmota_" + uuid.uuid4().hex[:6].upper()
    assert [case["payload"] for case in LWT_CASES if "payload" in case] == ["Online", "Offline", "Offline", "Online"]
    devices = [{"topic": topic, "device": "plug-heater"}]

    device = TasmotaDevice(mosquitto.host, mosquitto.port, topic)
    device.start()
    async with running_adapter(TasmotaAdapter, adapter_settings(mosquitto, devices)) as first_run:
        await first_run.until(lambda: first_run.adapter.availability.online.get("plug-heater") is True)
        device.crash()
        await first_run.until(lambda: first_run.adapter.availability.online.get("plug-heater") is False)
    assert first_run.stats.errors["device_offline"] == 1

    # The adapter restarts and receives the stored Offline with the retain flag.
    async with running_adapter(TasmotaAdapter, adapter_settings(mosquitto, devices)) as second_run:
        await second_run.adapter.subscription.connected.wait()
        await second_run.until(lambda: "plug-heater" in second_run.adapter.availability.online)
        offline_at_start = second_run.adapter.availability.online["plug-heater"]

        device = TasmotaDevice(mosquitto.host, mosquitto.port, topic)
        device.start()
        await second_run.until(lambda: second_run.adapter.availability.online.get("plug-heater") is True)
        device.stop()

    assert offline_at_start is False
    assert second_run.stats.errors["device_offline"] == 0
    assert second_run.adapter.availability.online["plug-heater"] is True


async def test_tasmota_reconnects_after_broker_restart(tmp_path, caplog):
    broker = MosquittoServer(tmp_path / "local-broker")
    broker.start()
    topic = "tasmota_" + uuid.uuid4().hex[:6].upper()
    devices = [{"topic": topic, "device": "plug-scanner"}]
    caplog.set_level(logging.WARNING, logger="edge.adapters")

    try:
        async with running_adapter(TasmotaAdapter, adapter_settings(broker, devices)) as running:
            await running.adapter.subscription.connected.wait()
            device = TasmotaDevice(broker.host, broker.port, topic)
            device.start()
            device.publish_sensor("2025-01-11T14:56:50", energy={"Total": 3.0})
            await running.until(lambda: running.readings)
            device.stop()

            broker.stop()
            await running.until(lambda: not running.adapter.subscription.connected.is_set())
            broker.start()
            await running.until(lambda: running.adapter.subscription.connected.is_set(), timeout_s=15)

            device = TasmotaDevice(broker.host, broker.port, topic)
            device.start()
            device.publish_sensor("2025-01-11T14:57:00", energy={"Total": 3.1})
            await running.until(lambda: len(running.readings) >= 2)
            device.stop()
    finally:
        broker.stop()

    assert [p["energy_kwh_total"] for p in running.payloads()] == [3.0, 3.1]
    assert any("reconnecting in" in record.getMessage() for record in caplog.records)
