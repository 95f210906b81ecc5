"""The OPDs of the deployment: catalogue entries joined with the time of their newest data."""

from typing import Annotated

from fastapi import APIRouter, Depends

from contract.catalogue import Opd

from ..deps import AppContext, OpdPath, ensure_known_opd, get_context
from ..influx import quote_ident
from ..schemas import DeviceInfo, NodeInfo, OpdDetail, OpdSummary, RoomInfo
from ..security.deps import current_principal
from ..security.principals import Principal
from ..timewindows import from_epoch_ms

router = APIRouter(prefix="/api/v1", tags=["opds"])

_MEASUREMENTS = ("room", "energy", "attendance", "node_status")


@router.get("/opds", response_model=list[OpdSummary])
async def read_opds(
    context: Annotated[AppContext, Depends(get_context)], principal: Annotated[Principal, Depends(current_principal)]
) -> list[OpdSummary]:
    """List every OPD of the catalogue, and any OPD that sends data without being in it.

    A facility manager or integration token gets only the OPDs in its scope.
    """
    last_seen = await _last_seen_by_opd(context)
    summaries = [_summary(context, opd, last_seen.get(opd.id)) for opd in context.catalogue.opds]

    listed = {opd.id for opd in context.catalogue.opds}
    for opd_id in sorted(set(last_seen) - listed):
        summaries.append(_unlisted_summary(context, opd_id, last_seen[opd_id]))
    return [summary for summary in summaries if principal.may_see_opd(summary.id)]


@router.get("/opds/{opd}", response_model=OpdDetail)
async def read_opd(
    context: Annotated[AppContext, Depends(get_context)], opd: Annotated[str, OpdPath]
) -> OpdDetail:
    """Return one OPD with its rooms, edge nodes and devices."""
    await ensure_known_opd(context, opd)
    last_seen = (await _last_seen_by_opd(context, opd)).get(opd)
    entry = context.catalogue.opd(opd)
    if entry is None:
        return OpdDetail(**_unlisted_summary(context, opd, last_seen).model_dump(), rooms=[], nodes=[])

    return OpdDetail(
        **_summary(context, entry, last_seen).model_dump(),
        rooms=[RoomInfo(id=room.id, name=room.name) for room in entry.rooms],
        nodes=[
            NodeInfo(
                id=node.id,
                name=node.name,
                devices=[DeviceInfo(id=d.id, kind=d.kind.value, room=d.room, circuit=d.circuit) for d in node.devices],
            )
            for node in entry.nodes
        ],
    )


async def _last_seen_by_opd(context: AppContext, opd: str | None = None) -> dict[str, int]:
    """Return the time (epoch ms) of the newest point of each OPD within the lookback."""
    measurements = ", ".join(quote_ident(name) for name in _MEASUREMENTS)
    where = f"time > now() - {context.settings.latest_lookback_days}d"
    if opd is not None:
        where += f" AND {quote_ident('opd')} = '{opd}'"
    statement = f"SELECT * FROM {measurements} WHERE {where} GROUP BY {quote_ident('opd')} ORDER BY time DESC LIMIT 1"

    newest: dict[str, int] = {}
    for series in (await context.reader.query(statement))[0]:
        opd_id = series.tags.get("opd")
        if opd_id and series.rows:
            newest[opd_id] = max(newest.get(opd_id, 0), series.rows[0]["time"])
    return newest


def _summary(context: AppContext, opd: Opd, last_seen_ts: int | None) -> OpdSummary:
    return OpdSummary(
        id=opd.id,
        name=opd.name,
        island=opd.island,
        town=opd.town,
        employees=opd.employees,
        node_count=len(opd.nodes),
        device_count=sum(len(node.devices) for node in opd.nodes),
        in_catalogue=True,
        last_seen_ts=last_seen_ts,
        last_seen=from_epoch_ms(last_seen_ts, context.zone) if last_seen_ts else None,
    )


def _unlisted_summary(context: AppContext, opd_id: str, last_seen_ts: int | None) -> OpdSummary:
    return OpdSummary(
        id=opd_id,
        name=opd_id,
        in_catalogue=False,
        last_seen_ts=last_seen_ts,
        last_seen=from_epoch_ms(last_seen_ts, context.zone) if last_seen_ts else None,
    )
