"""The audit log, for admins: newest entries first, filtered by action, actor and time."""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from ..deps import AppContext, get_context
from ..params import parse_time
from ..security.audit import read_entries
from ..security.context import SecurityContext
from ..security.deps import get_security, in_registry
from ..timewindows import from_epoch_ms, to_epoch_ms

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


class AuditEntryOut(BaseModel):
    """One audit entry."""

    id: int
    ts: int = Field(description="UTC epoch ms")
    time: datetime
    actor: str = Field(description="user:<name>, token:<name>#<id>, cli:<os user> or system:<task>")
    action: str = Field(description="<subject>.<verb>, e.g. personal_data.view or token.create")
    target: str = Field(description="What the action concerned, e.g. opd:dinkes/attendance or token:4")
    detail: dict | None


class AuditPage(BaseModel):
    """A page of entries, newest first."""

    entries: list[AuditEntryOut]
    next_before_id: int | None = Field(None, description="Pass as before_id for the next, older page")


@router.get("", response_model=AuditPage)
async def read_audit(
    context: Annotated[AppContext, Depends(get_context)],
    security: Annotated[SecurityContext, Depends(get_security)],
    action: Annotated[str | None, Query(max_length=80, description="Only this action")] = None,
    actor: Annotated[str | None, Query(max_length=150, description="Only this actor")] = None,
    start: Annotated[str | None, Query(description="ISO 8601 date or time, inclusive; without offset, local time")] = None,
    end: Annotated[str | None, Query(description="ISO 8601 date or time, exclusive")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before_id: Annotated[int | None, Query(ge=1, le=2**62)] = None,
) -> AuditPage:
    """List audit entries, newest first."""
    since_ms = to_epoch_ms(parse_time("start", start, context.zone)) if start else None
    until_ms = to_epoch_ms(parse_time("end", end, context.zone)) if end else None
    rows = await in_registry(read_entries, security.sessions, limit, before_id, action, actor, since_ms, until_ms)

    entries = [
        AuditEntryOut(
            id=row.id,
            ts=row.ts_ms,
            time=from_epoch_ms(row.ts_ms, context.zone),
            actor=row.actor,
            action=row.action,
            target=row.target,
            detail=row.detail,
        )
        for row in rows
    ]
    return AuditPage(entries=entries, next_before_id=entries[-1].id if len(entries) == limit else None)
