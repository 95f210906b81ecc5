"""Working hours of an Indonesian government office, evaluated in the deployment's time zone.

Civil servants work a five-day week: Monday to Thursday 07:30-16:00 with a break 12:00-13:00,
Friday 07:30-16:30 with a longer break 11:30-13:00 for the Friday prayer. Saturday and Sunday
are days off. Times are UTC epoch milliseconds and are converted to local time in the zone,
so day boundaries and hours follow the office's clock, not UTC.
"""

import bisect
import math
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

MS_PER_S = 1_000
MS_PER_MINUTE = 60 * MS_PER_S
MS_PER_HOUR = 60 * MS_PER_MINUTE

EARLIEST_ARRIVAL = time(6, 45)
"""Earliest usual check-in. No staff are in the office before it."""

LAST_DEPARTURE = time(17, 30)
"""Latest usual check-out, after which the office is empty."""

AIR_CONDITIONING_ON = time(7, 15)
"""Time the air conditioning is switched on. It runs until 30 minutes after closing."""

_SUNRISE_H = 6.0
_SUNSET_H = 18.25
# Lingga lies near the equator, where sunrise and sunset change by only about half an hour
# over the year, so fixed times are close enough for indoor daylight.


@dataclass(frozen=True, slots=True)
class WorkdayHours:
    """Opening hours of one weekday, with the share of staff who stay in during the break."""

    start: time
    end: time
    break_start: time
    break_end: time
    break_presence: float


MONDAY_TO_THURSDAY = WorkdayHours(time(7, 30), time(16, 0), time(12, 0), time(13, 0), break_presence=0.5)
FRIDAY = WorkdayHours(time(7, 30), time(16, 30), time(11, 30), time(13, 0), break_presence=0.2)

WEEK: tuple[WorkdayHours | None, ...] = (
    MONDAY_TO_THURSDAY,
    MONDAY_TO_THURSDAY,
    MONDAY_TO_THURSDAY,
    MONDAY_TO_THURSDAY,
    FRIDAY,
    None,
    None,
)
"""Hours per ``date.weekday()``, Monday first. None marks a day off."""


def _minutes(value: time) -> float:
    return value.hour * 60 + value.minute + value.second / 60


def _presence_curve(hours: WorkdayHours) -> tuple[list[float], list[float]]:
    """Build the expected share of staff present over a workday, as (minute, share) points.

    Staff arrive between 06:45 and 08:15, and a few late ones until 09:00. Many leave their
    rooms during the break, and all leave the office between closing time and 17:30.
    """
    start = _minutes(hours.start)
    end = _minutes(hours.end)
    break_start = _minutes(hours.break_start)
    break_end = _minutes(hours.break_end)
    points = [
        (0.0, 0.0),
        (_minutes(EARLIEST_ARRIVAL), 0.0),
        (start, 0.55),
        (start + 45, 0.9),
        (start + 90, 0.95),
        (break_start, 0.95),
        (break_start + 10, hours.break_presence),
        (break_end - 10, hours.break_presence),
        (break_end, 0.9),
        (end, 0.9),
        (end + 30, 0.45),
        (_minutes(LAST_DEPARTURE), 0.0),
        (24 * 60.0, 0.0),
    ]
    return [minute for minute, _ in points], [share for _, share in points]


class OfficeHours:
    """Office calendar of one time zone: workdays, staff presence, air conditioning, daylight."""

    def __init__(self, timezone: str | ZoneInfo = "Asia/Jakarta") -> None:
        self.zone = timezone if isinstance(timezone, ZoneInfo) else ZoneInfo(timezone)
        self._curves = {hours: _presence_curve(hours) for hours in WEEK if hours is not None}

    def local_datetime(self, ts_ms: int) -> datetime:
        """Convert UTC epoch milliseconds to an aware datetime in the office's zone."""
        return datetime.fromtimestamp(ts_ms / MS_PER_S, self.zone)

    def local_date(self, ts_ms: int) -> date:
        """Return the local calendar date of ``ts_ms``. A punch at 23:30 local time belongs to that date."""
        return self.local_datetime(ts_ms).date()

    def to_ms(self, day: date, at: time) -> int:
        """Convert a local date and wall-clock time in the office's zone to UTC epoch milliseconds."""
        moment = datetime.combine(day, at, tzinfo=self.zone)
        return round(moment.timestamp() * MS_PER_S)

    def hours_on(self, day: date) -> WorkdayHours | None:
        """Return the opening hours of a local date, or None on a day off."""
        # TODO: public holidays and collective leave days (libur nasional, cuti bersama) are
        # not modelled, so they count as workdays.
        return WEEK[day.weekday()]

    def is_workday(self, day: date) -> bool:
        """Return True when the office opens on the local date ``day``."""
        return self.hours_on(day) is not None

    def presence(self, ts_ms: int) -> float:
        """Return the expected share of staff in the office at ``ts_ms``, from 0.0 to 1.0."""
        return self._presence_at(self.local_datetime(ts_ms))

    def conditions(self, ts_ms: int) -> "OfficeConditions":
        """Return everything a device model needs about ``ts_ms``, converting to local time once."""
        local = self.local_datetime(ts_ms)
        hour = local.hour + local.minute / 60 + local.second / 3600
        return OfficeConditions(
            local_date=local.date(),
            local_hour=hour,
            presence=self._presence_at(local),
            air_conditioning=self._air_conditioning_at(local),
            daylight=_daylight_at(hour),
        )

    def _presence_at(self, local: datetime) -> float:
        hours = self.hours_on(local.date())
        if hours is None:
            return 0.0

        minutes, shares = self._curves[hours]
        minute = local.hour * 60 + local.minute + local.second / 60
        index = bisect.bisect_right(minutes, minute)
        if index >= len(minutes):
            return shares[-1]

        left, right = minutes[index - 1], minutes[index]
        weight = (minute - left) / (right - left)
        return shares[index - 1] + weight * (shares[index] - shares[index - 1])

    def _air_conditioning_at(self, local: datetime) -> bool:
        hours = self.hours_on(local.date())
        if hours is None:
            return False

        switch_off = (datetime.combine(local.date(), hours.end) + timedelta(minutes=30)).time()
        return AIR_CONDITIONING_ON <= local.time() < switch_off


@dataclass(frozen=True, slots=True)
class OfficeConditions:
    """The office calendar at one moment, in local time."""

    local_date: date
    local_hour: float
    presence: float
    """Expected share of staff in the office, 0.0 to 1.0."""
    air_conditioning: bool
    daylight: float
    """Relative outdoor daylight, 0.0 at night to 1.0 at midday."""


def _daylight_at(hour: float) -> float:
    if not _SUNRISE_H < hour < _SUNSET_H:
        return 0.0
    return math.sin(math.pi * (hour - _SUNRISE_H) / (_SUNSET_H - _SUNRISE_H))
