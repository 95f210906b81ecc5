"""Node settings: the ``settings`` object of the node configuration, validated strictly.

The same shape is used in the agent's YAML file (``settings:``) and in the remote
configuration the command server publishes on the node's retained ``config`` topic::

    {"heartbeat_s": 60, "backlog_rate_per_s": 200,
     "adapters": [{"type": "json", "id": "local-json", ...}, ...]}

Each adapter entry is validated by the ``Settings`` model of its ``type``
(``edge.adapters.adapter_class``). Unknown keys anywhere are errors, so a misspelt option is
rejected instead of being ignored.

Exceptions::

    ValueError
    └── SettingsError    the settings are invalid, and the message names each adapter id and field
"""

from collections import Counter
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SerializeAsAny, ValidationError

from contract import id_problem

from .adapters import adapter_class
from .adapters.base import AdapterSettings

TIMEZONE_FIELD = "timezone"
"""Adapter setting that receives the node's time zone when an entry leaves it out."""

_MAX_PROBLEMS = 20
"""Maximum problems listed in one error message, because the report's error text is capped at 2,000 characters."""


class SettingsError(ValueError):
    """Raised when node settings are invalid. The message lists every problem found."""


class NodeSettings(BaseModel):
    """Settings of the node's agent that the command server may change at run time.

    Build it with ``parse_node_settings``: ``adapters`` contains instances of each type's own
    ``Settings`` model, which plain validation of this model cannot choose.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    heartbeat_s: float = Field(60.0, ge=1, le=3600, description="Interval of the retained status heartbeat, s")
    backlog_rate_per_s: float = Field(
        200.0, gt=0, le=100_000, description="Messages per second at most when sending readings queued during an outage"
    )
    adapters: tuple[SerializeAsAny[AdapterSettings], ...] = Field(default=(), description="Device adapters to run")

    def adapter(self, adapter_id: str) -> AdapterSettings | None:
        """Return the settings of the adapter ``adapter_id``, or None."""
        for settings in self.adapters:
            if settings.id == adapter_id:
                return settings
        return None


def parse_node_settings(data: object, default_timezone: str | None = None) -> NodeSettings:
    """Validate ``data`` as node settings.

    ``default_timezone`` fills the ``timezone`` setting of each adapter type that has one,
    when its entry leaves it out, so device-local clocks use the office's zone by default.

    Raises:
        SettingsError: a key is unknown, a value is invalid, an adapter type is unknown, an
            adapter entry is invalid for its type, or two adapters share an id. The message
            names the adapter by id and type and the field at fault.
    """
    if not isinstance(data, Mapping):
        raise SettingsError(f"settings must be a JSON object, not {type(data).__name__}")

    problems: list[str] = []
    adapters = _parse_adapters(data.get("adapters", []), problems, default_timezone)

    others = {key: value for key, value in data.items() if key != "adapters"}
    node_settings = None
    try:
        node_settings = NodeSettings.model_validate(others)
    except ValidationError as exc:
        problems += [_describe(error, prefix="settings") for error in exc.errors()]

    if problems:
        shown = problems[:_MAX_PROBLEMS]
        if len(problems) > _MAX_PROBLEMS:
            shown.append(f"and {len(problems) - _MAX_PROBLEMS} more problems")
        raise SettingsError("; ".join(shown))

    return node_settings.model_copy(update={"adapters": tuple(adapters)})


def _parse_adapters(entries: object, problems: list[str], default_timezone: str | None) -> list[AdapterSettings]:
    if not isinstance(entries, list):
        problems.append(f"settings.adapters must be a list of adapter objects, not {type(entries).__name__}")
        return []

    adapters: list[AdapterSettings] = []
    for index, entry in enumerate(entries):
        parsed = _parse_adapter(index, entry, problems, default_timezone)
        if parsed is not None:
            adapters.append(parsed)

    counts = Counter(settings.id for settings in adapters)
    for adapter_id, count in sorted(counts.items()):
        if count > 1:
            problems.append(f"adapter id {adapter_id!r} is used by {count} adapters: give each adapter its own id")
    return adapters


def _parse_adapter(
    index: int, entry: object, problems: list[str], default_timezone: str | None
) -> AdapterSettings | None:
    if not isinstance(entry, Mapping):
        problems.append(f"settings.adapters[{index}] must be an object, not {type(entry).__name__}")
        return None

    adapter_id = entry.get("id")
    type_name = entry.get("type")
    label = f"adapter {adapter_id!r} (settings.adapters[{index}], type {type_name!r})"
    if not isinstance(adapter_id, str) or id_problem(adapter_id):
        problem = id_problem(adapter_id) if isinstance(adapter_id, str) else "id is missing or not a string"
        problems.append(f"{label}: {problem}")
        return None
    if not isinstance(type_name, str):
        problems.append(f"{label}: type is missing or not a string")
        return None

    try:
        settings_class = adapter_class(type_name).Settings
    except ValueError as exc:
        problems.append(f"{label}: {exc}")
        return None
    except (ImportError, AttributeError) as exc:
        problems.append(f"{label}: adapter type {type_name!r} is not available in this agent ({exc})")
        return None

    values = dict(entry)
    if default_timezone and TIMEZONE_FIELD in settings_class.model_fields and TIMEZONE_FIELD not in values:
        values[TIMEZONE_FIELD] = default_timezone

    try:
        return settings_class.model_validate(values)
    except ValidationError as exc:
        problems.extend(f"{label}: {_describe(error)}" for error in exc.errors())
        return None


def _describe(error: dict[str, Any], prefix: str = "") -> str:
    """Turn one pydantic error into ``field=value: message``, hiding values of secret fields."""
    parts = [prefix] if prefix else []
    parts += [str(part) for part in error["loc"]]
    location = ".".join(parts)
    message = error["msg"].removeprefix("Value error, ")

    if error["type"] == "missing":
        return f"field {location!r} is missing"
    if error["type"] == "extra_forbidden":
        return f"field {location!r} is not a known setting"
    if not error["loc"]:
        return message
    if any(secret in location for secret in ("password", "token", "secret")):
        return f"field {location!r}: {message}"

    preview = repr(error.get("input"))
    if len(preview) > 60:
        preview = preview[:60] + "..."
    return f"field {location!r}={preview}: {message}"
