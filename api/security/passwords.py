"""Password hashing with Argon2id (argon2-cffi, RFC 9106 low-memory parameters: 64 MiB, 3 passes).

One hash or verification takes about 0.13 s of CPU on a 2-vCPU machine (measured with
argon2-cffi 25.1), which is why the login route runs it in a worker thread and throttles
failed logins per client address.
"""

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_PASSWORD_LENGTH = 12
"""Shortest password a user may get, characters."""

_hasher = PasswordHasher()

# Verified against when the user name is unknown, so a failed login takes the same time
# whether or not the user exists.
_DUMMY_HASH = _hasher.hash("smartoffice-no-such-user")


class WeakPasswordError(ValueError):
    """Raised when a new password is too short."""


def hash_password(password: str, check_length: bool = True) -> str:
    """Return the Argon2id hash of ``password``, with a random salt.

    ``check_length=False`` is for re-hashing a password that already logged in.

    Raises:
        WeakPasswordError: shorter than ``MIN_PASSWORD_LENGTH`` characters.
    """
    if check_length and len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPasswordError(f"the password has {len(password)} characters; use at least {MIN_PASSWORD_LENGTH}")
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Return True when ``password`` matches ``password_hash``; None checks a dummy hash and returns False."""
    if password_hash is None:
        try:
            _hasher.verify(_DUMMY_HASH, password)
        except VerificationError:
            pass
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """Return True when ``password_hash`` was made with other parameters than the current ones."""
    return _hasher.check_needs_rehash(password_hash)
