"""Device timestamps to the contract's ``ts``: UTC epoch milliseconds.

Devices report time in many shapes. Tasmota and ZKTeco terminals send local wall-clock time
without an offset, and Tasmota with ``SetOption52 1`` adds the offset. Shelly Gen2 sends epoch
seconds as a float. Zigbee2MQTT sends ``last_seen`` in epoch milliseconds or ISO 8601.
A naive local time is read in the zone configured for the adapter, never in the node's own
zone, because the node and the devices may be set up differently.

Conversions from decimal text (``1736603810.49`` s) go through ``decimal.Decimal``, so the
result is the exact millisecond the device wrote and not one off from binary rounding.
"""

from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator

from contract.payloads import TS_MAX_MS, TS_MIN_MS

MS_PER_S = 1000

EPOCH_MS_THRESHOLD = 100_000_000_000
"""Epoch numbers from here on are milliseconds: 1e11 s is the year 5138, 1e11 ms is 1973."""


class DeviceTimeError(ValueError):
    """Raised when a device timestamp cannot be read. The message names the value."""


def check_zone_name(name: str) -> str:
    """Return ``name`` when it is an IANA time zone known to this system.

    Raises:
        ValueError: the zone is unknown. The message shows examples.
    """
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown IANA time zone {name!r}: use e.g. Asia/Jakarta or Asia/Makassar") from None
    return name


TimeZoneName = Annotated[str, AfterValidator(check_zone_name)]
"""Settings type of an IANA time zone name, checked when the settings are loaded."""


def local_time_to_ms(moment: datetime, zone: ZoneInfo) -> int:
    """Convert ``moment`` to UTC epoch ms, reading a naive ``moment`` as wall-clock time in ``zone``.

    A naive time that occurs twice at the end of daylight saving time is read as the first
    occurrence, and one skipped at its start is read with the offset before the change
    (``zoneinfo`` with ``fold=0``). An aware ``moment`` keeps its own offset.
    """
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return round(moment.timestamp() * MS_PER_S)


def parse_device_time(text: str, zone: ZoneInfo) -> int:
    """Parse an ISO 8601 time sent by a device into UTC epoch ms.

    ``2025-01-11T14:56:50`` is local time in ``zone``, while ``2025-01-11T14:56:50+01:00`` and
    ``2025-01-11T13:56:50Z`` carry their own offset. ``YYYY-MM-DD HH:MM:SS`` is accepted too.

    Raises:
        DeviceTimeError: ``text`` is not an ISO 8601 date and time.
    """
    if not isinstance(text, str):
        raise DeviceTimeError(f"device time {text!r} is not a string")

    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise DeviceTimeError(f"device time {text!r} is not ISO 8601 (expected e.g. 2025-01-11T14:56:50)") from None
    return local_time_to_ms(moment, zone)


def epoch_seconds_to_ms(value: float | int) -> int:
    """Convert epoch seconds, as a JSON number, to epoch ms exactly as written (``1736603810.49`` gives ...490).

    Raises:
        DeviceTimeError: ``value`` is not a finite number.
    """
    return round(_exact_decimal(value) * MS_PER_S)


def epoch_number_to_ms(value: float | int) -> int:
    """Convert an epoch time in seconds or milliseconds to epoch ms, telling them apart by size.

    Raises:
        DeviceTimeError: ``value`` is not a finite number.
    """
    exact = _exact_decimal(value)
    if abs(exact) >= EPOCH_MS_THRESHOLD:
        return round(exact)
    return round(exact * MS_PER_S)


def timestamp_problem(device_ms: int, received_ms: int, max_ahead_ms: int) -> str | None:
    """Return why ``device_ms`` cannot be the reading's time, or None when it can.

    A time before 2020 means the device clock was never set (no NTP yet). A time more than
    ``max_ahead_ms`` after the reception means a wrong clock or a wrong configured zone.
    """
    if device_ms < TS_MIN_MS:
        return "device_clock_unset"
    if device_ms >= TS_MAX_MS or device_ms > received_ms + max_ahead_ms:
        return "device_clock_ahead"
    return None


def checked_device_ts(device_ms: int | None, received_ms: int, max_ahead_ms: int) -> tuple[int, str | None]:
    """Return the reading's ``ts`` and the reason the device time was not used, if any.

    The device time is used when it passes ``timestamp_problem``. Otherwise, and when the
    device sent none, the reception time on the node is used.
    """
    if device_ms is None:
        return received_ms, None

    problem = timestamp_problem(device_ms, received_ms, max_ahead_ms)
    if problem is not None:
        return received_ms, problem
    return device_ms, None


def _exact_decimal(value: float | int) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise DeviceTimeError(f"epoch time {value!r} is not a number")

    try:
        exact = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except InvalidOperation:
        raise DeviceTimeError(f"epoch time {value!r} is not a number") from None

    if not exact.is_finite():
        raise DeviceTimeError(f"epoch time {value!r} is not a finite number")
    return exact
