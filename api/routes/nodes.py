"""Edge nodes: status, desired and reported configuration, and changing the configuration."""

import asyncio
import logging
import time
from datetime import datetime
from enum import StrEnum
from typing import Annotated

import aiomqtt
from fastapi import APIRouter, Body, Depends, Path, Query
from pydantic import BaseModel, Field

from contract import ID_PATTERN, id_problem

from ..deps import AppContext, OpdPath, get_context
from ..errors import ApiError
from ..monitor.node_states import NodeConfigStore, NodeStateStore
from ..node_config_publisher import publish_node_config
from ..node_config_validation import validate_node_settings
from ..security.audit import record
from ..security.deps import current_principal
from ..security.principals import Principal
from ..timewindows import from_epoch_ms

logger = logging.getLogger(__name__)

router = APIRouter(tags=["nodes"])

NodePath = Path(..., pattern=ID_PATTERN, max_length=64, description="Node id within the OPD, e.g. gw-01")


class ConfigState(StrEnum):
    """Whether a node runs the configuration the admins set."""

    IN_SYNC = "in_sync"
    PENDING = "pending"
    FAILED = "failed"
    NONE = "none"


class NodeOut(BaseModel):
    """One edge node: its newest status and the state of its configuration."""

    opd: str
    node: str
    name: str | None = Field(description="Name from the catalogue")
    state: str = Field(description="online, offline or unknown (never heard since the registry was created)")
    state_since: datetime | None
    last_seen: datetime | None = Field(description="Newest status message or reading received from the node")
    sw_version: str | None
    uptime_s: int | None
    queue_depth: int | None = Field(description="Readings waiting in the node's store-and-forward queue")
    dropped_total: int | None = Field(description="Readings the node's queue dropped because it was full or too old")
    desired_version: int | None
    reported_version: int | None
    config_state: ConfigState = Field(
        description="in_sync: the node applied the desired version; pending: no report for it yet; "
        "failed: the node rejected it (see config_error) and runs an older one; none: no configuration set"
    )
    config_error: str | None


class NodeList(BaseModel):
    """Every node of the catalogue and every node that reported, by OPD and node id."""

    nodes: list[NodeOut]


class ConfigReportOut(BaseModel):
    """The node's newest report on a configuration version."""

    version: int
    result: str = Field(description="applied or rejected")
    error: str | None
    reported_at: datetime


class NodeConfigOut(BaseModel):
    """Desired configuration of a node and its newest report."""

    opd: str
    node: str
    version: int | None = Field(description="Desired version; null when none was ever set")
    issued_at: datetime | None
    issued_by: str | None
    settings: dict | None
    reported: ConfigReportOut | None
    config_state: ConfigState


class NodeConfigIn(BaseModel):
    """New desired settings of a node: sampling intervals, adapters and their devices, thresholds."""

    settings: dict = Field(description="Node settings as the edge agent's configuration file has them under `settings`")


def config_state(desired: int | None, reported: int | None, result: str | None) -> ConfigState:
    """Return the configuration state of a node from the desired version and its newest report."""
    if desired is None:
        return ConfigState.NONE
    if reported is None or reported < desired:
        return ConfigState.PENDING
    if reported == desired and result == "rejected":
        return ConfigState.FAILED
    return ConfigState.IN_SYNC


def _local(ms: int | None, context: AppContext) -> datetime | None:
    return from_epoch_ms(ms, context.zone) if ms is not None else None


@router.get("/api/v1/nodes", response_model=NodeList)
def list_nodes(
    context: Annotated[AppContext, Depends(get_context)],
    principal: Annotated[Principal, Depends(current_principal)],
    opd: Annotated[list[str] | None, Query(description="Only these OPD ids. Repeat the parameter for several")] = None,
) -> NodeList:
    """List edge nodes with their status and configuration state."""
    for value in opd or []:
        problem = id_problem(value)
        if problem:
            raise ApiError(422, "invalid_parameter", parameter="opd", name="opd", problem=problem)

    scope = principal.scope(opd)
    states = {(row.opd_key, row.node_key): row for row in NodeStateStore(context.registry).all(scope)}
    desired = NodeConfigStore(context.registry).latest_versions()
    names = {(entry.id, node.id): node.name for entry in context.catalogue.opds for node in entry.nodes}
    keys = sorted({key for key in names if scope is None or key[0] in scope} | set(states))

    nodes = []
    for key in keys:
        row = states.get(key)
        status = (row.status or {}) if row else {}
        wanted = desired.get(key)
        nodes.append(
            NodeOut(
                opd=key[0],
                node=key[1],
                name=names.get(key),
                state=row.state if row else "unknown",
                state_since=_local(row.state_since_ms if row else None, context),
                last_seen=_local(row.last_seen_ms if row else None, context),
                sw_version=status.get("sw_version"),
                uptime_s=status.get("uptime_s"),
                queue_depth=status.get("queue_depth"),
                dropped_total=status.get("dropped_total"),
                desired_version=wanted,
                reported_version=row.reported_version if row else None,
                config_state=config_state(wanted, row.reported_version if row else None, row.reported_result if row else None),
                config_error=row.reported_error if row and row.reported_result == "rejected" else None,
            )
        )
    return NodeList(nodes=nodes)


@router.get("/api/v1/opds/{opd}/nodes/{node}/config", response_model=NodeConfigOut)
def read_node_config(
    context: Annotated[AppContext, Depends(get_context)],
    opd: Annotated[str, OpdPath],
    node: Annotated[str, NodePath],
) -> NodeConfigOut:
    """Return the node's desired configuration and its newest report."""
    _ensure_known_node(context, opd, node)
    return _config_out(context, opd, node)


@router.put("/api/v1/opds/{opd}/nodes/{node}/config", response_model=NodeConfigOut)
async def write_node_config(
    context: Annotated[AppContext, Depends(get_context)],
    principal: Annotated[Principal, Depends(current_principal)],
    opd: Annotated[str, OpdPath],
    node: Annotated[str, NodePath],
    body: Annotated[NodeConfigIn, Body()],
) -> NodeConfigOut:
    """Store new settings as the node's next version and publish them, retained, to its `config` topic.

    The settings are checked with the edge agent's own schema first, so a configuration the
    node would reject is refused here with 422. The node applies a valid one without a
    restart and reports the outcome on `config/reported`; `config_state` is `pending` until
    then. The version is stored before it is published: if the broker cannot be reached, the
    response is 503 and the next successful PUT publishes a newer version.
    """
    _ensure_known_node(context, opd, node)
    problem = validate_node_settings(body.settings)
    if problem is not None:
        raise ApiError(422, "invalid_node_config", parameter="settings", problem=problem)

    issued_ms = int(time.time() * 1000)
    store = NodeConfigStore(context.registry)
    row = await asyncio.to_thread(store.add, opd, node, body.settings, principal.name, issued_ms)
    await record(context.registry, principal.actor, "node_config.update", f"node:{opd}/{node}", version=row.version)
    message = {"version": row.version, "issued_ts": issued_ms, "settings": body.settings}
    try:
        await publish_node_config(context.settings, opd, node, message)
    except aiomqtt.MqttError as exc:
        logger.error("configuration version %d of %s/%s not published: %s", row.version, opd, node, exc)
        raise ApiError(503, "node_config_not_published") from None

    logger.info("configuration version %d of %s/%s set by %s", row.version, opd, node, principal.actor)
    return _config_out(context, opd, node)


def _ensure_known_node(context: AppContext, opd: str, node: str) -> None:
    """Raise 404 unless the catalogue lists the node or the node has sent a status or report."""
    entry = context.catalogue.opd(opd)
    if entry is not None and any(candidate.id == node for candidate in entry.nodes):
        return
    if NodeStateStore(context.registry).get(opd, node) is not None:
        return
    if entry is None:
        raise ApiError(404, "opd_not_found", opd=opd)
    raise ApiError(404, "node_not_found", parameter="node", opd=opd, node=node)


def _config_out(context: AppContext, opd: str, node: str) -> NodeConfigOut:
    latest = NodeConfigStore(context.registry).latest(opd, node)
    state = NodeStateStore(context.registry).get(opd, node)
    reported = None
    if state is not None and state.reported_version is not None:
        reported = ConfigReportOut(
            version=state.reported_version,
            result=state.reported_result,
            error=state.reported_error,
            reported_at=from_epoch_ms(state.reported_at_ms, context.zone),
        )
    return NodeConfigOut(
        opd=opd,
        node=node,
        version=latest.version if latest else None,
        issued_at=_local(latest.issued_at_ms, context) if latest else None,
        issued_by=latest.issued_by if latest else None,
        settings=latest.settings if latest else None,
        reported=reported,
        config_state=config_state(
            latest.version if latest else None,
            state.reported_version if state else None,
            state.reported_result if state else None,
        ),
    )
