"""Electricity cost, consumption outside office hours and peak power of one meter per bucket.

Pure logic, no I/O: the route reads ``config/tariffs.yaml`` and InfluxDB, this module prices
the intervals of ``api.energy.consumption_intervals``.

**Tariffs.** A tariff class (``P-1/TR``, ``P-2/TM``) has prices in Rupiah per kWh, each with the
local date it takes effect. The default prices are PLN's tariffs for government offices set
by the Ministry of Energy and Mineral Resources (ESDM) for July–September 2022, in letter
T-162/TL.04/MEM.L/2022 of 2 June 2022, and kept for October–December 2022: P-1/TR (6,600 VA
to 200 kVA) Rp 1,699.53/kWh and P-2/TM (above 200 kVA) Rp 1,522.88/kWh, both since 1 July
2022. Later quarterly adjustments may have changed them, so they must be checked against
PLN's current tariff table before the costs are used in a budget.

A meter (OPD, node, device and optionally circuit) is mapped to a class in the table, and it
may change class on a given date. A meter without a mapping uses the table's default class
(P-1/TR in the shipped table), so every meter gets a cost. A meter on a connection above
200 kVA must be mapped to P-2/TM. Before its first mapping date a meter also uses the
default class. Before a class's first price, the class's earliest price applies, so a range
that starts before the table still gets a cost.

**Pricing.** A change of class or price takes effect at local midnight of its date. A bucket is
priced with the tariff in force at its start. When a change falls inside a bucket, the bucket
is split at the change, the interval energy is spread linearly over time as in
``api.energy``, and each part is priced with its own tariff. Rupiah amounts are rounded to
whole Rupiah, half up, where Python's ``round`` would round 0.5 to the even neighbour.

**Office hours.** Energy used outside office hours is a waste indicator. The default schedule
is Monday–Thursday 07:30–16:00 and Friday 07:30–16:30 local time, with the weekend entirely
outside office hours. Interval energy is spread linearly over time, so 2 kWh from 15:00 to
17:00 on a Monday is 1 kWh inside and 1 kWh outside.

**Peak power.** InfluxDB returns ``max(power_w)`` per zone-aligned window. ``peaks_per_bucket``
places those rows in the buckets and converts W to kW.
"""

from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from contract import ID_PATTERN

from .energy import Interval, spread_over_buckets
from .timewindows import to_epoch_ms

DEFAULT_TARIFF_CLASS = "P-1/TR"
"""Class of a meter the tariff table does not map: PLN's government tariff for 6,600 VA to 200 kVA."""

OFFICE_HOURS: dict[int, tuple[time, time]] = {
    0: (time(7, 30), time(16, 0)),
    1: (time(7, 30), time(16, 0)),
    2: (time(7, 30), time(16, 0)),
    3: (time(7, 30), time(16, 0)),
    4: (time(7, 30), time(16, 30)),
}
"""Default office hours by weekday (Monday is 0), local time. A weekday not listed has none."""


class TariffError(ValueError):
    """Raised when a tariff table is invalid. The message names the entry and the problem."""


class TariffPrice(BaseModel):
    """A class's price from a local date on."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    effective_from: date
    idr_per_kwh: float = Field(gt=0, description="Price of energy, Rupiah per kWh")


class TariffClass(BaseModel):
    """A tariff class and its prices over time."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str = ""
    prices: list[TariffPrice] = Field(min_length=1)


class MeterTariff(BaseModel):
    """The class of one meter from ``effective_from`` on. Without a circuit, it applies to every circuit of the device."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    opd: str = Field(pattern=ID_PATTERN)
    node: str = Field(pattern=ID_PATTERN)
    device: str = Field(pattern=ID_PATTERN)
    circuit: str | None = Field(default=None, pattern=ID_PATTERN)
    tariff_class: str
    effective_from: date | None = None


class TariffTable(BaseModel):
    """Tariff classes with their prices, and the class of each mapped meter."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    default_class: str = DEFAULT_TARIFF_CLASS
    classes: dict[str, TariffClass] = Field(min_length=1)
    meters: list[MeterTariff] = Field(default_factory=list)

    @model_validator(mode="after")
    def _known_classes(self) -> "TariffTable":
        names = [self.default_class, *(meter.tariff_class for meter in self.meters)]
        unknown = sorted({name for name in names if name not in self.classes})
        if unknown:
            raise ValueError(f"unknown tariff class {', '.join(unknown)}, so add it under classes or use one of {', '.join(self.classes)}")
        return self


def parse_tariff_table(document: object) -> TariffTable:
    """Validate a parsed tariff YAML document.

    Raises:
        TariffError: an entry is missing, has the wrong type, or names an undefined class.
    """
    try:
        return TariffTable.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "document"
        raise TariffError(f"{where}: {first['msg']}") from None


@dataclass(frozen=True, slots=True)
class TariffPeriod:
    """A meter's class and price from local midnight of ``effective_from`` until the next period."""

    tariff_class: str
    idr_per_kwh: float
    effective_from: date


def meter_tariff_periods(table: TariffTable, opd: str, node: str, device: str, circuit: str) -> list[TariffPeriod]:
    """Return the tariff periods of one meter register, oldest first. ``circuit`` is "" when it has none.

    Entries for the meter's circuit take precedence over entries for the whole device.
    """
    entries = [entry for entry in table.meters if (entry.opd, entry.node, entry.device) == (opd, node, device)]
    for_circuit = [entry for entry in entries if entry.circuit is not None and entry.circuit == circuit]
    chosen = for_circuit or [entry for entry in entries if entry.circuit is None]

    # Class assignments by date, where date.min stands for "before any dated entry".
    assignments = [(date.min, table.default_class)]
    assignments += sorted((entry.effective_from or date.min, entry.tariff_class) for entry in chosen)

    change_dates = {assigned for assigned, _ in assignments}
    for _, name in assignments:
        change_dates.update(price.effective_from for price in table.classes[name].prices)

    periods: list[TariffPeriod] = []
    for day in sorted(change_dates):
        name = _at(assignments, day)
        price = _price_at(table.classes[name], day)
        if periods and (periods[-1].tariff_class, periods[-1].idr_per_kwh) == (name, price.idr_per_kwh):
            continue
        assigned_on = max(assigned for assigned, assigned_name in assignments if assigned <= day)
        periods.append(TariffPeriod(name, price.idr_per_kwh, max(price.effective_from, assigned_on)))
    return periods


def _at(assignments: list[tuple[date, str]], day: date) -> str:
    """Return the class assigned on ``day``. Of two entries with the same date, the later one wins."""
    return [name for assigned, name in assignments if assigned <= day][-1]


def _price_at(tariff_class: TariffClass, day: date) -> TariffPrice:
    """Return the price in force on ``day``, or the earliest price when ``day`` is before all of them."""
    prices = sorted(tariff_class.prices, key=lambda price: price.effective_from)
    in_force = [price for price in prices if price.effective_from <= day]
    return in_force[-1] if in_force else prices[0]


def round_idr(amount: float) -> int:
    """Round a Rupiah amount to whole Rupiah, half up: 16,995.3 gives 16,995 and 0.5 gives 1."""
    return int(Decimal(repr(amount)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


HoursOfDay = Callable[[date], tuple[time, time] | None]
"""Local opening and closing time of a date, or None on a day without office hours."""


def office_hours(day: date) -> tuple[time, time] | None:
    """Return the fixed default opening and closing time of ``day``, or None at the weekend.

    This schedule has no holidays. The energy report passes each OPD's own calendar
    (``api.office_hours.WorkdayCalendar.hours_of``) instead.
    """
    return OFFICE_HOURS.get(day.weekday())


def is_office_time(moment_ms: int, zone: ZoneInfo, hours_of: HoursOfDay = office_hours) -> bool:
    """Return True when ``moment_ms`` (UTC epoch ms) is inside office hours in ``zone``."""
    local = datetime.fromtimestamp(moment_ms / 1000, tz=zone)
    hours = hours_of(local.date())
    return hours is not None and hours[0] <= local.time() < hours[1]


def office_hours_edges_ms(start_ms: int, end_ms: int, zone: ZoneInfo, hours_of: HoursOfDay = office_hours) -> list[int]:
    """Return the openings and closings strictly between ``start_ms`` and ``end_ms``, UTC epoch ms."""
    first_day = datetime.fromtimestamp(start_ms / 1000, tz=zone).date()
    last_day = datetime.fromtimestamp(end_ms / 1000, tz=zone).date()
    edges = []
    day = first_day
    while day <= last_day:
        hours = hours_of(day)
        if hours is not None:
            for moment in hours:
                edge = to_epoch_ms(datetime.combine(day, moment, tzinfo=zone))
                if start_ms < edge < end_ms:
                    edges.append(edge)
        day += timedelta(days=1)
    return edges


@dataclass(slots=True)
class BucketCost:
    """Energy of one meter in one bucket: kWh, its unrounded cost in Rupiah and the kWh outside office hours."""

    kwh: float = 0.0
    cost_idr: float = 0.0
    off_hours_kwh: float = 0.0


def cost_per_bucket(
    intervals: list[Interval],
    edges_ms: list[int],
    periods: list[TariffPeriod],
    zone: ZoneInfo,
    hours_of: HoursOfDay = office_hours,
) -> tuple[list[BucketCost], list[set[int]]]:
    """Price one meter's intervals per bucket, and return the indexes of ``periods`` each bucket used too.

    Each bucket is split at tariff changes and at office-hours openings and closings, so every
    part has one price and lies wholly inside or outside office hours. The interval energy is
    spread over the parts linearly, as ``api.energy.spread_over_buckets`` does over buckets.
    """
    period_starts = [to_epoch_ms(datetime.combine(period.effective_from, time.min, tzinfo=zone)) for period in periods]
    cuts = [edge for edge in period_starts if edges_ms[0] < edge < edges_ms[-1]]
    cuts += office_hours_edges_ms(edges_ms[0], edges_ms[-1], zone, hours_of)
    parts = sorted(set(edges_ms) | set(cuts))
    part_kwh = spread_over_buckets(intervals, parts)

    buckets = [BucketCost() for _ in range(len(edges_ms) - 1)]
    used: list[set[int]] = [set() for _ in buckets]
    for part_start, kwh in zip(parts, part_kwh):
        bucket = bisect_right(edges_ms, part_start) - 1
        period = max(bisect_right(period_starts, part_start) - 1, 0)
        used[bucket].add(period)

        buckets[bucket].kwh += kwh
        buckets[bucket].cost_idr += kwh * periods[period].idr_per_kwh
        if not is_office_time(part_start, zone, hours_of):
            buckets[bucket].off_hours_kwh += kwh
    return buckets, used


def peaks_per_bucket(rows: list[tuple[int, float | None]], edges_ms: list[int]) -> list[float | None]:
    """Place ``(window start ms, max power W)`` rows in the buckets of ``edges_ms`` and return kW per bucket.

    A bucket without a row, or with only null rows, has no peak (None). Two rows in one bucket
    keep the larger.
    """
    peaks: list[float | None] = [None] * (len(edges_ms) - 1)
    for ts_ms, power_w in rows:
        index = bisect_right(edges_ms, ts_ms) - 1
        if power_w is None or not 0 <= index < len(peaks):
            continue
        power_kw = power_w / 1000
        current = peaks[index]
        peaks[index] = power_kw if current is None else max(current, power_kw)
    return peaks
