"""Window alignment and local day bounds, in WIB and in a zone with daylight saving."""

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from api.timewindows import WINDOWS, bucket_count, local_day_bounds, month_starts, snap_start

WIB = ZoneInfo("Asia/Jakarta")
MADRID = ZoneInfo("Europe/Madrid")


def test_local_day_bounds_wib():
    start, end = local_day_bounds(date(2026, 12, 1), WIB)
    assert start.isoformat() == "2026-12-01T00:00:00+07:00"
    assert (end - start).total_seconds() == 24 * 3600


@pytest.mark.parametrize(("day", "hours"), [(date(2025, 3, 30), 23), (date(2025, 10, 26), 25), (date(2025, 6, 1), 24)])
def test_local_day_bounds_follow_daylight_saving(day, hours):
    start, end = local_day_bounds(day, MADRID)
    assert (end.timestamp() - start.timestamp()) / 3600 == hours


@pytest.mark.parametrize(
    ("window", "moment", "expected"),
    [
        ("1h", datetime(2026, 12, 1, 8, 59, tzinfo=WIB), "2026-12-01T08:00:00+07:00"),
        ("15m", datetime(2026, 12, 1, 8, 59, tzinfo=WIB), "2026-12-01T08:45:00+07:00"),
        ("1d", datetime(2026, 12, 1, 23, 30, tzinfo=WIB), "2026-12-01T00:00:00+07:00"),
        ("1w", datetime(2026, 12, 6, 23, 0, tzinfo=WIB), "2026-11-30T00:00:00+07:00"),
        ("1w", datetime(2026, 11, 30, 0, 0, tzinfo=WIB), "2026-11-30T00:00:00+07:00"),
        ("1mo", datetime(2026, 12, 31, 23, 59, tzinfo=WIB), "2026-12-01T00:00:00+07:00"),
    ],
)
def test_snap_start_in_wib(window, moment, expected):
    assert snap_start(moment, WINDOWS[window], WIB).isoformat() == expected


def test_snap_start_converts_utc_input_to_local_day():
    moment = datetime.fromisoformat("2026-12-01T17:30:00+00:00")  # 00:30 WIB on 2 December
    assert snap_start(moment, WINDOWS["1d"], WIB).isoformat() == "2026-12-02T00:00:00+07:00"


def test_month_starts_cross_the_year():
    starts = month_starts(datetime(2026, 11, 15, tzinfo=WIB), datetime(2027, 2, 1, tzinfo=WIB), WIB)
    assert [start.strftime("%Y-%m") for start in starts] == ["2026-11", "2026-12", "2027-01"]


def test_bucket_count_rounds_up():
    start = datetime(2026, 12, 1, tzinfo=WIB)
    assert bucket_count(start, datetime(2026, 12, 1, 2, 30, tzinfo=WIB), WINDOWS["1h"], WIB) == 3
    assert bucket_count(start, datetime(2027, 3, 1, tzinfo=WIB), WINDOWS["1mo"], WIB) == 3
