"""Aggregation windows and day boundaries in the deployment's time zone.

Minute and hour windows are plain durations. Day and week windows start at local midnight,
weeks on Monday; InfluxQL aligns them with ``tz()`` and, for weeks, an offset of 4 days
(InfluxDB counts weeks from 1970-01-01, a Thursday). Calendar months have no InfluxQL
duration, so a month window is answered with one statement per local month.
"""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True, slots=True)
class Window:
    """An aggregation window as accepted by the ``window`` query parameter."""

    name: str
    duration: timedelta | None  # None for the calendar month
    influxql: str | None  # the GROUP BY time(...) argument, None for the calendar month

    @property
    def is_calendar(self) -> bool:
        """True for windows that start at local midnight (day, week, month)."""
        return self.name in ("1d", "1w", "1mo")


WINDOWS: dict[str, Window] = {
    "1m": Window("1m", timedelta(minutes=1), "1m"),
    "5m": Window("5m", timedelta(minutes=5), "5m"),
    "15m": Window("15m", timedelta(minutes=15), "15m"),
    "30m": Window("30m", timedelta(minutes=30), "30m"),
    "1h": Window("1h", timedelta(hours=1), "1h"),
    "6h": Window("6h", timedelta(hours=6), "6h"),
    "1d": Window("1d", timedelta(days=1), "1d"),
    "1w": Window("1w", timedelta(weeks=1), "1w, 4d"),
    "1mo": Window("1mo", None, None),
}
"""Windows the API accepts, by name."""


def local_day_bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """Return the aware start and end (exclusive) of ``day`` in ``zone``.

    Computed from local midnights, so a day with a daylight-saving change has 23 or 25 hours.
    """
    start = datetime.combine(day, time.min, tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=zone)
    return start, end


def snap_start(moment: datetime, window: Window, zone: ZoneInfo) -> datetime:
    """Move ``moment`` back to the start of the window that contains it, in ``zone``."""
    local = moment.astimezone(zone)
    if window.name == "1mo":
        return datetime(local.year, local.month, 1, tzinfo=zone)
    if window.name == "1w":
        monday = local.date() - timedelta(days=local.weekday())
        return datetime.combine(monday, time.min, tzinfo=zone)
    if window.name == "1d":
        return datetime.combine(local.date(), time.min, tzinfo=zone)

    midnight = datetime.combine(local.date(), time.min, tzinfo=zone)
    elapsed = local - midnight
    return midnight + (elapsed // window.duration) * window.duration


def month_starts(start: datetime, end: datetime, zone: ZoneInfo) -> list[datetime]:
    """Return the local month starts from the month of ``start`` up to ``end`` (exclusive)."""
    current = snap_start(start, WINDOWS["1mo"], zone)
    starts = []
    while current < end:
        starts.append(current)
        year, month = (current.year + 1, 1) if current.month == 12 else (current.year, current.month + 1)
        current = datetime(year, month, 1, tzinfo=zone)
    return starts


def bucket_count(start: datetime, end: datetime, window: Window, zone: ZoneInfo) -> int:
    """Return how many windows ``[start, end)`` spans."""
    if window.duration is None:
        return len(month_starts(start, end, zone))
    return max(0, -(-(end - start) // window.duration))


def to_epoch_ms(moment: datetime) -> int:
    """Return an aware datetime as UTC epoch milliseconds."""
    return int(moment.timestamp() * 1000)


def from_epoch_ms(ms: int, zone: ZoneInfo) -> datetime:
    """Return UTC epoch milliseconds as an aware datetime in ``zone``."""
    return datetime.fromtimestamp(ms / 1000, tz=zone)
