"""Command-center overview of every OPD in one request.

The overview of all OPDs comes from the same 8 InfluxQL statements, sent in one request: newest point per
device, newest node status per node, distinct employees who punched today per OPD, and the
meter registers of today and of the previous 4 same weekdays. The count of statements does
not grow with the number of OPDs or devices.
"""

import asyncio
from datetime import date, datetime, time, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from contract.catalogue import DeviceKind, Opd
from contract.storage import MEASUREMENT_BY_STREAM

from .. import overview
from ..deps import AppContext, get_context
from ..influx import Series, quote_ident
from ..monitor.alert_store import AlertStore
from ..monitor.rules import comfort_limits
from ..security.deps import current_principal
from ..security.principals import Principal
from ..timewindows import from_epoch_ms, to_epoch_ms

_RECENT_WINDOW_MS = 86_400_000
"""Window of the newest-point statement, ms: one day."""

router = APIRouter(prefix="/api/v1", tags=["overview"])

_ENERGY_MARGIN = timedelta(hours=1)
"""How far past a window's edges the meter readings are read, so the intervals across the edges get their share."""

_METER_TAGS = ("node", "device", "circuit")
_DECIMALS = 3


class DeviceState(BaseModel):
    """Devices and nodes of one OPD."""

    known: int = Field(description="Devices in the catalogue or with a point in the last 24 h")
    online: int = Field(description="Known devices whose newest point is at most device_offline_s old")
    offline: int = Field(description="Known devices that are not online")
    offline_nodes: list[str] = Field(description="Nodes whose newest node_status state is offline")


class AttendanceToday(BaseModel):
    """Employees who punched since local midnight."""

    punched: int = Field(description="Distinct employees with at least one punch today")
    employees: int = Field(description="Employees of the OPD in the catalogue; 0 when not listed")
    rate: float | None = Field(description="punched / employees, rounded to 3 decimals; null when employees is 0")


class EnergyToday(BaseModel):
    """Energy since local midnight against the usual energy of this weekday up to the same time."""

    today_kwh: float | None = Field(description="kWh since local midnight; null when no meter sent a reading")
    usual_kwh: float | None = Field(
        description="Median of the kWh of the same weekday over the previous 4 weeks, each from local midnight "
        "up to the same local time; weeks without readings are left out; null when all 4 have none"
    )
    usual_weeks: int = Field(description="Number of previous weeks in the median, 0 to 4")


class ComfortBreach(BaseModel):
    """A comfort limit the room's reading breaks."""

    field: str = Field(description="co2_ppm, temperature_c or humidity_pct")
    limit: str = Field(description="The limit broken, e.g. '> 1000'")
    value: float


class WorstRoom(BaseModel):
    """The room whose newest reading is furthest outside comfort."""

    room: str
    name: str | None = Field(description="Room name from the catalogue; null for a room it does not list")
    node: str
    device: str
    ts: int
    time: datetime
    co2_ppm: float | None
    temperature_c: float | None
    humidity_pct: float | None
    breaches: list[ComfortBreach]


class OpdOverview(BaseModel):
    """The glance of one OPD."""

    opd: str
    name: str
    in_catalogue: bool
    devices: DeviceState
    attendance: AttendanceToday
    energy: EnergyToday
    open_alerts: int = Field(description="Alerts of the OPD that are open now (comfort, device and node offline)")
    worst_room: WorstRoom | None = Field(
        description="null when every room with a current reading is comfortable, and outside the OPD's office "
        "hours when the alert rules limit comfort to them (the default)"
    )


class OverviewResponse(BaseModel):
    """Overview of every OPD of the catalogue and every OPD seen in the data."""

    ts: int = Field(description="Time of the overview, UTC epoch ms")
    time: datetime
    timezone: str
    device_offline_s: int = Field(description="Age of a device's newest point after which it counts as offline, s")
    opds: list[OpdOverview]


@router.get("/overview", response_model=OverviewResponse)
async def read_overview(
    request: Request,
    context: Annotated[AppContext, Depends(get_context)],
    principal: Annotated[Principal, Depends(current_principal)],
) -> OverviewResponse:
    """Return devices, attendance, energy and the worst room of every OPD at a glance.

    Devices are online when their newest point is at most `device_offline_s` old. Energy counts
    from local midnight with the rules of `/energy`, against the median of the same weekday of
    the previous 4 weeks up to the same local time. `open_alerts` counts the alerts open now
    (see `/api/v1/alerts`). A facility manager or integration token gets only the OPDs in its scope.
    """
    zone = context.zone
    now = datetime.now(zone)
    now_ms = to_epoch_ms(now)
    midnight = datetime.combine(now.date(), time.min, tzinfo=zone)
    windows = [(midnight, now)] + [_same_weekday_window(now, weeks, zone) for weeks in range(1, overview.USUAL_WEEKS + 1)]

    statements = [
        _latest_device_points(context, now_ms),
        _latest_node_states(context, now_ms),
        _punched_today(to_epoch_ms(midnight), now_ms),
        *(_meter_registers(start, end) for start, end in windows),
    ]
    answers = await context.reader.query("; ".join(statements))
    open_alerts = await asyncio.to_thread(AlertStore(context.registry).open_counts)
    rules = getattr(request.app.state, "alert_rules", None)
    devices_answer, nodes_answer, punches_answer, *energy_answers = answers

    last_seen, room_readings, attendance_devices = _collect_devices(devices_answer)
    node_states = _collect_node_states(nodes_answer)
    punched = {series.tags.get("opd", ""): int(series.rows[0]["punched"]) for series in punches_answer if series.rows}
    meters = [_collect_meters(answer) for answer in energy_answers]

    listed = {opd.id for opd in context.catalogue.opds}
    seen = set(last_seen) | set(node_states) | set(punched) | {opd for answer in meters for opd in answer}
    entries: list[Opd | str] = [*context.catalogue.opds, *sorted(seen - listed - {""})]

    offline_after_ms = context.settings.device_offline_s * 1000
    opds = []
    for entry in entries:
        opd_id = entry if isinstance(entry, str) else entry.id
        if not principal.may_see_opd(opd_id):
            continue
        catalogue_devices = set() if isinstance(entry, str) else _catalogue_devices(entry)
        terminals = set() if isinstance(entry, str) else _catalogue_devices(entry, DeviceKind.ATTENDANCE_TERMINAL)
        counts = overview.count_devices(
            catalogue_devices,
            last_seen.get(opd_id, {}),
            node_states.get(opd_id, {}),
            now_ms,
            offline_after_ms,
            terminals | attendance_devices.get(opd_id, set()),
        )
        employees = 0 if isinstance(entry, str) else entry.employees
        energy = _energy(windows, [answer.get(opd_id, {}) for answer in meters])
        limits = comfort_limits(rules, opd_id) if rules is not None else overview.DEFAULT_LIMITS
        worst = None
        if _comfort_applies(context, rules, opd_id, now):
            worst = overview.worst_room(room_readings.get(opd_id, []), now_ms, offline_after_ms, limits)
        opds.append(
            OpdOverview(
                opd=opd_id,
                name=opd_id if isinstance(entry, str) else entry.name,
                in_catalogue=not isinstance(entry, str),
                devices=DeviceState(
                    known=counts.known, online=counts.online, offline=counts.offline, offline_nodes=counts.offline_nodes
                ),
                attendance=_attendance(punched.get(opd_id, 0), employees),
                energy=energy,
                open_alerts=open_alerts.get(opd_id, 0),
                worst_room=None if worst is None else _worst_room(worst, context, entry),
            )
        )

    return OverviewResponse(
        ts=now_ms,
        time=now,
        timezone=context.settings.timezone,
        device_offline_s=context.settings.device_offline_s,
        opds=opds,
    )


def _same_weekday_window(now: datetime, weeks: int, zone) -> tuple[datetime, datetime]:
    """Return local midnight to the same local time of the day ``weeks`` weeks before ``now``."""
    day: date = now.date() - timedelta(weeks=weeks)
    start = datetime.combine(day, time.min, tzinfo=zone)
    end = datetime.combine(day, now.time(), tzinfo=zone)
    return start, end


def _latest_device_points(context: AppContext, now_ms: int) -> str:
    # Only the last day: a device silent for longer is offline whatever its last point, and
    # scanning a month of shards for it made this statement take 1.6 s instead of 0.16 s
    # (40 OPDs x 50 devices, bench/overview_latency.py).
    measurements = ", ".join(quote_ident(MEASUREMENT_BY_STREAM[stream]) for stream in ("room", "energy", "attendance"))
    since_ms = now_ms - max(context.settings.device_offline_s * 1000, _RECENT_WINDOW_MS)
    group_by = ", ".join(quote_ident(tag) for tag in ("opd", "node", "device"))
    return (
        f"SELECT * FROM {measurements} WHERE time > {since_ms}ms "
        f"GROUP BY {group_by} ORDER BY time DESC LIMIT 1"
    )


def _latest_node_states(context: AppContext, now_ms: int) -> str:
    since_ms = now_ms - context.settings.latest_lookback_days * 86_400_000
    return (
        f"SELECT {quote_ident('state')} FROM {quote_ident(MEASUREMENT_BY_STREAM['status'])} "
        f"WHERE time > {since_ms}ms GROUP BY {quote_ident('opd')}, {quote_ident('node')} ORDER BY time DESC LIMIT 1"
    )


def _punched_today(midnight_ms: int, now_ms: int) -> str:
    # The upper bound leaves room for punches stamped up to the ingest's 300 s future limit.
    return (
        f"SELECT count(distinct({quote_ident('employee_id')})) AS punched "
        f"FROM {quote_ident(MEASUREMENT_BY_STREAM['attendance'])} "
        f"WHERE time >= {midnight_ms}ms AND time < {now_ms + 300_000}ms GROUP BY {quote_ident('opd')}"
    )


def _meter_registers(start: datetime, end: datetime) -> str:
    group_by = ", ".join(quote_ident(tag) for tag in ("opd", *_METER_TAGS))
    return (
        f"SELECT {quote_ident('energy_kwh_total')} AS kwh FROM {quote_ident(MEASUREMENT_BY_STREAM['energy'])} "
        f"WHERE time >= {to_epoch_ms(start - _ENERGY_MARGIN)}ms AND time < {to_epoch_ms(end + _ENERGY_MARGIN)}ms "
        f"GROUP BY {group_by} ORDER BY time ASC"
    )


def _collect_devices(
    answer: list[Series],
) -> tuple[dict[str, dict[tuple[str, str], int]], dict[str, list[overview.RoomReading]], dict[str, set[tuple[str, str]]]]:
    """Return, by OPD, the newest point time of each device, the newest room reading of each
    sensor, and the devices that sent attendance events."""
    last_seen: dict[str, dict[tuple[str, str], int]] = {}
    rooms: dict[str, list[overview.RoomReading]] = {}
    attendance: dict[str, set[tuple[str, str]]] = {}
    for series in answer:
        if not series.rows:
            continue
        opd_id, node, device = (series.tags.get(tag, "") for tag in ("opd", "node", "device"))
        row = series.rows[0]
        devices = last_seen.setdefault(opd_id, {})
        devices[(node, device)] = max(devices.get((node, device), 0), row["time"])
        if series.name == MEASUREMENT_BY_STREAM["attendance"]:
            attendance.setdefault(opd_id, set()).add((node, device))
        if series.name == MEASUREMENT_BY_STREAM["room"] and row.get("room"):
            rooms.setdefault(opd_id, []).append(
                overview.RoomReading(
                    room=row["room"],
                    node=node,
                    device=device,
                    ts=row["time"],
                    co2_ppm=row.get("co2_ppm"),
                    temperature_c=row.get("temperature_c"),
                    humidity_pct=row.get("humidity_pct"),
                )
            )
    return last_seen, rooms, attendance


def _collect_node_states(answer: list[Series]) -> dict[str, dict[str, str]]:
    states: dict[str, dict[str, str]] = {}
    for series in answer:
        if series.rows:
            states.setdefault(series.tags.get("opd", ""), {})[series.tags.get("node", "")] = series.rows[0]["state"]
    return states


def _collect_meters(answer: list[Series]) -> dict[str, dict[tuple[str, ...], list[tuple[int, float]]]]:
    meters: dict[str, dict[tuple[str, ...], list[tuple[int, float]]]] = {}
    for series in answer:
        points = [(row["time"], float(row["kwh"])) for row in series.rows if row.get("kwh") is not None]
        if points:
            key = tuple(series.tags.get(tag, "") for tag in _METER_TAGS)
            meters.setdefault(series.tags.get("opd", ""), {})[key] = points
    return meters


def _catalogue_devices(opd: Opd, kind: DeviceKind | None = None) -> set[tuple[str, str]]:
    return {(node.id, device.id) for node in opd.nodes for device in node.devices if kind is None or device.kind is kind}


def _energy(
    windows: list[tuple[datetime, datetime]], meters: list[dict[tuple[str, ...], list[tuple[int, float]]]]
) -> EnergyToday:
    kwh = [
        overview.window_kwh(window_meters, to_epoch_ms(start), to_epoch_ms(end))
        for (start, end), window_meters in zip(windows, meters)
    ]
    result = overview.energy_today(kwh[0], kwh[1:])
    return EnergyToday(
        today_kwh=_round(result.today_kwh), usual_kwh=_round(result.usual_kwh), usual_weeks=result.usual_weeks
    )


def _attendance(punched: int, employees: int) -> AttendanceToday:
    rate = overview.attendance_rate(punched, employees)
    return AttendanceToday(punched=punched, employees=employees, rate=_round(rate))


def _comfort_applies(context: AppContext, rules, opd: str, now: datetime) -> bool:
    """Return False outside the OPD's office hours when the alert rules limit comfort to them.

    An empty office at night or at the weekend is neither cooled nor ventilated on purpose, so
    its rooms are not judged then, as the comfort alerts are not.
    """
    if rules is None or not rules.office_hours_only or context.office_hours is None:
        return True
    return context.office_hours.calendar(opd).is_open(now)


def _worst_room(worst: overview.WorstRoom, context: AppContext, entry: Opd | str) -> WorstRoom:
    reading = worst.reading
    names = {} if isinstance(entry, str) else {room.id: room.name for room in entry.rooms}
    return WorstRoom(
        room=reading.room,
        name=names.get(reading.room),
        node=reading.node,
        device=reading.device,
        ts=reading.ts,
        time=from_epoch_ms(reading.ts, context.zone),
        co2_ppm=reading.co2_ppm,
        temperature_c=reading.temperature_c,
        humidity_pct=reading.humidity_pct,
        breaches=[ComfortBreach(field=b.field, limit=b.limit, value=b.value) for b in worst.breaches],
    )


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, _DECIMALS)
