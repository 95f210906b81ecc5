"""Energy consumption per window from a meter's cumulative register (``energy_kwh_total``).

Pure logic, no I/O. ``consumption_per_bucket`` takes one meter's readings
``[(ts_ms, kwh_total), ...]``, sorted by time, and the bucket edges of the requested range, and
returns the kWh consumed in each bucket. Each pair of consecutive readings is one interval,
and these rules decide how much energy the interval holds:

- **Increase.** The difference is the consumption, because the register only counts up while
  the meter runs.
- **Small step back** (at most ``jitter_kwh``, default 0.01 kWh = 10 Wh). Some meters restore
  a slightly older register value after a reboot, because they save it to flash only every
  few Wh (Shelly Gen2 does). The interval counts nothing, and the restored value becomes the
  baseline, because the meter counts on from it: 15,230.412 → 15,231.107 → 15,230.990 →
  15,231.640 Wh is 0.695 + 0 + 0.650 = 1.345 Wh. The energy used between the meter's last
  save and its reboot is lost from the register and cannot be recovered.
- **Larger drop.** The register was reset or the meter was replaced, and the new register
  counts from zero. The new value itself is the consumption since the reset, so
  1,000 → 1,005 → 3 → 8 gives 5 + 3 + 5 = 13 kWh. The interval is reported as a
  ``counter_reset`` anomaly. A replacement meter that starts at a non-zero register has that
  value counted too, unless the power rule below rejects it.
- **Impossible power.** Consumption that needs more than ``max_power_kw`` (default 1,000 kW)
  over the interval is not counted and is reported as an ``impossible_power`` anomaly. Such
  a jump is a register glitch or a replaced meter that starts high, not energy the office
  used. The baseline moves to the new value, so a glitch that returns to the old register
  is a large drop followed by a new count. That drop is rejected by the same rule unless the
  office could really have used the old register's worth of energy in the interval.
- **Never negative.** No interval and no bucket gets a negative value.
- **Gaps.** An interval's energy is spread linearly over time between its two readings,
  because the meter reports no finer detail. So 2 kWh between 23:00 and 01:00 WIB gives 1 kWh
  to each local day. Energy outside the bucket edges is dropped. The caller passes the last
  reading before the range and the first after it, so the range's edges get their share.

Bucket edges come from ``bucket_edges``: windows of the deployment zone as in
``api.timewindows`` (hours, local days, weeks from Monday, calendar months), with the last
bucket ending at the range's end.
"""

from bisect import bisect_right
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone
from enum import StrEnum
from zoneinfo import ZoneInfo

from .timewindows import Window, month_starts, snap_start, to_epoch_ms

DEFAULT_JITTER_KWH = 0.01
"""Max step back of the register that is reboot jitter, not a reset, kWh."""

DEFAULT_MAX_POWER_KW = 1_000.0
"""Max mean power an interval may imply before its energy is rejected, kW."""

_FLOAT_TOLERANCE_KWH = 1e-9
"""Slack for float rounding in the jitter comparison, because 0.3 - 0.31 is -0.010000000000000009."""

_MS_PER_HOUR = 3_600_000


class AnomalyKind(StrEnum):
    """Kind of register change that an interval is reported for."""

    COUNTER_RESET = "counter_reset"
    IMPOSSIBLE_POWER = "impossible_power"


@dataclass(frozen=True, slots=True)
class Anomaly:
    """An interval whose register change is not a plain increase; times in UTC epoch ms."""

    kind: AnomalyKind
    start_ms: int
    end_ms: int
    baseline_kwh: float
    reading_kwh: float
    counted_kwh: float
    power_kw: float | None  # None when both readings have the same time


@dataclass(frozen=True, slots=True)
class Interval:
    """Energy consumed between two consecutive readings, UTC epoch ms and kWh."""

    start_ms: int
    end_ms: int
    kwh: float


@dataclass(frozen=True, slots=True)
class MeterConsumption:
    """Consumption of one meter per bucket, and the anomalies of intervals in the range."""

    bucket_kwh: list[float]
    anomalies: list[Anomaly]

    @property
    def total_kwh(self) -> float:
        """Sum of the buckets, kWh."""
        return sum(self.bucket_kwh)


def consumption_intervals(
    readings: list[tuple[int, float]],
    jitter_kwh: float = DEFAULT_JITTER_KWH,
    max_power_kw: float = DEFAULT_MAX_POWER_KW,
) -> tuple[list[Interval], list[Anomaly]]:
    """Apply the module's rules to time-sorted readings; return the intervals and anomalies."""
    intervals: list[Interval] = []
    anomalies: list[Anomaly] = []
    if not readings:
        return intervals, anomalies

    previous_ms, baseline = readings[0]
    for ts_ms, kwh_total in readings[1:]:
        interval, anomaly = _classify(previous_ms, baseline, ts_ms, kwh_total, jitter_kwh, max_power_kw)
        intervals.append(interval)
        if anomaly is not None:
            anomalies.append(anomaly)

        # The meter counts on from its new register, whatever happened in this interval.
        baseline = kwh_total
        previous_ms = ts_ms
    return intervals, anomalies


def _classify(
    start_ms: int, baseline: float, end_ms: int, kwh_total: float, jitter_kwh: float, max_power_kw: float
) -> tuple[Interval, Anomaly | None]:
    """Return the energy of one interval, and its anomaly if the register did not simply rise."""
    change = kwh_total - baseline
    kind = None
    if change >= 0:
        consumed = change
    elif change >= -(jitter_kwh + _FLOAT_TOLERANCE_KWH):
        consumed = 0.0
    else:
        # NOTE: a glitch back to a register low enough to pass the max_power_kw check is counted as a reset.
        consumed = max(kwh_total, 0.0)
        kind = AnomalyKind.COUNTER_RESET

    power_kw = _mean_power_kw(consumed, start_ms, end_ms)
    if consumed > 0 and (power_kw is None or power_kw > max_power_kw):
        kind = AnomalyKind.IMPOSSIBLE_POWER
        consumed = 0.0

    anomaly = None
    if kind is not None:
        anomaly = Anomaly(kind, start_ms, end_ms, baseline, kwh_total, consumed, power_kw)
    return Interval(start_ms, end_ms, consumed), anomaly


def spread_over_buckets(intervals: list[Interval], edges_ms: list[int]) -> list[float]:
    """Spread each interval's energy linearly over time into the buckets between ``edges_ms``.

    ``edges_ms`` are ascending bucket boundaries, n + 1 of them for n buckets. Energy before
    the first edge or after the last is dropped.
    """
    buckets = [0.0] * (len(edges_ms) - 1)
    for interval in intervals:
        duration = interval.end_ms - interval.start_ms
        if interval.kwh <= 0 or duration <= 0:
            continue

        # Bucket i is [edges_ms[i], edges_ms[i + 1]); start with the one that contains the interval's start.
        index = max(bisect_right(edges_ms, interval.start_ms) - 1, 0)
        while index < len(buckets) and edges_ms[index] < interval.end_ms:
            overlap = min(interval.end_ms, edges_ms[index + 1]) - max(interval.start_ms, edges_ms[index])
            if overlap > 0:
                buckets[index] += interval.kwh * overlap / duration
            index += 1
    return buckets


def consumption_per_bucket(
    readings: list[tuple[int, float]],
    edges_ms: list[int],
    jitter_kwh: float = DEFAULT_JITTER_KWH,
    max_power_kw: float = DEFAULT_MAX_POWER_KW,
) -> MeterConsumption:
    """Return one meter's kWh per bucket and the anomalies of intervals that overlap the range."""
    intervals, anomalies = consumption_intervals(readings, jitter_kwh, max_power_kw)
    in_range = [
        anomaly for anomaly in anomalies if anomaly.end_ms > edges_ms[0] and anomaly.start_ms < edges_ms[-1]
    ]
    return MeterConsumption(spread_over_buckets(intervals, edges_ms), in_range)


def bucket_edges(start: datetime, end: datetime, window: Window, zone: ZoneInfo) -> list[datetime]:
    """Return the bucket boundaries of ``[start, end)`` in ``zone``: the bucket starts, then ``end``.

    The first bucket starts at ``start`` moved back to its window's start; the last ends at
    ``end``, so it is shorter than a window when ``end`` is not on a boundary.
    """
    if window.name == "1mo":
        starts = month_starts(start, end, zone)
    elif window.is_calendar:
        starts = _local_day_starts(snap_start(start, window, zone), end, window.duration.days, zone)
    else:
        starts = _fixed_starts(snap_start(start, window, zone), end, window.duration, zone)
    return [*starts, end]


def bucket_edges_ms(edges: list[datetime]) -> list[int]:
    """Return bucket boundaries as UTC epoch milliseconds."""
    return [to_epoch_ms(edge) for edge in edges]


def _local_day_starts(first: datetime, end: datetime, step_days: int, zone: ZoneInfo) -> list[datetime]:
    """Step by local dates, so a day with a daylight-saving change keeps its 23 or 25 hours."""
    starts = []
    day = first.date()
    current = first
    while current < end:
        starts.append(current)
        day += timedelta(days=step_days)
        current = datetime.combine(day, time.min, tzinfo=zone)
    return starts


def _fixed_starts(first: datetime, end: datetime, step: timedelta, zone: ZoneInfo) -> list[datetime]:
    """Step in UTC, because aware datetimes in one zone add wall-clock time, not elapsed time."""
    starts = []
    current = first.astimezone(timezone.utc)
    end_utc = end.astimezone(timezone.utc)
    while current < end_utc:
        starts.append(current.astimezone(zone))
        current += step
    return starts


def _mean_power_kw(kwh: float, start_ms: int, end_ms: int) -> float | None:
    if end_ms <= start_ms:
        return None
    return kwh * _MS_PER_HOUR / (end_ms - start_ms)
