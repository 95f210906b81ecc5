"""Dead letters: messages and points the ingest service could not store, and their replay."""

import asyncio
import base64
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field

from ingest.replay import ReplayError, replay

from ..deps import AppContext, get_context
from ..errors import ApiError, Unavailable
from ..security.audit import record
from ..security.context import SecurityContext
from ..security.deps import current_principal, get_security
from ..security.principals import Principal
from ..timewindows import from_epoch_ms

router = APIRouter(prefix="/api/v1/dead-letters", tags=["dead letters"])

_REPLAY_MAX = 10_000

SQLITE_MAX_INTEGER = 2**63 - 1
"""Largest integer SQLite stores; the sqlite3 module raises OverflowError, a 500, for a larger id."""


class DeadLetterOut(BaseModel):
    """One dead letter; ``payload`` is text when it is UTF-8, else base64."""

    id: int
    received_ts: int
    received: datetime
    topic: str
    reason: str
    error: str
    payload: str
    payload_encoding: str = Field(description="utf-8 or base64")
    line: str | None = Field(None, description="The refused line of line protocol, for reason influx_rejected")


class DeadLetterPage(BaseModel):
    """Entries of the store, oldest first, and the counts per reason."""

    counts: dict[str, int]
    evicted_total: int = Field(description="Entries deleted to keep the store's bound")
    entries: list[DeadLetterOut]
    next_after_id: int | None = Field(None, description="Pass as after_id for the next page")


class ReplayRequest(BaseModel):
    """Selection of entries to replay: a list of ids, or every entry with one reason."""

    ids: list[Annotated[int, Field(ge=1, le=SQLITE_MAX_INTEGER)]] | None = Field(None, max_length=_REPLAY_MAX)
    reason: str | None = None



class ReplayOut(BaseModel):
    """Outcome of a replay."""

    replayed: list[int] = Field(description="Ids the broker accepted, now deleted")
    failed: dict[int, str] = Field(description="Ids kept in the store, with the reason the broker gave or the error")


@router.get("", response_model=DeadLetterPage)
async def read_dead_letters(
    context: Annotated[AppContext, Depends(get_context)],
    reason: Annotated[str | None, Query(max_length=64, description="Only this reason")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    after_id: Annotated[int, Query(ge=0, le=SQLITE_MAX_INTEGER)] = 0,
) -> DeadLetterPage:
    """List dead letters, oldest first, with the number of entries per reason."""
    store = context.dead_letters
    entries = await asyncio.to_thread(store.entries, reason, limit, after_id)
    counts = await asyncio.to_thread(store.counts)
    evicted = await asyncio.to_thread(store.evicted_total)
    out = [_entry_out(entry, context) for entry in entries]
    return DeadLetterPage(
        counts=counts,
        evicted_total=evicted,
        entries=out,
        next_after_id=out[-1].id if len(out) == limit else None,
    )


@router.post("/replay", response_model=ReplayOut)
async def replay_dead_letters(
    context: Annotated[AppContext, Depends(get_context)],
    security: Annotated[SecurityContext, Depends(get_security)],
    principal: Annotated[Principal, Depends(current_principal)],
    request: ReplayRequest,
) -> ReplayOut:
    """Publish entries again to their topics at QoS 1 over MQTT 5, and delete those the broker accepted.

    Only a PUBACK with reason code 0x00 (Success) deletes an entry. The others stay in the
    store and are listed in ``failed`` with the reason, e.g. ``not authorized (0x87)``.
    """
    if (request.ids is None) == (request.reason is None):
        raise ApiError(422, "invalid_replay_request", parameter="ids")
    store = context.dead_letters
    if request.ids is not None:
        entries = [entry for entry in [await asyncio.to_thread(store.get, i) for i in request.ids] if entry]
    else:
        entries = await asyncio.to_thread(store.entries, request.reason, _REPLAY_MAX, 0)

    settings = context.settings
    password = settings.mqtt_password.get_secret_value() if settings.mqtt_password else None
    try:
        result = await asyncio.to_thread(
            replay, store, entries, settings.mqtt_host, settings.mqtt_port, settings.mqtt_username, password
        )
    except ReplayError as exc:
        raise Unavailable("broker_unavailable", str(exc)) from None
    await record(
        security.sessions,
        principal.actor,
        "dead_letters.replay",
        "dead_letters",
        selection={"ids": request.ids} if request.ids is not None else {"reason": request.reason},
        replayed=len(result.replayed),
        failed=len(result.failed),
    )
    return ReplayOut(replayed=result.replayed, failed=result.failed)


@router.delete("/{entry_id}", status_code=204)
async def delete_dead_letter(
    context: Annotated[AppContext, Depends(get_context)],
    security: Annotated[SecurityContext, Depends(get_security)],
    principal: Annotated[Principal, Depends(current_principal)],
    entry_id: Annotated[int, Path(ge=1, le=SQLITE_MAX_INTEGER, description="Dead letter id")],
) -> None:
    """Delete one entry without replaying it."""
    deleted = await asyncio.to_thread(context.dead_letters.delete, [entry_id])
    if not deleted:
        raise ApiError(404, "dead_letter_not_found", entry_id=entry_id)
    await record(security.sessions, principal.actor, "dead_letters.delete", f"dead_letter:{entry_id}")


def _entry_out(entry, context: AppContext) -> DeadLetterOut:
    try:
        payload, encoding = entry.payload.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        payload, encoding = base64.b64encode(entry.payload).decode(), "base64"
    return DeadLetterOut(
        id=entry.id,
        received_ts=entry.received_ms,
        received=from_epoch_ms(entry.received_ms, context.zone),
        topic=entry.topic,
        reason=entry.reason,
        error=entry.error,
        payload=payload,
        payload_encoding=encoding,
        line=entry.line,
    )
