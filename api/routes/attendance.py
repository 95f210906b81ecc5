"""Attendance punches of one OPD on one local day."""

from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from ..deps import AppContext, OpdPath, ensure_known_opd, get_context
from ..errors import ApiError
from ..influx import quote_ident, quote_string
from ..schemas import AttendanceDay, AttendanceRecord
from ..security.audit import record
from ..security.context import SecurityContext
from ..security.deps import current_principal, get_security, in_registry
from ..security.employees import read_identities
from ..security.principals import Principal
from ..timewindows import from_epoch_ms, local_day_bounds, to_epoch_ms

router = APIRouter(prefix="/api/v1/opds/{opd}", tags=["attendance"])

_MAX_EVENTS = 100_000


@router.get("/attendance", response_model=AttendanceDay)
async def read_attendance_day(
    context: Annotated[AppContext, Depends(get_context)],
    security: Annotated[SecurityContext, Depends(get_security)],
    principal: Annotated[Principal, Depends(current_principal)],
    opd: Annotated[str, OpdPath],
    day: Annotated[
        str | None, Query(alias="date", description="Local date, YYYY-MM-DD; default today in the deployment's zone")
    ] = None,
) -> AttendanceDay:
    """Return every punch of the OPD from local midnight to the next, oldest first.

    Per-employee rows are personal data: only admin and the OPD's facility_manager get them,
    with NIP and name from the OPD's employee list, and each request is written to the audit
    log. Other roles get 403 and see counts in `/attendance/recap`.
    """
    principal.require_personal_data(opd)
    await ensure_known_opd(context, opd)
    if day is None:
        local_date = datetime.now(context.zone).date()
    else:
        try:
            local_date = date.fromisoformat(day)
        except ValueError:
            raise ApiError(422, "invalid_date", parameter="date", value=day) from None

    start, end = local_day_bounds(local_date, context.zone)
    statement = (
        f"SELECT * FROM {quote_ident('attendance')} WHERE {quote_ident('opd')} = {quote_string(opd)} "
        f"AND time >= {to_epoch_ms(start)}ms AND time < {to_epoch_ms(end)}ms ORDER BY time ASC LIMIT {_MAX_EVENTS}"
    )
    answers = await context.reader.query(statement)
    identities = await in_registry(read_identities, security.sessions, opd)

    events = []
    for series in answers[0]:
        for row in series.rows:
            identity = identities.get(row["employee_id"])
            events.append(
                AttendanceRecord(
                    ts=row["time"],
                    time=from_epoch_ms(row["time"], context.zone),
                    node=row["node"],
                    device=row["device"],
                    employee_id=row["employee_id"],
                    nip=identity.nip if identity else None,
                    name=identity.name if identity else None,
                    punch=row.get("punch") or "unknown",
                    verify=row.get("verify") or "other",
                )
            )
    await record(
        security.sessions, principal.actor, "personal_data.view", f"opd:{opd}/attendance", date=local_date.isoformat(), rows=len(events)
    )
    return AttendanceDay(
        opd=opd, date=local_date, timezone=context.settings.timezone, start=start, end=end, events=events
    )
