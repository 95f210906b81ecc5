"""Alerts against real processes: comfort limits, offline devices and nodes, acknowledgement,
node states and configuration round trips through the API.

The module runs its own API process on the pipeline's broker, with short timeouts: device
offline after 8 s, node after 6 s, a check every second. Its comfort limits apply at all
hours, so the tests do not depend on the time of day they run at.
"""

import json
import threading
import time

import httpx
import pytest

from conftest import PIPELINE_ADMIN, PIPELINE_ADMIN_PASSWORD, create_test_user, login, start_api, wait_until

pytestmark = pytest.mark.integration

OPD = "alert-test-opd"
MINUTE_MS = 60_000

RULES = """
comfort:
  co2_ppm:
    high: {warning: 1000, critical: 1500}
    hysteresis: 50
min_duration_s: 60
office_hours_only: false
device_offline_s: 8
node_offline_s: 6
expected_interval_s: {room_sensor: 60, energy_meter: 60}
"""


def topic(node: str, stream: str) -> str:
    return f"smartoffice/v1/{OPD}/{node}/{stream}"


def now_ms() -> int:
    return int(time.time() * 1000)


@pytest.fixture(scope="module")
def monitor_api(pipeline, tmp_path_factory):
    """An API with the monitor's short test timeouts, on the pipeline's broker and InfluxDB."""
    folder = tmp_path_factory.mktemp("monitor")
    rules_file = folder / "alert_rules.yaml"
    rules_file.write_text(RULES, encoding="utf-8")
    database_url = f"sqlite:///{folder / 'api-monitor-registry.sqlite3'}"
    create_test_user(database_url, PIPELINE_ADMIN, PIPELINE_ADMIN_PASSWORD, "admin")

    api, url = start_api(
        folder,
        pipeline.mosquitto,
        pipeline.influx,
        pipeline.database,
        name="api-monitor",
        alert_rules_file=str(rules_file),
        monitor_check_interval_s="1",
    )
    token = login(url, PIPELINE_ADMIN, PIPELINE_ADMIN_PASSWORD)
    client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    client.database_url = database_url
    # The live subscription connects in the background: wait until a message gets through.
    assert wait_until(lambda: _subscribed(pipeline, client), timeout_s=20)
    yield client
    client.close()
    api.stop()


def _subscribed(pipeline, client: httpx.Client) -> bool:
    pipeline.publish([(topic("probe", "status"), json.dumps({"state": "online", "ts": now_ms()}))])
    nodes = client.get("/api/v1/nodes", params={"opd": OPD}).json()["nodes"]
    return any(node["node"] == "probe" for node in nodes)


def alerts(client: httpx.Client, **params) -> list[dict]:
    response = client.get("/api/v1/alerts", params={"opd": OPD, **params})
    assert response.status_code == 200, response.text
    return response.json()["alerts"]


class LiveCollector:
    """Collects the `alert` events of the API's live stream in a background thread."""

    def __init__(self, client: httpx.Client) -> None:
        self.events: list[dict] = []
        self._thread = threading.Thread(target=self._read, args=(client,), daemon=True)
        self._thread.start()

    def _read(self, client: httpx.Client) -> None:
        try:
            with client.stream("GET", "/api/v1/live", params={"opd": OPD, "stream": "alert"}, timeout=None) as response:
                event = None
                for line in response.iter_lines():
                    if line.startswith("event: "):
                        event = line[len("event: "):]
                    elif line.startswith("data: ") and event == "alert":
                        self.events.append(json.loads(line[len("data: "):]))
        except httpx.HTTPError:
            return  # the API stopped at the end of the module


def test_co2_alert_opens_escalates_and_closes(pipeline, monitor_api):
    collector = LiveCollector(monitor_api)
    time.sleep(0.5)
    start = now_ms() - 10 * MINUTE_MS
    readings = [800, 1100, 1200, 1600, 900]
    pipeline.publish(
        [
            (topic("gw-01", "room"), json.dumps({"device": "sensor-1", "room": "r1", "ts": start + index * MINUTE_MS, "co2_ppm": value}))
            for index, value in enumerate(readings)
        ]
    )

    closed = wait_until(lambda: [alert for alert in alerts(monitor_api, state="all", kind="co2_high") if alert["state"] == "closed"])
    alert = closed[0]
    # Out of range from 1 min (1,100); held 60 s at 2 min, so it opened then, started at 1 min.
    # 1,600 made it critical; 900 (below 1,000 - 50) closed it at 4 min.
    assert alert["device"] == "sensor-1"
    assert alert["room"] == "r1"
    assert alert["severity"] == "critical"
    assert alert["peak_value"] == 1600
    assert alert["threshold"] == 1000
    assert alert["started_at"] == _iso(start + MINUTE_MS)
    assert alert["ended_at"] == _iso(start + 4 * MINUTE_MS)

    changes = wait_until(lambda: [event["change"] for event in collector.events if event["kind"] == "co2_high"] if len(collector.events) >= 3 else None)
    assert changes == ["opened", "severity_changed", "closed"]


def test_acknowledge_alert(pipeline, monitor_api):
    start = now_ms() - 5 * MINUTE_MS
    pipeline.publish(
        [
            (topic("gw-01", "room"), json.dumps({"device": "sensor-ack", "room": "r2", "ts": start + index * MINUTE_MS, "co2_ppm": 1300}))
            for index in range(3)
        ]
    )
    opened = wait_until(lambda: [alert for alert in alerts(monitor_api) if alert["device"] == "sensor-ack"])
    alert_id = opened[0]["id"]
    assert opened[0]["acknowledged_at"] is None

    response = monitor_api.post(f"/api/v1/alerts/{alert_id}/acknowledge")
    assert response.status_code == 200, response.text
    acknowledged = response.json()
    assert acknowledged["acknowledged_at"] is not None
    assert acknowledged["acknowledged_by"] == PIPELINE_ADMIN
    assert acknowledged["state"] == "open"

    again = monitor_api.post(f"/api/v1/alerts/{alert_id}/acknowledge").json()
    assert again["acknowledged_at"] == acknowledged["acknowledged_at"]


def test_acknowledge_unknown_alert(monitor_api):
    response = monitor_api.post("/api/v1/alerts/999999/acknowledge")
    assert response.status_code == 404
    assert "999999" in response.json()["detail"]


def test_device_down_then_link_down(pipeline, monitor_api):
    node = "gw-02"
    pipeline.publish([(topic(node, "status"), json.dumps({"state": "online", "ts": now_ms()}))], retain=True)

    # The node's heartbeat and meter-live keep coming; meter-dead sends one reading, then nothing.
    pipeline.publish([(topic(node, "energy"), json.dumps({"device": "meter-dead", "ts": now_ms(), "power_w": 100.0}))])
    deadline = time.monotonic() + 30
    device_alerts = []
    while time.monotonic() < deadline and not device_alerts:
        pipeline.publish(
            [
                (topic(node, "status"), json.dumps({"state": "online", "ts": now_ms()})),
                (topic(node, "energy"), json.dumps({"device": "meter-live", "ts": now_ms(), "power_w": 200.0})),
            ]
        )
        time.sleep(1)
        device_alerts = [alert for alert in alerts(monitor_api, kind="device_offline") if alert["node"] == node]

    assert [alert["device"] for alert in device_alerts] == ["meter-dead"]
    assert [alert for alert in alerts(monitor_api, kind="node_offline") if alert["node"] == node] == []

    # The node's last will: one node alert for the link, and the device alert ends, because a
    # device behind a node that is down cannot be judged.
    pipeline.publish([(topic(node, "status"), json.dumps({"state": "offline"}))], retain=True)
    node_alerts = wait_until(lambda: [alert for alert in alerts(monitor_api, kind="node_offline") if alert["node"] == node])
    assert node_alerts[0]["severity"] == "critical"
    assert wait_until(lambda: not [alert for alert in alerts(monitor_api, kind="device_offline") if alert["node"] == node])

    nodes = monitor_api.get("/api/v1/nodes", params={"opd": OPD}).json()["nodes"]
    assert [entry["state"] for entry in nodes if entry["node"] == node] == ["offline"]


def test_alerts_invalid_state(monitor_api):
    response = monitor_api.get("/api/v1/alerts", params={"state": "pending"})
    assert response.status_code == 422


def _iso(ms: int) -> str:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    return datetime.fromtimestamp(ms / 1000, ZoneInfo("Asia/Jakarta")).isoformat()


def test_completeness_of_past_day(pipeline, monitor_api):
    # 1 December 2026 in WIB: sensor-c sends one reading every 2 minutes from 00:00 to 23:58,
    # 720 readings where 1,440 are expected at one per 60 s: 50 %. meter-c sends 1,440: 100 %.
    from test_api import ms

    midnight = ms(2026, 12, 1, 0)
    room = [
        (topic("gw-c", "room"), json.dumps({"device": "sensor-c", "room": "r1", "ts": midnight + index * 2 * MINUTE_MS, "temperature_c": 25.0}))
        for index in range(720)
    ]
    energy = [
        (topic("gw-c", "energy"), json.dumps({"device": "meter-c", "ts": midnight + index * MINUTE_MS, "power_w": 100.0}))
        for index in range(1440)
    ]
    # A reading of 2 December 00:00 WIB belongs to the next day.
    late = [(topic("gw-c", "energy"), json.dumps({"device": "meter-c", "ts": midnight + 1440 * MINUTE_MS, "power_w": 1.0}))]
    pipeline.publish(room + energy + late)

    def answer():
        response = monitor_api.get(f"/api/v1/opds/{OPD}/completeness", params={"date": "2026-12-01"})
        assert response.status_code == 200, response.text
        body = response.json()
        devices = {device["device"]: device for device in body["devices"]}
        if devices.get("sensor-c", {}).get("received") == 720 and devices.get("meter-c", {}).get("received") == 1440:
            return body
        return None

    body = wait_until(answer, timeout_s=30)
    devices = {device["device"]: device for device in body["devices"]}
    assert devices["sensor-c"]["expected"] == 1440
    assert devices["sensor-c"]["ratio"] == pytest.approx(0.5)
    assert devices["meter-c"]["ratio"] == pytest.approx(1.0)
    assert body["expected"] == 2880
    assert body["received"] == 2160
    assert body["ratio"] == pytest.approx(0.75)


def test_completeness_future_date(monitor_api):
    response = monitor_api.get(f"/api/v1/opds/{OPD}/completeness", params={"date": "2100-01-01"})
    assert response.status_code == 422
    assert "2100-01-01" in response.json()["detail"]


def test_rooms_newest_values_and_comfort(pipeline, monitor_api):
    # Two sensors in room r9: sensor-t (temperature 28.5 °C, above 27) and sensor-q (CO2
    # 700 ppm, fine). Only CO2 has limits in this module's rules, so r9 is ok; its temperature
    # is shown but not judged. Room r8 gets CO2 1,600 ppm: critical at once, whatever the
    # minimum duration of alerts.
    now = now_ms()
    pipeline.publish(
        [
            (topic("gw-r", "room"), json.dumps({"device": "sensor-t", "room": "r9", "ts": now - 2000, "temperature_c": 28.5})),
            (topic("gw-r", "room"), json.dumps({"device": "sensor-q", "room": "r9", "ts": now - 1000, "co2_ppm": 700.0})),
            (topic("gw-r", "room"), json.dumps({"device": "sensor-x", "room": "r8", "ts": now - 1000, "co2_ppm": 1600.0})),
        ]
    )

    def rooms():
        response = monitor_api.get(f"/api/v1/opds/{OPD}/rooms")
        assert response.status_code == 200, response.text
        found = {room["room"]: room for room in response.json()["rooms"]}
        return found if {"r8", "r9"} <= set(found) and "co2_ppm" in found["r9"]["values"] else None

    found = wait_until(rooms, timeout_s=20)
    assert found["r9"]["values"]["temperature_c"] == 28.5
    assert found["r9"]["values"]["co2_ppm"] == 700.0
    assert found["r9"]["comfort"] == "ok"
    assert found["r8"]["comfort"] == "critical"
    assert found["r8"]["breaches"] == [
        {"measurement": "co2_ppm", "value": 1600.0, "side": "high", "severity": "critical", "threshold": 1000.0}
    ]


def test_facility_manager_sees_own_opd_alerts(pipeline, monitor_api):
    # An alert of another OPD: a facility manager of OPD may neither list nor acknowledge it.
    other = "alert-other-opd"
    start = now_ms() - 5 * MINUTE_MS
    pipeline.publish(
        [
            (f"smartoffice/v1/{other}/gw-01/room", json.dumps({"device": "sensor-o", "room": "r1", "ts": start + index * MINUTE_MS, "co2_ppm": 1300}))
            for index in range(3)
        ]
    )
    other_alerts = wait_until(lambda: monitor_api.get("/api/v1/alerts", params={"opd": other}).json()["alerts"])

    create_test_user(monitor_api.database_url, "fm-alerts", "fm-alerts-password-" + "77" * 6, "facility_manager", [OPD])
    token = login(str(monitor_api.base_url), "fm-alerts", "fm-alerts-password-" + "77" * 6)
    manager = httpx.Client(base_url=monitor_api.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=10)

    listed = manager.get("/api/v1/alerts", params={"state": "all"}).json()["alerts"]
    assert listed
    assert {alert["opd"] for alert in listed} == {OPD}
    assert manager.get("/api/v1/alerts", params={"opd": other}).status_code == 403

    response = manager.post(f"/api/v1/alerts/{other_alerts[0]['id']}/acknowledge")
    assert response.status_code == 403
    assert other in response.json()["detail"]
    assert monitor_api.get(f"/api/v1/alerts/{other_alerts[0]['id']}").json()["acknowledged_at"] is None
    manager.close()
