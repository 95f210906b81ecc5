"""FastAPI dependencies of authentication and authorization.

A router is protected by the dependencies it is included with, so a new router needs only
one of these lists in ``app.include_router(router, dependencies=...)``:

- ``READ_DEPENDENCIES``: every role; the ``{opd}`` path parameter, when the route has one,
  must be in the caller's scope.
- ``OPERATOR_DEPENDENCIES``: admin and facility_manager, with the same OPD check, for actions
  that change no configuration (acknowledging an alert).
- ``READ_OPERATE_DEPENDENCIES`` and ``READ_ADMINISTER_DEPENDENCIES``: reads for every role,
  changes for admin and facility_manager, or for admin only; OPD in scope.
- ``ADMIN_DEPENDENCIES``: admin only (configuration, provisioning, tokens, audit, employees).
- ``STREAM_DEPENDENCIES``: every role, also with ``?access_token=`` (the live view).
- ``AUTHENTICATED_DEPENDENCIES``: any logged-in caller, no OPD check.

Routes that filter lists or hide personal data take the caller with
``Depends(current_principal)``; FastAPI resolves it once per request. ``check_routes_protected``
runs when the application is built and rejects any ``/api/`` route that has none of these,
unless its path is in ``PUBLIC_API_PATHS``.
"""

import asyncio
from collections.abc import Callable, Iterator
from typing import Annotated, TypeVar

from fastapi import Depends, FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.exc import SQLAlchemyError

from ..errors import ApiError, Unavailable
from .context import SecurityContext
from .identify import identify
from .principals import ALL_ROLES, ANONYMOUS_ADMIN, OPERATOR_ROLES, Principal, Role

TOKEN_URL = "/api/v1/auth/token"

PUBLIC_API_PATHS = frozenset({TOKEN_URL, "/api/v1/meta"})
"""Routes under ``/api/`` that respond without a token: the login, and the deployment facts the
dashboard shows before anyone logs in."""

bearer_scheme = OAuth2PasswordBearer(
    tokenUrl=TOKEN_URL,
    auto_error=False,
    description="An access token from POST /api/v1/auth/token, or an integration token (soi_...) from an admin",
)

NOT_AUTHENTICATED_HEADERS = {"WWW-Authenticate": "Bearer"}

T = TypeVar("T")


def get_security(request: Request) -> SecurityContext:
    """Return the application's security context."""
    return request.app.state.security


async def current_principal(request: Request, token: Annotated[str | None, Depends(bearer_scheme)]) -> Principal:
    """Return the caller from the ``Authorization: Bearer`` header.

    Raises:
        ApiError: 401 ``not_authenticated``, ``invalid_token`` or ``token_expired``.
    """
    return await _principal(request, token)


async def current_stream_principal(
    request: Request, token: Annotated[str | None, Depends(bearer_scheme)]
) -> Principal:
    """Return the caller from the header or, for EventSource clients that cannot send headers, ``?access_token=``.

    Only streaming routes use this, because a token in a URL can end up in proxy logs and
    browser history.
    """
    if token is None:
        token = request.query_params.get("access_token") or None
    return await _principal(request, token)


async def _principal(request: Request, token: str | None) -> Principal:
    security = get_security(request)
    if not security.auth_enabled:
        principal = ANONYMOUS_ADMIN
    elif not token:
        raise ApiError(401, "not_authenticated", headers=NOT_AUTHENTICATED_HEADERS)
    else:
        principal = await asyncio.to_thread(identify, security.sessions, security.codec, token)
    request.state.principal = principal
    return principal


async def in_registry(function: Callable[..., T], *args: object) -> T:
    """Run a blocking registry function in a worker thread.

    Raises:
        Unavailable: 503 ``registry_unavailable`` when SQLAlchemy raises.
    """
    try:
        return await asyncio.to_thread(function, *args)
    except SQLAlchemyError as exc:
        raise Unavailable("registry_unavailable", f"{function.__name__} failed: {exc}") from None


def require_roles(*roles: Role, allow_query_token: bool = False) -> Callable:
    """Return a dependency that raises 403 ``role_forbidden`` unless the caller has one of ``roles``."""
    source = current_stream_principal if allow_query_token else current_principal
    allowed = ", ".join(role.value for role in roles)

    async def check_role(principal: Annotated[Principal, Depends(source)]) -> Principal:
        if principal.role not in roles:
            raise ApiError(403, "role_forbidden", roles=allowed, role=principal.role.value)
        return principal

    check_role.__qualname__ = f"require_roles({allowed})"
    return check_role


async def require_opd_access(request: Request, principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    """Raise 403 ``opd_forbidden`` when the ``{opd}`` path parameter or an ``opd`` query parameter is outside the caller's scope.

    A route that lists several OPDs when no ``opd`` filter is given must still leave out
    those outside the scope itself, with ``Principal.may_see_opd``.
    """
    opd = request.path_params.get("opd")
    if opd is not None:
        principal.require_opd(opd)
    for value in request.query_params.getlist("opd"):
        principal.require_opd(value)
    return principal


def require_roles_to_write(*roles: Role) -> Callable:
    """Return a dependency for routers that mix reads and changes.

    GET and HEAD pass. Other methods raise 403 ``role_forbidden`` unless the caller has one of ``roles``.
    """
    check = require_roles(*roles)

    async def check_write(request: Request, principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if request.method in ("GET", "HEAD"):
            return principal
        return await check(principal)

    check_write.__qualname__ = f"require_roles_to_write({', '.join(role.value for role in roles)})"
    return check_write


READ_DEPENDENCIES = [Depends(require_roles(*ALL_ROLES)), Depends(require_opd_access)]
OPERATOR_DEPENDENCIES = [Depends(require_roles(*OPERATOR_ROLES)), Depends(require_opd_access)]
ADMIN_DEPENDENCIES = [Depends(require_roles(Role.ADMIN))]
AUTHENTICATED_DEPENDENCIES = [Depends(current_principal)]
STREAM_DEPENDENCIES = [Depends(require_roles(*ALL_ROLES, allow_query_token=True))]
# The role checks come before the OPD check, so a caller whose role can never call a route
# learns that, not which OPDs are in scope.
READ_OPERATE_DEPENDENCIES = [
    Depends(require_roles(*ALL_ROLES)),
    Depends(require_roles_to_write(*OPERATOR_ROLES)),
    Depends(require_opd_access),
]
"""Reads for every role, changes (e.g. acknowledging an alert) for admin and facility_manager; OPD in scope."""
READ_ADMINISTER_DEPENDENCIES = [
    Depends(require_roles(*ALL_ROLES)),
    Depends(require_roles_to_write(Role.ADMIN)),
    Depends(require_opd_access),
]
"""Reads for every role, changes (e.g. a node's configuration) for admin only; OPD in scope."""


def check_routes_protected(app: FastAPI) -> None:
    """Raise when an ``/api/`` route of ``app`` has no authentication dependency and is not public.

    Raises:
        RuntimeError: naming each such route and the fix.
    """
    unprotected = []
    # iter_route_contexts yields the routes of included routers with the router's dependencies.
    for route in iter_route_contexts(app.routes):
        if not isinstance(route.original_route, APIRoute) or not route.path.startswith("/api/"):
            continue
        if route.path in PUBLIC_API_PATHS:
            continue
        if not any(dependency.call in (current_principal, current_stream_principal) for dependency in _walk(route.dependant)):
            unprotected.append(f"{','.join(sorted(route.methods))} {route.path}")
    if unprotected:
        raise RuntimeError(
            "routes without authorization: "
            + "; ".join(unprotected)
            + ". Include their router with dependencies=READ_DEPENDENCIES, OPERATOR_DEPENDENCIES or "
            "ADMIN_DEPENDENCIES from api.security.deps"
        )


def _walk(dependant: Dependant) -> Iterator[Dependant]:
    for dependency in dependant.dependencies:
        yield dependency
        yield from _walk(dependency)
