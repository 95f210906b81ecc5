"""Alerts: comfort limits broken, devices and edge nodes offline; list and acknowledge them."""

import asyncio
import time
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, Field

from contract import id_problem

from ..deps import AppContext, get_context
from ..errors import ApiError
from ..monitor.alert_store import AlertStore, alert_json

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"])


class AlertState(StrEnum):
    """Alert state filter of a listing."""

    OPEN = "open"
    CLOSED = "closed"
    ALL = "all"


class AlertOut(BaseModel):
    """One alert. Times are ISO 8601 in the deployment's zone."""

    id: int
    opd: str
    node: str | None
    device: str | None
    room: str | None
    kind: str = Field(
        description="co2_high, temperature_high, temperature_low, humidity_high, device_offline or node_offline"
    )
    severity: str = Field(description="warning or critical")
    state: str = Field(description="open or closed")
    value: float | None = Field(description="Newest value of the measurement, for comfort alerts")
    peak_value: float | None = Field(description="Value furthest out of range while the alert was open")
    threshold: float | None = Field(description="Limit that was broken (the warning level)")
    started_at: datetime
    ended_at: datetime | None
    acknowledged_by: str | None
    acknowledged_at: datetime | None


class AlertList(BaseModel):
    """Alerts, newest first."""

    alerts: list[AlertOut]


def actor_name(request: Request) -> str:
    """Return the user name of the caller, as authentication recorded it, else ``anonymous``."""
    principal = getattr(request.state, "principal", None)
    return getattr(principal, "username", None) or getattr(principal, "name", None) or "anonymous"


@router.get("", response_model=AlertList)
def list_alerts(
    context: Annotated[AppContext, Depends(get_context)],
    state: Annotated[AlertState, Query(description="open, closed or all")] = AlertState.OPEN,
    opd: Annotated[list[str] | None, Query(description="Only these OPD ids. Repeat the parameter for several")] = None,
    kind: Annotated[list[str] | None, Query(description="Only these kinds, e.g. co2_high")] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="Most alerts returned")] = 200,
) -> AlertList:
    """List alerts newest first; by default the open ones of every OPD."""
    for value in opd or []:
        problem = id_problem(value)
        if problem:
            raise ApiError(422, "invalid_parameter", parameter="opd", name="opd", problem=problem)

    store = AlertStore(context.registry)
    chosen = None if state is AlertState.ALL else state.value
    rows = store.find(chosen, opd, limit, kind)
    return AlertList(alerts=[AlertOut(**alert_json(row, context.zone)) for row in rows])


@router.get("/{alert_id}", response_model=AlertOut)
def read_alert(
    context: Annotated[AppContext, Depends(get_context)],
    alert_id: Annotated[int, Path(ge=1, description="Alert id")],
) -> AlertOut:
    """Return one alert."""
    alert = AlertStore(context.registry).get(alert_id)
    if alert is None:
        raise ApiError(404, "alert_not_found", alert_id=alert_id)
    return AlertOut(**alert_json(alert, context.zone))


@router.post("/{alert_id}/acknowledge", response_model=AlertOut)
async def acknowledge_alert(
    request: Request,
    context: Annotated[AppContext, Depends(get_context)],
    alert_id: Annotated[int, Path(ge=1, description="Alert id")],
) -> AlertOut:
    """Mark an alert as seen by the caller. It stays open until its condition ends; the first
    acknowledgement is kept, so acknowledging twice changes nothing."""
    store = AlertStore(context.registry)
    alert = await asyncio.to_thread(store.acknowledge, alert_id, actor_name(request), int(time.time() * 1000))
    if alert is None:
        raise ApiError(404, "alert_not_found", alert_id=alert_id)

    monitor = getattr(request.app.state, "monitor", None)
    if monitor is not None:
        monitor.announce_acknowledged(alert)
    return AlertOut(**alert_json(alert, context.zone))
