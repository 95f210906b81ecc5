"""Ingest end to end: a real MQTT client publishes, the ingest process stores, InfluxDB returns the points.

The field cases (an integer then a float for one field, NaN and Infinity, timestamps in
seconds) come from devices in their own formats; the edge node's adapters translate them into
the contract (``temperature`` becomes ``temperature_c``, ``import_kwh`` becomes
``energy_kwh_total``...). Here they enter in contract form, with the fault kept.
"""

import json
import uuid
from datetime import datetime

import httpx
import paho.mqtt.client as mqtt
import pytest

from conftest import CASES_DIR, pseudonym_of, start_ingest, wait_until

pytestmark = pytest.mark.integration

TS = 1_796_000_000_000


def topic(opd: str, stream: str, node: str = "gw-01") -> str:
    return f"smartoffice/v1/{opd}/{node}/{stream}"


def count(pipeline, measurement: str, opd: str, field: str) -> int:
    series = pipeline.query(f"SELECT count(\"{field}\") FROM \"{measurement}\" WHERE opd = '{opd}'")
    return series[0]["values"][0][1] if series else 0


def rows(pipeline, measurement: str, opd: str) -> list[dict]:
    series = pipeline.query(f"SELECT * FROM \"{measurement}\" WHERE opd = '{opd}' ORDER BY time ASC")
    if not series:
        return []
    return [dict(zip(series[0]["columns"], values)) for values in series[0]["values"]]


def metric(pipeline, name: str) -> float:
    text = httpx.get(pipeline.metrics_url, timeout=5).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))


def test_each_stream_is_stored(pipeline, unique_id):
    messages = [
        (topic(unique_id, "room"), json.dumps({"device": "sensor-aula", "ts": TS, "room": "aula", "temperature_c": 26.5, "co2_ppm": 950})),
        (topic(unique_id, "energy"), json.dumps({"device": "meter-01", "ts": TS, "power_w": 2400.0, "energy_kwh_total": 15234.75, "voltage_v": 228.4})),
        (topic(unique_id, "attendance"), json.dumps({"device": "absen-01", "ts": TS, "employee_id": "198706152010011002", "punch": "in", "verify": "fingerprint"})),
        (topic(unique_id, "status"), json.dumps({"state": "online", "ts": TS, "sw_version": "1.0.0", "uptime_s": 60})),
    ]
    pipeline.publish(messages)

    assert wait_until(lambda: count(pipeline, "node_status", unique_id, "state") == 1)
    assert rows(pipeline, "room", unique_id)[0]["co2_ppm"] == 950.0
    assert rows(pipeline, "energy", unique_id)[0]["energy_kwh_total"] == 15234.75
    assert rows(pipeline, "attendance", unique_id)[0]["employee_id"] == pseudonym_of(unique_id, "198706152010011002")
    assert rows(pipeline, "node_status", unique_id)[0]["sw_version"] == "1.0.0"


def test_malformed_message_is_logged_and_neighbours_stored(pipeline, unique_id):
    rejected_before = metric(pipeline, 'smartoffice_ingest_messages_rejected_total{reason="invalid_json"}')
    good = lambda ts: json.dumps({"device": "sensor-1", "ts": ts, "room": "aula", "co2_ppm": 700})  # noqa: E731
    pipeline.publish(
        [
            (topic(unique_id, "room"), good(TS)),
            (topic(unique_id, "room"), '{"device": "sensor-1", "ts": '),
            (topic(unique_id, "room"), good(TS + 1000)),
        ]
    )

    assert wait_until(lambda: count(pipeline, "room", unique_id, "co2_ppm") == 2)
    assert wait_until(lambda: f"message rejected on {topic(unique_id, 'room')} (invalid_json)" in pipeline.ingest.log_tail(500))
    assert metric(pipeline, 'smartoffice_ingest_messages_rejected_total{reason="invalid_json"}') == rejected_before + 1
    assert pipeline.ingest.running()


def test_invalid_topic_is_rejected_without_stopping(pipeline, unique_id):
    pipeline.publish(
        [
            (f"smartoffice/v1/{unique_id}/gw-01/weather", '{"device":"x","ts":1796000000000}'),
            (topic(unique_id, "room"), json.dumps({"device": "s1", "ts": TS, "room": "aula", "co2_ppm": 700})),
        ]
    )
    assert wait_until(lambda: count(pipeline, "room", unique_id, "co2_ppm") == 1)
    assert pipeline.ingest.running()


def test_int_then_float_stays_float(pipeline, unique_id):
    cases = [json.loads(line) for line in (CASES_DIR / "int_then_float.jsonl").read_text().splitlines()]
    for index, case in enumerate(cases):
        payload = json.loads(case["payload"])
        message = {
            "device": "th-01",
            "ts": int(datetime.fromisoformat(case["recv"].replace("Z", "+00:00")).timestamp() * 1000),
            "room": "sala-juntas",
            "temperature_c": payload["temperature"],
            "humidity_pct": payload["humidity"],
            "battery_pct": payload["battery"],
        }
        pipeline.publish([(topic(unique_id, "room"), json.dumps(message))])
        # One write per message, so the first one's type would lock the shard's field type.
        assert wait_until(lambda: count(pipeline, "room", unique_id, "temperature_c") == index + 1)

    field_types = {values[0]: values[1] for values in pipeline.query('SHOW FIELD KEYS FROM "room"')[0]["values"]}
    assert field_types["temperature_c"] == "float"
    assert field_types["humidity_pct"] == "float"
    assert [row["temperature_c"] for row in rows(pipeline, "room", unique_id)] == [21.0, 21.5, 22.0]


def test_non_finite_field_dropped_rest_stored(pipeline, unique_id):
    dropped_before = metric(pipeline, 'smartoffice_ingest_fields_dropped_total{reason="invalid_value"}')
    lines = (CASES_DIR / "nan_inf.jsonl").read_text().splitlines()
    messages = []
    for line in lines:
        case = json.loads(line)
        # Translated field names, with the raw NaN and Infinity tokens kept as the device sent them.
        raw = (
            case["payload"]
            .replace('"voltage_l1"', '"voltage_v"')
            .replace('"current_l1"', '"current_a"')
            .replace('"power_total"', '"power_w"')
            .replace('"power_factor_total"', '"power_factor"')
            .replace('"import_kwh"', '"energy_kwh_total"')
        )
        ts = int(datetime.fromisoformat(case["recv"].replace("Z", "+00:00")).timestamp() * 1000)
        raw = raw.replace("{", f'{{"device":"sdm630-01","ts":{ts},', 1)
        messages.append((topic(unique_id, "energy"), raw))
    pipeline.publish(messages)

    assert wait_until(lambda: count(pipeline, "energy", unique_id, "voltage_v") == 3)
    stored = rows(pipeline, "energy", unique_id)
    assert [row["power_factor"] for row in stored] == [None, None, 0.98]
    assert [row["energy_kwh_total"] for row in stored] == [12345.678, 12345.678, 12345.69]
    assert [row["current_a"] for row in stored] == [0.0, 0.0, 4.35]
    assert metric(pipeline, 'smartoffice_ingest_fields_dropped_total{reason="invalid_value"}') == dropped_before + 2


def test_timestamp_stored_to_the_millisecond(pipeline, unique_id):
    cases = [json.loads(line) for line in (CASES_DIR / "timestamps.jsonl").read_text().splitlines()]
    shelly = json.loads(cases[0]["payload"])
    ts_ms = round(shelly["params"]["ts"] * 1000)  # the edge converts Shelly's float seconds
    message = {"device": "shellyplus1pm-a8032ab1c2d3", "ts": ts_ms, "power_w": shelly["params"]["switch:0"]["apower"]}
    pipeline.publish([(topic(unique_id, "energy"), json.dumps(message))])

    assert wait_until(lambda: count(pipeline, "energy", unique_id, "power_w") == 1)
    stored = rows(pipeline, "energy", unique_id)[0]
    expected = datetime.fromisoformat(cases[0]["expect_time_utc"].replace("Z", "+00:00"))
    assert stored["time"] == int(expected.timestamp() * 1000)
    assert stored["power_w"] == 57.3


def test_timestamp_in_seconds_is_rejected(pipeline, unique_id):
    message = {"device": "shelly-1", "ts": 1_736_603_810, "power_w": 57.3}
    pipeline.publish([(topic(unique_id, "energy"), json.dumps(message))])

    assert wait_until(lambda: "looks like epoch seconds" in pipeline.ingest.log_tail(500))
    answer = pipeline.query(f"SELECT count(\"power_w\") FROM \"energy\" WHERE time < '2020-01-01T00:00:00Z'")
    assert answer == []


def test_redelivered_message_is_one_point(pipeline, unique_id):
    message = json.dumps({"device": "absen-01", "ts": TS, "employee_id": "1001", "punch": "in"})
    pipeline.publish([(topic(unique_id, "attendance"), message), (topic(unique_id, "attendance"), message)])
    marker = json.dumps({"device": "absen-01", "ts": TS + 5000, "employee_id": "1003", "punch": "in"})
    pipeline.publish([(topic(unique_id, "attendance"), marker)])

    assert wait_until(lambda: count(pipeline, "attendance", unique_id, "employee_id") >= 2)
    assert wait_until(lambda: metric(pipeline, "smartoffice_ingest_batches_queued") == 0)
    assert count(pipeline, "attendance", unique_id, "employee_id") == 2


def test_two_punches_in_one_millisecond_both_stored(pipeline, unique_id):
    first = json.dumps({"device": "absen-01", "ts": TS, "employee_id": "1001", "punch": "in"})
    second = json.dumps({"device": "absen-01", "ts": TS, "employee_id": "1002", "punch": "in"})
    pipeline.publish([(topic(unique_id, "attendance"), first), (topic(unique_id, "attendance"), second)])

    assert wait_until(lambda: count(pipeline, "attendance", unique_id, "employee_id") == 2)


def test_retained_status_replay_is_not_stored(tmp_path, mosquitto, influx, influx_db, unique_id):
    status_topic = topic(unique_id, "status")
    publisher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="retain-" + uuid.uuid4().hex[:6])
    publisher.connect(mosquitto.host, mosquitto.port)
    publisher.loop_start()
    publisher.publish(status_topic, json.dumps({"state": "offline", "ts": TS}), qos=1, retain=True).wait_for_publish(5)

    ingest = start_ingest(tmp_path, mosquitto, influx, influx_db, "ingest-" + uuid.uuid4().hex[:8])
    try:
        publisher.publish(status_topic, json.dumps({"state": "online", "ts": TS + 60_000}), qos=1).wait_for_publish(5)

        def states():
            answer = influx.query(influx_db, f"SELECT \"state\" FROM \"node_status\" WHERE opd = '{unique_id}'")
            series = answer["results"][0].get("series", [])
            return [values[1] for values in series[0]["values"]] if series else []

        assert wait_until(lambda: states() == ["online"])
    finally:
        publisher.publish(status_topic, b"", qos=1, retain=True).wait_for_publish(5)
        publisher.loop_stop()
        publisher.disconnect()
        ingest.stop()
