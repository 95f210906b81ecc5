"""Office hours and the workday calendar of the attendance recap, read from YAML.

Rules and their sources:

- Default hours follow Perpres 21/2023 (working days and hours of ASN) as commonly applied:
  Monday to Friday, 37.5 hours a week, start at 07:30. Monday to Thursday run 07:30-16:00
  with a 12:00-13:00 break (7.5 h a day, 30 h). Friday runs 07:30-16:30 with a longer
  11:30-13:00 break for Friday prayers (7.5 h). 30 h + 7.5 h = 37.5 h, and a test checks this sum.
- Ramadan hours (by default 32.5 h a week) apply on the dates of the configured Ramadan
  periods. The government sets both the hours and the dates each year, so the YAML marks them
  as dates to confirm.
- A national holiday (``holidays`` package, Indonesia, public category) is no workday. Nor is
  a collective leave day (cuti bersama) listed in the YAML, or a weekday without hours in the
  OPD's week (Saturday and Sunday by default). The reason reported is the first that applies
  in that order.
- Each OPD may replace the regular or the Ramadan week, e.g. a health centre with a six-day week.

Every time is a wall-clock time in the deployment's zone.
"""

from dataclasses import dataclass
from datetime import date, datetime, time
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated

import holidays
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from contract.catalogue import CatalogueError

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
"""Weekday names as the YAML spells them, indexed by ``date.weekday()``."""

DEFAULT_RESCAN_WINDOW_S = 300


class OfficeHoursError(CatalogueError):
    """Raised when the office hours file is missing, not YAML, or breaks a rule.

    It is a ``CatalogueError`` so that the API's entry point reports it as a bad configuration
    file and exits, as it does for the catalogue.
    """


class NonWorkdayReason(StrEnum):
    """Reason a date is no workday."""

    HOLIDAY = "holiday"
    CUTI_BERSAMA = "cuti_bersama"
    WEEKEND = "weekend"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DaySchedule(_Strict):
    """Office hours of one weekday: opening, closing and an optional break, local times."""

    start: time
    end: time
    break_start: time | None = None
    break_end: time | None = None

    @model_validator(mode="after")
    def _ordered(self):
        if self.start >= self.end:
            raise ValueError(f"start {self.start} must be before end {self.end}")
        if (self.break_start is None) != (self.break_end is None):
            raise ValueError("give both break_start and break_end, or neither")
        if self.break_start is not None and not self.start <= self.break_start < self.break_end <= self.end:
            raise ValueError(f"break {self.break_start}-{self.break_end} must lie inside {self.start}-{self.end}")
        return self

    @property
    def working_minutes(self) -> int:
        """Minutes from opening to closing, without the break."""
        minutes = _minutes(self.end) - _minutes(self.start)
        if self.break_start is not None and self.break_end is not None:
            minutes -= _minutes(self.break_end) - _minutes(self.break_start)
        return minutes


Week = dict[Annotated[str, Field(pattern="^(" + "|".join(WEEKDAYS) + ")$")], DaySchedule]
"""Office hours by weekday name; a weekday that is not a key is no workday."""


class RamadanPeriod(_Strict):
    """First and last day of Ramadan hours, inclusive."""

    start: date
    end: date

    @model_validator(mode="after")
    def _ordered(self):
        if self.start > self.end:
            raise ValueError(f"Ramadan period start {self.start} is after its end {self.end}")
        return self


class OpdHours(_Strict):
    """Weeks that replace the defaults for one OPD."""

    regular: Week | None = None
    ramadan: Week | None = None


class OfficeHours(_Strict):
    """Contents of the office hours file."""

    rescan_window_s: int = Field(DEFAULT_RESCAN_WINDOW_S, ge=0, le=3600)
    regular: Week
    ramadan: Week
    ramadan_periods: list[RamadanPeriod] = Field(default_factory=list)
    cuti_bersama: dict[date, str] = Field(default_factory=dict)
    opds: dict[str, OpdHours] = Field(default_factory=dict)

    def calendar(self, opd: str) -> "WorkdayCalendar":
        """Return the workday calendar of ``opd``, with its own weeks where it has them."""
        own = self.opds.get(opd, OpdHours())
        return WorkdayCalendar(
            regular=own.regular if own.regular is not None else self.regular,
            ramadan=own.ramadan if own.ramadan is not None else self.ramadan,
            ramadan_periods=tuple(self.ramadan_periods),
            cuti_bersama=self.cuti_bersama,
        )


@dataclass(frozen=True, slots=True)
class DayInfo:
    """Calendar entry of one date; ``schedule`` is None on a non-workday."""

    day: date
    schedule: DaySchedule | None
    reason: NonWorkdayReason | None = None
    reason_name: str | None = None
    ramadan: bool = False

    @property
    def workday(self) -> bool:
        return self.schedule is not None


@dataclass(frozen=True)
class WorkdayCalendar:
    """Workdays and office hours of one OPD."""

    regular: Week
    ramadan: Week
    ramadan_periods: tuple[RamadanPeriod, ...]
    cuti_bersama: dict[date, str]

    def day_info(self, day: date) -> DayInfo:
        """Return whether ``day`` is a workday, why not, and its office hours."""
        is_ramadan = any(period.start <= day <= period.end for period in self.ramadan_periods)

        holiday_name = national_holidays(day.year).get(day)
        if holiday_name is not None:
            return DayInfo(day, None, NonWorkdayReason.HOLIDAY, holiday_name, is_ramadan)
        if day in self.cuti_bersama:
            return DayInfo(day, None, NonWorkdayReason.CUTI_BERSAMA, self.cuti_bersama[day], is_ramadan)

        week = self.ramadan if is_ramadan else self.regular
        schedule = week.get(WEEKDAYS[day.weekday()])
        if schedule is None:
            return DayInfo(day, None, NonWorkdayReason.WEEKEND, None, is_ramadan)
        return DayInfo(day, schedule, ramadan=is_ramadan)

    def is_open(self, moment: datetime) -> bool:
        """Return True when ``moment`` (aware, in the deployment zone) falls within office hours."""
        hours = self.hours_of(moment.date())
        return hours is not None and hours[0] <= moment.time().replace(tzinfo=None) < hours[1]

    def hours_of(self, day: date) -> tuple[time, time] | None:
        """Return the opening and closing time of ``day``, or None on a non-workday.

        The break counts as office time: the building is in use around it.
        """
        schedule = self.day_info(day).schedule
        return None if schedule is None else (schedule.start, schedule.end)


@lru_cache(maxsize=32)
def national_holidays(year: int) -> dict[date, str]:
    """Return Indonesia's national holidays of ``year`` by date, from the ``holidays`` package.

    Several holidays on one date are joined with "; " by the package.
    """
    return dict(holidays.country_holidays("ID", years=year))


def load_office_hours(path: Path) -> OfficeHours:
    """Read and validate the office hours file.

    Raises:
        OfficeHoursError: the file is missing, not YAML, or breaks a rule; the message names
            the file and the problem.
    """
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise OfficeHoursError(f"cannot read office hours file {path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise OfficeHoursError(f"office hours file {path} is not valid YAML: {exc}") from None

    try:
        return OfficeHours.model_validate(raw or {})
    except ValidationError as exc:
        raise OfficeHoursError(f"office hours file {path} is invalid:\n{exc}") from None


def _minutes(value: time) -> int:
    return value.hour * 60 + value.minute
