"""Broker credentials of edge nodes: provision or rotate, and revoke, on the running broker.

The routes connect to the broker as the dynsec administrator (``SMARTOFFICE_BROKER_ADMIN_*``)
and call ``registry.provisioning``. A new password is in the response body only, once, and
the registry keeps an argon2 hash of it. These routes carry no access check of their own:
the application includes the router behind an admin-only dependency.
"""

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import BaseModel, Field

from contract import ID_PATTERN
from registry.db import transaction
from registry.dynsec import DynsecClient, DynsecError
from registry.provisioning import (
    ClientIdConflictError,
    NodeCredentials,
    NodeNotFoundError,
    NodeNotProvisionedError,
    provision_node,
    revoke_node,
)

from ..config import ApiSettings
from ..deps import AppContext, OpdPath, get_context
from ..errors import ApiError, Unavailable

router = APIRouter(prefix="/api/v1/opds/{opd}/nodes/{node}/credentials", tags=["provisioning"])

NodeIdPath = Path(..., pattern=ID_PATTERN, max_length=64, description="Node id within the OPD, e.g. gw-01")

DEFAULT_ACTOR = "api"
"""Actor in the audit log when the request carries no authenticated principal."""


class BrokerAddressOut(BaseModel):
    """Broker address for the node."""

    host: str
    port: int
    tls: bool = Field(description="True when the node must use MQTT over TLS and verify the broker's certificate")


class NodeCredentialsOut(BaseModel):
    """A node's broker login. The password is shown in this response only."""

    username: str
    password: str
    client_id: str = Field(description="The only MQTT client id the broker accepts for this user name")
    broker: BrokerAddressOut


class RevocationOut(BaseModel):
    """A revoked node identity."""

    opd: str
    node: str
    username: str
    revoked_at_ms: int = Field(description="When the node was first revoked, UTC epoch milliseconds")


def _admin_client(settings: ApiSettings) -> DynsecClient:
    if settings.broker_admin_password is None:
        raise ApiError(503, "broker_admin_not_configured")
    return DynsecClient(
        settings.mqtt_host,
        settings.mqtt_port,
        settings.broker_admin_username,
        settings.broker_admin_password.get_secret_value(),
    )


def _actor(request: Request) -> str:
    principal = getattr(request.state, "principal", None)
    return getattr(principal, "actor", None) or DEFAULT_ACTOR


def _provision(context: AppContext, opd: str, node: str, actor: str) -> NodeCredentials:
    """Run the provisioning in a worker thread: the control client and the registry are blocking."""
    dynsec = _admin_client(context.settings)
    try:
        with dynsec, transaction(context.registry) as session:
            return provision_node(session, dynsec, opd, node, actor)
    except NodeNotFoundError:
        raise ApiError(404, "node_not_found", opd=opd, node=node) from None
    except ClientIdConflictError as exc:
        raise ApiError(409, "node_client_id_conflict", opd=opd, node=node, problem=str(exc)) from None
    except DynsecError as exc:
        raise Unavailable("broker_admin_failed", f"provisioning node {opd}/{node} failed: {exc}") from None


def _revoke(context: AppContext, opd: str, node: str, actor: str) -> RevocationOut:
    dynsec = _admin_client(context.settings)
    try:
        with dynsec, transaction(context.registry) as session:
            row = revoke_node(session, dynsec, opd, node, actor)
            return RevocationOut(opd=opd, node=node, username=row.mqtt_username, revoked_at_ms=row.revoked_at_ms)
    except NodeNotFoundError:
        raise ApiError(404, "node_not_found", opd=opd, node=node) from None
    except NodeNotProvisionedError:
        raise ApiError(409, "node_not_provisioned", opd=opd, node=node) from None
    except DynsecError as exc:
        raise Unavailable("broker_admin_failed", f"revoking node {opd}/{node} failed: {exc}") from None


@router.post("", status_code=201, response_model=NodeCredentialsOut)
async def create_node_credentials(
    request: Request,
    response: Response,
    context: Annotated[AppContext, Depends(get_context)],
    opd: Annotated[str, OpdPath],
    node: Annotated[str, NodeIdPath],
) -> NodeCredentialsOut:
    """Give the node a new broker password, creating its identity or rotating the old password.

    The broker disconnects connections made with the old password at once. Store the
    password on the node now: it cannot be read again.
    """
    credentials = await asyncio.to_thread(_provision, context, opd, node, _actor(request))
    settings = context.settings
    # The password must not stay in a browser or proxy cache.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return NodeCredentialsOut(
        username=credentials.username,
        password=credentials.password,
        client_id=credentials.client_id,
        broker=BrokerAddressOut(
            host=settings.node_broker_host or settings.mqtt_host,
            port=settings.node_broker_port or settings.mqtt_port,
            tls=settings.node_broker_tls,
        ),
    )


@router.delete("", response_model=RevocationOut)
async def revoke_node_credentials(
    request: Request,
    context: Annotated[AppContext, Depends(get_context)],
    opd: Annotated[str, OpdPath],
    node: Annotated[str, NodeIdPath],
) -> RevocationOut:
    """Revoke the node's broker identity: the broker disconnects it now and rejects it from then on."""
    return await asyncio.to_thread(_revoke, context, opd, node, _actor(request))
