"""Server-Sent Events stream of new readings, for the dashboard's live view."""

import asyncio
import logging
from collections.abc import AsyncIterator
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from contract import id_problem

from ..deps import AppContext, get_context
from ..errors import ApiError
from ..live import Dropped, LiveHub
from ..security.audit import record
from ..security.context import SecurityContext
from ..security.deps import current_stream_principal, get_security
from ..security.principals import PERSONAL_DATA_ROLES, Principal

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1", tags=["live"])

RETRY_MS = 5_000
"""Reconnection delay sent to EventSource clients in the stream's ``retry`` field, ms."""


class LiveStream(StrEnum):
    """Streams the live view can be filtered to."""

    ROOM = "room"
    ENERGY = "energy"
    ATTENDANCE = "attendance"
    STATUS = "status"
    ALERT = "alert"


def get_hub(request: Request) -> LiveHub:
    """Return the application's live-view hub."""
    return request.app.state.live_hub


@router.get(
    "/live",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "Server-Sent Events"}},
)
async def read_live(
    context: Annotated[AppContext, Depends(get_context)],
    security: Annotated[SecurityContext, Depends(get_security)],
    principal: Annotated[Principal, Depends(current_stream_principal)],
    hub: Annotated[LiveHub, Depends(get_hub)],
    opd: Annotated[list[str] | None, Query(description="Only these OPD ids. Repeat the parameter for several")] = None,
    stream: Annotated[LiveStream | None, Query(description="Only this stream")] = None,
    access_token: Annotated[
        str | None,
        Query(
            description="Access or API token, for EventSource clients that cannot send an Authorization header; "
            "this route only"
        ),
    ] = None,
) -> StreamingResponse:
    """Stream new readings as Server-Sent Events while the connection is open.

    Every message is an ``event: reading`` with an increasing ``id`` and a JSON ``data`` line:
    opd, node, stream, device, ts, time, retained and the payload's fields. Every change of an
    alert (opened, severity changed, closed, acknowledged) is an ``event: alert`` whose data is
    the alert as `GET /api/v1/alerts` returns it, plus ``change``. A client that
    reads too slowly loses its oldest events and receives an ``event: dropped`` with their count.
    Nothing is replayed: the stream starts with the messages received after the request.

    A facility manager or integration token receives the events of the OPDs in its scope only,
    and asking for another OPD is 403. Attendance events carry the employee's pseudonym, and
    leadership and integration tokens get them without it. Opening a stream that can carry
    pseudonyms is written to the audit log.
    """
    for value in opd or []:
        problem = id_problem(value)
        if problem:
            raise ApiError(422, "invalid_parameter", parameter="opd", name="opd", problem=problem)
        principal.require_opd(value)

    opds = opd or (sorted(principal.opds) if principal.opds is not None else None)
    if opds == []:
        raise ApiError(403, "no_opd_in_scope", role=principal.role.value)
    streams = [stream.value] if stream else None
    personal_data = principal.role in PERSONAL_DATA_ROLES
    if personal_data and stream in (None, LiveStream.ATTENDANCE):
        await record(
            security.sessions,
            principal.actor,
            "personal_data.live",
            "live",
            opds=opds or "all",
            stream=stream.value if stream else "all",
        )
    body = _event_stream(hub, opds, streams, context.settings.live_keepalive_s, personal_data)
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(body, media_type="text/event-stream", headers=headers)


async def _event_stream(
    hub: LiveHub, opds: list[str] | None, streams: list[str] | None, keepalive_s: float, personal_data: bool
) -> AsyncIterator[str]:
    """Yield the client's events as SSE text until the connection closes and the generator is cancelled."""
    # The client registers here, not in the route, so that the finally clause always removes it.
    client = hub.connect(opds=opds, streams=streams, personal_data=personal_data)
    logger.info(
        "live client connected (opd=%s, stream=%s): %d clients",
        ",".join(opds) if opds else "all",
        ",".join(streams) if streams else "all",
        len(hub.clients),
    )
    # uvicorn waits for open responses when it stops; api/__main__.py bounds that wait to 5 s.
    try:
        yield f"retry: {RETRY_MS}\n\n"
        while True:
            try:
                item = await asyncio.wait_for(client.next(), timeout=keepalive_s)
            except TimeoutError:
                yield ": keep-alive\n\n"
                continue

            if isinstance(item, Dropped):
                yield f'event: dropped\ndata: {{"count":{item.count}}}\n\n'
            else:
                yield f"event: {item.event}\nid: {item.event_id}\ndata: {client.data_of(item)}\n\n"
    finally:
        hub.disconnect(client)
        logger.info(
            "live client disconnected after %d events, %d dropped: %d clients",
            client.delivered,
            client.dropped,
            len(hub.clients),
        )
