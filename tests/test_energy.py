"""Consumption from cumulative energy registers: resets, jitter, glitches and bucket splits.

Every expected value is computed by hand in the case's comment. Times are WIB (UTC+7), so that
local midnights and month starts differ from the UTC ones.
"""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from api.energy import (
    AnomalyKind,
    bucket_edges,
    bucket_edges_ms,
    consumption_intervals,
    consumption_per_bucket,
    spread_over_buckets,
)
from api.timewindows import WINDOWS

WIB = ZoneInfo("Asia/Jakarta")
HOUR_MS = 3_600_000
MINUTE_MS = 60_000


def ms(year, month, day, hour=0, minute=0) -> int:
    """Epoch milliseconds of a WIB wall-clock time."""
    return int(datetime(year, month, day, hour, minute, tzinfo=WIB).timestamp() * 1000)


def hourly(*values: float) -> list[tuple[int, float]]:
    """Readings one hour apart, starting at 2026-12-01 08:00 WIB."""
    return [(ms(2026, 12, 1, 8) + index * HOUR_MS, value) for index, value in enumerate(values)]


def quarter_hourly(*values: float) -> list[tuple[int, float]]:
    """Readings 15 minutes apart, starting at 2026-12-01 08:00 WIB."""
    return [(ms(2026, 12, 1, 8) + index * 15 * MINUTE_MS, value) for index, value in enumerate(values)]


# (readings, kWh per interval, anomaly kinds)
INTERVAL_CASES = {
    # 100 → 101.5 → 103: 1.5 + 1.5.
    "normal-increase": (hourly(100.0, 101.5, 103.0), [1.5, 1.5], []),
    # 1,000 → 1,005 is 5; the drop to 3 restarts the count, so 3 is consumption; 3 → 8 is 5. Total 13.
    "reset-1000-1005-3-8": (hourly(1000.0, 1005.0, 3.0, 8.0), [5.0, 3.0, 5.0], [AnomalyKind.COUNTER_RESET]),
    # A step back of 5 Wh counts 0 and the meter counts on from 99.995, so the climb to 100.020 is 0.025.
    "jitter-step-back-then-climb": (hourly(100.0, 99.995, 100.020), [0.0, 0.025], []),
    # Exactly 10 Wh back is still jitter, although 0.3 - 0.31 is -0.010000000000000009 in floats.
    "jitter-at-threshold": (hourly(0.31, 0.3, 0.5), [0.0, 0.2], []),
    # Shelly Gen2 aenergy.total in kWh across a reboot that restored an older register: 1.345 Wh.
    "shelly-gen2-reboot": (hourly(15.230412, 15.231107, 15.230990, 15.231640), [0.000695, 0.0, 0.000650], []),
    # 500 → 0 restarts the count with 0 consumed; 0 → 2 is 2.
    "reset-to-zero": (hourly(500.0, 0.0, 2.0), [0.0, 2.0], [AnomalyKind.COUNTER_RESET]),
    # Old meter 8,990 → 9,000 is 10; the new meter starts at 50, counted as 50; 50 → 60 is 10. Total 70.
    "meter-replaced-at-50": (hourly(8990.0, 9000.0, 50.0, 60.0), [10.0, 50.0, 10.0], [AnomalyKind.COUNTER_RESET]),
    # 100,000 kWh in 15 minutes is 400,000 kW, over 1,000 kW: not counted; 100,100 → 100,101 is 1.
    "impossible-jump": (quarter_hourly(100.0, 100_100.0, 100_101.0), [0.0, 1.0], [AnomalyKind.IMPOSSIBLE_POWER]),
    # A glitch to 999,999 and back: both jumps need over 1,000 kW (5,001 kWh in 15 minutes is 20,004 kW).
    "glitch-and-return": (
        quarter_hourly(5000.0, 999_999.0, 5001.0, 5002.0),
        [0.0, 0.0, 1.0],
        [AnomalyKind.IMPOSSIBLE_POWER, AnomalyKind.IMPOSSIBLE_POWER],
    ),
    # Two readings at one time cannot carry energy: an infinite power.
    "same-time-increase": ([(ms(2026, 12, 1, 8), 1.0), (ms(2026, 12, 1, 8), 2.0)], [0.0], [AnomalyKind.IMPOSSIBLE_POWER]),
    "single-reading": (hourly(42.0), [], []),
}


@pytest.mark.parametrize(("readings", "expected_kwh", "expected_kinds"), INTERVAL_CASES.values(), ids=INTERVAL_CASES.keys())
def test_consumption_intervals_hand_computed(readings, expected_kwh, expected_kinds):
    intervals, anomalies = consumption_intervals(readings)
    assert [interval.kwh for interval in intervals] == pytest.approx(expected_kwh)
    assert [anomaly.kind for anomaly in anomalies] == expected_kinds


def test_consumption_reset_case_totals_13_kwh():
    readings = hourly(1000.0, 1005.0, 3.0, 8.0)
    edges = [readings[0][0], readings[-1][0]]
    result = consumption_per_bucket(readings, edges)
    assert result.total_kwh == pytest.approx(13.0)


def test_consumption_reset_anomaly_fields():
    _, anomalies = consumption_intervals(hourly(8990.0, 9000.0, 50.0, 60.0))
    assert anomalies[0].baseline_kwh == 9000.0
    assert anomalies[0].reading_kwh == 50.0
    assert anomalies[0].counted_kwh == 50.0
    assert anomalies[0].power_kw == pytest.approx(50.0)


def test_consumption_impossible_jump_reports_its_power():
    _, anomalies = consumption_intervals(quarter_hourly(100.0, 100_100.0))
    assert anomalies[0].counted_kwh == 0.0
    assert anomalies[0].power_kw == pytest.approx(400_000.0)


def test_consumption_max_power_is_a_parameter():
    # 10 kWh in one hour is 10 kW: counted under the default, rejected at 5 kW.
    intervals, anomalies = consumption_intervals(hourly(0.0, 10.0), max_power_kw=5.0)
    assert intervals[0].kwh == 0.0
    assert anomalies[0].kind is AnomalyKind.IMPOSSIBLE_POWER


def test_consumption_jitter_is_a_parameter():
    # A step back of 50 Wh is a reset under the default 10 Wh, jitter under 100 Wh.
    default_intervals, _ = consumption_intervals(hourly(100.0, 99.95, 100.0))
    wide_intervals, wide_anomalies = consumption_intervals(hourly(100.0, 99.95, 100.0), jitter_kwh=0.1)
    assert [interval.kwh for interval in default_intervals] == pytest.approx([99.95, 0.05])
    assert [interval.kwh for interval in wide_intervals] == pytest.approx([0.0, 0.05])
    assert wide_anomalies == []


NEVER_NEGATIVE_CASES = {
    "falling-register": hourly(10.0, 9.995, 9.99, 5.0, 4.0, 0.0),
    "reset-then-jitter": hourly(1000.0, 2.0, 1.995, 1.99, 3.0),
    "glitch-down": quarter_hourly(5000.0, 0.0, 5000.0),
}


@pytest.mark.parametrize("readings", NEVER_NEGATIVE_CASES.values(), ids=NEVER_NEGATIVE_CASES.keys())
def test_consumption_never_negative(readings):
    intervals, _ = consumption_intervals(readings)
    edges = [readings[0][0] + index * 15 * MINUTE_MS for index in range(4 * len(readings) + 1)]
    buckets = spread_over_buckets(intervals, edges)
    assert min(interval.kwh for interval in intervals) >= 0.0
    assert min(buckets) >= 0.0


def test_spread_hourly_buckets_hand_computed():
    # 08:00 100 → 08:30 100.5 → 09:00 101 → 10:00 103: 1 kWh in the 08:00 hour, 2 in the 09:00 hour.
    readings = [(ms(2026, 12, 1, 8), 100.0), (ms(2026, 12, 1, 8, 30), 100.5), (ms(2026, 12, 1, 9), 101.0), (ms(2026, 12, 1, 10), 103.0)]
    edges = bucket_edges_ms(bucket_edges(datetime(2026, 12, 1, 8, tzinfo=WIB), datetime(2026, 12, 1, 10, tzinfo=WIB), WINDOWS["1h"], WIB))
    assert consumption_per_bucket(readings, edges).bucket_kwh == pytest.approx([1.0, 2.0])


def test_spread_midnight_gap_splits_evenly():
    # 23:00 → 01:00 WIB with 2 kWh: one hour on each local day.
    readings = [(ms(2026, 12, 1, 23), 500.0), (ms(2026, 12, 2, 1), 502.0)]
    edges = bucket_edges_ms(bucket_edges(datetime(2026, 12, 1, tzinfo=WIB), datetime(2026, 12, 3, tzinfo=WIB), WINDOWS["1d"], WIB))
    assert consumption_per_bucket(readings, edges).bucket_kwh == pytest.approx([1.0, 1.0])


def test_spread_months_split_at_wib_month_start():
    # 30 Nov 20:00 → 1 Dec 02:00 WIB with 6 kWh: 4 hours in November, 2 in December. Both times
    # are on 30 November in UTC, so a UTC split would give 6 and 0.
    readings = [(ms(2026, 11, 30, 20), 100.0), (ms(2026, 12, 1, 2), 106.0)]
    edges = bucket_edges_ms(bucket_edges(datetime(2026, 11, 15, tzinfo=WIB), datetime(2027, 1, 1, tzinfo=WIB), WINDOWS["1mo"], WIB))
    assert consumption_per_bucket(readings, edges).bucket_kwh == pytest.approx([4.0, 2.0])


def test_spread_edge_readings_give_only_their_share():
    # 07:00 100 → 09:00 102 is 1 kWh per hour; only the 08:00 hour is in the range.
    readings = [(ms(2026, 12, 1, 7), 100.0), (ms(2026, 12, 1, 9), 102.0)]
    edges = [ms(2026, 12, 1, 8), ms(2026, 12, 1, 9)]
    assert consumption_per_bucket(readings, edges).bucket_kwh == pytest.approx([1.0])


def test_consumption_skips_anomalies_outside_range():
    # The reset from 1,005 to 3 happens 09:00 → 10:00; the range starts at 10:00.
    readings = hourly(1000.0, 1005.0, 3.0, 8.0)
    edges = [ms(2026, 12, 1, 10), ms(2026, 12, 1, 11)]
    result = consumption_per_bucket(readings, edges)
    assert result.anomalies == []
    assert result.bucket_kwh == pytest.approx([5.0])


@pytest.mark.parametrize(
    ("window", "start", "end", "expected"),
    [
        ("1h", datetime(2026, 12, 1, 8, 20, tzinfo=WIB), datetime(2026, 12, 1, 9, 30, tzinfo=WIB), ["08:00", "09:00", "09:30"]),
        ("1d", datetime(2026, 12, 1, 12, tzinfo=WIB), datetime(2026, 12, 3, tzinfo=WIB), ["12-01", "12-02", "12-03"]),
        ("1w", datetime(2026, 12, 3, tzinfo=WIB), datetime(2026, 12, 14, tzinfo=WIB), ["11-30", "12-07", "12-14"]),
        ("1mo", datetime(2026, 11, 15, tzinfo=WIB), datetime(2027, 1, 1, tzinfo=WIB), ["11-01", "12-01", "01-01"]),
    ],
)
def test_bucket_edges_in_wib(window, start, end, expected):
    pattern = "%H:%M" if window == "1h" else "%m-%d"
    edges = bucket_edges(start, end, WINDOWS[window], WIB)
    assert [edge.strftime(pattern) for edge in edges] == expected
    assert edges[0].utcoffset().total_seconds() == 7 * 3600
