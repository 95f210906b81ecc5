"""Integration tokens: admins create, list and revoke them; a new token is shown once."""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, Field

from contract import ID_PATTERN

from ..deps import AppContext, ensure_known_opd, get_context
from ..errors import ApiError
from ..security.api_tokens import TokenRecord, create_api_token, list_api_tokens, revoke_api_token
from ..security.audit import record
from ..security.context import SecurityContext
from ..security.deps import current_principal, get_security, in_registry
from ..security.principals import Principal
from ..timewindows import from_epoch_ms

router = APIRouter(prefix="/api/v1/tokens", tags=["tokens"])

DEFAULT_TOKEN_DAYS = 90


class TokenCreate(BaseModel):
    """A new read-only integration token, scoped to a list of OPDs."""

    name: str = Field(min_length=1, max_length=150, description="What the token is for, e.g. 'bkpsdm-sync'")
    opds: list[Annotated[str, Field(pattern=ID_PATTERN, max_length=64)]] = Field(
        min_length=1, max_length=200, description="OPD ids the token may read"
    )
    expires_in_days: int = Field(
        DEFAULT_TOKEN_DAYS, ge=1, description="Lifetime, days; at most SMARTOFFICE_API_TOKEN_MAX_DAYS"
    )


class TokenOut(BaseModel):
    """An integration token as stored; the token itself is never returned again."""

    id: int
    name: str
    role: str
    opds: list[str]
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None = Field(description="Last use, to the minute")


class TokenCreated(TokenOut):
    """A new token: ``token`` is shown in this response only."""

    token: str = Field(description="Send as 'Authorization: Bearer <token>'. Store it now: it cannot be shown again")


@router.post("", response_model=TokenCreated, status_code=201)
async def create_token(
    context: Annotated[AppContext, Depends(get_context)],
    security: Annotated[SecurityContext, Depends(get_security)],
    principal: Annotated[Principal, Depends(current_principal)],
    body: TokenCreate,
) -> TokenCreated:
    """Create a read-only integration token for the listed OPDs; the response is the only time it is shown."""
    limit = security.settings.api_token_max_days
    if body.expires_in_days > limit:
        raise ApiError(422, "token_lifetime_too_long", parameter="expires_in_days", days=body.expires_in_days, limit=limit)
    for opd in body.opds:
        await ensure_known_opd(context, opd)

    created, token = await in_registry(
        create_api_token, security.sessions, body.name, body.opds, body.expires_in_days, principal.actor
    )
    await record(
        security.sessions,
        principal.actor,
        "token.create",
        f"token:{created.id}",
        name=created.name,
        opds=created.opds,
        expires_at_ms=created.expires_at_ms,
    )
    return TokenCreated(**_out(created, context).model_dump(), token=token)


@router.get("", response_model=list[TokenOut])
async def read_tokens(
    context: Annotated[AppContext, Depends(get_context)],
    security: Annotated[SecurityContext, Depends(get_security)],
) -> list[TokenOut]:
    """List every integration token, newest first, revoked and expired ones included."""
    return [_out(item, context) for item in await in_registry(list_api_tokens, security.sessions)]


@router.delete("/{token_id}", status_code=204)
async def revoke_token(
    security: Annotated[SecurityContext, Depends(get_security)],
    principal: Annotated[Principal, Depends(current_principal)],
    token_id: Annotated[int, Path(ge=1, le=2**62)],
) -> None:
    """Revoke a token: requests with it get 401 from now on. Revoking twice is harmless."""
    revoked = await in_registry(revoke_api_token, security.sessions, token_id)
    if revoked is None:
        raise ApiError(404, "api_token_not_found", token_id=token_id)
    await record(security.sessions, principal.actor, "token.revoke", f"token:{token_id}", name=revoked.name)


def _out(item: TokenRecord, context: AppContext) -> TokenOut:
    def time_of(epoch_ms: int | None) -> datetime | None:
        return from_epoch_ms(epoch_ms, context.zone) if epoch_ms is not None else None

    return TokenOut(
        id=item.id,
        name=item.name,
        role=item.role,
        opds=item.opds,
        created_by=item.created_by,
        created_at=from_epoch_ms(item.created_at_ms, context.zone),
        expires_at=time_of(item.expires_at_ms),
        revoked_at=time_of(item.revoked_at_ms),
        last_used_at=time_of(item.last_used_at_ms),
    )
