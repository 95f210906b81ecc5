"""Query parameters shared by the time-range routes: ids, times, windows and the range itself."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from fastapi import Query

from contract import ID_PATTERN

from .errors import ApiError
from .timewindows import WINDOWS, Window, bucket_count, snap_start

IdQuery = Query(pattern=ID_PATTERN, max_length=64, description="Filter by this id")

WindowQuery = Query(description="Window: " + ", ".join(WINDOWS))
StartQuery = Query(description="ISO 8601 date or time; without offset, local time")
EndQuery = Query(description="ISO 8601 date or time, exclusive; default now")


@dataclass(frozen=True, slots=True)
class TimeRange:
    """A validated request range: ``start`` is already moved back to its window's start."""

    window: Window
    start: datetime
    end: datetime


def resolve_range(window: str, start: str | None, end: str | None, zone: ZoneInfo, max_buckets: int) -> TimeRange:
    """Validate ``window``, ``start`` and ``end``; the default range is the day before ``end``.

    Raises:
        ApiError: 422 naming the parameter: unknown window, invalid or out-of-range time,
            ``start`` not before ``end``, or more than ``max_buckets`` buckets.
    """
    chosen = WINDOWS.get(window)
    if chosen is None:
        raise ApiError(422, "invalid_window", parameter="window", window=window, choices=", ".join(WINDOWS))

    end_time = parse_time("end", end, zone) if end else datetime.now(zone)
    start_time = parse_time("start", start, zone) if start else end_time - timedelta(days=1)
    if start_time >= end_time:
        raise ApiError(422, "range_order", parameter="start", start=start_time.isoformat(), end=end_time.isoformat())
    start_time = snap_start(start_time, chosen, zone)

    count = bucket_count(start_time, end_time, chosen, zone)
    if count > max_buckets:
        raise ApiError(422, "too_many_buckets", parameter="window", window=window, count=count, limit=max_buckets)
    return TimeRange(chosen, start_time, end_time)


def parse_time(name: str, text: str, zone: ZoneInfo) -> datetime:
    """Parse an ISO 8601 date or time; a value without offset is local to ``zone``."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ApiError(422, "invalid_time", parameter=name, name=name, value=text) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    if not 2000 <= moment.year <= 2100:
        raise ApiError(422, "time_out_of_range", parameter=name, name=name, value=text)
    return moment
