"""Monthly exports of an OPD as CSV or XLSX files: rekap kehadiran and laporan energi."""

import re
from datetime import date, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from ..deps import AppContext, OpdPath, ensure_known_opd, get_context
from ..errors import ApiError
from ..exports import CSV_MEDIA_TYPE, XLSX_MEDIA_TYPE, Table, attendance_table, energy_table, write_csv, write_xlsx
from ..office_hours import OfficeHours
from ..params import TimeRange
from ..timewindows import WINDOWS, local_day_bounds
from .energy import build_energy_report
from ..security.audit import record
from ..security.context import SecurityContext
from ..security.deps import current_principal, get_security
from ..security.principals import Principal
from .recap import build_recap, get_office_hours, with_identities

router = APIRouter(prefix="/api/v1/opds/{opd}/exports", tags=["exports"])

FORMATS = {"csv": CSV_MEDIA_TYPE, "xlsx": XLSX_MEDIA_TYPE}
"""Media type of each export format."""

_MONTH_PATTERN = re.compile(r"(\d{4})-(\d{2})")

MonthQuery = Query(description="Local month, YYYY-MM, e.g. 2026-11")
FormatQuery = Query(alias="format", description="File format: csv or xlsx")

_FILE_RESPONSES = {
    200: {
        "description": "The export as a file download",
        "content": {media_type: {} for media_type in FORMATS.values()},
    }
}


@router.get("/attendance", response_class=Response, responses=_FILE_RESPONSES)
async def export_attendance(
    context: Annotated[AppContext, Depends(get_context)],
    office_hours: Annotated[OfficeHours, Depends(get_office_hours)],
    security: Annotated[SecurityContext, Depends(get_security)],
    principal: Annotated[Principal, Depends(current_principal)],
    opd: Annotated[str, OpdPath],
    month: Annotated[str, MonthQuery],
    file_format: Annotated[str, FormatQuery] = "xlsx",
) -> Response:
    """Download the attendance recap of one local month: one row per employee (NIP).

    Columns are the status counts of `/attendance/recap` and the total minutes late and early.
    Then each date has a column with a code: H present, T late, PC early leave, TAP missing
    check-out, A absent, `-` non-workday, empty for a workday still to come. CSV uses `,` as
    separator and `.` as decimal point, and is UTF-8 with BOM.

    The file contains personal data: only admin and the OPD's facility_manager may download it,
    and each download is written to the audit log. The NIP column shows the NIP from the OPD's
    employee list, else the pseudonym, and a Nama column is added when names are known.
    """
    principal.require_personal_data(opd)
    await ensure_known_opd(context, opd)
    month_start = parse_month(month)
    media_type = _media_type(file_format)

    generated_at = datetime.now(context.zone)
    last_day = _next_month(month_start) - timedelta(days=1)
    recap = await build_recap(context, office_hours, opd, month_start, last_day, generated_at.date())
    recap = await with_identities(security, opd, recap)
    await record(
        security.sessions,
        principal.actor,
        "personal_data.export",
        f"opd:{opd}/exports/attendance",
        month=month,
        format=file_format,
        employees=recap.employee_count,
    )

    table = attendance_table(recap, _opd_name(context, opd), generated_at)
    return _file_response(table, file_format, media_type, f"rekap-kehadiran-{opd}-{month}")


@router.get("/energy", response_class=Response, responses=_FILE_RESPONSES)
async def export_energy(
    context: Annotated[AppContext, Depends(get_context)],
    opd: Annotated[str, OpdPath],
    month: Annotated[str, MonthQuery],
    file_format: Annotated[str, FormatQuery] = "xlsx",
) -> Response:
    """Download the energy report of one local month: one row per meter and day, with totals.

    Values are those of `/energy/report` with `window=1d` over the month: kWh, kWh outside
    office hours, peak kW, cost in Rupiah and tariff class. Each meter has a total row, and the
    last row is the OPD total. CSV uses `,` and `.` and is UTF-8 with BOM.
    """
    await ensure_known_opd(context, opd)
    month_start = parse_month(month)
    media_type = _media_type(file_format)

    generated_at = datetime.now(context.zone)
    range_start, _ = local_day_bounds(month_start, context.zone)
    range_end, _ = local_day_bounds(_next_month(month_start), context.zone)
    report = await build_energy_report(context, opd, TimeRange(WINDOWS["1d"], range_start, range_end))

    table = energy_table(report, _opd_name(context, opd), month_start, generated_at)
    return _file_response(table, file_format, media_type, f"laporan-energi-{opd}-{month}")


def parse_month(text: str) -> date:
    """Return the first day of month ``text``, YYYY-MM between the years 2000 and 2100.

    Raises:
        ApiError: 422 ``invalid_month`` naming the parameter ``month``.
    """
    match = _MONTH_PATTERN.fullmatch(text)
    if match is None:
        raise ApiError(422, "invalid_month", parameter="month", value=text)

    year, month = int(match[1]), int(match[2])
    if not 2000 <= year <= 2100 or not 1 <= month <= 12:
        raise ApiError(422, "invalid_month", parameter="month", value=text)
    return date(year, month, 1)


def _next_month(month_start: date) -> date:
    if month_start.month == 12:
        return date(month_start.year + 1, 1, 1)
    return date(month_start.year, month_start.month + 1, 1)


def _media_type(file_format: str) -> str:
    media_type = FORMATS.get(file_format)
    if media_type is None:
        raise ApiError(422, "invalid_export_format", parameter="format", value=file_format, choices=", ".join(FORMATS))
    return media_type


def _opd_name(context: AppContext, opd: str) -> str:
    """Return the OPD's catalogue name with its id; an OPD known only from its data shows its id."""
    entry = context.catalogue.opd(opd)
    return f"{entry.name} ({opd})" if entry is not None else opd


def _file_response(table: Table, file_format: str, media_type: str, stem: str) -> Response:
    content = write_csv(table) if file_format == "csv" else write_xlsx(table)
    # The OPD id matches the contract's id pattern, so the file name needs no quoting.
    headers = {"Content-Disposition": f'attachment; filename="{stem}.{file_format}"'}
    return Response(content, media_type=media_type, headers=headers)
