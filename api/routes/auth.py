"""Login (OAuth2 password flow) and the caller's own identity."""

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel, Field

from ..security.context import SecurityContext
from ..security.deps import current_principal, get_security
from ..security.login import authenticate
from ..security.principals import PERSONAL_DATA_ROLES, Principal

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])

_MAX_FIELD_LENGTH = 1_000
"""Maximum length of the user name and password the login reads, characters; longer input is cut."""


class Identity(BaseModel):
    """The owner of a token: a user or an integration token."""

    username: str = Field(description="User name, or the name of an integration token")
    kind: str = Field(description="user or token; anonymous when authentication is turned off")
    role: str = Field(description="admin, facility_manager, leadership or integration")
    opds: list[str] | None = Field(description="OPD ids in scope; null means every OPD")
    personal_data: bool = Field(description="True when the role sees per-employee attendance with NIP and name")


class TokenResponse(BaseModel):
    """An access token (OAuth2 bearer token) and its owner."""

    access_token: str
    token_type: str = Field("bearer", description="Always bearer: send it as 'Authorization: Bearer <token>'")
    expires_in: int = Field(description="Seconds until the token expires")
    user: Identity


@router.post(
    "/token",
    response_model=TokenResponse,
    responses={401: {"description": "Wrong user name or password"}, 429: {"description": "Locked or throttled"}},
)
async def login(
    request: Request,
    security: Annotated[SecurityContext, Depends(get_security)],
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
) -> TokenResponse:
    """Log in with the form fields `username` and `password`; return a bearer access token.

    After `login_max_failures` failed logins in a row a user name is locked for
    `login_lockout_s` (429 with `Retry-After`), and a client address with too many failures is
    throttled the same way.
    """
    address = request.client.host if request.client else "unknown"
    username = form.username[:_MAX_FIELD_LENGTH]
    password = form.password[:_MAX_FIELD_LENGTH]
    principal = await asyncio.to_thread(authenticate, security.sessions, security.guard, username, password, address)

    issued = security.codec.issue(principal.name, principal.role.value)
    return TokenResponse(access_token=issued.token, expires_in=security.codec.ttl_s, user=identity_of(principal))


@router.get("/me", response_model=Identity)
async def read_me(principal: Annotated[Principal, Depends(current_principal)]) -> Identity:
    """Return the user or integration token that the request's token belongs to."""
    return identity_of(principal)


def identity_of(principal: Principal) -> Identity:
    """Return the public description of ``principal``."""
    return Identity(
        username=principal.name,
        kind=principal.kind,
        role=principal.role.value,
        opds=sorted(principal.opds) if principal.opds is not None else None,
        personal_data=principal.role in PERSONAL_DATA_ROLES,
    )
