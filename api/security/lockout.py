"""Lock-out of user names and throttling of client addresses after failed logins.

A user name is locked for ``login_lockout_s`` after ``login_max_failures`` failed logins in a
row. The count and the lock of an existing user are columns of the ``users`` table, so they
survive a restart and hold across API processes. User names that do not exist are counted
in memory with the same limits, so the response does not tell whether a user exists.

A client address is throttled when it has ``login_address_max_failures`` failed logins within
``login_address_window_s``, whatever user names it tries. This count is in memory, per process.
"""

import time
from collections import deque
from dataclasses import dataclass

from registry.models import User

_MAX_TRACKED = 10_000
"""Addresses and unknown user names tracked at most; the oldest half is forgotten beyond it."""


@dataclass(frozen=True, slots=True)
class LockoutPolicy:
    """Limits of the lock-out and the throttle."""

    max_failures: int
    lockout_s: int
    address_max_failures: int
    address_window_s: int


class LoginGuard:
    """In-memory counters of one API process: failures per client address and per unknown user name."""

    def __init__(self, policy: LockoutPolicy) -> None:
        self.policy = policy
        self._by_address: dict[str, deque[float]] = {}
        self._unknown_users: dict[str, tuple[int, float]] = {}

    def address_retry_after_s(self, address: str, now_s: float | None = None) -> int:
        """Return the seconds until ``address`` may try again, 0 when it is not throttled."""
        now_s = time.time() if now_s is None else now_s
        failures = self._recent(address, now_s)
        if len(failures) < self.policy.address_max_failures:
            return 0
        return max(1, int(failures[0] + self.policy.address_window_s - now_s) + 1)

    def note_address_failure(self, address: str, now_s: float | None = None) -> None:
        """Count one failed login from ``address``."""
        now_s = time.time() if now_s is None else now_s
        failures = self._recent(address, now_s)
        failures.append(now_s)
        self._by_address[address] = failures
        _forget_oldest(self._by_address)

    def unknown_user_locked_until_s(self, username: str, now_s: float | None = None) -> float | None:
        """Return when the lock of a user name that does not exist ends, None when it is not locked."""
        now_s = time.time() if now_s is None else now_s
        failures, locked_until = self._unknown_users.get(username, (0, 0.0))
        return locked_until if locked_until > now_s else None

    def note_unknown_user_failure(self, username: str, now_s: float | None = None) -> float | None:
        """Count one failed login for a user name that does not exist; return the lock's end when it locks now."""
        now_s = time.time() if now_s is None else now_s
        failures, _ = self._unknown_users.get(username, (0, 0.0))
        failures += 1
        if failures >= self.policy.max_failures:
            locked_until = now_s + self.policy.lockout_s
            self._unknown_users[username] = (0, locked_until)
            return locked_until
        self._unknown_users[username] = (failures, 0.0)
        _forget_oldest(self._unknown_users)
        return None

    def _recent(self, address: str, now_s: float) -> deque[float]:
        failures = self._by_address.get(address, deque())
        while failures and failures[0] <= now_s - self.policy.address_window_s:
            failures.popleft()
        return failures


def user_locked_until_ms(user: User, now_ms: int) -> int | None:
    """Return when ``user``'s lock ends, epoch ms, or None when the user is not locked."""
    if user.locked_until_ms is not None and user.locked_until_ms > now_ms:
        return user.locked_until_ms
    return None


def note_user_failure(user: User, policy: LockoutPolicy, now_ms: int) -> int | None:
    """Count a failed login on ``user``'s row; return the lock's end, epoch ms, when this failure locks it."""
    user.failed_logins = (user.failed_logins or 0) + 1
    if user.failed_logins < policy.max_failures:
        return None
    user.failed_logins = 0
    user.locked_until_ms = now_ms + policy.lockout_s * 1000
    return user.locked_until_ms


def note_user_success(user: User) -> None:
    """Clear ``user``'s failure count and lock after a successful login."""
    user.failed_logins = 0
    user.locked_until_ms = None


def _forget_oldest(table: dict) -> None:
    # Dicts keep insertion order, so the first keys are the ones tracked longest.
    if len(table) > _MAX_TRACKED:
        for key in list(table)[: _MAX_TRACKED // 2]:
            del table[key]
