"""Energy report API against real processes: cost, kWh outside office hours and peak power.

Readings are published over MQTT for an OPD of the module's own. Times are WIB (UTC+7);
30 November 2026 is a Monday and 28 November a Saturday. Every expected value is computed by
hand in the comment of its data set or test.
"""

import json
import os
import sys

import httpx
import pytest

from conftest import REPO_ROOT, _answers, wait_until
from devstack import ManagedProcess, free_port
from test_api import api_without_backends, ms  # noqa: F401 (api_without_backends is a fixture)

pytestmark = pytest.mark.integration

OPD = "cost-test-opd"
TOPIC = f"smartoffice/v1/{OPD}/gw-01/energy"
REPORT = f"/api/v1/opds/{OPD}/energy/report"

READINGS = [
    # meter-a on Monday: 15:00 100 → 16:00 101 → 17:00 102, so 1 kWh per hour. The 15:00 hour
    # is inside office hours (closing 16:00), the 16:00 hour outside. Each hour costs
    # 1 × 1,699.53 → 1,700 at P-1/TR; both 2 × 1,699.53 = 3,399.06 → 3,399.
    # Power 1,500 W at 15:00 and 2,500 W at 16:00: peaks 1.5 and 2.5 kW; 500 W at 17:00.
    ("meter-a", ms(2026, 11, 30, 15), 100.0, 1500.0),
    ("meter-a", ms(2026, 11, 30, 16), 101.0, 2500.0),
    ("meter-a", ms(2026, 11, 30, 17), 102.0, 500.0),
    # meter-b on Saturday 28 November: 10:00 50 → 12:00 53, 3 kWh, all outside office hours.
    # At P-1/TR 3 × 1,699.53 = 5,098.59 → 5,099; at P-2/TM 3 × 1,522.88 = 4,568.64 → 4,569.
    ("meter-b", ms(2026, 11, 28, 10), 50.0, 800.0),
    ("meter-b", ms(2026, 11, 28, 12), 53.0, 1200.0),
    # meter-c on Monday 17 August 2026, Independence Day (a national holiday): 10:00 10 →
    # 12:00 12, 2 kWh inside the usual hours of a Monday but all outside office hours.
    ("meter-c", ms(2026, 8, 17, 10), 10.0, 900.0),
    ("meter-c", ms(2026, 8, 17, 12), 12.0, 900.0),
]

# meter-b moves to P-2/TM for the whole range; meter-a stays unmapped, so P-1/TR.
TARIFFS_WITH_P2 = """
classes:
  P-1/TR:
    prices:
    - {effective_from: 2022-07-01, idr_per_kwh: 1699.53}
  P-2/TM:
    prices:
    - {effective_from: 2022-07-01, idr_per_kwh: 1522.88}
meters:
- {opd: cost-test-opd, node: gw-01, device: meter-b, tariff_class: P-2/TM, effective_from: 2026-11-01}
"""


def energy_message(device: str, ts: int, kwh_total: float, power_w: float) -> str:
    return json.dumps({"device": device, "ts": ts, "energy_kwh_total": kwh_total, "power_w": power_w})


@pytest.fixture(scope="module")
def seeded(pipeline):
    """Publish the readings of the module's OPD and wait until all are stored."""
    pipeline.publish([(TOPIC, energy_message(*reading)) for reading in READINGS])

    def stored() -> int:
        series = pipeline.query(f"SELECT count(\"energy_kwh_total\") FROM \"energy\" WHERE opd = '{OPD}'")
        return series[0]["values"][0][1] if series else 0

    assert wait_until(lambda: stored() == len(READINGS), timeout_s=20)
    return OPD


@pytest.fixture(scope="module")
def api_with_p2(pipeline, tmp_path_factory):
    """A second API on the pipeline's database, with a tariff file that maps meter-b to P-2/TM."""
    folder = tmp_path_factory.mktemp("tariffs")
    tariffs_file = folder / "tariffs.yaml"
    tariffs_file.write_text(TARIFFS_WITH_P2, encoding="utf-8")
    port = free_port()
    env = dict(
        os.environ,
        SMARTOFFICE_MQTT_HOST=pipeline.mosquitto.host,
        SMARTOFFICE_MQTT_PORT=str(pipeline.mosquitto.port),
        SMARTOFFICE_INFLUX_URL=pipeline.influx.url,
        SMARTOFFICE_INFLUX_DB=pipeline.database,
        SMARTOFFICE_API_PORT=str(port),
        SMARTOFFICE_TARIFFS_FILE=str(tariffs_file),
        SMARTOFFICE_DEAD_LETTER_PATH=str(folder / "dead-letters.sqlite3"),
        SMARTOFFICE_DATABASE_URL=f"sqlite:///{folder / 'registry.sqlite3'}",
        # This API only checks another tariff file; test_auth.py covers the login.
        SMARTOFFICE_AUTH_ENABLED="false",
    )
    api = ManagedProcess("api-p2", [sys.executable, "-m", "api"], folder / "api.log", env=env, cwd=REPO_ROOT)
    api.start()
    url = f"http://127.0.0.1:{port}"
    api.wait_ready(lambda: _answers(url + "/openapi.json"), timeout_s=30)
    yield url
    api.stop()


def report(pipeline, **params) -> dict:
    response = pipeline.get(REPORT, **params)
    assert response.status_code == 200, response.text
    return response.json()


def meter_of(answer: dict, device: str) -> dict:
    return next(meter for meter in answer["meters"] if meter["device"] == device)


def bucket_values(meter: dict, key: str) -> list:
    return [bucket[key] for bucket in meter["buckets"]]


def test_report_hourly_kwh(pipeline, seeded):
    meter = meter_of(report(pipeline, window="1h", start="2026-11-30T15:00", end="2026-11-30T17:00"), "meter-a")
    assert [bucket["time"] for bucket in meter["buckets"]] == ["2026-11-30T15:00:00+07:00", "2026-11-30T16:00:00+07:00"]
    assert bucket_values(meter, "kwh") == [1.0, 1.0]


def test_report_hourly_cost_at_p1(pipeline, seeded):
    meter = meter_of(report(pipeline, window="1h", start="2026-11-30T15:00", end="2026-11-30T17:00"), "meter-a")
    assert bucket_values(meter, "cost_idr") == [1700, 1700]
    assert meter["total_cost_idr"] == 3399


def test_report_hourly_off_hours_after_closing(pipeline, seeded):
    meter = meter_of(report(pipeline, window="1h", start="2026-11-30T15:00", end="2026-11-30T17:00"), "meter-a")
    assert bucket_values(meter, "off_hours_kwh") == [0.0, 1.0]
    assert meter["total_off_hours_kwh"] == 1.0


def test_report_hourly_peak_kw(pipeline, seeded):
    meter = meter_of(report(pipeline, window="1h", start="2026-11-30T15:00", end="2026-11-30T17:00"), "meter-a")
    assert bucket_values(meter, "peak_kw") == [1.5, 2.5]
    assert meter["peak_kw"] == 2.5


def test_report_peak_null_without_power(pipeline, seeded):
    # meter-a has no reading in the 18:00 hour, so no peak; its kWh there is 0.
    meter = meter_of(report(pipeline, window="1h", start="2026-11-30T18:00", end="2026-11-30T19:00", device="meter-a"), "meter-a")
    assert bucket_values(meter, "peak_kw") == [None]


def test_report_saturday_all_off_hours(pipeline, seeded):
    meter = meter_of(report(pipeline, window="1d", start="2026-11-28", end="2026-11-29"), "meter-b")
    assert bucket_values(meter, "kwh") == [3.0]
    assert bucket_values(meter, "off_hours_kwh") == [3.0]
    assert bucket_values(meter, "cost_idr") == [5099]
    assert bucket_values(meter, "peak_kw") == [1.2]


def test_report_national_holiday_all_off_hours(pipeline, seeded):
    meter = meter_of(report(pipeline, window="1d", start="2026-08-17", end="2026-08-18"), "meter-c")
    assert bucket_values(meter, "kwh") == [2.0]
    assert bucket_values(meter, "off_hours_kwh") == [2.0]


def test_report_weekly_opd_totals(pipeline, seeded):
    # Week of 23 November: meter-b 3 kWh, all outside, 5,099. Week of 30 November: meter-a
    # 2 kWh, 1 outside, 3,399. Together 5 × 1,699.53 = 8,497.65 → 8,498.
    answer = report(pipeline, window="1w", start="2026-11-23", end="2026-12-07")
    assert [(total["kwh"], total["cost_idr"], total["off_hours_kwh"]) for total in answer["totals"]] == [
        (3.0, 5099, 3.0),
        (2.0, 3399, 1.0),
    ]
    assert answer["total_kwh"] == 5.0
    assert answer["total_cost_idr"] == 8498
    assert answer["total_off_hours_kwh"] == 4.0


def test_report_lists_default_tariff(pipeline, seeded):
    answer = report(pipeline, window="1w", start="2026-11-23", end="2026-12-07")
    expected = [{"tariff_class": "P-1/TR", "idr_per_kwh": 1699.53, "effective_from": "2022-07-01"}]
    assert answer["tariffs"] == expected
    assert meter_of(answer, "meter-a")["tariffs"] == expected


def test_report_monthly_peak(pipeline, seeded):
    # The max of meter-a's power_w in November is 2,500 W.
    meter = meter_of(report(pipeline, window="1mo", start="2026-11-01", end="2026-12-01"), "meter-a")
    assert bucket_values(meter, "peak_kw") == [2.5]
    assert bucket_values(meter, "kwh") == [2.0]


def test_report_tariff_file_maps_meter_to_p2(api_with_p2, seeded):
    response = httpx.get(api_with_p2 + REPORT, params={"window": "1w", "start": "2026-11-23", "end": "2026-12-07"}, timeout=10)
    assert response.status_code == 200, response.text
    answer = response.json()
    # meter-a 3,399.06 at P-1/TR plus meter-b 4,568.64 at P-2/TM = 7,967.70 → 7,968.
    assert meter_of(answer, "meter-b")["total_cost_idr"] == 4569
    assert meter_of(answer, "meter-a")["total_cost_idr"] == 3399
    assert answer["total_cost_idr"] == 7968
    assert [tariff["tariff_class"] for tariff in answer["tariffs"]] == ["P-1/TR", "P-2/TM"]
    assert meter_of(answer, "meter-b")["tariffs"][0]["effective_from"] == "2026-11-01"


def test_report_unknown_opd_is_404(pipeline):
    response = pipeline.get("/api/v1/opds/tidak-ada/energy/report")
    assert response.status_code == 404
    assert response.json()["code"] == "opd_not_found"


# Bad parameters: (params, parameter named in the response).
BAD_REQUESTS = {
    "window-unknown": ({"window": "2h"}, "window"),
    "start-not-a-time": ({"start": "kemarin"}, "start"),
    "start-after-end": ({"start": "2026-12-02", "end": "2026-12-01"}, "start"),
    "device-invalid-id": ({"device": "Meter A"}, "device"),
}


@pytest.mark.parametrize(("params", "parameter"), BAD_REQUESTS.values(), ids=BAD_REQUESTS.keys())
def test_report_bad_parameter_names_the_parameter(pipeline, seeded, params, parameter):
    response = pipeline.get(REPORT, **params)
    assert response.status_code == 422
    assert response.json()["parameter"] == parameter


def test_report_is_503_when_influx_down(api_without_backends):  # noqa: F811
    url, api = api_without_backends
    response = httpx.get(url + "/api/v1/opds/dinkes/energy/report", timeout=10)
    assert response.status_code == 503
    assert response.json()["code"] == "influx_unavailable"
    assert "Traceback" not in api.log_tail(200)
