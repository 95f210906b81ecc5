"""Turn a bearer token into the ``Principal`` of a request, checking it against the registry.

Errors are 401 ``ApiError``s whose message states what is wrong with the token, never the token.
"""

import logging
import time
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from registry.db import transaction
from registry.models import ApiToken, User

from ..errors import ApiError, Unavailable
from ..messages import TOKEN_PROBLEMS
from .principals import SCOPED_ROLES, Principal, Role
from .tokens import JwtCodec, TokenExpired, TokenInvalid, hash_api_token, is_api_token

logger = logging.getLogger(__name__)

LAST_USED_RESOLUTION_MS = 60_000
"""Interval within which a token's ``last_used_at_ms`` is not rewritten, ms, so each request does not write the registry."""

INVALID_TOKEN_HEADERS = {"WWW-Authenticate": 'Bearer error="invalid_token"'}


def identify(sessions: sessionmaker[Session], codec: JwtCodec, token: str, now_ms: int | None = None) -> Principal:
    """Return the caller that ``token`` (a JWT access token or an API token) belongs to.

    Raises:
        ApiError: 401 ``invalid_token`` or ``token_expired``.
        Unavailable: 503 ``registry_unavailable`` when the registry cannot be read.
    """
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    try:
        if is_api_token(token):
            return _api_token_principal(sessions, token, now_ms)
        return _user_principal(sessions, codec, token)
    except SQLAlchemyError as exc:
        raise Unavailable("registry_unavailable", f"token check failed: {exc}") from None


def scope_of(role: Role, opds: list[str] | None) -> frozenset[str] | None:
    """Return the OPD scope of ``role``: None (every OPD) unless the role is scoped to a list."""
    if role not in SCOPED_ROLES:
        return None
    return frozenset(opds or ())


def _user_principal(sessions: sessionmaker[Session], codec: JwtCodec, token: str) -> Principal:
    try:
        username = codec.subject(token)
    except TokenExpired as exc:
        raise ApiError(401, "token_expired", headers=INVALID_TOKEN_HEADERS, expired=_time_text(exc.expired_at_s * 1000)) from None
    except TokenInvalid as exc:
        raise _invalid(exc.reason) from None

    with sessions() as session:
        user = session.scalar(select(User).where(User.username == username))
    if user is None or user.disabled:
        raise _invalid("user_gone")
    role = _role(user.role, f"user {username!r}")
    return Principal(kind="user", name=user.username, role=role, opds=scope_of(role, user.opds), subject_id=user.id)


def _api_token_principal(sessions: sessionmaker[Session], token: str, now_ms: int) -> Principal:
    digest = hash_api_token(token)
    with transaction(sessions) as session:
        row = session.scalar(select(ApiToken).where(ApiToken.token_hash == digest))
        if row is None:
            raise _invalid("unknown_api_token")
        if row.revoked_at_ms is not None:
            raise _invalid("revoked")
        if row.expires_at_ms is not None and row.expires_at_ms <= now_ms:
            raise ApiError(401, "token_expired", headers=INVALID_TOKEN_HEADERS, expired=_time_text(row.expires_at_ms))
        if row.last_used_at_ms is None or now_ms - row.last_used_at_ms >= LAST_USED_RESOLUTION_MS:
            row.last_used_at_ms = now_ms
        role = _role(row.role, f"API token #{row.id}")
        return Principal(kind="token", name=row.name, role=role, opds=scope_of(role, row.opds), subject_id=row.id)


def _role(value: str, owner: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        logger.error("%s has the unknown role %r in the registry; fix its row", owner, value)
        raise _invalid("unknown_role") from None


def _invalid(reason: str) -> ApiError:
    return ApiError(401, "invalid_token", headers=INVALID_TOKEN_HEADERS, reason=TOKEN_PROBLEMS[reason])


def _time_text(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
