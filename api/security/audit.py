"""The audit log: who did what, when, to which target, in the registry's ``audit_log`` table.

Entries are written for every view of personal data (per-employee attendance rows, exports,
the employee list, live attendance events) and every change of users, tokens, employees,
dead letters and node configuration. A route that shows personal data writes its entry
before it responds, so a registry that cannot be written makes the request fail with 503
instead of showing the data unrecorded. Details never contain a password or a token.

Actions: ``auth.login``, ``auth.lockout``, ``user.create``, ``user.unlock``, ``token.create``,
``token.revoke``, ``employees.replace``, ``employees.view``, ``personal_data.view``,
``personal_data.export``, ``personal_data.live``, ``dead_letters.replay``,
``dead_letters.delete``, ``attendance.retention``. Other modules may add actions of the same
``<subject>.<verb>`` form.
"""

import asyncio
import logging
import time

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from registry.db import transaction
from registry.models import AuditEntry

from ..errors import Unavailable

logger = logging.getLogger(__name__)


def write_entry(
    sessions: sessionmaker[Session],
    actor: str,
    action: str,
    target: str,
    detail: dict | None = None,
    ts_ms: int | None = None,
) -> None:
    """Insert one entry in its own transaction.

    Raises:
        Unavailable: 503 ``registry_unavailable`` when the registry cannot be written.
    """
    entry = AuditEntry(
        ts_ms=int(time.time() * 1000) if ts_ms is None else ts_ms,
        actor=actor[:150],
        action=action[:80],
        target=target[:300],
        detail=detail or None,
    )
    try:
        with transaction(sessions) as session:
            session.add(entry)
    except SQLAlchemyError as exc:
        raise Unavailable("registry_unavailable", f"audit entry {action} on {target} by {actor} failed: {exc}") from None
    logger.info("audit: %s %s %s", actor, action, target)


async def record(
    sessions: sessionmaker[Session], actor: str, action: str, target: str, **detail: object
) -> None:
    """Write one entry from async code, in a worker thread; raises like ``write_entry``."""
    await asyncio.to_thread(write_entry, sessions, actor, action, target, detail)


def read_entries(
    sessions: sessionmaker[Session],
    limit: int,
    before_id: int | None = None,
    action: str | None = None,
    actor: str | None = None,
    since_ms: int | None = None,
    until_ms: int | None = None,
) -> list[AuditEntry]:
    """Return at most ``limit`` entries, newest first, with ids below ``before_id``."""
    statement = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if before_id is not None:
        statement = statement.where(AuditEntry.id < before_id)
    if action is not None:
        statement = statement.where(AuditEntry.action == action)
    if actor is not None:
        statement = statement.where(AuditEntry.actor == actor)
    if since_ms is not None:
        statement = statement.where(AuditEntry.ts_ms >= since_ms)
    if until_ms is not None:
        statement = statement.where(AuditEntry.ts_ms < until_ms)
    with sessions() as session:
        return list(session.scalars(statement))
