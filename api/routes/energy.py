"""Energy consumption of an OPD per window, computed from the meters' cumulative registers."""

from datetime import datetime, timedelta
from typing import Annotated

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
    consumption_per_bucket,
)
from ..influx import Series, quote_ident, quote_string
from ..params import EndQuery, IdQuery, StartQuery, WindowQuery, resolve_range
from ..timewindows import from_epoch_ms, to_epoch_ms

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
