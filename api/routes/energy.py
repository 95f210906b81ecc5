"""Energy consumption of an OPD per window, computed from the meters' cumulative registers.

``/energy`` returns kWh and register anomalies; ``/energy/report`` adds the cost in Rupiah, the
kWh used outside office hours and the peak power.
"""

import logging
from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Annotated

import yaml
from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from contract.storage import MEASUREMENT_BY_STREAM

from ..deps import AppContext, OpdPath, ensure_known_opd, get_context
from ..energy import (
    DEFAULT_JITTER_KWH,
    DEFAULT_MAX_POWER_KW,
    Anomaly,
    AnomalyKind,
    bucket_edges,
    bucket_edges_ms,
    consumption_intervals,
    consumption_per_bucket,
)
from ..errors import ApiError
from ..influx import Series, quote_ident, quote_string
from ..params import EndQuery, IdQuery, StartQuery, TimeRange, WindowQuery, resolve_range
from ..tariffs import (
    TariffError,
    TariffPeriod,
    TariffTable,
    cost_per_bucket,
    meter_tariff_periods,
    office_hours,
    parse_tariff_table,
    peaks_per_bucket,
    round_idr,
)
from ..timewindows import from_epoch_ms, month_starts, to_epoch_ms

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1/opds/{opd}", tags=["energy"])

_FIELD = "energy_kwh_total"
_METER_TAGS = ("node", "device", "circuit")
_DECIMALS = 3

MeterKey = tuple[str, str, str]
"""(node, device, circuit) of one meter register; circuit is "" when the reading has none."""


class EnergyBucket(BaseModel):
    """Energy consumed in one window; ``ts`` and ``time`` are the window's start."""

    ts: int
    time: datetime
    kwh: float = Field(description="Energy consumed in the window, kWh, rounded to 3 decimals")


class EnergyAnomaly(BaseModel):
    """An interval between two readings whose register did not simply rise."""

    kind: AnomalyKind = Field(
        description="counter_reset: the register dropped, and its new value is counted as consumption since "
        "the reset. impossible_power: the change needs more than max_power_kw, so nothing is counted"
    )
    start_ts: int
    start: datetime
    end_ts: int
    end: datetime
    baseline_kwh: float = Field(description="Register value the interval was compared with, kWh")
    reading_kwh: float = Field(description="Register value at the interval's end, kWh")
    counted_kwh: float = Field(description="Energy counted for the interval, kWh")
    power_kw: float | None = Field(description="Mean power the change implies, kW; null for two readings at one time")


class MeterEnergy(BaseModel):
    """Consumption of one meter register: a device, or one circuit of a multi-circuit device."""

    node: str
    device: str
    circuit: str | None = None
    total_kwh: float = Field(description="Energy consumed in the whole range, kWh")
    buckets: list[EnergyBucket]
    anomalies: list[EnergyAnomaly]


class EnergyResponse(BaseModel):
    """Energy consumption of an OPD's meters in windows aligned to the deployment's zone."""

    opd: str
    window: str
    timezone: str
    start: datetime = Field(description="Start of the first bucket")
    end: datetime = Field(description="End of the range (exclusive) and of the last bucket")
    jitter_kwh: float = Field(description="Max step back of a register that counts as reboot jitter, kWh")
    max_power_kw: float = Field(description="Max mean power an interval may imply and still be counted, kW")
    total_kwh: float = Field(description="Energy of every meter in the whole range, kWh")
    totals: list[EnergyBucket] = Field(description="Energy of every meter per window")
    meters: list[MeterEnergy]


@router.get("/energy", response_model=EnergyResponse)
async def read_energy(
    context: Annotated[AppContext, Depends(get_context)],
    opd: Annotated[str, OpdPath],
    window: Annotated[str, WindowQuery] = "1h",
    start: Annotated[str | None, StartQuery] = None,
    end: Annotated[str | None, EndQuery] = None,
    device: Annotated[str | None, IdQuery] = None,
) -> EnergyResponse:
    """Return the kWh each meter consumed per window, from its `energy_kwh_total` register.

    Windows start on the deployment zone's boundaries as in `/series`. Energy between two
    readings is spread linearly over time, so a gap across midnight is split between the two
    days. The last reading before `start` and the first after `end` give the range's edges their
    share. A step back of the register of up to `jitter_kwh` counts nothing. A larger drop is a
    counter reset: the new value is counted as consumption since the reset. A change that needs
    more than `max_power_kw` is not counted and is listed in the meter's anomalies. Bucket
    values are rounded to 3 decimals, so they can differ from the rounded totals in the last
    decimal.
    """
    await ensure_known_opd(context, opd)
    zone = context.zone
    time_range = resolve_range(window, start, end, zone, context.settings.max_series_points)

    readings = await _read_registers(context, opd, device, time_range.start, time_range.end)

    edges = bucket_edges(time_range.start, time_range.end, time_range.window, zone)
    edges_ms = bucket_edges_ms(edges)
    totals = [0.0] * (len(edges) - 1)
    meters = []
    for (node, meter_device, circuit), meter_readings in sorted(readings.items()):
        consumption = consumption_per_bucket(meter_readings, edges_ms, DEFAULT_JITTER_KWH, DEFAULT_MAX_POWER_KW)
        totals = [total + kwh for total, kwh in zip(totals, consumption.bucket_kwh)]
        meters.append(
            MeterEnergy(
                node=node,
                device=meter_device,
                circuit=circuit or None,
                total_kwh=round(consumption.total_kwh, _DECIMALS),
                buckets=_buckets(edges, consumption.bucket_kwh),
                anomalies=[_anomaly(anomaly, context) for anomaly in consumption.anomalies],
            )
        )

    return EnergyResponse(
        opd=opd,
        window=time_range.window.name,
        timezone=context.settings.timezone,
        start=time_range.start,
        end=time_range.end,
        jitter_kwh=DEFAULT_JITTER_KWH,
        max_power_kw=DEFAULT_MAX_POWER_KW,
        total_kwh=round(sum(totals), _DECIMALS),
        totals=_buckets(edges, totals),
        meters=meters,
    )


async def _read_registers(
    context: AppContext, opd: str, device: str | None, start: datetime, end: datetime
) -> dict[MeterKey, list[tuple[int, float]]]:
    """Read each meter's register in ``[start, end)``, with the nearest reading on either side.

    The side readings are looked up at most ``latest_lookback_days`` away from the range, so a
    meter that was silent longer than that gets no share of energy at that edge.
    """
    conditions = [f"{quote_ident('opd')} = {quote_string(opd)}"]
    if device is not None:
        conditions.append(f"{quote_ident('device')} = {quote_string(device)}")
    where = " AND ".join(conditions)
    source = quote_ident(MEASUREMENT_BY_STREAM["energy"])
    field = quote_ident(_FIELD)
    group_by = ", ".join(quote_ident(tag) for tag in _METER_TAGS)
    lookback = timedelta(days=context.settings.latest_lookback_days)
    start_ms, end_ms = to_epoch_ms(start), to_epoch_ms(end)

    statements = [
        f"SELECT {field} AS kwh FROM {source} WHERE {where} "
        f"AND time >= {start_ms}ms AND time < {end_ms}ms GROUP BY {group_by} ORDER BY time ASC",
        f"SELECT last({field}) AS kwh FROM {source} WHERE {where} "
        f"AND time >= {to_epoch_ms(start - lookback)}ms AND time < {start_ms}ms GROUP BY {group_by}",
        f"SELECT first({field}) AS kwh FROM {source} WHERE {where} "
        f"AND time >= {end_ms}ms AND time < {to_epoch_ms(end + lookback)}ms GROUP BY {group_by}",
    ]
    inside, before, after = await context.reader.query("; ".join(statements))

    readings: dict[MeterKey, list[tuple[int, float]]] = {}
    for answer in (before, inside, after):
        _collect(answer, readings)
    for meter_readings in readings.values():
        meter_readings.sort()
    return readings


def _collect(answer: list[Series], readings: dict[MeterKey, list[tuple[int, float]]]) -> None:
    for series in answer:
        key = tuple(series.tags.get(tag, "") for tag in _METER_TAGS)
        points = [(row["time"], float(row["kwh"])) for row in series.rows if row.get("kwh") is not None]
        if points:
            readings.setdefault(key, []).extend(points)


def _buckets(edges: list[datetime], values: list[float]) -> list[EnergyBucket]:
    return [
        EnergyBucket(ts=to_epoch_ms(edge), time=edge, kwh=round(value, _DECIMALS))
        for edge, value in zip(edges, values)
    ]


def _anomaly(anomaly: Anomaly, context: AppContext) -> EnergyAnomaly:
    power_kw = None if anomaly.power_kw is None else round(anomaly.power_kw, _DECIMALS)
    return EnergyAnomaly(
        kind=anomaly.kind,
        start_ts=anomaly.start_ms,
        start=from_epoch_ms(anomaly.start_ms, context.zone),
        end_ts=anomaly.end_ms,
        end=from_epoch_ms(anomaly.end_ms, context.zone),
        baseline_kwh=anomaly.baseline_kwh,
        reading_kwh=anomaly.reading_kwh,
        counted_kwh=round(anomaly.counted_kwh, _DECIMALS),
        power_kw=power_kw,
    )


class TariffUsed(BaseModel):
    """A tariff class and price that priced some of the report's energy."""

    tariff_class: str = Field(description="PLN tariff class, e.g. P-1/TR")
    idr_per_kwh: float = Field(description="Price, Rupiah per kWh")
    effective_from: date = Field(description="Local date from which the meter was billed at this class and price")


class ReportBucket(BaseModel):
    """Energy, cost, waste indicator and peak of one meter in one window; ``ts`` and ``time`` are its start."""

    ts: int
    time: datetime
    kwh: float = Field(description="Energy consumed in the window, kWh, rounded to 3 decimals")
    cost_idr: int = Field(description="Cost of that energy, whole Rupiah")
    off_hours_kwh: float = Field(description="Part of kwh used outside office hours, kWh, rounded to 3 decimals")
    peak_kw: float | None = Field(description="Max of power_w in the window, kW; null without power readings")


class ReportTotal(BaseModel):
    """Energy, cost and waste indicator of every meter in one window."""

    ts: int
    time: datetime
    kwh: float
    cost_idr: int
    off_hours_kwh: float


class MeterReport(BaseModel):
    """Report of one meter register: a device, or one circuit of a multi-circuit device."""

    node: str
    device: str
    circuit: str | None = None
    total_kwh: float
    total_cost_idr: int
    total_off_hours_kwh: float
    peak_kw: float | None = Field(description="Max of the windows' peak_kw, kW")
    tariffs: list[TariffUsed] = Field(description="Tariffs that priced this meter's energy in the range, oldest first")
    buckets: list[ReportBucket]


class EnergyReportResponse(BaseModel):
    """Cost, consumption outside office hours and peak power of an OPD's meters per window."""

    opd: str
    window: str
    timezone: str
    start: datetime = Field(description="Start of the first bucket")
    end: datetime = Field(description="End of the range (exclusive) and of the last bucket")
    office_hours: str = Field(description="Office hours that off_hours_kwh is measured against, local time")
    total_kwh: float
    total_cost_idr: int
    total_off_hours_kwh: float
    totals: list[ReportTotal] = Field(description="Every meter per window")
    tariffs: list[TariffUsed] = Field(description="Every tariff used in the report")
    meters: list[MeterReport]


_OFFICE_HOURS_TEXT = "Monday-Thursday 07:30-16:00, Friday 07:30-16:30; weekends are outside office hours"


@router.get("/energy/report", response_model=EnergyReportResponse)
async def read_energy_report(
    context: Annotated[AppContext, Depends(get_context)],
    opd: Annotated[str, OpdPath],
    window: Annotated[str, WindowQuery] = "1d",
    start: Annotated[str | None, StartQuery] = None,
    end: Annotated[str | None, EndQuery] = None,
    device: Annotated[str | None, IdQuery] = None,
) -> EnergyReportResponse:
    """Return each meter's kWh, cost in Rupiah, kWh outside office hours and peak kW per window.

    kWh are computed as in `/energy`. Each meter is priced with its tariff class from the tariff
    file, or P-1/TR when the file does not map it. A window that contains a tariff change is
    split at the change, and each part is priced at its own price. `off_hours_kwh` is the energy
    used outside the OPD's office hours (opening to closing, from the office hours file; weekends,
    national holidays and cuti bersama are wholly outside), with interval energy spread linearly
    over time. `peak_kw` is
    the max of `power_w` in the window. The OPD totals have no peak, because the meters' peaks
    need not fall at the same time. Costs are summed unrounded and then rounded, so a total can
    differ from the sum of the rounded bucket costs by a few Rupiah.
    """
    await ensure_known_opd(context, opd)
    time_range = resolve_range(window, start, end, context.zone, context.settings.max_series_points)
    return await build_energy_report(context, opd, time_range, device)


async def build_energy_report(
    context: AppContext, opd: str, time_range: TimeRange, device: str | None = None
) -> EnergyReportResponse:
    """Read the OPD's registers and power peaks and compute the report of ``time_range``.

    The caller checks the OPD and the range. ``device`` limits the report to one device.

    Raises:
        ApiError: 500 ``tariffs_invalid`` when the tariff file has become unreadable.
        Unavailable: 503 when InfluxDB cannot be reached.
    """
    table = tariff_table(context.settings.tariffs_file)
    zone = context.zone
    hours_of = context.office_hours.calendar(opd).hours_of if context.office_hours else office_hours

    readings = await _read_registers(context, opd, device, time_range.start, time_range.end)
    peaks = await _read_peaks(context, opd, device, time_range.start, time_range.end, time_range.window)

    edges = bucket_edges(time_range.start, time_range.end, time_range.window, zone)
    edges_ms = bucket_edges_ms(edges)
    totals = [[0.0, 0.0, 0.0] for _ in range(len(edges) - 1)]  # kWh, Rupiah, off-hours kWh per bucket
    all_tariffs: set[TariffPeriod] = set()
    meters = []
    for key in sorted(set(readings) | set(peaks)):
        node, meter_device, circuit = key
        intervals, _ = consumption_intervals(readings.get(key, []), DEFAULT_JITTER_KWH, DEFAULT_MAX_POWER_KW)
        periods = meter_tariff_periods(table, opd, node, meter_device, circuit)
        costs, used = cost_per_bucket(intervals, edges_ms, periods, zone, hours_of)
        meter_peaks = peaks_per_bucket(peaks.get(key, []), edges_ms)

        meter_tariffs = sorted({periods[index] for indexes in used for index in indexes}, key=lambda p: p.effective_from)
        all_tariffs.update(meter_tariffs)
        for total, cost in zip(totals, costs):
            total[0] += cost.kwh
            total[1] += cost.cost_idr
            total[2] += cost.off_hours_kwh

        known_peaks = [peak for peak in meter_peaks if peak is not None]
        meters.append(
            MeterReport(
                node=node,
                device=meter_device,
                circuit=circuit or None,
                total_kwh=round(sum(cost.kwh for cost in costs), _DECIMALS),
                total_cost_idr=round_idr(sum(cost.cost_idr for cost in costs)),
                total_off_hours_kwh=round(sum(cost.off_hours_kwh for cost in costs), _DECIMALS),
                peak_kw=round(max(known_peaks), _DECIMALS) if known_peaks else None,
                tariffs=[_tariff_used(period) for period in meter_tariffs],
                buckets=[
                    ReportBucket(
                        ts=to_epoch_ms(edge),
                        time=edge,
                        kwh=round(cost.kwh, _DECIMALS),
                        cost_idr=round_idr(cost.cost_idr),
                        off_hours_kwh=round(cost.off_hours_kwh, _DECIMALS),
                        peak_kw=None if peak is None else round(peak, _DECIMALS),
                    )
                    for edge, cost, peak in zip(edges, costs, meter_peaks)
                ],
            )
        )

    return EnergyReportResponse(
        opd=opd,
        window=time_range.window.name,
        timezone=context.settings.timezone,
        start=time_range.start,
        end=time_range.end,
        office_hours=_OFFICE_HOURS_TEXT,
        total_kwh=round(sum(total[0] for total in totals), _DECIMALS),
        total_cost_idr=round_idr(sum(total[1] for total in totals)),
        total_off_hours_kwh=round(sum(total[2] for total in totals), _DECIMALS),
        totals=[
            ReportTotal(
                ts=to_epoch_ms(edge),
                time=edge,
                kwh=round(kwh, _DECIMALS),
                cost_idr=round_idr(cost_idr),
                off_hours_kwh=round(off_hours_kwh, _DECIMALS),
            )
            for edge, (kwh, cost_idr, off_hours_kwh) in zip(edges, totals)
        ],
        tariffs=[
            _tariff_used(period)
            for period in sorted(all_tariffs, key=lambda p: (p.effective_from, p.tariff_class, p.idr_per_kwh))
        ],
        meters=meters,
    )


def tariff_table(path: Path) -> TariffTable:
    """Return the tariff table of ``path``, read again only when the file's modification time changes.

    The application factory calls it once, so an invalid file stops the API at start-up; a file
    edited into an invalid state later gives a 500 on the report route until it is fixed.

    Raises:
        ApiError: 500 ``tariffs_invalid`` when the file cannot be read or is invalid.
    """
    try:
        modified_ns = path.stat().st_mtime_ns
    except OSError as exc:
        logger.error("Cannot read tariff file %s: %s", path, exc.strerror)
        raise ApiError(500, "tariffs_invalid", problem=f"{path}: {exc.strerror}") from None
    return _load_tariff_table(path, modified_ns)


@lru_cache(maxsize=4)
def _load_tariff_table(path: Path, modified_ns: int) -> TariffTable:
    """Read and validate a tariff file; ``modified_ns`` is part of the cache key only."""
    try:
        return parse_tariff_table(yaml.safe_load(path.read_text(encoding="utf-8")))
    except OSError as exc:
        problem = f"{path}: {exc.strerror}"
    except yaml.YAMLError as exc:
        problem = f"{path} is not valid YAML: {exc}"
    except TariffError as exc:
        problem = f"{path}: {exc}"
    logger.error("Invalid tariff file: %s", problem)
    raise ApiError(500, "tariffs_invalid", problem=problem)


def _tariff_used(period: TariffPeriod) -> TariffUsed:
    return TariffUsed(
        tariff_class=period.tariff_class, idr_per_kwh=period.idr_per_kwh, effective_from=period.effective_from
    )


async def _read_peaks(
    context: AppContext, opd: str, device: str | None, start: datetime, end: datetime, window
) -> dict[MeterKey, list[tuple[int, float | None]]]:
    """Read ``max(power_w)`` of each meter per window of ``[start, end)``, aligned to the zone as in ``/series``.

    A calendar month has no InfluxQL interval, so months are read with one statement each.
    """
    conditions = [f"{quote_ident('opd')} = {quote_string(opd)}"]
    if device is not None:
        conditions.append(f"{quote_ident('device')} = {quote_string(device)}")
    where = " AND ".join(conditions)
    selection = f"SELECT max({quote_ident('power_w')}) AS power_w FROM {quote_ident(MEASUREMENT_BY_STREAM['energy'])}"
    group_by = ", ".join(quote_ident(tag) for tag in _METER_TAGS)

    if window.influxql is not None:
        bounds = [(start, end)]
        grouping = f"GROUP BY time({window.influxql}), {group_by} fill(none) tz({quote_string(context.settings.timezone)})"
    else:
        starts = month_starts(start, end, context.zone)
        bounds = list(zip(starts, [*starts[1:], end]))
        grouping = f"GROUP BY {group_by}"
    statements = [
        f"{selection} WHERE {where} AND time >= {to_epoch_ms(low)}ms AND time < {to_epoch_ms(high)}ms {grouping}"
        for low, high in bounds
    ]
    answers = await context.reader.query("; ".join(statements))

    peaks: dict[MeterKey, list[tuple[int, float | None]]] = {}
    for answer in answers:
        for series in answer:
            key = tuple(series.tags.get(tag, "") for tag in _METER_TAGS)
            peaks.setdefault(key, []).extend((row["time"], row.get("power_w")) for row in series.rows)
    return peaks
