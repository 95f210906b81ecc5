"""Latest readings and aggregated time series of an OPD."""

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from contract.storage import MEASUREMENT_BY_STREAM, TAG_FIELDS, FieldKind, stored_fields
from ingest.points import PSEUDONYMIZED_FIELDS

from ..deps import AppContext, OpdPath, ensure_known_opd, get_context
from ..errors import ApiError
from ..influx import quote_ident, quote_string
from ..schemas import DeviceSeries, LatestReading, LatestResponse, SeriesPoint, SeriesResponse
from ..params import EndQuery, IdQuery, StartQuery, WindowQuery, resolve_range
from ..security.audit import record
from ..security.context import SecurityContext
from ..security.deps import current_principal, get_security
from ..security.principals import Principal
from ..timewindows import from_epoch_ms, month_starts, to_epoch_ms

router = APIRouter(prefix="/api/v1/opds/{opd}", tags=["readings"])


class LatestStream(StrEnum):
    """Streams with a latest reading."""

    ROOM = "room"
    ENERGY = "energy"
    ATTENDANCE = "attendance"
    STATUS = "status"


class SeriesStream(StrEnum):
    """Streams with time series."""

    ROOM = "room"
    ENERGY = "energy"
    ATTENDANCE = "attendance"


class Aggregate(StrEnum):
    """InfluxQL aggregate or selector applied in each window."""

    MEAN = "mean"
    MEDIAN = "median"
    MIN = "min"
    MAX = "max"
    SUM = "sum"
    COUNT = "count"
    FIRST = "first"
    LAST = "last"
    SPREAD = "spread"


_ANY_TYPE_AGGREGATES = {Aggregate.COUNT, Aggregate.FIRST, Aggregate.LAST}
_NUMERIC = {FieldKind.FLOAT, FieldKind.INTEGER}


@router.get("/latest", response_model=LatestResponse)
async def read_latest(
    context: Annotated[AppContext, Depends(get_context)],
    security: Annotated[SecurityContext, Depends(get_security)],
    principal: Annotated[Principal, Depends(current_principal)],
    opd: Annotated[str, OpdPath],
    stream: Annotated[LatestStream, Query(description="Stream to read")] = LatestStream.ROOM,
) -> LatestResponse:
    """Return the newest point of every device of the OPD on one stream (per node for status).

    On the attendance stream, `employee_id` is the stored pseudonym, and it is left out for
    roles that see attendance as counts only (leadership, integration).
    """
    await ensure_known_opd(context, opd)
    hidden_fields = set() if principal.may_see_personal_data(opd) else set(PSEUDONYMIZED_FIELDS.values())

    group_by = "node" if stream is LatestStream.STATUS else "node, device"
    group_by = ", ".join(quote_ident(tag.strip()) for tag in group_by.split(","))
    statement = (
        f"SELECT * FROM {quote_ident(MEASUREMENT_BY_STREAM[stream.value])} "
        f"WHERE {quote_ident('opd')} = {quote_string(opd)} "
        f"AND time > now() - {context.settings.latest_lookback_days}d "
        f"GROUP BY {group_by} ORDER BY time DESC LIMIT 1"
    )
    answers = await context.reader.query(statement)

    readings = []
    for series in answers[0]:
        row = series.rows[0]
        tags = {key: row[key] for key in TAG_FIELDS if row.get(key) not in (None, "") and key != "device"}
        values = {
            key: value
            for key, value in row.items()
            if value is not None and key not in ("time", "opd", "node") and key not in TAG_FIELDS and key not in hidden_fields
        }
        readings.append(
            LatestReading(
                node=series.tags["node"],
                device=series.tags.get("device") or None,
                ts=row["time"],
                time=from_epoch_ms(row["time"], context.zone),
                tags=tags,
                values=values,
            )
        )
    readings.sort(key=lambda reading: (reading.node, reading.device or ""))
    if stream is LatestStream.ATTENDANCE and not hidden_fields:
        await record(
            security.sessions, principal.actor, "personal_data.view", f"opd:{opd}/latest?stream=attendance", rows=len(readings)
        )
    return LatestResponse(opd=opd, stream=stream.value, timezone=context.settings.timezone, readings=readings)


@router.get("/series", response_model=SeriesResponse)
async def read_series(
    context: Annotated[AppContext, Depends(get_context)],
    security: Annotated[SecurityContext, Depends(get_security)],
    principal: Annotated[Principal, Depends(current_principal)],
    opd: Annotated[str, OpdPath],
    field: Annotated[str, Query(description="Field to aggregate, e.g. temperature_c or power_w")],
    stream: Annotated[SeriesStream, Query(description="Stream of the field")] = SeriesStream.ROOM,
    agg: Annotated[Aggregate, Query(description="Aggregate per window")] = Aggregate.MEAN,
    window: Annotated[str, WindowQuery] = "1h",
    start: Annotated[str | None, StartQuery] = None,
    end: Annotated[str | None, EndQuery] = None,
    node: Annotated[str | None, IdQuery] = None,
    device: Annotated[str | None, IdQuery] = None,
    room: Annotated[str | None, IdQuery] = None,
) -> SeriesResponse:
    """Aggregate one field per device in windows that start on the deployment zone's boundaries.

    Days and weeks start at local midnight (weeks on Monday), months on the first day of the
    month; ``start`` is moved back to the start of its window, so every bucket is whole.
    `employee_id` with `first` or `last` returns pseudonyms, which only admin and the OPD's
    facility_manager may see; every role may count it.
    """
    shows_pseudonyms = field in PSEUDONYMIZED_FIELDS.values() and agg is not Aggregate.COUNT
    if shows_pseudonyms:
        principal.require_personal_data(opd)
    await ensure_known_opd(context, opd)
    zone = context.zone
    fields = stored_fields(stream.value)
    if field not in fields:
        raise ApiError(422, "unknown_field", parameter="field", field=field, stream=stream.value, choices=", ".join(fields))
    if fields[field] not in _NUMERIC and agg not in _ANY_TYPE_AGGREGATES:
        raise ApiError(422, "field_not_numeric", parameter="agg", field=field, agg=agg.value)

    time_range = resolve_range(window, start, end, zone, context.settings.max_series_points)
    chosen, start_time, end_time = time_range.window, time_range.start, time_range.end

    conditions = [f"{quote_ident('opd')} = {quote_string(opd)}"]
    for tag, value in (("node", node), ("device", device), ("room", room)):
        if value is not None:
            conditions.append(f"{quote_ident(tag)} = {quote_string(value)}")
    selection = f"SELECT {agg.value}({quote_ident(field)}) AS value FROM {quote_ident(MEASUREMENT_BY_STREAM[stream.value])}"
    group_tags = f"{quote_ident('node')}, {quote_ident('device')}"

    if chosen.influxql is not None:
        series = await _windowed(context, selection, conditions, group_tags, chosen.influxql, start_time, end_time)
    else:
        series = await _monthly(context, selection, conditions, group_tags, start_time, end_time)

    if shows_pseudonyms:
        await record(
            security.sessions, principal.actor, "personal_data.view", f"opd:{opd}/series?field={field}", agg=agg.value
        )
    return SeriesResponse(
        opd=opd,
        stream=stream.value,
        field=field,
        agg=agg.value,
        window=window,
        timezone=context.settings.timezone,
        start=start_time,
        end=end_time,
        series=series,
    )


async def _windowed(context, selection, conditions, group_tags, interval, start_time, end_time) -> list[DeviceSeries]:
    where = " AND ".join([*conditions, *_time_range(start_time, end_time)])
    statement = (
        f"{selection} WHERE {where} GROUP BY time({interval}), {group_tags} fill(none) "
        f"tz({quote_string(context.settings.timezone)})"
    )
    answers = await context.reader.query(statement)

    collected = []
    for series in answers[0]:
        points = [
            SeriesPoint(ts=row["time"], time=from_epoch_ms(row["time"], context.zone), value=row["value"])
            for row in series.rows
        ]
        collected.append(DeviceSeries(node=series.tags.get("node", ""), device=series.tags.get("device", ""), points=points))
    return sorted(collected, key=lambda item: (item.node, item.device))


async def _monthly(context, selection, conditions, group_tags, start_time, end_time) -> list[DeviceSeries]:
    """Run one statement per local month; InfluxQL has no calendar-month interval."""
    starts = month_starts(start_time, end_time, context.zone)
    bounds = []
    for index, month_start in enumerate(starts):
        month_end = starts[index + 1] if index + 1 < len(starts) else min(end_time, _next_month(month_start))
        bounds.append((month_start, month_end))

    statements = []
    for month_start, month_end in bounds:
        where = " AND ".join([*conditions, *_time_range(month_start, month_end)])
        statements.append(f"{selection} WHERE {where} GROUP BY {group_tags}")
    answers = await context.reader.query("; ".join(statements))

    by_device: dict[tuple[str, str], list[SeriesPoint]] = {}
    for (month_start, _), answer in zip(bounds, answers):
        for series in answer:
            key = (series.tags.get("node", ""), series.tags.get("device", ""))
            value = series.rows[0]["value"] if series.rows else None
            by_device.setdefault(key, []).append(
                SeriesPoint(ts=to_epoch_ms(month_start), time=month_start, value=value)
            )
    return [DeviceSeries(node=node, device=device, points=points) for (node, device), points in sorted(by_device.items())]


def _next_month(month_start: datetime) -> datetime:
    year, month = (month_start.year + 1, 1) if month_start.month == 12 else (month_start.year, month_start.month + 1)
    return month_start.replace(year=year, month=month)


def _time_range(start_time: datetime, end_time: datetime) -> list[str]:
    return [f"time >= {to_epoch_ms(start_time)}ms", f"time < {to_epoch_ms(end_time)}ms"]
