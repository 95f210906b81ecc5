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
from ..security.audit import record
from ..security.deps import current_principal
from ..security.principals import Principal

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


AlertId = Path(ge=1, le=2**63 - 1, description="Alert id")
"""Alert id; the upper bound is the largest id the registry's integer key can hold."""


@router.get("", response_model=AlertList)
def list_alerts(
    context: Annotated[AppContext, Depends(get_context)],
    principal: Annotated[Principal, Depends(current_principal)],
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

    scope = principal.scope(opd)
    store = AlertStore(context.registry)
    chosen = None if state is AlertState.ALL else state.value
    rows = store.find(chosen, scope, limit, kind)
    return AlertList(alerts=[AlertOut(**alert_json(row, context.zone)) for row in rows])


@router.get("/{alert_id}", response_model=AlertOut)
def read_alert(
    context: Annotated[AppContext, Depends(get_context)],
    principal: Annotated[Principal, Depends(current_principal)],
    alert_id: Annotated[int, AlertId],
) -> AlertOut:
    """Return one alert."""
    alert = AlertStore(context.registry).get(alert_id)
    if alert is None:
        raise ApiError(404, "alert_not_found", alert_id=alert_id)
    principal.require_opd(alert.opd_key)
    return AlertOut(**alert_json(alert, context.zone))


@router.post("/{alert_id}/acknowledge", response_model=AlertOut)
async def acknowledge_alert(
    request: Request,
    context: Annotated[AppContext, Depends(get_context)],
    principal: Annotated[Principal, Depends(current_principal)],
    alert_id: Annotated[int, AlertId],
) -> AlertOut:
    """Mark an alert as seen by the caller. It stays open until its condition ends; the first
    acknowledgement is kept, so acknowledging twice changes nothing."""
    store = AlertStore(context.registry)
    found = await asyncio.to_thread(store.get, alert_id)
    if found is None:
        raise ApiError(404, "alert_not_found", alert_id=alert_id)
    principal.require_opd(found.opd_key)

    alert = await asyncio.to_thread(store.acknowledge, alert_id, principal.name, int(time.time() * 1000))
    await record(context.registry, principal.actor, "alert.acknowledge", f"alert:{alert_id}", opd=alert.opd_key, kind=alert.kind)

    monitor = getattr(request.app.state, "monitor", None)
    if monitor is not None:
        monitor.announce_acknowledged(alert)
    return AlertOut(**alert_json(alert, context.zone))
