"""Integration tokens in the registry: create (the token is returned once), list and revoke.

The routes under ``/api/v1/tokens`` and the ``users_cli`` commands share these functions.
"""

import time
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from registry.db import transaction
from registry.models import ApiToken

from .principals import Role
from .tokens import hash_api_token, new_api_token

DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """An integration token as stored, without the token itself."""

    id: int
    name: str
    role: str
    opds: list[str]
    created_by: str
    created_at_ms: int
    expires_at_ms: int | None
    revoked_at_ms: int | None
    last_used_at_ms: int | None


def create_api_token(
    sessions: sessionmaker[Session], name: str, opds: list[str], days: int, created_by: str
) -> tuple[TokenRecord, str]:
    """Store a new read-only integration token for ``opds`` that expires in ``days``; return it and its record.

    The token is not stored, only its SHA-256, so this is the only time it is available.
    """
    token = new_api_token()
    now_ms = int(time.time() * 1000)
    row = ApiToken(
        name=name,
        token_hash=hash_api_token(token),
        role=Role.INTEGRATION.value,
        opds=sorted(set(opds)),
        created_by=created_by,
        created_at_ms=now_ms,
        expires_at_ms=now_ms + days * DAY_MS,
    )
    with transaction(sessions) as session:
        session.add(row)
        session.flush()
        record = _record(row)
    return record, token


def list_api_tokens(sessions: sessionmaker[Session]) -> list[TokenRecord]:
    """Return every token, revoked and expired ones included, newest first."""
    with sessions() as session:
        return [_record(row) for row in session.scalars(select(ApiToken).order_by(ApiToken.id.desc()))]


def revoke_api_token(sessions: sessionmaker[Session], token_id: int) -> TokenRecord | None:
    """Mark token ``token_id`` revoked from now on; return it, or None when it does not exist.

    Revoking a revoked token keeps its first revocation time.
    """
    with transaction(sessions) as session:
        row = session.get(ApiToken, token_id)
        if row is None:
            return None
        if row.revoked_at_ms is None:
            row.revoked_at_ms = int(time.time() * 1000)
        return _record(row)


def _record(row: ApiToken) -> TokenRecord:
    return TokenRecord(
        id=row.id,
        name=row.name,
        role=row.role,
        opds=list(row.opds or []),
        created_by=row.created_by,
        created_at_ms=row.created_at_ms,
        expires_at_ms=row.expires_at_ms,
        revoked_at_ms=row.revoked_at_ms,
        last_used_at_ms=row.last_used_at_ms,
    )
