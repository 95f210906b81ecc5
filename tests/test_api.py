"""API against real processes: values published over MQTT come back through HTTP.

Times are chosen in WIB (UTC+7) so that local day, week and month boundaries differ from the
UTC ones: 2026-11-30 is a Monday, and 23:30 WIB on 2026-12-01 is 16:30 UTC of the same date.
"""

import json
import os
import sys
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from conftest import REPO_ROOT, wait_until
from devstack import ManagedProcess, free_port

pytestmark = pytest.mark.integration

WIB = timezone(timedelta(hours=7))


def ms(year, month, day, hour=0, minute=0, second=0) -> int:
    """Epoch milliseconds of a WIB wall-clock time."""
    return int(datetime(year, month, day, hour, minute, second, tzinfo=WIB).timestamp() * 1000)


def room_message(device: str, ts: int, **fields) -> str:
    return json.dumps({"device": device, "ts": ts, "room": "ruang-rapat", **fields})


@pytest.fixture(scope="module")
def seeded(pipeline):
    """Publish one known data set for an OPD of the module's own, and wait until it is stored."""
    opd = "api-test-opd"
    room = f"smartoffice/v1/{opd}/gw-01/room"
    attendance = f"smartoffice/v1/{opd}/gw-01/attendance"
    messages = [
        # Two sensors; two readings in the 08:00 WIB hour, one in the 09:00 hour.
        (room, room_message("sensor-a", ms(2026, 12, 1, 8, 10), temperature_c=24.0, co2_ppm=600)),
        (room, room_message("sensor-a", ms(2026, 12, 1, 8, 50), temperature_c=26.0, co2_ppm=800)),
        (room, room_message("sensor-a", ms(2026, 12, 1, 9, 5), temperature_c=27.0, co2_ppm=1100)),
        (room, room_message("sensor-b", ms(2026, 12, 1, 8, 30), temperature_c=25.0)),
        # 23:30 and 00:30 WIB: the same UTC date, two local dates.
        (room, room_message("sensor-a", ms(2026, 12, 1, 23, 30), temperature_c=28.0)),
        (room, room_message("sensor-a", ms(2026, 12, 2, 0, 30), temperature_c=29.0)),
        # Sunday 23:00 WIB belongs to the week of 2026-11-23, Monday 01:00 to the week of 11-30.
        (room, room_message("sensor-c", ms(2026, 11, 29, 23, 0), temperature_c=20.0)),
        (room, room_message("sensor-c", ms(2026, 11, 30, 1, 0), temperature_c=30.0)),
        # 1 December 00:30 WIB is still 30 November in UTC.
        (room, room_message("sensor-d", ms(2026, 11, 30, 23, 0), temperature_c=10.0)),
        (room, room_message("sensor-d", ms(2026, 12, 1, 0, 30), temperature_c=40.0)),
        (attendance, json.dumps({"device": "absen-01", "ts": ms(2026, 12, 1, 23, 30), "employee_id": "198706152010011002", "punch": "out"})),
        (attendance, json.dumps({"device": "absen-01", "ts": ms(2026, 12, 2, 0, 30), "employee_id": "198706152010011002", "punch": "in"})),
        (attendance, json.dumps({"device": "absen-01", "ts": ms(2026, 12, 2, 7, 25), "employee_id": "199001012015032001", "punch": "in", "verify": "rfid"})),
    ]
    pipeline.publish(messages)

    def stored() -> int:
        series = pipeline.query(f"SELECT count(*) FROM \"room\", \"attendance\" WHERE opd = '{opd}'")
        return sum(max(value for value in s["values"][0][1:] if value is not None) for s in series)

    assert wait_until(lambda: stored() == len(messages), timeout_s=20)
    return opd


def series_of(answer: dict, device: str) -> list[tuple[str, float]]:
    for item in answer["series"]:
        if item["device"] == device:
            return [(point["time"], point["value"]) for point in item["points"]]
    return []


def test_health_ok_with_both_services(pipeline):
    response = pipeline.get("/health")
    assert response.status_code == 200
    assert response.json()["checks"]["mqtt"]["ok"] is True
    assert response.json()["checks"]["influxdb"]["ok"] is True


def test_opds_lists_catalogue_and_unlisted(pipeline, seeded):
    answer = pipeline.get("/api/v1/opds").json()
    by_id = {opd["id"]: opd for opd in answer}
    assert by_id["dinkes"]["name"] == "Dinas Kesehatan"
    assert by_id["dinkes"]["in_catalogue"] is True
    assert len([opd for opd in answer if opd["in_catalogue"]]) == 13
    assert by_id[seeded]["in_catalogue"] is False
    assert by_id[seeded]["last_seen_ts"] == ms(2026, 12, 2, 7, 25)


def test_opd_detail_has_rooms_and_devices(pipeline):
    answer = pipeline.get("/api/v1/opds/dinkes").json()
    assert {room["id"] for room in answer["rooms"]} >= {"ruang-rapat", "ruang-pelayanan"}
    assert answer["nodes"][0]["devices"][0]["kind"] == "attendance_terminal"


def test_unknown_opd_is_404_in_indonesian(pipeline):
    response = pipeline.get("/api/v1/opds/tidak-ada/latest")
    assert response.status_code == 404
    assert response.json()["detail"] == "OPD 'tidak-ada' tidak ditemukan. Lihat daftar OPD di /api/v1/opds."


def test_unknown_opd_in_english_on_request(pipeline):
    by_query = pipeline.get("/api/v1/opds/tidak-ada", lang="en")
    by_header = pipeline.request("GET", "/api/v1/opds/tidak-ada", headers={"Accept-Language": "en-US,en;q=0.9"})
    assert by_query.json()["detail"].startswith("OPD 'tidak-ada' not found")
    assert by_header.json()["detail"].startswith("OPD 'tidak-ada' not found")


def test_latest_returns_newest_reading_per_device(pipeline, seeded):
    answer = pipeline.get(f"/api/v1/opds/{seeded}/latest", stream="room").json()
    by_device = {reading["device"]: reading for reading in answer["readings"]}
    assert set(by_device) == {"sensor-a", "sensor-b", "sensor-c", "sensor-d"}
    assert by_device["sensor-a"]["values"]["temperature_c"] == 29.0
    assert by_device["sensor-a"]["time"] == "2026-12-02T00:30:00+07:00"
    assert by_device["sensor-a"]["tags"] == {"room": "ruang-rapat"}


def test_series_hourly_buckets_on_wib_hours(pipeline, seeded):
    answer = pipeline.get(
        f"/api/v1/opds/{seeded}/series", field="temperature_c", window="1h",
        start="2026-12-01T08:00", end="2026-12-01T10:00",
    ).json()
    assert series_of(answer, "sensor-a") == [("2026-12-01T08:00:00+07:00", 25.0), ("2026-12-01T09:00:00+07:00", 27.0)]
    assert series_of(answer, "sensor-b") == [("2026-12-01T08:00:00+07:00", 25.0)]


def test_series_daily_buckets_split_at_local_midnight(pipeline, seeded):
    answer = pipeline.get(
        f"/api/v1/opds/{seeded}/series", field="temperature_c", window="1d", agg="max",
        start="2026-11-30", end="2026-12-03", device="sensor-d",
    ).json()
    assert series_of(answer, "sensor-d") == [("2026-11-30T00:00:00+07:00", 10.0), ("2026-12-01T00:00:00+07:00", 40.0)]


def test_series_splits_days_at_local_midnight(pipeline, seeded):
    answer = pipeline.get(
        f"/api/v1/opds/{seeded}/series", field="temperature_c", window="1d", agg="count",
        start="2026-12-01T12:00", end="2026-12-03", device="sensor-a",
    ).json()
    assert answer["start"] == "2026-12-01T00:00:00+07:00"
    assert series_of(answer, "sensor-a") == [("2026-12-01T00:00:00+07:00", 4), ("2026-12-02T00:00:00+07:00", 1)]


def test_series_weeks_start_on_monday(pipeline, seeded):
    answer = pipeline.get(
        f"/api/v1/opds/{seeded}/series", field="temperature_c", window="1w",
        start="2026-11-25", end="2026-12-07", device="sensor-c",
    ).json()
    assert answer["start"] == "2026-11-23T00:00:00+07:00"
    assert series_of(answer, "sensor-c") == [("2026-11-23T00:00:00+07:00", 20.0), ("2026-11-30T00:00:00+07:00", 30.0)]


def test_series_months_start_on_the_first_local_day(pipeline, seeded):
    answer = pipeline.get(
        f"/api/v1/opds/{seeded}/series", field="temperature_c", window="1mo",
        start="2026-11-15", end="2027-01-01", device="sensor-d",
    ).json()
    assert series_of(answer, "sensor-d") == [("2026-11-01T00:00:00+07:00", 10.0), ("2026-12-01T00:00:00+07:00", 40.0)]


def test_series_count_of_string_field(pipeline, seeded):
    answer = pipeline.get(
        f"/api/v1/opds/{seeded}/series", stream="attendance", field="employee_id", agg="count", window="1d",
        start="2026-12-01", end="2026-12-03",
    ).json()
    assert series_of(answer, "absen-01") == [("2026-12-01T00:00:00+07:00", 1), ("2026-12-02T00:00:00+07:00", 2)]


def test_attendance_day_uses_local_midnights(pipeline, seeded):
    first = pipeline.get(f"/api/v1/opds/{seeded}/attendance", date="2026-12-01").json()
    second = pipeline.get(f"/api/v1/opds/{seeded}/attendance", date="2026-12-02").json()
    assert [event["time"] for event in first["events"]] == ["2026-12-01T23:30:00+07:00"]
    assert [event["time"] for event in second["events"]] == ["2026-12-02T00:30:00+07:00", "2026-12-02T07:25:00+07:00"]
    assert second["events"][1]["verify"] == "rfid"
    assert second["start"] == "2026-12-02T00:00:00+07:00"


# Bad parameters: (path suffix, params, status, parameter named in the response).
BAD_REQUESTS = [
    ("series", {"field": "temperature", "window": "1h"}, 422, "field"),
    ("series", {"field": "temperature_c", "window": "2h"}, 422, "window"),
    ("series", {"field": "temperature_c", "agg": "average"}, 422, "agg"),
    ("series", {"field": "temperature_c", "start": "kemarin"}, 422, "start"),
    ("series", {"field": "temperature_c", "end": "2026-13-01"}, 422, "end"),
    ("series", {"field": "temperature_c", "start": "2026-12-02", "end": "2026-12-01"}, 422, "start"),
    ("series", {"field": "temperature_c", "window": "1m", "start": "2020-01-01", "end": "2026-01-01"}, 422, "window"),
    ("series", {"field": "temperature_c", "start": "1900-01-01"}, 422, "start"),
    ("series", {"field": "temperature_c", "device": "Sensor A"}, 422, "device"),
    ("series", {"stream": "attendance", "field": "employee_id", "agg": "mean"}, 422, "agg"),
    ("series", {"stream": "status", "field": "state"}, 422, "stream"),
    ("series", {}, 422, "field"),
    ("latest", {"stream": "weather"}, 422, "stream"),
    ("attendance", {"date": "2026-02-30"}, 422, "date"),
    ("attendance", {"date": "01/12/2026"}, 422, "date"),
]


@pytest.mark.parametrize(("suffix", "params", "status", "parameter"), BAD_REQUESTS, ids=[f"{b[0]}-{b[3]}-{i}" for i, b in enumerate(BAD_REQUESTS)])
def test_bad_parameter_names_the_parameter(pipeline, seeded, suffix, params, status, parameter):
    response = pipeline.get(f"/api/v1/opds/{seeded}/{suffix}", **params)
    assert response.status_code == status
    assert response.json()["parameter"] == parameter
    assert parameter in response.json()["detail"]


@pytest.mark.parametrize("opd", ["Dinkes", "din kes", "a" * 65, "-x"])
def test_invalid_opd_id_is_422(pipeline, opd):
    response = pipeline.get(f"/api/v1/opds/{opd}/latest")
    assert response.status_code == 422
    assert response.json()["parameter"] == "opd"


def test_unknown_path_is_404_json(pipeline):
    response = pipeline.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_openapi_documents_every_route(pipeline):
    paths = pipeline.get("/openapi.json").json()["paths"]
    assert set(paths) >= {
        "/health",
        "/api/v1/opds",
        "/api/v1/opds/{opd}",
        "/api/v1/opds/{opd}/latest",
        "/api/v1/opds/{opd}/series",
        "/api/v1/opds/{opd}/attendance",
    }


@pytest.fixture(scope="module")
def api_without_backends(tmp_path_factory):
    """An API whose broker and InfluxDB addresses point at closed loopback ports."""
    folder = tmp_path_factory.mktemp("api-down")
    port = free_port()
    env = dict(
        os.environ,
        SMARTOFFICE_MQTT_PORT=str(free_port()),
        SMARTOFFICE_INFLUX_URL=f"http://127.0.0.1:{free_port()}",
        SMARTOFFICE_API_PORT=str(port),
        SMARTOFFICE_INFLUX_TIMEOUT_S="2",
        SMARTOFFICE_DATABASE_URL=f"sqlite:///{folder / 'registry.sqlite3'}",
        # These tests are about unreachable backends; test_auth.py covers the login.
        SMARTOFFICE_AUTH_ENABLED="false",
    )
    api = ManagedProcess("api", [sys.executable, "-m", "api"], folder / "api.log", env=env, cwd=REPO_ROOT)
    api.start()
    url = f"http://127.0.0.1:{port}"
    api.wait_ready(lambda: _status(url + "/openapi.json") == 200, timeout_s=30)
    yield url, api
    api.stop()


def _status(url: str) -> int:
    try:
        return httpx.get(url, timeout=5).status_code
    except httpx.HTTPError:
        return 0


def test_health_degraded_when_backends_down(api_without_backends):
    url, _ = api_without_backends
    response = httpx.get(url + "/health", timeout=10)
    assert response.status_code == 503
    assert response.json()["status"] == "degraded"
    assert response.json()["checks"]["influxdb"]["ok"] is False
    assert response.json()["checks"]["mqtt"]["ok"] is False


@pytest.mark.parametrize("path", ["/api/v1/opds", "/api/v1/opds/dinkes/latest", "/api/v1/opds/dinkes/series?field=co2_ppm"])
def test_data_routes_are_503_when_influx_down(api_without_backends, path):
    url, api = api_without_backends
    response = httpx.get(url + path, timeout=10)
    assert response.status_code == 503
    assert response.json()["code"] == "influx_unavailable"
    assert "Traceback" not in api.log_tail(200)


def test_node_config_503_when_broker_down(api_without_backends):
    url, _ = api_without_backends
    settings = {"heartbeat_s": 30, "adapters": []}
    response = httpx.put(f"{url}/api/v1/opds/setda/nodes/gw-01/config", json={"settings": settings}, timeout=30)
    assert response.status_code == 503
    assert response.json()["code"] == "node_config_not_published"
    assert "konfigurasi" in response.json()["detail"]


def test_message_codes_are_unique():
    """A repeated key in the message table silently replaces the earlier message."""
    import ast

    tree = ast.parse((REPO_ROOT / "api" / "messages.py").read_text(encoding="utf-8"))
    table = next(node.value for node in ast.walk(tree) if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", "") == "MESSAGES")
    codes = [key.value for key in table.keys]
    repeated = sorted({code for code in codes if codes.count(code) > 1})
    assert repeated == []
