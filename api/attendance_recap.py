"""Attendance recap (rekap kehadiran): one status per employee and local day, and counts.

Rules:

- Days are local dates in the deployment's zone, never UTC dates. In WIB (UTC+7) a punch at
  23:30 and one at 00:30 fall on two days although both are on the same UTC date.
- Punches of one employee less than ``rescan_window_s`` (default 300 s) after the last counted
  punch are a re-scan and count once. Terminals often take a finger twice.
- The first counted punch of a day is the check-in and the last is the check-out, whatever
  punch state (in, out, break_out...) the terminal reported, because employees often press
  the wrong key. A single punch is the check-in and has no check-out.
- Times are compared with office hours in whole minutes, seconds dropped, as the terminal's
  clock shows them. A check-in at 07:30:59 is on time for a 07:30 start and one at 07:31:00 is
  one minute late. A check-out at 15:59:30 is one minute early for a 16:00 end.
- The status of an employee's workday is the first that applies: ``absent`` (no punch),
  ``missing_checkout`` (one punch), ``late`` (check-in after the start), ``early_leave``
  (check-out before the end), else ``present``. ``minutes_late`` and ``minutes_early`` are
  reported whatever the status, so a late check-in that also left early shows both.
- On a non-workday an employee with punches gets a ``non_workday`` row, and one without gets
  no row. No employee is absent on a non-workday.
- The employees of an OPD are those with at least one punch in the requested range, because
  the platform has no staff register. An employee with no punch at all in the range is missing
  from the recap, and a new employee counts as absent on the days before their first punch.
- Workdays after ``today`` get no absent rows, because they have not happened yet. Today is
  recapped as it stands, so an employee who has only checked in shows ``missing_checkout``.
"""

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from .office_hours import DayInfo


class RecapStatus(StrEnum):
    """Attendance status of one employee on one local day."""

    PRESENT = "present"
    LATE = "late"
    EARLY_LEAVE = "early_leave"
    MISSING_CHECKOUT = "missing_checkout"
    ABSENT = "absent"
    NON_WORKDAY = "non_workday"


@dataclass(frozen=True, slots=True)
class Punch:
    """One stored punch: UTC epoch milliseconds and the employee id."""

    ts: int
    employee_id: str


@dataclass(frozen=True, slots=True)
class EmployeeDay:
    """One employee on one local day; minutes are None where they do not apply."""

    day: date
    status: RecapStatus
    check_in: datetime | None = None
    check_out: datetime | None = None
    minutes_late: int | None = None
    minutes_early: int | None = None
    punch_count: int = 0


@dataclass(slots=True)
class DayRecap:
    """One local day: the calendar's verdict and the number of employees per status."""

    info: DayInfo
    counts: Counter = field(default_factory=Counter)


@dataclass(slots=True)
class Recap:
    """Recap of a date range: days in order, rows per employee id, counts over everything."""

    days: list[DayRecap]
    employees: dict[str, list[EmployeeDay]]
    totals: Counter


def compute_recap(
    punches: Iterable[Punch],
    first_day: date,
    last_day: date,
    zone: ZoneInfo,
    day_info: Callable[[date], DayInfo],
    rescan_window_s: int,
    today: date,
) -> Recap:
    """Compute the recap of ``first_day`` to ``last_day`` inclusive from ``punches``.

    ``day_info`` is the OPD's calendar. Punches outside the range are ignored.
    """
    by_employee_day = _group_by_employee_day(punches, zone, first_day, last_day)
    employee_ids = sorted({employee for employee, _ in by_employee_day})

    days = []
    rows: dict[str, list[EmployeeDay]] = {employee: [] for employee in employee_ids}
    totals: Counter = Counter()
    day = first_day
    while day <= last_day:
        info = day_info(day)
        day_recap = DayRecap(info)
        for employee in employee_ids:
            times = remove_rescans(by_employee_day.get((employee, day), []), rescan_window_s)
            row = recap_employee_day(info, times, is_future=day > today)
            if row is None:
                continue
            rows[employee].append(row)
            day_recap.counts[row.status] += 1
            totals[row.status] += 1
        days.append(day_recap)
        day += timedelta(days=1)
    return Recap(days=days, employees=rows, totals=totals)


def remove_rescans(times: list[datetime], rescan_window_s: int) -> list[datetime]:
    """Drop each time less than ``rescan_window_s`` after the last kept one; ``times`` are sorted.

    Comparing with the last kept time, not the previous one, stops a chain of scans a few
    minutes apart from merging into one long re-scan.
    """
    kept: list[datetime] = []
    window = timedelta(seconds=rescan_window_s)
    for moment in times:
        if kept and moment - kept[-1] < window:
            continue
        kept.append(moment)
    return kept


def recap_employee_day(info: DayInfo, times: list[datetime], is_future: bool = False) -> EmployeeDay | None:
    """Return the row of one employee on one day from the counted punch times, sorted.

    Returns None when there is no row: a non-workday without punches, or a future workday
    without punches.
    """
    if not times:
        if info.schedule is None or is_future:
            return None
        return EmployeeDay(day=info.day, status=RecapStatus.ABSENT)

    check_in = times[0]
    check_out = times[-1] if len(times) > 1 else None
    if info.schedule is None:
        return EmployeeDay(info.day, RecapStatus.NON_WORKDAY, check_in, check_out, punch_count=len(times))

    minutes_late = max(0, _minutes(_wall_minute(check_in)) - _minutes(info.schedule.start))
    minutes_early = None
    if check_out is not None:
        minutes_early = max(0, _minutes(info.schedule.end) - _minutes(_wall_minute(check_out)))

    if check_out is None:
        status = RecapStatus.MISSING_CHECKOUT
    elif minutes_late > 0:
        status = RecapStatus.LATE
    elif minutes_early:
        status = RecapStatus.EARLY_LEAVE
    else:
        status = RecapStatus.PRESENT
    return EmployeeDay(info.day, status, check_in, check_out, minutes_late, minutes_early, len(times))


def _group_by_employee_day(
    punches: Iterable[Punch], zone: ZoneInfo, first_day: date, last_day: date
) -> dict[tuple[str, date], list[datetime]]:
    """Return the sorted local times of each employee's punches per local date."""
    grouped: dict[tuple[str, date], list[datetime]] = defaultdict(list)
    for punch in punches:
        moment = datetime.fromtimestamp(punch.ts / 1000, tz=zone)
        if first_day <= moment.date() <= last_day:
            grouped[(punch.employee_id, moment.date())].append(moment)
    for times in grouped.values():
        times.sort()
    return grouped


def _wall_minute(moment: datetime) -> time:
    return moment.time().replace(second=0, microsecond=0)


def _minutes(value: time) -> int:
    return value.hour * 60 + value.minute
