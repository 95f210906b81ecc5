"""Monthly export API against real processes: data published over MQTT, files downloaded over HTTP.

The month is November 2026, already past on the test machine's clock. Times are WIB (UTC+7).
1 November is a Sunday and November has no national holiday or cuti bersama, so its workdays
are the 21 weekdays. Every expected value is computed by hand in the comments of the data sets.
"""

import csv
import io
import json
from datetime import datetime

import httpx
import openpyxl
import pytest

from conftest import wait_until
from test_api import api_without_backends, ms  # noqa: F401 (api_without_backends is a fixture)

pytestmark = pytest.mark.integration

OPD = "export-test-opd"
ATTENDANCE_TOPIC = f"smartoffice/v1/{OPD}/gw-01/attendance"
ENERGY_TOPIC = f"smartoffice/v1/{OPD}/gw-01/energy"
ATTENDANCE_EXPORT = f"/api/v1/opds/{OPD}/exports/attendance"
ENERGY_EXPORT = f"/api/v1/opds/{OPD}/exports/energy"
A = "198001012005011001"
B = "4207"

PUNCHES = [
    # A: Mon 2 present; Tue 3 07:42 late 12 min; Wed 4 07:35 only, missing check-out, 5 min late;
    # Thu 5 out 15:40, early 20 min; Sat 7 on a weekend. The other 17 workdays are absent.
    # Minutes late 0+12+5+0 = 17, early 0+0+0+20 = 20.
    (A, ms(2026, 11, 2, 7, 30)),
    (A, ms(2026, 11, 2, 16, 0)),
    (A, ms(2026, 11, 3, 7, 42)),
    (A, ms(2026, 11, 3, 16, 0)),
    (A, ms(2026, 11, 4, 7, 35)),
    (A, ms(2026, 11, 5, 7, 30)),
    (A, ms(2026, 11, 5, 15, 40)),
    (A, ms(2026, 11, 7, 9, 0)),
    # B: Fri 6 07:00-17:00 present; the other 20 workdays absent.
    (B, ms(2026, 11, 6, 7, 0)),
    (B, ms(2026, 11, 6, 17, 0)),
]

READINGS = [
    # meter-a on Mon 2 Nov: 15:00 100 → 16:00 101 → 17:00 102, 2 kWh, the hour after 16:00
    # closing outside office hours. 2 × 1,699.53 = 3,399.06 → 3,399 at P-1/TR; peak 2.5 kW.
    ("meter-a", ms(2026, 11, 2, 15), 100.0, 1500.0),
    ("meter-a", ms(2026, 11, 2, 16), 101.0, 2500.0),
    ("meter-a", ms(2026, 11, 2, 17), 102.0, 500.0),
    # meter-b on Sat 28 Nov: 10:00 50 → 12:00 53, 3 kWh, all outside office hours.
    # 3 × 1,699.53 = 5,098.59 → 5,099; peak 1.2 kW.
    ("meter-b", ms(2026, 11, 28, 10), 50.0, 800.0),
    ("meter-b", ms(2026, 11, 28, 12), 53.0, 1200.0),
]
# OPD: 5 kWh, 1 + 3 = 4 outside, 5 × 1,699.53 = 8,497.65 → 8,498.

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.fixture(scope="module")
def seeded(pipeline):
    """Publish the punches and readings of the module's OPD and wait until all are stored."""
    messages = [
        (ATTENDANCE_TOPIC, json.dumps({"device": "absen-01", "ts": ts, "employee_id": nip, "punch": "in"}))
        for nip, ts in PUNCHES
    ]
    messages += [
        (ENERGY_TOPIC, json.dumps({"device": device, "ts": ts, "energy_kwh_total": kwh, "power_w": power_w}))
        for device, ts, kwh, power_w in READINGS
    ]
    pipeline.publish(messages)

    def count(field: str, measurement: str) -> int:
        series = pipeline.query(f"SELECT count(\"{field}\") FROM \"{measurement}\" WHERE opd = '{OPD}'")
        return series[0]["values"][0][1] if series else 0

    def stored() -> bool:
        return count("employee_id", "attendance") == len(PUNCHES) and count("energy_kwh_total", "energy") == len(READINGS)

    assert wait_until(stored, timeout_s=20)
    # The employee list puts each NIP, not its pseudonym, in the export's NIP column.
    employees = [{"nip": nip, "name": f"Pegawai {nip}"} for nip in sorted({nip for nip, _ in PUNCHES})]
    imported = pipeline.request("PUT", f"/api/v1/opds/{OPD}/employees", json={"employees": employees})
    assert imported.status_code == 200, imported.text
    return OPD


def download(pipeline, path: str, file_format: str) -> httpx.Response:
    response = pipeline.get(path, month="2026-11", format=file_format)
    assert response.status_code == 200, response.text
    return response


def sheet_rows(content: bytes) -> list[tuple]:
    sheet = openpyxl.load_workbook(io.BytesIO(content)).active
    return list(sheet.iter_rows(values_only=True))


def table_of(rows: list, first_header: str) -> list[dict]:
    """Return the data rows below the header row as dicts, up to the first empty row."""
    header_index = next(index for index, row in enumerate(rows) if row and row[0] == first_header)
    headers = rows[header_index]
    table = []
    for row in rows[header_index + 1 :]:
        if not row or all(value in (None, "") for value in row):
            break
        table.append(dict(zip(headers, row)))
    return table


@pytest.fixture(scope="module")
def attendance_xlsx(pipeline, seeded) -> dict[str, dict]:
    rows = sheet_rows(download(pipeline, ATTENDANCE_EXPORT, "xlsx").content)
    return {row["NIP"]: row for row in table_of(rows, "No")}


@pytest.fixture(scope="module")
def energy_xlsx(pipeline, seeded) -> list[dict]:
    return table_of(sheet_rows(download(pipeline, ENERGY_EXPORT, "xlsx").content), "Tanggal")


@pytest.fixture(scope="module")
def json_recap(pipeline, seeded) -> dict:
    response = pipeline.get(f"/api/v1/opds/{OPD}/attendance/recap", start="2026-11-01", end="2026-11-30")
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture(scope="module")
def json_report(pipeline, seeded) -> dict:
    response = pipeline.get(f"/api/v1/opds/{OPD}/energy/report", window="1d", start="2026-11-01", end="2026-12-01")
    assert response.status_code == 200, response.text
    return response.json()


def test_export_attendance_counts_hand_computed(attendance_xlsx):
    row_a = attendance_xlsx[A]
    assert [row_a[name] for name in ("Hadir", "Terlambat", "Pulang Cepat", "Tidak Absen Pulang")] == [1, 1, 1, 1]
    assert row_a["Tidak Hadir"] == 17
    assert row_a["Absen Hari Libur"] == 1
    assert (attendance_xlsx[B]["Hadir"], attendance_xlsx[B]["Tidak Hadir"]) == (1, 20)


def test_export_attendance_minutes_hand_computed(attendance_xlsx):
    assert attendance_xlsx[A]["Total Menit Terlambat"] == 17
    assert attendance_xlsx[A]["Total Menit Pulang Cepat"] == 20


def test_export_attendance_day_codes(attendance_xlsx):
    row_a = attendance_xlsx[A]
    assert [row_a[str(day)] for day in range(1, 10)] == ["-", "H", "T", "TAP", "PC", "A", "-", "-", "A"]
    assert attendance_xlsx[B]["6"] == "H"


def test_export_attendance_equals_json_recap(attendance_xlsx, json_recap):
    assert json_recap["workdays"] == 21
    columns = {"present": "Hadir", "late": "Terlambat", "early_leave": "Pulang Cepat", "missing_checkout": "Tidak Absen Pulang", "absent": "Tidak Hadir", "non_workday": "Absen Hari Libur"}
    for employee in json_recap["employees"]:
        exported = attendance_xlsx[employee["nip"]]
        assert {status: exported[column] for status, column in columns.items()} == employee["counts"], employee["nip"]


def test_export_attendance_title_block(pipeline, seeded):
    rows = sheet_rows(download(pipeline, ATTENDANCE_EXPORT, "xlsx").content)
    details = {row[0]: row[1] for row in rows[1:7]}
    assert rows[0][0] == "Rekap Kehadiran Pegawai"
    assert details["OPD"] == OPD
    assert details["Bulan"] == "November 2026"
    assert details["Zona waktu"] == "WIB (Asia/Jakarta)"
    assert details["Dibuat"].endswith(" WIB")


def test_export_attendance_csv_equals_xlsx(pipeline, attendance_xlsx):
    content = download(pipeline, ATTENDANCE_EXPORT, "csv").content
    assert content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(content.decode("utf-8-sig"), newline="")))
    exported = {row["NIP"]: row for row in table_of([tuple(row) for row in rows], "No")}
    assert exported[A]["Tidak Hadir"] == "17"
    assert exported[A]["Total Menit Terlambat"] == "17"
    assert exported[A]["4"] == "TAP"
    assert set(exported) == set(attendance_xlsx)


def test_export_energy_meter_day_hand_computed(energy_xlsx):
    monday = next(row for row in energy_xlsx if row["Perangkat"] == "meter-a" and row["Tanggal"] == datetime(2026, 11, 2))
    assert monday["Pemakaian (kWh)"] == 2
    assert monday["Di Luar Jam Kerja (kWh)"] == 1
    assert monday["Daya Puncak (kW)"] == 2.5
    assert monday["Biaya (Rp)"] == 3399
    assert monday["Golongan Tarif"] == "P-1/TR"


def test_export_energy_saturday_all_off_hours(energy_xlsx):
    saturday = next(row for row in energy_xlsx if row["Perangkat"] == "meter-b" and row["Tanggal"] == datetime(2026, 11, 28))
    assert (saturday["Pemakaian (kWh)"], saturday["Di Luar Jam Kerja (kWh)"], saturday["Biaya (Rp)"]) == (3, 3, 5099)
    assert saturday["Daya Puncak (kW)"] == 1.2


def test_export_energy_rows_per_meter_and_day(energy_xlsx):
    # 30 days and a total for each of the two meters, and the OPD total.
    assert len(energy_xlsx) == 2 * 31 + 1
    assert sum(row["Perangkat"] == "meter-a" and isinstance(row["Tanggal"], datetime) for row in energy_xlsx) == 30


def test_export_energy_opd_total_hand_computed(energy_xlsx):
    total = energy_xlsx[-1]
    assert total["Tanggal"] == "Total OPD"
    assert (total["Pemakaian (kWh)"], total["Di Luar Jam Kerja (kWh)"], total["Biaya (Rp)"]) == (5, 4, 8498)


def test_export_energy_equals_json_report(energy_xlsx, json_report):
    for meter in json_report["meters"]:
        exported = [row for row in energy_xlsx if row["Perangkat"] == meter["device"]]
        days = [(row["Pemakaian (kWh)"], row["Biaya (Rp)"], row["Di Luar Jam Kerja (kWh)"], row["Daya Puncak (kW)"]) for row in exported[:-1]]
        expected = [(bucket["kwh"], bucket["cost_idr"], bucket["off_hours_kwh"], bucket["peak_kw"]) for bucket in meter["buckets"]]
        assert days == expected, meter["device"]
        assert (exported[-1]["Pemakaian (kWh)"], exported[-1]["Biaya (Rp)"]) == (meter["total_kwh"], meter["total_cost_idr"])
    assert energy_xlsx[-1]["Biaya (Rp)"] == json_report["total_cost_idr"]


def test_export_energy_csv_values(pipeline, seeded):
    content = download(pipeline, ENERGY_EXPORT, "csv").content
    rows = list(csv.reader(io.StringIO(content.decode("utf-8-sig"), newline="")))
    exported = table_of([tuple(row) for row in rows], "Tanggal")
    monday = next(row for row in exported if row["Perangkat"] == "meter-a" and row["Tanggal"] == "2026-11-02")
    assert (monday["Pemakaian (kWh)"], monday["Biaya (Rp)"], monday["Daya Puncak (kW)"]) == ("2.000", "3399", "2.500")
    assert exported[-1]["Biaya (Rp)"] == "8498"


DOWNLOADS = {
    "attendance-xlsx": (ATTENDANCE_EXPORT, "xlsx", XLSX_TYPE, "rekap-kehadiran-export-test-opd-2026-11.xlsx"),
    "attendance-csv": (ATTENDANCE_EXPORT, "csv", "text/csv; charset=utf-8", "rekap-kehadiran-export-test-opd-2026-11.csv"),
    "energy-xlsx": (ENERGY_EXPORT, "xlsx", XLSX_TYPE, "laporan-energi-export-test-opd-2026-11.xlsx"),
    "energy-csv": (ENERGY_EXPORT, "csv", "text/csv; charset=utf-8", "laporan-energi-export-test-opd-2026-11.csv"),
}


@pytest.mark.parametrize(("path", "file_format", "media_type", "filename"), DOWNLOADS.values(), ids=DOWNLOADS.keys())
def test_export_download_headers(pipeline, seeded, path, file_format, media_type, filename):
    response = download(pipeline, path, file_format)
    assert response.headers["content-type"] == media_type
    assert response.headers["content-disposition"] == f'attachment; filename="{filename}"'


# Bad parameters: (params, parameter named in the response, code).
BAD_REQUESTS = {
    "month-13": ({"month": "2026-13", "format": "csv"}, "month", "invalid_month"),
    "month-one-digit": ({"month": "2026-1", "format": "csv"}, "month", "invalid_month"),
    "month-name": ({"month": "November", "format": "csv"}, "month", "invalid_month"),
    "month-before-2000": ({"month": "1999-12", "format": "csv"}, "month", "invalid_month"),
    "month-missing": ({"format": "csv"}, "month", "missing_parameter"),
    "format-pdf": ({"month": "2026-11", "format": "pdf"}, "format", "invalid_export_format"),
}


@pytest.mark.parametrize("path", [ATTENDANCE_EXPORT, ENERGY_EXPORT], ids=["attendance", "energy"])
@pytest.mark.parametrize(("params", "parameter", "code"), BAD_REQUESTS.values(), ids=BAD_REQUESTS.keys())
def test_export_bad_parameter_names_the_parameter(pipeline, seeded, path, params, parameter, code):
    response = pipeline.get(path, **params)
    assert response.status_code == 422
    assert response.json()["parameter"] == parameter
    assert response.json()["code"] == code
    assert f"'{parameter}'" in response.json()["detail"]


def test_export_bad_month_message_in_english(pipeline, seeded):
    response = pipeline.get(ENERGY_EXPORT, month="2026-13", lang="en")
    assert response.json()["detail"].startswith("Parameter 'month' is invalid: '2026-13'")


def test_export_unknown_opd_is_404(pipeline):
    response = pipeline.get("/api/v1/opds/tidak-ada/exports/attendance", month="2026-11")
    assert response.status_code == 404
    assert response.json()["code"] == "opd_not_found"


def test_exports_documented_in_openapi(pipeline):
    paths = pipeline.get("/openapi.json").json()["paths"]
    assert "/api/v1/opds/{opd}/exports/attendance" in paths
    assert "/api/v1/opds/{opd}/exports/energy" in paths


@pytest.mark.parametrize("kind", ["attendance", "energy"])
def test_export_is_503_when_influx_down(api_without_backends, kind):  # noqa: F811
    url, api = api_without_backends
    response = httpx.get(url + f"/api/v1/opds/dinkes/exports/{kind}", params={"month": "2026-11"}, timeout=10)
    assert response.status_code == 503
    assert response.json()["code"] == "influx_unavailable"
    assert "Traceback" not in api.log_tail(200)
