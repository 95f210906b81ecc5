"""Identifier rules shared by topics and payloads.

An id names an OPD, an edge node, a device, a room or a circuit. Ids become MQTT topic levels
and InfluxDB tag values, so they must never contain the MQTT wildcards ``+`` and ``#``, the
level separator ``/``, or anything that line protocol would need to escape.
"""

import re
from typing import Annotated

from pydantic import StringConstraints

ID_MAX_LENGTH = 64
"""Longest id, in characters: long enough for ``dinas-pekerjaan-umum-...`` style slugs."""

ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,63}$"
"""Lowercase ASCII letters, digits and ``-``; 1 to 64 characters; no leading ``-``."""

_ID_RE = re.compile(ID_PATTERN)

Id = Annotated[str, StringConstraints(pattern=ID_PATTERN, max_length=ID_MAX_LENGTH)]
"""Pydantic type for an id field."""


def is_valid_id(value: str) -> bool:
    """Return True when ``value`` is a valid id."""
    return bool(_ID_RE.match(value))


def id_problem(value: str) -> str | None:
    """Return why ``value`` is not a valid id, or None when it is valid.

    The text names the value and the fix, for error messages and logs.
    """
    if value == "":
        return "id is empty: use 1 to 64 lowercase letters, digits or '-'"

    if len(value) > ID_MAX_LENGTH:
        return f"id {value[:70]!r} is {len(value)} characters long: the maximum is {ID_MAX_LENGTH}"

    if _ID_RE.match(value):
        return None

    return (
        f"id {value!r} is invalid: use lowercase letters, digits and '-' only "
        "(no spaces, '/', '+', '#' or uppercase), not starting with '-'"
    )
