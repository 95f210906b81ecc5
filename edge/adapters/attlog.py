"""ZKTeco attendance records in one canonical form, from ADMS ``ATTLOG`` lines and from pyzk.

Both read paths of a ZKTeco terminal give the same punch, with different names:

- ADMS push (``POST /iclock/cdata?table=ATTLOG``): TAB-separated positional fields
  ``PIN, time, status, verify, workcode, reserved, reserved`` and, on newer firmware,
  ``MaskFlag, Temperature, ConvTemperature, TimeOffset, ExtendData``. ``status`` is the
  punch state and ``verify`` the identification method.
- pyzk pull (``ZK.get_attendance()``): ``Attendance(user_id, timestamp, status, punch, uid)``,
  where ``status`` is the identification method and ``punch`` the punch state. Reading
  pyzk's ``status`` as the punch state turns every fingerprint (1) into a check-out.

``PunchRecord.dedup_key`` (serial number, PIN, device time) is the same for one punch from
either path, so a punch pushed over ADMS and later pulled with pyzk is recognised.

Punch state codes (ZKTeco PUSH protocol): 0 check-in, 1 check-out, 2 break-out, 3 break-in,
4 overtime-in, 5 overtime-out. Some firmware sends 255 for every punch ("undefined"). Such
records are kept as ``unknown``, and the attendance recap orders them by time.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from contract.payloads import Punch, VerifyMethod

DEVICE_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

PUNCH_BY_CODE = {
    0: Punch.IN,
    1: Punch.OUT,
    2: Punch.BREAK_OUT,
    3: Punch.BREAK_IN,
    4: Punch.OVERTIME_IN,
    5: Punch.OVERTIME_OUT,
}
"""Punch state of each code. 255 and any other code are ``Punch.UNKNOWN``."""

DEFAULT_VERIFY_METHODS: dict[int, VerifyMethod] = {
    1: VerifyMethod.FINGERPRINT,
    3: VerifyMethod.PASSWORD,
    4: VerifyMethod.RFID,
    15: VerifyMethod.FACE,
}
"""Verify codes from appendix 7 of ZKTeco's Attendance PUSH protocol V5.8 (PUSH 2.4.2).

Other codes (0 automatic, 2 user id, 21 finger vein, 25 palm, combinations, 200) are ``other``.
Third-party tables disagree with this one, so the adapter setting ``verify_methods`` can
override single codes for a terminal model.
"""

TIME_OFFSET_FIELD = 10
"""Position of the extended ``TimeOffset`` field (seconds east of UTC, e.g. ``+3600``)."""

PIN_PATTERN = re.compile(r"^[0-9A-Za-z]{1,32}$")


class AttlogError(ValueError):
    """Raised for a record that cannot be read. The message shows the record."""


class PyzkAttendance(Protocol):
    """The attributes of pyzk's ``zk.attendance.Attendance`` that the mapping reads."""

    user_id: str
    timestamp: datetime
    status: int
    punch: int


@dataclass(frozen=True, slots=True)
class PunchRecord:
    """One punch as the terminal recorded it, before conversion to UTC."""

    serial_number: str
    employee_id: str
    """PIN (enrolment number) on the terminal."""

    local_time: datetime
    """Naive wall-clock time of the terminal."""

    punch: Punch
    verify: VerifyMethod
    punch_code: int | None
    verify_code: int | None
    time_offset_s: int | None = None
    """UTC offset the terminal states for ``local_time``, when its firmware sends one."""

    @property
    def dedup_key(self) -> tuple[str, str, str]:
        """Identity of the punch: terminal serial number, PIN and device time."""
        return self.serial_number, self.employee_id, self.local_time.strftime(DEVICE_TIME_FORMAT)


def punch_from_code(code: int | None) -> Punch:
    """Return the punch state of a ZKTeco state code. Unknown codes and 255 give ``Punch.UNKNOWN``."""
    return PUNCH_BY_CODE.get(code, Punch.UNKNOWN) if code is not None else Punch.UNKNOWN


def verify_from_code(code: int | None, methods: Mapping[int, VerifyMethod] = DEFAULT_VERIFY_METHODS) -> VerifyMethod:
    """Return the identification method of a ZKTeco verify code. Unknown codes give ``VerifyMethod.OTHER``."""
    return methods.get(code, VerifyMethod.OTHER) if code is not None else VerifyMethod.OTHER


def split_attlog_lines(body: str) -> list[str]:
    """Split an ``ATTLOG`` body into its records. LF and CRLF endings both work, and blank lines are skipped."""
    return [line.rstrip("\r") for line in body.split("\n") if line.strip()]


def parse_attlog_line(
    line: str, serial_number: str, verify_methods: Mapping[int, VerifyMethod] = DEFAULT_VERIFY_METHODS
) -> PunchRecord:
    """Parse one TAB-separated ``ATTLOG`` record of terminal ``serial_number``.

    Only PIN and time are required. A missing status or verify column gives ``unknown``
    and ``other``. Extended fields and a trailing TAB are accepted.

    Raises:
        AttlogError: the PIN, the time, or the status or verify code is invalid.
    """
    fields = line.split("\t")
    if len(fields) < 2:
        raise AttlogError(
            f"ATTLOG record {line[:80]!r} has no TAB-separated time: expected PIN<TAB>YYYY-MM-DD HH:MM:SS..."
        )

    employee_id = _check_pin(fields[0].strip(), line)
    try:
        local_time = datetime.strptime(fields[1].strip(), DEVICE_TIME_FORMAT)
    except ValueError:
        raise AttlogError(f"ATTLOG record {line[:80]!r}: time {fields[1]!r} is not YYYY-MM-DD HH:MM:SS") from None

    punch_code = _optional_code(fields, 2, "status", line)
    verify_code = _optional_code(fields, 3, "verify", line)
    try:
        time_offset_s = _optional_code(fields, TIME_OFFSET_FIELD, "TimeOffset", line)
    except AttlogError:
        # The offset is informative only, so a firmware that fills it differently keeps its punch.
        time_offset_s = None

    return PunchRecord(
        serial_number=serial_number,
        employee_id=employee_id,
        local_time=local_time,
        punch=punch_from_code(punch_code),
        verify=verify_from_code(verify_code, verify_methods),
        punch_code=punch_code,
        verify_code=verify_code,
        time_offset_s=time_offset_s,
    )


def record_from_pyzk(
    attendance: PyzkAttendance, serial_number: str, verify_methods: Mapping[int, VerifyMethod] = DEFAULT_VERIFY_METHODS
) -> PunchRecord:
    """Map a pyzk ``Attendance`` of terminal ``serial_number`` to the record the ADMS path gives.

    pyzk's ``status`` is the verify code and its ``punch`` the punch state code.

    Raises:
        AttlogError: the user id or the timestamp is invalid.
    """
    employee_id = _check_pin(str(attendance.user_id).strip(), repr(attendance))
    timestamp = attendance.timestamp
    if not isinstance(timestamp, datetime):
        raise AttlogError(f"pyzk record {attendance!r}: timestamp {timestamp!r} is not a datetime")

    return PunchRecord(
        serial_number=serial_number,
        employee_id=employee_id,
        local_time=timestamp.replace(tzinfo=None, microsecond=0),
        punch=punch_from_code(attendance.punch),
        verify=verify_from_code(attendance.status, verify_methods),
        punch_code=attendance.punch,
        verify_code=attendance.status,
    )


def _check_pin(pin: str, record: str) -> str:
    if not PIN_PATTERN.fullmatch(pin):
        raise AttlogError(f"record {record[:80]!r}: PIN {pin!r} is not 1 to 32 letters or digits")
    return pin


def _optional_code(fields: list[str], index: int, name: str, line: str) -> int | None:
    if index >= len(fields) or not fields[index].strip():
        return None
    try:
        return int(fields[index].strip())
    except ValueError:
        raise AttlogError(f"ATTLOG record {line[:80]!r}: {name} {fields[index]!r} is not an integer") from None
