"""Monthly exports without servers: rows built from hand-made recaps and reports, files read back.

The recap is November 2026 as seen on Saturday 7 November: 1 November is a Sunday, so the
workdays so far are 2-6 November and the workdays from 9 November on have not happened yet.
The energy report prices everything at P-1/TR, Rp 1,699.53 per kWh. Every expected value is
computed by hand in the comment of its data set or test.
"""

import csv
import io
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import openpyxl
import pytest

from api.attendance_recap import RecapStatus
from api.exports import (
    attendance_table,
    energy_table,
    month_days,
    month_name,
    write_csv,
    write_xlsx,
)
from api.routes.energy import EnergyReportResponse, MeterReport, ReportBucket, ReportTotal, TariffUsed
from api.routes.recap import EmployeeRecap, RecapDay, RecapResponse, RecapRow

WIB = ZoneInfo("Asia/Jakarta")
GENERATED_AT = datetime(2026, 11, 7, 9, 15, 30, tzinfo=WIB)
NIP_A = "198001012005011001"
NIP_B = "4207"


def wib(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=WIB)


def recap_row(day: int, status: RecapStatus, minutes_late=None, minutes_early=None) -> RecapRow:
    return RecapRow(
        date=date(2026, 11, day),
        check_in=None,
        check_out=None,
        minutes_late=minutes_late,
        minutes_early=minutes_early,
        punch_count=0,
        status=status,
    )


def employee(nip: str, rows: list[RecapRow]) -> EmployeeRecap:
    counts = {status: sum(row.status is status for row in rows) for status in RecapStatus}
    return EmployeeRecap(employee_id=nip, counts=counts, rows=rows)


def november_recap() -> RecapResponse:
    days = [
        RecapDay(
            date=day,
            workday=day.weekday() < 5,
            reason=None if day.weekday() < 5 else "weekend",
            reason_name=None,
            ramadan=False,
            office_start="07:30" if day.weekday() < 5 else None,
            office_end="16:00" if day.weekday() < 5 else None,
            counts={status: 0 for status in RecapStatus},
        )
        for day in month_days(date(2026, 11, 1))
    ]
    # A: Mon 2 present; Tue 3 late 12 min; Wed 4 one punch 5 min late; Thu 5 left 20 min early;
    # Fri 6 absent; Sat 7 punched on a weekend. Minutes late 0+12+5+0 = 17, early 0+0+20 = 20.
    rows_a = [
        recap_row(2, RecapStatus.PRESENT, 0, 0),
        recap_row(3, RecapStatus.LATE, 12, 0),
        recap_row(4, RecapStatus.MISSING_CHECKOUT, 5, None),
        recap_row(5, RecapStatus.EARLY_LEAVE, 0, 20),
        recap_row(6, RecapStatus.ABSENT),
        recap_row(7, RecapStatus.NON_WORKDAY),
    ]
    # B: Mon 2 present, absent Tue 3 to Fri 6.
    rows_b = [recap_row(2, RecapStatus.PRESENT, 0, 0), *(recap_row(day, RecapStatus.ABSENT) for day in range(3, 7))]
    return RecapResponse(
        opd="dinkes",
        timezone="Asia/Jakarta",
        start=date(2026, 11, 1),
        end=date(2026, 11, 30),
        rescan_window_s=300,
        workdays=21,
        employee_count=2,
        totals={status: 0 for status in RecapStatus},
        days=days,
        employees=[employee(NIP_A, rows_a), employee(NIP_B, rows_b)],
    )


P1 = TariffUsed(tariff_class="P-1/TR", idr_per_kwh=1699.53, effective_from=date(2022, 7, 1))


def bucket(day: int, kwh: float, off_hours_kwh: float, cost_idr: int, peak_kw: float | None) -> ReportBucket:
    start = datetime(2026, 11, day, tzinfo=WIB)
    return ReportBucket(
        ts=int(start.timestamp() * 1000),
        time=start,
        kwh=kwh,
        cost_idr=cost_idr,
        off_hours_kwh=off_hours_kwh,
        peak_kw=peak_kw,
    )


def november_report() -> EnergyReportResponse:
    # meter-a: 2 Nov 2.5 kWh, 0.5 outside, 2.5 × 1,699.53 = 4,248.825 → 4,249, peak 1.2 kW;
    # 3 Nov 1.0 kWh, all outside, 1,699.53 → 1,700, no power reading. Total 3.5 kWh, 1.5
    # outside, 3.5 × 1,699.53 = 5,948.355 → 5,948 (the rounded days add up to 5,949).
    meter_a = MeterReport(
        node="gw-01",
        device="meter-a",
        circuit=None,
        total_kwh=3.5,
        total_cost_idr=5948,
        total_off_hours_kwh=1.5,
        peak_kw=1.2,
        tariffs=[P1],
        buckets=[bucket(2, 2.5, 0.5, 4249, 1.2), bucket(3, 1.0, 1.0, 1700, None)],
    )
    # meter-b circuit c1: 2 Nov 0.25 kWh, all outside, 0.25 × 1,699.53 = 424.8825 → 425.
    meter_b = MeterReport(
        node="gw-01",
        device="meter-b",
        circuit="c1",
        total_kwh=0.25,
        total_cost_idr=425,
        total_off_hours_kwh=0.25,
        peak_kw=0.4,
        tariffs=[P1],
        buckets=[bucket(2, 0.25, 0.25, 425, 0.4), bucket(3, 0.0, 0.0, 0, None)],
    )
    # OPD: 3.75 kWh, 1.75 outside, 3.75 × 1,699.53 = 6,373.2375 → 6,373.
    return EnergyReportResponse(
        opd="dinkes",
        window="1d",
        timezone="Asia/Jakarta",
        start=datetime(2026, 11, 2, tzinfo=WIB),
        end=datetime(2026, 11, 4, tzinfo=WIB),
        office_hours="Monday-Thursday 07:30-16:00, Friday 07:30-16:30; weekends are outside office hours",
        total_kwh=3.75,
        total_cost_idr=6373,
        total_off_hours_kwh=1.75,
        totals=[
            ReportTotal(ts=0, time=datetime(2026, 11, 2, tzinfo=WIB), kwh=2.75, cost_idr=4674, off_hours_kwh=0.75),
            ReportTotal(ts=0, time=datetime(2026, 11, 3, tzinfo=WIB), kwh=1.0, cost_idr=1700, off_hours_kwh=1.0),
        ],
        tariffs=[P1],
        meters=[meter_a, meter_b],
    )


@pytest.fixture
def attendance():
    return attendance_table(november_recap(), "Dinas Kesehatan (dinkes)", GENERATED_AT)


@pytest.fixture
def energy():
    return energy_table(november_report(), "Dinas Kesehatan (dinkes)", date(2026, 11, 1), GENERATED_AT)


def by_header(table, row: list) -> dict:
    return {column.header: value for column, value in zip(table.columns, row)}


# Pure row building.


def test_month_name_indonesian():
    assert month_name(date(2026, 12, 1)) == "Desember 2026"
    assert month_name(date(2027, 1, 1)) == "Januari 2027"


def test_month_days_february_leap_year():
    assert len(month_days(date(2028, 2, 1))) == 29
    assert month_days(date(2026, 12, 1))[-1] == date(2026, 12, 31)


def test_attendance_table_headers(attendance):
    headers = [column.header for column in attendance.columns]
    assert headers[:10] == [
        "No",
        "NIP",
        "Hadir",
        "Terlambat",
        "Pulang Cepat",
        "Tidak Absen Pulang",
        "Tidak Hadir",
        "Absen Hari Libur",
        "Total Menit Terlambat",
        "Total Menit Pulang Cepat",
    ]
    assert headers[10:] == [str(day) for day in range(1, 31)]


def test_attendance_table_counts_hand_computed(attendance):
    row_a = by_header(attendance, attendance.rows[0])
    assert row_a["NIP"] == NIP_A
    assert [row_a[name] for name in ("Hadir", "Terlambat", "Pulang Cepat", "Tidak Absen Pulang", "Tidak Hadir")] == [1, 1, 1, 1, 1]
    assert row_a["Absen Hari Libur"] == 1

    row_b = by_header(attendance, attendance.rows[1])
    assert (row_b["Hadir"], row_b["Tidak Hadir"]) == (1, 4)


def test_attendance_table_minutes_hand_computed(attendance):
    row_a = by_header(attendance, attendance.rows[0])
    assert row_a["Total Menit Terlambat"] == 17
    assert row_a["Total Menit Pulang Cepat"] == 20


def test_attendance_table_day_codes(attendance):
    row_a = by_header(attendance, attendance.rows[0])
    # Sun 1 and Sat 7 are weekends, so "-" even for A's weekend punch; 9 November is still to come.
    assert [row_a[str(day)] for day in range(1, 10)] == ["-", "H", "T", "TAP", "PC", "A", "-", "-", ""]
    assert row_a["30"] == ""


def test_attendance_table_title_block(attendance):
    details = dict(attendance.details)
    assert details["OPD"] == "Dinas Kesehatan (dinkes)"
    assert details["Bulan"] == "November 2026"
    assert details["Zona waktu"] == "WIB (Asia/Jakarta)"
    assert details["Dibuat"] == "2026-11-07 09:15:30 WIB"
    assert details["Hari kerja"] == "21"


def test_energy_table_day_rows_hand_computed(energy):
    first = by_header(energy, energy.rows[0])
    assert first == {
        "Tanggal": date(2026, 11, 2),
        "Node": "gw-01",
        "Perangkat": "meter-a",
        "Sirkuit": "",
        "Pemakaian (kWh)": 2.5,
        "Di Luar Jam Kerja (kWh)": 0.5,
        "Daya Puncak (kW)": 1.2,
        "Biaya (Rp)": 4249,
        "Golongan Tarif": "P-1/TR",
    }
    second = by_header(energy, energy.rows[1])
    assert second["Daya Puncak (kW)"] is None


def test_energy_table_meter_total_row(energy):
    total_a = by_header(energy, energy.rows[2])
    assert total_a["Tanggal"] == "Total"
    assert total_a["Perangkat"] == "meter-a"
    assert (total_a["Pemakaian (kWh)"], total_a["Di Luar Jam Kerja (kWh)"], total_a["Biaya (Rp)"]) == (3.5, 1.5, 5948)
    assert total_a["Daya Puncak (kW)"] == 1.2


def test_energy_table_circuit_column(energy):
    assert by_header(energy, energy.rows[3])["Sirkuit"] == "c1"


def test_energy_table_opd_total_row(energy):
    total = by_header(energy, energy.rows[-1])
    assert total["Tanggal"] == "Total OPD"
    assert (total["Pemakaian (kWh)"], total["Di Luar Jam Kerja (kWh)"], total["Biaya (Rp)"]) == (3.75, 1.75, 6373)
    assert total["Daya Puncak (kW)"] is None


def test_energy_table_total_rows_marked(energy):
    # meter-a: 2 days and its total (index 2); meter-b: 2 days and its total (5); OPD total (6).
    assert energy.total_rows == {2, 5, 6}


# XLSX written and read back.


def reopen_xlsx(content: bytes):
    return openpyxl.load_workbook(io.BytesIO(content)).active


def header_row_number(sheet, first_header: str) -> int:
    return next(row[0].row for row in sheet.iter_rows() if row[0].value == first_header)


def test_xlsx_attendance_same_headers_and_numbers(attendance):
    sheet = reopen_xlsx(write_xlsx(attendance))
    header = header_row_number(sheet, "No")
    assert [cell.value for cell in sheet[header]] == [column.header for column in attendance.columns]

    values = [[cell.value for cell in sheet[header + 1 + index]] for index in range(len(attendance.rows))]
    # openpyxl reads an empty cell back as None.
    assert values == [[value if value != "" else None for value in row] for row in attendance.rows]


def test_xlsx_attendance_counts_are_numbers(attendance):
    sheet = reopen_xlsx(write_xlsx(attendance))
    hadir = sheet.cell(row=header_row_number(sheet, "No") + 1, column=3)
    assert hadir.data_type == "n"
    assert hadir.value == 1


def test_xlsx_nip_stays_text(attendance):
    sheet = reopen_xlsx(write_xlsx(attendance))
    nip = sheet.cell(row=header_row_number(sheet, "No") + 1, column=2)
    assert nip.data_type == "s"
    assert nip.value == NIP_A


def test_xlsx_title_block(attendance):
    sheet = reopen_xlsx(write_xlsx(attendance))
    assert sheet["A1"].value == "Rekap Kehadiran Pegawai"
    assert (sheet["A3"].value, sheet["B3"].value) == ("Bulan", "November 2026")


def test_xlsx_energy_same_numbers(energy):
    sheet = reopen_xlsx(write_xlsx(energy))
    header = header_row_number(sheet, "Tanggal")
    assert [cell.value for cell in sheet[header]] == [column.header for column in energy.columns]

    first = [cell.value for cell in sheet[header + 1]]
    assert first[0] == datetime(2026, 11, 2)
    assert first[4:8] == [2.5, 0.5, 1.2, 4249]
    opd_total = [cell.value for cell in sheet[header + len(energy.rows)]]
    assert opd_total[0] == "Total OPD"
    assert opd_total[4:8] == [3.75, 1.75, None, 6373]


def test_xlsx_energy_number_formats(energy):
    sheet = reopen_xlsx(write_xlsx(energy))
    first = sheet[header_row_number(sheet, "Tanggal") + 1]
    assert first[4].number_format == "0.000"
    assert first[6].number_format == "0.000"
    assert first[7].number_format == "#,##0"
    assert first[0].number_format == "yyyy-mm-dd"
    assert first[7].data_type == "n"


# CSV written and parsed back.


def parse_csv(content: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(content.decode("utf-8-sig"), newline="")))


def test_csv_starts_with_bom(energy):
    assert write_csv(energy).startswith(b"\xef\xbb\xbf")


def test_csv_attendance_parses_back(attendance):
    rows = parse_csv(write_csv(attendance))
    header = rows.index([column.header for column in attendance.columns])
    expected = [["" if value is None else str(value) for value in row] for row in attendance.rows]
    assert rows[header + 1 : header + 1 + len(expected)] == expected


def test_csv_energy_parses_back_with_three_decimals(energy):
    rows = parse_csv(write_csv(energy))
    header = rows.index([column.header for column in energy.columns])
    assert rows[header + 1] == ["2026-11-02", "gw-01", "meter-a", "", "2.500", "0.500", "1.200", "4249", "P-1/TR"]
    assert rows[header + len(energy.rows)] == ["Total OPD", "", "", "", "3.750", "1.750", "", "6373", "P-1/TR"]


def test_csv_numbers_parse_as_float(energy):
    rows = parse_csv(write_csv(energy))
    header = rows.index([column.header for column in energy.columns])
    meter_total = rows[header + 3]
    assert float(meter_total[4]) == 3.5
    assert int(meter_total[7]) == 5948


def test_csv_title_block(attendance):
    rows = parse_csv(write_csv(attendance))
    assert rows[0] == ["Rekap Kehadiran Pegawai"]
    assert ["Bulan", "November 2026"] in rows[:8]
