"""Daily data completeness per OPD and device: readings received against expected."""

from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from contract.catalogue import DeviceKind

from ..deps import AppContext, OpdPath, ensure_known_opd, get_context
from ..errors import ApiError
from ..influx import quote_ident, quote_string
from ..monitor.completeness import KIND_BY_MEASUREMENT, DeviceCompleteness, expected_readings, office_ratio
from ..security.deps import current_principal
from ..security.principals import Principal
from ..timewindows import local_day_bounds, to_epoch_ms

router = APIRouter(tags=["completeness"])


class DeviceCompletenessOut(BaseModel):
    """One sampling device on one day."""

    node: str
    device: str
    kind: str
    expected: int = Field(description="Readings expected from local midnight to the end of the day, or to now today")
    received: int
    ratio: float | None = Field(description="received / expected, 0-1, capped at 1; null when none were expected")


class OpdCompleteness(BaseModel):
    """Completeness of one OPD's sampling devices on one day."""

    opd: str
    date: date
    ratio: float | None = Field(description="Share of all expected readings received, each device capped at 100 %")
    expected: int
    received: int
    devices: list[DeviceCompletenessOut]


class CompletenessOverview(BaseModel):
    """Completeness of every OPD on one day."""

    date: date
    opds: list[OpdCompleteness]


@router.get("/api/v1/opds/{opd}/completeness", response_model=OpdCompleteness)
async def read_opd_completeness(
    request: Request,
    context: Annotated[AppContext, Depends(get_context)],
    opd: Annotated[str, OpdPath],
    day: Annotated[str | None, Query(alias="date", description="Local date, YYYY-MM-DD; default today")] = None,
) -> OpdCompleteness:
    """Return, per room sensor and energy meter of the OPD, readings received against expected on one local day.

    Devices are those of the catalogue plus any that sent data that day. Expected counts come
    from `expected_interval_s` of the alert rules file, per device kind.
    """
    await ensure_known_opd(context, opd)
    first = await _completeness(request, context, _parse_date(day, context), [opd])
    return first[0]


@router.get("/api/v1/completeness", response_model=CompletenessOverview)
async def read_completeness(
    request: Request,
    context: Annotated[AppContext, Depends(get_context)],
    principal: Annotated[Principal, Depends(current_principal)],
    day: Annotated[str | None, Query(alias="date", description="Local date, YYYY-MM-DD; default today")] = None,
) -> CompletenessOverview:
    """Return the completeness of every OPD of the catalogue in the caller's scope on one local day."""
    chosen = _parse_date(day, context)
    opds = principal.visible(entry.id for entry in context.catalogue.opds)
    return CompletenessOverview(date=chosen, opds=await _completeness(request, context, chosen, opds))


def _parse_date(text: str | None, context: AppContext) -> date:
    today = datetime.now(context.zone).date()
    if text is None:
        return today
    try:
        chosen = date.fromisoformat(text)
    except ValueError:
        raise ApiError(422, "invalid_day", parameter="date", name="date", value=text) from None
    if len(text) != 10:
        raise ApiError(422, "invalid_day", parameter="date", name="date", value=text)
    if chosen > today:
        raise ApiError(422, "day_in_future", parameter="date", name="date", value=text)
    return chosen


async def _completeness(request: Request, context: AppContext, day: date, opds: list[str]) -> list[OpdCompleteness]:
    rules = request.app.state.alert_rules
    start, end = local_day_bounds(day, context.zone)
    now = datetime.now(context.zone)
    covered_end = min(end, now)
    covered_s = max((covered_end - start).total_seconds(), 0.0)

    opd_filter = " OR ".join(f"{quote_ident('opd')} = {quote_string(opd)}" for opd in opds)
    time_filter = f"time >= {to_epoch_ms(start)}ms AND time < {to_epoch_ms(end)}ms"
    statements = [
        f"SELECT count(*) FROM {quote_ident(measurement)} WHERE ({opd_filter}) AND {time_filter} "
        f"GROUP BY {quote_ident('opd')}, {quote_ident('node')}, {quote_ident('device')}"
        for measurement in KIND_BY_MEASUREMENT
    ]
    answers = await context.reader.query("; ".join(statements))

    received: dict[tuple[str, str, str], tuple[str, int]] = {}
    for measurement, answer in zip(KIND_BY_MEASUREMENT, answers):
        for series in answer:
            counts = [value for name, value in series.rows[0].items() if name.startswith("count_") and value] if series.rows else []
            key = (series.tags.get("opd", ""), series.tags.get("node", ""), series.tags.get("device", ""))
            received[key] = (KIND_BY_MEASUREMENT[measurement], max(counts, default=0))

    results = []
    for opd in opds:
        devices: dict[tuple[str, str], tuple[str, int]] = {}
        entry = context.catalogue.opd(opd)
        for node in entry.nodes if entry else []:
            for device in node.devices:
                if device.kind is not DeviceKind.ATTENDANCE_TERMINAL:
                    devices[(node.id, device.id)] = (device.kind.value, 0)
        for (series_opd, node, device), value in received.items():
            if series_opd == opd:
                devices[(node, device)] = value

        rows = [
            DeviceCompleteness(node, device, kind, expected_readings(rules.expected_interval_s.get(kind, 0), covered_s), count)
            for (node, device), (kind, count) in sorted(devices.items())
        ]
        results.append(
            OpdCompleteness(
                opd=opd,
                date=day,
                ratio=office_ratio(rows),
                expected=sum(row.expected for row in rows),
                received=sum(min(row.received, row.expected) for row in rows),
                devices=[
                    DeviceCompletenessOut(
                        node=row.node, device=row.device, kind=row.kind, expected=row.expected, received=row.received, ratio=row.ratio
                    )
                    for row in rows
                ],
            )
        )
    return results
