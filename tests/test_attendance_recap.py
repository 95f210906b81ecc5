"""Attendance recap and workday calendar without servers: every expected value is hand-computed.

Dates: 2026-05-11 is a Monday, 2026-05-14 (Thursday) is Ascension Day, 2026-05-15 (Friday) is
cuti bersama in config/office_hours.yaml, 2026-08-17 (Monday) is Independence Day, and
2026-03-02 (Monday) lies in the configured Ramadan 2026 period.
"""

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import holidays
import pytest

from api.attendance_recap import Punch, RecapStatus, compute_recap, recap_employee_day, remove_rescans
from api.config import DEFAULT_OFFICE_HOURS
from api.office_hours import (
    DaySchedule,
    NonWorkdayReason,
    OfficeHours,
    OfficeHoursError,
    WEEKDAYS,
    load_office_hours,
)

WIB = ZoneInfo("Asia/Jakarta")
OFFICE_HOURS = load_office_hours(DEFAULT_OFFICE_HOURS)
CALENDAR = OFFICE_HOURS.calendar("any-opd")


def wib(day: str, hour: int, minute: int, second: int = 0) -> datetime:
    return datetime.combine(date.fromisoformat(day), time(hour, minute, second), tzinfo=WIB)


def ms(day: str, hour: int, minute: int, second: int = 0) -> int:
    return int(wib(day, hour, minute, second).timestamp() * 1000)


def test_regular_week_sums_to_37_5_hours():
    # Mon-Thu (8.5 h - 1 h) * 4 = 30 h, Fri 9 h - 1.5 h = 7.5 h.
    assert sum(schedule.working_minutes for schedule in OFFICE_HOURS.regular.values()) == 37.5 * 60


def test_regular_week_is_monday_to_friday():
    assert set(OFFICE_HOURS.regular) == set(WEEKDAYS[:5])


def test_regular_friday_has_longer_break():
    friday = OFFICE_HOURS.regular["friday"]
    assert (friday.start, friday.end) == (time(7, 30), time(16, 30))
    assert (friday.break_start, friday.break_end) == (time(11, 30), time(13, 0))


def test_ramadan_week_sums_to_32_5_hours():
    # Mon-Thu (7 h - 0.5 h) * 4 = 26 h, Fri 7.5 h - 1 h = 6.5 h.
    assert sum(schedule.working_minutes for schedule in OFFICE_HOURS.ramadan.values()) == 32.5 * 60


# (date, workday, reason, reason name, opening time)
CALENDAR_CASES = [
    ("2026-05-11", True, None, None, time(7, 30)),
    ("2026-05-14", False, NonWorkdayReason.HOLIDAY, "Ascension Day", None),
    ("2026-05-15", False, NonWorkdayReason.CUTI_BERSAMA, "Cuti bersama Kenaikan Yesus Kristus", None),
    ("2026-05-16", False, NonWorkdayReason.WEEKEND, None, None),
    ("2026-05-17", False, NonWorkdayReason.WEEKEND, None, None),
    ("2026-08-17", False, NonWorkdayReason.HOLIDAY, "Independence Day", None),
    ("2026-03-02", True, None, None, time(8, 0)),
    ("2026-03-21", False, NonWorkdayReason.HOLIDAY, "Eid al-Fitr", None),
]


@pytest.mark.parametrize(("day", "workday", "reason", "name", "opening"), CALENDAR_CASES, ids=[c[0] for c in CALENDAR_CASES])
def test_day_info_matches_calendar(day, workday, reason, name, opening):
    info = CALENDAR.day_info(date.fromisoformat(day))
    assert info.workday is workday
    assert info.reason == reason
    assert info.reason_name == name
    assert (info.schedule.start if info.schedule else None) == opening


def test_independence_day_is_national_holiday_in_package():
    assert holidays.country_holidays("ID", years=2026).get(date(2026, 8, 17)) == "Independence Day"


def test_day_info_ramadan_flag_inside_period():
    assert CALENDAR.day_info(date(2026, 3, 2)).ramadan is True
    assert CALENDAR.day_info(date(2026, 4, 6)).ramadan is False


def test_calendar_uses_opd_week_override():
    saturday = {"start": "07:30", "end": "12:00"}
    hours = OfficeHours.model_validate(
        {**OFFICE_HOURS.model_dump(), "opds": {"puskesmas": {"regular": {**OFFICE_HOURS.model_dump()["regular"], "saturday": saturday}}}}
    )
    assert hours.calendar("puskesmas").day_info(date(2026, 5, 16)).workday is True
    assert hours.calendar("setda").day_info(date(2026, 5, 16)).workday is False


def test_day_schedule_rejects_break_outside_hours():
    with pytest.raises(ValueError):
        DaySchedule(start=time(7, 30), end=time(16, 0), break_start=time(6, 0), break_end=time(7, 0))


def test_load_office_hours_names_file_on_bad_yaml(tmp_path):
    path = tmp_path / "hours.yaml"
    path.write_text("regular: {monday: {start: '09:00', end: '08:00'}}\nramadan: {}\n")
    with pytest.raises(OfficeHoursError, match="hours.yaml"):
        load_office_hours(path)


def test_remove_rescans_keeps_first_of_burst():
    times = [wib("2026-05-11", 7, 20), wib("2026-05-11", 7, 20, 2), wib("2026-05-11", 7, 24, 59), wib("2026-05-11", 7, 25)]
    # 07:20:02 and 07:24:59 are under 300 s after 07:20:00; 07:25:00 is exactly 300 s after it.
    assert remove_rescans(times, 300) == [wib("2026-05-11", 7, 20), wib("2026-05-11", 7, 25)]


MONDAY = CALENDAR.day_info(date(2026, 5, 11))  # 07:30-16:00
FRIDAY = CALENDAR.day_info(date(2026, 5, 8))  # 07:30-16:30
RAMADAN_MONDAY = CALENDAR.day_info(date(2026, 3, 2))  # 08:00-15:00
HOLIDAY = CALENDAR.day_info(date(2026, 5, 14))

# (id, day info, punch times as (h, m, s), status, minutes late, minutes early)
ROW_CASES = [
    ("on-time-at-opening", MONDAY, [(7, 30, 0), (16, 0, 0)], RecapStatus.PRESENT, 0, 0),
    ("opening-minute-seconds-not-late", MONDAY, [(7, 30, 59), (16, 0, 0)], RecapStatus.PRESENT, 0, 0),
    ("one-minute-late", MONDAY, [(7, 31, 0), (16, 0, 0)], RecapStatus.LATE, 1, 0),
    ("early-leave-30-min", MONDAY, [(7, 25, 0), (15, 30, 0)], RecapStatus.EARLY_LEAVE, 0, 30),
    ("early-by-seconds-is-one-minute", MONDAY, [(7, 25, 0), (15, 59, 30)], RecapStatus.EARLY_LEAVE, 0, 1),
    ("late-wins-over-early", MONDAY, [(8, 0, 0), (15, 0, 0)], RecapStatus.LATE, 30, 60),
    ("single-punch", MONDAY, [(7, 45, 0)], RecapStatus.MISSING_CHECKOUT, 15, None),
    ("friday-16-00-is-early", FRIDAY, [(7, 30, 0), (16, 0, 0)], RecapStatus.EARLY_LEAVE, 0, 30),
    ("friday-16-30-on-time", FRIDAY, [(7, 30, 0), (16, 30, 0)], RecapStatus.PRESENT, 0, 0),
    ("ramadan-08-00-on-time", RAMADAN_MONDAY, [(8, 0, 0), (15, 0, 0)], RecapStatus.PRESENT, 0, 0),
    ("ramadan-07-45-check-in", RAMADAN_MONDAY, [(7, 45, 0), (15, 0, 0)], RecapStatus.PRESENT, 0, 0),
    ("ramadan-08-10-late", RAMADAN_MONDAY, [(8, 10, 0), (15, 0, 0)], RecapStatus.LATE, 10, 0),
    ("holiday-punches", HOLIDAY, [(9, 0, 0), (11, 0, 0)], RecapStatus.NON_WORKDAY, None, None),
]


@pytest.mark.parametrize(("info", "clock", "status", "late", "early"), [c[1:] for c in ROW_CASES], ids=[c[0] for c in ROW_CASES])
def test_recap_employee_day_status(info, clock, status, late, early):
    times = [datetime.combine(info.day, time(*hms), tzinfo=WIB) for hms in clock]
    row = recap_employee_day(info, times)
    assert row.status is status
    assert row.minutes_late == late
    assert row.minutes_early == early


def test_recap_employee_day_absent_without_punches():
    assert recap_employee_day(MONDAY, []).status is RecapStatus.ABSENT


def test_recap_employee_day_holiday_without_punches():
    assert recap_employee_day(HOLIDAY, []) is None


def test_recap_employee_day_no_absent_row_in_future():
    assert recap_employee_day(MONDAY, [], is_future=True) is None


def recap_of(punches, first="2026-05-11", last="2026-05-18", today=date(2026, 12, 4)):
    return compute_recap(
        punches, date.fromisoformat(first), date.fromisoformat(last), WIB, CALENDAR.day_info, 300, today
    )


def test_compute_recap_splits_days_at_local_midnight():
    # 23:30 and 00:30 WIB are 16:30 and 17:30 UTC of 2026-05-11.
    late_evening, after_midnight = ms("2026-05-11", 23, 30), ms("2026-05-12", 0, 30)
    assert datetime.fromtimestamp(late_evening / 1000, timezone.utc).date() == date(2026, 5, 11)
    assert datetime.fromtimestamp(after_midnight / 1000, timezone.utc).date() == date(2026, 5, 11)

    recap = recap_of([Punch(ms("2026-05-11", 7, 0), "c"), Punch(late_evening, "c"), Punch(after_midnight, "c"), Punch(ms("2026-05-12", 16, 0), "c")])
    monday, tuesday = recap.employees["c"][:2]
    assert (monday.check_in, monday.check_out) == (wib("2026-05-11", 7, 0), wib("2026-05-11", 23, 30))
    assert (tuesday.check_in, tuesday.check_out) == (wib("2026-05-12", 0, 30), wib("2026-05-12", 16, 0))


def test_compute_recap_rescan_counted_once():
    recap = recap_of([Punch(ms("2026-05-11", 7, 20), "a"), Punch(ms("2026-05-11", 7, 20, 2), "a"), Punch(ms("2026-05-11", 16, 5), "a")])
    monday = recap.employees["a"][0]
    assert monday.punch_count == 2
    assert monday.check_in == wib("2026-05-11", 7, 20)
    assert monday.status is RecapStatus.PRESENT


def test_compute_recap_rescan_only_is_missing_checkout():
    recap = recap_of([Punch(ms("2026-05-11", 7, 20), "a"), Punch(ms("2026-05-11", 7, 20, 2), "a")], last="2026-05-11")
    assert recap.employees["a"][0].status is RecapStatus.MISSING_CHECKOUT


def test_compute_recap_absent_on_workdays_only():
    # "a" punches on Monday 11 May only: absent on 12, 13 and 18 May, no rows on 14-17 May.
    recap = recap_of([Punch(ms("2026-05-11", 7, 30), "a"), Punch(ms("2026-05-11", 16, 0), "a")])
    assert [row.day.day for row in recap.employees["a"]] == [11, 12, 13, 18]
    assert recap.totals[RecapStatus.ABSENT] == 3
    assert recap.totals[RecapStatus.PRESENT] == 1


def test_compute_recap_day_counts_per_status():
    punches = [
        Punch(ms("2026-05-11", 7, 30), "a"), Punch(ms("2026-05-11", 16, 0), "a"),  # present
        Punch(ms("2026-05-11", 7, 31), "b"), Punch(ms("2026-05-11", 16, 0), "b"),  # late
        Punch(ms("2026-05-11", 7, 0), "c"),  # missing_checkout
        Punch(ms("2026-05-12", 7, 0), "d"),  # absent on 11 May
    ]
    counts = recap_of(punches, last="2026-05-12").days[0].counts
    assert counts[RecapStatus.PRESENT] == 1
    assert counts[RecapStatus.LATE] == 1
    assert counts[RecapStatus.MISSING_CHECKOUT] == 1
    assert counts[RecapStatus.ABSENT] == 1


def test_compute_recap_ignores_punches_outside_range():
    recap = recap_of([Punch(ms("2026-05-10", 23, 59), "a")], first="2026-05-11", last="2026-05-11")
    assert recap.employees == {}


def test_compute_recap_no_absent_after_today():
    recap = recap_of([Punch(ms("2026-05-11", 7, 30), "a")], today=date(2026, 5, 12))
    assert [row.day.day for row in recap.employees["a"]] == [11, 12]


def test_compute_recap_days_cover_range():
    recap = recap_of([])
    assert [day.info.day for day in recap.days] == [date(2026, 5, 11) + timedelta(days=n) for n in range(8)]
    assert sum(day.info.workday for day in recap.days) == 4
