"""Device timestamps to UTC epoch ms: pure conversions, and the field case through three adapters.

``cases/timestamps.jsonl`` contains one message each from a Shelly Gen2 (``params.ts`` in float
seconds), a Tasmota with naive local ``Time`` in Europe/Madrid, a Tasmota with
``SetOption52`` (offset in ``Time``) and a Zigbee2MQTT sensor with ``last_seen`` in epoch
ms. All describe 2025-01-11T13:56:50Z, the Shelly and Zigbee ones with .490 s.
"""

import json
import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from conftest import CASES_DIR
from edge.adapters.device_time import (
    DeviceTimeError,
    checked_device_ts,
    epoch_number_to_ms,
    epoch_seconds_to_ms,
    local_time_to_ms,
    parse_device_time,
    timestamp_problem,
)
from edge.adapters.shelly import ShellyAdapter
from edge.adapters.tasmota import TasmotaAdapter
from edge.adapters.zigbee2mqtt import Zigbee2MqttAdapter
from edge_adapter_harness import running_adapter
from firmware_sim.local_mqtt_devices import DeviceMqttClient

CASES = [json.loads(line) for line in (CASES_DIR / "timestamps.jsonl").read_text().splitlines()]
MADRID = ZoneInfo("Europe/Madrid")
JAKARTA = ZoneInfo("Asia/Jakarta")
NOW_MS = 1_796_000_000_000


def expected_ms(case: dict) -> int:
    return round(datetime.fromisoformat(case["expect_time_utc"].replace("Z", "+00:00")).timestamp() * 1000)


@pytest.mark.parametrize(
    ("text", "zone", "expected"),
    [
        ("2025-01-11T14:56:50", MADRID, 1_736_603_810_000),
        ("2025-01-11T14:56:50+01:00", JAKARTA, 1_736_603_810_000),
        ("2025-01-11T13:56:50Z", JAKARTA, 1_736_603_810_000),
        ("2025-01-11 20:56:50", JAKARTA, 1_736_603_810_000),
        ("2025-07-11T15:56:50", MADRID, 1_752_242_210_000),
    ],
)
def test_parse_device_time(text, zone, expected):
    assert parse_device_time(text, zone) == expected


@pytest.mark.parametrize("text", ["", "11/01/2025 14:56", "yesterday", 1736603810])
def test_parse_device_time_rejects(text):
    with pytest.raises(DeviceTimeError):
        parse_device_time(text, MADRID)


def test_local_time_ambiguous_hour_reads_first():
    # 2025-10-26 02:30 happens twice in Madrid, and the first occurrence is still CEST (UTC+2).
    assert local_time_to_ms(datetime(2025, 10, 26, 2, 30), MADRID) == 1_761_438_600_000


def test_epoch_seconds_to_ms_exact():
    assert epoch_seconds_to_ms(1736603810.49) == 1_736_603_810_490
    assert epoch_seconds_to_ms(1736603810) == 1_736_603_810_000
    assert epoch_seconds_to_ms(1736603810.4995) == 1_736_603_810_500


def test_epoch_number_to_ms_by_size():
    assert epoch_number_to_ms(1_736_603_810_490) == 1_736_603_810_490
    assert epoch_number_to_ms(1_736_603_810.49) == 1_736_603_810_490


@pytest.mark.parametrize("value", [float("nan"), float("inf"), True, "1736603810", None])
def test_epoch_rejects_non_numbers(value):
    with pytest.raises(DeviceTimeError):
        epoch_seconds_to_ms(value)


def test_timestamp_problem_reasons():
    assert timestamp_problem(12_000, NOW_MS, 300_000) == "device_clock_unset"
    assert timestamp_problem(NOW_MS + 301_000, NOW_MS, 300_000) == "device_clock_ahead"
    assert timestamp_problem(NOW_MS + 299_000, NOW_MS, 300_000) is None
    assert timestamp_problem(1_736_603_810_000, NOW_MS, 300_000) is None


def test_checked_device_ts_falls_back_to_reception():
    assert checked_device_ts(None, NOW_MS, 300_000) == (NOW_MS, None)
    assert checked_device_ts(5_000, NOW_MS, 300_000) == (NOW_MS, "device_clock_unset")
    assert checked_device_ts(1_736_603_810_000, NOW_MS, 300_000) == (1_736_603_810_000, None)


@pytest.mark.integration
async def test_field_case_times_through_adapters(mosquitto):
    suffix = uuid.uuid4().hex[:6]
    topics = {
        "shellyplus1pm-a8032ab1c2d3": f"shellyplus1pm-{suffix}",
        "tasmota_A1B2C3": f"tasmota_A{suffix}",
        "tasmota_D4E5F6": f"tasmota_D{suffix}",
        "zigbee2mqtt": f"z2m-{suffix}",
    }
    broker = {"host": mosquitto.host, "port": mosquitto.port}
    shelly = {"type": "shelly", "id": "shelly", "broker": {**broker, "client_id": f"edge-shelly-{suffix}"},
              "devices": [{"generation": 2, "topic_prefix": topics["shellyplus1pm-a8032ab1c2d3"], "device": "plug-a"}]}
    tasmota = {"type": "tasmota", "id": "tasmota", "timezone": "Europe/Madrid",
               "broker": {**broker, "client_id": f"edge-tasmota-{suffix}"},
               "devices": [{"topic": topics["tasmota_A1B2C3"], "device": "plug-b"},
                           {"topic": topics["tasmota_D4E5F6"], "device": "plug-c"}]}
    zigbee = {"type": "zigbee2mqtt", "id": "zigbee", "base_topic": topics["zigbee2mqtt"],
              "broker": {**broker, "client_id": f"edge-zigbee-{suffix}"},
              "devices": [{"friendly_name": "planta2/despacho-7/th-03", "device": "sensor-d", "room": "despacho-7"}]}  # fmt: skip
    publisher = DeviceMqttClient(mosquitto.host, mosquitto.port)
    publisher.start()

    try:
        async with (
            running_adapter(ShellyAdapter, shelly) as shelly_run,
            running_adapter(TasmotaAdapter, tasmota) as tasmota_run,
            running_adapter(Zigbee2MqttAdapter, zigbee) as zigbee_run,
        ):
            for run in (shelly_run, tasmota_run, zigbee_run):
                await run.adapter.subscription.connected.wait()
            for case in CASES:
                topic = case["topic"]
                for original, unique in topics.items():
                    topic = topic.replace(original, unique)
                publisher.publish(topic, case["payload"], qos=case["qos"])
            await tasmota_run.until(lambda: len(tasmota_run.readings) >= 2)
            await shelly_run.until(lambda: shelly_run.readings)
            await zigbee_run.until(lambda: zigbee_run.readings)
    finally:
        publisher.stop()

    by_device = {p["device"]: p["ts"] for run in (shelly_run, tasmota_run, zigbee_run) for p in run.payloads()}
    assert by_device == {
        "plug-a": expected_ms(CASES[0]),
        "plug-b": expected_ms(CASES[1]),
        "plug-c": expected_ms(CASES[2]),
        "sensor-d": expected_ms(CASES[3]),
    }
    assert by_device["plug-a"] == 1_736_603_810_490
    assert by_device["plug-b"] == 1_736_603_810_000
