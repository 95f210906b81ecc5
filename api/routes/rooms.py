"""Rooms of one OPD with their newest comfort values, judged against the alert rules."""

import asyncio
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from contract.storage import MEASUREMENT_BY_STREAM

from ..deps import AppContext, OpdPath, ensure_known_opd, get_context
from ..influx import quote_ident, quote_string
from ..monitor.alert_store import OPEN, AlertStore
from ..monitor.comfort import classify
from ..monitor.rules import COMFORT_MEASUREMENTS, AlertRules
from ..timewindows import from_epoch_ms

router = APIRouter(prefix="/api/v1/opds/{opd}", tags=["rooms"])

ROOM_FIELDS = (*COMFORT_MEASUREMENTS, "occupancy", "occupancy_count", "illuminance_lux")
"""Room reading fields the room list returns."""


class Breach(BaseModel):
    """One comfort limit the room's newest value breaks."""

    measurement: str
    value: float
    side: str = Field(description="high or low")
    severity: str = Field(description="warning or critical")
    threshold: float


class RoomOut(BaseModel):
    """One room: its newest reading per sensor, merged, and its comfort state."""

    room: str
    name: str | None = Field(description="Name from the catalogue")
    time: datetime | None = Field(description="Time of the newest reading in the room")
    stale: bool = Field(description="True when the newest reading is older than `device_offline_s` of the alert rules")
    values: dict[str, float | int | bool] = Field(description="Newest value of each field, from any sensor of the room")
    comfort: str = Field(description="ok, warning, critical or unknown (no current reading)")
    breaches: list[Breach]
    open_alerts: int


class RoomList(BaseModel):
    """Every room of the OPD."""

    opd: str
    rooms: list[RoomOut]


@router.get("/rooms", response_model=RoomList)
async def read_rooms(
    request: Request,
    context: Annotated[AppContext, Depends(get_context)],
    opd: Annotated[str, OpdPath],
) -> RoomList:
    """Return each room's newest comfort values (last 24 hours), breaches and open alerts.

    A value is judged with the same limits as the comfort alerts, but at once, without the
    minimum duration: the room list shows the present, the alerts what lasted.
    """
    await ensure_known_opd(context, opd)
    rules: AlertRules = request.app.state.alert_rules

    statement = (
        f"SELECT * FROM {quote_ident(MEASUREMENT_BY_STREAM['room'])} "
        f"WHERE {quote_ident('opd')} = {quote_string(opd)} AND time > now() - 1d "
        f"GROUP BY {quote_ident('room')}, {quote_ident('device')} ORDER BY time DESC LIMIT 1"
    )
    answers = await context.reader.query(statement)
    alerts = await asyncio.to_thread(AlertStore(context.registry).find, OPEN, [opd], 10_000)

    newest: dict[str, tuple[int, dict]] = {}
    for series in answers[0]:
        room = series.tags.get("room") or ""
        row = series.rows[0]
        ts, values = newest.get(room, (0, {}))
        fresh = {name: row[name] for name in ROOM_FIELDS if row.get(name) is not None}
        # Sensors of one room are merged; the newest reading wins a field both have.
        merged = {**values, **fresh} if row["time"] >= ts else {**fresh, **values}
        newest[room] = (max(ts, row["time"]), merged)

    entry = context.catalogue.opd(opd)
    names = {room.id: room.name for room in entry.rooms} if entry else {}
    now_ms = int(datetime.now(context.zone).timestamp() * 1000)
    stale_after_ms = rules.device_offline_s * 1000

    rooms = []
    for room in sorted(set(names) | {key for key in newest if key}):
        ts, values = newest.get(room, (None, {}))
        stale = ts is None or now_ms - ts > stale_after_ms
        breaches = [] if stale else _breaches(rules, opd, values)
        rooms.append(
            RoomOut(
                room=room,
                name=names.get(room),
                time=from_epoch_ms(ts, context.zone) if ts else None,
                stale=stale,
                values=values,
                comfort=_comfort(stale, breaches),
                breaches=breaches,
                open_alerts=sum(1 for alert in alerts if alert.room_key == room),
            )
        )
    return RoomList(opd=opd, rooms=rooms)


def _breaches(rules: AlertRules, opd: str, values: dict) -> list[Breach]:
    found = []
    for measurement in COMFORT_MEASUREMENTS:
        rule = rules.comfort_rule(opd, measurement)
        value = values.get(measurement)
        if rule is None or value is None:
            continue
        breach = classify(rule, value)
        if breach is not None:
            side, severity, threshold = breach
            found.append(Breach(measurement=measurement, value=value, side=side, severity=severity.value, threshold=threshold))
    return found


def _comfort(stale: bool, breaches: list[Breach]) -> str:
    if stale:
        return "unknown"
    if any(breach.severity == "critical" for breach in breaches):
        return "critical"
    return "warning" if breaches else "ok"
