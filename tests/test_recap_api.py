"""Attendance recap API against real processes: punches published over MQTT, statuses over HTTP.

Times are WIB (UTC+7). The range is Monday 2026-05-11 to Monday 2026-05-18: 14 May is Ascension
Day (national holiday), 15 May is cuti bersama in config/office_hours.yaml, 16 and 17 May are the
weekend, so the workdays are 11, 12, 13 and 18 May (07:30-16:00). Every expected row and count
is computed by hand in the comments of PUNCHES.
"""

import json

import httpx
import pytest

from conftest import pseudonym_of, wait_until
from test_api import api_without_backends, ms  # noqa: F401 (api_without_backends is a fixture)

pytestmark = pytest.mark.integration

OPD = "recap-test-opd"
TOPIC = f"smartoffice/v1/{OPD}/gw-01/attendance"
A = "198001012005011001"
B = "199002022015022002"
C = "4207"

PUNCHES = [
    # A: Mon 07:30-16:00 present; Tue 07:31 late 1 min; Wed 07:20 with a re-scan 2 s later, out
    # 16:10, present with 2 punches counted; Thu (holiday) 09:00-11:00 non_workday; Mon 18 absent.
    (A, ms(2026, 5, 11, 7, 30), "in"),
    (A, ms(2026, 5, 11, 16, 0), "out"),
    (A, ms(2026, 5, 12, 7, 31), "in"),
    (A, ms(2026, 5, 12, 16, 5), "out"),
    (A, ms(2026, 5, 13, 7, 20), "in"),
    (A, ms(2026, 5, 13, 7, 20, 2), "in"),
    (A, ms(2026, 5, 13, 16, 10), "out"),
    (A, ms(2026, 5, 14, 9, 0), "in"),
    (A, ms(2026, 5, 14, 11, 0), "out"),
    # B: Mon 07:45 only, missing_checkout, 15 min late; Tue 07:25-15:30 early_leave 30 min;
    # Wed 08:00-15:00 late 30 and early 60, status late; Fri (cuti bersama) 10:00 non_workday;
    # Mon 18 07:30-16:00 present. The punch states are deliberately wrong ("out" first).
    (B, ms(2026, 5, 11, 7, 45), "in"),
    (B, ms(2026, 5, 12, 7, 25), "out"),
    (B, ms(2026, 5, 12, 15, 30), "in"),
    (B, ms(2026, 5, 13, 8, 0), "in"),
    (B, ms(2026, 5, 13, 15, 0), "out"),
    (B, ms(2026, 5, 15, 10, 0), "in"),
    (B, ms(2026, 5, 18, 7, 30), "in"),
    (B, ms(2026, 5, 18, 16, 0), "out"),
    # C: Mon 07:00-23:30 present; Tue 00:30-16:00 present, because 23:30 and 00:30 WIB (16:30 and
    # 17:30 UTC of 11 May) fall on two local days; Wed absent; Mon 18 07:29-16:01 present.
    (C, ms(2026, 5, 11, 7, 0), "in"),
    (C, ms(2026, 5, 11, 23, 30), "out"),
    (C, ms(2026, 5, 12, 0, 30), "in"),
    (C, ms(2026, 5, 12, 16, 0), "out"),
    (C, ms(2026, 5, 18, 7, 29), "in"),
    (C, ms(2026, 5, 18, 16, 1), "out"),
]

# Employees per status on each date, from the comments above.
EXPECTED_DAY_COUNTS = {
    "2026-05-11": {"present": 2, "missing_checkout": 1},
    "2026-05-12": {"present": 1, "late": 1, "early_leave": 1},
    "2026-05-13": {"present": 1, "late": 1, "absent": 1},
    "2026-05-14": {"non_workday": 1},
    "2026-05-15": {"non_workday": 1},
    "2026-05-16": {},
    "2026-05-17": {},
    "2026-05-18": {"present": 2, "absent": 1},
}
STATUSES = ("present", "late", "early_leave", "missing_checkout", "absent", "non_workday")


@pytest.fixture(scope="module")
def recap(pipeline):
    """Publish the punches, wait until all are stored, and return the recap of 11-18 May 2026."""
    pipeline.publish(
        [(TOPIC, json.dumps({"device": "absen-01", "ts": ts, "employee_id": nip, "punch": punch})) for nip, ts, punch in PUNCHES]
    )

    def stored() -> int:
        series = pipeline.query(f"SELECT count(\"employee_id\") FROM \"attendance\" WHERE opd = '{OPD}'")
        return series[0]["values"][0][1] if series else 0

    assert wait_until(lambda: stored() == len(PUNCHES), timeout_s=20)
    response = pipeline.get(f"/api/v1/opds/{OPD}/attendance/recap", start="2026-05-11", end="2026-05-18")
    assert response.status_code == 200, response.text
    return response.json()


def rows_of(answer: dict, employee: str) -> dict[str, dict]:
    employee_recap = next(item for item in answer["employees"] if item["employee_id"] == pseudonym_of(OPD, employee))
    return {row["date"]: row for row in employee_recap["rows"]}


def test_recap_day_counts_hand_computed(recap):
    for day in recap["days"]:
        expected = {status: EXPECTED_DAY_COUNTS[day["date"]].get(status, 0) for status in STATUSES}
        assert day["counts"] == expected, day["date"]


def test_recap_totals_hand_computed(recap):
    # Present 2+1+1+2, late 1+1, early_leave 1, missing_checkout 1, absent 1+1, non_workday 1+1.
    assert recap["totals"] == {"present": 6, "late": 2, "early_leave": 1, "missing_checkout": 1, "absent": 2, "non_workday": 2}
    assert recap["workdays"] == 4
    assert recap["employee_count"] == 3


def test_recap_holiday_is_no_workday(recap):
    thursday = recap["days"][3]
    assert thursday["workday"] is False
    assert thursday["reason"] == "holiday"
    assert thursday["reason_name"] == "Ascension Day"


def test_recap_cuti_bersama_is_no_workday(recap):
    friday = recap["days"][4]
    assert friday["workday"] is False
    assert friday["reason"] == "cuti_bersama"


def test_recap_weekend_is_no_workday(recap):
    assert [(day["date"], day["reason"]) for day in recap["days"][5:7]] == [("2026-05-16", "weekend"), ("2026-05-17", "weekend")]


def test_recap_check_in_at_opening_not_late(recap):
    monday = rows_of(recap, A)["2026-05-11"]
    assert monday["status"] == "present"
    assert monday["minutes_late"] == 0


def test_recap_check_in_one_minute_after_opening_late(recap):
    tuesday = rows_of(recap, A)["2026-05-12"]
    assert tuesday["status"] == "late"
    assert tuesday["minutes_late"] == 1


def test_recap_rescan_counted_once(recap):
    wednesday = rows_of(recap, A)["2026-05-13"]
    assert wednesday["punch_count"] == 2
    assert wednesday["check_in"] == "2026-05-13T07:20:00+07:00"
    assert wednesday["check_out"] == "2026-05-13T16:10:00+07:00"


def test_recap_single_punch_missing_checkout(recap):
    monday = rows_of(recap, B)["2026-05-11"]
    assert monday["status"] == "missing_checkout"
    assert monday["check_out"] is None
    assert monday["minutes_late"] == 15


def test_recap_order_decides_in_and_out(recap):
    tuesday = rows_of(recap, B)["2026-05-12"]
    assert tuesday["check_in"] == "2026-05-12T07:25:00+07:00"
    assert tuesday["status"] == "early_leave"
    assert tuesday["minutes_early"] == 30


def test_recap_splits_days_at_local_midnight(recap):
    rows = rows_of(recap, C)
    assert rows["2026-05-11"]["check_out"] == "2026-05-11T23:30:00+07:00"
    assert rows["2026-05-12"]["check_in"] == "2026-05-12T00:30:00+07:00"
    assert rows["2026-05-12"]["status"] == "present"


def test_recap_absent_employee_without_punch(recap):
    assert rows_of(recap, A)["2026-05-18"]["status"] == "absent"
    assert rows_of(recap, C)["2026-05-13"]["status"] == "absent"


def test_recap_non_workday_punches_reported(recap):
    assert rows_of(recap, A)["2026-05-14"]["status"] == "non_workday"
    assert rows_of(recap, B)["2026-05-15"]["status"] == "non_workday"
    assert "2026-05-16" not in rows_of(recap, A)


def test_recap_independence_day_is_holiday(pipeline, recap):
    answer = pipeline.get(f"/api/v1/opds/{OPD}/attendance/recap", start="2026-08-17", end="2026-08-17").json()
    assert answer["days"][0]["workday"] is False
    assert answer["days"][0]["reason_name"] == "Independence Day"


def test_recap_employee_counts_hand_computed(recap):
    counts = next(item for item in recap["employees"] if item["employee_id"] == pseudonym_of(OPD, A))["counts"]
    # A: present 11 and 13 May, late 12 May, absent 18 May, non_workday 14 May.
    assert counts == {"present": 2, "late": 1, "early_leave": 0, "missing_checkout": 0, "absent": 1, "non_workday": 1}


# Bad parameters: (params, status, parameter named in the response).
BAD_REQUESTS = [
    ({"start": "2026-02-30", "end": "2026-03-01"}, 422, "start"),
    ({"start": "2026-05-01", "end": "kemarin"}, 422, "end"),
    ({"start": "20260501", "end": "2026-05-02"}, 422, "start"),
    ({"start": "2026-05-18", "end": "2026-05-11"}, 422, "end"),
    ({"start": "2026-01-01", "end": "2026-03-04"}, 422, "end"),  # 63 days
]


@pytest.mark.parametrize(("params", "status", "parameter"), BAD_REQUESTS, ids=[f"{b[2]}-{i}" for i, b in enumerate(BAD_REQUESTS)])
def test_recap_bad_parameter_names_the_parameter(pipeline, recap, params, status, parameter):
    response = pipeline.get(f"/api/v1/opds/{OPD}/attendance/recap", **params)
    assert response.status_code == status
    assert response.json()["parameter"] == parameter
    assert parameter in response.json()["detail"]


def test_recap_62_days_accepted(pipeline, recap):
    response = pipeline.get(f"/api/v1/opds/{OPD}/attendance/recap", start="2026-01-01", end="2026-03-03")
    assert response.status_code == 200
    assert len(response.json()["days"]) == 62


def test_recap_unknown_opd_is_404(pipeline):
    response = pipeline.get("/api/v1/opds/tidak-ada/attendance/recap")
    assert response.status_code == 404
    assert response.json()["code"] == "opd_not_found"


def test_recap_default_range_is_current_month(pipeline, recap):
    answer = pipeline.get(f"/api/v1/opds/{OPD}/attendance/recap").json()
    assert answer["start"][8:] == "01"
    assert answer["start"][:7] == answer["end"][:7]


def test_recap_documented_in_openapi(pipeline):
    assert "/api/v1/opds/{opd}/attendance/recap" in pipeline.get("/openapi.json").json()["paths"]


def test_recap_is_503_when_influx_down(api_without_backends):
    url, api = api_without_backends
    response = httpx.get(url + "/api/v1/opds/dinkes/attendance/recap", timeout=10)
    assert response.status_code == 503
    assert response.json()["code"] == "influx_unavailable"
    assert "Traceback" not in api.log_tail(200)
