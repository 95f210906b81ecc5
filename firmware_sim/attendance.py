"""Attendance terminal model: an OPD's employees and their punches at the terminal.

Each employee has an 18-digit NIP (Nomor Induk Pegawai) built like a civil servant's: birth
date ``YYYYMMDD``, appointment ``YYYYMM``, gender digit (1 male, 2 female) and a three-digit
sequence number. On workdays most employees check in between 06:45 and 08:15 and check out
between closing time and 17:30, local time. A few are absent, late, or forget to check out.
The plan of a day is drawn from a random stream keyed by the local date, so it is the same
whenever the simulator starts.
"""

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from contract import Punch, Stream, VerifyMethod

from .devices import DeviceKey, Reading, clamp, encode_payload
from .office_hours import EARLIEST_ARRIVAL, LAST_DEPARTURE, MS_PER_S, OfficeHours

ON_TIME_DEADLINE = time(8, 15)
"""Latest on-time check-in. Later check-ins count as late."""

ABSENCE_PROBABILITY = 0.04
"""Chance that an employee is away for a whole workday (sick, leave, official travel)."""

LATE_PROBABILITY = 0.06
"""Chance that an employee who comes checks in after 08:15."""

MISSED_CHECK_OUT_PROBABILITY = 0.02
"""Chance that an employee who came does not check out."""

VERIFY_FALLBACK_PROBABILITY = 0.05
"""Chance that the usual verify method fails and the employee uses another one."""

_PREFERRED_VERIFY = ((VerifyMethod.FINGERPRINT, 0.88), (VerifyMethod.FACE, 0.08), (VerifyMethod.RFID, 0.04))
_APPOINTMENT_MONTHS = (1, 1, 1, 1, 2, 3, 3, 3, 4, 6, 10, 12)
"""Appointment months to draw from, weighted toward the first quarter (an invented distribution)."""

_MIN_GAP_BETWEEN_PUNCHES_MS = 3 * MS_PER_S
"""Shortest time between two punches, because a terminal reads one finger at a time."""


@dataclass(frozen=True, slots=True)
class Employee:
    """One employee of an OPD and their habits."""

    nip: str
    usual_arrival_min: float
    """Usual check-in time, in minutes after local midnight."""
    verify: VerifyMethod


@dataclass(frozen=True, slots=True)
class ScheduledPunch:
    """One punch planned at a terminal."""

    ts_ms: int
    employee_id: str
    punch: Punch
    verify: VerifyMethod


def format_nip(birth: date, appointed_year: int, appointed_month: int, gender: int, sequence: int) -> str:
    """Format an 18-digit NIP from its parts, where ``gender`` is 1 (male) or 2 (female)."""
    if gender not in (1, 2):
        raise ValueError(f"gender digit {gender} is invalid: use 1 (male) or 2 (female)")
    if not 1 <= sequence <= 999:
        raise ValueError(f"NIP sequence {sequence} is invalid: use 1 to 999")
    return f"{birth:%Y%m%d}{appointed_year:04d}{appointed_month:02d}{gender}{sequence:03d}"


def build_roster(seed: int, opd: str, employees: int) -> list[Employee]:
    """Draw the employees of one OPD. The same seed and OPD always give the same roster."""
    draw = random.Random(f"{seed}/{opd}/roster")
    sequences: dict[str, int] = {}
    roster = []
    for _ in range(employees):
        birth = date(1967, 1, 1) + timedelta(days=draw.randrange(35 * 365))
        appointed_year = draw.randint(birth.year + 20, min(birth.year + 35, 2024))
        appointed_month = draw.choice(_APPOINTMENT_MONTHS)
        gender = draw.choice((1, 2))

        # The sequence numbers people who share birth date, appointment and gender.
        prefix = f"{birth:%Y%m%d}{appointed_year:04d}{appointed_month:02d}{gender}"
        sequences[prefix] = sequences.get(prefix, 0) + 1
        nip = format_nip(birth, appointed_year, appointed_month, gender, sequences[prefix])

        methods, weights = zip(*_PREFERRED_VERIFY, strict=True)
        verify = draw.choices(methods, weights)[0]
        # Most staff arrive before the 07:30 opening; the normal spread makes some a few minutes late.
        roster.append(Employee(nip=nip, usual_arrival_min=draw.uniform(6 * 60 + 50, 7 * 60 + 22), verify=verify))
    return roster


def _minutes(value: time) -> float:
    return value.hour * 60 + value.minute


class AttendanceTerminal:
    """Deterministic generator of ``attendance`` payloads for one terminal and its employees."""

    stream = Stream.ATTENDANCE

    def __init__(self, key: DeviceKey, employees: list[Employee], office_hours: OfficeHours) -> None:
        self.key = key
        self.employees = employees
        self._hours = office_hours
        self._seq = 0

    def punches_on(self, day: date) -> list[ScheduledPunch]:
        """Plan the punches of a local date, in time order. A day off has none."""
        hours = self._hours.hours_on(day)
        if hours is None or not self.employees:
            return []

        draw = self.key.random(f"day/{day.isoformat()}")
        midnight = datetime.combine(day, time(0, 0))
        planned: list[tuple[float, str, Punch, VerifyMethod]] = []
        for employee in self.employees:
            if draw.random() < ABSENCE_PROBABILITY:
                continue

            if draw.random() < LATE_PROBABILITY:
                arrival_min = draw.uniform(_minutes(ON_TIME_DEADLINE) + 1, 9 * 60 + 45)
            else:
                arrival_min = clamp(
                    draw.gauss(employee.usual_arrival_min, 10.0),
                    _minutes(EARLIEST_ARRIVAL),
                    _minutes(ON_TIME_DEADLINE),
                )
            planned.append((arrival_min, employee.nip, Punch.IN, self._verify(employee, draw)))

            if draw.random() < MISSED_CHECK_OUT_PROBABILITY:
                continue
            closing_min = _minutes(hours.end)
            departure_min = min(closing_min + draw.expovariate(1 / 20), _minutes(LAST_DEPARTURE))
            planned.append((departure_min, employee.nip, Punch.OUT, self._verify(employee, draw)))

        planned.sort()
        return self._queue_at_terminal(midnight, planned)

    def _queue_at_terminal(
        self, midnight: datetime, planned: list[tuple[float, str, Punch, VerifyMethod]]
    ) -> list[ScheduledPunch]:
        """Turn planned minutes into timestamps, keeping a few seconds between punches."""
        punches = []
        previous_ms = None
        for minute, employee_id, punch, verify in planned:
            local = midnight + timedelta(seconds=round(minute * 60))
            ts_ms = self._hours.to_ms(local.date(), local.time())
            if previous_ms is not None:
                ts_ms = max(ts_ms, previous_ms + _MIN_GAP_BETWEEN_PUNCHES_MS)
            punches.append(ScheduledPunch(ts_ms, employee_id, punch, verify))
            previous_ms = ts_ms
        return punches

    @staticmethod
    def _verify(employee: Employee, draw: random.Random) -> VerifyMethod:
        if draw.random() >= VERIFY_FALLBACK_PROBABILITY:
            return employee.verify
        fallbacks = [method for method, _ in _PREFERRED_VERIFY if method is not employee.verify]
        return draw.choice(fallbacks)

    def punches_from(self, start_ms: int) -> Iterator[ScheduledPunch]:
        """Yield every punch at or after ``start_ms``, day after day, without end."""
        if not self.employees:
            return

        day = self._hours.local_date(start_ms)
        while True:
            for punch in self.punches_on(day):
                if punch.ts_ms >= start_ms:
                    yield punch
            day += timedelta(days=1)

    def event(self, punch: ScheduledPunch) -> Reading:
        """Return the terminal's payload for ``punch``, numbering it with the next ``seq``."""
        payload = encode_payload(
            {
                "device": self.key.device,
                "ts": punch.ts_ms,
                "employee_id": punch.employee_id,
                "punch": punch.punch.value,
                "verify": punch.verify.value,
                "seq": self._seq,
            }
        )
        self._seq += 1
        return Reading(punch.ts_ms, Stream.ATTENDANCE, payload)
