"""Attendance recap (rekap kehadiran) of one OPD: statuses per employee and local day."""

from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from ..attendance_recap import EmployeeDay, Punch, RecapStatus, compute_recap
from ..deps import AppContext, OpdPath, ensure_known_opd, get_context
from ..errors import ApiError
from ..influx import quote_ident, quote_string
from ..office_hours import NonWorkdayReason, OfficeHours
from ..security.audit import record
from ..security.context import SecurityContext
from ..security.deps import current_principal, get_security, in_registry
from ..security.employees import read_identities
from ..security.principals import Principal
from ..timewindows import local_day_bounds, to_epoch_ms

router = APIRouter(prefix="/api/v1/opds/{opd}", tags=["attendance"])

MAX_RECAP_DAYS = 62
"""Maximum range of one recap, days: two calendar months."""

_MAX_PUNCHES = 200_000

StatusCounts = dict[RecapStatus, int]


class RecapDay(BaseModel):
    """One local day of the range: workday or not, and employees per status."""

    date: date
    workday: bool
    reason: NonWorkdayReason | None = Field(description="Reason the day is no workday; null on a workday")
    reason_name: str | None = Field(
        description="Name of the national holiday (from the `holidays` package, in English) or of the cuti bersama day"
    )
    ramadan: bool = Field(description="True inside a configured Ramadan period, when Ramadan hours apply")
    office_start: str | None = Field(description="Opening time on a workday, HH:MM local time")
    office_end: str | None = Field(description="Closing time on a workday, HH:MM local time")
    counts: StatusCounts = Field(description="Employees per status; every status is listed, 0 included")


class RecapRow(BaseModel):
    """One employee on one day."""

    date: date
    check_in: datetime | None = Field(description="First counted punch of the local day")
    check_out: datetime | None = Field(description="Last counted punch; null when the day has one punch")
    minutes_late: int | None = Field(description="Whole minutes of check-in after opening; null on a non-workday")
    minutes_early: int | None = Field(description="Whole minutes of check-out before closing; null without check-out")
    punch_count: int = Field(description="Punches counted, re-scans left out")
    status: RecapStatus


class EmployeeRecap(BaseModel):
    """Rows of one employee, one per workday and per non-workday with punches."""

    employee_id: str = Field(description="Keyed pseudonym of the id the terminal sent (see docs/security.md)")
    nip: str | None = Field(None, description="NIP from the OPD's employee list; null when not imported")
    name: str | None = Field(None, description="Name from the OPD's employee list; null when not imported")
    counts: StatusCounts
    rows: list[RecapRow]


class RecapResponse(BaseModel):
    """Attendance recap of an OPD over a range of local dates."""

    opd: str
    timezone: str
    start: date
    end: date = Field(description="Last date of the range, inclusive")
    rescan_window_s: int = Field(description="Punches closer than this to the last counted one are a re-scan, s")
    workdays: int = Field(description="Workdays in the range")
    employee_count: int = Field(description="Employees with at least one punch in the range")
    totals: StatusCounts = Field(description="Rows per status over the whole range")
    days: list[RecapDay]
    employees_shown: bool = Field(
        True,
        description="False when the caller's role gets counts only (leadership, integration): `employees` is then empty",
    )
    employees: list[EmployeeRecap]


def get_office_hours(request: Request) -> OfficeHours:
    """Return the office hours loaded at start-up."""
    return request.app.state.office_hours


@router.get("/attendance/recap", response_model=RecapResponse)
async def read_attendance_recap(
    context: Annotated[AppContext, Depends(get_context)],
    office_hours: Annotated[OfficeHours, Depends(get_office_hours)],
    security: Annotated[SecurityContext, Depends(get_security)],
    principal: Annotated[Principal, Depends(current_principal)],
    opd: Annotated[str, OpdPath],
    start: Annotated[
        str | None, Query(description="First local date, YYYY-MM-DD; default the first day of the month of `end`")
    ] = None,
    end: Annotated[str | None, Query(description="Last local date, YYYY-MM-DD, inclusive; default today")] = None,
) -> RecapResponse:
    """Return the attendance recap of the OPD: per day, per employee and in total, at most 62 days.

    Days are local dates in the deployment's zone. The first punch of an employee's day is the
    check-in and the last the check-out, whatever punch state the terminal reported, and punches
    within `rescan_window_s` of the last counted one count once. Status: `absent` (no punch on a
    workday), `missing_checkout` (one punch), `late` (check-in one minute or more after opening),
    `early_leave` (check-out before closing), else `present`, the first that applies. Days that
    are weekends, national holidays or cuti bersama are no workdays: punches on them give
    `non_workday` rows, and no employee is absent. The employees are those with a punch in the range,
    because the platform has no staff register. Future workdays have no absent rows.

    Per-employee rows are personal data: admin and the OPD's facility_manager get them, with NIP
    and name from the OPD's employee list, and the view is written to the audit log. For
    leadership and integration tokens `employees` is empty and `employees_shown` false; the
    counts per day and in total stay.
    """
    await ensure_known_opd(context, opd)
    today = datetime.now(context.zone).date()
    first_day, last_day = _resolve_days(start, end, today)
    recap = await build_recap(context, office_hours, opd, first_day, last_day, today)

    if not principal.may_see_personal_data(opd):
        return recap.model_copy(update={"employees": [], "employees_shown": False})
    recap = await with_identities(security, opd, recap)
    await record(
        security.sessions,
        principal.actor,
        "personal_data.view",
        f"opd:{opd}/attendance/recap",
        start=first_day.isoformat(),
        end=last_day.isoformat(),
        employees=recap.employee_count,
    )
    return recap


async def with_identities(security: SecurityContext, opd: str, recap: RecapResponse) -> RecapResponse:
    """Return ``recap`` with the NIP and name of each employee the OPD's employee list has."""
    identities = await in_registry(read_identities, security.sessions, opd)
    if not identities:
        return recap
    employees = []
    for employee in recap.employees:
        identity = identities.get(employee.employee_id)
        if identity is not None:
            employee = employee.model_copy(update={"nip": identity.nip, "name": identity.name})
        employees.append(employee)
    return recap.model_copy(update={"employees": employees})


async def build_recap(
    context: AppContext, office_hours: OfficeHours, opd: str, first_day: date, last_day: date, today: date
) -> RecapResponse:
    """Read the OPD's punches and compute the recap of ``first_day`` to ``last_day`` inclusive.

    The caller checks the OPD and the range. Workdays after ``today`` get no absent rows.

    Raises:
        ApiError: 422 when the range contains more than ``_MAX_PUNCHES`` punches.
        Unavailable: 503 when InfluxDB cannot be reached.
    """
    punches = await _read_punches(context, opd, first_day, last_day)
    calendar = office_hours.calendar(opd)
    recap = compute_recap(
        punches, first_day, last_day, context.zone, calendar.day_info, office_hours.rescan_window_s, today
    )

    days = [
        RecapDay(
            date=day.info.day,
            workday=day.info.workday,
            reason=day.info.reason,
            reason_name=day.info.reason_name,
            ramadan=day.info.ramadan,
            office_start=day.info.schedule.start.strftime("%H:%M") if day.info.schedule else None,
            office_end=day.info.schedule.end.strftime("%H:%M") if day.info.schedule else None,
            counts=_all_statuses(day.counts),
        )
        for day in recap.days
    ]
    employees = [
        EmployeeRecap(
            employee_id=employee,
            counts=_all_statuses({status: sum(row.status is status for row in rows) for status in RecapStatus}),
            rows=[_row(row) for row in rows],
        )
        for employee, rows in recap.employees.items()
    ]
    return RecapResponse(
        opd=opd,
        timezone=context.settings.timezone,
        start=first_day,
        end=last_day,
        rescan_window_s=office_hours.rescan_window_s,
        workdays=sum(day.workday for day in days),
        employee_count=len(employees),
        totals=_all_statuses(recap.totals),
        days=days,
        employees=employees,
    )


def _resolve_days(start: str | None, end: str | None, today: date) -> tuple[date, date]:
    """Validate ``start`` and ``end``; by default the range is the current month up to today.

    Raises:
        ApiError: 422 naming the parameter: invalid date, ``end`` before ``start``, or more
            than ``MAX_RECAP_DAYS`` days.
    """
    last_day = _parse_day("end", end) if end else today
    first_day = _parse_day("start", start) if start else last_day.replace(day=1)
    if last_day < first_day:
        raise ApiError(422, "day_range_order", parameter="end", start=first_day, end=last_day)

    days = (last_day - first_day).days + 1
    if days > MAX_RECAP_DAYS:
        raise ApiError(
            422, "day_range_too_long", parameter="end", start=first_day, end=last_day, days=days, limit=MAX_RECAP_DAYS
        )
    return first_day, last_day


def _parse_day(name: str, text: str) -> date:
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise ApiError(422, "invalid_day", parameter=name, name=name, value=text) from None
    # date.fromisoformat also takes 20261204 and 2026-W49-5; the recap documents YYYY-MM-DD only.
    if len(text) != 10 or not 2000 <= day.year <= 2100:
        raise ApiError(422, "invalid_day", parameter=name, name=name, value=text)
    return day


async def _read_punches(context: AppContext, opd: str, first_day: date, last_day: date) -> list[Punch]:
    """Read the OPD's punches from local midnight of ``first_day`` to the midnight after ``last_day``."""
    range_start, _ = local_day_bounds(first_day, context.zone)
    _, range_end = local_day_bounds(last_day, context.zone)
    statement = (
        f"SELECT {quote_ident('employee_id')} FROM {quote_ident('attendance')} "
        f"WHERE {quote_ident('opd')} = {quote_string(opd)} "
        f"AND time >= {to_epoch_ms(range_start)}ms AND time < {to_epoch_ms(range_end)}ms "
        f"ORDER BY time ASC LIMIT {_MAX_PUNCHES + 1}"
    )
    answers = await context.reader.query(statement)

    punches = [Punch(row["time"], row["employee_id"]) for series in answers[0] for row in series.rows]
    if len(punches) > _MAX_PUNCHES:
        raise ApiError(422, "too_many_punches", parameter="end", start=first_day, end=last_day, limit=_MAX_PUNCHES)
    return punches


def _all_statuses(counts) -> StatusCounts:
    return {status: counts.get(status, 0) for status in RecapStatus}


def _row(row: EmployeeDay) -> RecapRow:
    return RecapRow(
        date=row.day,
        check_in=row.check_in,
        check_out=row.check_out,
        minutes_late=row.minutes_late,
        minutes_early=row.minutes_early,
        punch_count=row.punch_count,
        status=row.status,
    )
