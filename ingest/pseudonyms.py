"""Keyed pseudonyms of employee ids: attendance is personal data (UU PDP, Law 27/2022).

An attendance event's ``employee_id`` (a NIP or a terminal's enrolment number) reaches
InfluxDB only as ``HMAC-SHA256(key, opd + ":" + employee_id)``, in lowercase hex, truncated
to ``PSEUDONYM_LENGTH`` characters. The ingest service writes it, and the API computes the same
value when an administrator imports the NIP and name list of an OPD, so both processes must
read the same key (``SMARTOFFICE_PSEUDONYM_KEY`` or ``SMARTOFFICE_PSEUDONYM_KEY_FILE``).

Length and collisions: 16 hex characters are 64 bits. Two employees of one OPD collide with
probability about n² / 2^65 by the birthday bound, 1e-13 for n = 2,000 employees, and the
pseudonym includes the OPD, so only employees of the same OPD can collide at all. A
collision would merge two employees' punches in the recap.

Why a key: without it, the NIP space is small enough (birth date, appointment month, sex and a
3-digit sequence) that a plain hash could be reversed by trying every NIP. Anyone with the key
can do the same, so the key is as sensitive as the NIP list itself. Changing the key changes
every pseudonym, and points already stored keep the old ones.
"""

import hashlib
import hmac
from pathlib import Path

from pydantic import SecretStr

PSEUDONYM_LENGTH = 16
"""Hex characters kept of the HMAC-SHA256 digest (64 bits)."""

MIN_KEY_LENGTH = 32
"""Minimum key length in characters, e.g. the 64 hex characters of ``openssl rand -hex 32``."""

_PLACEHOLDER_KEYS = frozenset({"change-me", "changeme", "secret", "password", "test", "example"})


class PseudonymKeyError(ValueError):
    """Raised when the pseudonym key is missing, too short or a placeholder."""


def load_key(key: SecretStr | None, key_file: Path | None) -> bytes | None:
    """Return the key from the setting or from the first line of ``key_file``; None when neither is set.

    Raises:
        PseudonymKeyError: both are set, the file cannot be read, or the key is shorter than
            ``MIN_KEY_LENGTH`` characters or a placeholder.
    """
    if key is not None and key_file is not None:
        raise PseudonymKeyError(
            "set SMARTOFFICE_PSEUDONYM_KEY or SMARTOFFICE_PSEUDONYM_KEY_FILE, not both"
        )
    if key is not None:
        text = key.get_secret_value().strip()
        source = "SMARTOFFICE_PSEUDONYM_KEY"
    elif key_file is not None:
        try:
            text = key_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise PseudonymKeyError(f"SMARTOFFICE_PSEUDONYM_KEY_FILE={str(key_file)!r} cannot be read: {exc.strerror}") from None
        source = f"SMARTOFFICE_PSEUDONYM_KEY_FILE={str(key_file)!r}"
    else:
        return None

    if text.lower() in _PLACEHOLDER_KEYS or len(text) < MIN_KEY_LENGTH:
        raise PseudonymKeyError(
            f"{source}: the key must have at least {MIN_KEY_LENGTH} characters and not be a placeholder; "
            "generate one with: openssl rand -hex 32"
        )
    return text.encode("utf-8")


def pseudonym(key: bytes, opd: str, employee_id: str) -> str:
    """Return the pseudonym of ``employee_id`` at ``opd``: truncated hex HMAC-SHA256."""
    digest = hmac.new(key, f"{opd}:{employee_id}".encode("utf-8"), hashlib.sha256).hexdigest()
    return digest[:PSEUDONYM_LENGTH]


class Pseudonymizer:
    """Compute pseudonyms with one key, caching them, because an OPD has only thousands of employees.

    The cache is cleared when it contains ``max_cached`` entries, which costs only recomputing them.
    """

    def __init__(self, key: bytes, max_cached: int = 100_000) -> None:
        self._key = key
        self._cache: dict[tuple[str, str], str] = {}
        self._max_cached = max_cached

    def __repr__(self) -> str:
        # The key never appears in a repr, so neither in a traceback's locals.
        return f"Pseudonymizer(cached={len(self._cache)})"

    def pseudonym(self, opd: str, employee_id: str) -> str:
        """Return the pseudonym of ``employee_id`` at ``opd``."""
        cache_key = (opd, employee_id)
        value = self._cache.get(cache_key)
        if value is None:
            if len(self._cache) >= self._max_cached:
                self._cache.clear()
            value = pseudonym(self._key, opd, employee_id)
            self._cache[cache_key] = value
        return value
