"""Cost in Rupiah, consumption outside office hours and peak power: pure cases computed by hand.

Times are WIB (UTC+7). 30 November 2026 is a Monday, 4 December a Friday, 5 December a Saturday.
"""

from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from api.energy import Interval
from api.tariffs import (
    TariffError,
    TariffPeriod,
    cost_per_bucket,
    is_office_time,
    meter_tariff_periods,
    office_hours_edges_ms,
    parse_tariff_table,
    peaks_per_bucket,
    round_idr,
)

WIB = ZoneInfo("Asia/Jakarta")
TARIFFS_FILE = Path(__file__).resolve().parent.parent / "config" / "tariffs.yaml"
P1 = TariffPeriod("P-1/TR", 1699.53, date(2022, 7, 1))


def ms(year, month, day, hour=0, minute=0) -> int:
    """Epoch milliseconds of a WIB wall-clock time."""
    return int(datetime(year, month, day, hour, minute, tzinfo=WIB).timestamp() * 1000)


def default_table():
    return parse_tariff_table(yaml.safe_load(TARIFFS_FILE.read_text(encoding="utf-8")))


def table_with(meters: list[dict] | None = None, p1_prices: list[dict] | None = None):
    """The default table, with ``meters`` mapped and P-1/TR's price list replaced when given."""
    document = yaml.safe_load(TARIFFS_FILE.read_text(encoding="utf-8"))
    document["meters"] = meters or []
    if p1_prices is not None:
        document["classes"]["P-1/TR"]["prices"] = p1_prices
    return parse_tariff_table(document)


ROUNDING_CASES = {
    # 10 kWh × 1,699.53 = 16,995.3 → 16,995.
    "ten-kwh-at-p1": (10 * 1699.53, 16_995),
    # Half a Rupiah rounds up, unlike Python's round(), which gives 2 for 2.5.
    "half-rounds-up": (2.5, 3),
    "just-below-half": (2.49, 2),
    # 1 kWh at P-2/TM: 1,522.88 → 1,523.
    "one-kwh-at-p2": (1522.88, 1523),
    "zero": (0.0, 0),
}


@pytest.mark.parametrize(("amount", "expected"), ROUNDING_CASES.values(), ids=ROUNDING_CASES.keys())
def test_round_idr_hand_computed(amount, expected):
    assert round_idr(amount) == expected


def test_default_table_has_pln_prices():
    table = default_table()
    assert table.default_class == "P-1/TR"
    assert table.classes["P-1/TR"].prices[0].idr_per_kwh == 1699.53
    assert table.classes["P-2/TM"].prices[0].idr_per_kwh == 1522.88
    assert table.classes["P-2/TM"].prices[0].effective_from == date(2022, 7, 1)


def test_meter_tariff_unmapped_uses_p1():
    periods = meter_tariff_periods(default_table(), "setda", "gw-01", "meter-01", "panel-utama")
    assert periods == [P1]


def test_meter_tariff_class_change_adds_period():
    table = table_with([{"opd": "setda", "node": "gw-01", "device": "meter-01", "tariff_class": "P-2/TM", "effective_from": "2026-12-02"}])
    periods = meter_tariff_periods(table, "setda", "gw-01", "meter-01", "")
    assert periods == [P1, TariffPeriod("P-2/TM", 1522.88, date(2026, 12, 2))]


def test_meter_tariff_circuit_entry_wins_over_device_entry():
    table = table_with(
        [
            {"opd": "setda", "node": "gw-01", "device": "meter-01", "tariff_class": "P-2/TM"},
            {"opd": "setda", "node": "gw-01", "device": "meter-01", "circuit": "penerangan", "tariff_class": "P-1/TR"},
        ]
    )
    assert meter_tariff_periods(table, "setda", "gw-01", "meter-01", "penerangan") == [P1]
    assert meter_tariff_periods(table, "setda", "gw-01", "meter-01", "ac")[0].tariff_class == "P-2/TM"


def test_meter_tariff_other_opd_not_matched():
    table = table_with([{"opd": "dinkes", "node": "gw-01", "device": "meter-01", "tariff_class": "P-2/TM"}])
    assert meter_tariff_periods(table, "setda", "gw-01", "meter-01", "") == [P1]


INVALID_TABLES = {
    "unknown-meter-class": ({"classes": {"P-1/TR": {"prices": [{"effective_from": "2022-07-01", "idr_per_kwh": 1699.53}]}}, "meters": [{"opd": "setda", "node": "gw-01", "device": "meter-01", "tariff_class": "X"}]}, "unknown tariff class X"),
    "unknown-default-class": ({"default_class": "P-9", "classes": {"P-1/TR": {"prices": [{"effective_from": "2022-07-01", "idr_per_kwh": 1.0}]}}}, "unknown tariff class P-9"),
    "zero-price": ({"classes": {"P-1/TR": {"prices": [{"effective_from": "2022-07-01", "idr_per_kwh": 0}]}}}, "idr_per_kwh"),
    "no-prices": ({"classes": {"P-1/TR": {"prices": []}}}, "prices"),
    "misspelled-key": ({"classes": {"P-1/TR": {"prices": [{"effective_form": "2022-07-01", "idr_per_kwh": 1.0}]}}}, "prices.0.effective_from"),
    "not-a-mapping": (["P-1/TR"], "document"),
}


@pytest.mark.parametrize(("document", "named"), INVALID_TABLES.values(), ids=INVALID_TABLES.keys())
def test_parse_tariff_table_invalid_names_the_entry(document, named):
    with pytest.raises(TariffError) as caught:
        parse_tariff_table(document)
    assert named in str(caught.value)


def test_cost_ten_kwh_at_p1():
    # 10 kWh on Saturday 10:00-11:00 at P-1/TR: 16,995.3 → 16,995.
    edges = [ms(2026, 12, 5, 10), ms(2026, 12, 5, 11)]
    costs, used = cost_per_bucket([Interval(edges[0], edges[1], 10.0)], edges, [P1], WIB)
    assert costs[0].kwh == pytest.approx(10.0)
    assert round_idr(costs[0].cost_idr) == 16_995
    assert used == [{0}]


# A bucket from 1 December 20:00 to 2 December 04:00 WIB contains an 8 kWh interval over the same
# span, so 4 kWh fall before the change at midnight and 4 after.
# (periods, expected cost, indexes of the periods used)
TARIFF_CHANGE_CASES = {
    # 4 × 1,699.53 + 4 × 1,522.88 = 6,798.12 + 6,091.52 = 12,889.64 → 12,890.
    "class-change-p1-to-p2": ([P1, TariffPeriod("P-2/TM", 1522.88, date(2026, 12, 2))], 12_890, {0, 1}),
    # 4 × 1,699.53 + 4 × 1,800 = 6,798.12 + 7,200 = 13,998.12 → 13,998.
    "price-change-within-p1": ([P1, TariffPeriod("P-1/TR", 1800.0, date(2026, 12, 2))], 13_998, {0, 1}),
    # A change after the bucket leaves it at the old price: 8 × 1,699.53 = 13,596.24 → 13,596.
    "change-after-bucket": ([P1, TariffPeriod("P-2/TM", 1522.88, date(2026, 12, 3))], 13_596, {0}),
    # A change before the bucket prices it all at the new price: 8 × 1,522.88 = 12,183.04 → 12,183.
    "change-before-bucket": ([P1, TariffPeriod("P-2/TM", 1522.88, date(2026, 12, 1))], 12_183, {1}),
}


@pytest.mark.parametrize(("periods", "expected_idr", "expected_used"), TARIFF_CHANGE_CASES.values(), ids=TARIFF_CHANGE_CASES.keys())
def test_cost_bucket_spanning_tariff_change(periods, expected_idr, expected_used):
    edges = [ms(2026, 12, 1, 20), ms(2026, 12, 2, 4)]
    costs, used = cost_per_bucket([Interval(edges[0], edges[1], 8.0)], edges, periods, WIB)
    assert costs[0].kwh == pytest.approx(8.0)
    assert round_idr(costs[0].cost_idr) == expected_idr
    assert used == [expected_used]


def test_cost_change_from_table_splits_bucket():
    # The same 8 kWh with the class change read from a table: 12,890 as in the class-change case.
    table = table_with([{"opd": "setda", "node": "gw-01", "device": "meter-01", "tariff_class": "P-2/TM", "effective_from": "2026-12-02"}])
    periods = meter_tariff_periods(table, "setda", "gw-01", "meter-01", "")
    edges = [ms(2026, 12, 1, 20), ms(2026, 12, 2, 4)]
    costs, _ = cost_per_bucket([Interval(edges[0], edges[1], 8.0)], edges, periods, WIB)
    assert round_idr(costs[0].cost_idr) == 12_890


def test_cost_before_first_price_uses_earliest_price():
    # 1 kWh in 2021, before the 1 July 2022 price: priced at 1,699.53 → 1,700.
    edges = [ms(2021, 1, 4, 10), ms(2021, 1, 4, 11)]
    costs, _ = cost_per_bucket([Interval(edges[0], edges[1], 1.0)], edges, [P1], WIB)
    assert round_idr(costs[0].cost_idr) == 1700


# (interval start, interval end, kWh, expected kWh outside office hours)
OFF_HOURS_CASES = {
    # Monday 15:00-17:00, closing at 16:00: 1 h in, 1 h out, so 1 of 2 kWh is outside.
    "monday-15-to-17": (ms(2026, 11, 30, 15), ms(2026, 11, 30, 17), 2.0, 1.0),
    # Saturday has no office hours: all 2 kWh are outside.
    "saturday-whole": (ms(2026, 12, 5, 10), ms(2026, 12, 5, 12), 2.0, 2.0),
    # Friday closes at 16:30: 16:00-16:30 in, 16:30-17:00 out, so half of 1 kWh is outside.
    "friday-16-to-17": (ms(2026, 12, 4, 16), ms(2026, 12, 4, 17), 1.0, 0.5),
    # Monday 07:00-08:00, opening at 07:30: half of 1 kWh is outside.
    "monday-opening": (ms(2026, 11, 30, 7), ms(2026, 11, 30, 8), 1.0, 0.5),
    # Tuesday 09:00-10:00 lies inside office hours: nothing outside.
    "tuesday-morning": (ms(2026, 12, 1, 9), ms(2026, 12, 1, 10), 1.0, 0.0),
    # Friday 12:00 to Monday 12:00 (72 h, 1 kWh/h): inside are Friday 12:00-16:30 (4.5 h) and
    # Monday 07:30-12:00 (4.5 h), so 72 - 9 = 63 kWh are outside.
    "weekend-gap": (ms(2026, 12, 4, 12), ms(2026, 12, 7, 12), 72.0, 63.0),
}


@pytest.mark.parametrize(("start_ms", "end_ms", "kwh", "expected"), OFF_HOURS_CASES.values(), ids=OFF_HOURS_CASES.keys())
def test_off_hours_kwh_hand_computed(start_ms, end_ms, kwh, expected):
    edges = [start_ms, end_ms]
    costs, _ = cost_per_bucket([Interval(start_ms, end_ms, kwh)], edges, [P1], WIB)
    assert costs[0].kwh == pytest.approx(kwh)
    assert costs[0].off_hours_kwh == pytest.approx(expected)


def test_off_hours_split_across_hourly_buckets():
    # Monday 15:00-17:00 with 2 kWh in hourly buckets: the 15:00 hour is inside, the 16:00 hour outside.
    edges = [ms(2026, 11, 30, 15), ms(2026, 11, 30, 16), ms(2026, 11, 30, 17)]
    costs, _ = cost_per_bucket([Interval(edges[0], edges[2], 2.0)], edges, [P1], WIB)
    assert [cost.off_hours_kwh for cost in costs] == pytest.approx([0.0, 1.0])
    assert [round_idr(cost.cost_idr) for cost in costs] == [1700, 1700]


OFFICE_TIME_CASES = {
    "monday-opening-instant": (ms(2026, 11, 30, 7, 30), True),
    "monday-closing-instant": (ms(2026, 11, 30, 16), False),
    "friday-16-15": (ms(2026, 12, 4, 16, 15), True),
    "saturday-noon": (ms(2026, 12, 5, 12), False),
    "sunday-noon": (ms(2026, 12, 6, 12), False),
    "tuesday-before-opening": (ms(2026, 12, 1, 7, 29), False),
}


@pytest.mark.parametrize(("moment_ms", "expected"), OFFICE_TIME_CASES.values(), ids=OFFICE_TIME_CASES.keys())
def test_is_office_time_hand_computed(moment_ms, expected):
    assert is_office_time(moment_ms, WIB) is expected


def test_office_hours_edges_of_a_week():
    # Monday to Friday each open and close once; the weekend adds nothing: 10 edges.
    edges = office_hours_edges_ms(ms(2026, 11, 30), ms(2026, 12, 7), WIB)
    assert len(edges) == 10
    assert edges[0] == ms(2026, 11, 30, 7, 30)
    assert edges[-1] == ms(2026, 12, 4, 16, 30)


# (rows of (window start, max W), bucket edges, expected kW per bucket)
PEAK_CASES = {
    # 1,500 W at 08:00 and 2,500 W at 09:00; no row for 10:00.
    "hourly": (
        [(ms(2026, 12, 1, 8), 1500.0), (ms(2026, 12, 1, 9), 2500.0)],
        [ms(2026, 12, 1, 8), ms(2026, 12, 1, 9), ms(2026, 12, 1, 10), ms(2026, 12, 1, 11)],
        [1.5, 2.5, None],
    ),
    # Two rows in one bucket keep the larger: 3,200 W.
    "two-rows-one-bucket": (
        [(ms(2026, 12, 1, 8), 3200.0), (ms(2026, 12, 1, 8, 30), 900.0)],
        [ms(2026, 12, 1, 8), ms(2026, 12, 1, 9)],
        [3.2],
    ),
    # A meter that exports has negative power: -200 W is -0.2 kW.
    "exporting": ([(ms(2026, 12, 1, 8), -200.0)], [ms(2026, 12, 1, 8), ms(2026, 12, 1, 9)], [-0.2]),
    # A null max and a row outside the range give no peak.
    "null-and-outside": (
        [(ms(2026, 12, 1, 8), None), (ms(2026, 12, 1, 12), 5000.0)],
        [ms(2026, 12, 1, 8), ms(2026, 12, 1, 9)],
        [None],
    ),
}


@pytest.mark.parametrize(("rows", "edges", "expected"), PEAK_CASES.values(), ids=PEAK_CASES.keys())
def test_peaks_per_bucket_hand_computed(rows, edges, expected):
    assert peaks_per_bucket(rows, edges) == pytest.approx(expected)
