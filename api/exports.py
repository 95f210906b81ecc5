"""Monthly exports in the shape OPD staff hand upward: CSV and XLSX with Indonesian headers.

The module is pure: it turns an attendance recap or an energy report into a ``Table`` (a title
block, columns, rows and notes) and writes that table as CSV or XLSX bytes. The routes in
``api/routes/exports.py`` read the data and choose the format.

CSV files use ``,`` as the column separator, ``.`` as the decimal point, CRLF line ends (the
``csv`` module's ``excel`` dialect) and UTF-8 with a byte order mark, so that spreadsheet
programs read Indonesian text correctly. XLSX files store numbers as numbers with a number
format (``#,##0`` for Rupiah, ``0.000`` for kWh and kW) and dates as dates.
"""

import csv
import io
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from .attendance_recap import RecapStatus
from .routes.energy import EnergyReportResponse, MeterReport, TariffUsed
from .routes.recap import RecapResponse

MONTH_NAMES = (
    "Januari",
    "Februari",
    "Maret",
    "April",
    "Mei",
    "Juni",
    "Juli",
    "Agustus",
    "September",
    "Oktober",
    "November",
    "Desember",
)
"""Indonesian month names, January first."""

STATUS_CODES: dict[RecapStatus, str] = {
    RecapStatus.PRESENT: "H",
    RecapStatus.LATE: "T",
    RecapStatus.EARLY_LEAVE: "PC",
    RecapStatus.MISSING_CHECKOUT: "TAP",
    RecapStatus.ABSENT: "A",
}
"""Short code of each workday status in the day columns of the attendance export."""

NON_WORKDAY_CODE = "-"

# The same fixed hours as the energy report's `office_hours` text, in Indonesian.
ENERGY_OFFICE_HOURS = "Senin-Kamis 07.30-16.00, Jumat 07.30-16.30; Sabtu dan Minggu di luar jam kerja"

CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

Cell = str | int | float | date | None


class CellKind(StrEnum):
    """Value kind of a column, which sets its CSV text form and its XLSX number format."""

    TEXT = "text"
    COUNT = "count"
    KWH = "kwh"
    RUPIAH = "rupiah"
    DATE = "date"


_XLSX_FORMATS = {
    CellKind.COUNT: "0",
    CellKind.KWH: "0.000",
    CellKind.RUPIAH: "#,##0",
    CellKind.DATE: "yyyy-mm-dd",
}


@dataclass(frozen=True, slots=True)
class Column:
    """One column: Indonesian header, value kind and XLSX width in characters."""

    header: str
    kind: CellKind = CellKind.TEXT
    width: int = 12


@dataclass(slots=True)
class Table:
    """One sheet of an export: title block, header row, data rows and notes below them."""

    sheet_name: str
    title: str
    details: list[tuple[str, str]]
    columns: list[Column]
    rows: list[list[Cell]] = field(default_factory=list)
    total_rows: set[int] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)


def month_name(month_start: date) -> str:
    """Return the month of ``month_start`` in Indonesian, e.g. "Desember 2026"."""
    return f"{MONTH_NAMES[month_start.month - 1]} {month_start.year}"


def month_days(month_start: date) -> list[date]:
    """Return every date of the month that starts on ``month_start``."""
    days = []
    day = month_start
    while day.month == month_start.month:
        days.append(day)
        day += timedelta(days=1)
    return days


def attendance_table(recap: RecapResponse, opd_name: str, generated_at: datetime) -> Table:
    """Build the rekap kehadiran of one month: one row per employee (NIP), counts and day codes.

    The counts are the employee's counts in the recap, so every workday falls in exactly one of
    Hadir, Terlambat, Pulang Cepat, Tidak Absen Pulang and Tidak Hadir. The day columns hold the
    code of each date: ``-`` on a non-workday, even when the employee punched, and an empty cell
    on a workday that has not happened yet.

    The NIP column contains the employee's NIP when the OPD's employee list has it, else the
    pseudonym under which the punches are stored. A Nama column follows it when the list gives
    at least one name.
    """
    workday_by_date = {day.date: day.workday for day in recap.days}
    with_names = any(employee.name for employee in recap.employees)
    columns = [
        Column("No", CellKind.COUNT, 5),
        Column("NIP", CellKind.TEXT, 22),
        *([Column("Nama", CellKind.TEXT, 30)] if with_names else []),
        Column("Hadir", CellKind.COUNT, 8),
        Column("Terlambat", CellKind.COUNT, 10),
        Column("Pulang Cepat", CellKind.COUNT, 12),
        Column("Tidak Absen Pulang", CellKind.COUNT, 18),
        Column("Tidak Hadir", CellKind.COUNT, 11),
        Column("Absen Hari Libur", CellKind.COUNT, 16),
        Column("Total Menit Terlambat", CellKind.COUNT, 21),
        Column("Total Menit Pulang Cepat", CellKind.COUNT, 24),
        *(Column(str(day.day), CellKind.TEXT, 4) for day in workday_by_date),
    ]
    table = Table(
        sheet_name="Rekap Kehadiran",
        title="Rekap Kehadiran Pegawai",
        details=[
            ("OPD", opd_name),
            ("Bulan", month_name(recap.start)),
            ("Periode", f"{recap.start.isoformat()} s.d. {recap.end.isoformat()}"),
            ("Zona waktu", _zone_label(generated_at, recap.timezone)),
            ("Hari kerja", str(recap.workdays)),
            ("Dibuat", _generated_label(generated_at)),
        ],
        columns=columns,
        notes=[
            "Kode: H = Hadir, T = Terlambat, PC = Pulang Cepat, TAP = Tidak Absen Pulang, A = Tidak Hadir, "
            "- = bukan hari kerja (akhir pekan, hari libur nasional, cuti bersama); kosong = hari kerja yang belum lewat.",
            "Pegawai adalah yang memiliki absensi pada bulan ini. NIP berupa pseudonim 16 karakter heksadesimal "
            "bila daftar pegawai OPD belum memuat pegawai tersebut.",
        ],
    )

    for number, employee in enumerate(recap.employees, start=1):
        codes = {row.date: STATUS_CODES.get(row.status, NON_WORKDAY_CODE) for row in employee.rows}
        day_codes = [
            codes.get(day, "") if workday else NON_WORKDAY_CODE for day, workday in workday_by_date.items()
        ]
        counts = employee.counts
        table.rows.append(
            [
                number,
                employee.nip or employee.employee_id,
                *([employee.name or ""] if with_names else []),
                counts[RecapStatus.PRESENT],
                counts[RecapStatus.LATE],
                counts[RecapStatus.EARLY_LEAVE],
                counts[RecapStatus.MISSING_CHECKOUT],
                counts[RecapStatus.ABSENT],
                counts[RecapStatus.NON_WORKDAY],
                sum(row.minutes_late or 0 for row in employee.rows),
                sum(row.minutes_early or 0 for row in employee.rows),
                *day_codes,
            ]
        )
    return table


def energy_table(report: EnergyReportResponse, opd_name: str, month_start: date, generated_at: datetime) -> Table:
    """Build the laporan energi of one month from a report with daily windows.

    Each meter gets one row per day and a total row, and the last row is the OPD's total. The
    OPD total has no peak, because the meters' peaks need not fall at the same time.
    """
    columns = [
        Column("Tanggal", CellKind.DATE, 12),
        Column("Node", CellKind.TEXT, 12),
        Column("Perangkat", CellKind.TEXT, 16),
        Column("Sirkuit", CellKind.TEXT, 10),
        Column("Pemakaian (kWh)", CellKind.KWH, 16),
        Column("Di Luar Jam Kerja (kWh)", CellKind.KWH, 23),
        Column("Daya Puncak (kW)", CellKind.KWH, 16),
        Column("Biaya (Rp)", CellKind.RUPIAH, 14),
        Column("Golongan Tarif", CellKind.TEXT, 16),
    ]
    table = Table(
        sheet_name="Laporan Energi",
        title="Laporan Pemakaian Energi Listrik",
        details=[
            ("OPD", opd_name),
            ("Bulan", month_name(month_start)),
            ("Zona waktu", _zone_label(generated_at, report.timezone)),
            ("Jam kerja", ENERGY_OFFICE_HOURS),
            ("Tarif", "; ".join(_tariff_label(tariff) for tariff in report.tariffs) or "-"),
            ("Dibuat", _generated_label(generated_at)),
        ],
        columns=columns,
        notes=[
            "Biaya dijumlahkan sebelum dibulatkan ke rupiah, sehingga total dapat berbeda beberapa rupiah "
            "dari jumlah biaya harian yang sudah dibulatkan.",
            "Total OPD tidak memiliki daya puncak, karena puncak tiap meter tidak terjadi pada waktu yang sama.",
        ],
    )

    for meter in report.meters:
        table.rows.extend(_meter_day_rows(meter))
        table.total_rows.add(len(table.rows))
        table.rows.append(
            [
                "Total",
                meter.node,
                meter.device,
                meter.circuit or "",
                meter.total_kwh,
                meter.total_off_hours_kwh,
                meter.peak_kw,
                meter.total_cost_idr,
                ", ".join(dict.fromkeys(tariff.tariff_class for tariff in meter.tariffs)),
            ]
        )

    table.total_rows.add(len(table.rows))
    table.rows.append(
        [
            "Total OPD",
            "",
            "",
            "",
            report.total_kwh,
            report.total_off_hours_kwh,
            None,
            report.total_cost_idr,
            ", ".join(dict.fromkeys(tariff.tariff_class for tariff in report.tariffs)),
        ]
    )
    return table


def write_csv(table: Table) -> bytes:
    """Write ``table`` as UTF-8 CSV with a byte order mark, ``,`` separator and ``.`` decimal point."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)

    writer.writerow([table.title])
    for label, value in table.details:
        writer.writerow([label, value])
    writer.writerow([])

    writer.writerow([column.header for column in table.columns])
    for row in table.rows:
        writer.writerow([_csv_text(value, column.kind) for value, column in zip(row, table.columns)])

    writer.writerow([])
    for note in table.notes:
        writer.writerow([note])
    return buffer.getvalue().encode("utf-8-sig")


def write_xlsx(table: Table) -> bytes:
    """Write ``table`` as an XLSX workbook of one sheet, numbers stored as numbers."""
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = table.sheet_name
    bold = Font(bold=True)

    sheet.append([table.title])
    sheet.cell(row=1, column=1).font = Font(bold=True, size=14)
    for label, value in table.details:
        sheet.append([label, value])
        sheet.cell(row=sheet.max_row, column=1).font = bold
    sheet.append([])

    sheet.append([column.header for column in table.columns])
    header_row = sheet.max_row
    for cell in sheet[header_row]:
        cell.font = bold
    # A coordinate, not sheet.cell(), because creating a cell would move the next append down a row.
    sheet.freeze_panes = f"A{header_row + 1}"

    for index, row in enumerate(table.rows):
        sheet.append(row)
        for cell, column in zip(sheet[sheet.max_row], table.columns):
            number_format = _XLSX_FORMATS.get(column.kind)
            # A text cell in a number column (the "Total" label under Tanggal) keeps the default format.
            if number_format and isinstance(cell.value, (int, float, datetime, date)):
                cell.number_format = number_format
            if index in table.total_rows:
                cell.font = bold

    sheet.append([])
    for note in table.notes:
        sheet.append([note])

    for position, column in enumerate(table.columns, start=1):
        sheet.column_dimensions[get_column_letter(position)].width = column.width

    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _meter_day_rows(meter: MeterReport) -> list[list[Cell]]:
    rows: list[list[Cell]] = []
    for bucket in meter.buckets:
        day = bucket.time.date()
        rows.append(
            [
                day,
                meter.node,
                meter.device,
                meter.circuit or "",
                bucket.kwh,
                bucket.off_hours_kwh,
                bucket.peak_kw,
                bucket.cost_idr,
                _tariff_class_on(meter.tariffs, day),
            ]
        )
    return rows


def _tariff_class_on(tariffs: list[TariffUsed], day: date) -> str:
    """Return the class of the latest of ``tariffs`` in effect on ``day``, sorted oldest first.

    NOTE: the report lists only the tariffs that priced some energy, so a day without energy
    before the meter's first priced tariff shows that first tariff's class.
    """
    effective = [tariff for tariff in tariffs if tariff.effective_from <= day]
    if effective:
        return effective[-1].tariff_class
    return tariffs[0].tariff_class if tariffs else ""


def _tariff_label(tariff: TariffUsed) -> str:
    return f"{tariff.tariff_class} Rp {tariff.idr_per_kwh:.2f}/kWh sejak {tariff.effective_from.isoformat()}"


def _zone_label(moment: datetime, zone_name: str) -> str:
    abbreviation = moment.tzname()
    return f"{abbreviation} ({zone_name})" if abbreviation and abbreviation != zone_name else zone_name


def _generated_label(moment: datetime) -> str:
    return f"{moment.strftime('%Y-%m-%d %H:%M:%S')} {moment.tzname() or ''}".strip()


def _csv_text(value: Cell, kind: CellKind) -> str:
    if value is None:
        return ""
    if kind is CellKind.KWH and isinstance(value, (int, float)):
        return f"{value:.3f}"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)
