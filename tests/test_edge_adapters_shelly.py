"""Shelly adapter against simulated Gen1 and Gen2 devices on a real Mosquitto broker.

The field case ``cases/shelly_reboot.jsonl`` has a Gen2 counter that steps back slightly
after a reboot and a Gen1 counter that restarts at 0. The adapter emits each counter
exactly, converted to kWh; the API turns the registers into consumption.
"""

import json
import uuid

import pytest

from conftest import CASES_DIR
from edge.adapters.shelly import ShellyAdapter
from edge_adapter_harness import running_adapter
from firmware_sim.local_mqtt_devices import ShellyGen1Device, ShellyGen2Device

pytestmark = pytest.mark.integration

REBOOT_CASES = [json.loads(line) for line in (CASES_DIR / "shelly_reboot.jsonl").read_text().splitlines()]
CASE_GEN2_PREFIX = "shellyplus1pm-a8032ab1c2d3"
CASE_GEN1_PREFIX = "shellies/shellyplug-s-7A1B2C"


def adapter_settings(mosquitto, devices: list[dict]) -> dict:
    return {
        "type": "shelly",
        "id": "shelly",
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
def gen2(mosquitto):
    sim = ShellyGen2Device(mosquitto.host, mosquitto.port, "shellyplus1pm-" + uuid.uuid4().hex[:12])
    sim.start()
    yield sim
    sim.stop()


@pytest.fixture
def gen1(mosquitto):
    sim = ShellyGen1Device(mosquitto.host, mosquitto.port, "shellyplug-s-" + uuid.uuid4().hex[:6].upper())
    sim.start()
    yield sim
    sim.stop()


async def test_gen2_reboot_counter_emitted_exactly(mosquitto, gen2):
    devices = [{"generation": 2, "topic_prefix": gen2.prefix, "device": "plug-lab", "circuit": "lab"}]
    frames = [case for case in REBOOT_CASES if case["topic"].startswith(CASE_GEN2_PREFIX)]

    async with running_adapter(ShellyAdapter, adapter_settings(mosquitto, devices)) as running:
        await running.adapter.subscription.connected.wait()
        for frame in frames:
            gen2.publish_raw(frame["topic"].replace(CASE_GEN2_PREFIX, gen2.prefix), frame["payload"])
        await running.until(lambda: len(running.readings) >= 4)

    payloads = running.payloads("energy")
    assert [p["energy_kwh_total"] for p in payloads] == [15.230412, 15.231107, 15.23099, 15.23164]
    assert [p["power_w"] for p in payloads] == [42.0, 41.7, 39.0, 39.0]
    assert payloads[0]["voltage_v"] == 231.0
    assert payloads[0]["current_a"] == 0.19
    assert {p["circuit"] for p in payloads} == {"lab"}
    assert running.contract_problems == []


async def test_gen1_reset_counter_emitted_exactly(mosquitto, gen1):
    devices = [{"generation": 1, "topic_prefix": gen1.prefix, "device": "plug-pantry"}]
    messages = [case for case in REBOOT_CASES if case["topic"].startswith(CASE_GEN1_PREFIX)]

    async with running_adapter(ShellyAdapter, adapter_settings(mosquitto, devices)) as running:
        await running.until(lambda: running.adapter.availability.online.get("plug-pantry") is True)
        for message in messages:
            topic = message["topic"].replace(CASE_GEN1_PREFIX, gen1.prefix)
            gen1.publish(topic, message["payload"], retain=message["retain"])
        await running.until(lambda: len(running.readings) >= 4)

    energies = [p["energy_kwh_total"] for p in running.payloads("energy")]
    assert energies == [913800 / 60000, 914100 / 60000, 0.0, 360 / 60000]
    assert energies == [15.23, 15.235, 0.0, 0.006]
    assert running.stats.errors["device_offline"] == 1
    assert running.adapter.availability.online["plug-pantry"] is True


async def test_gen1_power_joins_energy_reading(mosquitto, gen1):
    devices = [{"generation": 1, "topic_prefix": gen1.prefix, "device": "plug-fridge"}]

    async with running_adapter(ShellyAdapter, adapter_settings(mosquitto, devices)) as running:
        await running.adapter.subscription.connected.wait()
        gen1.publish_power("57.23")
        gen1.publish_energy(914100)
        gen1.publish_power("overpower")
        gen1.publish_energy("12e")
        gen1.publish_energy(914160)
        await running.until(lambda: len(running.readings) >= 2)

    first, second = running.payloads()
    assert first["power_w"] == 57.23
    assert first["energy_kwh_total"] == 15.235
    assert second["energy_kwh_total"] == 15.236
    assert running.stats.errors["invalid_field"] == 2


async def test_gen2_notify_status_merges_changed_keys(mosquitto, gen2):
    devices = [{"generation": 2, "topic_prefix": gen2.prefix, "device": "plug-desk"}]
    full_status = {"id": 0, "output": True, "apower": 57.3, "voltage": 231.4, "current": 0.262, "freq": 50.0,
                   "aenergy": {"total": 15230.412, "by_minute": [955.0, 950.12, 948.9], "minute_ts": 1736603760}}  # fmt: skip

    async with running_adapter(ShellyAdapter, adapter_settings(mosquitto, devices)) as running:
        await running.adapter.subscription.connected.wait()
        gen2.publish_status("switch:0", full_status)
        gen2.notify_status(1736603810.49, {"switch:0": {"id": 0, "voltage": 232.7}})
        gen2.notify_status(1736603811.0, {"sys": {"uptime": 1234}, "wifi": {"rssi": -60}, "input:0": {"state": True}})
        gen2.notify_status(1736603812.0, {"switch:0": {"id": 0, "temperature": {"tC": 41.2}}})
        gen2.publish_raw(f"{gen2.prefix}/events/rpc", json.dumps({"method": "NotifyEvent", "params": {"ts": 1.0, "events": []}}))
        gen2.notify_status(1736603870.0, {"switch:0": {"id": 0, "aenergy": {"total": 15231.0}}})
        await running.until(lambda: len(running.readings) >= 3)

    status_reading, voltage_reading, energy_reading = running.payloads()
    assert status_reading["power_w"] == 57.3
    assert voltage_reading == {
        "device": "plug-desk",
        "ts": 1736603810490,
        "power_w": 57.3,
        "voltage_v": 232.7,
        "current_a": 0.262,
        "frequency_hz": 50.0,
        "energy_kwh_total": 15.230412,
    }
    assert energy_reading["ts"] == 1736603870000
    assert energy_reading["energy_kwh_total"] == 15.231
    assert len(running.readings) == 3
    assert sum(running.stats.errors.values()) == 0


async def test_gen2_em1_reads_em1data_totals(mosquitto, gen2):
    devices = [{"generation": 2, "topic_prefix": gen2.prefix, "device": "meter-pro-em", "component": "em1:1"}]

    async with running_adapter(ShellyAdapter, adapter_settings(mosquitto, devices)) as running:
        await running.adapter.subscription.connected.wait()
        gen2.notify_status(
            1736603810.0,
            {
                "em1:1": {"id": 1, "current": 22.78, "voltage": 224.6, "act_power": 5080.3, "pf": 0.99, "freq": 50.0},
                "em1data:1": {"id": 1, "total_act_energy": 6644.9, "total_act_ret_energy": 2595.26},
            },
        )
        await running.until(lambda: running.readings)

    payload = running.payloads()[0]
    assert payload["power_w"] == 5080.3
    assert payload["power_factor"] == 0.99
    assert payload["energy_kwh_total"] == 6.6449
    assert payload["energy_export_kwh_total"] == 2.59526
    assert running.contract_problems == []


async def test_gen2_bad_values_dropped_rest_kept(mosquitto, gen2):
    devices = [{"generation": 2, "topic_prefix": gen2.prefix, "device": "plug-tv"}]

    async with running_adapter(ShellyAdapter, adapter_settings(mosquitto, devices)) as running:
        await running.adapter.subscription.connected.wait()
        gen2.publish_raw(f"{gen2.prefix}/events/rpc", "[]")
        gen2.publish_raw(f"{gen2.prefix}/events/rpc", '{"method":"NotifyStatus","params":{"ts":1736603810.0,'
                                                       '"switch:0":{"apower":NaN,"voltage":"230","aenergy":{"total":100.5}}}}')  # fmt: skip
        await running.until(lambda: running.readings)

    payload = running.payloads()[0]
    assert payload == {"device": "plug-tv", "ts": 1736603810000, "energy_kwh_total": 0.1005}
    assert running.stats.errors["invalid_payload"] == 1
    assert running.stats.errors["nan_field"] == 1
    assert running.stats.errors["invalid_field"] == 1


async def test_gen2_retained_status_not_emitted(mosquitto, gen2):
    status = {"id": 0, "apower": 10.0, "aenergy": {"total": 1000.0}}
    gen2.publish_status("switch:0", status, retain=True)
    devices = [{"generation": 2, "topic_prefix": gen2.prefix, "device": "plug-router"}]

    try:
        async with running_adapter(ShellyAdapter, adapter_settings(mosquitto, devices)) as running:
            await running.adapter.subscription.connected.wait()
            gen2.notify_status(1736603810.0, {"switch:0": {"id": 0, "voltage": 229.0}})
            await running.until(lambda: running.readings)
    finally:
        gen2.clear_retained(f"{gen2.prefix}/status/switch:0")

    assert len(running.readings) == 1
    payload = running.payloads()[0]
    assert payload["ts"] == 1736603810000
    assert payload["power_w"] == 10.0
    assert payload["energy_kwh_total"] == 1.0
