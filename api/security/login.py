"""Password login: check the user name and password, count failures, lock and throttle.

``authenticate`` runs in a worker thread, because one Argon2 verification takes about 0.13 s
of CPU. Every failure is logged with the user name and the client address, never the password.
"""

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from registry.db import transaction
from registry.models import User

from ..errors import ApiError, Unavailable
from .audit import write_entry
from .identify import scope_of
from .lockout import LoginGuard, note_user_failure, note_user_success, user_locked_until_ms
from .passwords import hash_password, needs_rehash, verify_password
from .principals import Principal, Role

logger = logging.getLogger(__name__)

_LOGIN_FAILED_HEADERS = {"WWW-Authenticate": "Bearer"}

_MAX_LOGGED_NAME = 64
"""Characters of a user name kept in a log line; the form field has no length limit."""


@dataclass(frozen=True, slots=True)
class _Outcome:
    principal: Principal | None = None
    error: ApiError | None = None
    locked_until_ms: int | None = None


def authenticate(
    sessions: sessionmaker[Session], guard: LoginGuard, username: str, password: str, address: str
) -> Principal:
    """Return the user that ``username`` and ``password`` log in, after the lock-out and throttle checks.

    Raises:
        ApiError: 401 ``login_failed`` (unknown user or wrong password), 403 ``account_disabled``
            (right password of a disabled user), 429 ``login_locked`` or ``login_throttled``
            with a ``Retry-After`` header.
        Unavailable: 503 ``registry_unavailable``.
    """
    now_s = time.time()
    now_ms = int(now_s * 1000)
    shown_name = username[:_MAX_LOGGED_NAME]

    retry_after_s = guard.address_retry_after_s(address, now_s)
    if retry_after_s:
        logger.warning("login rejected for user %r from %s: address throttled for %d s", shown_name, address, retry_after_s)
        raise ApiError(429, "login_throttled", headers={"Retry-After": str(retry_after_s)}, seconds=retry_after_s)

    try:
        outcome = _check(sessions, guard, username, password, address, now_s, now_ms)
    except SQLAlchemyError as exc:
        raise Unavailable("registry_unavailable", f"login of {shown_name!r} failed: {exc}") from None

    if outcome.locked_until_ms is not None:
        write_entry(sessions, f"user:{shown_name}", "auth.lockout", f"user:{shown_name}", {"address": address}, now_ms)
    if outcome.error is not None:
        raise outcome.error
    write_entry(sessions, f"user:{username}", "auth.login", f"user:{username}", {"address": address}, now_ms)
    logger.info("user %r logged in from %s", username, address)
    return outcome.principal


def _check(
    sessions: sessionmaker[Session],
    guard: LoginGuard,
    username: str,
    password: str,
    address: str,
    now_s: float,
    now_ms: int,
) -> _Outcome:
    """Check the password inside one transaction, so the failure count and lock are committed."""
    shown_name = username[:_MAX_LOGGED_NAME]
    policy = guard.policy
    with transaction(sessions) as session:
        user = session.scalar(select(User).where(User.username == username))

        if user is None:
            locked_until_s = guard.unknown_user_locked_until_s(username, now_s)
            if locked_until_s is not None:
                return _Outcome(error=_locked_error(int(locked_until_s * 1000), now_ms))
            verify_password(None, password)
            guard.note_address_failure(address, now_s)
            locked_until_s = guard.note_unknown_user_failure(username, now_s)
            logger.warning("login failed for user %r from %s: no such user", shown_name, address)
            if locked_until_s is not None:
                logger.warning("user name %r locked for %d s after %d failed logins", shown_name, policy.lockout_s, policy.max_failures)
            return _Outcome(error=ApiError(401, "login_failed", headers=_LOGIN_FAILED_HEADERS))

        locked_until_ms = user_locked_until_ms(user, now_ms)
        if locked_until_ms is not None:
            logger.warning("login rejected for user %r from %s: locked", shown_name, address)
            return _Outcome(error=_locked_error(locked_until_ms, now_ms))

        if not verify_password(user.password_hash, password):
            guard.note_address_failure(address, now_s)
            locked_until_ms = note_user_failure(user, policy, now_ms)
            logger.warning(
                "login failed for user %r from %s: wrong password (failure %d in a row)",
                shown_name,
                address,
                policy.max_failures if locked_until_ms else user.failed_logins,
            )
            if locked_until_ms is not None:
                logger.warning("user %r locked for %d s after %d failed logins", shown_name, policy.lockout_s, policy.max_failures)
            return _Outcome(error=ApiError(401, "login_failed", headers=_LOGIN_FAILED_HEADERS), locked_until_ms=locked_until_ms)

        if user.disabled:
            logger.warning("login rejected for user %r from %s: account disabled", shown_name, address)
            return _Outcome(error=ApiError(403, "account_disabled", username=shown_name))

        try:
            role = Role(user.role)
        except ValueError:
            logger.error("user %r has the unknown role %r in the registry; fix its row", shown_name, user.role)
            return _Outcome(error=ApiError(401, "login_failed", headers=_LOGIN_FAILED_HEADERS))

        note_user_success(user)
        if needs_rehash(user.password_hash):
            user.password_hash = hash_password(password, check_length=False)
        principal = Principal(kind="user", name=user.username, role=role, opds=scope_of(role, user.opds), subject_id=user.id)
        return _Outcome(principal=principal)


def _locked_error(locked_until_ms: int, now_ms: int) -> ApiError:
    retry_after_s = max(1, (locked_until_ms - now_ms + 999) // 1000)
    until = datetime.fromtimestamp(locked_until_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return ApiError(429, "login_locked", headers={"Retry-After": str(retry_after_s)}, until=until, seconds=retry_after_s)
