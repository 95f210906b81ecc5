"""Delivery guarantee on real processes: dead letters, device clocks, crashes and outages.

Cases from the field: QoS 1 messages published while the ingest is offline; the ingest killed
while InfluxDB is down, before the write; a retained last will replayed at a restart.
"""

import json
import time
import uuid

import httpx
import paho.mqtt.client as mqtt
import pytest

from conftest import pseudonym_of, start_ingest, wait_until
from ingest.dead_letters import DeadLetterStore

pytestmark = pytest.mark.integration

SHARD_2021 = 1_622_505_600_000  # 2021-06-01T00:00:00Z, a shard no other test writes to


def topic(opd: str, stream: str, node: str = "gw-01") -> str:
    return f"smartoffice/v1/{opd}/{node}/{stream}"


def points(influx, database: str, measurement: str, opd: str, field: str = "seq") -> list[dict]:
    answer = influx.query(database, f"SELECT * FROM \"{measurement}\" WHERE opd = '{opd}' ORDER BY time ASC")
    series = answer["results"][0].get("series", [])
    if not series:
        return []
    return [dict(zip(series[0]["columns"], values)) for values in series[0]["values"]]


def dead_letters(path) -> list:
    store = DeadLetterStore(path)
    try:
        return store.entries(limit=10_000)
    finally:
        store.close()


def new_client_id() -> str:
    return "ingest-" + uuid.uuid4().hex[:8]


def test_partly_refused_batch_keeps_exactly_the_bad_points(pipeline, unique_id):
    # A meter that once sent an integer voltage locked the field type of this shard.
    seeded = httpx.post(
        f"{pipeline.influx.url}/write",
        params={"db": pipeline.database, "precision": "ms"},
        content=f"energy,opd={unique_id},node=gw-00,device=old voltage_v=230i {SHARD_2021}".encode(),
    )
    assert seeded.status_code == 204

    bad = [
        json.dumps({"device": "meter-1", "ts": SHARD_2021 + 1000 * n, "voltage_v": 229.5 + n, "seq": n})
        for n in range(3)
    ]
    good = [
        json.dumps({"device": "meter-2", "ts": SHARD_2021 + 1000 * n, "power_w": 1000.0 + n, "seq": 10 + n})
        for n in range(7)
    ]
    pipeline.publish([(topic(unique_id, "energy"), payload) for payload in bad[:1] + good[:4] + bad[1:] + good[4:]])

    def refused():
        return [entry for entry in dead_letters(pipeline.dead_letter_path) if entry.topic == topic(unique_id, "energy")]

    assert wait_until(lambda: len(refused()) == 3)
    assert sorted(entry.payload.decode() for entry in refused()) == sorted(bad)
    assert {entry.reason for entry in refused()} == {"influx_rejected"}
    assert all("field type conflict" in entry.error for entry in refused())
    stored = [row["seq"] for row in points(pipeline.influx, pipeline.database, "energy", unique_id) if row["seq"] is not None]
    assert sorted(stored) == list(range(10, 17))


def test_dead_letters_listed_and_replayed_after_fix(pipeline, unique_id):
    seeded = httpx.post(
        f"{pipeline.influx.url}/write",
        params={"db": pipeline.database, "precision": "ms"},
        content=f"conflict_probe,opd={unique_id} x=1i {SHARD_2021}".encode(),
    )
    assert seeded.status_code == 204
    # The room measurement gets an integer co2_ppm in the 2021 shard, so float readings fail.
    httpx.post(
        f"{pipeline.influx.url}/write",
        params={"db": pipeline.database, "precision": "ms"},
        content=f"room,opd={unique_id},device=old co2_ppm=400i {SHARD_2021}".encode(),
    )
    message = json.dumps({"device": "sensor-1", "ts": SHARD_2021 + 5000, "room": "aula", "co2_ppm": 812.5, "seq": 1})
    pipeline.publish([(topic(unique_id, "room"), message)])

    def listed():
        page = pipeline.get("/api/v1/dead-letters", reason="influx_rejected").json()
        return [entry for entry in page["entries"] if entry["topic"] == topic(unique_id, "room")]

    assert wait_until(lambda: len(listed()) == 1)
    entry = listed()[0]
    assert entry["payload"] == message
    assert entry["line"].startswith(f"room,device=sensor-1,node=gw-01,opd={unique_id},room=aula ")

    # The fix: remove the measurement that contains the integer field, then replay.
    httpx.post(f"{pipeline.influx.url}/query", data={"db": pipeline.database, "q": 'DROP MEASUREMENT "room"'})
    replayed = pipeline.request("POST", "/api/v1/dead-letters/replay", json={"ids": [entry["id"]]}, timeout=30)
    assert replayed.json() == {"replayed": [entry["id"]], "failed": {}}
    assert wait_until(lambda: [row["co2_ppm"] for row in points(pipeline.influx, pipeline.database, "room", unique_id)] == [812.5])
    assert listed() == []


def test_replay_request_needs_ids_or_reason(pipeline):
    response = pipeline.request("POST", "/api/v1/dead-letters/replay", json={})
    assert response.status_code == 422


def test_invalid_message_is_dead_lettered(pipeline, unique_id):
    pipeline.publish([(topic(unique_id, "room"), b'{"device":"sensor-1","ts":"yesterday"}')])

    def entries():
        return [entry for entry in dead_letters(pipeline.dead_letter_path) if entry.topic == topic(unique_id, "room")]

    assert wait_until(lambda: len(entries()) == 1)
    assert entries()[0].payload == b'{"device":"sensor-1","ts":"yesterday"}'
    assert entries()[0].reason == "invalid_value"


@pytest.fixture
def clock_ingest(tmp_path, mosquitto, influx, influx_db):
    """An ingest with the default device-clock limits (5 minutes ahead, 90 days old)."""
    client_id = new_client_id()
    process = start_ingest(tmp_path, mosquitto, influx, influx_db, client_id)
    yield tmp_path / f"{client_id}-dead-letters.sqlite3"
    process.stop()


def test_clock_ahead_is_restamped_and_flagged(clock_ingest, mosquitto, influx, influx_db, unique_id):
    now_ms = int(time.time() * 1000)
    next_year = now_ms + 365 * 86_400_000
    message = json.dumps({"device": "absen-01", "ts": next_year, "employee_id": "1001", "punch": "in"})
    publish(mosquitto, [(topic(unique_id, "attendance"), message)])

    assert wait_until(lambda: points(influx, influx_db, "attendance", unique_id))
    point = points(influx, influx_db, "attendance", unique_id)[0]
    assert point["device_ts"] == next_year
    assert point["clock_invalid"] is True
    assert abs(point["time"] - now_ms) < 60_000


def test_clock_far_behind_is_dead_lettered(clock_ingest, mosquitto, influx, influx_db, unique_id):
    old = int(time.time() * 1000) - 200 * 86_400_000
    message = json.dumps({"device": "sensor-1", "ts": old, "room": "aula", "co2_ppm": 500})
    publish(mosquitto, [(topic(unique_id, "room"), message)])

    assert wait_until(lambda: [entry.reason for entry in dead_letters(clock_ingest)] == ["too_old"])
    assert points(influx, influx_db, "room", unique_id) == []


def publish(mosquitto, messages, qos: int = 1, retain: bool = False) -> None:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="test-pub-" + uuid.uuid4().hex[:8])
    client.connect(mosquitto.host, mosquitto.port)
    client.loop_start()
    infos = [client.publish(t, p, qos=qos, retain=retain) for t, p in messages]
    for info in infos:
        info.wait_for_publish(10)
    client.disconnect()
    client.loop_stop()


def test_offline_qos1_messages_arrive_once(tmp_path, mosquitto, influx, influx_db, unique_id):
    client_id = new_client_id()
    ingest = start_ingest(tmp_path, mosquitto, influx, influx_db, client_id, max_age_days="36500")
    ingest.kill()

    messages = [
        (topic(unique_id, "energy"), json.dumps({"device": "tasmota-a1b2c3", "ts": 1_739_181_605_000 + 10_000 * n, "energy_kwh_total": 152.3 + n / 1000, "power_w": 40.0, "seq": n}))
        for n in range(1, 7)
    ]
    publish(mosquitto, messages)

    ingest = start_ingest(tmp_path, mosquitto, influx, influx_db, client_id, max_age_days="36500")
    try:
        assert wait_until(lambda: len(points(influx, influx_db, "energy", unique_id)) == 6)
        time.sleep(0.5)
        assert [row["seq"] for row in points(influx, influx_db, "energy", unique_id)] == [1, 2, 3, 4, 5, 6]
    finally:
        ingest.stop()


def test_offline_qos0_message_is_lost(tmp_path, mosquitto, influx, influx_db, unique_id):
    """QoS 0 is not queued for an offline session: devices must publish telemetry at QoS 1."""
    client_id = new_client_id()
    ingest = start_ingest(tmp_path, mosquitto, influx, influx_db, client_id, max_age_days="36500")
    ingest.kill()
    message = json.dumps({"device": "m1", "ts": 1_739_181_605_000, "power_w": 40.0, "seq": 1})
    publish(mosquitto, [(topic(unique_id, "energy"), message)], qos=0)

    ingest = start_ingest(tmp_path, mosquitto, influx, influx_db, client_id, max_age_days="36500")
    try:
        publish(mosquitto, [(topic(unique_id, "energy"), message.replace('"seq": 1', '"seq": 2'))])
        assert wait_until(lambda: points(influx, influx_db, "energy", unique_id))
        assert [row["seq"] for row in points(influx, influx_db, "energy", unique_id)] == [2]
    finally:
        ingest.stop()


def test_kill_during_influx_outage_loses_nothing(tmp_path, mosquitto, influx, influx_db, unique_id):
    client_id = new_client_id()
    ingest = start_ingest(tmp_path, mosquitto, influx, influx_db, client_id, max_age_days="36500")
    punch_ms = 1_741_590_131_000  # 2025-03-10T07:02:11Z
    message = json.dumps({"device": "cqz7231000123", "ts": punch_ms, "employee_id": "1001", "punch": "in", "verify": "fingerprint"})

    influx.stop()
    try:
        publish(mosquitto, [(topic(unique_id, "attendance"), message)])
        assert wait_until(lambda: "retrying" in ingest.log_tail(50), timeout_s=15)
        ingest.kill()
    finally:
        influx.start()

    ingest = start_ingest(tmp_path, mosquitto, influx, influx_db, client_id, max_age_days="36500")
    try:
        assert wait_until(lambda: points(influx, influx_db, "attendance", unique_id))
        time.sleep(0.5)
        stored = points(influx, influx_db, "attendance", unique_id)
        assert len(stored) == 1
        assert stored[0]["time"] == punch_ms
        assert stored[0]["employee_id"] == pseudonym_of(unique_id, "1001")
    finally:
        ingest.stop()


def test_retained_will_replay_adds_no_transition(tmp_path, mosquitto, influx, influx_db, unique_id):
    client_id = new_client_id()
    ingest = start_ingest(tmp_path, mosquitto, influx, influx_db, client_id, max_age_days="36500")
    status_topic = topic(unique_id, "status")

    node = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"node-{unique_id}")
    node.will_set(status_topic, json.dumps({"state": "offline"}), qos=1, retain=True)
    node.connect(mosquitto.host, mosquitto.port, keepalive=5)
    node.loop_start()
    node.publish(status_topic, json.dumps({"state": "online", "ts": int(time.time() * 1000)}), qos=1, retain=True).wait_for_publish(5)

    def states():
        return [row["state"] for row in points(influx, influx_db, "node_status", unique_id)]

    try:
        assert wait_until(lambda: states() == ["online"])

        # The node's link drops without DISCONNECT: the broker publishes the retained will.
        node.loop_stop()
        node.socket().close()
        assert wait_until(lambda: states() == ["online", "offline"], timeout_s=20)

        # Restarted, ingest receives the retained offline again as state, with the retain flag.
        ingest.stop()
        ingest = start_ingest(tmp_path, mosquitto, influx, influx_db, new_client_id(), max_age_days="36500")
        time.sleep(1.0)
        assert states() == ["online", "offline"]

        publish(mosquitto, [(status_topic, json.dumps({"state": "online", "ts": int(time.time() * 1000)}))])
        assert wait_until(lambda: states() == ["online", "offline", "online"])
    finally:
        publish(mosquitto, [(status_topic, b"")], retain=True)  # clears the retained status
        ingest.stop()


def test_shared_subscription_group_receives(tmp_path, mosquitto, influx, influx_db, unique_id):
    """With SMARTOFFICE_MQTT_SHARE_GROUP set, replicas share the streams through $share/<group>/."""
    group = "g" + uuid.uuid4().hex[:8]
    ingest = start_ingest(tmp_path, mosquitto, influx, influx_db, new_client_id(), mqtt_share_group=group, max_age_days="36500")
    try:
        assert f"in shared group '{group}'" in ingest.log_tail(50)
        message = json.dumps({"device": "m1", "ts": SHARD_2021, "power_w": 12.5, "seq": 1})
        publish(mosquitto, [(topic(unique_id, "energy"), message)])
        assert wait_until(lambda: [row["seq"] for row in points(influx, influx_db, "energy", unique_id)] == [1])
    finally:
        ingest.stop()
