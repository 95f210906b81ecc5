"""Energy consumption API against real processes: registers published over MQTT, kWh over HTTP.

Times are WIB (UTC+7). Every expected kWh is computed by hand in the comment of its data set.
"""

import json

import httpx
import pytest

from conftest import wait_until
from test_api import api_without_backends, ms  # noqa: F401 (api_without_backends is a fixture)

pytestmark = pytest.mark.integration

OPD = "energy-test-opd"
TOPIC = f"smartoffice/v1/{OPD}/gw-01/energy"


def energy_message(device: str, ts: int, kwh_total: float, **fields) -> str:
    return json.dumps({"device": device, "ts": ts, "energy_kwh_total": kwh_total, **fields})


READINGS = [
    # meter-a on circuit penerangan: 08:00 100 → 08:30 100.5 → 09:00 101 → 10:00 103.
    # The 08:00 hour gets 1 kWh and the 09:00 hour 2 kWh, 3 kWh on 1 December.
    ("meter-a", ms(2026, 12, 1, 8), 100.0, {"circuit": "penerangan"}),
    ("meter-a", ms(2026, 12, 1, 8, 30), 100.5, {"circuit": "penerangan"}),
    ("meter-a", ms(2026, 12, 1, 9), 101.0, {"circuit": "penerangan"}),
    ("meter-a", ms(2026, 12, 1, 10), 103.0, {"circuit": "penerangan"}),
    # meter-b: 2 kWh from 23:00 to 01:00 WIB, 1 kWh on each local day and in each hour.
    ("meter-b", ms(2026, 12, 1, 23), 500.0, {}),
    ("meter-b", ms(2026, 12, 2, 1), 502.0, {}),
    # meter-c: 1,000 → 1,005 → 3 → 8 hourly from 08:00 on 3 December: 5 + 3 + 5 = 13 kWh.
    ("meter-c", ms(2026, 12, 3, 8), 1000.0, {}),
    ("meter-c", ms(2026, 12, 3, 9), 1005.0, {}),
    ("meter-c", ms(2026, 12, 3, 10), 3.0, {}),
    ("meter-c", ms(2026, 12, 3, 11), 8.0, {}),
]


@pytest.fixture(scope="module")
def seeded(pipeline):
    """Publish the energy readings of the module's OPD and wait until all are stored."""
    pipeline.publish([(TOPIC, energy_message(device, ts, kwh, **extra)) for device, ts, kwh, extra in READINGS])

    def stored() -> int:
        series = pipeline.query(f"SELECT count(\"energy_kwh_total\") FROM \"energy\" WHERE opd = '{OPD}'")
        return series[0]["values"][0][1] if series else 0

    assert wait_until(lambda: stored() == len(READINGS), timeout_s=20)
    return OPD


def energy(pipeline, **params) -> dict:
    response = pipeline.get(f"/api/v1/opds/{OPD}/energy", **params)
    assert response.status_code == 200, response.text
    return response.json()


def buckets_of(answer: dict, device: str) -> list[tuple[str, float]]:
    for meter in answer["meters"]:
        if meter["device"] == device:
            return [(bucket["time"], bucket["kwh"]) for bucket in meter["buckets"]]
    return []


def meter_of(answer: dict, device: str) -> dict:
    return next(meter for meter in answer["meters"] if meter["device"] == device)


def test_energy_hourly_buckets_hand_computed(pipeline, seeded):
    answer = energy(pipeline, window="1h", start="2026-12-01T08:00", end="2026-12-01T10:00", device="meter-a")
    assert buckets_of(answer, "meter-a") == [("2026-12-01T08:00:00+07:00", 1.0), ("2026-12-01T09:00:00+07:00", 2.0)]
    assert meter_of(answer, "meter-a")["circuit"] == "penerangan"
    assert answer["total_kwh"] == 3.0


def test_energy_hourly_splits_midnight_gap(pipeline, seeded):
    answer = energy(pipeline, window="1h", start="2026-12-01T23:00", end="2026-12-02T01:00", device="meter-b")
    assert buckets_of(answer, "meter-b") == [("2026-12-01T23:00:00+07:00", 1.0), ("2026-12-02T00:00:00+07:00", 1.0)]


def test_energy_daily_splits_midnight_gap(pipeline, seeded):
    answer = energy(pipeline, window="1d", start="2026-12-01", end="2026-12-03", device="meter-b")
    assert buckets_of(answer, "meter-b") == [("2026-12-01T00:00:00+07:00", 1.0), ("2026-12-02T00:00:00+07:00", 1.0)]


def test_energy_uses_reading_before_start(pipeline, seeded):
    # No meter-b reading lies in 00:00-01:00; the 23:00 reading before it gives the hour its 1 kWh.
    answer = energy(pipeline, window="1h", start="2026-12-02T00:00", end="2026-12-02T01:00", device="meter-b")
    assert buckets_of(answer, "meter-b") == [("2026-12-02T00:00:00+07:00", 1.0)]


def test_energy_uses_reading_after_end(pipeline, seeded):
    # The 01:00 reading after the range gives the 23:00 hour its 1 kWh.
    answer = energy(pipeline, window="1h", start="2026-12-01T23:00", end="2026-12-02T00:00", device="meter-b")
    assert buckets_of(answer, "meter-b") == [("2026-12-01T23:00:00+07:00", 1.0)]


def test_energy_daily_counter_reset_totals_13(pipeline, seeded):
    answer = energy(pipeline, window="1d", start="2026-12-03", end="2026-12-04", device="meter-c")
    assert buckets_of(answer, "meter-c") == [("2026-12-03T00:00:00+07:00", 13.0)]
    assert meter_of(answer, "meter-c")["total_kwh"] == 13.0


def test_energy_hourly_counter_reset_counts_new_value(pipeline, seeded):
    answer = energy(pipeline, window="1h", start="2026-12-03T08:00", end="2026-12-03T11:00", device="meter-c")
    assert buckets_of(answer, "meter-c") == [
        ("2026-12-03T08:00:00+07:00", 5.0),
        ("2026-12-03T09:00:00+07:00", 3.0),
        ("2026-12-03T10:00:00+07:00", 5.0),
    ]


def test_energy_counter_reset_is_reported(pipeline, seeded):
    anomalies = meter_of(energy(pipeline, window="1d", start="2026-12-03", end="2026-12-04"), "meter-c")["anomalies"]
    assert [anomaly["kind"] for anomaly in anomalies] == ["counter_reset"]
    assert anomalies[0]["start"] == "2026-12-03T09:00:00+07:00"
    assert anomalies[0]["counted_kwh"] == 3.0


def test_energy_opd_totals_per_day(pipeline, seeded):
    # 1 December: meter-a 3 + meter-b 1; 2 December: meter-b 1; 3 December: meter-c 13. Total 18.
    answer = energy(pipeline, window="1d", start="2026-12-01", end="2026-12-04")
    assert [(bucket["time"], bucket["kwh"]) for bucket in answer["totals"]] == [
        ("2026-12-01T00:00:00+07:00", 4.0),
        ("2026-12-02T00:00:00+07:00", 1.0),
        ("2026-12-03T00:00:00+07:00", 13.0),
    ]
    assert answer["total_kwh"] == 18.0


def test_energy_device_filter_lists_one_meter(pipeline, seeded):
    answer = energy(pipeline, window="1d", start="2026-12-01", end="2026-12-04", device="meter-c")
    assert [meter["device"] for meter in answer["meters"]] == ["meter-c"]


def test_energy_unknown_opd_is_404(pipeline):
    response = pipeline.get("/api/v1/opds/tidak-ada/energy")
    assert response.status_code == 404
    assert response.json()["code"] == "opd_not_found"


# Bad parameters: (params, parameter named in the response).
BAD_REQUESTS = {
    "window-unknown": ({"window": "2h"}, "window"),
    "start-not-a-time": ({"start": "kemarin"}, "start"),
    "end-invalid-month": ({"end": "2026-13-01"}, "end"),
    "start-after-end": ({"start": "2026-12-02", "end": "2026-12-01"}, "start"),
    "start-before-2000": ({"start": "1900-01-01"}, "start"),
    "window-too-many-buckets": ({"window": "1m", "start": "2020-01-01", "end": "2026-01-01"}, "window"),
    "device-invalid-id": ({"device": "Meter A"}, "device"),
}


@pytest.mark.parametrize(("params", "parameter"), BAD_REQUESTS.values(), ids=BAD_REQUESTS.keys())
def test_energy_bad_parameter_names_the_parameter(pipeline, seeded, params, parameter):
    response = pipeline.get(f"/api/v1/opds/{seeded}/energy", **params)
    assert response.status_code == 422
    assert response.json()["parameter"] == parameter
    assert parameter in response.json()["detail"]


def test_openapi_documents_energy_route(pipeline):
    paths = pipeline.get("/openapi.json").json()["paths"]
    assert "/api/v1/opds/{opd}/energy" in paths


def test_energy_is_503_when_influx_down(api_without_backends):  # noqa: F811
    url, api = api_without_backends
    response = httpx.get(url + "/api/v1/opds/dinkes/energy", timeout=10)
    assert response.status_code == 503
    assert response.json()["code"] == "influx_unavailable"
    assert "Traceback" not in api.log_tail(200)
